//! One VRRP instance wired to the world: receive path → election → actions. The election decides;
//! this module carries out its actions (adverts, VIPs, gratuitous ARP, the kernel's view of our
//! role, notify scripts), turns tracked interfaces and checks into priority changes or FAULT, and
//! logs one line per transition with its reason.
use std::{net::Ipv4Addr, sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use tracing::{info, warn};
use vrrp_common::{
    advert::{decode_ipv4, encode_ipv4, AdvertSpec, Auth, Expect},
    maps::{InstanceEntry, InstanceKey, Role},
    wire::{MAX_ADVERT_LEN_V4, VRRP_AUTH_NONE, VRRP_AUTH_PASS, VRRP_MULTICAST_V4},
    DecodeError,
};

use crate::{
    config::{self, Check},
    dataplane::Dataplane,
    election::{Action, Burst, Event, Machine, Reason, State, Timer, Timestamp},
    net::{AdvertSender, GarpSender, Interface, Netlink, Vips},
    notify::Notifier,
    track::effective_priority,
};

/// Rejected adverts are logged at most this often per instance (the first at once).
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);

/// What an instance tracks: its interface (unless `dont_track_primary`), `track_interface`
/// entries and `track_script` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Interface,
    Check,
    /// The instance's `vrrp_sync_group`: down while another member is in FAULT.
    Group,
}

struct Track {
    kind: Kind,
    name: String,
    /// 0: down means FAULT; else keepalived's weight rule.
    weight: i32,
    reverse: bool,
    up: bool,
}

/// An interface the instance puts VIPs on: its own, or another one named by a VIP's `dev`.
struct Device {
    name: String,
    vips: Vips,
    garp: Arc<GarpSender>,
}

pub struct Instance {
    pub config: config::VrrpInstance,
    pub iface: Interface,
    pub key: InstanceKey,
    /// Advert source: `mcast_src_ip`/`unicast_src_ip`, else the interface's primary address.
    src: Ipv4Addr,
    machine: Machine,
    sender: AdvertSender,
    /// `devices[0]` is the instance's interface.
    devices: Vec<Device>,
    tracks: Vec<Track>,
    /// Why the instance is in FAULT, for the transition line.
    fault: Option<String>,
    notifier: Notifier,
    ip_id: u16,
    /// Kernel arrival time of the last advert fed to the election.
    last_advert: Timestamp,
    rejected: RejectLog,
}

#[derive(Default)]
struct RejectLog {
    last: Option<Timestamp>,
    suppressed: u64,
}

