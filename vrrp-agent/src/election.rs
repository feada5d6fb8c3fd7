//! The VRRP election as a pure state machine: `(state, event, now) -> (state, actions)`.
//!
//! Rules come from RFC 9568 §6 (VRRPv3, which says "Active" where this module says "Master", as
//! keepalived does), RFC 3768 §6 for v2 timing, and keepalived where the RFCs are silent
//! (preempt_delay, garp_master_delay, priority changes, FAULT). No sockets, clocks or logging
//! here: the driver feeds [`Event`]s stamped with CLOCK_MONOTONIC and performs the returned
//! [`Action`]s in order, each paired with the [`Reason`] to log.
//!
//! Timers: the machine owns its deadlines ([`Machine::deadline`], [`Machine::next_deadline`]) and
//! ignores a [`Event::TimerExpired`] that is early or for a timer no longer armed. The driver must
//! feed pending adverts (stamped with their kernel arrival time) *before* a timer expiry it woke up
//! late for, so an advert that arrived in time re-arms the timer and prevents a false failover.
//!
//! Preconditions left to the receive path and the config model: adverts are already validated
//! (TTL, VRID, checksum, non-zero interval; v2 adverts with a different interval are discarded),
//! and the configured priority and interval are in range.

use core::cmp::Ordering;
use core::fmt;
use core::ops::Add;
use core::time::Duration;
use std::net::IpAddr;

use vrrp_common::Version;

#[cfg(test)]
mod tests;

/// The priority of the address owner (RFC 9568 §5.2.4).
const OWNER_PRIORITY: u8 = 255;

/// Shortest time between two lower-priority gratuitous ARP bursts: however many lower-priority
/// adverts arrive (a flood, spoofed or not), at most ten bursts a second go out.
pub const LOWER_PRIO_GARP_MIN_GAP: Duration = Duration::from_millis(100);

/// Adverts sent in answer to others' ([`Machine::answer`]), at most, per advert interval of ours.
pub const ANSWERS_PER_INTERVAL: u32 = 4;

/// A point in time: nanoseconds of CLOCK_MONOTONIC, the clock of the kernel's `bpf_ktime_get_ns`,
/// so XDP arrival stamps can be used as `now`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, rhs: Duration) -> Timestamp {
        let nanos = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(nanos))
    }
}

/// One VRRP instance's election parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub vrid: u8,
    pub version: Version,
    /// 1..=255; 255 means address owner. 0 is treated as 1 (it is the "shutting down" value).
    pub priority: u8,
    pub advert_interval: Duration,
    pub preempt: bool,
    /// keepalived `preempt_delay`: how long a backup keeps accepting a lower-priority master.
    pub preempt_delay: Duration,
    pub accept_mode: bool,
    /// Our primary address: the source of our adverts and the tie-breaker at equal priority.
    pub primary_addr: IpAddr,
    /// keepalived `garp_master_delay`: gratuitous ARP once more this long after becoming master.
    pub garp_repeat: Option<Duration>,
    /// keepalived `garp_master_refresh`: gratuitous ARP again every this long while master.
    pub garp_refresh: Option<Duration>,
    /// keepalived `garp_lower_prio_repeat` > 0: a master that hears a lower-priority advert (from
    /// another master: a split brain ending) announces its VIPs again.
    pub garp_lower_prio: bool,
    /// keepalived `garp_lower_prio_delay`: and once more this long later.
    pub garp_lower_prio_repeat: Option<Duration>,
}

