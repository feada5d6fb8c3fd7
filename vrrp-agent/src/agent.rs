//! The agent: every instance of one configuration in one event loop. Inputs (adverts from the XDP
//! ring buffer or the raw sockets, link changes, health-check changes) arrive on one channel from
//! small tasks; the loop hands each to the instances it concerns and fires their timers. SIGHUP
//! reloads the configuration file (unchanged instances keep their state and VIPs); SIGTERM/SIGINT
//! hand over (priority-0 adverts, VIPs removed, then a wait for the new master). One thread: the
//! order of events is the order they are handled.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::mpsc,
    task::JoinHandle,
};
use tracing::{error, info, warn};

use crate::{
    clock,
    config::{self, keepalived, Config, SyncGroup, XdpMode},
    dataplane::Dataplane,
    election::{Event, State, Timestamp},
    instance::{Instance, Kind},
    net::{AdvertReceiver, Firewall, Interface, LinkMonitor, Netlink},
    notify::Notifier,
    sched, track,
};

/// Something for the instances to handle.
enum Input {
    /// An IPv4 packet that may be an advert; `at` is the kernel's arrival time (XDP path).
    Packet {
        ifindex: u32,
        at: Option<Timestamp>,
        bytes: Vec<u8>,
    },
    Tracked {
        kind: Kind,
        name: String,
        up: bool,
    },
    /// A receive or monitoring task cannot go on.
    Failed(anyhow::Error),
}

type Inputs = mpsc::Sender<Input>;

/// Runs `config` until SIGTERM/SIGINT; SIGHUP re-reads `file` (the keepalived.conf it came from).
pub async fn run(config: Config, file: Option<PathBuf>) -> Result<()> {
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
    let (tx, mut rx) = mpsc::channel(1024);
    let mut agent = Agent::new(config, tx).await?;
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).context("SIGUSR1 handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let alarm = clock::Alarm::new().context("cannot create a timerfd for the election timers")?;
    loop {
        let deadline = agent
            .instances
            .iter()
            .filter_map(|i| i.next_deadline().map(|(_, at)| at))
            .min();
        let sleep = async {
            match deadline {
                Some(at) => alarm.until(at).await,
                None => std::future::pending().await,
            }
        };
        // Inputs first: an advert that is already here must reach the election before a timer
        // that would declare its sender dead.
        tokio::select! {
            biased;
            _ = sigterm.recv() => { info!("SIGTERM: handing over"); break; }
            _ = sigint.recv() => { info!("SIGINT: handing over"); break; }
            _ = sigusr1.recv() => agent.log_status()?,
            _ = sighup.recv() => match &file {
                Some(path) => agent.reload(path).await?,
                None => warn!("SIGHUP: nothing to reload, the configuration came from the command line"),
            },
            input = rx.recv() => agent.handle(input.context("all input tasks ended")?).await?,
            woke = sleep => {
                woke.context("election timer")?;
                agent.on_timers().await?;
            }
        }
        agent.sync_groups().await?;
    }
    agent.shutdown().await
}

struct Agent {
    /// The running configuration, without `instances`: each [`Instance`] holds its own.
    config: Config,
    nl: Netlink,
    tx: Inputs,
    instances: Vec<Instance>,
    groups: Groups,
    /// The states the sync groups last acted on, by instance.
    states: Vec<State>,
    dp: Option<Dataplane>,
    /// Interfaces with a receive path (XDP attached, or a raw-socket task).
    receiving: BTreeSet<u32>,
    /// Tracked interfaces and checks by name, with their last known state.
    links: BTreeMap<String, bool>,
    checks: BTreeMap<String, bool>,
    checks_task: Option<JoinHandle<()>>,
    firewall: Firewall,
}

impl Agent {
    async fn new(mut config: Config, tx: Inputs) -> Result<Self> {
        let instances = std::mem::take(&mut config.instances);
        let mut agent = Self {
            nl: Netlink::connect().context("cannot open rtnetlink")?,
            config,
            tx,
            instances: Vec::new(),
            groups: Groups(Vec::new()),
            states: Vec::new(),
            dp: None,
            receiving: BTreeSet::new(),
            links: BTreeMap::new(),
            checks: BTreeMap::new(),
            checks_task: None,
            firewall: Firewall::default(),
        };
        let xdp = agent.config.global.xdp;
        agent.add(instances, xdp).await?;
        Ok(agent)
    }

