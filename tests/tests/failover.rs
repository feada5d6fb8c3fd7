//! End-to-end failover tests: two `vrrp-agent` routers and a client on one segment (see
//! `vrrp_lab::Topology`), VRID 51, VIP 198.51.100.100/24; the cases that do not depend on the
//! family again over IPv6 (`_ipv6`: VIPs fe80::1 and 2001:db8::100/64, the client reaching the
//! second). r1 has priority 200, r2 100. Each test asserts what the client sees (ping, its
//! neighbour entry for the VIP), what `ip addr` and `ip link` show in the routers, and the
//! agents' transition log lines.
//!
//! Root only (skipped otherwise); run through `cargo xtask test`, which builds the agent first.
//! Adverts every 100 ms keep the suite fast, except where whole seconds are needed (VRRPv2) or
//! a timing margin must be unambiguous (the SIGTERM hand-over).

use std::time::{Duration, Instant};

use vrrp_lab::lab::{
    count_after, Family, Lab, AUTO_VETH_LOG, IFACE, POLL, RAW_SOCKET_LOG, ROUTERS, SEC, SETTLE,
    XDP_NATIVE_LOG, XDP_SKB_LOG,
};
use vrrp_lab::{skip_unless_root, wait_until, R1_ADDR, R2_ADDR};

