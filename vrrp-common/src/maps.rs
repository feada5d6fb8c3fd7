//! The contract between the XDP program and the agent: BPF map keys and values, ring-buffer events.
//! All `#[repr(C)]` `Pod` with explicit padding, native byte order for numbers the two sides
//! exchange, network byte order for addresses (as on the wire).
use core::net::{IpAddr, Ipv6Addr};

use bytemuck::{Pod, Zeroable};

use crate::wire::{IPV6_HDR_LEN, MAX_ADVERT_LEN_V4, VRRP_HDR_LEN};

/// Map names in the object file, shared so loader and program cannot drift apart.
pub const MAP_INSTANCES: &str = "INSTANCES";
pub const MAP_PEERS: &str = "PEERS";
pub const MAP_VIPS: &str = "VIPS";
pub const MAP_EVENTS: &str = "EVENTS";
/// The liveness channel: a backup's sessions with its master, the master's best prober.
pub const MAP_LIVENESS: &str = "LIVENESS";
pub const MAP_PROBERS: &str = "PROBERS";
/// The backup's Master_Down timer, kept by the kernel ([`Watch`]).
pub const MAP_WATCH: &str = "WATCH";
pub const PROGRAM_NAME: &str = "vrrp";
/// The same program at TC ingress.
pub const PROGRAM_TC: &str = "vrrp_tc";

/// Instances one XDP program serves (all interfaces, all VRIDs).
pub const MAX_INSTANCES: u32 = 1024;
pub const MAX_VIPS: u32 = 4096;
/// Ring buffer for "act now" events: about forty of them (each has room for a full-size advert
/// of either family), drained at every wake-up of the agent. Its pages are resident twice over
/// in the agent (the kernel maps the data area twice), so its size is the agent's RSS: 128 KiB
/// costs 0.25 MB where 512 KiB cost 1 MB. A full ring loses an urgent advert, which the
/// kernel's record of the peer still holds for the Master_Down check.
pub const EVENTS_BYTES: u32 = 128 * 1024;
/// Longest IPv4 packet the XDP program checks: the largest advert plus 40 bytes of IP options.
pub const MAX_PACKET_V4: usize = MAX_ADVERT_LEN_V4 + 40;
/// Most addresses an IPv6 advert of ours carries, as keepalived counts them for a 1500-byte
/// MTU (MTU less Ethernet, IPv6 and VRRP headers, over 16); it moves the rest to the excluded
/// VIPs.
pub const MAX_ADDRS_V6: usize = (1500 - 14 - IPV6_HDR_LEN - VRRP_HDR_LEN) / 16;
/// Longest IPv6 packet the XDP program checks: all a 1500-byte MTU carries (90 addresses, one
/// more than we send). A longer advert, possible only on a jumbo-frame link, is cut short and
/// rejected there, where the raw-socket path would take it.
pub const MAX_PACKET_V6: usize = 1500;
/// Longest packet of either family in a [`RingEvent`].
pub const MAX_PACKET: usize = if MAX_PACKET_V4 > MAX_PACKET_V6 {
    MAX_PACKET_V4
} else {
    MAX_PACKET_V6
};
/// Room past [`MAX_PACKET`] in [`RingEvent::packet`]: the verifier only knows that an offset into
/// the packet is below its length, not that a header read there is, and it adds two such offsets
/// (IP header length, address list) without their shared bound; the spare bytes cover that.
const VERIFIER_SLACK: usize = MAX_PACKET + 16;

/// [`InstanceKey::family`]: VRRP over IPv4 and over IPv6 are separate routers, each with its own
/// VRIDs (RFC 9568 §5.2.3).
pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

/// An address as the maps hold it: IPv6 as is, IPv4 mapped (`::ffff:a.b.c.d`), so one field
/// serves both families.
pub const fn addr_bytes(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The address of [`addr_bytes`].
pub const fn addr_of(bytes: [u8; 16]) -> IpAddr {
    Ipv6Addr::from_octets(bytes).to_canonical()
}

/// Key of the per-instance maps: a VRID of one address family on an interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct InstanceKey {
    pub ifindex: u32,
    pub vrid: u8,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    pub _pad: [u8; 2],
}

impl InstanceKey {
    pub const fn new(ifindex: u32, vrid: u8, family: u8) -> Self {
        Self {
            ifindex,
            vrid,
            family,
            _pad: [0; 2],
        }
    }
}

/// The instance's role as the kernel needs it to decide what is urgent. Stored as its `u8` in
/// [`InstanceEntry::role`] (a map value must accept every bit pattern).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Initialize or Fault: nothing the kernel sees is urgent but a rejected advert.
    Idle = 0,
    Backup = 1,
    Master = 2,
}

