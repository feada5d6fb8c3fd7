//! Privileges: the running agent keeps only the capabilities it needs (vrrp-agent's
//! `privileges::KEPT`); a notify script that runs as root still gets root's, as under
//! keepalived.
//!
//! Root only (skipped otherwise); run through `cargo xtask test`.

use std::os::unix::fs::PermissionsExt as _;

use vrrp_lab::lab::{Lab, IFACE, SEC, SETTLE, VIP_CIDR};
use vrrp_lab::{skip_unless_root, wait_until};

/// CAP_KILL 5, CAP_SETGID 6, CAP_SETUID 7, CAP_NET_ADMIN 12, CAP_NET_RAW 13, CAP_SYS_NICE 23,
/// CAP_PERFMON 38, CAP_BPF 39.
const KEPT: u64 = 1 << 5 | 1 << 6 | 1 << 7 | 1 << 12 | 1 << 13 | 1 << 23 | 1 << 38 | 1 << 39;

/// A capability set (`CapEff`, `CapPrm`, `CapBnd`) from a /proc/PID/status text.
fn caps(status: &str, set: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(set))?;
    u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
}

#[test]
fn running_agent_keeps_only_the_capabilities_it_needs() {
    skip_unless_root!();
    let mut lab = Lab::new("pv_caps");
    let work = lab.topo.workdir().to_path_buf();
    let out = work.join("notify-caps");
    let script = work.join("notify-master.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ngrep ^Cap /proc/self/status > {}\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = format!(
        "vrrp_instance VI_1 {{\n interface {IFACE}\n virtual_router_id 51\n priority 200\n \
         advert_int 0.1\n version 3\n virtual_ipaddress {{\n  {VIP_CIDR}\n }}\n \
         notify_master {}\n}}\n",
        script.display()
    );
    lab.start_conf("r1", &conf, &[]);
    lab.wait_holders(&["r1"], SETTLE);

    let pid = lab.agent("r1").pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = caps(&status, "CapEff:");
    lab.check(
        eff == Some(KEPT) && caps(&status, "CapPrm:") == Some(KEPT),
        &format!("the agent's capabilities are not the ones it needs:\n{status}"),
    );
    lab.check(
        caps(&status, "CapBnd:") == caps(&ours, "CapBnd:"),
        "the bounding set must stay whole",
    );
    let written = wait_until(5 * SEC, SEC / 20, || out.exists());
    let script_caps = std::fs::read_to_string(&out).unwrap_or_default();
    lab.check(
        written && caps(&script_caps, "CapEff:") == caps(&ours, "CapEff:"),
        &format!("the notify script did not run with root's capabilities:\n{script_caps}"),
    );
}

/// Without root (README, "Running it as a service"): a user with the five capabilities as
/// ambient ones, as `User=` and `AmbientCapabilities=` give them, runs the agent: it attaches,
/// becomes master, adds the VIP, and removes it on SIGTERM.
#[test]
fn runs_as_a_user_with_ambient_capabilities() {
    skip_unless_root!();
    let lab = Lab::new("pv_user");
    let run = lab.topo.workdir().join("run");
    std::fs::create_dir(&run).unwrap();
    std::os::unix::fs::chown(&run, Some(65534), None).unwrap();
    let pid = run.join("agent.pid");
    let control = run.join("control.sock");
    let caps = "+net_admin,+net_raw,+bpf,+perfmon,+sys_nice";
    let mut agent = lab.topo.ns("r1").spawn(
        "setpriv",
        [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &format!("--inh-caps={caps}"),
            &format!("--ambient-caps={caps}"),
            vrrp_lab::agent_bin().to_str().unwrap(),
            "--iface",
            IFACE,
            "--vrid",
            "51",
            "--priority",
            "200",
            "--vip",
            VIP_CIDR,
            "--advert-int",
            "100ms",
            "--pid",
            pid.to_str().unwrap(),
            "--control-socket",
            control.to_str().unwrap(),
        ],
    );
    lab.wait_holders(&["r1"], SETTLE);
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid())).unwrap();
    lab.check(
        status.lines().any(|l| l.starts_with("Uid:\t65534")),
        &format!("not running as the user:\n{status}"),
    );
    agent.term().unwrap();
    lab.check(agent.wait_timeout(5 * SEC).is_some(), "no exit on SIGTERM");
    lab.wait_holders(&[], SETTLE);
}
