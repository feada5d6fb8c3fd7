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