impl Instance {
    /// Looks up the interfaces and opens the sockets. `scripts` are the configured checks (for the
    /// weights of `track_script`), all tracked objects start as up; the agent reports their real
    /// state before [`Instance::start`].
    pub async fn open(
        config: config::VrrpInstance,
        nl: &Netlink,
        scripts: &[Check],
        notifier: Notifier,
    ) -> Result<Self> {
        let all_vips: Vec<Ipv4Addr> = config
            .vips
            .iter()
            .chain(&config.excluded_vips)
            .map(|v| v.addr)
            .collect();
        let iface = Interface::lookup(nl, &config.iface, &all_vips).await?;
        let mut devices = vec![Device::open(nl, &iface.name, iface.index, iface.mac)?];
        for dev in config
            .vips
            .iter()
            .chain(&config.excluded_vips)
            .filter_map(|v| v.dev.as_ref())
        {
            if !devices.iter().any(|d| &d.name == dev) {
                let link = Interface::link(nl, dev).await?;
                devices.push(Device::open(nl, dev, link.index, link.mac)?);
            }
        }
        let src = config.src_ip.unwrap_or(iface.primary);
        let tracks = tracks(&config, scripts);
        let machine = Machine::new(crate::election::Params {
            vrid: config.vrid,
            version: config.version,
            priority: config.priority,
            advert_interval: config.advert_interval,
            preempt: config.preempt,
            preempt_delay: config.preempt_delay,
            accept_mode: config.accept,
            primary_addr: src,
            garp_repeat: config.garp.repeat_after,
            garp_refresh: config.garp.refresh,
            garp_lower_prio: config.garp.lower_prio_count > 0,
            garp_lower_prio_repeat: config.garp.lower_prio_repeat_after,
        });
        Ok(Self {
            key: InstanceKey::new(iface.index, config.vrid),
            sender: AdvertSender::new(&iface.name, iface.index)?,
            src,
            machine,
            devices,
            tracks,
            fault: None,
            notifier,
            config,
            iface,
            ip_id: 0,
            last_advert: Timestamp::default(),
            rejected: RejectLog::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn state(&self) -> State {
        self.machine.state()
    }

    pub fn next_deadline(&self) -> Option<(Timer, Timestamp)> {
        self.machine.next_deadline()
    }

    pub fn sender(&self) -> &AdvertSender {
        &self.sender
    }

    /// Names of the interfaces this instance tracks.
    pub fn tracked_interfaces(&self) -> impl Iterator<Item = &str> {
        self.tracked(Kind::Interface)
    }

    /// Names of the checks this instance tracks.
    pub fn tracked_checks(&self) -> impl Iterator<Item = &str> {
        self.tracked(Kind::Check)
    }

    fn tracked(&self, kind: Kind) -> impl Iterator<Item = &str> {
        self.tracks
            .iter()
            .filter(move |t| t.kind == kind)
            .map(|t| t.name.as_str())
    }

    /// What the XDP program needs to check and classify this instance's adverts.
    pub fn kernel_config(&self) -> InstanceEntry {
        let (auth_type, auth_data) = match self.config.auth_pass {
            Some(pass) => (VRRP_AUTH_PASS, pass),
            None => (VRRP_AUTH_NONE, [0; 8]),
        };
        InstanceEntry {
            local_addr: self.src.octets(),
            auth_data,
            interval_cs: self.interval_cs(),
            version: self.config.version.number(),
            priority: self.machine.priority(),
            role: match self.machine.state() {
                State::Master => Role::Master,
                State::Backup => Role::Backup,
                State::Initialize | State::Fault => Role::Idle,
            } as u8,
            auth_type,
            _pad: [0; 2],
        }
    }

    fn interval_cs(&self) -> u16 {
        (self.config.advert_interval.as_millis() / 10) as u16
    }

    fn expect(&self) -> Expect {
        Expect {
            vrid: self.config.vrid,
            version: self.config.version,
            interval_cs: self.interval_cs(),
            auth: self.config.auth_pass.map_or(Auth::None, Auth::Pass),
            local_addr: self.src,
        }
    }

    /// Removes VIPs an earlier run left behind (a crash or kill -9 skips the cleanup), then
    /// starts the election; with a tracked object down it waits in FAULT, as keepalived does.
    pub async fn start(&mut self, now: Timestamp, mut dp: Option<&mut Dataplane>) -> Result<()> {
        for (vip, dev) in self.all_vips() {
            let dev = &self.devices[dev];
            if dev.vips.present(vip.addr).await? {
                dev.vips.remove(vip).await?;
                warn!(vrid = self.config.vrid, vip = %vip.addr, instance = %self.config.name, "removed a stale VIP left by an earlier run");
            }
        }
        let (fault, priority) = self.evaluate();
        if priority != self.machine.priority() {
            self.handle(Event::PriorityChanged(priority), now, dp.as_deref_mut())
                .await?;
        }
        if fault.is_some() {
            self.fault = fault;
            self.handle(Event::Fault, now, dp.as_deref_mut()).await?;
        }
        self.handle(Event::Startup, now, dp).await
    }

    /// A tracked interface or check changed; recomputes priority and FAULT as keepalived does.
    pub async fn on_tracked(
        &mut self,
        kind: Kind,
        name: &str,
        up: bool,
        now: Timestamp,
        mut dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        let mut changed = false;
        for t in self
            .tracks
            .iter_mut()
            .filter(|t| t.kind == kind && t.name == name)
        {
            changed |= t.up != up;
            t.up = up;
        }
        if !changed {
            return Ok(());
        }
        let (fault, priority) = self.evaluate();
        if priority != self.machine.priority() {
            info!(instance = %self.config.name, "priority {} -> {priority}", self.machine.priority());
            self.handle(Event::PriorityChanged(priority), now, dp.as_deref_mut())
                .await?;
            if let Some(d) = dp.as_deref_mut() {
                d.set_instance(self.key, self.kernel_config())?;
            }
        }
        match (self.fault.is_some(), fault) {
            (false, Some(cause)) => {
                self.fault = Some(cause);
                self.handle(Event::Fault, now, dp).await
            }
            (true, None) => {
                self.fault = None;
                self.handle(Event::FaultCleared, now, dp).await
            }
            // Still in FAULT, perhaps for another reason now: keep the cause current.
            (true, Some(cause)) => {
                self.fault = Some(cause);
                Ok(())
            }
            (false, None) => Ok(()),
        }
    }

    /// Joins a `vrrp_sync_group`: FAULT while another member is in FAULT.
    pub fn join_group(&mut self, group: &str) {
        if self.tracks.iter().any(|t| t.kind == Kind::Group) {
            return; // a reload keeps the instance, and its group
        }
        self.tracks.push(Track {
            kind: Kind::Group,
            name: group.to_owned(),
            weight: 0,
            reverse: false,
            up: true,
        });
    }

    /// In FAULT for a reason of its own, not only because its sync group is.
    pub fn own_fault(&self) -> bool {
        self.tracks
            .iter()
            .any(|t| t.kind != Kind::Group && t.faults())
    }

    /// Follows its sync group to MASTER or BACKUP.
    pub async fn sync(
        &mut self,
        event: Event,
        now: Timestamp,
        dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        self.handle(event, now, dp).await
    }

    /// FAULT cause (the first weight-0 object down) and the effective priority.
    fn evaluate(&self) -> (Option<String>, u8) {
        let weights = self.tracks.iter().map(|t| (t.weight, t.reverse, t.up));
        match effective_priority(self.config.priority, weights) {
            Some(p) => (None, p),
            None => {
                let t = self.tracks.iter().find(|t| t.faults());
                let cause = t.map_or_else(String::new, |t| match t.kind {
                    Kind::Interface => format!("interface {} down", t.name),
                    Kind::Check if t.reverse => format!("check {} succeeded (reverse)", t.name),
                    Kind::Check => format!("check {} failed", t.name),
                    Kind::Group => format!("sync group {} has a member in FAULT", t.name),
                });
                (Some(cause), self.machine.priority())
            }
        }
    }

    /// One status line (SIGUSR1, as keepalived dumps its state): election state and, on the XDP
    /// path, what the kernel recorded of the peers' adverts.
    pub fn log_status(&self, now: Timestamp, dp: Option<&Dataplane>) -> Result<()> {
        let (name, state, priority) = (&self.config.name, self.state(), self.machine.priority());
        let interval = self.machine.master_adver_interval();
        let Some(dp) = dp else {
            info!(instance = %name, %state, priority, ?interval, "status: raw-socket receive path");
            return Ok(());
        };
        let peer = dp.peer(&self.key)?;
        let ago = Duration::from_nanos(now.0.saturating_sub(peer.t_ns));
        info!(
            instance = %name,
            %state,
            priority,
            ?interval,
            "status: kernel saw {} adverts (last from {} prio {}, interval {} cs, {ago:?} ago), \
             rejected {}",
            peer.count,
            Ipv4Addr::from(peer.src),
            peer.priority,
            peer.interval_cs,
            peer.rejected,
        );
        Ok(())
    }

    /// A received IPv4 packet (from the XDP ring buffer or the raw socket) that may be a VRRP
    /// advert for this instance: the receive checks, then the election.
    pub async fn on_packet(
        &mut self,
        packet: &[u8],
        at: Timestamp,
        dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        let advert = match decode_ipv4(packet).and_then(|a| a.check(&self.expect()).map(|()| a)) {
            Ok(a) => a,
            // Other groups share the segment: normal, not worth a log line.
            Err(DecodeError::VridMismatch { .. }) => return Ok(()),
            Err(e) => {
                self.log_reject(&e.to_string(), packet, at);
                return Ok(());
            }
        };
        if !self.is_peer(advert.src) {
            self.log_reject("source is not a configured unicast_peer", packet, at);
            return Ok(());
        }
        self.last_advert = self.last_advert.max(at);
        let event = advert_event(advert.src, advert.priority, advert.interval_cs);
        self.handle(event, at, dp).await
    }

    fn log_reject(&mut self, error: &str, packet: &[u8], at: Timestamp) {
        let r = &mut self.rejected;
        let due = r
            .last
            .is_none_or(|t| at.0.saturating_sub(t.0) >= REJECT_LOG_EVERY.as_nanos() as u64);
        if !due {
            r.suppressed += 1;
            return;
        }
        let src = packet
            .get(12..16)
            .map(|s| Ipv4Addr::new(s[0], s[1], s[2], s[3]));
        warn!(
            vrid = self.config.vrid,
            src = ?src,
            suppressed = r.suppressed,
            instance = %self.config.name,
            "ignored advert: {error}"
        );
        r.last = Some(at);
        r.suppressed = 0;
    }

    /// Fires the timers that are due. Before declaring the master down it asks the kernel whether
    /// an advert arrived that the agent has not processed yet (a late wake-up under load), and
    /// feeds that first, stamped with its arrival time.
    pub async fn on_timers(
        &mut self,
        now: Timestamp,
        mut dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        while let Some((timer, at)) = self.machine.next_deadline().filter(|&(_, at)| at <= now) {
            if timer == Timer::MasterDown {
                // Every instance has a record once started (each transition writes it); one on a
                // raw socket next to XDP ones keeps an all-zero record (count 0).
                if let Some(peer) = dp.as_deref().map(|d| d.peer(&self.key)).transpose()? {
                    let arrived = Timestamp(peer.t_ns);
                    let src = Ipv4Addr::from(peer.src);
                    if peer.count > 0 && arrived > self.last_advert && self.is_peer(src) {
                        self.last_advert = arrived;
                        let event = advert_event(src, peer.priority, peer.interval_cs);
                        self.handle(event, arrived, dp.as_deref_mut()).await?;
                        if self.machine.deadline(timer) != Some(at) {
                            continue;
                        }
                    }
                }
            }
            self.handle(Event::TimerExpired(timer), now, dp.as_deref_mut())
                .await?;
        }
        Ok(())
    }

    /// Whether adverts from `src` count: any source, or one of the `unicast_peer`s.
    fn is_peer(&self, src: Ipv4Addr) -> bool {
        let peers = &self.config.unicast_peers;
        peers.is_empty() || peers.contains(&src)
    }

    /// After our goodbye at `since`: the router the kernel heard advertise since then with a
    /// non-zero priority, i.e. the new master (None on the raw-socket path).
    pub fn successor(&self, since: Timestamp, dp: &Dataplane) -> Option<Ipv4Addr> {
        let peer = dp.peer(&self.key).ok()?;
        let src = Ipv4Addr::from(peer.src);
        (peer.t_ns > since.0 && peer.priority > 0 && self.is_peer(src)).then_some(src)
    }

    pub async fn shutdown(&mut self, now: Timestamp, dp: Option<&mut Dataplane>) -> Result<()> {
        self.handle(Event::Shutdown, now, dp).await?;
        self.notifier.instance(
            &self.config.name,
            State::Initialize,
            self.machine.priority(),
        );
        Ok(())
    }

    async fn handle(
        &mut self,
        event: Event,
        now: Timestamp,
        mut dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        for (action, reason) in self.machine.handle(event, now) {
            self.act(action, reason, dp.as_deref_mut()).await?;
        }
        Ok(())
    }

    async fn act(
        &mut self,
        action: Action,
        reason: Reason,
        dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        match action {
            Action::Transition { from, to } => {
                let cause = match (reason, &self.fault) {
                    (Reason::Fault, Some(cause)) => format!(" ({cause})"),
                    _ => String::new(),
                };
                info!(
                    vrid = self.config.vrid,
                    iface = %self.iface.name,
                    instance = %self.config.name,
                    "{from} -> {to}: {reason}{cause}"
                );
                if let Some(d) = dp {
                    d.set_instance(self.key, self.kernel_config())?;
                }
                // Shutdown reaches INIT; `shutdown` reports it once the instance is down.
                if to != State::Initialize {
                    self.notifier
                        .instance(&self.config.name, to, self.machine.priority());
                }
            }
            Action::SendAdvert { priority } => self.send_advert(priority).await?,
            // With no_accept the agent's firewall set already drops their traffic (firewall.rs).
            Action::AddVips => {
                for (vip, dev) in self.all_vips() {
                    self.devices[dev].vips.add(vip).await?;
                }
            }
            Action::RemoveVips => {
                for (vip, dev) in self.all_vips() {
                    self.devices[dev].vips.remove(vip).await?;
                }
            }
            Action::SendGarp(burst) => self.send_garp(burst).await,
            // The driver sleeps until `next_deadline()`; the machine keeps the deadlines.
            Action::ArmTimer { .. } | Action::CancelTimer(_) => {}
        }
        Ok(())
    }

    /// The VIPs whose traffic is dropped while this instance is master (`no_accept`).
    pub fn no_accept_vips(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let drop = !self.machine.params().accepts_vip_traffic();
        let vips = self.config.vips.iter().chain(&self.config.excluded_vips);
        vips.filter(move |_| drop).map(|v| v.addr)
    }

    /// Every VIP, excluded ones too, with the index of the device it goes on.
    fn all_vips(&self) -> Vec<(&config::Vip, usize)> {
        let vips = self.config.vips.iter().chain(&self.config.excluded_vips);
        vips.map(|v| {
            let dev = v.dev.as_ref().map_or(0, |name| {
                self.devices
                    .iter()
                    .position(|d| &d.name == name)
                    .unwrap_or(0)
            });
            (v, dev)
        })
        .collect()
    }

    async fn send_advert(&mut self, priority: u8) -> Result<()> {
        // Only `virtual_ipaddress` is advertised, not `virtual_ipaddress_excluded`.
        let addrs: Vec<Ipv4Addr> = self.config.vips.iter().map(|v| v.addr).collect();
        let multicast = [VRRP_MULTICAST_V4];
        let dsts = if self.config.unicast_peers.is_empty() {
            &multicast[..]
        } else {
            &self.config.unicast_peers[..]
        };
        let mut spec = AdvertSpec {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            interval_cs: self.interval_cs(),
            auth: self.config.auth_pass.map_or(Auth::None, Auth::Pass),
            src: self.src,
            dst: VRRP_MULTICAST_V4,
            ip_id: 0,
            checksum_form: self.config.checksum,
            addrs: &addrs,
        };
        for &dst in dsts {
            // The kernel fills in its own id for 0; keep ours, as keepalived does.
            self.ip_id = self.ip_id.checked_add(1).unwrap_or(1);
            spec.dst = dst;
            spec.ip_id = self.ip_id;
            let mut buf = [0; MAX_ADVERT_LEN_V4];
            let len = encode_ipv4(&spec, &mut buf).context("cannot encode advert")?;
            // A lost advert is covered by the next one; log and go on rather than stop the agent.
            if let Err(e) = self.sender.send(&buf[..len]).await {
                warn!(instance = %self.config.name, "cannot send advert to {dst}: {e}");
            }
        }
        Ok(())
    }

    /// keepalived's burst: `count` per VIP; paced by `vrrp_garp_interval` in a task of its own,
    /// so a paced burst never holds up the election.
    async fn send_garp(&mut self, burst: Burst) {
        let count = match burst {
            Burst::Master => self.config.garp.count,
            Burst::LowerPriority => self.config.garp.lower_prio_count,
        };
        let pause = self.config.garp.interval;
        let frames: Vec<(Ipv4Addr, Arc<GarpSender>)> = self
            .all_vips()
            .into_iter()
            .map(|(vip, dev)| (vip.addr, self.devices[dev].garp.clone()))
            .collect();
        let name = self.config.name.clone();
        let burst = async move {
            for (vip, garp) in frames {
                for i in 0..count {
                    if i > 0 && !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    if let Err(e) = garp.announce(vip).await {
                        warn!(instance = %name, %vip, "cannot send gratuitous ARP: {e}");
                    }
                }
            }
        };
        if pause.is_zero() {
            burst.await;
        } else {
            tokio::spawn(burst);
        }
    }
}

impl Track {
    /// Weight 0 means FAULT when down, or when up with `reverse`.
    fn faults(&self) -> bool {
        self.weight == 0 && self.up == self.reverse
    }
}

impl Device {
    fn open(nl: &Netlink, name: &str, index: u32, mac: [u8; 6]) -> Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            vips: Vips::new(nl.clone(), name, index),
            garp: Arc::new(GarpSender::new(name, index, mac)?),
        })
    }
}

