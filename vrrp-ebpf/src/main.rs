//! The kernel fast path: picks the adverts of the agent's VRRP instances and ARP for its VIPs out
//! of the traffic, runs the RFC receive checks with the shared decoder, records arrival times in
//! maps and wakes the agent through a ring buffer only when the election must act now. It never
//! drops or alters a frame, but for the liveness channel's own probes (`vrrp_common::liveness`):
//! as master it reflects them to their sender, as backup it consumes the reflections and restarts
//! a kernel timer with each; when that timer fires, the master is gone and the agent is told.
//! The same for VRRP itself: a backup's Master_Down timer runs in the kernel, restarted by each
//! advert of the master the agent follows, so an idle backup's agent sleeps until it fires.
//!
//! One program, two hooks: XDP (`vrrp`, in the driver or generic) and TC ingress (`vrrp_tc`), for
//! interfaces where generic XDP would copy every frame to give itself headroom (veth). A frame
//! with an 802.1Q/802.1ad tag belongs to a VLAN, not to the instances of this interface, as for
//! the raw socket and keepalived: it is passed untouched.
#![no_std]
#![no_main]

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_SHOT, TC_ACT_UNSPEC},
    btf_maps,
    helpers::{
        bpf_ktime_get_ns, bpf_loop, bpf_redirect, bpf_skb_load_bytes, bpf_timer_init,
        bpf_timer_set_callback, bpf_timer_start, bpf_xdp_load_bytes,
    },
    macros::{btf_map, classifier, map, xdp},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use vrrp_common::{
    advert::{checksum_v6_holds, checksums_hold, decode_ipv4_fields, decode_ipv6_fields, AddrList},
    checksum::SUM_STEP,
    liveness::{
        BestProber, LivenessChange, Probe, Session, UdpHdr, FLAG_FIRST_IN_LINE, FLAG_REFLECTED,
        IPPROTO_UDP, LIVENESS_PORT, PROBE_FRAME_LEN, SESSION_DOWN, SESSION_UP, UDP_HDR_LEN,
    },
    maps::{
        addr_bytes, gap_bucket, ArpRecord, InstanceEntry, InstanceKey, PeerRecord, RingEvent,
        Watch, EVENTS_BYTES, EVENT_ADVERT, EVENT_ARP_CONFLICT, EVENT_LIVENESS, EVENT_WATCH,
        FAMILY_V4, FAMILY_V6, MAP_EVENTS, MAP_INSTANCES, MAP_LIVENESS, MAP_PEERS, MAP_PROBERS,
        MAP_VIPS, MAP_WATCH, MAX_INSTANCES, MAX_PACKET_V4, MAX_PACKET_V6, MAX_VIPS, PROGRAM_NAME,
        PROGRAM_TC,
    },
    wire::{
        ArpIpv4, EthHdr, Ipv4Hdr, Ipv6Hdr, VrrpHdr, ETH_HDR_LEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6,
        IPPROTO_VRRP, IPV4_HDR_LEN, IPV6_HDR_LEN, VRRP_HDR_LEN, VRRP_TTL,
    },
};

// Each map is named after its static and the program after its function (aya's macros take only
// literal names); the agent finds them by the shared constants, and this check keeps the two from
// drifting apart.
const _: () = assert!(
    same(PROGRAM_NAME, "vrrp")
        && same(PROGRAM_TC, "vrrp_tc")
        && same(MAP_INSTANCES, "INSTANCES")
        && same(MAP_PEERS, "PEERS")
        && same(MAP_VIPS, "VIPS")
        && same(MAP_EVENTS, "EVENTS")
        && same(MAP_LIVENESS, "LIVENESS")
        && same(MAP_PROBERS, "PROBERS")
        && same(MAP_WATCH, "WATCH")
);

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[map]
static INSTANCES: HashMap<InstanceKey, InstanceEntry> = HashMap::with_max_entries(MAX_INSTANCES, 0);

#[map]
static PEERS: HashMap<InstanceKey, PeerRecord> = HashMap::with_max_entries(MAX_INSTANCES, 0);

