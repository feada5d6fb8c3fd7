//! One VRRP instance wired to the world through its [`Outputs`]: receive checks → election →
//! outputs. The election decides; this module carries out its actions (adverts, VIPs, gratuitous
//! ARP, the kernel's view of our role, notify scripts), binds the instance to its interface by
//! name (and again when the interface is re-created), turns tracked interfaces, checks and the
//! sync group into priority changes or FAULT, puts back VIPs deleted behind a master's back,
//! probes the master it follows as backup when the liveness channel is on, and logs one line
//! per transition with its reason.
//!
//! Every error of an output is recoverable here: it is logged (at most once per
//! [`LOG_EVERY`] for each kind: adverts, VIPs, the kernel), counted, and the instance carries
//! on. A VIP that could not be added is tried again at each advert while master.
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use bytemuck::Zeroable as _;
use tracing::{debug, info, warn};
use vrrp_common::{
    advert::{decode, encode, ip_version, source, AddrList, AdvertSpec, Auth, Expect},
    liveness::{BestProber, LivenessChange, Session, Softnet},
    maps::{addr_bytes, addr_of, gap_bucket_bound_secs, InstanceEntry, PeerRecord, Role},
    wire::{MAX_ADVERT_LEN, VRRP_AUTH_NONE, VRRP_AUTH_PASS, VRRP_MULTICAST_V4, VRRP_MULTICAST_V6},
    DecodeError, Version,
};

use crate::{
    config::{Check, Garp, Liveness, Vip, VrrpInstance},
    election::{Action, Burst, Event, Machine, Params, Reason, State, Timer, Timestamp},
    net::{liveness::SENT_KEPT, Link, Links},
    track::effective_priority,
};

#[cfg(test)]
mod tests;

/// Repeated warnings of one kind (rejected adverts, failing outputs) are logged at most this
/// often per instance, the first at once.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Everything an instance does to the world, and the one record it reads back from the kernel.
/// The agent's implementation is built from `net` and the dataplane; the tests' records calls.
#[allow(async_fn_in_trait)] // one thread: no Send bounds to name
pub trait Outputs {
    type Error: std::fmt::Display;
    /// Opens what the instance needs on its interface (and the devices its VIPs name), as
    /// `links` has them: the advert socket, the receive path, the VIP devices. Returns the advert
    /// source: the configured one, else the interface's first IPv4 address that is not a VIP
    /// (IPv6: its link-local one, done with duplicate address detection); `None`, with nothing
    /// opened, while the interface has no such address yet.
    async fn bind(&mut self, links: &Links) -> Result<Option<IpAddr>, Self::Error>;
    /// Closes them again, and forgets the instance in the kernel.
    fn unbind(&mut self);
    /// Sends one advert: an IP packet to 224.0.0.18 / ff02::12 or to a unicast peer.
    async fn send_advert(&mut self, packet: &[u8]) -> Result<(), Self::Error>;
    /// Adds a VIP (on its `dev`, else the instance's interface); present already is success.
    async fn add_vip(&mut self, vip: &Vip) -> Result<(), Self::Error>;
    /// Removes a VIP; absent already is success.
    async fn remove_vip(&mut self, vip: &Vip) -> Result<(), Self::Error>;
    async fn has_vip(&mut self, vip: &Vip) -> Result<bool, Self::Error>;
    /// Gratuitous ARP (IPv4 VIPs) and Neighbor Advertisements (IPv6): `count` per VIP, paced as
    /// `garp` says; a paced burst must not hold up the caller.
    async fn announce(&mut self, vips: &[Vip], count: u8, garp: Garp);
    /// What the kernel needs to know of the instance: the adverts it expects, our role and
    /// priority (the XDP path; nothing on the raw-socket path).
    fn set_kernel(&mut self, entry: &InstanceEntry) -> Result<(), Self::Error>;
    /// The last valid advert the kernel recorded (`None` on the raw-socket path).
    fn peer(&self) -> Result<Option<PeerRecord>, Self::Error>;
    /// Whether the kernel records the instance's adverts as they arrive (the XDP path), so
    /// [`Outputs::peer`] can tell of one the agent has not handled yet.
    fn records_adverts(&self) -> bool;
    /// Runs the notify scripts for entering `to` (INIT: the instance stopped).
    fn notify(&mut self, to: State, priority: u8);
    /// Probes the master the backup follows (the liveness channel), or stops (`None`). Only
    /// asked for where the kernel records adverts ([`Outputs::records_adverts`]).
    fn probe(&mut self, follow: Option<Follow>) -> Result<(), Self::Error>;
    /// The kernel's record of the liveness session, while one runs.
    fn session(&self) -> Option<Session>;
    /// As master with the liveness channel: the reflector's record of its probers.
    fn reflector(&self) -> Option<BestProber>;
    /// How many probes went out after `after`, no later than `until` (see
    /// [`crate::net::liveness::Prober::sent_between`]).
    fn probes_sent(&self, after: Timestamp, until: Timestamp) -> usize;
    /// This host's receive backlogs, one per CPU (see [`crate::net::liveness::backlog`]);
    /// `None` when they cannot be read.
    fn backlog(&self) -> Option<Vec<Softnet>>;
}

/// A channel that lost or held up a probe this recently, or a host that dropped received frames
/// this recently, is not trusted to tell loss from death.
const TROUBLE_HOLD: Duration = Duration::from_secs(1);
/// While a silence waits for the backlogs to drain, how often they are looked at.
const DRAIN_POLL: Duration = Duration::from_micros(200);
/// While probing, how often at most the host's backlog drops are looked at besides a silence
/// (the agent wakes about once a second then).
const DROPS_LOOK: Duration = Duration::from_millis(500);

/// The master a backup probes, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Follow {
    pub master: Ipv4Addr,
    /// Ours: the reflector ranks the backups by it.
    pub priority: u8,
    pub liveness: Liveness,
    /// The master reflects: probe every interval. Until then it may not speak the channel
    /// (keepalived, an agent without it): probe slowly, to find out.
    pub established: bool,
}

/// The frames waiting in this host's receive backlogs at one look, as (CPU, its processed count
/// once they are through): an advert or a reflection that looks missing may be among them (a
/// flood steered to one CPU holds frames for milliseconds). Master_Down waits until these are
/// through; a liveness silence until none wait at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Waiting(Vec<(usize, u32)>);

impl Waiting {
    fn of(backlog: &[Softnet]) -> Self {
        let waiting = |(cpu, b): (usize, &Softnet)| {
            let queued = b.queued.filter(|&q| q > 0)?;
            Some((cpu, b.processed.wrapping_add(queued)))
        };
        Self(backlog.iter().enumerate().filter_map(waiting).collect())
    }

    /// Every CPU processed what was waiting (its counter wraps at 2^32).
    fn through(&self, backlog: &[Softnet]) -> bool {
        self.0.iter().all(|&(cpu, target)| {
            backlog
                .get(cpu)
                .is_none_or(|b| b.processed.wrapping_sub(target) < u32::MAX / 2)
        })
    }
}

/// A silence of the liveness channel while this host's receive backlogs held frames: the master
/// counts as gone at a look that finds them empty, if the silence still holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Draining {
    master: Ipv4Addr,
    /// The last reflection before the silence.
    last: Timestamp,
    /// The next look.
    next: Timestamp,
}

/// Master_Down_Timer due while this host's receive backlogs held frames: the master's advert
/// may be among them, so the backup reads the kernel's record again once they are through.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HeldDown {
    /// The deadline held.
    at: Timestamp,
    waiting: Waiting,
    /// The look that found the frames waiting.
    since: Timestamp,
    /// The next look; one advert interval after the deadline at the latest (a backlog that does
    /// not drain holds no longer).
    next: Timestamp,
}

/// What an instance tracks: interfaces (its own unless `dont_track_primary`, `track_interface`)
/// and checks (`track_script`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Interface,
    Check,
}

struct Track {
    kind: Kind,
    name: String,
    /// 0: down means FAULT; else keepalived's weight rule.
    weight: i32,
    reverse: bool,
    /// `None`: a check without its first result yet.
    up: Option<bool>,
}

impl Track {
    /// Weight 0 means FAULT when down, or when up with `reverse`.
    fn faults(&self) -> bool {
        self.weight == 0 && self.up == Some(self.reverse)
    }
}

