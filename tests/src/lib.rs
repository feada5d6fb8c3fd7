//! Network-namespace topology helpers for the end-to-end tests.
//!
//! [`Topology::new`] builds, entirely inside network namespaces it creates (nothing is
//! attached to the root namespace):
//!
//! ```text
//!   ns <prefix>-r1      ns <prefix>-r2      ns <prefix>-client
//!   eth0 198.51.100.1   eth0 198.51.100.2   eth0 198.51.100.10     (all /24)
//!        |                   |                   |
//!      p-r1                p-r2              p-client     (veth peers, ns <prefix>-br)
//!        \___________________|___________________/
//!                           br0                           (bridge, ns <prefix>-br)
//! ```
//!
//! `<prefix>` is `vt-<test name>-<pid>-<seq>`, so parallel tests never collide and leftovers
//! are easy to spot with `ip netns list`. Dropping the [`Topology`] (also while unwinding from
//! a panic) stops every process spawned through it and deletes all its namespaces; creating a
//! topology first deletes namespaces left behind by an earlier, crashed run of the same test
//! (same name, owning process no longer alive).
//!
//! Typical use in an integration test (`tests/tests/*.rs`):
//!
//! ```no_run
//! use std::time::Duration;
//! use vrrp_lab::{skip_unless_root, wait_until, Topology, R1_ADDR};
//!
//! #[test]
//! fn failover() {
//!     skip_unless_root!();
//!     let topo = Topology::new("failover").unwrap();
//!     // Agents run inside the router namespaces; their output goes to a log file.
//!     let mut agent = topo.ns("r1").spawn("/path/to/vrrp-agent", ["--iface", "eth0"]);
//!     let cap = topo.ns("client").capture("eth0", "vrrp", 100, Duration::from_secs(30)).unwrap();
//!     assert!(wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
//!         topo.has_addr("r1", "eth0", "198.51.100.100")
//!     }), "agent log:\n{}", agent.log());
//!     assert!(topo.ping("client", R1_ADDR, 1, Duration::from_secs(2)));
//!     topo.cut_link("r1"); // r1 sees carrier loss, like a pulled cable
//!     agent.kill9().unwrap(); // or agent.signal(libc::SIGTERM) / agent.term()
//!     let pcap_lines = cap.stop().lines("").unwrap();
//!     # let _ = pcap_lines;
//! } // drop: remaining processes are stopped, namespaces deleted
//! ```
//!
//! Processes are always signalled by PID (each one leads its own process group, which is
//! swept with SIGKILL when it is stopped); nothing is ever killed by name.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub mod keepalived;
pub mod lab;

/// Address of router `r1` on the shared segment.
pub const R1_ADDR: &str = "198.51.100.1";
/// Address of router `r2` on the shared segment.
pub const R2_ADDR: &str = "198.51.100.2";
/// Address of the `client` namespace on the shared segment.
pub const CLIENT_ADDR: &str = "198.51.100.10";
/// Prefix length of the shared segment 198.51.100.0/24.
pub const PREFIX_LEN: u8 = 24;
/// Name of the bridge namespace's role (`topo.ns(BRIDGE)`); the bridge device is `br0`.
pub const BRIDGE: &str = "br";
/// Interface name of every host's link to the bridge, inside its namespace.
pub const HOST_IFACE: &str = "eth0";
/// The second LAN (203.0.113.0/24 by convention), bridge `br1` in the bridge namespace, made by
/// [`Topology::add_lan2_link`]: for instances on a second interface.
const LAN2_BRIDGE: &str = "br1";

/// How long [`Proc`]'s drop (and [`Topology`]'s) waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

const TAG: &str = "vt";
static NEXT_SEQ: AtomicUsize = AtomicUsize::new(0);

macro_rules! log {
    ($($arg:tt)*) => { eprintln!("[topology] {}", format_args!($($arg)*)) };
}

