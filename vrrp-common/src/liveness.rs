//! The liveness channel between vrrp-agents of one group: a backup's probes, reflected by the
//! master's kernel program, so the backup's kernel program knows within a fraction of a
//! millisecond that the master is gone (its link, its host, or its agent: the reflector is the
//! agent's kernel program and goes with it). An addition to VRRP, never a replacement: it only
//! makes the backup act on Master_Down sooner; keepalived peers never see it.
//!
//! A probe is a UDP datagram from the backup's primary address to the master's, port
//! [`LIVENESS_PORT`] at both ends, with this payload:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Magic ("VRLV")                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Version (1)  |     Flags     | Virtual Rtr ID|   Priority    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence number                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |              Send time (the prober's CLOCK_MONOTONIC,         |
//! |                      nanoseconds)                             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The master reflects a probe for an instance it is master of, with liveness on, back to its
//! sender in the kernel (addresses and ports swapped, [`FLAG_REFLECTED`] set, UDP checksum
//! cleared), and marks it [`FLAG_FIRST_IN_LINE`] when its sender is the backup that would win
//! the election after it ([`BestProber`]): only that backup takes over early, so with several
//! backups the fast path never makes two of them master.

use core::net::Ipv4Addr;

use bytemuck::{Pod, Zeroable};

use crate::wire::{Ipv4Hdr, ETH_HDR_LEN, IPV4_HDR_LEN, VRRP_TOS, VRRP_TTL};

/// UDP port of the probes, source and destination ("VRRP is IP protocol 112").
pub const LIVENESS_PORT: u16 = 7112;
pub const LIVENESS_MAGIC: [u8; 4] = *b"VRLV";
pub const LIVENESS_VERSION: u8 = 1;
/// Set by the reflector: the probe is on its way back.
pub const FLAG_REFLECTED: u8 = 0x01;
/// Set by the reflector: its sender is the best live prober, first in line to take over.
pub const FLAG_FIRST_IN_LINE: u8 = 0x02;
pub const IPPROTO_UDP: u8 = 17;
pub const UDP_HDR_LEN: usize = core::mem::size_of::<UdpHdr>();
pub const PROBE_LEN: usize = core::mem::size_of::<Probe>();
/// A probe packet: IPv4 without options, UDP, the probe.
pub const PROBE_PACKET_LEN: usize = IPV4_HDR_LEN + UDP_HDR_LEN + PROBE_LEN;
/// The same in an Ethernet frame.
pub const PROBE_FRAME_LEN: usize = ETH_HDR_LEN + PROBE_PACKET_LEN;
/// Where the probe starts in the packet.
pub const PROBE_OFFSET: usize = IPV4_HDR_LEN + UDP_HDR_LEN;
/// A prober the reflector has not heard for this long no longer holds the first place.
pub const PROBER_STALE_NS: u64 = 100_000_000;
/// The reflector turns around at most one probe per this many nanoseconds per instance (40,000
/// a second: four backups at the shortest interval, 100 µs), with bursts of
/// [`REFLECT_BURST`]: a flood of probes, spoofed or not, gets no more, and the backups, whose
/// probes are then lost, fall back to VRRP timing.
pub const REFLECT_EVERY_NS: u64 = 25_000;
pub const REFLECT_BURST: u64 = 64;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct UdpHdr {
    pub src_port: [u8; 2],
    pub dst_port: [u8; 2],
    pub len: [u8; 2],
    pub checksum: [u8; 2],
}