impl Params {
    /// RFC 9568 §6.4.3: a master accepts packets addressed to the virtual addresses only if it
    /// owns them or Accept_Mode is on; otherwise they are dropped while it is master.
    pub fn accepts_vip_traffic(&self) -> bool {
        self.accept_mode || self.priority == OWNER_PRIORITY
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// RFC 9568 Adver_Timer (Master).
    Adver,
    /// RFC 9568 Active_Down_Timer (Backup).
    MasterDown,
    /// keepalived garp_master_delay (Master, one shot).
    GarpRepeat,
    /// keepalived garp_master_refresh (Master, periodic).
    GarpRefresh,
    /// keepalived garp_lower_prio_delay (Master, one shot after a lower-priority advert).
    GarpLowerPrio,
}

impl Timer {
    const ALL: [Timer; 5] = [
        Timer::Adver,
        Timer::MasterDown,
        Timer::GarpRepeat,
        Timer::GarpRefresh,
        Timer::GarpLowerPrio,
    ];
}

/// Which gratuitous ARP burst: the driver sends the configured count for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Burst {
    /// On becoming master and its repeats (`garp_master_repeat`).
    Master,
    /// After a lower-priority advert (`garp_lower_prio_repeat`).
    LowerPriority,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Startup,
    Shutdown,
    /// A validated advert for this VRID from another router.
    Advert {
        src: IpAddr,
        priority: u8,
        interval: Duration,
    },
    TimerExpired(Timer),
    /// The effective priority changed (tracking weights); 0 is treated as 1.
    PriorityChanged(u8),
    /// A tracked interface or check went down (FAULT) / everything tracked is up again.
    Fault,
    FaultCleared,
    /// keepalived `vrrp_sync_group`: another member became MASTER / left MASTER for BACKUP, and
    /// this one follows.
    SyncMaster,
    SyncBackup,
    /// The liveness channel lost the master `src`, and we are the backup first in line to take
    /// over: Master_Down, early.
    MasterGone {
        src: IpAddr,
    },
}

/// What the driver must do, in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Transition {
        from: State,
        to: State,
    },
    SendAdvert {
        priority: u8,
    },
    /// Install the virtual addresses (whether packets to them are accepted is static:
    /// [`Params::accepts_vip_traffic`]).
    AddVips,
    RemoveVips,
    /// Gratuitous ARP for every virtual address (RFC 9568 §6.4.2).
    SendGarp(Burst),
    ArmTimer {
        timer: Timer,
        at: Timestamp,
    },
    CancelTimer(Timer),
}

/// Why an action was taken; one line in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Startup,
    Shutdown,
    Fault,
    FaultCleared,
    AdverTimerExpired,
    MasterDownTimerExpired,
    GarpRepeatTimerExpired,
    GarpRefreshTimerExpired,
    GarpLowerPrioTimerExpired,
    /// Backup accepted the current master's advert.
    Advert {
        src: IpAddr,
        priority: u8,
    },
    /// Backup accepted a lower-priority advert because the preempt delay is still running.
    PreemptDelay {
        src: IpAddr,
        priority: u8,
    },
    PriorityZeroAdvert {
        src: IpAddr,
    },
    HigherPriorityAdvert {
        src: IpAddr,
        priority: u8,
    },
    HigherAddressAdvert {
        src: IpAddr,
        priority: u8,
    },
    LowerPriorityAdvert {
        src: IpAddr,
        priority: u8,
    },
    LowerAddressAdvert {
        src: IpAddr,
        priority: u8,
    },
    PriorityChanged {
        from: u8,
        to: u8,
    },
    SyncGroup,
    MasterGone {
        src: IpAddr,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => write!(f, "startup"),
            Reason::Shutdown => write!(f, "shutdown"),
            Reason::Fault => write!(f, "fault"),
            Reason::FaultCleared => write!(f, "fault cleared"),
            Reason::AdverTimerExpired => write!(f, "advert timer expired"),
            Reason::MasterDownTimerExpired => write!(f, "master down timer expired"),
            Reason::GarpRepeatTimerExpired => write!(f, "gratuitous ARP repeat delay expired"),
            Reason::GarpRefreshTimerExpired => write!(f, "gratuitous ARP refresh"),
            Reason::GarpLowerPrioTimerExpired => {
                write!(f, "gratuitous ARP repeat after a lower priority advert")
            }
            Reason::Advert { src, priority } => write!(f, "advert from {src} (prio {priority})"),
            Reason::PreemptDelay { src, priority } => write!(
                f,
                "lower priority advert from {src} (prio {priority}) accepted during preempt delay"
            ),
            Reason::PriorityZeroAdvert { src } => {
                write!(f, "priority 0 advert from {src} (master shutting down)")
            }
            Reason::HigherPriorityAdvert { src, priority } => {
                write!(f, "higher priority advert from {src} (prio {priority})")
            }
            Reason::HigherAddressAdvert { src, priority } => write!(
                f,
                "equal priority advert from higher address {src} (prio {priority})"
            ),
            Reason::LowerPriorityAdvert { src, priority } => {
                write!(f, "lower priority advert from {src} (prio {priority})")
            }
            Reason::LowerAddressAdvert { src, priority } => write!(
                f,
                "equal priority advert from lower address {src} (prio {priority})"
            ),
            Reason::PriorityChanged { from, to } => {
                write!(f, "priority changed from {from} to {to}")
            }
            Reason::SyncGroup => write!(f, "sync group member changed state"),
            Reason::MasterGone { src } => {
                write!(f, "master {src} gone (liveness channel silent)")
            }
        }
    }
}