    /// Opens and starts `configs` (after the others already running), with what they need: a
    /// receive path on their interfaces, link monitors, checks, sync groups.
    async fn add(&mut self, configs: Vec<config::VrrpInstance>, xdp: XdpMode) -> Result<()> {
        let first = self.instances.len();
        for ic in configs {
            let name = ic.name.clone();
            let notifier = Notifier::resolve(
                &format!("vrrp_instance {name}"),
                &ic.notify,
                &self.config.global,
            );
            let instance = Instance::open(ic, &self.nl, &self.config.checks, notifier)
                .await
                .with_context(|| format!("instance {name}"))?;
            self.instances.push(instance);
        }
        self.receive_path(xdp, first)?;
        self.monitor_links().await?;
        self.restart_checks().await?;
        self.groups = Groups::new(&self.config, &mut self.instances);
        // Before any new instance can become master; the first time it also clears the table a
        // killed agent left behind.
        self.apply_no_accept(first == 0).await?;
        let now = clock::now();
        for i in first..self.instances.len() {
            let instance = &mut self.instances[i];
            let tracked = self.links.iter().map(|(n, up)| (Kind::Interface, n, *up));
            let tracked = tracked.chain(self.checks.iter().map(|(n, up)| (Kind::Check, n, *up)));
            for (kind, name, up) in tracked {
                instance
                    .on_tracked(kind, name, up, now, self.dp.as_mut())
                    .await?;
            }
            instance.start(now, self.dp.as_mut()).await?;
        }
        self.states = self.instances.iter().map(Instance::state).collect();
        // The new instances' first states are the groups' starting point too.
        for i in first..self.states.len() {
            self.states[i] = State::Initialize;
        }
        self.sync_groups().await
    }