/// Written by the agent (at start and on each state change), read by XDP: what a valid advert for
/// this instance looks like (the fields of [`crate::advert::Expect`]) and who we are. The value of
/// the INSTANCES map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct InstanceEntry {
    /// Our source address ([`addr_bytes`]): IPv4 primary or IPv6 link-local.
    pub local_addr: [u8; 16],
    pub auth_data: [u8; 8],
    pub interval_cs: u16,
    /// 2 or 3.
    pub version: u8,
    /// Our current priority.
    pub priority: u8,
    /// A [`Role`].
    pub role: u8,
    /// 0 none, 1 simple password.
    pub auth_type: u8,
    /// 1: the liveness channel is on: while master, reflect probes (crate::liveness).
    pub liveness: u8,
    /// Our address list ([`crate::advert::AddrList`]), which an advert must carry; a count of 0
    /// leaves the check to the agent (`skip_check_adv_addr`).
    pub addr_count: u8,
    pub addr_digest: u64,
    /// The master whose adverts restart the backup's Master_Down timer in the kernel
    /// ([`Watch`]): each valid advert with exactly this source, priority and interval restarts
    /// it for `watch_down_ns` (the agent's Master_Down_Interval). The agent names a master only
    /// while its adverts would restart its own timer whatever the time (not under
    /// preempt_delay); `watch_down_ns` 0: none.
    pub watch_src: [u8; 16],
    pub watch_interval_cs: u16,
    pub watch_priority: u8,
    pub _pad: [u8; 5],
    pub watch_down_ns: u64,
}

/// Written by XDP, read by the agent: the last valid advert of the instance, so the agent can check,
/// before declaring the master down, whether an advert arrived that it has not processed yet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct PeerRecord {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) at arrival.
    pub t_ns: u64,
    /// Valid adverts seen.
    pub count: u64,
    /// Adverts that failed a receive check.
    pub rejected: u64,
    /// `bpf_ktime_get_ns()` of the last rejected advert (rate-limits their events).
    pub rejected_t_ns: u64,
    /// [`addr_bytes`] of the advert's source.
    pub src: [u8; 16],
    pub interval_cs: u16,
    pub priority: u8,
    pub _pad: [u8; 5],
    /// The gaps between consecutive valid adverts of one source (the master), by their kernel
    /// arrival times: their sum, and how many fell in each [`gap_bucket`].
    pub gap_sum_ns: u64,
    pub gaps: [u64; GAP_BUCKETS],
    /// When the kernel's Master_Down timer ([`Watch`]) is due, as last (re)started; 0: never.
    pub watch_ns: u64,
}

/// The value of the WATCH map (one per instance, inserted zeroed by the agent and never
/// rewritten, so its timer runs until the instance goes): a backup's Master_Down timer, which
/// the kernel program restarts with each advert [`InstanceEntry::watches`]. When it fires, the
/// master is silent: a [`EVENT_WATCH`] tells the agent, which otherwise need not wake per advert.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Watch {
    pub timer: crate::liveness::bpf_timer,
    /// 1 once the program initialised `timer`.
    pub timer_ready: u8,
    pub _pad: [u8; 7],
}

/// Buckets of advert gaps: bucket `i` holds gaps below `2^(20 + i)` ns (1.05 ms, 2.1 ms, ...,
/// 17.2 s), the last one everything longer. Powers of two keep the kernel free of division.
pub const GAP_BUCKETS: usize = 16;

/// The bucket of a gap of `gap_ns` (a loop of at most 15 steps: the verifier walks it whole).
pub const fn gap_bucket(gap_ns: u64) -> usize {
    let mut i = 0;
    while i < GAP_BUCKETS - 1 && gap_ns >= 1 << (20 + i) {
        i += 1;
    }
    i
}

/// Bucket `i`'s upper bound in seconds (`None` for the last, unbounded one).
pub fn gap_bucket_bound_secs(i: usize) -> Option<f64> {
    (i < GAP_BUCKETS - 1).then(|| (1u64 << (20 + i)) as f64 / 1e9)
}

/// The value of the VIPS map, one per watched VIP (the agent inserts a zeroed record). XDP
/// records every ARP packet whose sender address is the VIP; while the agent is master of the
/// VIP it writes its MAC as `owner_mac`, and an ARP packet from any other MAC is a conflict
/// (another router is master too, or a host uses the address): counted, and reported on the ring
/// buffer at most once a second.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ArpRecord {
    pub t_ns: u64,
    pub count: u64,
    pub conflicts: u64,
    /// `bpf_ktime_get_ns()` of the last conflict reported (rate-limits the events).
    pub reported_t_ns: u64,
    pub sender_mac: [u8; 6],
    /// All zero while we are not master.
    pub owner_mac: [u8; 6],
    pub _pad: [u8; 4],
}