#[map]
static VIPS: HashMap<[u8; 4], ArpRecord> = HashMap::with_max_entries(MAX_VIPS, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// The backup's probing of its master, one per instance. A BTF map: the kernel must find the
/// `bpf_timer` in its value.
#[btf_map]
static LIVENESS: btf_maps::HashMap<InstanceKey, Session, { MAX_INSTANCES as usize }> =
    btf_maps::HashMap::new();

/// The backup's Master_Down timer per instance. A BTF map, as for LIVENESS.
#[btf_map]
static WATCH: btf_maps::HashMap<InstanceKey, Watch, { MAX_INSTANCES as usize }> =
    btf_maps::HashMap::new();

/// The master's best prober per instance: who is first in line.
#[map]
static PROBERS: HashMap<InstanceKey, BestProber> = HashMap::with_max_entries(MAX_INSTANCES, 0);

/// Per-CPU room for one packet: too big for the 512-byte BPF stack.
#[map]
static SCRATCH: PerCpuArray<RingEvent> = PerCpuArray::with_max_entries(1, 0);

/// A rejected advert is reported at most this often per instance, and an ARP conflict per VIP:
/// enough for the log and the counters.
const REPORT_NS: u64 = 1_000_000_000;

/// CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns`.
const CLOCK_MONOTONIC: u64 = 1;

/// What becomes of a frame.
enum Verdict {
    /// Every frame but the liveness channel's: on its way, untouched.
    Pass,
    /// A reflected probe for us, consumed; or a probe for an instance we are not master of.
    Drop,
    /// A probe for an instance we are master of, turned around in place: out where it came in.
    Reflect,
}

#[xdp]
pub fn vrrp(ctx: XdpContext) -> u32 {
    match frame(&ctx) {
        Verdict::Pass => xdp_action::XDP_PASS,
        Verdict::Drop => xdp_action::XDP_DROP,
        Verdict::Reflect => xdp_action::XDP_TX,
    }
}

#[classifier]
pub fn vrrp_tc(ctx: TcContext) -> i32 {
    match frame(&ctx) {
        // "Not mine to decide": the next program, or the stack, takes the frame as it is.
        Verdict::Pass => TC_ACT_UNSPEC,
        Verdict::Drop => TC_ACT_SHOT,
        Verdict::Reflect => {
            // An arrival time is no departure time (a pacing qdisc would hold the frame).
            // SAFETY: a plain, writable field of the program's context.
            unsafe { (*ctx.skb.skb).tstamp = 0 };
            // SAFETY: a helper taking plain integers; out of the interface it came in by.
            unsafe { bpf_redirect(Frame::ifindex(&ctx), 0) as i32 }
        }
    }
}

/// What each hook gives the program: the frame's bytes from the Ethernet header on, and where it
/// arrived.
trait Frame {
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
    fn ifindex(&self) -> u32;
    /// The whole frame's length (at TC also what lies beyond the linear head).
    fn len(&self) -> usize;
    /// Copies `len` bytes from `offset` to `dst`; false if the frame has fewer.
    fn copy(&self, offset: usize, dst: *mut u8, len: usize) -> bool;
    /// A VLAN tag the kernel took out of the bytes before the hook (TC).
    fn tag_taken(&self) -> bool;
    /// Makes the first `len` bytes (or the whole frame, if shorter) directly readable.
    fn pull(&self, len: usize);
}

/// Whether a frame starting with `head` (Ethernet, IPv4, the ports of a UDP header) is one the
/// program reads: ARP, VRRP over either family, or UDP to the liveness port.
#[inline(always)]
fn may_be_ours(head: &[u8; ETH_HDR_LEN + IPV4_HDR_LEN + 4]) -> bool {
    let ethertype = u16::from_be_bytes([head[12], head[13]]);
    let proto = head[ETH_HDR_LEN + 9];
    let next_header = head[ETH_HDR_LEN + 6];
    let port = u16::from_be_bytes([head[36], head[37]]);
    ethertype == ETH_P_ARP
        || (ethertype == ETH_P_IP
            && (proto == IPPROTO_VRRP || (proto == IPPROTO_UDP && port == LIVENESS_PORT)))
        || (ethertype == ETH_P_IPV6 && next_header == IPPROTO_VRRP)
}

/// The headers [`header`] reads: Ethernet, IPv4 without options, UDP and a liveness probe (the
/// longest, as long as Ethernet, IPv6 and VRRP), or ARP. Adverts are copied out whole
/// ([`Frame::copy`]).
const HEADERS_LEN: usize = PROBE_FRAME_LEN;
const _: () = assert!(HEADERS_LEN >= ETH_HDR_LEN + IPV6_HDR_LEN + VRRP_HDR_LEN);

impl Frame for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        self.ingress_ifindex() as u32
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.data_end() - self.data()
    }

    #[inline(always)]
    fn copy(&self, offset: usize, dst: *mut u8, len: usize) -> bool {
        // SAFETY: the caller's `dst` holds `len` bytes; the helper checks the frame's bounds.
        unsafe { bpf_xdp_load_bytes(self.ctx, offset as u32, dst.cast(), len as u32) == 0 }
    }

    #[inline(always)]
    fn tag_taken(&self) -> bool {
        false
    }

    #[inline(always)]
    fn pull(&self, _len: usize) {
        // One linear buffer, but for multi-buffer (jumbo) frames, which are no adverts.
    }
}