/// The actions of one [`Machine::handle`] call, in order.
pub type Output = Vec<(Action, Reason)>;

/// Collects the actions of one event, all for the same reason.
struct Effects {
    reason: Reason,
    actions: Output,
}

impl Effects {
    fn new(reason: Reason) -> Self {
        Effects {
            reason,
            actions: Vec::new(),
        }
    }

    fn push(&mut self, action: Action) {
        self.actions.push((action, self.reason));
    }
}

/// The election state of one VRRP instance.
#[derive(Clone, Debug)]
pub struct Machine {
    params: Params,
    state: State,
    /// Current (effective) priority; starts at the configured one.
    priority: u8,
    master_adver_interval: Duration,
    /// Armed deadlines, indexed by `Timer as usize`.
    timers: [Option<Timestamp>; Timer::ALL.len()],
    /// keepalived preempt_delay: until when lower-priority adverts are still accepted in Backup.
    preempt_until: Option<Timestamp>,
    /// The last lower-priority gratuitous ARP burst ([`LOWER_PRIO_GARP_MIN_GAP`]).
    lower_prio_garp: Option<Timestamp>,
    /// The last advert sent in answer to another's ([`Machine::answer`]).
    last_answer: Option<Timestamp>,
    /// In Backup: the master whose adverts it last accepted.
    master: Option<IpAddr>,
}

