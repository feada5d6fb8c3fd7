//! One network namespace of a [`Topology`](crate::Topology) ([`Netns`]): commands run in it,
//! what `ip` shows there (addresses, link state, MAC, XDP, neighbours), and the removal of
//! namespaces that a crashed earlier run of the same test left behind.
//!
//! Names are `vt-<test name>-<pid>-<seq>-<role>`: the owning process's PID tells whether a
//! namespace is stale.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::processes::{pid_alive, send_signal, Shared};

/// First part of every namespace name this library makes.
pub(crate) const TAG: &str = "vt";

/// Names of all network namespaces (`ip netns list`).
pub fn list_netns() -> Vec<String> {
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect(),
        Err(e) => {
            log!("ip netns list: {e}");
            Vec::new()
        }
    }
}

/// Runs `ip <args>`, failing with its stderr when it exits non-zero.
pub(crate) fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (is iproute2 installed?)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Keeps names unambiguous: '-' separates the parts of a namespace name.
pub(crate) fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(max)
        .collect()
}

/// SIGKILLs every process inside namespace `ns` (`ip netns pids`). Used only on namespaces
/// this library created (ours, or a crashed earlier run's of the same test).
pub(crate) fn kill_all_in_ns(ns: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return;
    };
    for pid in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        if pid > 1 && pid as u32 != std::process::id() {
            log!("killing leftover pid {pid} in namespace {ns}");
            let _ = send_signal(pid, libc::SIGKILL);
        }
    }
}