impl Frame for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // At ingress the device the frame is on is the one it came in by.
        // SAFETY: a plain field of the program's context.
        unsafe { (*self.skb.skb).ifindex }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.skb.len() as usize
    }

    #[inline(always)]
    fn copy(&self, offset: usize, dst: *mut u8, len: usize) -> bool {
        let skb = self.skb.skb.cast();
        // SAFETY: the caller's `dst` holds `len` bytes; the helper checks the frame's bounds.
        unsafe { bpf_skb_load_bytes(skb, offset as u32, dst.cast(), len as u32) == 0 }
    }

    #[inline(always)]
    fn tag_taken(&self) -> bool {
        // SAFETY: a plain field of the program's context.
        unsafe { (*self.skb.skb).vlan_present != 0 }
    }

    #[inline(always)]
    fn pull(&self, len: usize) {
        // A socket's frame may hold only the Ethernet header in its linear head (trafgen's
        // TX ring, say, and a bridge does not pull unicast). Pulling costs a copy: only for a
        // frame that may be ours, as its first bytes, copied out, tell.
        let want = len.min(Frame::len(self));
        if self.data_end() - self.data() >= want {
            return;
        }
        let mut head = [0u8; ETH_HDR_LEN + IPV4_HDR_LEN + 4];
        if self.copy(0, head.as_mut_ptr(), head.len()) && may_be_ours(&head) {
            let _ = self.pull_data(want as u32);
        }
    }
}

/// A `T` header at `offset`, bounds-checked against the frame's end (the form the verifier needs;
/// at TC the linear head, where every header of a small frame is).
#[inline(always)]
fn header<T>(ctx: &impl Frame, offset: usize) -> Option<&T> {
    header_mut(ctx, offset).map(|h| &*h)
}

/// The same, to change in place (only a probe being reflected is changed).
#[inline(always)]
#[allow(clippy::mut_from_ref)] // the frame's bytes, not the context's
fn header_mut<T>(ctx: &impl Frame, offset: usize) -> Option<&mut T> {
    let start = ctx.data() + offset;
    if start + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    // SAFETY: in bounds (checked above), every header type has alignment 1, and one program run
    // holds one reference to a header at a time.
    Some(unsafe { &mut *(start as *mut T) })
}

#[inline(always)]
fn frame(ctx: &impl Frame) -> Verdict {
    if ctx.tag_taken() {
        return Verdict::Pass;
    }
    ctx.pull(HEADERS_LEN);
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
        return Verdict::Pass;
    };
    // A tag still in the bytes (XDP, or the inner one of QinQ at TC): not ours either.
    match eth.ethertype() {
        ETH_P_IP => {
            let Some(ip) = header::<Ipv4Hdr>(ctx, ETH_HDR_LEN) else {
                return Verdict::Pass;
            };
            match ip.proto {
                IPPROTO_VRRP => {
                    let _ = advert(ctx, false);
                    Verdict::Pass
                }
                IPPROTO_UDP => probe(ctx).unwrap_or(Verdict::Pass),
                _ => Verdict::Pass,
            }
        }
        // Only VRRP right after the fixed header: extension headers are not followed (no VRRP
        // sender adds one, and the socket path rejects such adverts alike).
        ETH_P_IPV6 => {
            let _ = advert(ctx, true);
            Verdict::Pass
        }
        ETH_P_ARP => {
            let _ = arp(ctx, ETH_HDR_LEN);
            Verdict::Pass
        }
        _ => Verdict::Pass,
    }
}

