//! The agent: every instance of one configuration in one event loop. Inputs (adverts from the XDP
//! ring buffer or the raw sockets, interface and address changes, signals) arrive on one channel
//! from small tasks, check results on another; the loop hands each to the instances it concerns,
//! fires their timers and keeps the sync groups in step. One thread: the order of events is the
//! order they are handled.
//!
//! Errors follow one policy. Recoverable ones are logged with their reason, counted, and the loop
//! goes on: a failing output of an instance (its own module handles those), a status line that
//! cannot be read, a reload that cannot be applied. Fatal ones end the loop: an input task that
//! died (the agent would no longer hear its peers), the election timer failing, a panic. Every
//! exit, fatal or not, runs the hand-over first: priority-0 adverts, VIPs removed, the nftables
//! table removed.
//!
//! SIGHUP reloads in two phases: prepare (parse, start the new checks, open the new instances
//! on their interfaces, widen the firewall set) touches nothing that runs, and any failure there
//! refuses the whole reload; commit then stops the changed and removed instances and starts the
//! new ones. Instances and checks that did not change keep running untouched.
mod system;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr},
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{anyhow, Context as _, Result};
use futures::FutureExt as _;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

pub use system::System;

use crate::{
    clock,
    config::{
        keepalived::{self, Loaded, Place},
        Check, Config, Global, VrrpInstance,
    },
    election::{State, Timestamp},
    instance::{Instance, Outputs},
    net::{Change, Link, Links},
    notify::Notifier,
    sched, service,
    sync_group::{Command, Member, SyncGroups},
    track::{self, Checks},
};