/// True when running as root (needed for network namespaces).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Returns from the calling test with a clear message when not running as root.
#[macro_export]
macro_rules! skip_unless_root {
    () => {
        if !$crate::is_root() {
            fn __f() {}
            let name = ::std::any::type_name_of_val(&__f);
            eprintln!(
                "SKIPPED {}: needs root to create network namespaces (run `cargo xtask test` as root)",
                name.strip_suffix("::__f").unwrap_or(name)
            );
            return;
        }
    };
}

/// Polls `cond` every `poll` until it returns true (→ true) or `timeout` passes (→ false).
/// `cond` is always evaluated at least once, and once more at the deadline.
pub fn wait_until(timeout: Duration, poll: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(poll.min(deadline - now));
        if Instant::now() >= deadline {
            return cond();
        }
    }
}

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
fn ip(args: &[&str]) -> Result<()> {
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
fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(max)
        .collect()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// True when `pid` (our child) has exited or is not our child any more; does not reap it.
fn exited_nowait(pid: u32) -> bool {
    // SAFETY: plain syscall on a zeroed, properly sized siginfo_t.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r != 0 || info.si_pid() != 0
    }
}

fn send_signal(pid: i32, sig: i32) -> std::io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// SIGKILLs every process inside namespace `ns` (`ip netns pids`). Used only on namespaces
/// this library created (ours, or a crashed earlier run's of the same test).
fn kill_all_in_ns(ns: &str) {
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
fn cleanup_stale(name: &str) {
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

/// State shared by a topology, its namespaces and the processes spawned in them.
struct Shared {
    workdir: PathBuf,
    /// PIDs of spawned processes that have not been reaped yet.
    procs: Mutex<BTreeSet<u32>>,
    seq: AtomicUsize,
}

impl Shared {
    fn register(&self, pid: u32) {
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid);
    }
    fn unregister(&self, pid: u32) {
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    }
}

/// One network namespace of a [`Topology`].
pub struct Netns {
    name: String,
    role: String,
    shared: Arc<Shared>,
}

impl Netns {
    /// Full namespace name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Role in the topology: "br", "r1", "r2", "client", or one given to [`Topology::add_host`].
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

    /// Starts `program args` in the background in this namespace; stdout and stderr go to a
    /// log file in the topology's work dir ([`Proc::log`]). The guard stops it on drop.
    /// Panics if it cannot be started.
    pub fn spawn<I, S>(&self, program: &str, args: I) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn_env(program, args, [] as [(&str, &str); 0])
    }

    /// Like [`spawn`](Self::spawn), with environment variables `envs` set for the program
    /// (e.g. `[("RUST_LOG", "info")]`).
    pub fn spawn_env<I, S, E, K, V>(&self, program: &str, args: I, envs: E) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let base = Path::new(program)
            .file_name()
            .map(|f| sanitize(&f.to_string_lossy(), 32))
            .unwrap_or_default();
        let n = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let log = self
            .shared
            .workdir
            .join(format!("{}-{base}-{n}.log", self.role));
        let file = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = file.try_clone().expect("dup log file");
        let mut cmd = self.command(program);
        cmd.args(args)
            .envs(envs)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err);
        let mut p = self.spawn_command(cmd).unwrap_or_else(|e| panic!("{e:#}"));
        p.log = Some(log);
        p
    }

    /// Spawns a command built with [`command`](Self::command) (its stdio as configured there)
    /// as a [`Proc`] guard, in a process group of its own.
    pub fn spawn_command(&self, mut cmd: Command) -> Result<Proc> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let desc = format!("{cmd:?}");
        let child = cmd.spawn().with_context(|| format!("spawning {desc}"))?;
        self.shared.register(child.id());
        Ok(Proc {
            child,
            status: None,
            shared: self.shared.clone(),
            log: None,
            desc,
        })
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
    fn link_json(&self, iface: &str) -> Option<serde_json::Value> {
        let out = self.run("ip", ["-j", "-d", "link", "show", "dev", iface]);
        if !out.status.success() {
            return None;
        }
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(v.get_mut(0)?.take())
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

    /// Starts tcpdump on `iface` writing a pcap in the topology's work dir; it stops by itself
    /// after `max_packets` packets or `max_duration`. `filter` is a pcap filter ("" = all).
    /// Returns once tcpdump is listening.
    pub fn capture(
        &self,
        iface: &str,
        filter: &str,
        max_packets: u32,
        max_duration: Duration,
    ) -> Result<Capture> {
        let n = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let stem = format!("{}-{}-{n}", self.role, sanitize(iface, 15));
        let pcap = self.shared.workdir.join(format!("{stem}.pcap"));
        let log = self.shared.workdir.join(format!("{stem}.tcpdump.log"));
        let file = File::create(&log).with_context(|| log.display().to_string())?;
        let secs = max_duration.as_secs().max(1).to_string();
        let mut cmd = self.command("timeout");
        cmd.args([
            "-s",
            "INT",
            &secs,
            "tcpdump",
            "-n",
            "-U",
            "--immediate-mode",
        ])
        .args(["-Z", "root", "-i", iface])
        .args(["-c", &max_packets.max(1).to_string(), "-w"])
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
        if !filter.is_empty() {
            cmd.arg(filter);
        }
        let mut proc = self.spawn_command(cmd)?;
        proc.log = Some(log);
        let listening = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            proc.log().contains("listening on") || !proc.is_running()
        });
        if !listening || !proc.log().contains("listening on") {
            let log = proc.log();
            proc.stop(STOP_TIMEOUT);
            bail!("tcpdump on {iface} in {} did not start:\n{log}", self.name);
        }
        Ok(Capture { proc, pcap })
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