/// A liveness probe (`None`: not one for our instances, passed on).
#[inline(always)]
fn probe(ctx: &impl Frame) -> Option<Verdict> {
    let ip: &Ipv4Hdr = header(ctx, ETH_HDR_LEN)?;
    // TTL 255: sent on this link (as VRRP's own rule), never routed here from afar.
    if ip.header_len() != IPV4_HDR_LEN || ip.is_fragment() || ip.ttl != VRRP_TTL {
        return None;
    }
    let udp: &UdpHdr = header(ctx, ETH_HDR_LEN + IPV4_HDR_LEN)?;
    let at = ETH_HDR_LEN + IPV4_HDR_LEN + UDP_HDR_LEN;
    let probe: &Probe = header(ctx, at)?;
    if !udp.is_liveness() || !probe.is_valid() {
        return None;
    }
    let key = InstanceKey::new(ctx.ifindex(), probe.vrid, FAMILY_V4);
    // SAFETY: the value is only read during this run; the agent replaces entries whole.
    let config = unsafe { INSTANCES.get(key) }?;
    if config.liveness == 0 || config.local_addr[12..] != ip.dst {
        return None;
    }
    // SAFETY: a helper without arguments or memory effects.
    let now = unsafe { bpf_ktime_get_ns() };
    if probe.reflected() {
        reflection(key, ip.src, probe, now);
        return Some(Verdict::Drop);
    }
    if !config.is_master() {
        // Its sender still takes us for the master: silence tells it otherwise.
        return Some(Verdict::Drop);
    }
    let first = match PROBERS.get_ptr_mut(key) {
        Some(best) => {
            // SAFETY: a map value pointer, valid for this program run.
            let best = unsafe { &mut *best };
            if !best.admit(now) {
                return Some(Verdict::Drop);
            }
            best.probe(ip.src, probe.priority, now)
        }
        None => {
            let mut best = BestProber::default();
            best.admit(now);
            let first = best.probe(ip.src, probe.priority, now);
            let _ = PROBERS.insert(key, best, 0);
            first
        }
    };
    reflect(ctx, first)?;
    Some(Verdict::Reflect)
}

/// Turns a probe around in place: Ethernet and IP addresses swapped (the IP checksum stays
/// right), the UDP checksum cleared (optional over IPv4), the flags set.
#[inline(always)]
fn reflect(ctx: &impl Frame, first: bool) -> Option<()> {
    let eth: &mut EthHdr = header_mut(ctx, 0)?;
    core::mem::swap(&mut eth.dst, &mut eth.src);
    let ip: &mut Ipv4Hdr = header_mut(ctx, ETH_HDR_LEN)?;
    core::mem::swap(&mut ip.dst, &mut ip.src);
    let udp: &mut UdpHdr = header_mut(ctx, ETH_HDR_LEN + IPV4_HDR_LEN)?;
    udp.checksum = [0; 2];
    let probe: &mut Probe = header_mut(ctx, ETH_HDR_LEN + IPV4_HDR_LEN + UDP_HDR_LEN)?;
    probe.flags = FLAG_REFLECTED | if first { FLAG_FIRST_IN_LINE } else { 0 };
    Some(())
}

/// A reflected probe from `src` back for us: the session records it and its silence timer
/// starts again; the first one after none or after a silence tells the agent the channel is up.
#[inline(always)]
fn reflection(key: InstanceKey, src: [u8; 4], probe: &Probe, now: u64) -> Option<()> {
    let session = LIVENESS.get_ptr_mut(key)?;
    // SAFETY: a map value pointer, valid for this program run.
    let session = unsafe { &mut *session };
    if session.peer != src || session.detect_ns == 0 {
        return None;
    }
    let first = probe.flags & FLAG_FIRST_IN_LINE != 0;
    let (up, arm) = session.reflected(probe.seq(), probe.sent_ns(), first, now);
    if up {
        change(&key, session, true);
    }
    if !arm {
        return Some(());
    }
    let map = core::ptr::addr_of!(LIVENESS).cast_mut().cast::<c_void>();
    // SAFETY: the session is a value of LIVENESS; `on_silence` has the callback's signature.
    unsafe {
        start_timer(
            &mut session.timer,
            &mut session.timer_ready,
            map,
            on_silence as *mut c_void,
            session.detect_ns,
        )
    };
    Some(())
}