impl UdpHdr {
    /// Both ports are [`LIVENESS_PORT`].
    pub const fn is_liveness(&self) -> bool {
        u16::from_be_bytes(self.src_port) == LIVENESS_PORT
            && u16::from_be_bytes(self.dst_port) == LIVENESS_PORT
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Probe {
    pub magic: [u8; 4],
    pub version: u8,
    pub flags: u8,
    pub vrid: u8,
    pub priority: u8,
    pub seq: [u8; 4],
    pub sent_ns: [u8; 8],
}

impl Probe {
    pub const fn new(vrid: u8, priority: u8, seq: u32, sent_ns: u64) -> Self {
        Self {
            magic: LIVENESS_MAGIC,
            version: LIVENESS_VERSION,
            flags: 0,
            vrid,
            priority,
            seq: seq.to_be_bytes(),
            sent_ns: sent_ns.to_be_bytes(),
        }
    }

    /// Magic and version are ours.
    pub const fn is_valid(&self) -> bool {
        let m = self.magic;
        m[0] == LIVENESS_MAGIC[0]
            && m[1] == LIVENESS_MAGIC[1]
            && m[2] == LIVENESS_MAGIC[2]
            && m[3] == LIVENESS_MAGIC[3]
            && self.version == LIVENESS_VERSION
    }

    pub const fn reflected(&self) -> bool {
        self.flags & FLAG_REFLECTED != 0
    }

    pub const fn seq(&self) -> u32 {
        u32::from_be_bytes(self.seq)
    }

    pub const fn sent_ns(&self) -> u64 {
        u64::from_be_bytes(self.sent_ns)
    }
}

/// A probe packet from `src` to `dst` for a raw socket: TTL 255 like VRRP's own packets, so
/// the receivers can tell it came from the link; the IP checksum is left to the kernel, the UDP
/// one is 0 (none, allowed over IPv4).
pub fn encode_probe(src: Ipv4Addr, dst: Ipv4Addr, probe: &Probe) -> [u8; PROBE_PACKET_LEN] {
    let ip = Ipv4Hdr {
        version_ihl: 0x45,
        tos: VRRP_TOS,
        total_len: (PROBE_PACKET_LEN as u16).to_be_bytes(),
        id: [0; 2],
        flags_frag: [0x40, 0], // don't fragment
        ttl: VRRP_TTL,
        proto: IPPROTO_UDP,
        checksum: [0; 2],
        src: src.octets(),
        dst: dst.octets(),
    };
    let udp = UdpHdr {
        src_port: LIVENESS_PORT.to_be_bytes(),
        dst_port: LIVENESS_PORT.to_be_bytes(),
        len: ((UDP_HDR_LEN + PROBE_LEN) as u16).to_be_bytes(),
        checksum: [0; 2],
    };
    let mut packet = [0; PROBE_PACKET_LEN];
    packet[..IPV4_HDR_LEN].copy_from_slice(bytemuck::bytes_of(&ip));
    packet[IPV4_HDR_LEN..PROBE_OFFSET].copy_from_slice(bytemuck::bytes_of(&udp));
    packet[PROBE_OFFSET..].copy_from_slice(bytemuck::bytes_of(probe));
    packet
}

/// The reflector's record of who probes an instance (the PROBERS map value): the best prober,
/// by the election's order (priority, then primary address), among those heard within
/// [`PROBER_STALE_NS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BestProber {
    pub t_ns: u64,
    pub src: [u8; 4],
    pub priority: u8,
    pub _pad: [u8; 3],
    /// The rate limit ([`REFLECT_EVERY_NS`]): when the next reflection is due at the steady
    /// rate (a generic cell rate algorithm's theoretical arrival time).
    pub due_ns: u64,
    /// Probes not reflected for the rate limit.
    pub limited: u64,
}

impl BestProber {
    /// A probe from `src` with `priority` arrived at `now`: whether its sender is first in line,
    /// updating the record. A better prober takes the place at once; the holder keeps it while it
    /// keeps probing; anyone takes it over from a holder gone silent.
    pub fn probe(&mut self, src: [u8; 4], priority: u8, now: u64) -> bool {
        let stale = now.wrapping_sub(self.t_ns) > PROBER_STALE_NS || self.t_ns == 0;
        let better =
            (priority, u32::from_be_bytes(src)) > (self.priority, u32::from_be_bytes(self.src));
        if self.src == src || stale || better {
            (self.t_ns, self.src, self.priority) = (now, src, priority);
            return true;
        }
        false
    }

