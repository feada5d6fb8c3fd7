//! The agent's host on a real system: the instances' [`Outputs`] built from `net` and the XDP
//! dataplane ([`Wire`]), one receive path per interface shared by its instances (the XDP
//! program, or a raw socket), the netlink watch on interfaces and addresses, the `no_accept`
//! firewall table, and signals; each input task feeds the agent's channel.
use std::{
    cell::RefCell,
    collections::{BTreeSet, HashMap},
    net::Ipv4Addr,
    rc::Rc,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, Result};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};
use vrrp_common::{
    liveness::{BestProber, LivenessChange, Session},
    maps::{
        InstanceEntry, InstanceKey, PeerRecord, EVENT_ARP_CONFLICT, EVENT_LIVENESS, EVENT_WATCH,
        MAX_PACKET_V4,
    },
    wire::ArpIpv4,
};

use super::{Host, Input, Inputs, Signal};
use crate::{
    config::{Global, Vip, VrrpInstance, XdpMode},
    dataplane::{self, Dataplane, DataplaneError},
    election::{State, Timestamp},
    instance::{Follow, Outputs},
    net::{
        liveness::{Prober, Target},
        primary_ipv4, AdvertReceiver, AdvertSender, Firewall, GarpSender, Link, Links, Netlink,
        SocketError, VipError, Vips, Watch, Watched,
    },
    notify::Notifier,
    task::Stop,
};

/// The real host.
pub struct System {
    shared: Rc<Shared>,
    firewall: Firewall,
}

/// What every instance's outputs share.
struct Shared {
    nl: Netlink,
    tx: Inputs,
    receive: RefCell<Receive>,
}

/// The receive paths, one per interface in use.
struct Receive {
    mode: XdpMode,
    dp: Option<Dataplane>,
    /// Why XDP cannot be used here (the program did not load): said once, then raw sockets.
    unavailable: bool,
    paths: HashMap<u32, Path>,
}

struct Path {
    users: usize,
    how: How,
}

enum How {
    /// The kernel program (XDP or TC).
    Kernel(dataplane::Link),
    /// The raw socket's reader task, stopped on drop.
    Socket { _reader: Stop },
}

impl System {
    /// Connects to rtnetlink and starts watching interfaces and addresses (before the first
    /// [`Host::links`], so no change in between is missed).
    pub fn new(mode: XdpMode, tx: Inputs) -> Result<Self> {
        let nl = Netlink::connect().context("cannot open rtnetlink")?;
        let mut watch = Watch::new()?;
        let watch_tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let input = match watch.next().await {
                    Ok(Watched::Change(change)) => Input::Change(change),
                    Ok(Watched::Resync(links)) => Input::Resync(links),
                    Err(e) => Input::Failed(e.into()),
                };
                let failed = matches!(input, Input::Failed(_));
                if watch_tx.send(input).await.is_err() || failed {
                    return;
                }
            }
        });
        let receive = Receive {
            mode,
            dp: None,
            unavailable: false,
            paths: HashMap::new(),
        };
        Ok(Self {
            shared: Rc::new(Shared {
                nl,
                tx,
                receive: RefCell::new(receive),
            }),
            firewall: Firewall::default(),
        })
    }
}

impl Host for System {
    type Outputs = Wire;

    fn outputs(&mut self, config: &VrrpInstance, global: &Global) -> Wire {
        let owner = format!("vrrp_instance {}", config.name);
        Wire {
            shared: self.shared.clone(),
            iface: config.iface.clone(),
            vrid: config.vrid,
            src_ip: config.src_ip,
            vips: config
                .vips
                .iter()
                .chain(&config.excluded_vips)
                .cloned()
                .collect(),
            name: config.name.clone(),
            notifier: Notifier::resolve(&owner, &config.notify, global),
            rt_priority: global.rt_priority,
            bound: None,
        }
    }

    async fn links(&mut self) -> Result<Links> {
        Ok(Links::query(&self.shared.nl).await?)
    }

    async fn set_no_accept(&mut self, vips: BTreeSet<Ipv4Addr>) -> Result<()> {
        Ok(self.firewall.apply(vips).await?)
    }
}

