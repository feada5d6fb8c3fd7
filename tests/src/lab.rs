//! A lab for end-to-end tests: the [`Topology`] with `vrrp-agent`s (from flags or from a
//! keepalived.conf) or keepalived started in its routers, and the observations the tests assert
//! on: log lines, transitions, VIP holders, what the client reaches, XDP attachment. Failure
//! messages carry every router's log.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::keepalived::Keepalived;
use crate::{wait_until, Proc, Topology};

pub const VIP: &str = "198.51.100.100";
pub const VIP_CIDR: &str = "198.51.100.100/24";
/// An IPv6 lab's VIPs: the link-local one first, as RFC 9568 wants for routers, then the one
/// clients use.
pub const VIP6_LINK_LOCAL: &str = "fe80::1";
pub const VIP6: &str = "2001:db8::100";
pub const VIP6_CIDR: &str = "2001:db8::100/64";

/// What the lab's instance runs VRRP over: the VIPs its agents get and the tests look for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The VIP clients reach.
    pub fn vip(self) -> &'static str {
        match self {
            Self::V4 => VIP,
            Self::V6 => VIP6,
        }
    }

    /// `--vip` arguments for the agent.
    pub fn vip_args(self) -> &'static [&'static str] {
        match self {
            Self::V4 => &["--vip", VIP_CIDR],
            Self::V6 => &["--vip", VIP6_LINK_LOCAL, "--vip", VIP6_CIDR],
        }
    }
}
pub const IFACE: &str = "eth0";
pub const ROUTERS: [&str; 2] = ["r1", "r2"];
pub const SEC: Duration = Duration::from_secs(1);
pub const POLL: Duration = Duration::from_millis(50);
/// Generous bound for anything that should take well under a second with 100 ms adverts.
pub const SETTLE: Duration = Duration::from_secs(10);

pub const XDP_NATIVE_LOG: &str = "receive path: XDP in native (driver) mode iface=eth0";
pub const XDP_SKB_LOG: &str = "receive path: XDP in SKB (generic) mode iface=eth0";
/// The default (`--xdp auto`) on the lab's veth interfaces.
pub const AUTO_VETH_LOG: &str = "receive path: TC ingress (veth) iface=eth0";
pub const RAW_SOCKET_LOG: &str = "receive path: raw socket (--xdp off) iface=eth0";

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

/// The VRRP implementation running in a router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// `vrrp-agent`.
    Ours,
    /// keepalived (see [`crate::keepalived`]).
    Keepalived,
}

impl Impl {
    pub fn other(self) -> Impl {
        match self {
            Impl::Ours => Impl::Keepalived,
            Impl::Keepalived => Impl::Ours,
        }
    }

    /// What its log says on entering `state` (MASTER, BACKUP, FAULT).
    pub fn entered(self, state: &str) -> String {
        match self {
            Impl::Ours => format!("-> {state}: "),
            Impl::Keepalived => format!("Entering {state} STATE"),
        }
    }
}