    /// Whether a probe arriving at `now` may be reflected under the rate limit; counts the
    /// ones that may not.
    pub fn admit(&mut self, now: u64) -> bool {
        let due = self.due_ns.max(now);
        if due > now + REFLECT_EVERY_NS * (REFLECT_BURST - 1) {
            self.limited += 1;
            return false;
        }
        self.due_ns = due + REFLECT_EVERY_NS;
        true
    }
}

/// The kernel's `struct bpf_timer`, by that name: the kernel finds it in the map value's BTF.
#[allow(non_camel_case_types)]
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct bpf_timer {
    pub opaque: [u64; 2],
}

/// [`Session::state`].
pub const SESSION_WAITING: u8 = 0;
pub const SESSION_UP: u8 = 1;
pub const SESSION_DOWN: u8 = 2;

/// A backup's probing of its master (the LIVENESS map value). The agent writes `peer` and
/// `detect_ns` (and zeroes the rest) when it starts following a master; the kernel program
/// records each reflected probe, restarts `timer` for `detect_ns`, and when the timer fires
/// marks the session down and tells the agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Session {
    pub timer: bpf_timer,
    /// Silence after which the master counts as gone: multiplier × interval.
    pub detect_ns: u64,
    /// `bpf_ktime_get_ns()` of the last reflected probe.
    pub last_ns: u64,
    /// Reflected probes received.
    pub count: u64,
    /// Probes that never came back (gaps in the sequence numbers).
    pub lost: u64,
    /// Longest time between two reflected probes.
    pub max_gap_ns: u64,
    /// `bpf_ktime_get_ns()` of the last reflection that revealed lost probes, or came back
    /// later than half of `detect_ns`: a channel that loses or holds up probes is not trusted to
    /// tell the master's death from its own trouble.
    pub troubled_ns: u64,
    /// The master probed.
    pub peer: [u8; 4],
    /// The sequence number expected next.
    pub next_seq: u32,
    /// [`SESSION_WAITING`] (no reflection yet: the master may not speak liveness),
    /// [`SESSION_UP`], [`SESSION_DOWN`].
    pub state: u8,
    /// The last reflection said we are first in line.
    pub first: u8,
    /// The kernel initialised `timer`.
    pub timer_ready: u8,
    pub _pad: [u8; 5],
}

impl Session {
    /// A reflected probe with sequence number `seq`, sent at `sent_ns`, arrived at `now`.
    /// Returns whether that brings the session up (its first reflection, or the first after a
    /// silence), and whether the silence timer should run: only once reflections come faster
    /// than `detect_ns` (the sender probes slowly until it knows the master reflects).
    pub fn reflected(&mut self, seq: u32, sent_ns: u64, first: bool, now: u64) -> (bool, bool) {
        if now.saturating_sub(sent_ns) > self.detect_ns / 2 {
            self.troubled_ns = now;
        }
        let arm = self.count > 0 && now.saturating_sub(self.last_ns) < self.detect_ns;
        // A probe older than the one expected (reordered) was counted as lost already.
        let missed = seq.wrapping_sub(self.next_seq);
        let newer = self.count == 0 || missed < u32::MAX / 2;
        if self.count > 0 {
            if newer && missed > 0 {
                self.lost += u64::from(missed);
                self.troubled_ns = now;
            }
            let gap = now.saturating_sub(self.last_ns);
            if gap > self.max_gap_ns {
                self.max_gap_ns = gap;
            }
        }
        if newer {
            self.next_seq = seq.wrapping_add(1);
        }
        self.last_ns = now;
        self.count += 1;
        self.first = first as u8;
        let up = self.state != SESSION_UP;
        self.state = SESSION_UP;
        (up, arm)
    }
}

/// The payload of a [`crate::maps::EVENT_LIVENESS`] ring event: the session with `peer` came
/// up (a reflection after none or after a silence) or fell silent (its timer fired).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct LivenessChange {
    pub peer: [u8; 4],
    pub vrid: u8,
    /// The last reflection said we are first in line.
    pub first: u8,
    /// 1: up, 0: silent.
    pub up: u8,
    pub _pad: u8,
    /// `bpf_ktime_get_ns()` of the last reflected probe.
    pub last_ns: u64,
}

const _: () = {
    assert!(UDP_HDR_LEN == 8);
    assert!(PROBE_LEN == 20);
    assert!(PROBE_PACKET_LEN == 48);
    assert!(PROBE_FRAME_LEN == 62);
    assert!(core::mem::size_of::<bpf_timer>() == 16);
    assert!(core::mem::size_of::<Session>() == 80);
};

/// One CPU's receive backlog, a line of `/proc/net/softnet_stat` (hexadecimal columns): frames
/// it processed and dropped (full) so far, 32-bit counters that wrap, and frames waiting in it
/// now (the twelfth column, Linux 5.10 and later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Softnet {
    pub processed: u32,
    pub dropped: u32,
    pub queued: Option<u32>,
}

/// The CPUs' lines of `/proc/net/softnet_stat`; `None` for a line of another shape.
pub fn softnet(softnet_stat: &str) -> impl Iterator<Item = Option<Softnet>> + '_ {
    softnet_stat.lines().map(|line| {
        let mut columns = line.split_whitespace();
        let mut hex = move |nth| u32::from_str_radix(columns.nth(nth)?, 16).ok();
        let (processed, dropped) = (hex(0)?, hex(0)?);
        Some(Softnet {
            processed,
            dropped,
            queued: hex(9),
        })
    })
}

