//! The agent's host on a real system: the instances' [`Outputs`] built from `net` and the XDP
//! dataplane ([`Wire`]), one receive path per interface shared by its instances (the XDP
//! program, or a raw socket), the netlink watch on interfaces and addresses, the `no_accept`
//! firewall table, and signals; each input task feeds the agent's channel.
use std::{
    cell::RefCell,
    collections::{BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr},
    rc::Rc,
    sync::Arc,
};

use anyhow::{Context as _, Result};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};
use vrrp_common::{
    liveness::{BestProber, LivenessChange, Session, Softnet},
    maps::{
        InstanceEntry, InstanceKey, PeerRecord, EVENT_ARP_CONFLICT, EVENT_LIVENESS, EVENT_WATCH,
        FAMILY_V4, FAMILY_V6, MAX_PACKET,
    },
    wire::ArpIpv4,
};

use super::{Host, Input, Inputs, Signal};
use crate::{
    config::{Garp, Global, Vip, VrrpInstance, XdpMode},
    dataplane::{self, Dataplane, DataplaneError},
    election::{State, Timestamp},
    instance::{Follow, Outputs},
    net::{
        liveness::{backlog, Prober, Target},
        source_address, AdvertReceiver, AdvertSender, Announcer, Firewall, Link, Links, Netlink,
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
    /// The kernel program (XDP or TC), for both families; detached on drop.
    Kernel { _link: dataplane::Link },
    /// The raw sockets' reader tasks, one per family in use, stopped on drop.
    Socket { v4: Option<Stop>, v6: Option<Stop> },
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
            v6: config.is_ipv6(),
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

    async fn set_no_accept(&mut self, vips: BTreeSet<IpAddr>) -> Result<()> {
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
    /// VRRP over IPv6.
    v6: bool,
    src_ip: Option<IpAddr>,
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
    src: IpAddr,
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
    announcer: Arc<Announcer>,
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
            announcer: Arc::new(Announcer::new(name, link.index, mac)?),
        })
    }
}

impl Outputs for Wire {
    type Error = WireError;

