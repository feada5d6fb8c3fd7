//! Never two masters, never a lost VIP: the findings of trying the agent as an operator would,
//! each end to end in the namespace test bed (two agents with `-f` configs, 100 ms adverts, a
//! client). r1 has priority 200, r2 100; VRID 51, VIP 198.51.100.100/24.
//!
//! Root only (skipped otherwise); run through `cargo xtask test`, which builds the agent and
//! installs trafgen (netsniff-ng) first.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use vrrp_lab::frames::{advert_frame, parse_mac};
use vrrp_lab::lab::{Lab, AUTO_VETH_LOG, IFACE, SEC, SETTLE, VIP, VIP_CIDR};
use vrrp_lab::{agent_bin, skip_unless_root, wait_until, Proc, R1_ADDR};

/// The running configuration: VI_1 on eth0, and `more` after it.
fn conf(priority: u8, more: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    priority \
         {priority}\n    advert_int 0.1\n    version 3\n    virtual_ipaddress {{\n        \
         {VIP_CIDR}\n    }}\n}}\n{more}"
    )
}

/// Starts r1 (200) and r2 (100) from `conf` files; returns r1's file (rewrite it and SIGHUP).
fn elect(lab: &mut Lab) -> std::path::PathBuf {
    let path = lab.start_conf("r1", &conf(200, ""), &[]);
    lab.start_conf("r2", &conf(100, ""), &[]);
    lab.wait_holders(&["r1"], SETTLE);
    lab.wait_log("r2", 0, "-> BACKUP", SETTLE);
    path
}

/// Rewrites r1's configuration to `text` and sends SIGHUP; returns r1's log mark before it.
fn reload_r1(lab: &mut Lab, path: &Path, text: &str) -> usize {
    std::fs::write(path, text).unwrap();
    let mark = lab.log_len("r1");
    lab.agent("r1").signal(libc::SIGHUP).unwrap();
    mark
}

/// Finding 1: a reload adding an instance on a mistyped interface killed the master without a
/// goodbye and left its VIP behind (two masters). Now the new instance waits in FAULT for its
/// interface, nothing else moves, and when an interface of that name appears it runs there.
#[test]
fn reload_with_a_missing_interface_keeps_the_master() {
    skip_unless_root!();
    let mut lab = Lab::new("rs_reload_iface");
    let path = elect(&mut lab);
    let typo = conf(200, "vrrp_instance VI_2 {\n interface eth9\n virtual_router_id 52\n priority 100\n advert_int 0.1\n version 3\n virtual_ipaddress {\n 198.51.100.101/24\n }\n}\n");
    let mark = reload_r1(&mut lab, &path, &typo);
    lab.wait_log("r1", mark, "fault (interface eth9 is missing)", SETTLE);
    lab.assert_stable(&["r1"], 2 * SEC);
    assert_alive(&mut lab, "r1");
    // The interface appears: the instance binds to it and runs (alone there: it is master).
    lab.topo
        .add_lan2_link("r1", "eth9", "203.0.113.1/24")
        .unwrap();
    lab.wait_log(
        "r1",
        mark,
        "FAULT -> BACKUP: fault cleared vrid=52 iface=eth9",
        SETTLE,
    );
    lab.wait_holders_on("eth9", "198.51.100.101", &["r1"], SETTLE);
}

#[track_caller]
fn assert_alive(lab: &mut Lab, role: &str) {
    let alive = lab.agent(role).is_running();
    lab.check(alive, &format!("{role}'s agent exited"));
}