/// (Re)starts `timer` to fire in `ns`, setting it up with `callback` the first time (`ready`).
///
/// # Safety
/// `timer` and `ready` lie in one value of `map`; `callback` has the signature of a timer
/// callback for `map`.
#[inline(always)]
unsafe fn start_timer(
    timer: &mut vrrp_common::liveness::bpf_timer,
    ready: &mut u8,
    map: *mut c_void,
    callback: *mut c_void,
    ns: u64,
) -> bool {
    let timer = (timer as *mut vrrp_common::liveness::bpf_timer).cast();
    if *ready == 0 {
        // SAFETY: as the caller promises, what the helpers require.
        unsafe {
            bpf_timer_init(timer, map, CLOCK_MONOTONIC);
            bpf_timer_set_callback(timer, callback);
        }
        *ready = 1;
    }
    // SAFETY: an initialised timer in a map value.
    unsafe { bpf_timer_start(timer, ns, 0) == 0 }
}

/// The session's timer fired: no reflection for `detect_ns`. Marks it silent and tells the agent.
extern "C" fn on_silence(_map: *mut c_void, key: *mut InstanceKey, session: *mut Session) -> i32 {
    // SAFETY: the kernel passes the key and value of the element the timer lives in.
    let (key, session) = unsafe { (&*key, &mut *session) };
    if session.state == SESSION_UP {
        session.state = SESSION_DOWN;
        change(key, session, false);
    }
    0
}

/// (Re)starts the instance's Master_Down timer for `down_ns`; whether it runs.
#[inline(always)]
fn watch(key: InstanceKey, down_ns: u64) -> bool {
    let Some(watch) = WATCH.get_ptr_mut(key) else {
        return false;
    };
    // SAFETY: a map value pointer, valid for this program run.
    let watch = unsafe { &mut *watch };
    let map = core::ptr::addr_of!(WATCH).cast_mut().cast::<c_void>();
    // SAFETY: `watch` is a value of WATCH; `on_master_down` has the callback's signature.
    unsafe {
        start_timer(
            &mut watch.timer,
            &mut watch.timer_ready,
            map,
            on_master_down as *mut c_void,
            down_ns,
        )
    }
}

/// The Master_Down timer fired: no advert from the master for the interval. Tells the agent
/// (a full ring: the agent's own timer, a second later, still takes over).
extern "C" fn on_master_down(_map: *mut c_void, key: *mut InstanceKey, _watch: *mut Watch) -> i32 {
    // SAFETY: the kernel passes the key of the element the timer lives in.
    let key = unsafe { &*key };
    tell(key, EVENT_WATCH, [key.vrid, key.family]);
    0
}

/// Puts an event of `kind` for instance `key` on the ring, carrying `payload`; a full ring
/// drops it (each caller says what covers for it).
#[inline(always)]
fn tell<T: Copy>(key: &InstanceKey, kind: u8, payload: T) {
    let Some(mut entry) = EVENTS.reserve::<RingEvent>(0) else {
        return;
    };
    // SAFETY: a ring buffer slot reserved for one event; only the fields the agent reads, and
    // `len` bytes of `packet`, are written (a payload is far shorter than `packet`).
    unsafe {
        let event = entry.as_mut_ptr();
        (*event).t_ns = bpf_ktime_get_ns();
        (*event).ifindex = key.ifindex;
        (*event).kind = kind;
        (*event).len = core::mem::size_of::<T>() as u16;
        core::ptr::write_unaligned((*event).packet.as_mut_ptr().cast(), payload);
    }
    entry.submit(0);
}

/// Tells the agent the session came up or fell silent (a full ring: the agent learns of a
/// silence from VRRP's own timer).
#[inline(always)]
fn change(key: &InstanceKey, session: &Session, up: bool) {
    let change = LivenessChange {
        peer: session.peer,
        vrid: key.vrid,
        first: session.first,
        up: up.into(),
        _pad: 0,
        last_ns: session.last_ns,
    };
    tell(key, EVENT_LIVENESS, change);
}

