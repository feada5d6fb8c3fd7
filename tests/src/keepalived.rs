//! Runs keepalived (Debian's 2.2.7) in a router namespace of a [`Topology`], next to or instead
//! of `vrrp-agent`, and renders the keepalived.conf both of them read.
//!
//! Each instance gets its own pid files (else a second keepalived on the host says "already
//! running" and exits 0), runs in the foreground with only its VRRP subsystem, and logs to a file
//! in the topology's work dir. keepalived forks a VRRP child that does the protocol work: both
//! processes are stopped by PID, never by name.

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::netns::addr_info;
use crate::processes::{exited_nowait, send_signal, Proc, STOP_TIMEOUT};
use crate::{wait_until, Topology};

const POLL: Duration = Duration::from_millis(20);
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One `vrrp_instance` (with the `global_defs` it needs) for [`conf`]. `Default` is VRRPv3 at
/// 100 ms, VRID 51, priority 100, state BACKUP, VIP 198.51.100.100/24 on eth0, multicast.
#[derive(Clone, Debug)]
pub struct InstanceSpec {
    pub name: String,
    pub iface: String,
    /// 2 or 3 (`version`).
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// `advert_int`: whole seconds with VRRPv2, multiples of 10 ms with VRRPv3.
    pub interval: Duration,
    /// "MASTER" or "BACKUP"; keepalived starts in BACKUP either way below priority 255.
    pub state: String,
    /// VRRPv2 `auth_type PASS` with this password.
    pub auth_pass: Option<String>,
    pub nopreempt: bool,
    /// `unicast_src_ip`.
    pub unicast_src: Option<IpAddr>,
    /// `unicast_peer { ... }`; empty means multicast to 224.0.0.18.
    pub unicast_peers: Vec<IpAddr>,
    /// `v3_checksum_as_v2` in global_defs: VRRPv3 checksum without the IPv4 pseudo-header.
    /// keepalived learned it in 2.2.8; 2.2.7 logs "Unknown keyword" and keeps the pseudo-header.
    pub v3_checksum_as_v2: bool,
    /// `vrrp_rt_priority` in global_defs: SCHED_RR for keepalived's VRRP process (and the
    /// agent, which runs SCHED_RR 1 without it).
    pub rt_priority: Option<u8>,
    /// `virtual_ipaddress` entries, "ADDR/LEN".
    pub vips: Vec<String>,
}

impl Default for InstanceSpec {
    fn default() -> Self {
        InstanceSpec {
            name: "VI_1".into(),
            iface: crate::HOST_IFACE.into(),
            version: 3,
            vrid: 51,
            priority: 100,
            interval: Duration::from_millis(100),
            state: "BACKUP".into(),
            auth_pass: None,
            nopreempt: false,
            unicast_src: None,
            unicast_peers: Vec::new(),
            v3_checksum_as_v2: false,
            rt_priority: None,
            vips: vec![crate::lab::VIP_CIDR.into()],
        }
    }
}

/// keepalived.conf text for `i`, readable by keepalived and by `vrrp-agent -f`.
pub fn conf(i: &InstanceSpec) -> String {
    let mut globals = Vec::new();
    if i.v3_checksum_as_v2 {
        globals.push("v3_checksum_as_v2".to_owned());
    }
    if let Some(p) = i.rt_priority {
        globals.push(format!("vrrp_rt_priority {p}"));
    }
    let mut s = String::new();
    if !globals.is_empty() {
        s += &format!("global_defs {{\n    {}\n}}\n\n", globals.join("\n    "));
    }
    s += &format!(
        "vrrp_instance {} {{\n    state {}\n    interface {}\n    virtual_router_id {}\n    \
         priority {}\n    advert_int {}\n    version {}\n",
        i.name,
        i.state,
        i.iface,
        i.vrid,
        i.priority,
        i.interval.as_secs_f64(),
        i.version
    );
    if i.nopreempt {
        s += "    nopreempt\n";
    }
    if let Some(src) = i.unicast_src {
        s += &format!("    unicast_src_ip {src}\n");
    }
    if !i.unicast_peers.is_empty() {
        s += "    unicast_peer {\n";
        for p in &i.unicast_peers {
            s += &format!("        {p}\n");
        }
        s += "    }\n";
    }
    if let Some(pass) = &i.auth_pass {
        s += &format!(
            "    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}\n"
        );
    }
    s += "    virtual_ipaddress {\n";
    for v in &i.vips {
        s += &format!("        {v}\n");
    }
    s += "    }\n}\n";
    s
}