/// Finding 1, a missing check script: the reload is refused with FILE:LINE, nothing changes.
#[test]
fn reload_with_a_missing_script_is_refused() {
    skip_unless_root!();
    let mut lab = Lab::new("rs_reload_script");
    let path = elect(&mut lab);
    let missing = "vrrp_script chk {\n script /nonexistent/check.sh\n}\n".to_owned()
        + &conf(200, "")
        + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n priority 100\n advert_int 0.1\n version 3\n virtual_ipaddress {\n 198.51.100.101/24\n }\n track_script {\n chk\n }\n}\n";
    let mark = reload_r1(&mut lab, &path, &missing);
    let at = format!(
        "{}:1: vrrp_script chk: /nonexistent/check.sh",
        path.display()
    );
    lab.wait_log("r1", mark, &at, SETTLE);
    lab.wait_log(
        "r1",
        mark,
        "still running the previous configuration",
        SETTLE,
    );
    lab.assert_stable(&["r1"], 2 * SEC);
    assert_alive(&mut lab, "r1");
}

/// Finding 1, a slow check: a reload adding an instance whose check takes 0.8 s used to stall
/// the loop (it awaited every check's first result) and the backup took over.
#[test]
fn reload_with_a_slow_check_keeps_adverts_flowing() {
    skip_unless_root!();
    let mut lab = Lab::new("rs_reload_slow");
    let path = elect(&mut lab);
    let script = write_script(&lab, "slow.sh", "sleep 0.8");
    let slow = format!(
        "vrrp_script slow {{\n script {}\n interval 5\n timeout 3\n}}\n",
        script.display()
    ) + &conf(200, "")
        + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n priority 200\n advert_int 0.1\n version 3\n virtual_ipaddress {\n 198.51.100.101/24\n }\n track_script {\n slow\n }\n}\n";
    let mark = reload_r1(&mut lab, &path, &slow);
    lab.assert_stable(&["r1"], 2 * SEC);
    lab.wait_log("r1", mark, "INIT -> BACKUP: startup vrid=52", SETTLE);
}