/// The `vrrp-agent` binary under test: `$VRRP_AGENT_BIN` if set, else `vrrp-agent` in the
/// target directory of this test executable (`target/debug/deps/<test>-<hash>` →
/// `target/debug/vrrp-agent`). Panics with a hint to build it when it is missing.
pub fn agent_bin() -> PathBuf {
    let path = match std::env::var_os("VRRP_AGENT_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("vrrp-agent")))
            .unwrap_or_else(|| PathBuf::from("vrrp-agent")),
    };
    assert!(
        path.is_file(),
        "{} not found: build it first: cargo build -p vrrp-agent (cargo xtask test does)",
        path.display()
    );
    path
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
fn addr_info(v: &serde_json::Value) -> impl Iterator<Item = (&str, &str, u64)> {
    v.as_array().into_iter().flatten().flat_map(|link| {
        let dev = link["ifname"].as_str().unwrap_or_default();
        let addrs = link["addr_info"].as_array().into_iter().flatten();
        addrs.filter_map(move |a| Some((dev, a["local"].as_str()?, a["prefixlen"].as_u64()?)))
    })
}

/// A process running in a namespace. Dropping it sends SIGTERM, then SIGKILL (to its whole
/// process group) after [`STOP_TIMEOUT`], and reaps it.
pub struct Proc {
    child: Child,
    status: Option<ExitStatus>,
    shared: Arc<Shared>,
    log: Option<PathBuf>,
    desc: String,
}

impl Proc {
    /// PID (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`) to the process. Errors once it has been reaped.
    pub fn signal(&mut self, sig: i32) -> Result<()> {
        if self.try_wait().is_some() {
            bail!("process {} has already exited (and was reaped)", self.pid());
        }
        send_signal(self.pid() as i32, sig).with_context(|| format!("kill({}, {sig})", self.pid()))
    }

    /// SIGTERM (graceful shutdown).
    pub fn term(&mut self) -> Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// SIGKILL (crash); the process is reaped by a later wait/try_wait/drop.
    pub fn kill9(&mut self) -> Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// Exit status if it has exited (reaps it), None while it runs.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            match self.child.try_wait() {
                Ok(Some(s)) => self.reaped(s),
                Ok(None) => {}
                Err(e) => log!("waiting for {}: {e}", self.pid()),
            }
        }
        self.status
    }

    fn reaped(&mut self, s: ExitStatus) {
        self.status = Some(s);
        self.shared.unregister(self.child.id());
    }

    /// True while it has not exited.
    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, Duration::from_millis(20), || {
            self.try_wait().is_some()
        });
        self.status
    }

    /// SIGTERM, wait up to `timeout`, then SIGKILL its process group; reaps it.
    pub fn stop(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let pid = self.pid();
        if !exited_nowait(pid) {
            let _ = send_signal(pid as i32, libc::SIGTERM);
            wait_until(timeout, Duration::from_millis(20), || exited_nowait(pid));
        }
        // The leader is not reaped yet, so its pid still names our process group.
        if !exited_nowait(pid) {
            log!("{} did not exit on SIGTERM, sending SIGKILL", self.desc);
        }
        let _ = send_signal(-(pid as i32), libc::SIGKILL);
        match self.child.wait() {
            Ok(s) => self.reaped(s),
            Err(e) => {
                log!("waiting for {pid}: {e}");
                self.shared.unregister(pid);
            }
        }
        self.status.expect("reaped")
    }

    /// Path of the log file holding its stdout and stderr, if [`Netns::spawn`] made one.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Current contents of its log (stdout + stderr); empty without a log.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(STOP_TIMEOUT);
    }
}