/// Something for the loop to handle.
#[derive(Debug)]
pub enum Input {
    /// An IPv4 packet that may be an advert; `at` is the kernel's arrival time (XDP path);
    /// `reassembled` from fragments by the kernel (raw socket).
    Packet {
        ifindex: u32,
        at: Option<Timestamp>,
        bytes: Vec<u8>,
        reassembled: bool,
    },
    /// The kernel saw ARP claiming one of our VIPs from another MAC while we were master.
    ArpConflict {
        ifindex: u32,
        at: Timestamp,
        vip: Ipv4Addr,
        mac: [u8; 6],
    },
    /// `vrrp-agent status` asks (the control socket): the JSON answer goes back on the channel.
    Status(tokio::sync::oneshot::Sender<crate::control::Snapshot>),
    /// The liveness channel with master `change.peer` came up, or fell silent.
    Liveness {
        ifindex: u32,
        at: Timestamp,
        change: vrrp_common::liveness::LivenessChange,
    },
    /// The kernel's Master_Down timer of instance `vrid` on `ifindex` fired at `at`.
    MasterDown {
        ifindex: u32,
        vrid: u8,
        /// The instance runs VRRP over IPv6.
        v6: bool,
        at: Timestamp,
    },
    /// An interface or address changed; or the whole table again (notifications were lost).
    Change(Change),
    Resync(Links),
    Signal(Signal),
    /// An input task cannot go on: fatal.
    Failed(anyhow::Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: hand over and exit.
    Stop(&'static str),
    /// SIGHUP: reload the configuration file.
    Reload,
    /// SIGUSR1: one status line per instance.
    Status,
}

pub type Inputs = mpsc::Sender<Input>;

/// What the agent needs from the host besides the instances' own outputs.
#[allow(async_fn_in_trait)] // one thread: no Send bounds to name
pub trait Host {
    type Outputs: Outputs;
    /// The outputs of an instance, not bound to its interface yet.
    fn outputs(&mut self, config: &VrrpInstance, global: &Global) -> Self::Outputs;
    /// The interfaces of the network namespace now.
    async fn links(&mut self) -> Result<Links>;
    /// `no_accept`: packets to these VIPs are dropped while their instance is master.
    async fn set_no_accept(&mut self, vips: BTreeSet<IpAddr>) -> Result<()>;
}

/// Runs `config` until SIGTERM/SIGINT; SIGHUP re-reads `file` (the keepalived.conf it came from);
/// `vrrp-agent status` asks on the control socket at `control`. Exits with an error only after
/// the hand-over.
pub async fn run(loaded: Loaded, file: Option<PathBuf>, control: &Path) -> Result<()> {
    let config = &loaded.config;
    if !config.global.startup_delay.is_zero() {
        let delay = config.global.startup_delay;
        info!("vrrp_startup_delay: waiting {delay:?}");
        tokio::time::sleep(delay).await;
    }
    match config.global.rt_priority {
        0 => {}
        p => match sched::realtime(p) {
            Ok(()) => info!("scheduling: SCHED_RR priority {p}"),
            Err(e) => warn!(
                "cannot use realtime scheduling (SCHED_RR {p}): {e}; the election may run late \
                 on busy CPUs. Run as root or with CAP_SYS_NICE, or pass --rt-priority 0"
            ),
        },
    }
    let (tx, rx) = mpsc::channel(1024);
    system::forward_signals(&tx)?;
    let _control = crate::control::serve(control, &tx).with_context(|| {
        format!(
            "cannot listen on the control socket {}: choose another with --control-socket",
            control.display()
        )
    })?;
    let _metrics = match config.global.metrics_listen {
        Some(addr) => Some(crate::metrics::serve(addr, &tx).await.with_context(|| {
            format!("cannot serve metrics on {addr} (metrics_listen): is the port taken?")
        })?),
        None => None,
    };
    let host = System::new(config.global.xdp, tx)?;
    let agent = Agent::new(host, &loaded, file).await?;
    give_back_start_up_memory();
    agent.run(rx).await
}

/// Start-up (parsing the configuration and the kernel program's object, loading it) is the
/// heap's high-water mark; the loop needs a fraction of it. glibc keeps freed heap pages
/// resident until asked: this returns them, so the agent's resident set is what it uses.
fn give_back_start_up_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator; no pointer is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The instances of one configuration and what they share.
pub struct Agent<H: Host> {
    host: H,
    /// The running configuration, without `instances`: each [`Instance`] holds its own.
    config: Config,
    file: Option<PathBuf>,
    instances: Vec<Instance<H::Outputs>>,
    groups: SyncGroups,
    group_notifiers: BTreeMap<String, Notifier>,
    checks: Checks,
    links: Links,
    /// The VIPs the firewall drops traffic to (`no_accept`).
    no_accept: BTreeSet<IpAddr>,
    /// Recoverable errors of the loop itself (reloads refused, status unreadable).
    pub errors: u64,
    /// Each instance's state and priority as the service manager last heard them: the loop
    /// compares, and formats a status line only when one changed.
    reported: Vec<(State, u8)>,
}

/// A configuration ready to take over ([`Agent::prepare`]).
struct Plan<O> {
    config: Config,
    /// The interfaces as the new instances were opened on them.
    links: Links,
    /// For each running instance: whether it goes on unchanged.
    keep: Vec<bool>,
    added: Vec<Instance<O>>,
    checks: track::Prepared,
}

impl<H: Host> Agent<H> {
    /// Opens and starts the configuration; an error (a check that cannot run, an interface that
    /// cannot be opened) means nothing started.
    pub async fn new(mut host: H, loaded: &Loaded, file: Option<PathBuf>) -> Result<Self> {
        let links = host.links().await?;
        let mut agent = Self {
            host,
            config: Config {
                global: loaded.config.global.clone(),
                ..Config::default()
            },
            file,
            instances: Vec::new(),
            groups: SyncGroups::default(),
            group_notifiers: BTreeMap::new(),
            checks: Checks::default(),
            links,
            no_accept: BTreeSet::new(),
            errors: 0,
            reported: Vec::new(),
        };
        // A table a killed agent left behind goes, even when this configuration needs none
        // (then a failure only matters if a table is left: say so, and go on).
        if let Err(e) = agent.host.set_no_accept(BTreeSet::new()).await {
            warn!("{e:#}; a no_accept table left by an earlier run may remain");
        }
        let plan = agent.prepare(loaded).await?;
        agent.commit(plan).await;
        Ok(agent)
    }

    /// The loop, until SIGTERM/SIGINT or a fatal error; then the hand-over. A panic in the loop
    /// is fatal too, and hands over as well.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Input>) -> Result<()> {
        service::ready(&self.take_status());
        let result = AssertUnwindSafe(self.event_loop(&mut rx))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                Err(anyhow!(
                    "BUG: the event loop panicked: {}",
                    panic_text(&panic)
                ))
            });
        if let Err(e) = &result {
            error!("{e:#}; handing over and exiting");
        }
        self.shutdown().await;
        result
    }

    async fn event_loop(&mut self, rx: &mut mpsc::Receiver<Input>) -> Result<()> {
        let alarm =
            clock::Alarm::new().context("cannot create a timerfd for the election timers")?;
        // Told from the loop itself: a loop that is stuck is what the watchdog must catch.
        let mut watchdog = service::watchdog_interval().map(tokio::time::interval);
        loop {
            let deadline = self.instances.iter().filter_map(|i| i.wake_at()).min();
            let sleep = async {
                match deadline {
                    Some(at) => alarm.until(at).await,
                    None => std::future::pending().await,
                }
            };
            // Inputs first: an advert that is already here must reach the election before a
            // timer that would declare its sender dead.
            tokio::select! {
                biased;
                input = rx.recv() => {
                    if let Some(end) = self.take(input.context("every input task ended")?).await {
                        return end;
                    }
                }
                (name, up) = self.checks.changed() => {
                    let now = clock::now();
                    for i in &mut self.instances {
                        i.check_changed(&name, up, now).await;
                    }
                }
                woke = sleep => woke.context("election timer")?,
                _ = async {
                    match &mut watchdog {
                        Some(interval) => interval.tick().await,
                        None => std::future::pending().await,
                    }
                } => service::watchdog(),
            }
            // Due timers fire here, whichever branch woke the loop: after the alarm, and also
            // while a flood of inputs keeps the select from picking it.
            if deadline.is_some_and(|at| at <= clock::now()) {
                if let Some(end) = self.fire_timers(rx).await {
                    return end;
                }
            }
            self.start_ready().await;
            self.sync_groups().await;
            self.report_status();
        }
    }

    /// Each instance's name, state and priority, for the service manager; remembered as
    /// reported.
    fn take_status(&mut self) -> String {
        self.reported = self
            .instances
            .iter()
            .map(|i| (i.state(), i.priority()))
            .collect();
        let states: Vec<String> = self
            .instances
            .iter()
            .map(|i| format!("{} {} prio {}", i.name(), i.state(), i.priority()))
            .collect();
        states.join(", ")
    }

    /// Sends the status line when a transition or a priority change made it new: a comparison
    /// per pass of the loop, no formatting.
    fn report_status(&mut self) {
        let now = self.instances.iter().map(|i| (i.state(), i.priority()));
        if !now.eq(self.reported.iter().copied()) {
            let line = self.take_status();
            service::status(&line);
        }
    }

    /// Fires the due timers. keepalived's order: what has arrived is handled before a timer
    /// declares its sender dead. The XDP path reads the kernel's record for that; on the
    /// raw-socket path an advert may still sit in a socket: the readers get to move it (tokio
    /// polls the I/O driver before a yielded task runs again), and what is queued then is
    /// handled first, no more than that (a flood keeps refilling the queue).
    async fn fire_timers(&mut self, rx: &mut mpsc::Receiver<Input>) -> Option<Result<()>> {
        if self
            .instances
            .iter()
            .any(|i| i.master_down_due_unrecorded(clock::now()))
        {
            tokio::task::yield_now().await;
            for _ in 0..rx.len() {
                let Ok(input) = rx.try_recv() else {
                    break;
                };
                if let Some(end) = self.take(input).await {
                    return Some(end);
                }
            }
        }
        let now = clock::now();
        for i in &mut self.instances {
            i.on_timers(now).await;
        }
        None
    }

    /// Handles one input; `Some(result)` when it ends the loop (a stop signal, a fatal error).
    async fn take(&mut self, input: Input) -> Option<Result<()>> {
        match input {
            Input::Signal(Signal::Stop(name)) => {
                info!("{name}: handing over");
                Some(Ok(()))
            }
            Input::Failed(e) => Some(Err(e)),
            input => {
                self.handle(input).await;
                None
            }
        }
    }

    async fn handle(&mut self, input: Input) {
        let now = clock::now();
        match input {
            Input::Packet {
                ifindex,
                at,
                bytes,
                reassembled,
            } => {
                let at = at.unwrap_or(now);
                for i in self
                    .instances
                    .iter_mut()
                    .filter(|i| i.ifindex() == Some(ifindex))
                {
                    i.on_packet(&bytes, reassembled, at).await;
                }
            }
            Input::ArpConflict {
                ifindex,
                at,
                vip,
                mac,
            } => {
                for i in self.instances.iter_mut().filter(|i| i.ifindex().is_some()) {
                    i.arp_conflict(ifindex, vip, mac, at).await;
                }
            }
            Input::Liveness {
                ifindex,
                at,
                change,
            } => {
                // The liveness channel runs over IPv4 only.
                if let Some(i) = self.kernel_instance(ifindex, change.vrid, false) {
                    i.liveness_changed(change, at).await;
                }
            }
            Input::MasterDown {
                ifindex,
                vrid,
                v6,
                at,
            } => {
                if let Some(i) = self.kernel_instance(ifindex, vrid, v6) {
                    i.kernel_master_down(at, now).await;
                }
            }
            Input::Change(Change::Link { name, link }) => {
                for (name, link) in self.links.update(&name, link) {
                    self.link_changed(&name, link.as_ref(), now).await;
                }
            }
            Input::Change(Change::Address { index, addr, added }) => {
                for i in &mut self.instances {
                    i.address_changed(index, addr, added, &self.links, now)
                        .await;
                }
            }
            Input::Resync(links) => {
                for (name, link) in self.links.replace(links) {
                    self.link_changed(&name, link.as_ref(), now).await;
                }
                // Address changes were lost too.
                for i in &mut self.instances {
                    i.resync(&self.links, now).await;
                }
            }
            Input::Signal(Signal::Reload) => self.reload().await,
            Input::Signal(Signal::Status) => {
                let snapshot = self.snapshot(now);
                for i in &snapshot.instances {
                    let json = serde_json::to_value(i).unwrap_or_default();
                    info!(instance = %i.name, "status: {}", crate::control::line(&json));
                }
                for c in &snapshot.checks {
                    let json = serde_json::to_value(c).unwrap_or_default();
                    info!("status: {}", crate::control::check_line(&json));
                }
            }
            Input::Status(reply) => {
                let _ = reply.send(self.snapshot(now));
            }
            Input::Signal(Signal::Stop(_)) | Input::Failed(_) => {
                unreachable!("the loop ends on these")
            }
        }
    }

    /// What `vrrp-agent status` and `/metrics` show.
    fn snapshot(&self, now: Timestamp) -> crate::control::Snapshot {
        crate::control::Snapshot {
            version: crate::instance::STATUS_VERSION,
            instances: self.instances.iter().map(|i| i.status(now)).collect(),
            checks: self.checks.status(),
        }
    }

    /// The instance a kernel event is for: VRID `vrid` over IPv6 (`v6`) or IPv4 on interface
    /// `ifindex` (one VRID may run over both families).
    fn kernel_instance(
        &mut self,
        ifindex: u32,
        vrid: u8,
        v6: bool,
    ) -> Option<&mut Instance<H::Outputs>> {
        self.instances.iter_mut().find(|i| {
            i.ifindex() == Some(ifindex) && i.config.vrid == vrid && i.config.is_ipv6() == v6
        })
    }

    async fn link_changed(&mut self, name: &str, link: Option<&Link>, now: Timestamp) {
        for i in &mut self.instances {
            i.link_changed(name, link, &self.links, now).await;
        }
    }

    /// SIGHUP: re-reads the file; a configuration that cannot be applied is refused and the
    /// running one stays, untouched.
    async fn reload(&mut self) {
        let Some(path) = self.file.clone() else {
            warn!("SIGHUP: nothing to reload, the configuration came from the command line");
            return;
        };
        service::reloading();
        self.reload_from(&path).await;
        service::ready(&self.take_status());
    }

    async fn reload_from(&mut self, path: &Path) {
        let loaded = match keepalived::load(path) {
            Ok(loaded) => loaded,
            Err(errors) => {
                for e in &errors {
                    error!("{e}");
                }
                return self.refused(&format!("{} has errors", path.display()));
            }
        };
        for w in &loaded.warnings {
            warn!("{w}");
        }
        match self.prepare(&loaded).await {
            Ok(plan) => self.commit(plan).await,
            Err(e) => self.refused(&format!("{e:#}")),
        }
    }

    fn refused(&mut self, why: &str) {
        self.errors += 1;
        error!("SIGHUP: {why}; still running the previous configuration");
    }

    /// Everything the loaded configuration needs that can fail, with nothing running touched:
    /// its checks started, its new instances opened on their interfaces, the firewall set
    /// widened to both. Errors name the FILE:LINE of what they are about.
    async fn prepare(&mut self, loaded: &Loaded) -> Result<Plan<H::Outputs>> {
        let mut new = loaded.config.clone();
        if new.global != self.config.global && !self.instances.is_empty() {
            warn!("SIGHUP: global_defs and vrrp_agent changes apply at the next restart");
        }
        // global_defs stay as they were until a restart.
        new.global = self.config.global.clone();
        let keep: Vec<bool> = self
            .instances
            .iter()
            .map(|i| unchanged(&i.config, &self.config, &new))
            .collect();
        let configs: Vec<VrrpInstance> = std::mem::take(&mut new.instances)
            .into_iter()
            .filter(|n| {
                !self
                    .instances
                    .iter()
                    .zip(&keep)
                    .any(|(i, k)| *k && i.config == *n)
            })
            .collect();

        let tracked: BTreeSet<&str> = self
            .instances
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .flat_map(|(i, _)| i.tracked_checks())
            .chain(
                configs
                    .iter()
                    .flat_map(|c| c.track_checks.iter().map(|t| t.name.as_str())),
            )
            .collect();
        let wanted: Vec<Check> = new
            .checks
            .iter()
            .filter(|c| tracked.contains(c.name.as_str()))
            .cloned()
            .collect();
        let checks = self
            .checks
            .prepare(&wanted, &new.global)
            .map_err(|e| anyhow!("{}{e}", at(loaded.check_place(e.check()))))?;

        // The instances already running learn of this table's changes at the commit.
        let links = self.host.links().await?;
        let mut added = Vec::new();
        for config in configs {
            let outputs = self.host.outputs(&config, &new.global);
            let name = config.name.clone();
            let mut instance = Instance::new(config, &new.checks, outputs);
            instance.bind(&links).await.map_err(|e| {
                anyhow!(
                    "{}vrrp_instance {name}: {e}",
                    at(loaded.instance_place(&name))
                )
            })?;
            added.push(instance);
        }

        let staying = self
            .instances
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(i, _)| i);
        let now: BTreeSet<IpAddr> = staying
            .flat_map(Instance::no_accept_vips)
            .chain(added.iter().flat_map(Instance::no_accept_vips))
            .collect();
        // Until the old instances stop, their VIPs stay in the set too.
        let union: BTreeSet<IpAddr> = now.union(&self.no_accept).copied().collect();
        if union != self.no_accept {
            self.set_no_accept(union).await?;
        }
        new.instances = Vec::new();
        Ok(Plan {
            config: new,
            links,
            keep,
            added,
            checks,
        })
    }

    /// Puts a prepared configuration in force: changed and removed instances stop (priority-0
    /// advert, VIPs removed), the new ones start once their checks have a first result.
    async fn commit(&mut self, plan: Plan<H::Outputs>) {
        let now = clock::now();
        let stopping = plan.keep.iter().filter(|k| !**k).count();
        // One at a time and in place, so a panic half-way still finds the others to hand over.
        for n in (0..plan.keep.len()).rev().filter(|&n| !plan.keep[n]) {
            let instance = &mut self.instances[n];
            info!(instance = %instance.name(), "settings changed or removed: stopping it");
            instance.shutdown(now).await;
            instance.unbind();
            let stopped = self.instances.remove(n);
            // A member restarted under the same name starts afresh in its sync group.
            self.groups.forget(stopped.name());
        }
        if !self.instances.is_empty() || stopping > 0 {
            info!(
                "SIGHUP: {} instance(s) unchanged, {stopping} stopped, {} starting",
                self.instances.len(),
                plan.added.len()
            );
        }
        self.checks.commit(plan.checks);
        // Link changes the new table holds that no event will tell again.
        for (name, link) in self.links.replace(plan.links) {
            self.link_changed(&name, link.as_ref(), now).await;
        }
        for mut instance in plan.added {
            let checks = &self.checks;
            instance.init_tracks(&self.links, |name| checks.state(name));
            self.instances.push(instance);
        }
        self.config = plan.config;
        self.groups.reconfigure(&self.config.sync_groups);
        self.group_notifiers = self
            .config
            .sync_groups
            .iter()
            .map(|g| {
                let owner = format!("vrrp_sync_group {}", g.name);
                let notifier = Notifier::resolve(&owner, &g.notify, &self.config.global);
                (g.name.clone(), notifier)
            })
            .collect();
        let exact: BTreeSet<IpAddr> = self
            .instances
            .iter()
            .flat_map(Instance::no_accept_vips)
            .collect();
        if exact != self.no_accept {
            if let Err(e) = self.set_no_accept(exact).await {
                self.errors += 1;
                warn!("{e:#}; the rules of the stopped instances stay until the next change");
            }
        }
        self.start_ready().await;
        self.sync_groups().await;
    }

    async fn set_no_accept(&mut self, vips: BTreeSet<IpAddr>) -> Result<()> {
        if !vips.is_empty() {
            let list: Vec<String> = vips.iter().map(ToString::to_string).collect();
            info!("no_accept: a master drops traffic to {}", list.join(" "));
        }
        self.host.set_no_accept(vips.clone()).await?;
        self.no_accept = vips;
        Ok(())
    }

    /// Starts the instances whose checks all have a first result.
    async fn start_ready(&mut self) {
        let now = clock::now();
        for i in &mut self.instances {
            if !i.started() && i.ready() {
                i.start(now).await;
            }
        }
    }

    /// Lets the sync groups act on the instances' states until they are settled.
    async fn sync_groups(&mut self) {
        let now = clock::now();
        loop {
            let instances = &self.instances;
            let commands = self.groups.step(|name| {
                let i = instances.iter().find(|i| i.name() == name && i.started())?;
                Some(Member {
                    state: i.state(),
                    own_fault: i.own_fault(),
                })
            });
            if commands.is_empty() {
                return;
            }
            for command in commands {
                match command {
                    Command::Hold { member, cause } => {
                        if let Some(i) = self.instance_mut(&member) {
                            i.hold(cause, now).await;
                        }
                    }
                    Command::Follow { member, event } => {
                        if let Some(i) = self.instance_mut(&member) {
                            i.follow(event, now).await;
                        }
                    }
                    Command::Notify { group, state } => {
                        if let Some(n) = self.group_notifiers.get(&group) {
                            n.group(&group, state);
                        }
                    }
                }
            }
        }
    }

    fn instance_mut(&mut self, name: &str) -> Option<&mut Instance<H::Outputs>> {
        self.instances.iter_mut().find(|i| i.name() == name)
    }

    /// Each master says goodbye (priority-0 advert) and drops its VIPs; the firewall table goes;
    /// then, on the XDP path, the agent waits for the new masters before it exits.
    async fn shutdown(&mut self) {
        service::stopping();
        let now = clock::now();
        let mut resigned = Vec::new();
        for (n, i) in self.instances.iter_mut().enumerate() {
            if i.state() == State::Master {
                resigned.push(n);
            }
            i.shutdown(now).await;
        }
        if !self.no_accept.is_empty() {
            if let Err(e) = self.set_no_accept(BTreeSet::new()).await {
                error!("{e:#}; remove the table by hand: nft delete table inet vrrp_agent");
            }
        }
        let resigned: Vec<&Instance<H::Outputs>> =
            resigned.iter().map(|&n| &self.instances[n]).collect();
        await_successors(resigned, now).await;
        for i in &mut self.instances {
            i.unbind();
        }
    }
}

