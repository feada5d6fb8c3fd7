//! The liveness channel end to end (`--liveness-interval`): r2 (backup, priority 100) probes r1
//! (master, 200), r1's kernel program reflects the probes, and r2's takes the silence of the
//! reflections as the master gone. 100 ms adverts, so VRRP alone would wait 361 ms: the log line
//! names which rule made r2 master. Behaviour only; how fast is the benchmark's to say.
//!
//! Root only (skipped otherwise); run through `cargo xtask test`.

use std::net::Ipv4Addr;
use std::time::Duration;

use vrrp_lab::frames::{parse_mac, probe_frame, udp_frame};
use vrrp_lab::lab::{count_after, Impl, Lab, IFACE, SEC, SETTLE, VIP_CIDR};
use vrrp_lab::{skip_unless_root, R1_ADDR, R2_ADDR};

const LIVENESS: [&str; 2] = ["--liveness-interval", "1ms"];
const GONE: &str = "BACKUP -> MASTER: master 198.51.100.1 gone (liveness channel silent)";
const VRRP_DOWN: &str = "BACKUP -> MASTER: master down timer expired";

/// r1 master, r2 backup, both with the channel on; r2 has heard reflections (its status line
/// counts them), so the channel is up before the test breaks something.
fn elect_with_liveness(name: &str) -> Lab {
    let mut lab = Lab::new(name);
    lab.elect_r1(&LIVENESS, SETTLE);
    lab.wait_log("r2", 0, "liveness channel up", SETTLE);
    assert_reflections(&mut lab);
    lab
}