/// An advert over IPv4, or over IPv6 (`v6`). Not inlined: its stack frame, the largest, is not
/// stacked on the liveness path's.
#[inline(never)]
fn advert(ctx: &impl Frame, v6: bool) -> Option<()> {
    let (header_len, total, family, max) = if v6 {
        let ip: &Ipv6Hdr = header(ctx, ETH_HDR_LEN)?;
        if ip.next_hdr != IPPROTO_VRRP {
            return None;
        }
        let total = IPV6_HDR_LEN + usize::from(ip.payload_len());
        (IPV6_HDR_LEN, total, FAMILY_V6, MAX_PACKET_V6)
    } else {
        let ip: &Ipv4Hdr = header(ctx, ETH_HDR_LEN)?;
        let ihl = ip.header_len();
        if ip.proto != IPPROTO_VRRP || !(20..=60).contains(&ihl) {
            return None;
        }
        (ihl, usize::from(ip.total_len()), FAMILY_V4, MAX_PACKET_V4)
    };
    let vrrp: &VrrpHdr = header(ctx, ETH_HDR_LEN + header_len)?;
    let key = InstanceKey::new(ctx.ifindex(), vrrp.vrid, family);
    // Foreign VRIDs stop here, one hash lookup: a flood of them costs the agent nothing.
    // SAFETY: the value is only read during this run; the agent replaces entries whole.
    let config = unsafe { INSTANCES.get(key) }?;
    let record = PEERS.get_ptr_mut(key)?;
    let event = SCRATCH.get_ptr_mut(0)?;
    let available = ctx.len().saturating_sub(ETH_HDR_LEN);
    // A longer IPv6 advert (over 90 addresses, on a jumbo-frame link) is cut short and so
    // rejected; keepalived sends at most 89, moving the rest to its excluded VIPs.
    let len = total.min(available).min(max);
    if len < 20 {
        return None;
    }
    // SAFETY: `event` is this CPU's scratch slot, `record` a map value, both valid for this run.
    let (event, record) = unsafe { (&mut *event, &mut *record) };
    load(ctx, ETH_HDR_LEN, event, len)?;
    // The checksums are summed in whole steps: the bytes past the packet in its last step are zero.
    for k in 0..SUM_STEP {
        if let Some(b) = event.packet.get_mut(len + k) {
            *b = 0;
        }
    }
    // SAFETY: a helper without arguments or memory effects.
    let now = unsafe { bpf_ktime_get_ns() };
    let packet = event.packet.get(..len)?;
    let decoded = if v6 {
        decode_ipv6_fields(packet)
    } else {
        decode_ipv4_fields(packet)
    };
    // Only what the record needs outlives the decoded advert: the stack is small.
    let seen = match decoded {
        Ok(a) if a.check(&config.expect(key.vrid)).is_ok() => {
            // RFC 9568 §7.1: the checksums hold before the advert counts for anything.
            let checksums = if v6 {
                checksum_v6_holds(&event.packet, len)
            } else {
                checksums_hold(&event.packet, len, a.version)
            };
            let sound = checksums && addrs_hold(config, a.addrs().len(), v6);
            sound.then(|| (addr_bytes(a.src), a.priority, a.interval_cs))
        }
        _ => None,
    };
    let report = match seen {
        Some((src, priority, interval_cs)) => {
            let urgent = config.is_master()
                || priority == 0
                || record.count == 0
                || record.src != src
                || record.priority != priority
                || record.interval_cs != interval_cs;
            // The rhythm of the master's adverts, from the kernel's arrival times.
            if record.count > 0 && record.src == src {
                let gap = now.wrapping_sub(record.t_ns);
                record.gap_sum_ns = record.gap_sum_ns.wrapping_add(gap);
                if let Some(bucket) = record.gaps.get_mut(gap_bucket(gap)) {
                    *bucket += 1;
                }
            }
            record.t_ns = now;
            record.count += 1;
            record.src = src;
            record.priority = priority;
            record.interval_cs = interval_cs;
            if config.watches(src, priority, interval_cs) && watch(key, config.watch_down_ns) {
                record.watch_ns = now.wrapping_add(config.watch_down_ns);
            }
            urgent
        }
        _ => {
            record.rejected += 1;
            let due = now.wrapping_sub(record.rejected_t_ns) >= REPORT_NS;
            if due {
                record.rejected_t_ns = now;
            }
            due
        }
    };
    if report {
        event.t_ns = now;
        event.ifindex = key.ifindex;
        event.len = len as u16;
        event.kind = EVENT_ADVERT;
        // A full ring only delays the agent to its next timer check of PEERS; nothing is lost.
        let _ = EVENTS.output::<RingEvent>(&*event, 0);
    }
    Some(())
}