/// Where each `--xdp` value hooks the kernel program in on veth.
enum Hook {
    Tc,
    Xdp(&'static str),
    RawSocket,
}

/// Case 1 and 8: the initial election through the receive path of `--xdp <xdp>`.
fn initial_election(name: &str, xdp: &str, family: Family) {
    let (receive_path_log, hook) = match xdp {
        "auto" => (AUTO_VETH_LOG, Hook::Tc),
        "native" => (XDP_NATIVE_LOG, Hook::Xdp("driver")),
        "skb" => (XDP_SKB_LOG, Hook::Xdp("skb")),
        _ => (RAW_SOCKET_LOG, Hook::RawSocket),
    };
    let extra = ["--xdp", xdp];
    let mut lab = Lab::of(family, name);
    lab.elect_r1(&extra, SETTLE);
    for r in ROUTERS {
        lab.wait_log(r, 0, receive_path_log, SETTLE);
    }
    lab.wait_client_reaches_vip_at("r1", SETTLE);
    // r2's master-down interval is ~0.36 s: staying backup for 3 s means it keeps receiving
    // r1's adverts through this receive path.
    lab.assert_stable(&["r1"], 3 * SEC);
    lab.assert_state("r2", "BACKUP");
    for r in ROUTERS {
        match hook {
            Hook::Tc => lab.assert_tc(r),
            Hook::Xdp(mode) => lab.assert_xdp(r, mode),
            Hook::RawSocket => lab.assert_no_xdp(r),
        }
    }
    if !matches!(hook, Hook::RawSocket) {
        // The backup's kernel map holds r1's adverts: its SIGUSR1 status line reads the map.
        let r1 = lab.source_addr("r1");
        let log = lab.status("r2", &format!("last from {r1} prio 200 interval 100ms"));
        let seen = count_after(&log, " received ").unwrap_or(0);
        // 3 s of 100 ms adverts went by above.
        lab.check(
            seen >= 20,
            &format!("r2's map counted only {seen} of r1's adverts"),
        );
    }
}

/// Case 1: The higher priority wins; the kernel program carries r1's adverts to r2's agent. By
/// default (`--xdp auto`) from TC ingress on veth, where driver-mode XDP's ring drops adverts
/// under a flood and generic XDP copies every frame.
#[test]
fn initial_election_xdp_auto() {
    skip_unless_root!();
    initial_election("fo_init_auto", "auto", Family::V4);
}

#[test]
fn initial_election_xdp_auto_ipv6() {
    skip_unless_root!();
    initial_election("fo_init_auto6", "auto", Family::V6);
}

/// Case 1c: The same with `--xdp skb`: generic XDP, auto's fallback on veth.
#[test]
fn initial_election_xdp_skb() {
    skip_unless_root!();
    initial_election("fo_init_skb", "skb", Family::V4);
}

/// Case 1b: The same with `--xdp native`: driver mode on veth too.
#[test]
fn initial_election_xdp_native() {
    skip_unless_root!();
    initial_election("fo_init_xdp", "native", Family::V4);
}

/// Case 8: The same with the raw-socket receive path (`--xdp off`), the fallback.
#[test]
fn initial_election_raw_socket() {
    skip_unless_root!();
    initial_election("fo_init_raw", "off", Family::V4);
}

#[test]
fn initial_election_raw_socket_ipv6() {
    skip_unless_root!();
    initial_election("fo_init_raw6", "off", Family::V6);
}

/// Case 2: Cutting the master's cable moves the VIP to r2; the client follows through r2's
/// gratuitous ARP. r1 sees the carrier loss and goes FAULT, releasing the VIP (keepalived does
/// the same). When the cable is back, r1 preempts again.
#[test]
fn link_cut_fails_over_to_backup() {
    skip_unless_root!();
    link_cut(Lab::new("fo_linkcut"));
}

#[test]
fn link_cut_fails_over_to_backup_ipv6() {
    skip_unless_root!();
    link_cut(Lab::of(Family::V6, "fo_linkcut6"));
}

fn link_cut(mut lab: Lab) {
    lab.elect_r1(&[], SETTLE);
    lab.wait_client_reaches_vip_at("r1", SETTLE);
    // The idle backup leaves its Master_Down timer to the kernel, and sleeps.
    let kept = wait_until(SETTLE, POLL, || {
        lab.status_json("r2")["instances"][0]["kernel"]["master_down_timer"] == true
    });
    lab.check(kept, "r2's kernel does not keep its Master_Down timer");

    let (mark1, mark2) = (lab.log_len("r1"), lab.log_len("r2"));
    lab.topo.cut_link("r1");
    lab.wait_log(
        "r1",
        mark1,
        "MASTER -> FAULT: fault (interface eth0 down)",
        SETTLE,
    );
    lab.wait_log(
        "r2",
        mark2,
        "BACKUP -> MASTER: master down timer expired",
        SETTLE,
    );
    lab.wait_holders(&["r2"], SETTLE);
    lab.wait_client_reaches_vip_at("r2", SETTLE);
    // The kernel's word woke it, not its own fallback a second later.
    let c = &lab.status_json("r2")["instances"][0]["counters"];
    lab.check(
        c["kernel_master_down"].as_u64() >= Some(1) && c["watch_missed"] == 0,
        &format!("r2's takeover: {c}"),
    );

    let mark = lab.log_len("r2");
    lab.topo.restore_link("r1");
    let r1 = lab.source_addr("r1");
    let preempted = format!("MASTER -> BACKUP: higher priority advert from {r1}");
    lab.wait_log("r2", mark, &preempted, SETTLE);
    lab.wait_holders(&["r1"], SETTLE);
    lab.assert_state("r1", "MASTER");
}

/// After the master's cable comes back, the client must reach the VIP at r1 again at once,
/// not only when its neighbour entry for the VIP (r2's MAC since the failover) expires about
/// 5 s later. keepalived gets this by going FAULT on carrier loss (dropping the VIP) and
/// BACKUP → MASTER with gratuitous ARP on carrier return.
#[test]
fn link_restore_client_follows_master_at_once() {
    skip_unless_root!();
    link_restore(Lab::new("fo_linkback"));
}

#[test]
fn link_restore_client_follows_master_at_once_ipv6() {
    skip_unless_root!();
    link_restore(Lab::of(Family::V6, "fo_linkback6"));
}

fn link_restore(mut lab: Lab) {
    lab.elect_r1(&[], SETTLE);
    lab.wait_client_reaches_vip_at("r1", SETTLE);
    lab.topo.cut_link("r1");
    lab.wait_client_reaches_vip_at("r2", SETTLE);
    lab.topo.restore_link("r1");
    lab.wait_holders(&["r1"], SETTLE);
    lab.wait_client_reaches_vip_at("r1", 2 * SEC);
}

/// Case 3: SIGTERM on the master: its priority-0 advert lets r2 take over after Skew_Time
/// (~0.6 s) instead of Master_Down_Interval (~3.6 s) with 1 s adverts. The resigning agent exits
/// once it hears the new master, or after two advert intervals when nobody takes over.
#[test]
fn sigterm_hands_over_before_master_down() {
    skip_unless_root!();
    sigterm(Lab::new("fo_sigterm"));
}

#[test]
fn sigterm_hands_over_before_master_down_ipv6() {
    skip_unless_root!();
    sigterm(Lab::of(Family::V6, "fo_sigterm6"));
}

fn sigterm(mut lab: Lab) {
    let one_sec = ["--advert-int", "1s"];
    lab.elect_r1(&one_sec, 15 * SEC);
    // Let r2 hear a couple of adverts, so its timer runs on r1's interval.
    lab.assert_stable(&["r1"], 2 * SEC);

    let mark = lab.log_len("r2");
    let t0 = Instant::now();
    lab.agent("r1").term().unwrap();
    let vip = lab.family.vip();
    let took_over = wait_until(10 * SEC, Duration::from_millis(10), || {
        lab.topo.has_addr("r2", IFACE, vip)
    });
    let elapsed = t0.elapsed();
    lab.check(took_over, "r2 did not take the VIP after r1's SIGTERM");
    lab.check(
        elapsed < Duration::from_millis(2500),
        &format!(
            "r2 took {elapsed:?} to hold the VIP after SIGTERM; want < 2.5 s (Master_Down ≈ 3.6 s)"
        ),
    );
    lab.wait_log(
        "r2",
        mark,
        "BACKUP -> MASTER: master down timer expired",
        SEC,
    );

    let status = lab.agent("r1").wait_timeout(5 * SEC);
    lab.check(
        status.is_some_and(|s| s.success()),
        &format!("r1's agent did not exit cleanly on SIGTERM: {status:?}"),
    );
    lab.wait_log("r1", 0, "SIGTERM: handing over", SEC);
    lab.wait_log("r1", 0, "MASTER -> INIT: shutdown", SEC);
    // r1 kept its XDP program until r2's first advert as master.
    let r2 = lab.source_addr("r2");
    lab.wait_log("r1", 0, &format!("new master {r2} heard"), SEC);
    lab.wait_holders(&["r2"], SEC);
    lab.wait_client_reaches_vip_at("r2", SETTLE);

    // Nobody left to take over: r2 waits two advert intervals for a successor, then exits.
    let t0 = Instant::now();
    lab.agent("r2").term().unwrap();
    let status = lab.agent("r2").wait_timeout(5 * SEC);
    lab.check(
        status.is_some_and(|s| s.success()),
        &format!("r2's agent did not exit cleanly on SIGTERM: {status:?}"),
    );
    lab.wait_log("r2", 0, "no new master heard within 2s of the goodbye", SEC);
    lab.check(
        t0.elapsed() >= 2 * SEC,
        &format!(
            "r2 exited {:?} after SIGTERM, before its wait for a successor",
            t0.elapsed()
        ),
    );
}

/// Case 4a: A returning higher-priority master preempts: r1, stopped and restarted, takes the VIP
/// back and r2 releases it.
#[test]
fn returning_master_preempts() {
    skip_unless_root!();
    returning_master(Lab::new("fo_preempt"));
}

#[test]
fn returning_master_preempts_ipv6() {
    skip_unless_root!();
    returning_master(Lab::of(Family::V6, "fo_preempt6"));
}

fn returning_master(mut lab: Lab) {
    lab.elect_r1(&[], SETTLE);
    lab.wait_client_reaches_vip_at("r1", SETTLE);
    lab.agent("r1").term().unwrap();
    lab.wait_holders(&["r2"], SETTLE);
    lab.wait_client_reaches_vip_at("r2", SETTLE);

    let mark = lab.log_len("r2");
    lab.start("r1", 200, &[]);
    lab.wait_log("r1", 0, "BACKUP -> MASTER", SETTLE);
    let r1 = lab.source_addr("r1");
    let preempted = format!("MASTER -> BACKUP: higher priority advert from {r1}");
    lab.wait_log("r2", mark, &preempted, SETTLE);
    lab.wait_holders(&["r1"], SETTLE);
    lab.wait_client_reaches_vip_at("r1", SETTLE);
    lab.assert_stable(&["r1"], 2 * SEC);
}

/// Case 4b: With `--nopreempt`, r1 (higher priority) joins as backup and leaves the VIP on r2; it
/// takes over only when r2 goes away.
#[test]
fn nopreempt_does_not_take_back() {
    skip_unless_root!();
    nopreempt(Lab::new("fo_nopreempt"));
}

#[test]
fn nopreempt_does_not_take_back_ipv6() {
    skip_unless_root!();
    nopreempt(Lab::of(Family::V6, "fo_nopreempt6"));
}

fn nopreempt(mut lab: Lab) {
    lab.start("r2", 100, &[]);
    lab.wait_holders(&["r2"], SETTLE);
    lab.start("r1", 200, &["--nopreempt"]);
    // From INIT, or (IPv6) from FAULT once its link-local address is done with duplicate
    // address detection.
    lab.wait_log("r1", 0, "-> BACKUP", SETTLE);
    // r1's master-down interval is ~0.32 s: 3 s of BACKUP means it hears r2 and defers.
    lab.assert_stable(&["r2"], 3 * SEC);
    lab.assert_state("r1", "BACKUP");
    lab.assert_state("r2", "MASTER");
    lab.wait_client_reaches_vip_at("r2", SETTLE);

    lab.agent("r2").term().unwrap();
    lab.wait_log("r1", 0, "BACKUP -> MASTER", SETTLE);
    lab.wait_holders(&["r1"], SETTLE);
}

/// VRRPv2 pair with passwords `p1` (r1) and `p2` (r2), 1 s adverts.
fn start_v2_pair(lab: &mut Lab, p1: &str, p2: &str) {
    for (role, prio, pass) in [("r1", 200, p1), ("r2", 100, p2)] {
        lab.start(
            role,
            prio,
            &[
                "--vrrp-version",
                "2",
                "--advert-int",
                "1s",
                "--auth-pass",
                pass,
            ],
        );
    }
}

/// Case 5: VRRPv2 with different passwords: each ignores the other's adverts (and says so), so
/// both become MASTER and both hold the VIP.
#[test]
fn v2_password_mismatch_ignores_adverts() {
    skip_unless_root!();
    let mut lab = Lab::new("fo_v2_badpass");
    start_v2_pair(&mut lab, "secret1", "secret2");
    for (r, peer) in [("r1", R2_ADDR), ("r2", R1_ADDR)] {
        lab.wait_log(
            r,
            0,
            "BACKUP -> MASTER: master down timer expired",
            15 * SEC,
        );
        let warning = format!("ignored advert: password mismatch vrid=51 src=Some({peer})");
        lab.wait_log(r, 0, &warning, 15 * SEC);
    }
    lab.wait_holders(&["r1", "r2"], SETTLE);
    // And they stay there: neither accepts the other's adverts later either.
    lab.assert_stable(&["r1", "r2"], 3 * SEC);
    lab.assert_state("r1", "MASTER");
    lab.assert_state("r2", "MASTER");
}

/// Case 5 (control): The same VRRPv2 pair with equal passwords elects r1 alone.
#[test]
fn v2_matching_password_elects_one() {
    skip_unless_root!();
    let mut lab = Lab::new("fo_v2_goodpass");
    start_v2_pair(&mut lab, "secret1", "secret1");
    lab.wait_holders(&["r1"], 15 * SEC);
    lab.wait_log("r2", 0, "INIT -> BACKUP", SEC);
    lab.assert_stable(&["r1"], 3 * SEC);
    lab.assert_state("r2", "BACKUP");
    for r in ROUTERS {
        let log = lab.log(r);
        lab.check(
            !log.contains("ignored advert"),
            &format!("{r} ignored adverts although the passwords match"),
        );
    }
}

/// Case 6: kill -9 of the master: the XDP program goes with the agent (aya attaches through a
/// bpf_link), so r1's own traffic still flows, and r2 takes over the VIP. With XDP (`--xdp
/// skb`) because `ip link` shows whether it went; a TC link is a bpf_link as well.
#[test]
fn kill9_leaves_traffic_flowing() {
    skip_unless_root!();
    kill9(Lab::new("fo_kill9"));
}

#[test]
fn kill9_leaves_traffic_flowing_ipv6() {
    skip_unless_root!();
    kill9(Lab::of(Family::V6, "fo_kill9_6"));
}

fn kill9(mut lab: Lab) {
    lab.elect_r1(&["--xdp", "skb"], SETTLE);
    lab.assert_xdp("r1", "skb");
    lab.crash_r1();
    let detached = wait_until(5 * SEC, POLL, || lab.topo.ns("r1").xdp(IFACE).is_none());
    lab.check(detached, "the XDP program is still attached after kill -9");
    let r1 = lab.own_addr("r1");
    let reach = wait_until(SETTLE, POLL, || lab.topo.ping("client", r1, 3, 2 * SEC));
    lab.check(reach, "client cannot ping r1's own address after kill -9");
    lab.check(
        lab.topo.ping("client", lab.family.vip(), 3, 2 * SEC),
        "client cannot ping the VIP after kill -9",
    );
    lab.assert_xdp("r2", "skb");
}

/// Case 7: An agent restarted after kill -9 removes the VIP its crashed run left, and the election
/// ends with exactly one holder: r1 again (priority 200, preempt).
#[test]
fn restart_after_kill9_removes_stale_vip() {
    skip_unless_root!();
    restart_after_kill9(Lab::new("fo_restart"));
}

#[test]
fn restart_after_kill9_removes_stale_vip_ipv6() {
    skip_unless_root!();
    restart_after_kill9(Lab::of(Family::V6, "fo_restart6"));
}

fn restart_after_kill9(mut lab: Lab) {
    lab.elect_r1(&[], SETTLE);
    lab.crash_r1();
    let mark = lab.log_len("r2");
    lab.start("r1", 200, &[]);
    let removed = format!(
        "removed a stale VIP left by an earlier run vrid=51 vip={}",
        lab.family.vip()
    );
    lab.wait_log("r1", 0, &removed, SETTLE);
    lab.wait_log("r1", 0, "BACKUP -> MASTER", SETTLE);
    lab.wait_log("r2", mark, "MASTER -> BACKUP", SETTLE);
    lab.wait_holders(&["r1"], SETTLE);
    lab.assert_stable(&["r1"], 2 * SEC);
    // The stale address went before the election started.
    let log = lab.log("r1");
    let removed = log.find("removed a stale VIP");
    let started = log.find("INIT -> BACKUP");
    lab.check(
        removed.is_some() && removed < started,
        "stale VIP removal is not logged before the startup transition",
    );
    lab.wait_client_reaches_vip_at("r1", SETTLE);
}