impl Machine {
    pub fn new(params: Params) -> Self {
        Machine {
            state: State::Initialize,
            priority: params.priority.max(1),
            master_adver_interval: params.advert_interval,
            timers: [None; Timer::ALL.len()],
            preempt_until: None,
            lower_prio_garp: None,
            last_answer: None,
            master: None,
            params,
        }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The advert source and tie-breaker, learnt when the instance binds to its interface (again,
    /// after the interface was re-created): only outside Backup and Master, where no peer has
    /// compared it yet.
    pub fn set_primary_addr(&mut self, addr: IpAddr) {
        debug_assert!(matches!(self.state, State::Initialize | State::Fault));
        self.params.primary_addr = addr;
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// In Backup: the master it follows (whose adverts it last accepted), if any yet.
    pub fn followed(&self) -> Option<IpAddr> {
        self.master
    }

    /// RFC 9568 §6.1 Active_Adver_Interval: the master's interval as last adopted (v3), else ours.
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    /// RFC 9568 §6.1: Skew_Time = ((256 - Priority) * Active_Adver_Interval) / 256, exact to the
    /// nanosecond. v2 (RFC 3768 §6.1): (256 - Priority) / 256 seconds, whatever the interval.
    pub fn skew_time(&self) -> Duration {
        let base = match self.params.version {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => self.master_adver_interval,
        };
        base * (256 - u32::from(self.priority)) / 256
    }

    /// RFC 9568 §6.1: Active_Down_Interval = 3 * Active_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        3 * self.master_adver_interval + self.skew_time()
    }

    pub fn deadline(&self, timer: Timer) -> Option<Timestamp> {
        self.timers[timer as usize]
    }

    /// The earliest armed deadline: when the driver should wake next.
    pub fn next_deadline(&self) -> Option<(Timer, Timestamp)> {
        Timer::ALL
            .into_iter()
            .filter_map(|timer| Some((timer, self.deadline(timer)?)))
            .min_by_key(|&(_, at)| at)
    }

    /// Feeds one event that happened at `now`; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Timestamp) -> Output {
        match event {
            // Our own adverts looped back are the receive path's to drop; if one slips through,
            // answering it as a rival's would start an advert storm.
            Event::Advert { src, .. } if src == self.params.primary_addr => return Vec::new(),
            // A wake-up for a timer that is no longer armed, or armed later, is stale.
            Event::TimerExpired(timer) => match self.deadline(timer) {
                Some(at) if at <= now => self.timers[timer as usize] = None,
                _ => return Vec::new(),
            },
            Event::PriorityChanged(to) => return self.change_priority(to, now),
            _ => {}
        }
        match (self.state, event) {
            (State::Initialize, Event::Shutdown) | (State::Fault, Event::Fault) => Vec::new(),
            (_, Event::Shutdown) => self.stop(State::Initialize, Reason::Shutdown),
            (_, Event::Fault) => self.stop(State::Fault, Reason::Fault),
            (State::Initialize, Event::Startup) => self.startup(now, Reason::Startup),
            (State::Fault, Event::FaultCleared) => self.startup(now, Reason::FaultCleared),
            (State::Backup, event) => self.backup(event, now),
            (State::Master, event) => self.master(event, now),
            // Initialize and Fault wait for Startup / FaultCleared and ignore everything else.
            (State::Initialize | State::Fault, _) => Vec::new(),
        }
    }

    /// RFC 9568 §6.4.1 (Initialize), also FaultCleared out of Fault.
    fn startup(&mut self, now: Timestamp, reason: Reason) -> Output {
        let mut fx = Effects::new(reason);
        if self.priority == OWNER_PRIORITY {
            self.become_master(&mut fx, now);
        } else {
            self.master_adver_interval = self.params.advert_interval;
            self.become_backup(&mut fx, now);
        }
        fx.actions
    }

    /// RFC 9568 §6.4.2 (Backup).
    fn backup(&mut self, event: Event, now: Timestamp) -> Output {
        match event {
            Event::TimerExpired(Timer::MasterDown) => {
                let mut fx = Effects::new(Reason::MasterDownTimerExpired);
                self.become_master(&mut fx, now);
                fx.actions
            }
            // keepalived vrrp_sync_master: the group goes MASTER together.
            Event::SyncMaster => {
                let mut fx = Effects::new(Reason::SyncGroup);
                self.become_master(&mut fx, now);
                fx.actions
            }
            // Only for the master we follow: a stale report about an earlier one is no news, and
            // the priorities that decide who follows whom were compared when its adverts came.
            Event::MasterGone { src } if self.master == Some(src) => {
                let mut fx = Effects::new(Reason::MasterGone { src });
                self.become_master(&mut fx, now);
                fx.actions
            }
            // The master is shutting down: take over after Skew_Time only.
            Event::Advert {
                src, priority: 0, ..
            } => {
                self.master = Some(src);
                let mut fx = Effects::new(Reason::PriorityZeroAdvert { src });
                self.arm(&mut fx, Timer::MasterDown, now + self.skew_time());
                fx.actions
            }
            Event::Advert {
                src,
                priority,
                interval,
            } => {
                let reason = if !self.params.preempt || priority >= self.priority {
                    // keepalived: a master at least as good as us ends any preempt delay.
                    self.preempt_until = None;
                    Reason::Advert { src, priority }
                } else if self.in_preempt_delay(now) {
                    Reason::PreemptDelay { src, priority }
                } else {
                    // Preempt: discard, so the Master_Down_Timer fires and we take over.
                    return Vec::new();
                };
                let mut fx = Effects::new(reason);
                self.master = Some(src);
                self.adopt_interval(interval);
                self.arm(
                    &mut fx,
                    Timer::MasterDown,
                    now + self.master_down_interval(),
                );
                fx.actions
            }
            _ => Vec::new(),
        }
    }

    /// keepalived preempt_delay: the first lower-priority advert seen in Backup opens a window of
    /// `preempt_delay` during which lower-priority adverts are still accepted.
    fn in_preempt_delay(&mut self, now: Timestamp) -> bool {
        if self.params.preempt_delay.is_zero() {
            return false;
        }
        now < *self
            .preempt_until
            .get_or_insert(now + self.params.preempt_delay)
    }

    /// RFC 9568 §6.4.3 (Active).
    fn master(&mut self, event: Event, now: Timestamp) -> Output {
        match event {
            Event::TimerExpired(Timer::Adver) => self.advertise(now, Reason::AdverTimerExpired),
            // keepalived vrrp_sync_backup: the group leaves MASTER together.
            Event::SyncBackup => {
                let mut fx = Effects::new(Reason::SyncGroup);
                self.resign(&mut fx, now);
                fx.actions
            }
            // keepalived garp_master_delay: one more gratuitous ARP, not re-armed.
            Event::TimerExpired(Timer::GarpRepeat) => {
                vec![(
                    Action::SendGarp(Burst::Master),
                    Reason::GarpRepeatTimerExpired,
                )]
            }
            // keepalived garp_lower_prio_delay: one more lower-priority burst.
            Event::TimerExpired(Timer::GarpLowerPrio) => vec![(
                Action::SendGarp(Burst::LowerPriority),
                Reason::GarpLowerPrioTimerExpired,
            )],
            // keepalived garp_master_refresh: again and again while master.
            Event::TimerExpired(Timer::GarpRefresh) => {
                let mut fx = Effects::new(Reason::GarpRefreshTimerExpired);
                fx.push(Action::SendGarp(Burst::Master));
                if let Some(every) = self.params.garp_refresh {
                    self.arm(&mut fx, Timer::GarpRefresh, now + every);
                }
                fx.actions
            }
            Event::Advert {
                src, priority: 0, ..
            } => {
                let mut fx = Effects::new(Reason::PriorityZeroAdvert { src });
                self.answer(&mut fx, now);
                fx.actions
            }
            Event::Advert {
                src,
                priority,
                interval,
            } => {
                // Equal priority: the higher primary address wins, compared as unsigned integers
                // in network byte order (RFC 9568 §6.4.3; IpAddr orders one family's so).
                let higher_addr = src > self.params.primary_addr;
                let (yield_to_it, reason) = match priority.cmp(&self.priority) {
                    Ordering::Greater => (true, Reason::HigherPriorityAdvert { src, priority }),
                    Ordering::Less => (false, Reason::LowerPriorityAdvert { src, priority }),
                    Ordering::Equal if higher_addr => {
                        (true, Reason::HigherAddressAdvert { src, priority })
                    }
                    Ordering::Equal => (false, Reason::LowerAddressAdvert { src, priority }),
                };
                if yield_to_it {
                    let mut fx = Effects::new(reason);
                    self.adopt_interval(interval);
                    self.resign(&mut fx, now);
                    self.master = Some(src);
                    fx.actions
                } else {
                    // RFC 9568 §6.4.3 (new since RFC 5798): discard it and assert ourselves at once.
                    let mut fx = Effects::new(reason);
                    self.answer(&mut fx, now);
                    self.lower_prio_garp(&mut fx, now);
                    fx.actions
                }
            }
            _ => Vec::new(),
        }
    }

    /// RFC 9568 §6.4.2, §6.4.3: set Active_Adver_Interval from the advert (Skew_Time and
    /// Active_Down_Interval follow). v2 never adopts it: RFC 3768 §7.1 receivers discard adverts
    /// whose interval differs from their own.
    fn adopt_interval(&mut self, interval: Duration) {
        if self.params.version == Version::V3 {
            self.master_adver_interval = interval;
        }
    }

    /// Any state records the new priority. Master advertises it at once (keepalived); Backup uses
    /// it from the next Master_Down_Timer re-arm.
    fn change_priority(&mut self, to: u8, now: Timestamp) -> Output {
        let from = self.priority;
        self.priority = to.max(1);
        if self.state != State::Master || self.priority == from {
            return Vec::new();
        }
        self.advertise(
            now,
            Reason::PriorityChanged {
                from,
                to: self.priority,
            },
        )
    }

    /// Master: send an advert and reset the Adver_Timer (RFC 9568 §6.4.3).
    fn advertise(&mut self, now: Timestamp, reason: Reason) -> Output {
        let mut fx = Effects::new(reason);
        self.advertise_into(&mut fx, now);
        fx.actions
    }

    fn advertise_into(&mut self, fx: &mut Effects, now: Timestamp) {
        fx.push(Action::SendAdvert {
            priority: self.priority,
        });
        self.arm(fx, Timer::Adver, now + self.params.advert_interval);
    }

    /// RFC 9568 §6.4.3: an advert at once in answer to a priority-0 advert (to hurry the
    /// backups) or a lower-priority one (to make its sender yield). The first answer does that;
    /// more within a quarter of our interval add nothing the next would not, so they are left
    /// out: a flood of such adverts, spoofed by anyone on the segment, cannot make us flood it.
    fn answer(&mut self, fx: &mut Effects, now: Timestamp) {
        let gap = self.params.advert_interval / ANSWERS_PER_INTERVAL;
        if self.last_answer.is_some_and(|last| now < last + gap) {
            return;
        }
        self.last_answer = Some(now);
        self.advertise_into(fx, now);
    }

    /// keepalived `garp_lower_prio_repeat`: another router advertises as master with a lower
    /// priority (a partition that ended, a master that was frozen, a spoof), and the neighbours
    /// may have followed its gratuitous ARP; announce the VIPs again, and once more after
    /// `garp_lower_prio_delay`. Unlike keepalived, at most one burst per
    /// [`LOWER_PRIO_GARP_MIN_GAP`], so a flood of such adverts is no flood of ARP.
    fn lower_prio_garp(&mut self, fx: &mut Effects, now: Timestamp) {
        let due = self
            .lower_prio_garp
            .is_none_or(|last| now >= last + LOWER_PRIO_GARP_MIN_GAP);
        if !self.params.garp_lower_prio || !due {
            return;
        }
        self.lower_prio_garp = Some(now);
        fx.push(Action::SendGarp(Burst::LowerPriority));
        if let Some(delay) = self.params.garp_lower_prio_repeat {
            self.arm(fx, Timer::GarpLowerPrio, now + delay);
        }
    }

    /// RFC 9568 §6.4.1 / §6.4.2: send an advert, gratuitous ARP, start the Adver_Timer.
    fn become_master(&mut self, fx: &mut Effects, now: Timestamp) {
        self.cancel_timers(fx);
        fx.push(Action::AddVips);
        fx.push(Action::SendAdvert {
            priority: self.priority,
        });
        fx.push(Action::SendGarp(Burst::Master));
        self.arm(fx, Timer::Adver, now + self.params.advert_interval);
        if let Some(delay) = self.params.garp_repeat {
            self.arm(fx, Timer::GarpRepeat, now + delay);
        }
        if let Some(every) = self.params.garp_refresh {
            self.arm(fx, Timer::GarpRefresh, now + every);
        }
        self.transition(fx, State::Master);
    }

    /// RFC 9568 §6.4.1 / §6.4.3: start the Master_Down_Timer (Master_Adver_Interval already set).
    fn become_backup(&mut self, fx: &mut Effects, now: Timestamp) {
        self.cancel_timers(fx);
        self.arm(fx, Timer::MasterDown, now + self.master_down_interval());
        self.transition(fx, State::Backup);
    }

    /// Master to Backup without a goodbye (another router is, or is about to be, master): the
    /// master's timers are cancelled before its VIPs go.
    fn resign(&mut self, fx: &mut Effects, now: Timestamp) {
        self.cancel_timers(fx);
        fx.push(Action::RemoveVips);
        self.become_backup(fx, now);
    }

    /// Shutdown (RFC 9568 §6.4.2, §6.4.3) or interface down (keepalived FAULT): a master says
    /// goodbye with priority 0 so a backup takes over after Skew_Time.
    fn stop(&mut self, to: State, reason: Reason) -> Output {
        let mut fx = Effects::new(reason);
        self.cancel_timers(&mut fx);
        if self.state == State::Master {
            fx.push(Action::SendAdvert { priority: 0 });
            fx.push(Action::RemoveVips);
        }
        self.transition(&mut fx, to);
        fx.actions
    }

    fn transition(&mut self, fx: &mut Effects, to: State) {
        if self.state == State::Backup {
            self.preempt_until = None;
            self.master = None;
        }
        fx.push(Action::Transition {
            from: self.state,
            to,
        });
        self.state = to;
    }

    fn arm(&mut self, fx: &mut Effects, timer: Timer, at: Timestamp) {
        self.timers[timer as usize] = Some(at);
        fx.push(Action::ArmTimer { timer, at });
    }

    fn cancel_timers(&mut self, fx: &mut Effects) {
        for timer in Timer::ALL {
            if self.timers[timer as usize].take().is_some() {
                fx.push(Action::CancelTimer(timer));
            }
        }
    }
}
