//! The liveness channel's sender: a backup's probes to its master, one every interval, from a
//! thread of their own (`vrrp_common::liveness` has the protocol; the kernel program does the
//! rest on both sides).
//!
//! A thread, not a task of the agent's loop: it sleeps to an absolute deadline and sends, nothing
//! else, so a probe goes out on time while the loop handles a burst of inputs, and each wake-up
//! costs a context switch and one `sendto` instead of a turn of the loop. This kernel has no
//! pacing qdisc (fq, ETF) to hand a batch of timed probes to, so every probe is one wake-up.

use std::{
    io,
    net::{Ipv4Addr, SocketAddrV4},
    num::NonZeroU32,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering},
        Arc,
    },
    time::Duration,
};

use nix::time::{clock_nanosleep, ClockId, ClockNanosleepFlags};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vrrp_common::liveness::{self, encode_probe, Probe, Softnet, PROBE_OFFSET};

use super::SocketError;
use crate::{clock, sched};

/// Until the master reflects, probes go this often at most: it may not speak the channel
/// (keepalived, an agent without it), and its host answers each probe with an ICMP error.
pub const DISCOVERY_INTERVAL: Duration = Duration::from_millis(100);

/// Probes from `src` to `master`, until dropped: every [`DISCOVERY_INTERVAL`] until told the
/// channel is up, then every `interval`.
pub struct Prober {
    shared: Arc<Shared>,
    /// Woken when the rate changes or it should stop, so neither waits for a discovery sleep.
    thread: std::thread::Thread,
}

/// What the thread and its owner share.
struct Shared {
    stop: AtomicBool,
    /// The master reflects: full rate.
    fast: AtomicBool,
    /// Ours, carried in each probe: the reflector ranks the backups by it.
    priority: AtomicU8,
    /// When the last probes went out (the clock of `bpf_ktime_get_ns`), probe `seq` at
    /// `seq % SENT_KEPT`. Written by the thread only.
    sent_at: [AtomicU64; SENT_KEPT],
}

/// Send times kept: enough for any silence the agent checks (multiplier probes).
pub const SENT_KEPT: usize = 32;

/// Where and how to probe.
pub struct Target {
    pub ifname: String,
    pub ifindex: u32,
    pub src: Ipv4Addr,
    pub master: Ipv4Addr,
    pub vrid: u8,
    pub priority: u8,
    pub interval: Duration,
    /// SCHED_RR priority of the thread (the agent's), 0 for normal scheduling.
    pub rt_priority: u8,
}

impl Prober {
    pub fn start(target: Target) -> Result<Self, SocketError> {
        let ifname = target.ifname.clone();
        let ifname = ifname.as_str();
        let error = |action| move |err| SocketError::new(action, ifname, err);
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
        .map_err(error("cannot open a raw IPv4 socket for liveness probes"))?;
        let index = NonZeroU32::new(target.ifindex).ok_or(io::ErrorKind::InvalidInput.into());
        index
            .and_then(|i| socket.bind_device_by_index_v4(Some(i)))
            .map_err(error("cannot bind the liveness socket"))?;
        // A full transmit queue loses one probe, never holds up the next.
        socket
            .set_nonblocking(true)
            .map_err(error("cannot make the liveness socket non-blocking"))?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            fast: AtomicBool::new(false),
            priority: AtomicU8::new(target.priority),
            sent_at: std::array::from_fn(|_| AtomicU64::new(0)),
        });
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("liveness-{}", target.vrid))
            .spawn(move || run(&socket, &target, &theirs))
            .map_err(error("cannot start the liveness thread"))?
            .thread()
            .clone();
        Ok(Self { shared, thread })
    }

    /// Our priority changed: the next probes carry it.
    pub fn set_priority(&self, priority: u8) {
        self.shared.priority.store(priority, Ordering::Relaxed);
    }

    /// Full rate (the master reflects), or the discovery rate.
    pub fn set_fast(&self, fast: bool) {
        if self.shared.fast.swap(fast, Ordering::Relaxed) != fast {
            self.thread.unpark();
        }
    }

    /// How many probes went out after `after` and no later than `until` (nanoseconds of the
    /// monotonic clock), among the last [`SENT_KEPT`].
    pub fn sent_between(&self, after: u64, until: u64) -> usize {
        let s = &self.shared;
        s.sent_at
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .filter(|&t| t > after && t <= until)
            .count()
    }
}

impl Drop for Prober {
    /// The thread ends at its next wake-up (at most one interval); nothing waits for it.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
    }
}

fn run(socket: &Socket, target: &Target, shared: &Shared) {
    if target.rt_priority > 0 {
        // Best effort: the agent's own thread already said whether realtime works.
        let _ = sched::realtime(target.rt_priority);
    }
    let template = encode_probe(target.src, target.master, &Probe::new(target.vrid, 0, 0, 0));
    let to = SockAddr::from(SocketAddrV4::new(target.master, 0));
    let slow = target.interval.max(DISCOVERY_INTERVAL);
    let interval = target.interval.as_nanos() as u64;
    let mut next = now_ns();
    for seq in 0u32.. {
        if shared.fast.load(Ordering::Relaxed) {
            next += interval;
            let now = now_ns();
            if next + interval < now {
                // Held up longer than an interval (the host froze): start again from now, no
                // burst.
                next = now;
            }
            sleep_until(next);
        } else {
            // Woken early by `set_fast`: the first fast probe goes at once.
            std::thread::park_timeout(slow);
            next = now_ns();
        }
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let priority = shared.priority.load(Ordering::Relaxed);
        let probe = Probe::new(target.vrid, priority, seq, now_ns());
        let mut packet = template;
        packet[PROBE_OFFSET..].copy_from_slice(bytemuck::bytes_of(&probe));
        // A probe the kernel refused (a full queue, the interface gone) is one not sent: the
        // agent's silence check counts only those that went out.
        if socket.send_to(&packet, &to).is_err() {
            continue;
        }
        shared.sent_at[seq as usize % SENT_KEPT].store(now_ns(), Ordering::Relaxed);
    }
}

fn now_ns() -> u64 {
    clock::now().0
}

/// This host's receive backlogs, one per CPU ([`vrrp_common::liveness::softnet`]).
pub fn backlog() -> io::Result<Vec<Softnet>> {
    let text = std::fs::read_to_string("/proc/net/softnet_stat")?;
    liveness::softnet(&text)
        .collect::<Option<_>>()
        .ok_or_else(|| io::Error::other("unexpected /proc/net/softnet_stat"))
}

fn sleep_until(ns: u64) {
    let at = nix::sys::time::TimeSpec::from_duration(Duration::from_nanos(ns));
    // An interrupted sleep ends early: the probe goes a little early, the next one on time.
    let _ = clock_nanosleep(
        ClockId::CLOCK_MONOTONIC,
        ClockNanosleepFlags::TIMER_ABSTIME,
        &at,
    );
}