/// [`RingEvent::kind`]: an advert (the IPv4 packet), an ARP conflict (the ARP payload), or the
/// liveness channel coming up or going silent (a [`crate::liveness::LivenessChange`]).
pub const EVENT_ADVERT: u8 = 0;
pub const EVENT_ARP_CONFLICT: u8 = 1;
pub const EVENT_LIVENESS: u8 = 2;
/// The kernel's Master_Down timer ([`Watch`]) fired; `packet[0]` is the VRID.
pub const EVENT_WATCH: u8 = 3;

/// Ring-buffer event: an advert the election must see now (priority 0, a new source or priority,
/// anything while we are master) or a rejected one (at most one a second per instance, for the
/// log), carrying the whole IPv4 packet so the agent decodes it with the same code as the
/// raw-socket path; or an ARP conflict on one of our VIPs, carrying the ARP payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RingEvent {
    pub t_ns: u64,
    pub ifindex: u32,
    /// Bytes of `packet` that hold the IP packet or the ARP payload.
    pub len: u16,
    /// [`EVENT_ADVERT`] or [`EVENT_ARP_CONFLICT`].
    pub kind: u8,
    pub _pad: u8,
    pub packet: [u8; MAX_PACKET + VERIFIER_SLACK],
}

impl RingEvent {
    pub fn packet(&self) -> &[u8] {
        &self.packet[..(self.len as usize).min(MAX_PACKET)]
    }
}

#[cfg(feature = "user")]
mod user {
    // The map types are repr(C) with explicit padding and only integer fields (bytemuck
    // Pod), so every bit pattern is a valid value and none has padding bytes.
    // SAFETY: as above.
    unsafe impl aya::Pod for super::InstanceKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::InstanceEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PeerRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ArpRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Watch {}
    // SAFETY: as above.
    unsafe impl aya::Pod for crate::liveness::Session {}
    // SAFETY: as above.
    unsafe impl aya::Pod for crate::liveness::BestProber {}
}

impl InstanceEntry {
    /// Whether the agent last wrote [`Role::Master`].
    pub const fn is_master(&self) -> bool {
        self.role == Role::Master as u8
    }

    /// Whether a valid advert with these fields restarts the kernel's Master_Down timer.
    pub fn watches(&self, src: [u8; 16], priority: u8, interval_cs: u16) -> bool {
        self.role == Role::Backup as u8
            && self.watch_down_ns != 0
            && self.watch_src == src
            && self.watch_priority == priority
            && self.watch_interval_cs == interval_cs
    }

    /// The receive checks instance `vrid` applies, in the codec's terms.
    pub fn expect(&self, vrid: u8) -> crate::advert::Expect {
        use crate::advert::{Auth, Expect};
        Expect {
            vrid,
            version: if self.version == crate::wire::VRRP_VERSION_2 {
                crate::Version::V2
            } else {
                crate::Version::V3
            },
            interval_cs: self.interval_cs,
            auth: if self.auth_type == crate::wire::VRRP_AUTH_PASS {
                Auth::Pass(self.auth_data)
            } else {
                Auth::None
            },
            local_addr: addr_of(self.local_addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_both_families_round_trip_through_map_bytes() {
        use core::net::Ipv4Addr;
        let v4 = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let v6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1));
        for addr in [v4, v6] {
            assert_eq!(addr_of(addr_bytes(addr)), addr);
        }
        assert_eq!(addr_bytes(v4)[10..], [0xff, 0xff, 198, 51, 100, 1]);
        assert_eq!(MAX_ADDRS_V6, 89);
    }

    #[test]
    fn gap_buckets_are_powers_of_two_from_a_millisecond() {
        assert_eq!(gap_bucket(0), 0);
        assert_eq!(gap_bucket((1 << 20) - 1), 0);
        assert_eq!(gap_bucket(1 << 20), 1);
        // A 100 ms advert interval lands below 134.2 ms.
        assert_eq!(gap_bucket(100_000_000), 7);
        assert_eq!(gap_bucket_bound_secs(7), Some(0.134217728));
        assert_eq!(gap_bucket(u64::MAX), GAP_BUCKETS - 1);
        assert_eq!(gap_bucket_bound_secs(GAP_BUCKETS - 1), None);
    }
}