/// Deletes namespaces `vt-<name>-<pid>-<seq>-<role>` whose owning process is gone.
pub(crate) fn cleanup_stale(name: &str) {
    let me = std::process::id();
    let mut dirs = BTreeSet::new();
    for ns in list_netns() {
        let parts: Vec<&str> = ns.splitn(5, '-').collect();
        let [tag, n, pid, seq, _role] = parts[..] else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if tag != TAG || n != name || pid == me || pid_alive(pid) {
            continue;
        }
        log!("removing stale namespace {ns} from an earlier run (pid {pid} is gone)");
        kill_all_in_ns(&ns);
        if let Err(e) = ip(&["netns", "del", &ns]) {
            log!("{e:#}");
        }
        dirs.insert(std::env::temp_dir().join(format!("{TAG}-{n}-{pid}-{seq}")));
    }
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// One network namespace of a [`Topology`](crate::Topology).
pub struct Netns {
    pub(crate) name: String,
    pub(crate) role: String,
    pub(crate) shared: Arc<Shared>,
}

impl Netns {
    /// Full namespace name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Role in the topology: "br", "r1", "r2", "client", or one given to
    /// [`Topology::add_host`](crate::Topology::add_host).
    pub fn role(&self) -> &str {
        &self.role
    }

    /// `ip netns exec <ns> <program>`; add arguments, env, stdio, then run or
    /// [`spawn_command`](Self::spawn_command) it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `program args` in this namespace to completion. Panics only if `ip` can't start.
    pub fn run<I, S>(&self, program: &str, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {} {program}: {e}", self.name))
    }

    /// Like [`run`](Self::run) but panics unless it exits 0; returns stdout.
    pub fn run_ok<I, S>(&self, program: &str, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let out = self.run(program, &args);
        if !out.status.success() {
            let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
            panic!(
                "in {}: `{program} {}` failed ({}):\n{}{}",
                self.name,
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a shell snippet (`sh -c`) in this namespace.
    pub fn sh(&self, script: &str) -> Output {
        self.run("sh", ["-c", script])
    }

    /// Addresses ("addr/prefixlen", IPv4 and IPv6) of `iface` from `ip -j addr`; empty when the
    /// interface does not exist.
    pub fn addrs(&self, iface: &str) -> Vec<String> {
        let out = self.run("ip", ["-j", "addr", "show", "dev", iface]);
        if !out.status.success() {
            log!(
                "ip addr show dev {iface} in {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Vec::new();
        }
        parse_addrs(&out.stdout)
    }

    /// True if `iface` has `addr` ("198.51.100.100" or "198.51.100.100/24").
    pub fn has_addr(&self, iface: &str, addr: &str) -> bool {
        self.addrs(iface)
            .iter()
            .any(|a| a == addr || a.split('/').next() == Some(addr))
    }

    /// `operstate` of `iface` ("UP", "DOWN", "LOWERLAYERDOWN", ...), None if it doesn't exist.
    pub fn oper_state(&self, iface: &str) -> Option<String> {
        let out = self.run("ip", ["-j", "link", "show", "dev", iface]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.get(0)?.get("operstate")?.as_str().map(str::to_owned)
    }

    /// `ip -j -d link show dev <iface>` as JSON (the interface's object), None if it doesn't
    /// exist.
    pub(crate) fn link_json(&self, iface: &str) -> Option<serde_json::Value> {
        let out = self.run("ip", ["-j", "-d", "link", "show", "dev", iface]);
        if !out.status.success() {
            return None;
        }
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(v.get_mut(0)?.take())
    }

    /// The interface index of `iface`, None if it doesn't exist.
    pub fn ifindex(&self, iface: &str) -> Option<u64> {
        self.link_json(iface)?["ifindex"].as_u64()
    }

    /// MAC address of `iface` ("aa:bb:cc:dd:ee:ff"), None if it doesn't exist.
    pub fn mac(&self, iface: &str) -> Option<String> {
        self.link_json(iface)?["address"]
            .as_str()
            .map(str::to_owned)
    }

    /// The XDP program attached to `iface` (from `ip -j -d link`), None when there is none
    /// (or the interface doesn't exist).
    pub fn xdp(&self, iface: &str) -> Option<XdpAttachment> {
        parse_xdp(&self.link_json(iface)?)
    }

    /// The link-layer address the neighbour table holds for `addr` (`ip -j neigh show <addr>`),
    /// None when there is no entry or it has none (e.g. FAILED/INCOMPLETE).
    pub fn neigh_lladdr(&self, addr: &str) -> Option<String> {
        let out = self.run("ip", ["-j", "neigh", "show", addr]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?
            .iter()
            .find_map(|n| n["lladdr"].as_str().map(str::to_owned))
    }

    /// Pings `addr` from this namespace: true when all `count` replies arrive within `timeout`.
    pub fn ping(&self, addr: &str, count: u32, timeout: Duration) -> bool {
        let deadline = timeout.as_secs_f64().ceil().max(1.0).to_string();
        let count = count.max(1).to_string();
        self.run(
            "ping",
            [
                "-n", "-q", "-c", &count, "-i", "0.2", "-W", "1", "-w", &deadline, addr,
            ],
        )
        .status
        .success()
    }
}

/// An XDP program attached to an interface, as `ip -j -d link` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpAttachment {
    /// "driver" (native), "skb" (generic), "hw" (offloaded), "multi", or "mode <n>".
    pub mode: String,
    /// Kernel program id.
    pub prog_id: u64,
    /// Program name (the kernel truncates it to 15 characters).
    pub prog_name: String,
}

fn parse_xdp(link: &serde_json::Value) -> Option<XdpAttachment> {
    let xdp = link.get("xdp")?;
    // XDP_ATTACHED_* from linux/if_link.h.
    let mode = match xdp["mode"].as_u64()? {
        0 => return None,
        1 => "driver".to_owned(),
        2 => "skb".to_owned(),
        3 => "hw".to_owned(),
        4 => "multi".to_owned(),
        m => format!("mode {m}"),
    };
    // In "multi" mode the programs are listed under "attached"; take the first.
    let prog = xdp
        .get("prog")
        .or_else(|| xdp["attached"].get(0)?.get("prog"))?;
    Some(XdpAttachment {
        mode,
        prog_id: prog["id"].as_u64()?,
        prog_name: prog["name"].as_str().unwrap_or_default().to_owned(),
    })
}

fn parse_addrs(json: &[u8]) -> Vec<String> {
    let v: serde_json::Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) => {
            log!("parsing `ip -j addr`: {e}");
            return Vec::new();
        }
    };
    addr_info(&v)
        .map(|(_, local, len)| format!("{local}/{len}"))
        .collect()
}

/// (interface, address, prefix length) of every address in `ip -j addr` output `v`.
pub(crate) fn addr_info(v: &serde_json::Value) -> impl Iterator<Item = (&str, &str, u64)> {
    v.as_array().into_iter().flatten().flat_map(|link| {
        let dev = link["ifname"].as_str().unwrap_or_default();
        let addrs = link["addr_info"].as_array().into_iter().flatten();
        addrs.filter_map(move |a| Some((dev, a["local"].as_str()?, a["prefixlen"].as_u64()?)))
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn parses_ip_j_addr() {
        let json = br#"[{"ifindex":2,"ifname":"eth0","addr_info":[
            {"family":"inet","local":"198.51.100.1","prefixlen":24,"scope":"global"},
            {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#;
        assert_eq!(parse_addrs(json), ["198.51.100.1/24", "fe80::1/64"]);
        assert!(parse_addrs(b"[]").is_empty());
        assert!(parse_addrs(b"garbage").is_empty());
    }

    #[test]
    fn parses_ip_j_d_link_xdp() {
        let link: serde_json::Value = serde_json::from_str(
            r#"{"ifname":"eth0","xdp":{"mode":1,"prog":{"id":149,"name":"vrrp","jited":1},
                "attached":[{"mode":1,"prog":{"id":149,"name":"vrrp"}}]}}"#,
        )
        .unwrap();
        let want = XdpAttachment {
            mode: "driver".into(),
            prog_id: 149,
            prog_name: "vrrp".into(),
        };
        assert_eq!(parse_xdp(&link), Some(want));
        let multi: serde_json::Value = serde_json::from_str(
            r#"{"xdp":{"mode":4,"attached":[{"mode":2,"prog":{"id":7,"name":"x"}}]}}"#,
        )
        .unwrap();
        assert_eq!(
            parse_xdp(&multi).map(|x| (x.mode, x.prog_id)),
            Some(("multi".into(), 7))
        );
        let none: serde_json::Value = serde_json::from_str(r#"{"ifname":"eth0"}"#).unwrap();
        assert_eq!(parse_xdp(&none), None);
    }

    #[test]
    fn sanitizes_names() {
        assert_eq!(sanitize("a-b c::d", 40), "a_b_c__d");
        assert_eq!(sanitize("abcdef", 3), "abc");
    }
}