/// A running tcpdump writing a pcap file; see [`Netns::capture`].
pub struct Capture {
    proc: Proc,
    pcap: PathBuf,
}

impl Capture {
    /// The pcap file (inside the topology's work dir, removed with the topology unless a
    /// test panicked).
    pub fn path(&self) -> &Path {
        &self.pcap
    }

    /// Waits up to `timeout` for tcpdump to finish by itself (packet count or duration).
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.proc.wait_timeout(timeout).is_some()
    }

    /// Stops tcpdump (it flushes the pcap) and returns a handle to read it.
    pub fn stop(mut self) -> Pcap {
        if self.proc.is_running() {
            // `timeout` relays SIGINT to tcpdump, which then flushes and exits.
            let _ = self.proc.signal(libc::SIGINT);
            self.proc.wait_timeout(STOP_TIMEOUT);
            self.proc.stop(STOP_TIMEOUT);
        }
        Pcap {
            path: self.pcap.clone(),
        }
    }
}

/// A finished capture.
pub struct Pcap {
    path: PathBuf,
}

impl Pcap {
    /// The pcap file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One line per packet matching `filter` ("" = all), as `tcpdump -n -e -tt -r` prints
    /// them (the file is read in the root namespace; no traffic is involved).
    pub fn lines(&self, filter: &str) -> Result<Vec<String>> {
        let mut cmd = Command::new("tcpdump");
        cmd.args(["-n", "-e", "-tt", "-Z", "root", "-r"])
            .arg(&self.path);
        if !filter.is_empty() {
            cmd.arg(filter);
        }
        let out = cmd.output().context("running tcpdump -r")?;
        if !out.status.success() {
            bail!(
                "tcpdump -r {}: {}",
                self.path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Number of packets matching `filter`.
    pub fn count(&self, filter: &str) -> Result<usize> {
        Ok(self.lines(filter)?.len())
    }
}

/// Bridge + r1/r2/client namespaces; see the crate docs. Everything is torn down on drop.
pub struct Topology {
    prefix: String,
    shared: Arc<Shared>,
    /// In creation order; the bridge namespace first.
    namespaces: Vec<Netns>,
}

impl Topology {
    /// Builds the topology for the test `name` (used in namespace names; non-alphanumerics
    /// become '_'). Namespaces of a crashed earlier run of the same test are removed first.
    pub fn new(name: &str) -> Result<Self> {
        if !is_root() {
            bail!("network namespaces need root");
        }
        let name = sanitize(name, 40);
        cleanup_stale(&name);
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{TAG}-{name}-{}-{seq}", std::process::id());
        let workdir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("creating {}", workdir.display()))?;
        // From here on, Drop cleans up whatever was created if a step fails.
        let mut topo = Topology {
            prefix,
            shared: Arc::new(Shared {
                workdir,
                procs: Mutex::new(BTreeSet::new()),
                seq: AtomicUsize::new(0),
            }),
            namespaces: Vec::new(),
        };
        topo.add_ns(BRIDGE)?;
        topo.add_bridge("br0")?;
        topo.add_host("r1", &format!("{R1_ADDR}/{PREFIX_LEN}"))?;
        topo.add_host("r2", &format!("{R2_ADDR}/{PREFIX_LEN}"))?;
        topo.add_host("client", &format!("{CLIENT_ADDR}/{PREFIX_LEN}"))?;
        Ok(topo)
    }

    fn add_ns(&mut self, role: &str) -> Result<String> {
        let role = sanitize(role, 13);
        if self.namespaces.iter().any(|n| n.role == role) {
            bail!("namespace role {role} already exists");
        }
        let name = format!("{}-{role}", self.prefix);
        ip(&["netns", "add", &name])?;
        self.namespaces.push(Netns {
            name: name.clone(),
            role,
            shared: self.shared.clone(),
        });
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    fn add_bridge(&self, bridge: &str) -> Result<()> {
        let br = &self.ns(BRIDGE).name;
        ip(&[
            "-n",
            br,
            "link",
            "add",
            bridge,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", br, "link", "set", bridge, "up"])
    }

    /// Adds another namespace `role` (≤ 13 alphanumerics) attached to the bridge by a veth
    /// pair: `eth0` inside it with address `cidr` (use 198.51.100.0/24 or 203.0.113.0/24),
    /// `p-<role>` in the bridge namespace.
    pub fn add_host(&mut self, role: &str, cidr: &str) -> Result<&Netns> {
        self.add_ns(role)?;
        let ns = self.namespaces.last().expect("just added");
        self.connect(ns, HOST_IFACE, "br0", "p", cidr)?;
        Ok(self.namespaces.last().expect("just added"))
    }

    /// Adds a host `role` on the second LAN only (see [`add_lan2_link`](Self::add_lan2_link)).
    pub fn add_lan2_host(&mut self, role: &str, cidr: &str) -> Result<&Netns> {
        self.add_ns(role)?;
        self.add_lan2_link(
            &self.namespaces.last().expect("just added").role,
            HOST_IFACE,
            cidr,
        )?;
        Ok(self.namespaces.last().expect("just added"))
    }

    /// Connects `host` to the second LAN (bridge `br1`, made on first use; use 203.0.113.0/24):
    /// `iface` inside it with address `cidr`, `q-<host>` in the bridge namespace.
    pub fn add_lan2_link(&self, host: &str, iface: &str, cidr: &str) -> Result<()> {
        if self.ns(BRIDGE).link_json(LAN2_BRIDGE).is_none() {
            self.add_bridge(LAN2_BRIDGE)?;
        }
        self.connect(self.ns(host), iface, LAN2_BRIDGE, "q", cidr)
    }

    /// A veth pair from `iface` in `ns` to port `<port>-<role>` on `bridge`.
    fn connect(&self, ns: &Netns, iface: &str, bridge: &str, port: &str, cidr: &str) -> Result<()> {
        let br = &self.ns(BRIDGE).name;
        let port = format!("{port}-{}", ns.role);
        // Both ends are created directly in their target namespaces, never in the root one.
        ip(&[
            "-n", br, "link", "add", &port, "type", "veth", "peer", "name", iface, "netns",
            &ns.name,
        ])?;
        ip(&["-n", br, "link", "set", &port, "master", bridge, "up"])?;
        ip(&["-n", &ns.name, "addr", "add", cidr, "dev", iface])?;
        ip(&["-n", &ns.name, "link", "set", iface, "up"])
    }

    /// `<prefix>` of all namespace names (`vt-<name>-<pid>-<seq>`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Directory for logs and pcaps; removed on drop unless the test is panicking.
    pub fn workdir(&self) -> &Path {
        &self.shared.workdir
    }

    /// The namespace with role `role` ("br", "r1", "r2", "client", ...). Panics if unknown.
    pub fn ns(&self, role: &str) -> &Netns {
        self.namespaces
            .iter()
            .find(|n| n.role == role)
            .unwrap_or_else(|| panic!("no namespace {role:?} in topology {}", self.prefix))
    }

    /// All namespaces, bridge first.
    pub fn namespaces(&self) -> impl Iterator<Item = &Netns> {
        self.namespaces.iter()
    }

    /// Full names of all namespaces.
    pub fn ns_names(&self) -> Vec<String> {
        self.namespaces.iter().map(|n| n.name.clone()).collect()
    }

    /// Pulls `host`'s cable: downs its port `p-<host>` in the bridge namespace, so the host's
    /// `eth0` loses carrier. Panics on failure.
    pub fn cut_link(&self, host: &str) {
        self.set_port_state("p", host, "down");
    }

    /// Undoes [`cut_link`](Self::cut_link).
    pub fn restore_link(&self, host: &str) {
        self.set_port_state("p", host, "up");
    }

    /// [`cut_link`](Self::cut_link) for `host`'s link to the second LAN.
    pub fn cut_lan2_link(&self, host: &str) {
        self.set_port_state("q", host, "down");
    }

    fn set_port_state(&self, port: &str, host: &str, state: &str) {
        let port = format!("{port}-{}", self.ns(host).role);
        ip(&["-n", &self.ns(BRIDGE).name, "link", "set", &port, state])
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Administratively downs `eth0` inside `host` (as `ip link set eth0 down` there would).
    pub fn link_down(&self, host: &str) {
        self.set_eth0(host, "down");
    }

    /// Brings `eth0` inside `host` back up.
    pub fn link_up(&self, host: &str) {
        self.set_eth0(host, "up");
    }

    fn set_eth0(&self, host: &str, state: &str) {
        ip(&["-n", &self.ns(host).name, "link", "set", HOST_IFACE, state])
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// See [`Netns::addrs`].
    pub fn addrs(&self, ns: &str, iface: &str) -> Vec<String> {
        self.ns(ns).addrs(iface)
    }

    /// See [`Netns::has_addr`].
    pub fn has_addr(&self, ns: &str, iface: &str, addr: &str) -> bool {
        self.ns(ns).has_addr(iface, addr)
    }

    /// See [`Netns::ping`].
    pub fn ping(&self, from_ns: &str, addr: &str, count: u32, timeout: Duration) -> bool {
        self.ns(from_ns).ping(addr, count, timeout)
    }

    fn stop_registered(&self) {
        let pids: Vec<u32> = self
            .shared
            .procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if pids.is_empty() {
            return;
        }
        // Unreaped children of ours: their pids can't be reused, so signalling is safe.
        for &pid in &pids {
            if !exited_nowait(pid) {
                log!("stopping pid {pid} still running at teardown (SIGTERM)");
                let _ = send_signal(pid as i32, libc::SIGTERM);
            }
        }
        wait_until(STOP_TIMEOUT, Duration::from_millis(20), || {
            pids.iter().all(|&p| exited_nowait(p))
        });
        for &pid in &pids {
            if !exited_nowait(pid) {
                log!("pid {pid} ignored SIGTERM, sending SIGKILL");
            }
            let _ = send_signal(-(pid as i32), libc::SIGKILL);
        }
        // Their Proc guards reap them when dropped.
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.stop_registered();
        for ns in self.namespaces.iter().rev() {
            kill_all_in_ns(&ns.name);
            if let Err(e) = ip(&["netns", "del", &ns.name]) {
                log!("{e:#}");
            }
        }
        let left: Vec<_> = list_netns()
            .into_iter()
            .filter(|n| n.starts_with(&format!("{}-", self.prefix)))
            .collect();
        if !left.is_empty() {
            log!("namespaces left behind: {left:?}");
        }
        if std::thread::panicking() {
            log!(
                "test failed: keeping logs and captures in {}",
                self.shared.workdir.display()
            );
        } else if let Err(e) = std::fs::remove_dir_all(&self.shared.workdir) {
            log!("removing {}: {e}", self.shared.workdir.display());
        }
    }
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

    #[test]
    fn wait_until_times_out_and_succeeds() {
        assert!(!wait_until(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || false
        ));
        let mut n = 0;
        assert!(wait_until(
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                n == 3
            }
        ));
    }
}