/// What the instance counted since the agent started.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub adverts_sent: u64,
    /// Adverts sent half an advert interval or more after their time (the agent woke late).
    pub adverts_late: u64,
    /// Adverts that passed every check and reached the election (on the kernel path only the
    /// ones the kernel passed on: see the kernel's own count in [`Status::kernel`]).
    pub adverts_received: u64,
    pub priority_zero_sent: u64,
    pub priority_zero_received: u64,
    pub became_master: u64,
    pub released_master: u64,
    /// Gratuitous ARPs sent (each VIP counted once per repeat).
    pub garps_sent: u64,
    pub rejected: u64,
    /// The same, by the check that failed ([`DecodeError::reason`]).
    pub rejected_by: BTreeMap<&'static str, u64>,
    /// Outputs that failed (send, VIP, kernel map), each logged as a recoverable error.
    pub output_errors: u64,
    /// VIPs someone else deleted while we were master, put back.
    pub vips_restored: u64,
    /// ARP from another MAC for one of our VIPs while we were master (XDP path): another router
    /// master too, or a host using the address.
    pub arp_conflicts: u64,
    /// Silences of the liveness channel not taken for the master's death: our own probes late,
    /// a channel that lost probes lately, or the master's adverts still arriving.
    pub liveness_distrusted: u64,
    /// VRRPv3 master intervals above `max_adopted_interval`, adopted as that maximum.
    pub intervals_capped: u64,
    /// Master_Down deadlines the kernel kept and woke the agent for.
    pub kernel_master_down: u64,
    /// Master_Down deadlines reached while frames waited in this host's receive backlogs, with
    /// the master's advert among them: a wrong takeover avoided.
    pub master_down_held: u64,
    /// Master_Down deadlines the kernel kept but did not wake the agent for (a full ring
    /// buffer): the agent acted a second late.
    pub watch_missed: u64,
}

/// Transition lines per [`LOG_EVERY`] before a flap storm's are held back.
pub const TRANSITION_LINES: u32 = 20;

/// At most `lines` log lines per [`LOG_EVERY`] window (one for warnings, [`TRANSITION_LINES`]
/// for transitions); counts the ones it holds back.
#[derive(Debug, Default)]
struct LogLimit {
    window: Option<Timestamp>,
    lines: u32,
    suppressed: u64,
}