    /// SIGHUP: re-reads `path`. Instances whose settings (and checks, and sync group) did not
    /// change keep running untouched; the others stop and the new ones start. A bad file is
    /// refused and the running configuration stays.
    async fn reload(&mut self, path: &Path) -> Result<()> {
        let mut new = match keepalived::load(path) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    warn!("{w}");
                }
                loaded.config
            }
            Err(errors) => {
                for e in &errors {
                    error!("{e}");
                }
                error!(
                    "SIGHUP: {} has errors; still running the previous configuration",
                    path.display()
                );
                return Ok(());
            }
        };
        if new.global != self.config.global {
            warn!("SIGHUP: global_defs and vrrp_agent changes apply at the next restart");
        }
        let unchanged = |old: &config::VrrpInstance| {
            new.instances.iter().any(|n| n == old)
                && same_checks(old, &self.config.checks, &new.checks)
                && group_of(&old.name, &self.config.sync_groups)
                    == group_of(&old.name, &new.sync_groups)
        };
        let keep: Vec<bool> = self
            .instances
            .iter()
            .map(|i| unchanged(&i.config))
            .collect();
        let now = clock::now();
        let mut kept = Vec::new();
        for (mut instance, keep) in std::mem::take(&mut self.instances).into_iter().zip(&keep) {
            if *keep {
                kept.push(instance);
                continue;
            }
            info!(instance = %instance.name(), "SIGHUP: settings changed or removed, stopping it");
            instance.shutdown(now, self.dp.as_mut()).await?;
            if let Some(dp) = &mut self.dp {
                dp.remove_instance(&instance.key)?;
            }
        }
        let added: Vec<config::VrrpInstance> = std::mem::take(&mut new.instances)
            .into_iter()
            .filter(|n| !kept.iter().any(|k| &k.config == n))
            .collect();
        info!(
            "SIGHUP: {} instance(s) unchanged, {} stopped, {} starting",
            kept.len(),
            keep.iter().filter(|k| !**k).count(),
            added.len()
        );
        self.instances = kept;
        // global_defs stay as they were until a restart.
        self.config = Config {
            global: std::mem::take(&mut self.config.global),
            ..new
        };
        // New interfaces get the path the others have: XDP if it is live, else raw sockets.
        let xdp = match self.dp {
            Some(_) => self.config.global.xdp,
            None => XdpMode::Off,
        };
        self.add(added, xdp).await
    }

    /// Receive paths for the interfaces of `instances[first..]` that have none yet: XDP when it
    /// is (or was) live, else raw sockets; one log line per interface says which.
    fn receive_path(&mut self, mode: XdpMode, first: usize) -> Result<()> {
        let mut new: Vec<&Interface> = Vec::new();
        for i in &self.instances[first..] {
            if !self.receiving.contains(&i.iface.index)
                && !new.iter().any(|f| f.index == i.iface.index)
            {
                new.push(&i.iface);
            }
        }
        let xdp_error = match (mode, &mut self.dp) {
            (XdpMode::Off, _) => None,
            (_, Some(dp)) => attach(dp, mode, &new).err(),
            (_, None) => match Dataplane::load().map_err(Into::into).and_then(|mut dp| {
                attach(&mut dp, mode, &new)?;
                spawn_events(&mut dp, &self.tx)?;
                Ok(dp)
            }) {
                Ok(dp) => {
                    self.dp = Some(dp);
                    None
                }
                Err(e) => Some(e),
            },
        };
        match (&mut self.dp, &xdp_error) {
            (Some(dp), None) if mode != XdpMode::Off => {
                for i in &self.instances[first..] {
                    // The NIC's multicast filter must still let the VRRP group in.
                    i.sender().join_vrrp_group()?;
                    dp.set_instance(i.key, i.kernel_config())?;
                    for vip in i.config.vips.iter().chain(&i.config.excluded_vips) {
                        dp.watch_vip(vip.addr)?;
                    }
                }
            }
            _ => {
                for iface in &new {
                    match &xdp_error {
                        None => info!(iface = %iface.name, "receive path: raw socket (--xdp off)"),
                        Some(e) => {
                            warn!(iface = %iface.name, "receive path: raw socket, XDP unavailable: {e:#}")
                        }
                    }
                    spawn_socket(iface, &self.tx)?;
                }
            }
        }
        self.receiving.extend(new.iter().map(|i| i.index));
        Ok(())
    }

    /// A link monitor for every tracked interface that has none yet; its state now goes in
    /// `links`, its changes come through the channel.
    async fn monitor_links(&mut self) -> Result<()> {
        let names: BTreeSet<String> = self
            .instances
            .iter()
            .flat_map(|i| i.tracked_interfaces().map(str::to_owned))
            .filter(|n| !self.links.contains_key(n))
            .collect();
        for name in names {
            let index = Interface::link(&self.nl, &name).await?.index;
            let mut link = LinkMonitor::new(index)?;
            self.links.insert(name.clone(), link.is_up().await?);
            let tx = self.tx.clone();
            tokio::spawn(async move {
                loop {
                    let input = match link.changed().await {
                        Ok(up) => Input::Tracked {
                            kind: Kind::Interface,
                            name: name.clone(),
                            up,
                        },
                        Err(e) => Input::Failed(e.into()),
                    };
                    if tx.send(input).await.is_err() {
                        return;
                    }
                }
            });
        }
        Ok(())
    }

    /// (Re)starts the checks the instances track; their states now go in `checks`.
    async fn restart_checks(&mut self) -> Result<()> {
        let used: BTreeSet<&str> = self
            .instances
            .iter()
            .flat_map(|i| i.tracked_checks())
            .collect();
        let scripts: Vec<_> = self
            .config
            .checks
            .iter()
            .filter(|s| used.contains(s.name.as_str()))
            .cloned()
            .collect();
        if let Some(task) = self.checks_task.take() {
            task.abort();
        }
        let mut checks = track::spawn(&scripts, &self.config.global)?;
        // A check's first result decides its state (keepalived); start from real states.
        checks.ready().await;
        self.checks = scripts
            .iter()
            .map(|s| (s.name.clone(), checks.is_up(&s.name)))
            .collect();
        let tx = self.tx.clone();
        self.checks_task = Some(tokio::spawn(async move {
            while let Some((name, up)) = checks.changed().await {
                let input = Input::Tracked {
                    kind: Kind::Check,
                    name,
                    up,
                };
                if tx.send(input).await.is_err() {
                    return;
                }
            }
        }));
        Ok(())
    }

    async fn handle(&mut self, input: Input) -> Result<()> {
        let dp = &mut self.dp;
        match input {
            Input::Packet { ifindex, at, bytes } => {
                let at = at.unwrap_or_else(clock::now);
                for i in self
                    .instances
                    .iter_mut()
                    .filter(|i| i.key.ifindex == ifindex)
                {
                    i.on_packet(&bytes, at, dp.as_mut()).await?;
                }
            }
            Input::Tracked { kind, name, up } => {
                let states = if kind == Kind::Interface {
                    &mut self.links
                } else {
                    &mut self.checks
                };
                states.insert(name.clone(), up);
                let now = clock::now();
                for i in &mut self.instances {
                    i.on_tracked(kind, &name, up, now, dp.as_mut()).await?;
                }
            }
            Input::Failed(e) => return Err(e),
        }
        Ok(())
    }

    async fn on_timers(&mut self) -> Result<()> {
        let now = clock::now();
        for i in &mut self.instances {
            i.on_timers(now, self.dp.as_mut()).await?;
        }
        Ok(())
    }

    async fn sync_groups(&mut self) -> Result<()> {
        self.groups
            .sync(&mut self.instances, &mut self.states, self.dp.as_mut())
            .await
    }

    fn log_status(&self) -> Result<()> {
        for i in &self.instances {
            i.log_status(clock::now(), self.dp.as_ref())?;
        }
        Ok(())
    }

    /// `no_accept`: the firewall drops traffic to these instances' VIPs (net/firewall.rs).
    async fn apply_no_accept(&mut self, always: bool) -> Result<()> {
        let vips: BTreeSet<_> = self
            .instances
            .iter()
            .flat_map(Instance::no_accept_vips)
            .collect();
        if !always && vips == *self.firewall.dropped() {
            return Ok(());
        }
        if !vips.is_empty() {
            let list: Vec<String> = vips.iter().map(ToString::to_string).collect();
            info!("no_accept: a master drops traffic to {}", list.join(" "));
        }
        Ok(self.firewall.apply(vips).await?)
    }

    /// Each master says goodbye (priority-0 advert) and drops its VIPs; then, on the XDP path,
    /// the agent waits for the new masters before it exits.
    async fn shutdown(&mut self) -> Result<()> {
        let now = clock::now();
        let mut resigned = Vec::new();
        for (n, i) in self.instances.iter_mut().enumerate() {
            if i.state() == State::Master {
                resigned.push(n);
            }
            i.shutdown(now, self.dp.as_mut()).await?;
        }
        if !self.firewall.dropped().is_empty() {
            self.firewall.apply(BTreeSet::new()).await?;
        }
        if let Some(dp) = &self.dp {
            let resigned: Vec<&Instance> = resigned.iter().map(|&n| &self.instances[n]).collect();
            await_successors(resigned, dp, now).await;
        }
        Ok(())
    }
}