/// An executable `#!/bin/sh` script with `body` in the lab's work dir.
fn write_script(lab: &Lab, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = lab.topo.workdir().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Finding 2: a VIP deleted behind the master's back (NetworkManager, systemd-networkd, an
/// operator) stayed deleted. Now it is back within 100 ms, logged; `ip -ts monitor` in the
/// router's namespace times both events in the kernel's order.
#[test]
fn vip_deleted_on_the_master_is_back_within_100ms() {
    skip_unless_root!();
    let mut lab = Lab::new("rs_vip_heal");
    elect(&mut lab);
    let monitor = lab
        .topo
        .ns("r1")
        .spawn("timeout", ["5", "ip", "-ts", "monitor", "address"]);
    std::thread::sleep(Duration::from_millis(300));
    let mark = lab.log_len("r1");
    lab.topo
        .ns("r1")
        .run_ok("ip", ["addr", "del", VIP_CIDR, "dev", IFACE]);
    lab.wait_log(
        "r1",
        mark,
        "VIP deleted by someone else while master",
        SETTLE,
    );
    lab.wait_holders(&["r1"], SETTLE);
    let events = monitor_events(&monitor, VIP);
    let deleted = events.iter().position(|(_, del)| *del);
    let back = deleted.and_then(|d| events[d..].iter().find(|(_, del)| !del));
    let (Some(d), Some((back_at, _))) = (deleted, back) else {
        lab.fail(&format!("no delete and re-add of {VIP} in: {events:?}"));
    };
    let took = back_at - events[d].0;
    lab.check(took < 0.1, &format!("the VIP came back after {took:.3} s"));
}

/// `(seconds, deleted)` for each `ip -ts monitor address` event about `addr`.
fn monitor_events(monitor: &Proc, addr: &str) -> Vec<(f64, bool)> {
    monitor
        .log()
        .lines()
        .filter(|l| l.contains(&format!("inet {addr}/")))
        .filter_map(|l| {
            let stamp = l.strip_prefix('[')?.split(']').next()?;
            let clock = stamp.split('T').nth(1)?;
            let secs: f64 = clock
                .split(':')
                .map(|p| p.parse::<f64>().ok())
                .try_fold(0.0, |acc, p| Some(acc * 60.0 + p?))?;
            Some((secs, l.contains("Deleted")))
        })
        .collect()
}

/// Finding 3: an interface deleted and re-created (a container restart, a driver reload) left
/// the instance in FAULT forever. Now it binds to the new interface and is master again.
#[test]
fn interface_deleted_and_recreated_makes_it_master_again() {
    skip_unless_root!();
    let mut lab = Lab::new("rs_iface_recreate");
    elect(&mut lab);
    let mark = lab.log_len("r1");
    lab.topo.delete_link("r1");
    lab.wait_log("r1", mark, "interface eth0 is gone: closing", SETTLE);
    lab.wait_holders(&["r2"], SETTLE);
    lab.topo.recreate_link("r1", &format!("{R1_ADDR}/24"));
    lab.wait_log("r1", mark, "bound to interface index", SETTLE);
    lab.wait_log("r1", mark, AUTO_VETH_LOG, SETTLE);
    lab.wait_holders(&["r1"], SETTLE);
    lab.wait_client_reaches_vip_at("r1", SETTLE);
    lab.assert_tc("r1");
}

/// Findings 4 and 5: `check-config -f FILE` (documented) failed with clap's "required
/// arguments", and a seed's own keepalived.conf with `state SLAVE` was refused where keepalived
/// 2.2.7 runs it as BACKUP. Both forms now pass the seeds' style of file, with keepalived's
/// warning; a missing interface is a warning too.
#[test]
fn check_config_takes_the_seeds_files() {
    let dir = std::env::temp_dir().join(format!("vrrp-seed-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keepalived.conf");
    std::fs::write(&file, SEED_CONF).unwrap();
    let file = file.to_str().unwrap();
    for args in [&["check-config", "-f", file][..], &["-t", "-f", file]] {
        let out = Command::new(agent_bin()).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(
            text.contains("configuration OK: 1 VRRP instance(s), 1 check(s)"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{file}:13: unknown state 'SLAVE', defaulting to BACKUP"
            )),
            "{text}"
        );
        assert!(
            text.contains("interface ens192 does not exist on this host"),
            "{text}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The seeds' style: a Debian host's keepalived.conf for nginx, as written for keepalived.
const SEED_CONF: &str = r#"! Configuration File for keepalived
global_defs {
   router_id nginx_backup
   enable_script_security
   script_user root
}
vrrp_script chk_nginx {
    script "/usr/bin/pgrep -x nginx"
    interval 2
    weight -20
}
vrrp_instance VI_1 {
    state SLAVE
    interface ens192
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cr3t
    }
    virtual_ipaddress {
        198.51.100.100/24
    }
    track_script {
        chk_nginx
    }
}
"#;

/// Finding 7: a file nested 100,000 blocks deep overflowed the stack (SIGABRT), in `-t` and on
/// reload (where it left the VIP behind). Now both refuse it with an error, and the running
/// master carries on.
#[test]
fn deeply_nested_file_is_refused() {
    skip_unless_root!();
    let mut lab = Lab::new("rs_nested");
    let path = elect(&mut lab);
    let nested = conf(200, "") + &"x {\n".repeat(100_000);
    let deep = lab.topo.workdir().join("deep.conf");
    std::fs::write(&deep, &nested).unwrap();
    let out = Command::new(agent_bin())
        .args(["-t", "-f", deep.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    lab.check(
        out.status.code() == Some(2),
        &format!("-t: {:?} {text}", out.status),
    );
    lab.check(
        text.contains("blocks nested more than"),
        &format!("-t said: {text}"),
    );
    let mark = reload_r1(&mut lab, &path, &nested);
    lab.wait_log(
        "r1",
        mark,
        "still running the previous configuration",
        SETTLE,
    );
    lab.assert_stable(&["r1"], SEC);
    assert_alive(&mut lab, "r1");
}

/// Finding 6: after two masters meet (the master frozen 2 s by SIGSTOP, the backup took over and
/// sent gratuitous ARP), the resumed master won but nobody re-announced the VIP: the client kept
/// the backup's MAC and lost the VIP for 6.6 s. Now the winner answers the loser's advert with
/// gratuitous ARP at once: one master at the end, a GARP from it after SIGCONT, and the client's
/// longest gap without a reply under 1 s. The winner also logs the rival's claim on the VIP
/// that its kernel saw while it was frozen.
#[test]
fn frozen_master_that_resumes_announces_the_vip_again() {
    skip_unless_root!();
    let mut lab = Lab::new("rs_sigstop");
    elect(&mut lab);
    let r1_mac = lab.topo.ns("r1").mac(IFACE).unwrap();
    let r2_mac = lab.topo.ns("r2").mac(IFACE).unwrap();
    let arp = lab.ok(lab.topo.ns("client").capture(IFACE, "arp", 1000, 15 * SEC));
    let ping = ping_vip(&lab, 8);
    std::thread::sleep(SEC);
    lab.agent("r1").signal(libc::SIGSTOP).unwrap();
    std::thread::sleep(2 * SEC);
    lab.wait_holders(&["r1", "r2"], SETTLE);
    let resumed = epoch_now();
    let mark = lab.log_len("r1");
    lab.agent("r1").signal(libc::SIGCONT).unwrap();
    // The kernel saw r2's gratuitous ARP while r1's agent was frozen: split-brain evidence.
    lab.wait_log(
        "r1",
        mark,
        &format!("VIP claimed by {r2_mac} while we are master"),
        SETTLE,
    );
    lab.wait_holders(&["r1"], SETTLE);
    lab.assert_stable(&["r1"], 2 * SEC);
    let gap = longest_gap(ping);
    let garps = lab.ok(arp.stop().lines(&format!("arp and ether src {r1_mac}")));
    let after: Vec<&String> = garps
        .iter()
        .filter(|l| stamp(l).is_some_and(|t| t > resumed) && l.contains(VIP))
        .collect();
    lab.check(
        !after.is_empty(),
        &format!("no ARP from r1 for the VIP after SIGCONT: {garps:?}"),
    );
    lab.check(
        gap < 1.0,
        &format!("the client went {gap:.3} s without a reply"),
    );
}

/// A slow priority-0 spoof at the backup (about 10 a second for 5 s, as if from r1): one that
/// comes more than Skew_Time before r1's next advert makes the backup take over for a moment;
/// the master answers with gratuitous ARP, so the client's longest gap without a reply stays
/// under 1 s (it was 4-5 s). Every 97 ms, not 100: a spoof phase-locked to the 100 ms adverts
/// would win that race always or never; 97 ms sweeps the phase.
#[test]
fn slow_priority_zero_spoof_does_not_take_the_vip_away() {
    skip_unless_root!();
    let mut lab = Lab::new("rs_spoof");
    elect(&mut lab);
    lab.topo.add_host("spoof", "198.51.100.30/24").unwrap();
    let spoofer_mac = parse_mac(&lab.topo.ns("spoof").mac(IFACE).unwrap()).unwrap();
    let r1: Ipv4Addr = R1_ADDR.parse().unwrap();
    let vip: Ipv4Addr = VIP.parse().unwrap();
    let frame = advert_frame((spoofer_mac, r1), 51, 0, 10, &[vip]);
    let ping = ping_vip(&lab, 7);
    std::thread::sleep(SEC);
    let mark = lab.log_len("r2");
    let spoof = lab.send_frames("spoof", &[frame], Duration::from_millis(97), 52);
    let gap = longest_gap(ping);
    let sent = spoof.log();
    // Else the spoof did nothing and the test proves nothing.
    let takeovers = lab
        .log_since("r2", mark)
        .matches("BACKUP -> MASTER")
        .count();
    lab.check(
        takeovers > 0,
        &format!("the spoof never made r2 take over; trafgen: {sent}"),
    );
    lab.check(
        wait_until(SETTLE, SEC / 10, || lab.holders() == ["r1"]),
        "r1 does not hold the VIP alone at the end",
    );
    lab.check(
        gap < 1.0,
        &format!("the client went {gap:.3} s without a reply; trafgen: {sent}"),
    );
}

/// The client pings the VIP every 10 ms for `secs` seconds, printing each reply's time.
fn ping_vip(lab: &Lab, secs: u32) -> Proc {
    let secs = secs.to_string();
    lab.topo
        .ns("client")
        .spawn("ping", ["-D", "-n", "-i", "0.01", "-w", &secs, VIP])
}

/// Waits for the pings to end; the longest time between two replies, in seconds.
fn longest_gap(mut ping: Proc) -> f64 {
    ping.wait_timeout(30 * SEC).expect("ping ends by itself");
    let times: Vec<f64> = ping
        .log()
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    assert!(times.len() > 100, "too few replies: {}", ping.log());
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The time of a `tcpdump -tt` line.
fn stamp(line: &str) -> Option<f64> {
    line.split_whitespace().next()?.parse().ok()
}

/// As PID 1 (a container's entrypoint), the orphans that scripts leave behind are reaped: a
/// check that starts a background child and exits, run every 0.2 s for 3 s, leaves no zombie
/// under the namespace's PID 1 (the agent's runtime reaps only its own children; the agent's
/// init does the rest).
#[test]
fn as_pid_1_the_orphans_of_scripts_are_reaped() {
    skip_unless_root!();
    let lab = Lab::new("rs_pid1");
    let script = write_script(&lab, "orphaning.sh", "(sleep 0.1 &)\nexit 0");
    let text = format!(
        "vrrp_script orphans {{\n script {}\n interval 0.2\n}}\n",
        script.display()
    ) + &conf(200, "").replace(
        "    version 3\n",
        "    version 3\n    track_script {\n orphans\n }\n",
    );
    let file = lab.topo.workdir().join("pid1.conf");
    std::fs::write(&file, text).unwrap();
    let bin = agent_bin();
    let mut unshare = lab.topo.ns("r1").spawn_env(
        "unshare",
        [
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            bin.to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
        ],
        [("RUST_LOG", "info")],
    );
    let seen = wait_until(SETTLE, SEC / 10, || lab.topo.has_addr("r1", IFACE, VIP));
    assert!(seen, "the agent did not become master:\n{}", unshare.log());
    std::thread::sleep(3 * SEC);
    let init = children(unshare.pid())
        .into_iter()
        .next()
        .expect("unshare's child, the namespace's PID 1");
    // An orphan may be caught in the instant between its exit and its reaping: a zombie counts
    // only if it is still one a moment later.
    let zombies_now = || -> Vec<u32> {
        let all = children(init).into_iter();
        all.filter(|pid| state(*pid) == Some('Z')).collect()
    };
    let first = zombies_now();
    std::thread::sleep(SEC / 5);
    let zombies: Vec<u32> = zombies_now()
        .into_iter()
        .filter(|z| first.contains(z))
        .collect();
    // What `docker stop` does: SIGTERM to the namespace's PID 1.
    // SAFETY: kill has no memory effects; `init` is a process this test started.
    unsafe { libc::kill(init as i32, libc::SIGTERM) };
    let status = unshare.wait_timeout(10 * SEC);
    assert!(
        zombies.is_empty(),
        "zombies under PID 1: {zombies:?}\n{}",
        unshare.log()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        unshare.log()
    );
    assert!(!lab.topo.has_addr("r1", IFACE, VIP), "the hand-over ran");
}

/// The children of process `pid` (as this host's PID namespace numbers them).
fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A process's state letter from /proc/PID/stat.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}