/// Whether `old` runs on unchanged under `new`: the same settings, the same definitions of the
/// checks it tracks, the same sync group.
fn unchanged(old: &VrrpInstance, running: &Config, new: &Config) -> bool {
    let same_checks = old.track_checks.iter().all(|t| {
        let find = |list: &[Check]| list.iter().find(|c| c.name == t.name).cloned();
        find(&running.checks) == find(&new.checks)
    });
    let group = |c: &Config| {
        c.sync_groups
            .iter()
            .find(|g| g.members.contains(&old.name))
            .cloned()
    };
    new.instances.contains(old) && same_checks && group(running) == group(new)
}

/// Longest wait for a new master at exit: covers Skew_Time for adverts up to 1 s.
const SUCCESSOR_WAIT_MAX: Duration = Duration::from_secs(2);

/// Exiting detaches the XDP program, which holds the kernel's RTNL lock for an RCU grace period
/// (10-20 ms measured on veth). A backup on the same kernel (containers, namespaces) that takes
/// over after our goodbye would wait that long to add its VIPs, so the agent stays until each
/// resigned instance hears its new master: a Skew_Time after the goodbye, at most two advert
/// intervals (the longest Skew_Time plus an advert), and never more than [`SUCCESSOR_WAIT_MAX`].
/// On the raw-socket path there is no kernel record to read and nothing to wait for.
async fn await_successors<O: Outputs>(mut waiting: Vec<&Instance<O>>, goodbye: Timestamp) {
    waiting.retain(|i| i.records_adverts());
    let wait = |i: &&Instance<O>| (2 * i.config.advert_interval).min(SUCCESSOR_WAIT_MAX);
    let Some(bound) = waiting.iter().map(wait).max() else {
        return;
    };
    loop {
        let waited = Duration::from_nanos(clock::now().0.saturating_sub(goodbye.0));
        waiting.retain(|i| match i.successor(goodbye) {
            Some(src) => {
                info!(instance = %i.name(), "new master {src} heard {waited:?} after the goodbye");
                false
            }
            None => true,
        });
        if waiting.is_empty() || waited >= bound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for i in waiting {
        info!(instance = %i.name(), "no new master heard within {bound:?} of the goodbye");
    }
}

/// `FILE:LINE: ` for an error about something defined there.
fn at(place: Option<&Place>) -> String {
    place.map(|p| format!("{p}: ")).unwrap_or_default()
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