/// The address list check of `vrrp_common::advert::Advert::check_addrs`, on the advert of
/// `count` addresses in this CPU's scratch event: the digest of its list against ours. A loop
/// helper, so the verifier walks one address, not every possible count.
#[inline(always)]
fn addrs_hold(config: &InstanceEntry, count: usize, v6: bool) -> bool {
    if config.addr_count == 0 {
        return true;
    }
    if count != usize::from(config.addr_count) {
        return false;
    }
    let mut list = AddrList::default();
    let step = if v6 { add_addr_v6 } else { add_addr } as *mut c_void;
    // SAFETY: the callback has the helper's signature and takes `list` for its context, which
    // outlives the call.
    let walked = unsafe { bpf_loop(count as u32, step, (&raw mut list).cast(), 0) };
    walked == count as i64 && list.count == config.addr_count && list.digest == config.addr_digest
}

/// `bpf_loop` step `index` of [`addrs_hold`] over IPv4: adds the advert's address `index` to
/// the list.
extern "C" fn add_addr(index: u64, list: *mut c_void) -> i64 {
    let at = IPV4_HDR_LEN + VRRP_HDR_LEN + 4 * (index as usize & 0xff);
    match scratch_addr::<4>(at) {
        // SAFETY: `addrs_hold` passes its AddrList, alive for the loop.
        Some(addr) => unsafe { (*list.cast::<AddrList>()).add(addr) },
        None => return 1,
    }
    0
}

/// The same over IPv6.
extern "C" fn add_addr_v6(index: u64, list: *mut c_void) -> i64 {
    let at = IPV6_HDR_LEN + VRRP_HDR_LEN + 16 * (index as usize & 0x7f);
    match scratch_addr::<16>(at) {
        // SAFETY: `addrs_hold` passes its AddrList, alive for the loop.
        Some(addr) => unsafe { (*list.cast::<AddrList>()).add_v6(addr) },
        None => return 1,
    }
    0
}

/// The `N` bytes at `at` of the packet in this CPU's scratch slot, which the program run that
/// called the loop filled.
#[inline(always)]
fn scratch_addr<const N: usize>(at: usize) -> Option<[u8; N]> {
    let event = SCRATCH.get_ptr(0)?;
    // SAFETY: this CPU's scratch slot, valid for the program run.
    let bytes = unsafe { &*event }.packet.get(at..at + N)?;
    <[u8; N]>::try_from(bytes).ok()
}

#[inline(always)]
fn arp(ctx: &impl Frame, offset: usize) -> Option<()> {
    let arp: &ArpIpv4 = header(ctx, offset)?;
    if !arp.is_ether_ipv4() {
        return None;
    }
    let record = VIPS.get_ptr_mut(arp.spa)?;
    // SAFETY: a map value pointer, valid for this program run.
    let record = unsafe { &mut *record };
    // SAFETY: a helper without arguments or memory effects.
    let now = unsafe { bpf_ktime_get_ns() };
    record.t_ns = now;
    record.count += 1;
    record.sender_mac = arp.sha;
    // Ours while we are master: another MAC claiming the VIP is split-brain evidence.
    if record.owner_mac == [0; 6] || record.owner_mac == arp.sha {
        return Some(());
    }
    record.conflicts += 1;
    if now.wrapping_sub(record.reported_t_ns) < REPORT_NS {
        return Some(());
    }
    record.reported_t_ns = now;
    let event = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's scratch slot, valid for this run.
    let event = unsafe { &mut *event };
    let len = core::mem::size_of::<ArpIpv4>();
    load(ctx, offset, event, len)?;
    event.t_ns = now;
    event.ifindex = ctx.ifindex();
    event.len = len as u16;
    event.kind = EVENT_ARP_CONFLICT;
    let _ = EVENTS.output::<RingEvent>(&*event, 0);
    Some(())
}

/// Copies `len` bytes of the frame from `offset` into the event (the caller bounds `len` by the
/// frame and by the event).
#[inline(always)]
fn load(ctx: &impl Frame, offset: usize, event: &mut RingEvent, len: usize) -> Option<()> {
    ctx.copy(offset, event.packet.as_mut_ptr(), len)
        .then_some(())
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any program with a reachable panic path, so none is left.
    unsafe { core::hint::unreachable_unchecked() }
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