impl LogLimit {
    /// `Some(held back since the last line)` when one of `budget` lines is due now.
    fn due(&mut self, now: Timestamp, budget: u32) -> Option<u64> {
        if self.window.is_none_or(|t| now >= t + LOG_EVERY) {
            self.window = Some(now);
            self.lines = 0;
        }
        if self.lines >= budget {
            self.suppressed += 1;
            return None;
        }
        self.lines += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

pub struct Instance<O> {
    pub config: VrrpInstance,
    machine: Machine,
    outputs: O,
    /// The indexes of the interfaces it is bound to, by name; `None` while unbound.
    bound: Option<BTreeMap<String, u32>>,
    /// Why it is not bound (an interface missing, a socket that failed): a FAULT cause.
    unbound: Option<String>,
    tracks: Vec<Track>,
    /// Held in FAULT by its sync group, with the cause.
    held: Option<String>,
    /// The FAULT cause in force, for the transition line.
    fault: Option<String>,
    started: bool,
    ip_id: u16,
    /// Kernel arrival time of the last advert fed to the election.
    last_advert: Timestamp,
    /// A VIP add failed while master: tried again at each advert.
    vips_missing: bool,
    /// One limit per kind of warning, so one kind never hides another.
    logs: BTreeMap<Warning, LogLimit>,
    transition_log: LogLimit,
    pub counters: Counters,
    /// The master it probes, and with which priority of ours.
    probing: Option<Follow>,
    /// That master reflected our probes (the kernel said the channel came up).
    established: bool,
    /// The last reflection before the liveness channel fell silent, for the transition line.
    silent_since: Option<Timestamp>,
    /// While probing: the host's backlog drops at the last look (the CPUs' counters summed,
    /// wrapping) and its time, and when a look last found them changed.
    drops: Option<(u32, Timestamp)>,
    dropped_at: Option<Timestamp>,
    /// A silence that waits for a look that finds the backlogs empty.
    draining: Option<Draining>,
    /// A Master_Down deadline that waits for them.
    held_down: Option<HeldDown>,
    /// When the last transition happened, and its line.
    last_transition: Option<(Timestamp, String)>,
    /// In Backup: the (source, priority, interval) of the last advert that restarted the
    /// Master_Down timer; the kernel restarts its own copy of the timer on the same ones.
    accepted: Option<(IpAddr, u8, u16)>,
    /// What the kernel was last told of the instance.
    written: Option<InstanceEntry>,
    /// The kernel's Master_Down timer is due at this deadline, the same as ours (read from its
    /// record): the agent sleeps past it by [`WATCH_GRACE`] and lets the kernel wake it.
    watched: Option<Timestamp>,
}

/// How long past a Master_Down deadline the kernel keeps ([`Instance::watched`]) the agent still
/// waits for the kernel's word before acting on its own: only a full ring buffer loses that word.
const WATCH_GRACE: Duration = Duration::from_secs(1);

/// One instance as `vrrp-agent status` shows it (schema version [`STATUS_VERSION`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Status {
    pub name: String,
    pub iface: String,
    pub vrid: u8,
    pub state: String,
    /// The priority it runs with (tracked checks applied), and the configured one.
    pub priority: u8,
    pub base_priority: u8,
    /// The master it follows as backup (itself as master); none known otherwise.
    pub master: Option<IpAddr>,
    pub advert_interval_ms: f64,
    /// The master's interval as adopted (VRRPv3), else ours.
    pub master_advert_interval_ms: f64,
    /// "kernel" (XDP or TC ingress) or "raw socket".
    pub receive_path: &'static str,
    pub fault: Option<String>,
    /// Seconds since the last transition, and its log line.
    pub last_transition_secs: Option<f64>,
    pub last_transition: Option<String>,
    pub counters: Counters,
    /// What the kernel program recorded of the peers' adverts (kernel path), or why it could
    /// not be read.
    pub kernel: Option<KernelStatus>,
    pub kernel_error: Option<String>,
    /// The liveness channel to the master it follows, while it probes.
    pub liveness: Option<LivenessStatus>,
    /// As master with the liveness channel: the backup first in line, and probes not
    /// reflected for the rate limit.
    pub reflector: Option<ReflectorStatus>,
    /// `virtual_ipaddress`, then `virtual_ipaddress_excluded`, each with its interface.
    pub vips: Vec<VipStatus>,
    pub excluded_vips: Vec<VipStatus>,
    /// What it tracks (its own interface, `track_interface`, `track_script`), each up, down,
    /// or without a result yet (`None`), with its weight (0: down means FAULT).
    pub tracked: Vec<TrackStatus>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct TrackStatus {
    /// "interface" or "check".
    pub kind: &'static str,
    pub name: String,
    pub weight: i32,
    pub up: Option<bool>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct VipStatus {
    pub addr: IpAddr,
    pub iface: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelStatus {
    pub adverts: u64,
    pub rejected: u64,
    pub last_source: Option<IpAddr>,
    pub last_priority: Option<u8>,
    pub last_interval_ms: Option<f64>,
    pub last_age_secs: Option<f64>,
    /// The gaps between the master's consecutive adverts as the kernel timed them: how close
    /// the group runs to Master_Down. Per bucket (not cumulative), and their sum.
    pub advert_gaps: Vec<GapBucket>,
    pub advert_gap_sum_secs: f64,
    /// The kernel keeps the backup's Master_Down timer (the agent sleeps until it fires).
    pub master_down_timer: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct LivenessStatus {
    pub probing: Ipv4Addr,
    pub interval_ms: f64,
    /// Probes reflected, probes lost, and the longest time between two reflections.
    pub reflections: u64,
    pub lost: u64,
    pub longest_gap_ms: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ReflectorStatus {
    pub first_in_line: Option<Ipv4Addr>,
    pub limited: u64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct GapBucket {
    /// Gaps below this many seconds (and at or above the previous bucket's); `None`: longer.
    pub le_secs: Option<f64>,
    pub count: u64,
}

/// Bumped when a field of [`Status`] changes meaning or goes away (added fields do not).
pub const STATUS_VERSION: u32 = 1;

/// The kinds of warning an instance rate-limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Warning {
    Rejected,
    Advert,
    Vip,
    Kernel,
    Restored,
    Conflict,
    Liveness,
    LivenessUp,
    Interval,
    Held,
    Late,
}

impl<O: Outputs> Instance<O> {
    /// An instance not started yet and not bound to its interface. `checks` are the configured
    /// checks (for the weights of `track_script`); its tracked objects have no state yet.
    pub fn new(config: VrrpInstance, checks: &[Check], outputs: O) -> Self {
        let machine = Machine::new(Params {
            vrid: config.vrid,
            version: config.version,
            priority: config.priority,
            advert_interval: config.advert_interval,
            preempt: config.preempt,
            preempt_delay: config.preempt_delay,
            accept_mode: config.accept,
            primary_addr: config.src_ip.unwrap_or(match config.is_ipv6() {
                true => Ipv6Addr::UNSPECIFIED.into(),
                false => Ipv4Addr::UNSPECIFIED.into(),
            }),
            garp_repeat: config.garp.repeat_after,
            garp_refresh: config.garp.refresh,
            garp_lower_prio: config.garp.lower_prio_count > 0,
            garp_lower_prio_repeat: config.garp.lower_prio_repeat_after,
        });
        Self {
            tracks: tracks(&config, checks),
            machine,
            outputs,
            bound: None,
            unbound: Some(format!("interface {} is not open yet", config.iface)),
            held: None,
            fault: None,
            started: false,
            ip_id: 0,
            last_advert: Timestamp::default(),
            vips_missing: false,
            logs: BTreeMap::new(),
            transition_log: LogLimit::default(),
            counters: Counters::default(),
            probing: None,
            established: false,
            silent_since: None,
            drops: None,
            dropped_at: None,
            draining: None,
            held_down: None,
            last_transition: None,
            accepted: None,
            written: None,
            watched: None,
            config,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn state(&self) -> State {
        self.machine.state()
    }

    /// The priority it runs with now (tracked checks and interfaces applied).
    pub fn priority(&self) -> u8 {
        self.machine.priority()
    }

    /// When the agent must wake for this instance: its next timer, but a Master_Down deadline the
    /// kernel keeps only [`WATCH_GRACE`] later (the kernel wakes it at the deadline itself), and
    /// one held for the backlogs at its next look.
    pub fn next_deadline(&self) -> Option<(Timer, Timestamp)> {
        match self.machine.next_deadline() {
            Some((Timer::MasterDown, at)) if self.watched == Some(at) => {
                Some((Timer::MasterDown, at + WATCH_GRACE))
            }
            Some((Timer::MasterDown, at)) => match &self.held_down {
                Some(held) if held.at == at => Some((Timer::MasterDown, held.next)),
                _ => Some((Timer::MasterDown, at)),
            },
            next => next,
        }
    }

    /// When the agent must wake for this instance: its next deadline, or sooner a look at the
    /// backlogs a silence waits for.
    pub fn wake_at(&self) -> Option<Timestamp> {
        let deadline = self.next_deadline().map(|(_, at)| at);
        let draining = self.draining.as_ref().map(|d| d.next);
        deadline.into_iter().chain(draining).min()
    }

    /// The interface its adverts arrive on, while bound.
    pub fn ifindex(&self) -> Option<u32> {
        self.bound.as_ref()?.get(&self.config.iface).copied()
    }

    /// Names of the checks it tracks.
    pub fn tracked_checks(&self) -> impl Iterator<Item = &str> {
        let checks = self.tracks.iter().filter(|t| t.kind == Kind::Check);
        checks.map(|t| t.name.as_str())
    }

    /// Binds to the interfaces in `links`, if they exist; one that is missing leaves the
    /// instance unbound (it starts in FAULT and binds when the interface appears). An interface
    /// that exists but cannot be opened is an error: the configuration is not applied.
    pub async fn bind(&mut self, links: &Links) -> Result<(), O::Error> {
        if let Some(missing) = self.missing_device(links) {
            self.unbound = Some(format!("interface {missing} is missing"));
            return Ok(());
        }
        match self.outputs.bind(links).await? {
            Some(src) => self.bound_to(links, src),
            None => {
                let iface = &self.config.iface;
                let what = match self.config.is_ipv6() {
                    true => "usable IPv6 link-local address",
                    false => "IPv4 address",
                };
                self.unbound = Some(format!("interface {iface} has no {what} yet"));
            }
        }
        Ok(())
    }

    fn missing_device(&self, links: &Links) -> Option<String> {
        self.config
            .devices()
            .find(|d| links.get(d).is_none())
            .map(str::to_owned)
    }

    fn bound_to(&mut self, links: &Links, src: IpAddr) {
        let indexes = self
            .config
            .devices()
            .filter_map(|d| Some((d.to_owned(), links.get(d)?.index)))
            .collect();
        self.bound = Some(indexes);
        self.unbound = None;
        self.machine.set_primary_addr(src);
        if self.config.liveness.is_some() && !self.outputs.records_adverts() {
            warn!(instance = %self.config.name, "liveness channel off: it needs the kernel receive path, and the raw socket is in use (--xdp off, or the program could not be attached); VRRP timing only");
        }
    }

    /// Sets the tracked objects' states: interfaces from `links` (a missing one is down), checks
    /// from `check` (`None`: no first result yet).
    pub fn init_tracks(&mut self, links: &Links, check: impl Fn(&str) -> Option<bool>) {
        for t in &mut self.tracks {
            t.up = match t.kind {
                Kind::Interface => Some(links.get(&t.name).is_some_and(|l| l.up)),
                Kind::Check => check(&t.name),
            };
        }
    }

    /// Whether it can start: every tracked check has its first result (keepalived keeps an
    /// instance in INIT until then).
    pub fn ready(&self) -> bool {
        self.tracks.iter().all(|t| t.up.is_some())
    }

    pub fn started(&self) -> bool {
        self.started
    }

    /// Removes VIPs an earlier run left behind (a crash or kill -9 skips the cleanup), then
    /// starts the election; with a tracked object down, or unbound, it waits in FAULT, as
    /// keepalived does.
    pub async fn start(&mut self, now: Timestamp) {
        self.started = true;
        if self.bound.is_some() {
            for vip in self.all_vips() {
                match self.outputs.has_vip(&vip).await {
                    Ok(false) => {}
                    Ok(true) => {
                        self.remove_vip(&vip, now).await;
                        warn!(vrid = self.config.vrid, vip = %vip.addr, instance = %self.config.name, "removed a stale VIP left by an earlier run");
                    }
                    Err(e) => self.output_error(Warning::Vip, "cannot list the addresses", &e, now),
                }
            }
        }
        self.reevaluate(now).await;
        self.handle(Event::Startup, now).await;
    }

    /// Interface `name` changed (`link`; `None`: gone); `links` is the whole table now. Tracked
    /// interfaces follow it; the instance's own interface and VIP devices are bound again when
    /// they come back under another index.
    pub async fn link_changed(
        &mut self,
        name: &str,
        link: Option<&Link>,
        links: &Links,
        now: Timestamp,
    ) {
        for t in self.tracks.iter_mut().filter(|t| t.kind == Kind::Interface) {
            if t.name == name {
                t.up = Some(link.is_some_and(|l| l.up));
            }
        }
        if self.config.devices().any(|d| d == name) {
            let moved = self
                .bound
                .as_ref()
                .is_some_and(|b| b.get(name).copied() != link.map(|l| l.index));
            if moved {
                self.unbind_for(format!("interface {name} is gone"), now)
                    .await;
            }
            if self.bound.is_none() {
                self.rebind(links).await;
            }
        }
        self.reevaluate(now).await;
    }

    /// An address appeared on or went from interface `index`. While master, one of our VIPs
    /// that someone else deleted is put back at once (keepalived instead leaves MASTER and comes
    /// back after Skew_Time: a flap); `no_track` VIPs are left alone. An unbound instance whose
    /// interface got an address tries to bind again (it may have had none).
    pub async fn address_changed(
        &mut self,
        index: u32,
        addr: IpAddr,
        added: bool,
        links: &Links,
        now: Timestamp,
    ) {
        if added {
            let ours = links
                .get(&self.config.iface)
                .is_some_and(|l| l.index == index);
            if self.bound.is_none() && ours {
                self.rebind(links).await;
                self.reevaluate(now).await;
            }
            return;
        }
        if self.state() != State::Master {
            return;
        }
        let Some(vip) = self
            .all_vips()
            .into_iter()
            .find(|v| v.addr == addr && !v.no_track)
        else {
            return;
        };
        // Present again already (our own remove and add in quick succession): nothing to do.
        if self.outputs.has_vip(&vip).await.unwrap_or(false) {
            return;
        }
        self.restore(&vip, now).await;
    }

    /// The kernel saw ARP for `vip` from `mac` on interface `ifindex` while we were master: split
    /// brain, or an address conflict. Logged (rate-limited), counted, and answered with our own
    /// gratuitous ARP for that VIP, so clients that followed the claim come back (the kernel
    /// reports a VIP's conflicts at most once a second: so many answers at most). The election
    /// is not changed by it (adverts decide).
    pub async fn arp_conflict(&mut self, ifindex: u32, vip: Ipv4Addr, mac: [u8; 6], at: Timestamp) {
        let bound = self
            .bound
            .as_ref()
            .is_some_and(|b| b.values().any(|&i| i == ifindex));
        let ours = self.all_vips().into_iter().find(|v| v.addr == vip);
        let (Some(ours), State::Master, true) = (ours, self.state(), bound) else {
            return;
        };
        self.counters.arp_conflicts += 1;
        if let Some(suppressed) = self.due(Warning::Conflict, at) {
            let mac = mac.map(|b| format!("{b:02x}")).join(":");
            warn!(vrid = self.config.vrid, %vip, suppressed, instance = %self.config.name, "VIP claimed by {mac} while we are master: another router is master too (split brain), or a host uses the address; announcing it again");
        }
        let garp = self.config.garp;
        self.counters.garps_sent += u64::from(garp.count);
        self.outputs.announce(&[ours], garp.count, garp).await;
    }

    /// Puts back a VIP someone else deleted while we are master: logged (rate-limited), counted.
    async fn restore(&mut self, vip: &Vip, now: Timestamp) {
        if let Some(suppressed) = self.due(Warning::Restored, now) {
            warn!(vrid = self.config.vrid, vip = %vip.addr, suppressed, instance = %self.config.name, "VIP deleted by someone else while master: putting it back");
        }
        if self.add_vip(vip, now).await {
            self.counters.vips_restored += 1;
        }
    }

    /// After the kernel dropped netlink notifications (a resync): a master puts back VIPs that
    /// went missing meanwhile, an unbound instance tries its interface again.
    pub async fn resync(&mut self, links: &Links, now: Timestamp) {
        if self.bound.is_none() {
            self.rebind(links).await;
            self.reevaluate(now).await;
            return;
        }
        if self.state() != State::Master {
            return;
        }
        for vip in self.all_vips().into_iter().filter(|v| !v.no_track) {
            if !self.outputs.has_vip(&vip).await.unwrap_or(true) {
                self.restore(&vip, now).await;
            }
        }
    }

    /// Tries to bind after its interface appeared or changed; a failure is the FAULT cause.
    async fn rebind(&mut self, links: &Links) {
        match self.bind(links).await {
            Ok(()) if self.bound.is_some() => {
                info!(vrid = self.config.vrid, iface = %self.config.iface, instance = %self.config.name, "bound to interface index {}", self.ifindex().unwrap_or_default());
            }
            Ok(()) => {}
            Err(e) => {
                let cause = format!("cannot open interface {}: {e}", self.config.iface);
                if self.unbound.as_ref() != Some(&cause) {
                    warn!(instance = %self.config.name, "{cause}");
                }
                self.unbound = Some(cause);
                self.counters.output_errors += 1;
            }
        }
    }

    /// Leaves the interface: FAULT first (a master says goodbye and removes its VIPs while it
    /// still can), then the sockets close.
    async fn unbind_for(&mut self, cause: String, now: Timestamp) {
        info!(vrid = self.config.vrid, iface = %self.config.iface, instance = %self.config.name, "{cause}: closing the instance's sockets until it is back");
        self.unbound = Some(cause);
        self.reevaluate(now).await;
        self.unbind();
    }

    /// Closes its sockets and forgets it in the kernel (the agent stops it).
    pub fn unbind(&mut self) {
        if self.bound.take().is_some() {
            self.outputs.unbind();
            self.probing = None;
            self.established = false;
            self.written = None;
            self.watched = None;
        }
    }

    /// A tracked check changed.
    pub async fn check_changed(&mut self, name: &str, up: bool, now: Timestamp) {
        for t in self.tracks.iter_mut().filter(|t| t.kind == Kind::Check) {
            if t.name == name {
                t.up = Some(up);
            }
        }
        self.reevaluate(now).await;
    }

    /// Its sync group holds it in FAULT (`Some(cause)`) or releases it.
    pub async fn hold(&mut self, cause: Option<String>, now: Timestamp) {
        self.held = cause;
        self.reevaluate(now).await;
    }

    /// In FAULT for a reason of its own, not only because its sync group holds it there.
    pub fn own_fault(&self) -> bool {
        self.unbound.is_some() || self.tracks.iter().any(Track::faults)
    }

    /// Follows its sync group to MASTER or BACKUP.
    pub async fn follow(&mut self, event: Event, now: Timestamp) {
        self.handle(event, now).await;
    }

    /// The FAULT cause (unbound, a tracked object, the sync group) and the effective priority.
    fn evaluate(&self) -> (Option<String>, u8) {
        let weights = self
            .tracks
            .iter()
            .filter_map(|t| Some((t.weight, t.reverse, t.up?)));
        let priority = effective_priority(self.config.priority, weights);
        let tracked = self
            .tracks
            .iter()
            .find(|t| t.faults())
            .map(|t| match t.kind {
                Kind::Interface => format!("interface {} down", t.name),
                Kind::Check if t.reverse => format!("check {} succeeded (reverse)", t.name),
                Kind::Check => format!("check {} failed", t.name),
            });
        let cause = self
            .unbound
            .clone()
            .or(tracked)
            .or_else(|| self.held.clone());
        (cause, priority.unwrap_or(self.machine.priority()))
    }

    /// Recomputes priority and FAULT, as keepalived does, once started.
    async fn reevaluate(&mut self, now: Timestamp) {
        if !self.started {
            return;
        }
        let (fault, priority) = self.evaluate();
        if priority != self.machine.priority() {
            info!(instance = %self.config.name, "priority {} -> {priority}", self.machine.priority());
            self.handle(Event::PriorityChanged(priority), now).await;
            // The Master_Down_Interval, and which master's adverts restart it, follow it.
            self.sync_kernel(now);
        }
        match (self.fault.is_some(), fault) {
            (false, Some(cause)) => {
                self.fault = Some(cause);
                self.handle(Event::Fault, now).await;
            }
            (true, None) => {
                self.fault = None;
                self.handle(Event::FaultCleared, now).await;
            }
            // Still in FAULT, perhaps for another reason now: keep the cause current.
            (true, cause) => self.fault = cause,
            (false, None) => {}
        }
    }

    /// What the XDP program needs to check and classify this instance's adverts.
    fn kernel_entry(&self) -> InstanceEntry {
        let (auth_type, auth_data) = match self.config.auth_pass {
            Some(pass) => (VRRP_AUTH_PASS, pass),
            None => (VRRP_AUTH_NONE, [0; 8]),
        };
        let ours = AddrList::of(self.advertised());
        InstanceEntry {
            local_addr: addr_bytes(self.machine.params().primary_addr),
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
            liveness: self.config.liveness.is_some().into(),
            // With skip_check_adv_addr the agent decides per source (`checks_addrs_from`).
            addr_count: if self.config.skip_check_adv_addr {
                0
            } else {
                ours.count
            },
            addr_digest: ours.digest,
            ..self.kernel_watch()
        }
    }

    /// The Master_Down timer the kernel keeps: as backup, restarted by the adverts that restart
    /// ours whatever the time (not those accepted only under preempt_delay), for our
    /// Master_Down_Interval.
    fn kernel_watch(&self) -> InstanceEntry {
        let params = self.machine.params();
        let steady = |prio: u8| !params.preempt || prio >= self.machine.priority();
        match self.accepted {
            Some((src, priority, interval_cs))
                if self.state() == State::Backup && steady(priority) =>
            {
                InstanceEntry {
                    watch_src: addr_bytes(src),
                    watch_interval_cs: interval_cs,
                    watch_priority: priority,
                    watch_down_ns: self.machine.master_down_interval().as_nanos() as u64,
                    ..InstanceEntry::zeroed()
                }
            }
            _ => InstanceEntry::zeroed(),
        }
    }

    fn set_kernel(&mut self, now: Timestamp) {
        if self.bound.is_none() {
            return;
        }
        let entry = self.kernel_entry();
        match self.outputs.set_kernel(&entry) {
            Ok(()) => self.written = Some(entry),
            Err(e) => {
                let what = "cannot update the kernel's record of the instance";
                self.output_error(Warning::Kernel, what, &e, now);
            }
        }
    }

    /// Tells the kernel what changed since it was last told: transitions write the entry
    /// themselves, an accepted advert or a new priority may change the master it watches. Not
    /// per event: a master's advert timer changes nothing here.
    fn sync_kernel(&mut self, now: Timestamp) {
        if self.started && self.written != Some(self.kernel_entry()) {
            self.set_kernel(now);
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
            local_addr: self.machine.params().primary_addr,
        }
    }

    /// A received IP packet of the instance's family (from the XDP ring buffer or the raw
    /// socket, which tells whether the kernel `reassembled` it from fragments) that may be a
    /// VRRP advert for this instance: the receive checks, then the election.
    pub async fn on_packet(&mut self, packet: &[u8], reassembled: bool, at: Timestamp) {
        // The other family's routers: separate virtual routers, whatever their VRIDs.
        if ip_version(packet) != Some(if self.config.is_ipv6() { 6 } else { 4 }) {
            return;
        }
        let checked = decode(packet)
            .and_then(|a| a.check(&self.expect()).map(|()| a))
            .and_then(|a| match reassembled {
                // The XDP program sees the fragments and drops them: the same verdict.
                true => Err(DecodeError::Fragment),
                false => Ok(a),
            })
            .and_then(|a| match self.checks_addrs_from(a.src) {
                true => a
                    .check_addrs(&self.advertised().collect::<Vec<_>>())
                    .map(|()| a),
                false => Ok(a),
            });
        let advert = match checked {
            Ok(a) => a,
            // Other groups share the segment: normal, not worth a log line.
            Err(DecodeError::VridMismatch { .. }) => return,
            Err(e) => return self.reject(e.reason(), &e, packet, at),
        };
        if !self.is_peer(advert.src) {
            let why = "source is not a configured unicast_peer";
            return self.reject("not a unicast peer", &why, packet, at);
        }
        self.last_advert = self.last_advert.max(at);
        self.counters.adverts_received += 1;
        self.counters.priority_zero_received += u64::from(advert.priority == 0);
        self.on_advert(advert.src, advert.priority, advert.interval_cs, at)
            .await;
    }

    /// An accepted advert for the election; one that restarted the Master_Down timer is the one
    /// the kernel's copy of the timer follows ([`Instance::kernel_watch`]).
    async fn on_advert(&mut self, src: IpAddr, priority: u8, interval_cs: u16, at: Timestamp) {
        let event = self.advert_event(src, priority, interval_cs, at);
        self.handle(event, at).await;
        let restarted = self.machine.deadline(Timer::MasterDown)
            == Some(at + self.machine.master_down_interval());
        if self.state() == State::Backup && priority != 0 && restarted {
            self.accepted = Some((src, priority, interval_cs));
        }
        self.sync_kernel(at);
    }

    /// Its state, settings in force and counters, for `vrrp-agent status`.
    pub fn status(&self, now: Timestamp) -> Status {
        let secs = |at: Timestamp| Duration::from_nanos(now.0.saturating_sub(at.0)).as_secs_f64();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let state = self.state();
        let (kernel, kernel_error) = match self.outputs.peer() {
            Ok(peer) => (peer, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let kernel = kernel.map(|p| KernelStatus {
            adverts: p.count,
            rejected: p.rejected,
            last_source: (p.count > 0).then(|| addr_of(p.src)),
            last_priority: (p.count > 0).then_some(p.priority),
            last_interval_ms: (p.count > 0).then(|| f64::from(p.interval_cs) * 10.0),
            last_age_secs: (p.count > 0).then(|| secs(Timestamp(p.t_ns))),
            advert_gaps: (p.gaps.iter().enumerate())
                .map(|(i, &count)| GapBucket {
                    le_secs: gap_bucket_bound_secs(i),
                    count,
                })
                .collect(),
            advert_gap_sum_secs: p.gap_sum_ns as f64 / 1e9,
            master_down_timer: self.watched.is_some(),
        });
        Status {
            name: self.config.name.clone(),
            iface: self.config.iface.clone(),
            vrid: self.config.vrid,
            state: state.to_string(),
            priority: self.machine.priority(),
            base_priority: self.config.priority,
            master: match state {
                State::Master => Some(self.machine.params().primary_addr),
                State::Backup => self.machine.followed(),
                State::Initialize | State::Fault => None,
            },
            advert_interval_ms: ms(self.config.advert_interval),
            master_advert_interval_ms: ms(self.machine.master_adver_interval()),
            receive_path: if self.records_adverts() {
                "kernel"
            } else {
                "raw socket"
            },
            fault: self.fault.clone(),
            last_transition_secs: self.last_transition.as_ref().map(|(at, _)| secs(*at)),
            last_transition: self.last_transition.as_ref().map(|(_, line)| line.clone()),
            counters: self.counters.clone(),
            kernel,
            kernel_error,
            liveness: self
                .probing
                .zip(self.outputs.session())
                .map(|(follow, s)| LivenessStatus {
                    probing: follow.master,
                    interval_ms: ms(follow.liveness.interval),
                    reflections: s.count,
                    lost: s.lost,
                    longest_gap_ms: s.max_gap_ns as f64 / 1e6,
                }),
            reflector: (state == State::Master && self.config.liveness.is_some())
                .then(|| self.outputs.reflector())
                .flatten()
                .map(|r| ReflectorStatus {
                    first_in_line: (r.t_ns > 0).then(|| Ipv4Addr::from(r.src)),
                    limited: r.limited,
                }),
            vips: self.vip_status(&self.config.vips),
            excluded_vips: self.vip_status(&self.config.excluded_vips),
            tracked: (self.tracks.iter())
                .map(|t| TrackStatus {
                    kind: match t.kind {
                        Kind::Interface => "interface",
                        Kind::Check => "check",
                    },
                    name: t.name.clone(),
                    weight: t.weight,
                    up: t.up,
                })
                .collect(),
        }
    }

    fn vip_status(&self, vips: &[Vip]) -> Vec<VipStatus> {
        let on = |v: &Vip| v.dev.clone().unwrap_or_else(|| self.config.iface.clone());
        vips.iter()
            .map(|v| VipStatus {
                addr: v.addr,
                iface: on(v),
            })
            .collect()
    }

    /// Counts a rejected advert by `reason`; the `error` text is only formatted when its log
    /// line is due (a flood of rejects formats nothing).
    fn reject(
        &mut self,
        reason: &'static str,
        error: &dyn std::fmt::Display,
        packet: &[u8],
        at: Timestamp,
    ) {
        self.counters.rejected += 1;
        *self.counters.rejected_by.entry(reason).or_default() += 1;
        let Some(suppressed) = self.due(Warning::Rejected, at) else {
            return;
        };
        let src = source(packet);
        warn!(
            vrid = self.config.vrid,
            src = ?src,
            suppressed,
            instance = %self.config.name,
            "ignored advert: {error}"
        );
    }

    /// Fires the timers that are due. Before declaring the master down it asks the kernel whether
    /// an advert arrived that the agent has not processed yet (a late wake-up under load), and
    /// feeds that first, stamped with its arrival time; while frames wait in this host's receive
    /// backlogs, it asks again once they are through.
    pub async fn on_timers(&mut self, now: Timestamp) {
        self.look_at_draining(now).await;
        let looked = self.drops.map(|(_, t)| t);
        if self.probing.is_some()
            && self.established
            && looked.is_none_or(|t| now >= t + DROPS_LOOK)
        {
            self.look_at_drops(now);
        }
        // As the agent wakes for them: a deadline the kernel keeps waits for its word (another
        // instance's timer must not make this one read the kernel's record each time).
        while let Some((timer, _)) = self.next_deadline().filter(|&(_, wake)| wake <= now) {
            let Some(at) = self.machine.deadline(timer) else {
                break;
            };
            let down = timer == Timer::MasterDown;
            let missed = down && self.watched == Some(at) && now >= at + WATCH_GRACE;
            // The backlogs before the kernel's record: an advert through them by the first read
            // is in the record by the second. A deadline already a grace period late waits no
            // more.
            let holds = down && !missed && self.backlog_holds(at, now);
            if down && self.unheard_advert(now).await && self.machine.deadline(timer) != Some(at) {
                continue;
            }
            if holds {
                break;
            }
            if missed {
                self.counters.watch_missed += 1;
                let late = Duration::from_nanos(now.0.saturating_sub(at.0));
                if let Some(suppressed) = self.due(Warning::Kernel, now) {
                    warn!(instance = %self.config.name, suppressed, "the kernel's Master_Down timer did not wake the agent (its ring buffer full?): taking over {late:?} late");
                }
            }
            if timer == Timer::Adver {
                self.adver_due(at, now);
            }
            self.handle(Event::TimerExpired(timer), now).await;
            if timer == Timer::Adver && self.vips_missing {
                self.add_vips(now).await;
            }
        }
    }

    /// The advert due at `at` goes out at `now`: half an interval late or more (a backup hears a
    /// gap of 1.5 intervals; one 2.6 intervals late is a silence a backup of priority 100 takes
    /// for a dead master) is counted and said, rate-limited.
    fn adver_due(&mut self, at: Timestamp, now: Timestamp) {
        let late = Duration::from_nanos(now.0.saturating_sub(at.0));
        let interval = self.machine.params().advert_interval;
        if late < interval / 2 {
            return;
        }
        self.counters.adverts_late += 1;
        if let Some(suppressed) = self.due(Warning::Late, now) {
            warn!(instance = %self.config.name, suppressed, "advert sent {late:.1?} late ({interval:?} interval): the agent could not run sooner; see what keeps this host's CPUs busy (the agent runs at realtime priority unless --rt-priority 0); backups take over from a master silent for Master_Down_Interval");
        }
    }

    /// Whether Master_Down at `at` waits for the frames this host's receive backlogs held when it
    /// came due (the kernel path: the kernel records the advert once it is through). Not longer
    /// than one advert interval; an idle host, or backlogs that cannot be read, do not wait.
    fn backlog_holds(&mut self, at: Timestamp, now: Timestamp) -> bool {
        let give_up = at + self.machine.master_adver_interval();
        let held = self.held_down.take().filter(|h| h.at == at);
        let backlog = match now < give_up && self.records_adverts() {
            true => self.outputs.backlog(),
            false => None,
        };
        let Some(backlog) = backlog else {
            self.held_down = held;
            return false;
        };
        let mut held = held.unwrap_or_else(|| HeldDown {
            at,
            waiting: Waiting::of(&backlog),
            since: now,
            next: now,
        });
        held.next = (now + DRAIN_POLL).min(give_up);
        let holds = !held.waiting.through(&backlog);
        // Kept once through as well: the record, read next, may show the advert it waited for.
        self.held_down = Some(held);
        holds
    }

    /// The deadline `at`, held for the backlogs since an earlier look, was moved by the master's
    /// advert that came through them: logged (rate-limited) and counted.
    fn advert_was_held(&mut self, at: Timestamp, now: Timestamp) {
        self.held_down = None;
        self.counters.master_down_held += 1;
        if let Some(suppressed) = self.due(Warning::Held, now) {
            let late = Duration::from_nanos(now.0.saturating_sub(at.0));
            info!(vrid = self.config.vrid, suppressed, instance = %self.config.name, "Master_Down_Timer was due while frames waited in this host's receive backlog; the master's advert was among them ({late:.1?} after the deadline): still backup");
        }
    }

    /// Feeds the kernel's record of an advert the agent has not seen yet; whether there was one.
    async fn unheard_advert(&mut self, now: Timestamp) -> bool {
        let peer = match self.outputs.peer() {
            Ok(Some(peer)) => peer,
            Ok(None) => return false,
            Err(e) => {
                let what = "cannot read the kernel's record of the peers";
                self.output_error(Warning::Kernel, what, &e, now);
                return false;
            }
        };
        let (arrived, src) = (Timestamp(peer.t_ns), addr_of(peer.src));
        // With skip_check_adv_addr the kernel records adverts with any address list.
        let unchecked = self.config.skip_check_adv_addr && self.checks_addrs_from(src);
        let fresh = peer.count > 0 && arrived > self.last_advert && self.is_peer(src) && !unchecked;
        if fresh {
            // A deadline held for the backlogs since an earlier look, moved by this advert.
            let down = self.machine.deadline(Timer::MasterDown);
            let held = (self.held_down.as_ref())
                .filter(|h| Some(h.at) == down && h.since < now)
                .map(|h| h.at);
            self.last_advert = arrived;
            self.on_advert(src, peer.priority, peer.interval_cs, arrived)
                .await;
            if let Some(at) = held.filter(|_| self.machine.deadline(Timer::MasterDown) != down) {
                self.advert_was_held(at, now);
            }
        }
        // The kernel's timer is due when ours is, and still to come: it will wake the agent.
        let ours = self.machine.deadline(Timer::MasterDown);
        self.watched = ours.filter(|&at| at == Timestamp(peer.watch_ns) && at > now);
        fresh
    }

    /// The kernel's Master_Down timer fired (its ring event, stamped `at`): what the agent does
    /// at its own deadline, now.
    pub async fn kernel_master_down(&mut self, at: Timestamp, now: Timestamp) {
        if self.watched.take().is_some() {
            self.counters.kernel_master_down += 1;
            debug!(instance = %self.config.name, "kernel Master_Down timer fired {:?} ago", Duration::from_nanos(now.0.saturating_sub(at.0)));
        }
        self.on_timers(now).await;
    }

    /// An accepted advert, for the election. A VRRPv3 interval above `max_adopted_interval` (a
    /// misconfigured or spoofed master: one advert with 40.95 s would leave the VIP unowned for
    /// two minutes once its sender is silent) is adopted as that maximum, logged and counted.
    fn advert_event(
        &mut self,
        src: IpAddr,
        priority: u8,
        interval_cs: u16,
        at: Timestamp,
    ) -> Event {
        let sent = Duration::from_millis(u64::from(interval_cs) * 10);
        let max = self.config.max_adopted_interval;
        if sent > max && self.config.version == Version::V3 {
            self.counters.intervals_capped += 1;
            if let Some(suppressed) = self.due(Warning::Interval, at) {
                warn!(
                    instance = %self.config.name,
                    %src,
                    suppressed,
                    "advert interval {sent:?} above max_adopted_interval {max:?}: adopting \
                     {max:?}; raise max_adopted_interval in vrrp_agent if this master is meant \
                     to be that slow"
                );
            }
        }
        Event::Advert {
            src,
            priority,
            interval: sent.min(max),
        }
    }

    /// Whether the address list of an advert from `src` is compared with ours: always, but with
    /// `skip_check_adv_addr` (keepalived's meaning) for a backup's adverts from the master it
    /// follows, whose list was compared when it became that master.
    fn checks_addrs_from(&self, src: IpAddr) -> bool {
        let followed = self.state() == State::Backup && self.machine.followed() == Some(src);
        !(self.config.skip_check_adv_addr && followed)
    }

    /// The addresses our adverts list: `virtual_ipaddress`, not `virtual_ipaddress_excluded`.
    fn advertised(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.config.vips.iter().map(|v| v.addr)
    }

    /// Whether adverts from `src` count: any source, or one of the `unicast_peer`s.
    fn is_peer(&self, src: IpAddr) -> bool {
        let peers = &self.config.unicast_peers;
        peers.is_empty() || peers.contains(&src)
    }

    /// Whether the kernel records this instance's adverts (the XDP path).
    pub fn records_adverts(&self) -> bool {
        self.outputs.records_adverts()
    }

    /// Whether its Master_Down_Timer is due at `now` and only the agent knows of the adverts
    /// (the raw-socket path): adverts waiting in the socket must be handled first.
    pub fn master_down_due_unrecorded(&self, now: Timestamp) -> bool {
        let due = self
            .machine
            .deadline(Timer::MasterDown)
            .is_some_and(|at| at <= now);
        due && !self.records_adverts()
    }

    /// After our goodbye at `since`: the router the kernel heard advertise since then with a
    /// non-zero priority, i.e. the new master (None on the raw-socket path).
    pub fn successor(&self, since: Timestamp) -> Option<IpAddr> {
        let peer = self.outputs.peer().ok()??;
        let src = addr_of(peer.src);
        (peer.t_ns > since.0 && peer.priority > 0 && self.is_peer(src)).then_some(src)
    }

    /// Stops the election: a master says goodbye (priority 0) and removes its VIPs; notify_stop
    /// runs. The instance stays bound (the agent may still read the kernel's record).
    pub async fn shutdown(&mut self, now: Timestamp) {
        self.handle(Event::Shutdown, now).await;
        self.outputs
            .notify(State::Initialize, self.machine.priority());
    }

    async fn handle(&mut self, event: Event, now: Timestamp) {
        let actions = self.machine.handle(event, now);
        // The transition's line comes first, stamped when it was decided (as keepalived's
        // "Entering MASTER STATE" precedes its VIPs): adding VIPs waits for the host's RTNL
        // lock, which another process may hold for milliseconds.
        for (action, reason) in &actions {
            if let Action::Transition { from, to } = *action {
                self.log_transition(from, to, *reason, now);
            }
        }
        for (action, _) in actions {
            self.act(action, now).await;
        }
        self.probe_master(now);
    }

    /// The liveness channel: as backup, probe the master it follows (with our priority now);
    /// else nothing. Only where the kernel program runs, which reflects and times the probes.
    fn probe_master(&mut self, now: Timestamp) {
        let target = match (self.config.liveness, self.machine.followed()) {
            // IPv4 only (the configuration refuses it for IPv6).
            (Some(liveness), Some(IpAddr::V4(master)))
                if self.state() == State::Backup && self.outputs.records_adverts() =>
            {
                Some((liveness, master))
            }
            _ => None,
        };
        if target.map(|(_, m)| m) != self.probing.map(|f| f.master) {
            self.established = false;
        }
        let want = target.map(|(liveness, master)| Follow {
            master,
            priority: self.machine.priority(),
            liveness,
            established: self.established,
        });
        if want == self.probing {
            return;
        }
        match self.outputs.probe(want) {
            Ok(()) => self.probing = want,
            Err(e) => {
                let what = "cannot probe the master (liveness channel; VRRP timing still holds)";
                self.output_error(Warning::Liveness, what, &e, now);
            }
        }
    }

    /// The kernel says the liveness channel with the master we probe came up (it reflects:
    /// probe every interval now) or fell silent.
    pub async fn liveness_changed(&mut self, change: LivenessChange, at: Timestamp) {
        let master = Ipv4Addr::from(change.peer);
        let Some(follow) = self.probing.filter(|f| f.master == master) else {
            return;
        };
        if change.up == 0 {
            return self.master_silent(change, follow.liveness, at).await;
        }
        if !self.established {
            self.look_at_drops(at);
            if let Some(suppressed) = self.due(Warning::LivenessUp, at) {
                let l = follow.liveness;
                info!(vrid = self.config.vrid, %master, suppressed, instance = %self.config.name, "liveness channel up: probing every {:?}, taking over after {:?} of silence", l.interval, l.detect());
            }
        }
        self.established = true;
        self.probe_master(at);
    }

    /// No reflection from `down.peer` for the detection time. Only the backup first in line
    /// takes over early (the others keep VRRP's timing, so two never both do).
    async fn master_silent(&mut self, down: LivenessChange, liveness: Liveness, at: Timestamp) {
        let master = Ipv4Addr::from(down.peer);
        if down.first == 0 || self.machine.followed() != Some(IpAddr::V4(master)) {
            return;
        }
        let silence = Draining {
            master,
            last: Timestamp(down.last_ns),
            next: at,
        };
        self.judge_silence(silence, liveness, true, at).await;
    }

    /// Whether the silence since `silence.last` proves the master gone; `first`: as reported,
    /// else a look while it waits for the backlogs to drain. No proof: a reflection came after
    /// all; our own probes did not go out on time; the channel or this host lost frames lately;
    /// the master's adverts still arrive (one later than a probe interval after the last
    /// reflection was sent after the master stopped reflecting, so it lives and the channel
    /// lost probes).
    async fn judge_silence(
        &mut self,
        mut silence: Draining,
        liveness: Liveness,
        first: bool,
        now: Timestamp,
    ) {
        let (master, last) = (silence.master, silence.last);
        let session = self.outputs.session().unwrap_or_default();
        if session.last_ns > last.0 {
            // A reflection came after the silence was reported: in time, or held up on this
            // host.
            if !first {
                self.distrust(
                    master,
                    "its reflection came late, held up in this host's receive backlog",
                    now,
                );
            }
            return;
        }
        self.unheard_advert(now).await;
        let backlog = self.outputs.backlog();
        self.note_drops(backlog.as_deref(), now);
        // The probes that had half an interval to come back: multiplier - 1 when the master
        // died right after the last reflection.
        let answerable = Timestamp(
            now.0
                .saturating_sub(liveness.interval.as_nanos() as u64 / 2),
        );
        let sent = self.outputs.probes_sent(last, answerable);
        let distrust = if sent < usize::from(liveness.multiplier - 1).min(SENT_KEPT) {
            Some("this host did not send its probes on time (a stalled CPU)")
        } else if session.troubled_ns > 0
            && last.0 < session.troubled_ns + TROUBLE_HOLD.as_nanos() as u64
        {
            Some("the channel lost or held up probes in the last second (a flood or a busy CPU on the way)")
        } else if self.dropped_at.is_some_and(|t| t + TROUBLE_HOLD > last) {
            Some("this host dropped received frames in the last second (a full backlog: a flood, or receive work on a busy CPU)")
        } else if self.last_advert > last + liveness.interval {
            Some("the master's adverts still arrive (probes lost on the way)")
        } else {
            None
        };
        if let Some(why) = distrust {
            return self.distrust(master, why, now);
        }
        // Unreadable at the silence: nothing to wait for (as on a kernel without the file);
        // unreadable while waiting: the frames waiting may not be through.
        let backlog =
            match backlog {
                Some(backlog) => backlog,
                None if first => Vec::new(),
                None => return self.distrust(
                    master,
                    "this host's receive backlogs could not be read while frames waited in them",
                    now,
                ),
            };
        // Not only the frames waiting at the silence: a reflection still on its way then (the
        // bridge, the master) queues behind them under a flood, so only an empty backlog
        // proves none is waiting.
        if !Waiting::of(&backlog).0.is_empty() {
            silence.next = now + DRAIN_POLL;
            self.draining = Some(silence);
            return;
        }
        self.silent_since = Some(last);
        self.handle(Event::MasterGone { src: master.into() }, now)
            .await;
    }

    /// A silence that is no proof: logged (rate-limited) and counted; VRRP's timing decides.
    fn distrust(&mut self, master: Ipv4Addr, why: &str, now: Timestamp) {
        self.counters.liveness_distrusted += 1;
        if let Some(suppressed) = self.due(Warning::Liveness, now) {
            warn!(vrid = self.config.vrid, %master, suppressed, instance = %self.config.name, "liveness channel silent, not trusted: {why}; VRRP timing decides");
        }
    }

    /// A silence waiting for the backlogs to drain, looked at again when due; dropped once the
    /// instance no longer probes that master.
    async fn look_at_draining(&mut self, now: Timestamp) {
        let Some(silence) = self.draining.take_if(|d| now >= d.next) else {
            return;
        };
        if let Some(follow) = self.probing.filter(|f| f.master == silence.master) {
            self.judge_silence(silence, follow.liveness, false, now)
                .await;
        }
    }

    /// Whether the host's backlog dropped frames since the last look: reflections may have been
    /// among them, and the channel cannot tell which.
    fn look_at_drops(&mut self, now: Timestamp) {
        let backlog = self.outputs.backlog();
        self.note_drops(backlog.as_deref(), now);
    }

    fn note_drops(&mut self, backlog: Option<&[Softnet]>, now: Timestamp) {
        // Summed as the 32-bit counters count, wrapping: a CPU's counter that wraps between two
        // looks still changes the sum.
        let sum = |b: &[Softnet]| b.iter().fold(0u32, |sum, c| sum.wrapping_add(c.dropped));
        let Some(drops) = backlog.map(sum) else {
            return;
        };
        if self.drops.is_some_and(|(before, _)| drops != before) {
            self.dropped_at = Some(now);
        }
        self.drops = Some((drops, now));
    }

    /// One line per transition, with its reason (rate-limited); kept for `status`.
    fn log_transition(&mut self, from: State, to: State, reason: Reason, now: Timestamp) {
        let cause = match (reason, &self.fault) {
            (Reason::Fault, Some(cause)) => format!(" ({cause})"),
            // How long the master was silent: the margin a busy link left, or not.
            (Reason::MasterDownTimerExpired, _) if self.last_advert.0 > 0 => {
                let silent = Duration::from_nanos(now.0.saturating_sub(self.last_advert.0));
                format!(" (last advert heard {silent:.1?} before)")
            }
            (Reason::MasterGone { .. }, _) => {
                let since = self.silent_since.take().unwrap_or(now);
                let silent = Duration::from_nanos(now.0.saturating_sub(since.0));
                format!(" (last reflection {silent:.1?} before)")
            }
            _ => String::new(),
        };
        if let Some(held) = self.transition_log.due(now, TRANSITION_LINES) {
            let held = match held {
                0 => String::new(),
                n => format!(" ({n} transitions before this one not logged)"),
            };
            info!(
                vrid = self.config.vrid,
                iface = %self.config.iface,
                instance = %self.config.name,
                "{from} -> {to}: {reason}{cause}{held}"
            );
        }
        self.last_transition = Some((now, format!("{from} -> {to}: {reason}{cause}")));
    }

    async fn act(&mut self, action: Action, now: Timestamp) {
        match action {
            Action::Transition { from, to } => {
                if to == State::Master {
                    self.counters.became_master += 1;
                }
                if from == State::Master {
                    self.counters.released_master += 1;
                }
                self.accepted = None;
                self.set_kernel(now);
                // Shutdown reaches INIT; `shutdown` reports it once the instance is down.
                if to != State::Initialize {
                    self.outputs.notify(to, self.machine.priority());
                }
            }
            Action::SendAdvert { priority } => self.send_advert(priority, now).await,
            // With no_accept the agent's firewall set already drops their traffic (firewall.rs).
            Action::AddVips => self.add_vips(now).await,
            Action::RemoveVips => {
                self.vips_missing = false;
                for vip in self.all_vips() {
                    self.remove_vip(&vip, now).await;
                }
            }
            Action::SendGarp(burst) => {
                let count = match burst {
                    Burst::Master => self.config.garp.count,
                    Burst::LowerPriority => self.config.garp.lower_prio_count,
                };
                let vips = self.all_vips();
                self.counters.garps_sent += u64::from(count) * vips.len() as u64;
                self.outputs.announce(&vips, count, self.config.garp).await;
            }
            // The driver sleeps until `next_deadline()`; the machine keeps the deadlines.
            Action::ArmTimer { .. } | Action::CancelTimer(_) => {}
        }
    }

    async fn add_vips(&mut self, now: Timestamp) {
        let mut all = true;
        for vip in self.all_vips() {
            all &= self.add_vip(&vip, now).await;
        }
        if self.vips_missing && all {
            info!(instance = %self.config.name, "all VIPs added on a later try");
        }
        self.vips_missing = !all;
    }

    async fn add_vip(&mut self, vip: &Vip, now: Timestamp) -> bool {
        match self.outputs.add_vip(vip).await {
            Ok(()) => true,
            Err(e) => {
                let what = format!("cannot add VIP {} (tried again at each advert)", vip.addr);
                self.output_error(Warning::Vip, &what, &e, now);
                false
            }
        }
    }

    async fn remove_vip(&mut self, vip: &Vip, now: Timestamp) {
        if let Err(e) = self.outputs.remove_vip(vip).await {
            let what = format!("cannot remove VIP {}", vip.addr);
            self.output_error(Warning::Vip, &what, &e, now);
        }
    }

    /// A recoverable error: counted, logged (rate-limited), and the instance carries on.
    fn output_error(
        &mut self,
        kind: Warning,
        what: &str,
        error: &impl std::fmt::Display,
        now: Timestamp,
    ) {
        self.counters.output_errors += 1;
        if let Some(suppressed) = self.due(kind, now) {
            warn!(vrid = self.config.vrid, instance = %self.config.name, suppressed, "{what}: {error}");
        }
    }

    /// `Some(held back since the last line)` when a warning of `kind` is due.
    fn due(&mut self, kind: Warning, now: Timestamp) -> Option<u64> {
        self.logs.entry(kind).or_default().due(now, 1)
    }

    /// The VIPs whose traffic is dropped while this instance is master (`no_accept`).
    pub fn no_accept_vips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let drop = !self.machine.params().accepts_vip_traffic();
        let vips = self.config.vips.iter().chain(&self.config.excluded_vips);
        vips.filter(move |_| drop).map(|v| v.addr)
    }

    /// Every VIP, excluded ones too.
    fn all_vips(&self) -> Vec<Vip> {
        let vips = self.config.vips.iter().chain(&self.config.excluded_vips);
        vips.cloned().collect()
    }

    async fn send_advert(&mut self, priority: u8, now: Timestamp) {
        let addrs: Vec<IpAddr> = self.advertised().collect();
        let multicast = match self.config.is_ipv6() {
            true => IpAddr::V6(VRRP_MULTICAST_V6),
            false => IpAddr::V4(VRRP_MULTICAST_V4),
        };
        let dsts = if self.config.unicast_peers.is_empty() {
            vec![multicast]
        } else {
            self.config.unicast_peers.clone()
        };
        let mut spec = AdvertSpec {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            interval_cs: self.interval_cs(),
            auth: self.config.auth_pass.map_or(Auth::None, Auth::Pass),
            src: self.machine.params().primary_addr,
            dst: multicast,
            ip_id: 0,
            checksum_form: self.config.checksum,
            addrs: &addrs,
        };
        for dst in dsts {
            // The kernel fills in its own id for 0; keep ours, as keepalived does.
            self.ip_id = self.ip_id.checked_add(1).unwrap_or(1);
            spec.dst = dst;
            spec.ip_id = self.ip_id;
            let mut buf = [0; MAX_ADVERT_LEN];
            // The configuration bounds the VIP count and keeps one family, so this only fails
            // if that were broken: said and counted, as a send that fails.
            let len = match encode(&spec, &mut buf) {
                Ok(len) => len,
                Err(e) => {
                    self.output_error(Warning::Advert, "cannot build an advert", &e, now);
                    continue;
                }
            };
            // A lost advert is covered by the next one: log and go on.
            match self.outputs.send_advert(&buf[..len]).await {
                Ok(()) => {
                    self.counters.adverts_sent += 1;
                    self.counters.priority_zero_sent += u64::from(priority == 0);
                }
                Err(e) => {
                    let what = format!("cannot send advert to {dst}");
                    self.output_error(Warning::Advert, &what, &e, now);
                }
            }
        }
    }
}

/// The instance's tracked objects with their weights: a `track_script` entry's weight overrides
/// the check's own; a `track_interface` without weight, and the instance's own interface, mean
/// FAULT when down.
fn tracks(config: &VrrpInstance, checks: &[Check]) -> Vec<Track> {
    let own = config.track_primary.then(|| Track {
        kind: Kind::Interface,
        name: config.iface.clone(),
        weight: 0,
        reverse: false,
        up: None,
    });
    let interfaces = config.track_interfaces.iter().map(|t| Track {
        kind: Kind::Interface,
        name: t.name.clone(),
        weight: t.weight.unwrap_or(0),
        reverse: false,
        up: None,
    });
    let tracked_checks = config.track_checks.iter().filter_map(|t| {
        let check = checks.iter().find(|c| c.name == t.name)?;
        Some(Track {
            kind: Kind::Check,
            name: t.name.clone(),
            weight: t.weight.unwrap_or(check.weight),
            reverse: check.reverse,
            up: check.init_fail.then_some(false),
        })
    });
    own.into_iter()
        .chain(interfaces)
        .chain(tracked_checks)
        .collect()
}
