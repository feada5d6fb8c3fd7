//! The agent: every instance of one configuration in one event loop. Inputs (adverts from the XDP
//! ring buffer or the raw sockets, link changes, health-check changes) arrive on one channel from
//! small tasks; the loop hands each to the instances it concerns, fires their timers, and on
//! SIGTERM/SIGINT hands over (priority-0 adverts, VIPs removed). One thread: the order of events
//! is the order they are handled.
use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::mpsc,
};
use tracing::{info, warn};

use crate::{
    clock,
    config::{Config, Notify, SyncGroup, XdpMode},
    dataplane::Dataplane,
    election::{Event, State, Timestamp},
    instance::{Instance, Kind},
    net::{AdvertReceiver, Interface, LinkMonitor, Netlink},
    notify::Notifier,
    track,
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

pub async fn run(config: Config) -> Result<()> {
    let nl = Netlink::connect().context("cannot open rtnetlink")?;
    if !config.global.startup_delay.is_zero() {
        info!(
            "vrrp_startup_delay: waiting {:?}",
            config.global.startup_delay
        );
        tokio::time::sleep(config.global.startup_delay).await;
    }
    let notifier = Notifier::new(&config.global);
    let mut instances = Vec::new();
    for ic in config.instances {
        let name = ic.name.clone();
        let instance = Instance::open(ic, &nl, &config.scripts, notifier.clone())
            .await
            .with_context(|| format!("instance {name}"))?;
        instances.push(instance);
    }
    let groups = Groups::new(&config.sync_groups, &mut instances);
    let (tx, mut rx) = mpsc::channel(1024);
    let mut dataplane = receive_path(config.global.xdp, &instances, &tx)?;

    // Tracked interfaces and checks: their state now, then their changes through the channel.
    let names: BTreeSet<String> = instances
        .iter()
        .flat_map(|i| i.tracked_interfaces().map(str::to_owned))
        .collect();
    let mut initial = Vec::new();
    for name in names {
        let (index, _) = Interface::link(&nl, &name).await?;
        let mut link = LinkMonitor::new(index)?;
        initial.push((Kind::Interface, name.clone(), link.is_up().await?));
        let tx = tx.clone();
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
    let used: BTreeSet<&str> = instances.iter().flat_map(|i| i.tracked_checks()).collect();
    let scripts: Vec<_> = config
        .scripts
        .iter()
        .filter(|s| used.contains(s.name.as_str()))
        .cloned()
        .collect();
    let mut checks = track::spawn(&scripts, &config.global)?;
    // A check's first result decides its state (keepalived); start from real states.
    checks.ready().await;
    for s in &scripts {
        initial.push((Kind::Check, s.name.clone(), checks.is_up(&s.name)));
    }
    {
        let tx = tx.clone();
        tokio::spawn(async move {
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
        });
    }

    let now = clock::now();
    let mut states: Vec<State> = instances.iter().map(Instance::state).collect();
    for instance in &mut instances {
        for (kind, name, up) in &initial {
            instance
                .on_tracked(*kind, name, *up, now, dataplane.as_mut())
                .await?;
        }
        instance.start(now, dataplane.as_mut()).await?;
    }
    groups
        .sync(&mut instances, &mut states, &notifier, dataplane.as_mut())
        .await?;

    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).context("SIGUSR1 handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    loop {
        let deadline = instances
            .iter()
            .filter_map(|i| i.next_deadline().map(|(_, at)| at))
            .min()
            .map(clock::tokio_instant);
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // Inputs first: an advert that is already here must reach the election before a timer
        // that would declare its sender dead.
        tokio::select! {
            biased;
            _ = sigterm.recv() => { info!("SIGTERM: handing over"); break; }
            _ = sigint.recv() => { info!("SIGINT: handing over"); break; }
            _ = sigusr1.recv() => {
                for i in &instances {
                    i.log_status(clock::now(), dataplane.as_ref())?;
                }
            }
            _ = sighup.recv() => warn!("SIGHUP: reloading is not supported yet; restart the agent to apply a new configuration"),
            input = rx.recv() => {
                let input = input.context("all input tasks ended")?;
                handle(input, &mut instances, dataplane.as_mut()).await?;
            }
            () = sleep => {
                let now = clock::now();
                for i in &mut instances {
                    i.on_timers(now, dataplane.as_mut()).await?;
                }
            }
        }
        groups
            .sync(&mut instances, &mut states, &notifier, dataplane.as_mut())
            .await?;
    }
    let now = clock::now();
    for i in &mut instances {
        i.shutdown(now, dataplane.as_mut()).await?;
    }
    Ok(())
}

/// keepalived's `vrrp_sync_group`: members go MASTER, BACKUP and FAULT together.
struct Groups(Vec<Group>);

struct Group {
    name: String,
    members: Vec<usize>,
    notify: Notify,
}

impl Groups {
    fn new(groups: &[SyncGroup], instances: &mut [Instance]) -> Self {
        Self(
            groups
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
                        notify: g.notify.clone(),
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
        notifier: &Notifier,
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
                        notifier.group(&g.name, &g.notify, now_in);
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

async fn handle(
    input: Input,
    instances: &mut [Instance],
    mut dp: Option<&mut Dataplane>,
) -> Result<()> {
    match input {
        Input::Packet { ifindex, at, bytes } => {
            let at = at.unwrap_or_else(clock::now);
            for i in instances.iter_mut().filter(|i| i.key.ifindex == ifindex) {
                i.on_packet(&bytes, at, dp.as_deref_mut()).await?;
            }
        }
        Input::Tracked { kind, name, up } => {
            let now = clock::now();
            for i in instances.iter_mut() {
                i.on_tracked(kind, &name, up, now, dp.as_deref_mut())
                    .await?;
            }
        }
        Input::Failed(e) => return Err(e),
    }
    Ok(())
}

/// The XDP fast path on every instance's interface when it can be had, else raw sockets; one
/// log line per interface says which path is live.
fn receive_path(mode: XdpMode, instances: &[Instance], tx: &Inputs) -> Result<Option<Dataplane>> {
    let ifaces: Vec<&Interface> = {
        let mut seen = BTreeSet::new();
        instances
            .iter()
            .map(|i| &i.iface)
            .filter(|iface| seen.insert(iface.index))
            .collect()
    };
    // Why XDP is not used: switched off (None), or the error that stopped it.
    let xdp_error = match mode {
        XdpMode::Off => None,
        _ => match attach_xdp(mode, instances, &ifaces, tx) {
            Ok(dp) => return Ok(Some(dp)),
            Err(e) => Some(e),
        },
    };
    for iface in ifaces {
        match &xdp_error {
            None => info!(iface = %iface.name, "receive path: raw socket (--xdp off)"),
            Some(e) => {
                warn!(iface = %iface.name, "receive path: raw socket, XDP unavailable: {e:#}")
            }
        }
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
    }
    Ok(None)
}

fn attach_xdp(
    mode: XdpMode,
    instances: &[Instance],
    ifaces: &[&Interface],
    tx: &Inputs,
) -> Result<Dataplane> {
    let mut dp = Dataplane::load()?;
    for iface in ifaces {
        let attached = dp.attach(iface.index, mode)?;
        info!(iface = %iface.name, "receive path: XDP in {attached}");
    }
    for i in instances {
        // The NIC's multicast filter must still let the VRRP group in.
        i.sender().join_vrrp_group()?;
        dp.set_instance(i.key, i.kernel_config())?;
        for vip in i.config.vips.iter().chain(&i.config.excluded_vips) {
            dp.watch_vip(vip.addr)?;
        }
    }
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
    Ok(dp)
}