/// SIGTERM, SIGINT, SIGHUP and SIGUSR1 as inputs.
pub fn forward_signals(tx: &Inputs) -> Result<()> {
    let signals = [
        (SignalKind::terminate(), Signal::Stop("SIGTERM")),
        (SignalKind::interrupt(), Signal::Stop("SIGINT")),
        (SignalKind::hangup(), Signal::Reload),
        (SignalKind::user_defined1(), Signal::Status),
        // keepalived's stats signal; and a quit must not leave the VIPs behind either.
        (SignalKind::user_defined2(), Signal::Status),
        (SignalKind::quit(), Signal::Stop("SIGQUIT")),
    ];
    for (kind, what) in signals {
        let mut stream = signal(kind).with_context(|| format!("{what:?} handler"))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if tx.send(Input::Signal(what)).await.is_err() {
                    return;
                }
            }
        });
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error(transparent)]
    Vip(#[from] VipError),
    #[error(transparent)]
    Kernel(#[from] DataplaneError),
    #[error("interface {0:?} does not exist")]
    Missing(String),
    #[error("interface {0:?} has no Ethernet MAC address: VRRP needs an Ethernet-like interface")]
    NoMac(String),
    #[error("cannot list the addresses of {name}: {source}")]
    Addresses {
        name: String,
        source: std::io::Error,
    },
    #[error("not open on its interface")]
    NotBound,
}

/// One instance's outputs on a real system.
pub struct Wire {
    shared: Rc<Shared>,
    name: String,
    iface: String,
    vrid: u8,
    src_ip: Option<Ipv4Addr>,
    /// Every VIP, excluded ones too.
    vips: Vec<Vip>,
    notifier: Notifier,
    /// For the liveness thread: the agent's SCHED_RR priority.
    rt_priority: u8,
    bound: Option<Bound>,
}

struct Bound {
    key: InstanceKey,
    /// Our advert source.
    src: Ipv4Addr,
    sender: AdvertSender,
    /// `devices[0]` is the instance's interface, then the other `dev`s of its VIPs.
    devices: Vec<Device>,
    /// The interface's receive path is the XDP program (else a raw socket).
    xdp: bool,
    /// This instance wrote its kernel entries ([`Outputs::set_kernel`]).
    written: bool,
    /// A paced gratuitous ARP burst still going; stopped when the VIPs go or another starts.
    burst: Option<Stop>,
    /// The liveness channel's sender, and the master it probes.
    prober: Option<(Ipv4Addr, Prober)>,
}

/// An interface the instance puts VIPs on.
struct Device {
    name: String,
    mac: [u8; 6],
    vips: Vips,
    garp: Arc<GarpSender>,
}

impl Wire {
    fn bound(&self) -> Result<&Bound, WireError> {
        self.bound.as_ref().ok_or(WireError::NotBound)
    }

    /// The device `vip` goes on.
    fn device(&self, vip: &Vip) -> Result<&Device, WireError> {
        let bound = self.bound()?;
        let name = vip.dev.as_deref().unwrap_or(&self.iface);
        Ok(bound
            .devices
            .iter()
            .find(|d| d.name == name)
            .unwrap_or(&bound.devices[0]))
    }

    fn open_device(&self, name: &str, link: &Link) -> Result<Device, WireError> {
        let mac = link.mac.ok_or_else(|| WireError::NoMac(name.to_owned()))?;
        Ok(Device {
            name: name.to_owned(),
            mac,
            vips: Vips::new(self.shared.nl.clone(), name, link.index),
            garp: Arc::new(GarpSender::new(name, link.index, mac)?),
        })
    }
}

impl Outputs for Wire {
    type Error = WireError;

    async fn bind(&mut self, links: &Links) -> Result<Option<Ipv4Addr>, WireError> {
        self.unbind();
        let missing = |name: &str| WireError::Missing(name.to_owned());
        let link = links.get(&self.iface).ok_or_else(|| missing(&self.iface))?;
        let src = match self.src_ip {
            Some(src) => src,
            None => {
                let vips: Vec<Ipv4Addr> = self.vips.iter().map(|v| v.addr).collect();
                let primary = primary_ipv4(&self.shared.nl, link.index, &vips).await;
                let primary = primary.map_err(|source| WireError::Addresses {
                    name: self.iface.clone(),
                    source,
                })?;
                // Not yet (networkd still configuring it): the instance waits in FAULT.
                let Some(primary) = primary else {
                    return Ok(None);
                };
                primary
            }
        };
        let mut devices = vec![self.open_device(&self.iface, link)?];
        for dev in self.vips.iter().filter_map(|v| v.dev.as_deref()) {
            if !devices.iter().any(|d| d.name == dev) {
                let link = links.get(dev).ok_or_else(|| missing(dev))?;
                devices.push(self.open_device(dev, link)?);
            }
        }
        let sender = AdvertSender::new(&self.iface, link.index)?;
        let xdp = self.shared.acquire(&self.iface, link)?;
        if xdp {
            // The NIC's multicast filter must still let the VRRP group in.
            if let Err(e) = sender.join_vrrp_group() {
                self.shared.release(link.index);
                return Err(e.into());
            }
        }
        self.bound = Some(Bound {
            key: InstanceKey::new(link.index, self.vrid),
            src,
            sender,
            devices,
            xdp,
            written: false,
            burst: None,
            prober: None,
        });
        Ok(Some(src))
    }

    fn unbind(&mut self) {
        let Some(bound) = self.bound.take() else {
            return;
        };
        // Only what this instance wrote: a changed instance's new copy, opened during a reload
        // that is then refused, must not take the running one's entries with it.
        if bound.xdp && bound.written {
            // Gone with the interface already: nothing to forget.
            let _ = self.shared.with_dp(|dp| {
                for vip in &self.vips {
                    let _ = dp.unwatch_vip(vip.addr);
                }
                dp.remove_instance(&bound.key)
            });
        }
        self.shared.release(bound.key.ifindex);
    }

    async fn send_advert(&mut self, packet: &[u8]) -> Result<(), WireError> {
        Ok(self.bound()?.sender.send(packet).await?)
    }

    async fn add_vip(&mut self, vip: &Vip) -> Result<(), WireError> {
        Ok(self.device(vip)?.vips.add(vip).await?)
    }

    async fn remove_vip(&mut self, vip: &Vip) -> Result<(), WireError> {
        // Announcing a VIP we no longer hold would pull its traffic away from the new master.
        if let Some(bound) = &mut self.bound {
            bound.burst = None;
        }
        Ok(self.device(vip)?.vips.remove(vip).await?)
    }

    async fn has_vip(&mut self, vip: &Vip) -> Result<bool, WireError> {
        Ok(self.device(vip)?.vips.present(vip.addr).await?)
    }

    async fn announce(&mut self, vips: &[Vip], count: u8, pause: Duration) {
        let frames: Vec<(Ipv4Addr, Arc<GarpSender>)> = vips
            .iter()
            .filter_map(|vip| Some((vip.addr, self.device(vip).ok()?.garp.clone())))
            .collect();
        let name = self.name.clone();
        // keepalived's order: a round over every VIP, `count` rounds; vrrp_garp_interval
        // between two messages.
        let burst = async move {
            for n in 0..usize::from(count) * frames.len() {
                if n > 0 && !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                let (vip, garp) = &frames[n % frames.len()];
                if let Err(e) = garp.announce(*vip).await {
                    warn!(instance = %name, %vip, "cannot send gratuitous ARP: {e}");
                }
            }
        };
        // Paced, the burst runs in a task of its own so it never holds up the election;
        // unpaced, it goes out at once, before anything else.
        let Some(bound) = &mut self.bound else {
            return;
        };
        bound.burst = None;
        if pause.is_zero() {
            burst.await;
        } else {
            bound.burst = Some(Stop::spawn(burst));
        }
    }

    /// Also the VIPs' owner in the kernel: our MAC while master, so ARP for them from another
    /// MAC is reported as a conflict.
    fn set_kernel(&mut self, entry: &InstanceEntry) -> Result<(), WireError> {
        let bound = self.bound()?;
        if !bound.xdp {
            return Ok(());
        }
        let key = bound.key;
        let owners: Vec<(Ipv4Addr, Option<[u8; 6]>)> = self
            .vips
            .iter()
            .map(|vip| {
                let mac = self.device(vip).ok().map(|d| d.mac);
                (vip.addr, mac.filter(|_| entry.is_master()))
            })
            .collect();
        if let Some(bound) = &mut self.bound {
            bound.written = true;
        }
        Ok(self.shared.with_dp(|dp| {
            dp.set_instance(key, *entry)?;
            owners
                .into_iter()
                .try_for_each(|(vip, mac)| dp.set_vip_owner(vip, mac))
        })?)
    }

    fn peer(&self) -> Result<Option<PeerRecord>, WireError> {
        match &self.bound {
            Some(bound) if bound.xdp => Ok(Some(self.shared.with_dp(|dp| dp.peer(&bound.key))?)),
            _ => Ok(None),
        }
    }

    fn records_adverts(&self) -> bool {
        self.bound.as_ref().is_some_and(|b| b.xdp)
    }

    fn notify(&mut self, to: State, priority: u8) {
        self.notifier.instance(&self.name, to, priority);
    }

    /// A new master gets a fresh kernel session (its timer armed by the first reflection) and a
    /// sender thread; the same master only our new priority.
    fn probe(&mut self, follow: Option<Follow>) -> Result<(), WireError> {
        let shared = self.shared.clone();
        let Some(bound) = &mut self.bound else {
            return Ok(());
        };
        let key = bound.key;
        let Some(f) = follow else {
            if bound.prober.take().is_some() {
                shared.with_dp(|dp| {
                    dp.stop_session(&key);
                    Ok(())
                })?;
            }
            return Ok(());
        };
        if let Some((master, prober)) = &bound.prober {
            if *master == f.master {
                prober.set_priority(f.priority);
                prober.set_fast(f.established);
                return Ok(());
            }
        }
        bound.prober = None;
        let detect = f.liveness.detect().as_nanos() as u64;
        shared.with_dp(|dp| dp.start_session(key, f.master, detect))?;
        let prober = Prober::start(Target {
            ifname: self.iface.clone(),
            ifindex: key.ifindex,
            src: bound.src,
            master: f.master,
            vrid: self.vrid,
            priority: f.priority,
            interval: f.liveness.interval,
            rt_priority: self.rt_priority,
        })?;
        bound.prober = Some((f.master, prober));
        Ok(())
    }

    fn probes_sent(&self, after: Timestamp, until: Timestamp) -> usize {
        let prober = self.bound.as_ref().and_then(|b| b.prober.as_ref());
        prober.map_or(0, |(_, p)| p.sent_between(after.0, until.0))
    }

    fn session(&self) -> Option<Session> {
        let bound = self.bound.as_ref().filter(|b| b.xdp)?;
        self.shared.with_dp(|dp| Ok(dp.session(&bound.key))).ok()?
    }

    fn reflector(&self) -> Option<BestProber> {
        let bound = self.bound.as_ref().filter(|b| b.xdp)?;
        self.shared
            .with_dp(|dp| Ok(dp.reflector(&bound.key)))
            .ok()?
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.unbind();
    }
}

impl Shared {
    /// `f` on the dataplane, which exists whenever an XDP path does.
    fn with_dp<T>(
        &self,
        f: impl FnOnce(&mut Dataplane) -> Result<T, DataplaneError>,
    ) -> Result<T, DataplaneError> {
        let mut receive = self.receive.borrow_mut();
        let dp = receive.dp.as_mut().expect("an XDP path has its dataplane");
        f(dp)
    }

    /// A receive path for interface `name` (`link`), shared by its instances: the XDP program
    /// if it can be attached, else a raw socket; one log line says which. True for XDP.
    fn acquire(&self, name: &str, link: &Link) -> Result<bool, WireError> {
        let mut receive = self.receive.borrow_mut();
        if let Some(path) = receive.paths.get_mut(&link.index) {
            path.users += 1;
            return Ok(matches!(path.how, How::Kernel(_)));
        }
        let how = match receive.attach(name, link, &self.tx) {
            Some(link) => How::Kernel(link),
            None => How::Socket {
                _reader: spawn_socket(name, link.index, &self.tx)?,
            },
        };
        let xdp = matches!(how, How::Kernel(_));
        receive.paths.insert(link.index, Path { users: 1, how });
        Ok(xdp)
    }

    /// One instance less on interface `index`; the last one takes the receive path down.
    fn release(&self, index: u32) {
        let mut receive = self.receive.borrow_mut();
        let Some(path) = receive.paths.get_mut(&index) else {
            return;
        };
        path.users -= 1;
        if path.users > 0 {
            return;
        }
        if let Some(Path {
            how: How::Kernel(link),
            ..
        }) = receive.paths.remove(&index)
        {
            // A deleted interface took the program with it.
            if let Some(dp) = receive.dp.as_mut() {
                let _ = dp.detach(link);
            }
        }
    }
}

impl Receive {
    /// Attaches the kernel program to `link` as the mode says (loading it the first time);
    /// `None` when the raw-socket path is to be used, with the reason logged.
    fn attach(&mut self, name: &str, link: &Link, tx: &Inputs) -> Option<dataplane::Link> {
        if self.mode == XdpMode::Off {
            info!(iface = %name, "receive path: raw socket (--xdp off)");
            return None;
        }
        if self.unavailable {
            info!(iface = %name, "receive path: raw socket (XDP unavailable, see above)");
            return None;
        }
        if self.dp.is_none() {
            match Dataplane::load().and_then(|mut dp| {
                spawn_events(&mut dp, tx)?;
                Ok(dp)
            }) {
                Ok(dp) => self.dp = Some(dp),
                Err(e) => {
                    self.unavailable = true;
                    warn!(iface = %name, "receive path: raw socket, XDP unavailable: {e}");
                    return None;
                }
            }
        }
        let dp = self.dp.as_mut()?;
        let auto_veth = self.mode == XdpMode::Auto && link.veth;
        // On veth, generic XDP copies nearly every frame to give itself headroom (measured: 7 %
        // more per frame than no program, TC 2 %); TC ingress reads the frame as it is. Where
        // TC cannot attach (tcx needs Linux 6.6), generic XDP still does.
        let attached = match self.mode {
            XdpMode::Tc => dp.attach_tc(name),
            _ if auto_veth => dp.attach_tc(name).or_else(|e| {
                warn!(iface = %name, "TC ingress unavailable ({e}): generic XDP instead");
                dp.attach_xdp(link.index, true)
            }),
            mode => dp.attach_xdp(link.index, mode == XdpMode::Skb),
        };
        match attached {
            Ok((attached, link)) => {
                let why = if auto_veth { " (veth)" } else { "" };
                info!(iface = %name, "receive path: {attached}{why}");
                Some(link)
            }
            Err(e) => {
                warn!(iface = %name, "receive path: raw socket, XDP unavailable: {e}");
                None
            }
        }
    }
}

/// Forwards the XDP program's urgent adverts into the channel.
fn spawn_events(dp: &mut Dataplane, tx: &Inputs) -> Result<(), DataplaneError> {
    let mut events = dp.events()?;
    let tx = tx.clone();
    tokio::spawn(async move {
        let mut batch = Vec::new();
        loop {
            if let Err(e) = events.recv(&mut batch).await {
                let failed = anyhow::Error::new(e).context("XDP ring buffer");
                let _ = tx.send(Input::Failed(failed)).await;
                return;
            }
            for ev in batch.drain(..) {
                let at = Timestamp(ev.t_ns);
                let input = match ev.kind {
                    EVENT_LIVENESS => {
                        let Ok(change) =
                            bytemuck::try_pod_read_unaligned::<LivenessChange>(ev.packet())
                        else {
                            continue;
                        };
                        Input::Liveness {
                            ifindex: ev.ifindex,
                            at,
                            change,
                        }
                    }
                    EVENT_WATCH => Input::MasterDown {
                        ifindex: ev.ifindex,
                        vrid: ev.packet[0],
                        at,
                    },
                    EVENT_ARP_CONFLICT => {
                        let Ok(arp) = bytemuck::try_pod_read_unaligned::<ArpIpv4>(ev.packet())
                        else {
                            continue;
                        };
                        Input::ArpConflict {
                            ifindex: ev.ifindex,
                            at,
                            vip: arp.sender_ipv4(),
                            mac: arp.sha,
                        }
                    }
                    _ => Input::Packet {
                        ifindex: ev.ifindex,
                        at: Some(at),
                        bytes: ev.packet().to_vec(),
                        reassembled: false,
                    },
                };
                if tx.send(input).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(())
}

/// Reads interface `index`'s adverts from a raw socket into the channel.
fn spawn_socket(name: &str, index: u32, tx: &Inputs) -> Result<Stop, SocketError> {
    let socket = AdvertReceiver::new(name, index)?;
    let tx = tx.clone();
    Ok(Stop::spawn(async move {
        let mut buf = vec![0u8; MAX_PACKET_V4];
        loop {
            let input = match socket.recv(&mut buf).await {
                Ok((n, reassembled)) => Input::Packet {
                    ifindex: index,
                    at: None,
                    bytes: buf[..n].to_vec(),
                    reassembled,
                },
                Err(e) => Input::Failed(anyhow::Error::new(e).context("raw socket receive")),
            };
            let failed = matches!(input, Input::Failed(_));
            if tx.send(input).await.is_err() || failed {
                return;
            }
        }
    }))
}