/// r2's SIGUSR1 status line counts reflections of its probes: some within SETTLE (the first
/// probes go at the discovery rate until the master reflects).
fn assert_reflections(lab: &mut Lab) {
    let start = std::time::Instant::now();
    loop {
        let log = lab.status("r2", "liveness: probing 198.51.100.1 every 1ms");
        let reflections = count_after(&log, "1ms, ").unwrap_or(0);
        if reflections > 0 {
            return;
        }
        lab.check(
            start.elapsed() < SETTLE,
            &format!("r2 heard no reflection of its probes:\n{log}"),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The master's cable pulled: r2 takes over on the channel's silence, not on VRRP's timer.
#[test]
fn link_cut_is_seen_by_the_liveness_channel() {
    skip_unless_root!();
    let mut lab = elect_with_liveness("lv_cut");
    let mark = lab.log_len("r2");
    lab.topo.cut_link("r1");
    lab.wait_log("r2", mark, GONE, SETTLE);
    lab.wait_holders(&["r2"], SETTLE);
    lab.wait_client_reaches_vip_at("r2", SETTLE);
    // Back: r1 preempts as usual, and r2 probes it again.
    let mark = lab.log_len("r2");
    lab.topo.restore_link("r1");
    lab.wait_log("r2", mark, "MASTER -> BACKUP", SETTLE);
    lab.wait_holders(&["r1"], SETTLE);
    assert_reflections(&mut lab);
}

/// kill -9 of the master's agent: its kernel program goes with it, so the reflections stop
/// while the host and its link live on.
#[test]
fn killed_master_agent_is_seen_by_the_liveness_channel() {
    skip_unless_root!();
    let mut lab = elect_with_liveness("lv_kill");
    let mark = lab.log_len("r2");
    lab.crash_r1();
    lab.wait_log("r2", mark, GONE, SETTLE);
}

/// A dying process's files are released in reverse order of their descriptors, and each packet
/// socket's release waits for an RCU grace period (7–20 ms here): the program's link must sit
/// above every other descriptor of the agent, so a killed agent stops reflecting at once
/// whatever sockets it opened after attaching.
#[test]
fn killed_agent_releases_its_program_first() {
    skip_unless_root!();
    let mut lab = elect_with_liveness("lv_order");
    let pid = lab.agent("r1").pid();
    let mut fds: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            Some((fd, std::fs::read_link(e.path()).ok()?.display().to_string()))
        })
        .collect();
    // A file is released when its last descriptor closes: the link's highest one must top
    // the table.
    fds.sort();
    lab.check(
        fds.last()
            .is_some_and(|(_, what)| what.contains("bpf_link")),
        &format!("r1's program link is not its highest descriptor: {fds:?}"),
    );
}

/// A healthy master under a bounded UDP flood at the backup: the channel never makes r2 master
/// (it must tell lost probes from a dead master), and r1 keeps the VIP alone throughout.
#[test]
fn healthy_master_under_a_flood_keeps_the_vip() {
    skip_unless_root!();
    let mut lab = elect_with_liveness("lv_flood");
    lab.topo.add_host("flood", "198.51.100.40/24").unwrap();
    let mac = parse_mac(&lab.topo.ns("flood").mac(IFACE).unwrap()).unwrap();
    let r2_mac = parse_mac(&lab.topo.ns("r2").mac(IFACE).unwrap()).unwrap();
    let frame = udp_frame(
        (r2_mac, R2_ADDR.parse().unwrap()),
        (mac, Ipv4Addr::new(198, 51, 100, 40)),
    );
    let mark = lab.log_len("r2");
    // ~5 s at full speed, bounded in packets and time.
    let mut flood = lab.send_frames("flood", &[frame], Duration::ZERO, 2_000_000);
    lab.assert_stable(&["r1"], 5 * SEC);
    flood.wait_timeout(30 * SEC);
    let log = lab.log_since("r2", mark);
    lab.check(
        !log.contains("-> MASTER"),
        &format!("r2 became master under the flood:\n{log}"),
    );
    assert_reflections(&mut lab);
}

/// A master without the channel (an older agent, or the option left out there) reflects
/// nothing: the backup's channel never comes up and VRRP's timing decides, exactly as before.
#[test]
fn master_without_the_channel_leaves_vrrp_timing() {
    skip_unless_root!();
    let mut lab = Lab::new("lv_one_sided");
    lab.start("r1", 200, &[]);
    lab.start("r2", 100, &LIVENESS);
    lab.wait_holders(&["r1"], SETTLE);
    lab.wait_log("r2", 0, "-> BACKUP", SETTLE);
    lab.assert_stable(&["r1"], 2 * SEC);
    let mark = lab.log_len("r2");
    lab.topo.cut_link("r1");
    lab.wait_log("r2", mark, VRRP_DOWN, SETTLE);
}

/// keepalived as master, our backup with the channel on: keepalived never sees a probe it
/// would act on (they go to a UDP port nobody listens on), and the backup stays backup.
#[test]
fn keepalived_master_is_unaffected_by_probes() {
    skip_unless_root!();
    let mut lab = Lab::new("lv_keepalived");
    let conf = |priority: u8, extra: &str| {
        format!(
            "vrrp_instance VI_1 {{\n interface {IFACE}\n virtual_router_id 51\n priority \
             {priority}\n advert_int 0.1\n version 3\n virtual_ipaddress {{\n  {VIP_CIDR}\n }}\n\
             {extra}\n}}\n"
        )
    };
    lab.start_as("r1", Impl::Keepalived, &conf(200, ""));
    lab.start_conf("r2", &conf(100, " liveness_interval 1ms"), &[]);
    lab.wait_holders(&["r1"], SETTLE);
    lab.assert_stable(&["r1"], 3 * SEC);
    lab.assert_state("r2", "BACKUP");
}

/// A flood of probes at the master (from a host posing as a better backup) gets a bounded
/// number of reflections (`vrrp_common::liveness::REFLECT_EVERY_NS`), the master says how many
/// it held back, and the group stays as it is: r2's probes, lost in the limit, only make it
/// distrust the channel.
#[test]
fn probe_flood_gets_bounded_reflections() {
    skip_unless_root!();
    let mut lab = elect_with_liveness("lv_probes");
    let spoof = Ipv4Addr::new(198, 51, 100, 41);
    lab.topo.add_host("spoof", "198.51.100.41/24").unwrap();
    let mac = parse_mac(&lab.topo.ns("spoof").mac(IFACE).unwrap()).unwrap();
    let r1_mac = parse_mac(&lab.topo.ns("r1").mac(IFACE).unwrap()).unwrap();
    let frame = probe_frame((r1_mac, R1_ADDR.parse().unwrap()), (mac, spoof), 51, 254);
    let filter = "udp port 7112 and src 198.51.100.1 and dst 198.51.100.41";
    let capture = (lab.topo.ns("spoof"))
        .capture(IFACE, filter, 300_000, 30 * SEC)
        .unwrap_or_else(|e| lab.fail(&format!("{e:#}")));
    let sent = 200_000;
    let started = std::time::Instant::now();
    let mut flood = lab.send_frames("spoof", &[frame], Duration::ZERO, sent);
    lab.check(
        flood.wait_timeout(30 * SEC).is_some_and(|s| s.success()),
        "trafgen failed",
    );
    let took = started.elapsed().as_secs_f64();
    std::thread::sleep(SEC / 5);
    let reflected = capture.stop().count("").unwrap_or(0) as f64;
    // 40,000 a second and a burst of 64, over the flood's whole run (trafgen's start included).
    let bound = took * 40_000.0 + 64.0;
    lab.check(
        reflected > 0.0 && reflected <= bound && reflected < f64::from(sent) / 2.0,
        &format!("{reflected} of {sent} probes reflected in {took:.2} s (bound {bound:.0})"),
    );
    let limited = &lab.status_json("r1")["instances"][0]["reflector"]["limited"];
    lab.check(
        limited.as_u64().is_some_and(|n| n > 0),
        &format!("r1 counted {limited} probes over the limit, {reflected} reflected"),
    );
    lab.assert_stable(&["r1"], SEC);
    lab.assert_state("r2", "BACKUP");
}