/// Longest wait for a new master at exit: covers Skew_Time for adverts up to 1 s.
const SUCCESSOR_WAIT_MAX: Duration = Duration::from_secs(2);

/// Exiting detaches the XDP program, which holds the kernel's RTNL lock for an RCU grace period
/// (10-20 ms measured on veth). A backup on the same kernel (containers, namespaces) that takes
/// over after our goodbye would wait that long to add its VIPs, so the agent stays until each
/// resigned instance hears its new master: a Skew_Time after the goodbye, at most two advert
/// intervals (the longest Skew_Time plus an advert), and never more than [`SUCCESSOR_WAIT_MAX`].
async fn await_successors(mut waiting: Vec<&Instance>, dp: &Dataplane, goodbye: Timestamp) {
    let wait = |i: &&Instance| (2 * i.config.advert_interval).min(SUCCESSOR_WAIT_MAX);
    let Some(bound) = waiting.iter().map(wait).max() else {
        return;
    };
    loop {
        let waited = Duration::from_nanos(clock::now().0.saturating_sub(goodbye.0));
        waiting.retain(|i| match i.successor(goodbye, dp) {
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

/// Whether the checks `instance` tracks are defined the same in both script lists.
fn same_checks(
    instance: &config::VrrpInstance,
    old: &[config::Check],
    new: &[config::Check],
) -> bool {
    instance.track_checks.iter().all(|t| {
        let find = |list: &[config::Check]| list.iter().find(|s| s.name == t.name).cloned();
        find(old) == find(new)
    })
}

fn group_of<'a>(instance: &str, groups: &'a [SyncGroup]) -> Option<&'a SyncGroup> {
    groups
        .iter()
        .find(|g| g.members.iter().any(|m| m == instance))
}

fn attach(dp: &mut Dataplane, mode: XdpMode, ifaces: &[&Interface]) -> Result<()> {
    for iface in ifaces {
        let auto_veth = mode == XdpMode::Auto && iface.veth;
        let attached = dp.attach(iface.index, mode == XdpMode::Skb || auto_veth)?;
        let why = if auto_veth { " (veth)" } else { "" };
        info!(iface = %iface.name, "receive path: XDP in {attached}{why}");
    }
    Ok(())
}

/// Forwards the XDP program's urgent adverts into the channel.
fn spawn_events(dp: &mut Dataplane, tx: &Inputs) -> Result<()> {
    let mut events = dp.events()?;
    let tx = tx.clone();
    tokio::spawn(async move {
        let mut batch = Vec::new();
        loop {
            if let Err(e) = events.recv(&mut batch).await {
                let _ = tx
                    .send(Input::Failed(
                        anyhow::Error::new(e).context("XDP ring buffer"),
                    ))
                    .await;
                return;
            }
            for ev in batch.drain(..) {
                let input = Input::Packet {
                    ifindex: ev.ifindex,
                    at: Some(Timestamp(ev.t_ns)),
                    bytes: ev.packet().to_vec(),
                };
                if tx.send(input).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(())
}

/// Reads `iface`'s adverts from a raw socket into the channel.
fn spawn_socket(iface: &Interface, tx: &Inputs) -> Result<()> {
    let socket = AdvertReceiver::new(&iface.name, iface.index)?;
    let (ifindex, tx) = (iface.index, tx.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; vrrp_common::maps::MAX_PACKET_V4];
        loop {
            let input = match socket.recv(&mut buf).await {
                Ok(n) => Input::Packet {
                    ifindex,
                    at: None,
                    bytes: buf[..n].to_vec(),
                },
                Err(e) => Input::Failed(anyhow::Error::new(e).context("raw socket receive")),
            };
            if tx.send(input).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// keepalived's `vrrp_sync_group`: members go MASTER, BACKUP and FAULT together.
struct Groups(Vec<Group>);

struct Group {
    name: String,
    members: Vec<usize>,
    notifier: Notifier,
}

impl Groups {
    fn new(config: &Config, instances: &mut [Instance]) -> Self {
        Self(
            config
                .sync_groups
                .iter()
                .map(|g| {
                    let members: Vec<usize> = g
                        .members
                        .iter()
                        .filter_map(|m| instances.iter().position(|i| i.name() == m))
                        .collect();
                    for &i in &members {
                        instances[i].join_group(&g.name);
                    }
                    Group {
                        name: g.name.clone(),
                        members,
                        notifier: Notifier::resolve(
                            &format!("vrrp_sync_group {}", g.name),
                            &g.notify,
                            &config.global,
                        ),
                    }
                })
                .collect(),
        )
    }

    /// After the instances handled something: spreads FAULT (one member's own fault holds the
    /// whole group in FAULT) and MASTER / BACKUP (the others follow the member that changed)
    /// until nothing changes; `states` are the states the group last acted on.
    async fn sync(
        &self,
        instances: &mut [Instance],
        states: &mut [State],
        mut dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        let now = clock::now();
        let mut changed = true;
        while changed {
            changed = false;
            for g in &self.0 {
                let fault = g.members.iter().any(|&i| instances[i].own_fault());
                for &i in &g.members {
                    instances[i]
                        .on_tracked(Kind::Group, &g.name, !fault, now, dp.as_deref_mut())
                        .await?;
                }
                for &i in &g.members {
                    let (before, now_in) = (states[i], instances[i].state());
                    if before == now_in {
                        continue;
                    }
                    states[i] = now_in;
                    changed = true;
                    // The first member to get there speaks for the group.
                    if g.members.iter().all(|&j| j == i || states[j] != now_in) {
                        g.notifier.group(&g.name, now_in);
                    }
                    let follow = match (before, now_in) {
                        (_, State::Master) => Event::SyncMaster,
                        (State::Master, State::Backup) => Event::SyncBackup,
                        _ => continue,
                    };
                    for &j in g.members.iter().filter(|&&j| j != i) {
                        instances[j].sync(follow, now, dp.as_deref_mut()).await?;
                    }
                }
            }
        }
        // Instances outside any group: their states are only tracked here.
        for (state, instance) in states.iter_mut().zip(instances.iter()) {
            *state = instance.state();
        }
        Ok(())
    }
}