/// A keepalived running in one namespace. Dropping it stops both its processes (SIGTERM, then
/// SIGKILL) and removes VIPs a killed keepalived left behind.
pub struct Keepalived {
    /// `ip netns exec` execs keepalived, so this is keepalived's main process, and leader of
    /// the process group its VRRP child inherits.
    parent: Proc,
    child: u32,
    ns: String,
    /// Addresses from the config's `virtual_ipaddress` blocks.
    vips: Vec<IpAddr>,
    /// The namespace's addresses before keepalived started: never removed on drop.
    before: Vec<IpAddr>,
}

impl Keepalived {
    /// Starts keepalived with keepalived.conf text `conf` in namespace `role` (written to the
    /// topology's workdir), own pid files, foreground, VRRP subsystem only, output to a log file.
    /// Returns once both processes are up (VRRP child pid file present).
    pub fn start(topo: &Topology, role: &str, conf: &str) -> Result<Keepalived> {
        let netns = topo.ns(role);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let file = |ext: &str| topo.workdir().join(format!("{role}-keepalived-{n}.{ext}"));
        let conf_path = file("conf");
        std::fs::write(&conf_path, conf).with_context(|| conf_path.display().to_string())?;
        let (log, child_pid) = (file("log"), file("vrrp.pid"));
        let out = std::fs::File::create(&log).with_context(|| log.display().to_string())?;
        let mut cmd = netns.command("keepalived");
        // -n -l -D -G: foreground, log detail to the console only (not the host's syslog);
        // -P: VRRP only; -R: a dying VRRP child ends keepalived instead of being respawned
        // under a PID we would not know.
        cmd.args(["-n", "-l", "-D", "-G", "-P", "-R", "-f"])
            .arg(&conf_path)
            .arg("-p")
            .arg(file("pid"))
            .arg("-r")
            .arg(&child_pid)
            .arg("-c")
            .arg(file("checkers.pid"))
            .arg("-b")
            .arg(file("bfd.pid"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let before = addrs_in(netns.name())?
            .into_iter()
            .map(|(a, _, _)| a)
            .collect();
        let mut parent = netns.spawn_command(cmd)?;
        parent.log = Some(log);
        let pgid = parent.pid();
        let mut child = None;
        wait_until(Duration::from_secs(10), POLL, || {
            child = std::fs::read_to_string(&child_pid)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .filter(|&pid| member_alive(pid, pgid));
            child.is_some() || exited_nowait(pgid)
        });
        let Some(child) = child else {
            let status = parent.stop(STOP_TIMEOUT);
            bail!(
                "keepalived in {} did not start its VRRP child ({status}):\n{}",
                netns.name(),
                parent.log()
            );
        };
        Ok(Keepalived {
            parent,
            child,
            ns: netns.name().to_owned(),
            vips: vips_in(conf),
            before,
        })
    }

    /// Main process and VRRP child.
    pub fn pids(&self) -> Vec<u32> {
        vec![self.parent.pid(), self.child]
    }

    /// Its output so far (both processes log there).
    pub fn log(&self) -> String {
        self.parent.log()
    }

    /// The last "Entering MASTER/BACKUP/FAULT STATE" in the log: "MASTER", "BACKUP", "FAULT".
    pub fn state(&self) -> Option<String> {
        last_state(&self.log())
    }

    /// SIGTERM to the main process (it stops the child, which sends a priority-0 advert and
    /// removes the VIPs), then waits up to [`STOP_TIMEOUT`] until both are gone.
    pub fn term(&mut self) -> Result<()> {
        self.parent.term()?;
        self.wait_gone("SIGTERM")
    }

    /// SIGKILL to both at once (the process group), a crash: the VIPs stay on the interface.
    /// Killing only the main process would not do: the child gets SIGTERM when it dies.
    pub fn kill9(&mut self) -> Result<()> {
        if !self.parent.is_running() {
            bail!("keepalived {} has already exited", self.parent.pid());
        }
        send_signal(-(self.parent.pid() as i32), libc::SIGKILL).context("kill(-pgid, SIGKILL)")?;
        self.wait_gone("SIGKILL")
    }

    fn wait_gone(&mut self, what: &str) -> Result<()> {
        let (parent, child) = (&mut self.parent, self.child);
        let pgid = parent.pid();
        let gone = wait_until(STOP_TIMEOUT, POLL, || {
            parent.try_wait().is_some() && !member_alive(child, pgid)
        });
        if !gone {
            bail!(
                "keepalived in {} (pids {:?}) still running {STOP_TIMEOUT:?} after {what}",
                self.ns,
                self.pids()
            );
        }
        Ok(())
    }

    /// Deletes the config's VIPs that are on an interface now but were not before the start.
    fn remove_left_vips(&self) -> Result<()> {
        for (addr, len, dev) in addrs_in(&self.ns)? {
            if self.vips.contains(&addr) && !self.before.contains(&addr) {
                eprintln!(
                    "[keepalived] removing VIP {addr} it left on {dev} in {}",
                    self.ns
                );
                let cidr = format!("{addr}/{len}");
                let out = Command::new("ip")
                    .args(["-n", &self.ns, "addr", "del", &cidr, "dev", &dev])
                    .output()?;
                if !out.status.success() {
                    bail!(
                        "ip addr del {cidr}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
        Ok(())
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if self.parent.is_running() {
            if let Err(e) = self.term() {
                eprintln!("[keepalived] {e:#}; sending SIGKILL");
                let _ = self.kill9();
            }
        }
        // A child that outlived its parent (it should not: it gets SIGTERM on the parent's death).
        if member_alive(self.child, self.parent.pid()) {
            let _ = send_signal(self.child as i32, libc::SIGKILL);
        }
        if let Err(e) = self.remove_left_vips() {
            eprintln!("[keepalived] {e:#}");
        }
    }
}

/// True while `pid` runs as a member of process group `pgid` (so a recycled PID is never taken
/// for keepalived's child); zombies count as gone.
fn member_alive(pid: u32, pgid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ppid pgrp ...": comm may contain spaces, so split after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    matches!(fields[..], [state, _ppid, pgrp, ..]
        if !matches!(state, "Z" | "X") && pgrp.parse() == Ok(pgid))
}

fn last_state(log: &str) -> Option<String> {
    log.lines().rev().find_map(|l| {
        // "(VI_1) Entering BACKUP STATE (init)"
        let mut words = l.split_once(") Entering ")?.1.split_whitespace();
        match (words.next()?, words.next()?) {
            (s @ ("MASTER" | "BACKUP" | "FAULT"), "STATE") => Some(s.to_owned()),
            _ => None,
        }
    })
}

/// Addresses in the `virtual_ipaddress` / `virtual_ipaddress_excluded` blocks of `conf`.
fn vips_in(conf: &str) -> Vec<IpAddr> {
    let text: String = conf
        .lines()
        .map(|l| l.split(['#', '!']).next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
        .replace('{', " { ")
        .replace('}', " } ");
    let mut tokens = text.split_whitespace();
    let mut vips = Vec::new();
    while let Some(t) = tokens.next() {
        if t.starts_with("virtual_ipaddress") && tokens.next() == Some("{") {
            // Entry lines are "ADDR[/LEN] [dev X] [label Y] ...": only ADDR parses as an address.
            for t in tokens.by_ref().take_while(|&t| t != "}") {
                if let Ok(a) = t.split('/').next().unwrap_or(t).parse() {
                    vips.push(a);
                }
            }
        }
    }
    vips
}

/// (address, prefix length, interface) of every address in namespace `ns`.
fn addrs_in(ns: &str) -> Result<Vec<(IpAddr, u64, String)>> {
    let out = Command::new("ip")
        .args(["-n", ns, "-j", "addr", "show"])
        .output()
        .context("ip addr show")?;
    if !out.status.success() {
        bail!("ip -n {ns} addr: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(addr_info(&v)
        .filter_map(|(dev, local, len)| Some((local.parse().ok()?, len, dev.to_owned())))
        .collect())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn renders_v2_unicast_conf() {
        let text = conf(&InstanceSpec {
            version: 2,
            interval: Duration::from_secs(1),
            priority: 200,
            state: "MASTER".into(),
            auth_pass: Some("s3cr3t".into()),
            unicast_src: Some(IpAddr::from([198, 51, 100, 1])),
            unicast_peers: vec![IpAddr::from([198, 51, 100, 2])],
            ..Default::default()
        });
        assert_eq!(
            text,
            "vrrp_instance VI_1 {\n    state MASTER\n    interface eth0\n    \
             virtual_router_id 51\n    priority 200\n    advert_int 1\n    version 2\n    \
             unicast_src_ip 198.51.100.1\n    unicast_peer {\n        198.51.100.2\n    }\n    \
             authentication {\n        auth_type PASS\n        auth_pass s3cr3t\n    }\n    \
             virtual_ipaddress {\n        198.51.100.100/24\n    }\n}\n"
        );
    }

    #[test]
    fn renders_v3_fractions_and_checksum_form() {
        let text = conf(&InstanceSpec {
            interval: Duration::from_millis(10),
            v3_checksum_as_v2: true,
            rt_priority: Some(1),
            nopreempt: true,
            ..Default::default()
        });
        assert!(text.starts_with(
            "global_defs {\n    v3_checksum_as_v2\n    vrrp_rt_priority 1\n}\n\nvrrp_instance"
        ));
        assert!(text.contains("    advert_int 0.01\n    version 3\n    nopreempt\n"));
        assert_eq!(vips_in(&text), [IpAddr::from([198, 51, 100, 100])]);
    }

    #[test]
    fn finds_vips_in_any_layout() {
        let text = "vrrp_instance A { virtual_ipaddress { 198.51.100.100/24 } }\n\
                    ! virtual_ipaddress { 198.51.100.9 }\n\
                    vrrp_instance B {\n  virtual_ipaddress {\n    198.51.100.101/24 dev eth0 \
                    label eth0:1 # 198.51.100.7\n  }\n  virtual_ipaddress_excluded {\n    \
                    198.51.100.102\n  }\n  unicast_peer {\n    198.51.100.3\n  }\n}\n";
        assert_eq!(
            vips_in(text),
            [
                IpAddr::from([198, 51, 100, 100]),
                IpAddr::from([198, 51, 100, 101]),
                IpAddr::from([198, 51, 100, 102])
            ]
        );
    }

    #[test]
    fn reads_last_state_from_log() {
        let log = "Sun Nov 22 00:21:27 2026: (VI_1) Entering BACKUP STATE (init)\n\
                   Sun Nov 22 00:21:27 2026: (VI_1) Receive advertisement timeout\n\
                   Sun Nov 22 00:21:27 2026: (VI_1) Entering MASTER STATE\n\
                   Sun Nov 22 00:21:28 2026: (VI_1) sent 0 priority\n";
        assert_eq!(last_state(log).as_deref(), Some("MASTER"));
        assert_eq!(
            last_state("x: (VI_1) Entering FAULT STATE\n").as_deref(),
            Some("FAULT")
        );
        assert_eq!(last_state("Starting Keepalived v2.2.7\n"), None);
    }
}