/// A topology with agents (or keepalived) started in its routers; everything ever started is
/// kept (restarted ones too), so a failure message can show all their logs.
pub struct Lab {
    // Before `topo`, so they drop first: keepalived stops (priority 0, VIPs removed) while the
    // namespaces still exist.
    keepalived: Vec<(&'static str, Keepalived)>,
    pub topo: Topology,
    bin: String,
    agents: Vec<(&'static str, Proc)>,
    /// What was started in each router, in order: the last one of a router runs there now.
    started: Vec<(&'static str, Impl)>,
    /// r1, r2 and those [`Lab::add_router`] added: where VIP holders are looked for.
    routers: Vec<&'static str>,
    pub family: Family,
}

impl Lab {
    pub fn new(name: &str) -> Self {
        // First, so a missing binary fails before any namespace exists.
        Self::with_agent(name, &agent_bin())
    }

    /// A lab whose agents run VRRP over `family`.
    pub fn of(family: Family, name: &str) -> Self {
        Self {
            family,
            ..Self::new(name)
        }
    }

    /// A lab whose agents run `bin` (the package's, a release build).
    pub fn with_agent(name: &str, bin: &std::path::Path) -> Self {
        let bin = bin.to_str().expect("UTF-8 path").to_owned();
        Lab {
            keepalived: Vec::new(),
            topo: Topology::new(name).unwrap(),
            bin,
            agents: Vec::new(),
            started: Vec::new(),
            routers: ROUTERS.to_vec(),
            family: Family::V4,
        }
    }

    /// Adds a router host `role` on the LAN with address `cidr` (see [`Topology::add_host`]).
    pub fn add_router(&mut self, role: &'static str, cidr: &str) {
        self.topo.add_host(role, cidr).unwrap();
        self.routers.push(role);
    }

    pub fn routers(&self) -> &[&'static str] {
        &self.routers
    }

    /// Starts an agent in `role` with `priority`; `extra` arguments are appended and may
    /// override the default `--advert-int 100ms`.
    pub fn start(&mut self, role: &'static str, priority: u8, extra: &[&str]) {
        let priority = priority.to_string();
        let mut args = vec!["--iface", IFACE, "--vrid", "51", "--priority", &priority];
        args.extend(self.family.vip_args());
        if !extra.contains(&"--advert-int") {
            args.extend(["--advert-int", "100ms"]);
        }
        args.extend(extra);
        self.spawn(role, &args);
    }

    fn spawn(&mut self, role: &'static str, args: &[&str]) {
        self.spawn_env(role, args, &[]);
    }

    fn spawn_env(&mut self, role: &'static str, args: &[&str], env: &[(&str, &str)]) {
        let env = [("RUST_LOG", "info")].iter().chain(env).copied();
        let proc = self.topo.ns(role).spawn_env(&self.bin, args, env);
        self.agents.push((role, proc));
        self.started.push((role, Impl::Ours));
    }

    /// Starts an agent in `role` running the keepalived.conf `conf` (written to the topology's
    /// work dir), plus `extra` arguments; returns the file's path (rewrite it and SIGHUP to reload).
    pub fn start_conf(&mut self, role: &'static str, conf: &str, extra: &[&str]) -> PathBuf {
        self.start_conf_env(role, conf, extra, &[])
    }

    /// [`Lab::start_conf`] with more environment for the agent (`NOTIFY_SOCKET`, ...).
    pub fn start_conf_env(
        &mut self,
        role: &'static str,
        conf: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> PathBuf {
        let path = self
            .topo
            .workdir()
            .join(format!("{role}-{}.conf", self.agents.len()));
        std::fs::write(&path, conf).expect("write keepalived.conf");
        let arg = path.to_str().expect("UTF-8 path").to_owned();
        let mut args = vec!["-f", arg.as_str()];
        args.extend(extra);
        self.spawn_env(role, &args, env);
        path
    }

    /// The agent binary's path.
    pub fn bin(&self) -> &str {
        &self.bin
    }

    /// `vrrp-agent status --json` of the agent in `role` (its namespace's default socket).
    #[track_caller]
    pub fn status_json(&self, role: &str) -> serde_json::Value {
        let out = self.topo.ns(role).run(self.bin(), ["status", "--json"]);
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(&text).unwrap_or_else(|e| self.fail(&format!("{e}: {text}")))
    }

    /// Starts keepalived in `role` running the keepalived.conf `conf` (see [`Keepalived::start`]).
    #[track_caller]
    pub fn start_keepalived(&mut self, role: &'static str, conf: &str) {
        let k = self.ok(Keepalived::start(&self.topo, role, conf));
        self.keepalived.push((role, k));
        self.started.push((role, Impl::Keepalived));
    }

    /// Starts `imp` in `role`, reading the keepalived.conf `conf`.
    #[track_caller]
    pub fn start_as(&mut self, role: &'static str, imp: Impl, conf: &str) {
        match imp {
            Impl::Ours => {
                self.start_conf(role, conf, &[]);
            }
            Impl::Keepalived => self.start_keepalived(role, conf),
        }
    }

    /// What was started last in `role`, if anything.
    pub fn started(&self, role: &str) -> Option<Impl> {
        let found = self.started.iter().rev().find(|(r, _)| *r == role);
        found.map(|&(_, imp)| imp)
    }

    /// What was started last in `role`. Panics if nothing was.
    pub fn imp(&self, role: &str) -> Impl {
        self.started(role)
            .unwrap_or_else(|| panic!("nothing started in {role}"))
    }

    /// The most recently started agent in `role`.
    pub fn agent(&mut self, role: &str) -> &mut Proc {
        self.agents
            .iter_mut()
            .rev()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p)
            .unwrap_or_else(|| panic!("no agent started in {role}"))
    }

    /// The most recently started keepalived in `role`.
    pub fn keepalived(&mut self, role: &str) -> &mut Keepalived {
        let found = self.keepalived.iter_mut().rev().find(|(r, _)| *r == role);
        &mut found.unwrap_or_else(|| panic!("no keepalived in {role}")).1
    }

    /// Drops the most recently started keepalived in `role` now (its drop stops it and removes
    /// the VIPs a killed one left behind); its log no longer shows in failure messages.
    pub fn drop_keepalived(&mut self, role: &str) {
        if let Some(i) = self.keepalived.iter().rposition(|(r, _)| *r == role) {
            drop(self.keepalived.remove(i));
        }
    }

    /// Current log of what was started last in `role`.
    pub fn log(&mut self, role: &str) -> String {
        match self.imp(role) {
            Impl::Ours => self.agent(role).log(),
            Impl::Keepalived => self.keepalived(role).log(),
        }
    }

    /// Every agent's and keepalived's log, plus the routers' addresses, for failure messages.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (role, k) in &self.keepalived {
            s += &format!(
                "--- keepalived in {role} (pids {:?}):\n{}",
                k.pids(),
                k.log()
            );
        }
        for (role, p) in &self.agents {
            s += &format!("--- agent in {role} (pid {}):\n{}", p.pid(), p.log());
        }
        for r in &self.routers {
            s += &format!("--- {r} {IFACE}: {:?}\n", self.topo.addrs(r, IFACE));
        }
        s
    }

    /// Panics with `msg` and all the logs.
    #[track_caller]
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.dump())
    }

    #[track_caller]
    pub fn check(&self, ok: bool, msg: &str) {
        if !ok {
            self.fail(msg);
        }
    }

    /// The value of `r`, or [`fail`](Self::fail) with its error.
    #[track_caller]
    pub fn ok<T>(&self, r: anyhow::Result<T>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => self.fail(&format!("{e:#}")),
        }
    }

    /// Waits until the log of what runs in `role`, from byte `since` on, has a line containing
    /// `needle`.
    #[track_caller]
    pub fn wait_log(&mut self, role: &str, since: usize, needle: &str, timeout: Duration) {
        let seen = wait_until(timeout, POLL, || {
            self.log(role).get(since..).unwrap_or("").contains(needle)
        });
        self.check(
            seen,
            &format!("{role} did not log {needle:?} within {timeout:?}"),
        );
    }

    /// The agent in `role` logs its status (SIGUSR1); waits for a line containing `needle`
    /// and returns the log from the signal on.
    #[track_caller]
    pub fn status(&mut self, role: &str, needle: &str) -> String {
        let mark = self.log_len(role);
        self.agent(role).signal(libc::SIGUSR1).unwrap();
        self.wait_log(role, mark, needle, SETTLE);
        self.log_since(role, mark)
    }

    /// The address `role`'s adverts come from: its IPv4 address, or its link-local one.
    pub fn source_addr(&self, role: &str) -> String {
        match self.family {
            Family::V4 => self.own_addr(role).to_owned(),
            Family::V6 => {
                let addrs = self.topo.ns(role).addrs(IFACE);
                let link_local = addrs
                    .iter()
                    .find(|a| a.starts_with("fe80::") && !a.starts_with("fe80::1/"));
                let link_local = link_local.unwrap_or_else(|| {
                    self.fail(&format!("{role} has no link-local address: {addrs:?}"))
                });
                link_local.split('/').next().unwrap_or_default().to_owned()
            }
        }
    }

    /// Waits until every router's link-local address is done with duplicate address detection,
    /// as on a host up for a while: keepalived, started earlier, fails its first sends from a
    /// tentative source ("send advert error 22"); the agent waits for it in FAULT.
    #[track_caller]
    pub fn wait_link_local(&self) {
        for r in self.routers.clone() {
            let ns = self.topo.ns(r);
            let done = wait_until(SETTLE, POLL, || {
                let out = ns.run("ip", ["-6", "addr", "show", "dev", IFACE, "scope", "link"]);
                let text = String::from_utf8_lossy(&out.stdout);
                text.contains("fe80::") && !text.contains("tentative")
            });
            self.check(
                done,
                &format!("{r}'s link-local address is still tentative"),
            );
        }
    }

    /// `role`'s own address of the lab's family (not a VIP).
    pub fn own_addr(&self, role: &str) -> &'static str {
        let addrs = match role {
            "r1" => [crate::R1_ADDR, crate::R1_ADDR6],
            "r2" => [crate::R2_ADDR, crate::R2_ADDR6],
            "client" => [crate::CLIENT_ADDR, crate::CLIENT_ADDR6],
            other => panic!("no fixed address for {other}"),
        };
        addrs[usize::from(self.family == Family::V6)]
    }

    /// Routers holding the VIP on eth0 (`ip addr`).
    pub fn holders(&self) -> Vec<&'static str> {
        self.holders_of(self.family.vip())
    }

    /// Routers holding `vip` on eth0.
    pub fn holders_of(&self, vip: &str) -> Vec<&'static str> {
        self.holders_on(IFACE, vip)
    }

    /// Routers holding `vip` on `iface`.
    pub fn holders_on(&self, iface: &str, vip: &str) -> Vec<&'static str> {
        let routers = self.routers.iter().copied();
        routers
            .filter(|r| self.topo.has_addr(r, iface, vip))
            .collect()
    }

    /// Waits until exactly the routers `want` hold the VIP.
    #[track_caller]
    pub fn wait_holders(&self, want: &[&str], timeout: Duration) {
        self.wait_holders_of(self.family.vip(), want, timeout);
    }

    /// Waits until exactly the routers `want` hold `vip`.
    #[track_caller]
    pub fn wait_holders_of(&self, vip: &str, want: &[&str], timeout: Duration) {
        self.wait_holders_on(IFACE, vip, want, timeout);
    }

    /// Waits until exactly the routers `want` hold `vip` on `iface`.
    #[track_caller]
    pub fn wait_holders_on(&self, iface: &str, vip: &str, want: &[&str], timeout: Duration) {
        let ok = wait_until(timeout, POLL, || self.holders_on(iface, vip) == want);
        self.check(
            ok,
            &format!(
                "{vip} holders on {iface}: want {want:?}, have {:?} after {timeout:?}",
                self.holders_on(iface, vip)
            ),
        );
    }

    /// Watches for `period` that the VIP holders stay `want` and that no agent logs a new
    /// transition to MASTER (a backup that stops hearing the master would).
    #[track_caller]
    pub fn assert_stable(&mut self, want: &[&str], period: Duration) {
        let marks: Vec<usize> = ROUTERS.iter().map(|r| self.log_len(r)).collect();
        let end = Instant::now() + period;
        while Instant::now() < end {
            let have = self.holders();
            self.check(
                have == want,
                &format!("VIP holders changed to {have:?}, want {want:?} throughout"),
            );
            std::thread::sleep(POLL * 2);
        }
        for (r, &mark) in ROUTERS.iter().zip(&marks) {
            let new = transitions(&self.log_since(r, mark));
            let became = new.iter().any(|t| t.to == "MASTER" && !want.contains(r));
            self.check(
                !became,
                &format!("{r} became MASTER while it should have stayed backup: {new:?}"),
            );
        }
    }

    /// Log length of what runs in `role` (0 if nothing), a mark for [`Lab::log_since`].
    pub fn log_len(&mut self, role: &str) -> usize {
        if self.started(role).is_some() {
            self.log(role).len()
        } else {
            0
        }
    }

    pub fn log_since(&mut self, role: &str, mark: usize) -> String {
        if self.started(role).is_none() {
            return String::new();
        }
        self.log(role).get(mark..).unwrap_or("").to_owned()
    }

    /// State after the last transition what runs in `role` logged.
    pub fn state(&mut self, role: &str) -> Option<String> {
        match self.imp(role) {
            Impl::Ours => transitions(&self.log(role)).pop().map(|t| t.to),
            Impl::Keepalived => self.keepalived(role).state(),
        }
    }

    #[track_caller]
    pub fn assert_state(&mut self, role: &str, want: &str) {
        let have = self.state(role);
        self.check(
            have.as_deref() == Some(want),
            &format!("{role} ({:?}) is in {have:?}, want {want}", self.imp(role)),
        );
    }

    /// Waits until what runs in `role` logs entering `state` after byte `since` of its log,
    /// then checks it is still there.
    #[track_caller]
    pub fn wait_entered(&mut self, role: &str, since: usize, state: &str, timeout: Duration) {
        let needle = self.imp(role).entered(state);
        self.wait_log(role, since, &needle, timeout);
        self.assert_state(role, state);
    }

    /// Waits until the client's ping to the VIP is answered and its neighbour entry for the
    /// VIP is `router`'s MAC (so `router` answered, reached through its gratuitous ARP or
    /// Neighbor Advertisement).
    #[track_caller]
    pub fn wait_client_reaches_vip_at(&self, router: &str, timeout: Duration) {
        let mac = self.topo.ns(router).mac(IFACE).expect("router MAC");
        let client = self.topo.ns("client");
        let vip = self.family.vip();
        let ok = wait_until(timeout, POLL, || {
            client.ping(vip, 1, SEC) && client.neigh_lladdr(vip).as_deref() == Some(&mac)
        });
        self.check(
            ok,
            &format!(
                "client did not reach the VIP at {router} ({mac}) within {timeout:?}; \
                 its neighbour entry: {:?}",
                client.neigh_lladdr(vip)
            ),
        );
    }

    /// trafgen in host `role` sends `frames` (in turn) out of its eth0, `count` in all, `gap`
    /// apart (zero: as fast as it can); it ends by itself, within `count` gaps and 5 s at the
    /// latest.
    pub fn send_frames(&self, role: &str, frames: &[Vec<u8>], gap: Duration, count: u32) -> Proc {
        let cfg = self.topo.workdir().join(format!("{role}-frames.cfg"));
        std::fs::write(&cfg, crate::frames::trafgen_config(frames, None)).unwrap();
        let bound = (gap * count + 5 * SEC).as_secs().to_string();
        let count = count.to_string();
        let mut args = vec![
            bound,
            "trafgen".into(),
            "--dev".into(),
            IFACE.into(),
            "--conf".into(),
            cfg.to_str().unwrap().into(),
            "--num".into(),
            count,
            "--cpus".into(),
            "1".into(),
            // Leave this host's socket memory sysctls and IRQ affinities alone.
            "--no-sock-mem".into(),
            "--notouch-irq".into(),
            "--no-cpu-stats".into(),
        ];
        if !gap.is_zero() {
            args.extend(["--gap".into(), format!("{}us", gap.as_micros())]);
        }
        self.topo.ns(role).spawn("timeout", &args)
    }

    /// The XDP program in `role`'s eth0, asserted to be the agent's, in `mode` ("driver",
    /// "skb").
    #[track_caller]
    pub fn assert_xdp(&self, role: &str, mode: &str) {
        let xdp = self.topo.ns(role).xdp(IFACE);
        let ok = xdp
            .as_ref()
            .is_some_and(|x| x.mode == mode && x.prog_name == "vrrp");
        self.check(
            ok,
            &format!(
                "{role} {IFACE}: want the vrrp XDP program in {mode} mode, ip link shows {xdp:?}"
            ),
        );
    }

    /// The agent in `role` holds a TCX ingress link on its eth0 (the `--xdp tc` path, and
    /// `auto`'s on veth), and no XDP program is attached there.
    #[track_caller]
    pub fn assert_tc(&mut self, role: &str) {
        let ifindex = self.topo.ns(role).ifindex(IFACE);
        let links = crate::processes::bpf_links(self.agent(role).pid());
        let ok = links.iter().any(|l| {
            l.link_type == "tcx"
                && l.ifindex == ifindex
                && l.attach_type
                    .as_deref()
                    .is_some_and(|a| a.contains("ingress"))
        });
        self.check(
            ok,
            &format!("{role} {IFACE} (ifindex {ifindex:?}): want a TCX ingress link, the agent holds {links:?}"),
        );
        self.assert_no_xdp(role);
    }

    #[track_caller]
    pub fn assert_no_xdp(&self, role: &str) {
        let xdp = self.topo.ns(role).xdp(IFACE);
        self.check(
            xdp.is_none(),
            &format!("{role} {IFACE}: want no XDP program, ip link shows {xdp:?}"),
        );
    }

    /// Starts r1 (200) and r2 (100) with `extra` arguments each and waits until r1 holds the
    /// VIP, r2 does not, and r2 is BACKUP.
    #[track_caller]
    pub fn elect_r1(&mut self, extra: &[&str], timeout: Duration) {
        self.start("r1", 200, extra);
        self.start("r2", 100, extra);
        self.wait_holders(&["r1"], timeout);
        self.wait_log("r2", 0, "-> BACKUP", timeout);
        self.assert_state("r1", "MASTER");
        self.assert_state("r2", "BACKUP");
    }

    /// From the r1-master state: SIGKILLs r1's agent and waits until r2 holds the VIP. The
    /// crashed agent cannot clean up, so r1 keeps the VIP too (keepalived behaves the same).
    #[track_caller]
    pub fn crash_r1(&mut self) {
        let mark = self.log_len("r2");
        let r1 = self.agent("r1");
        r1.kill9().unwrap();
        let status = r1.wait_timeout(5 * SEC);
        self.check(status.is_some(), "r1's agent did not die on SIGKILL");
        self.wait_log("r2", mark, "BACKUP -> MASTER", SETTLE);
        self.wait_holders(&["r1", "r2"], SETTLE);
    }
}

/// The number that follows the first `marker` in `log`: a count in an agent's status line.
pub fn count_after(log: &str, marker: &str) -> Option<u64> {
    let rest = log.split(marker).nth(1)?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// One `FROM -> TO: reason` line of an agent's log.
#[derive(Debug)]
pub struct Transition {
    pub to: String,
    #[allow(dead_code)] // shown in failure messages
    line: String,
}

pub fn transitions(log: &str) -> Vec<Transition> {
    log.lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("vrrp_agent::instance: ")?;
            let (states, _reason) = rest.split_once(": ")?;
            let (_from, to) = states.split_once(" -> ")?;
            Some(Transition {
                to: to.to_owned(),
                line: line.to_owned(),
            })
        })
        .collect()
}