fn advert_event(src: Ipv4Addr, priority: u8, interval_cs: u16) -> Event {
    Event::Advert {
        src,
        priority,
        interval: Duration::from_millis(u64::from(interval_cs) * 10),
    }
}

/// The instance's tracked objects with their weights: a `track_script` entry's weight overrides
/// the script's own; a `track_interface` without weight, and the instance's own interface, mean
/// FAULT when down.
fn tracks(config: &config::VrrpInstance, scripts: &[Check]) -> Vec<Track> {
    let own = config.track_primary.then(|| Track {
        kind: Kind::Interface,
        name: config.iface.clone(),
        weight: 0,
        reverse: false,
        up: true,
    });
    let interfaces = config.track_interfaces.iter().map(|t| Track {
        kind: Kind::Interface,
        name: t.name.clone(),
        weight: t.weight.unwrap_or(0),
        reverse: false,
        up: true,
    });
    let checks = config.track_checks.iter().filter_map(|t| {
        let script = scripts.iter().find(|s| s.name == t.name)?;
        Some(Track {
            kind: Kind::Check,
            name: t.name.clone(),
            weight: t.weight.unwrap_or(script.weight),
            reverse: script.reverse,
            up: !script.init_fail,
        })
    });
    own.into_iter().chain(interfaces).chain(checks).collect()
}