    async fn bind(&mut self, links: &Links) -> Result<Option<IpAddr>, WireError> {
        self.unbind();
        let missing = |name: &str| WireError::Missing(name.to_owned());
        let link = links.get(&self.iface).ok_or_else(|| missing(&self.iface))?;
        let src = match self.src_ip {
            Some(src) => src,
            None => {
                let vips: Vec<IpAddr> = self.vips.iter().map(|v| v.addr).collect();
                let nl = &self.shared.nl;
                let primary = source_address(nl, link.index, self.v6, &vips).await;
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
        let sender = AdvertSender::new(&self.iface, link.index, self.v6)?;
        let xdp = self.shared.acquire(&self.iface, link, self.v6)?;
        if xdp {
            // The NIC's multicast filter must still let the VRRP group in.
            if let Err(e) = sender.join_vrrp_group() {
                self.shared.release(link.index);
                return Err(e.into());
            }
        }
        self.bound = Some(Bound {
            key: InstanceKey::new(link.index, self.vrid, family(self.v6)),
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
                for vip in ipv4(&self.vips) {
                    let _ = dp.unwatch_vip(vip);
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

    async fn announce(&mut self, vips: &[Vip], count: u8, garp: Garp) {
        // What each frame says is settled once per burst: the Router flag of an NA is read from
        // /proc, not once per frame.
        let frames: Vec<(IpAddr, Arc<Announcer>, bool)> = vips
            .iter()
            .filter_map(|vip| {
                let announcer = self.device(vip).ok()?.announcer.clone();
                let router = vip.addr.is_ipv6() && announcer.forwarding();
                Some((vip.addr, announcer, router))
            })
            .collect();
        let name = self.name.clone();
        let paced = frames
            .iter()
            .any(|(vip, ..)| !garp.pause_before(*vip).is_zero());
        // keepalived's order: a round over every VIP, `count` rounds; vrrp_garp_interval
        // before a gratuitous ARP, vrrp_gna_interval before a Neighbor Advertisement.
        let burst = async move {
            for n in 0..usize::from(count) * frames.len() {
                let (vip, announcer, router) = &frames[n % frames.len()];
                let pause = garp.pause_before(*vip);
                if n > 0 && !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                if let Err(e) = announcer.announce(*vip, *router).await {
                    warn!(instance = %name, %vip, "{e}");
                }
            }
        };
        // Paced, the burst runs in a task of its own so it never holds up the election;
        // unpaced, it goes out at once, before anything else.
        let Some(bound) = &mut self.bound else {
            return;
        };
        bound.burst = None;
        if paced {
            bound.burst = Some(Stop::spawn(burst));
        } else {
            burst.await;
        }
    }

    /// Also the IPv4 VIPs' owner in the kernel: our MAC while master, so ARP for them from
    /// another MAC is reported as a conflict.
    fn set_kernel(&mut self, entry: &InstanceEntry) -> Result<(), WireError> {
        let bound = self.bound()?;
        if !bound.xdp {
            return Ok(());
        }
        let key = bound.key;
        let owners: Vec<(Ipv4Addr, Option<[u8; 6]>)> = self
            .vips
            .iter()
            .filter_map(|vip| {
                let IpAddr::V4(addr) = vip.addr else {
                    return None;
                };
                let mac = self.device(vip).ok().map(|d| d.mac);
                Some((addr, mac.filter(|_| entry.is_master())))
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
        // The configuration keeps the channel to IPv4 instances.
        let IpAddr::V4(src) = bound.src else {
            return Ok(());
        };
        let detect = f.liveness.detect().as_nanos() as u64;
        shared.with_dp(|dp| dp.start_session(key, f.master, detect))?;
        let prober = Prober::start(Target {
            ifname: self.iface.clone(),
            ifindex: key.ifindex,
            src,
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

    fn backlog(&self) -> Option<Vec<Softnet>> {
        backlog().ok()
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

fn family(v6: bool) -> u8 {
    if v6 {
        FAMILY_V6
    } else {
        FAMILY_V4
    }
}

/// The IPv4 VIPs among `vips`: those the kernel watches ARP for.
fn ipv4(vips: &[Vip]) -> impl Iterator<Item = Ipv4Addr> + '_ {
    vips.iter().filter_map(|v| match v.addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    })
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
    /// if it can be attached (both families), else a raw socket per family in use (`v6`); one
    /// log line says which. True for XDP.
    fn acquire(&self, name: &str, link: &Link, v6: bool) -> Result<bool, WireError> {
        let mut receive = self.receive.borrow_mut();
        if !receive.paths.contains_key(&link.index) {
            let how = match receive.attach(name, link, &self.tx) {
                Some(link) => How::Kernel { _link: link },
                None => How::Socket { v4: None, v6: None },
            };
            receive.paths.insert(link.index, Path { users: 0, how });
        }
        let path = receive.paths.get_mut(&link.index).expect("inserted above");
        if let How::Socket { v4, v6: v6_reader } = &mut path.how {
            let reader = if v6 { v6_reader } else { v4 };
            if reader.is_none() {
                match spawn_socket(name, link.index, v6, &self.tx) {
                    Ok(stop) => *reader = Some(stop),
                    Err(e) => {
                        if path.users == 0 {
                            receive.paths.remove(&link.index);
                        }
                        return Err(e.into());
                    }
                }
            }
        }
        path.users += 1;
        Ok(matches!(path.how, How::Kernel { .. }))
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
        // Dropping the link detaches the program (a deleted interface took it with it).
        receive.paths.remove(&index);
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
                        v6: ev.packet[1] == FAMILY_V6,
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

/// Reads interface `index`'s adverts of one family from a raw socket into the channel.
fn spawn_socket(name: &str, index: u32, v6: bool, tx: &Inputs) -> Result<Stop, SocketError> {
    let socket = AdvertReceiver::new(name, index, v6)?;
    let tx = tx.clone();
    Ok(Stop::spawn(async move {
        let mut buf = vec![0u8; MAX_PACKET];
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