/// Frames the kernel dropped on receive because a CPU's backlog was full, summed over the CPUs.
/// Reflections dropped there look like a dead master to the channel. `None` for text of another
/// shape.
pub fn backlog_drops(softnet_stat: &str) -> Option<u64> {
    softnet(softnet_stat)
        .map(|cpu| Some(u64::from(cpu?.dropped)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 4] = [198, 51, 100, 2];
    const B: [u8; 4] = [198, 51, 100, 3];

    #[test]
    fn the_higher_priority_prober_is_first_in_line() {
        let mut best = BestProber::default();
        assert!(best.probe(A, 100, 1_000));
        assert!(best.probe(B, 150, 2_000));
        assert!(!best.probe(A, 100, 3_000));
        assert!(best.probe(B, 150, 4_000));
    }

    #[test]
    fn equal_priority_goes_to_the_higher_address() {
        let mut best = BestProber::default();
        assert!(best.probe(A, 100, 1_000));
        assert!(best.probe(B, 100, 2_000));
        assert!(!best.probe(A, 100, 3_000));
    }

    #[test]
    fn a_silent_holder_loses_its_place() {
        let mut best = BestProber::default();
        assert!(best.probe(B, 150, 1_000));
        assert!(!best.probe(A, 100, 1_000 + PROBER_STALE_NS));
        assert!(best.probe(A, 100, 2_000 + PROBER_STALE_NS));
        // And the better one, back, takes it again at once.
        assert!(best.probe(B, 150, 3_000 + PROBER_STALE_NS));
    }

    #[test]
    fn reflections_are_limited_to_a_steady_rate_with_bursts() {
        let mut best = BestProber::default();
        let t = 1_000_000_000;
        let burst = (0..1000).filter(|_| best.admit(t)).count() as u64;
        assert_eq!(burst, REFLECT_BURST, "a burst at one instant");
        assert_eq!(best.limited, 1000 - REFLECT_BURST);
        assert!(!best.admit(t + REFLECT_EVERY_NS / 2));
        assert!(best.admit(t + REFLECT_EVERY_NS), "then one per interval");
        // A second at the steady rate: every one passes.
        let later = t + 10_000_000_000;
        let steady = (0..40_000).filter(|n| best.admit(later + n * REFLECT_EVERY_NS));
        assert_eq!(steady.count(), 40_000);
        // Twice the rate for a second: about half pass.
        let twice = (0..80_000).filter(|n| best.admit(later * 2 + n * REFLECT_EVERY_NS / 2));
        let passed = twice.count() as u64;
        assert!(
            (40_000..=40_000 + REFLECT_BURST).contains(&passed),
            "{passed}"
        );
    }

    #[test]
    fn a_prober_whose_priority_fell_keeps_no_place_it_no_longer_earns() {
        let mut best = BestProber::default();
        assert!(best.probe(B, 150, 1_000));
        assert!(best.probe(B, 90, 2_000));
        assert!(best.probe(A, 100, 3_000));
        assert!(!best.probe(B, 90, 4_000));
    }

    #[test]
    fn gaps_in_the_sequence_count_as_lost_probes() {
        let mut s = Session {
            detect_ns: 600,
            ..Session::default()
        };
        assert_eq!(s.reflected(7, 1_000, true, 1_000), (true, false));
        assert_eq!((s.count, s.lost, s.state, s.first), (1, 0, SESSION_UP, 1));
        assert_eq!(s.reflected(8, 1_300, true, 1_300), (false, true));
        assert_eq!(s.troubled_ns, 0);
        s.reflected(11, 2_100, false, 2_200);
        assert_eq!((s.count, s.lost, s.max_gap_ns, s.first), (3, 2, 900, 0));
        assert_eq!(s.troubled_ns, 2_200);
        // A late (reordered) probe is not counted again, nor does it move the sequence back.
        s.reflected(10, 2_300, false, 2_300);
        assert_eq!((s.lost, s.next_seq), (2, 12));
    }

    /// A reflection back later than half the detection time: the next silence may be a delay.
    #[test]
    fn a_late_reflection_marks_the_channel_troubled() {
        let mut s = Session {
            detect_ns: 600,
            ..Session::default()
        };
        s.reflected(1, 1_000, true, 1_300);
        assert_eq!(s.troubled_ns, 0);
        s.reflected(2, 1_400, true, 1_701);
        assert_eq!((s.troubled_ns, s.lost), (1_701, 0));
    }

    #[test]
    fn a_reflection_after_a_silence_brings_the_session_up_again() {
        let mut s = Session {
            detect_ns: 600,
            ..Session::default()
        };
        assert!(s.reflected(1, 1_000, true, 1_000).0);
        s.state = SESSION_DOWN;
        assert!(s.reflected(2, 2_000, true, 2_000).0);
        assert!(!s.reflected(3, 3_000, true, 3_000).0);
    }

    /// Discovery: probes 100 ms apart never start a 600 µs silence timer; once they come
    /// faster than that, every reflection restarts it.
    #[test]
    fn the_timer_runs_only_once_reflections_come_faster_than_the_detection_time() {
        let mut s = Session {
            detect_ns: 600_000,
            ..Session::default()
        };
        assert_eq!(s.reflected(0, 0, true, 0), (true, false));
        assert_eq!(
            s.reflected(1, 100_000_000, true, 100_000_000),
            (false, false)
        );
        assert_eq!(
            s.reflected(2, 100_200_000, true, 100_200_000),
            (false, true)
        );
        assert_eq!(
            s.reflected(3, 100_400_000, true, 100_400_000),
            (false, true)
        );
    }

    #[test]
    fn the_sequence_wraps_without_a_loss() {
        let mut s = Session::default();
        for (i, seq) in [u32::MAX - 1, u32::MAX, 0, 1].into_iter().enumerate() {
            s.reflected(seq, 0, true, 1_000 * (i as u64 + 1));
        }
        assert_eq!((s.count, s.lost, s.next_seq), (4, 0, 2));
    }

    #[test]
    fn a_probe_packet_is_udp_between_the_liveness_ports_with_ttl_255() {
        let probe = Probe::new(51, 100, 9, 123);
        let src = Ipv4Addr::new(198, 51, 100, 2);
        let dst = Ipv4Addr::new(198, 51, 100, 1);
        let packet = encode_probe(src, dst, &probe);
        let ip: &Ipv4Hdr = crate::wire::header_at(&packet, 0).unwrap();
        assert_eq!(
            (ip.src(), ip.dst(), ip.ttl, ip.proto),
            (src, dst, 255, IPPROTO_UDP)
        );
        assert_eq!(ip.total_len() as usize, PROBE_PACKET_LEN);
        let udp: &UdpHdr = crate::wire::header_at(&packet, IPV4_HDR_LEN).unwrap();
        assert!(udp.is_liveness());
        let back: &Probe = crate::wire::header_at(&packet, PROBE_OFFSET).unwrap();
        assert_eq!(*back, probe);
    }

    #[test]
    fn probes_are_recognised_by_magic_and_version() {
        let p = Probe::new(51, 100, 9, 123);
        assert!(p.is_valid() && !p.reflected());
        assert_eq!(p.seq(), 9);
        let mut bad = p;
        bad.version = 2;
        assert!(!bad.is_valid());
    }

    /// One line per CPU, hexadecimal columns; the second counts the backlog's drops.
    #[test]
    fn backlog_drops_sum_the_second_column_over_cpus() {
        let two_cpus = "0079e4ab 0000001a 00000310 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n\
                        0047d1c2 00000100 000000a1 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001\n";
        assert_eq!(super::backlog_drops(two_cpus), Some(0x1a + 0x100));
        assert_eq!(super::backlog_drops("0079e4ab\n"), None);
        assert_eq!(super::backlog_drops("0079e4ab zz\n"), None);
    }

    /// The first column counts the frames processed, the twelfth those waiting now.
    #[test]
    fn softnet_lines_say_what_each_backlog_processed_and_holds() {
        let new = "fa6316f8 0000700e 00000062 00000000 00000000 00000000 00000000 00000000 00000000 02430e93 00000000 00000454 00000000 00000454 00000000\n";
        let old = "0079e4ab 0000001a 00000310 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n";
        let cpu = |processed, dropped, queued| {
            Some(Softnet {
                processed,
                dropped,
                queued,
            })
        };
        let lines = |text| softnet(text).collect::<std::vec::Vec<_>>();
        assert_eq!(lines(new), [cpu(0xfa63_16f8, 0x700e, Some(0x454))]);
        assert_eq!(lines(old), [cpu(0x79_e4ab, 0x1a, None)]);
        assert_eq!(lines("0079e4ab\n"), [None]);
    }
}
