//! The kernel fast path: picks the adverts of the agent's VRRP instances and ARP for its VIPs out
//! of the traffic, runs the RFC receive checks with the shared decoder, records arrival times in
//! maps and wakes the agent through a ring buffer only when the election must act now. It never
//! drops or alters a frame.
//!
//! One program, two hooks: XDP (`vrrp`, in the driver or generic) and TC ingress (`vrrp_tc`), for
//! interfaces where generic XDP would copy every frame to give itself headroom (veth). A frame
//! with an 802.1Q/802.1ad tag belongs to a VLAN, not to the instances of this interface, as for
//! the raw socket and keepalived: it is passed untouched.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_UNSPEC},
    helpers::{bpf_ktime_get_ns, bpf_skb_load_bytes, bpf_xdp_load_bytes},
    macros::{classifier, map, xdp},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use vrrp_common::{
    advert::decode_ipv4_fields,
    maps::{
        ArpRecord, InstanceEntry, InstanceKey, PeerRecord, RingEvent, EVENTS_BYTES, EVENT_ADVERT,
        EVENT_ARP_CONFLICT, MAP_EVENTS, MAP_INSTANCES, MAP_PEERS, MAP_VIPS, MAX_INSTANCES,
        MAX_PACKET_V4, MAX_VIPS, PROGRAM_NAME, PROGRAM_TC,
    },
    wire::{ArpIpv4, EthHdr, Ipv4Hdr, VrrpHdr, ETH_HDR_LEN, ETH_P_ARP, ETH_P_IP, IPPROTO_VRRP},
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

/// Per-CPU room for one packet: too big for the 512-byte BPF stack.
#[map]
static SCRATCH: PerCpuArray<RingEvent> = PerCpuArray::with_max_entries(1, 0);

/// A rejected advert is reported at most this often per instance, and an ARP conflict per VIP:
/// enough for the log and the counters.
const REPORT_NS: u64 = 1_000_000_000;

#[xdp]
pub fn vrrp(ctx: XdpContext) -> u32 {
    let _ = frame(&ctx);
    xdp_action::XDP_PASS
}

#[classifier]
pub fn vrrp_tc(ctx: TcContext) -> i32 {
    let _ = frame(&ctx);
    // "Not mine to decide": the next program, or the stack, takes the frame as it is.
    TC_ACT_UNSPEC
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
}

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
}

/// A `T` header at `offset`, bounds-checked against the frame's end (the form the verifier needs;
/// at TC the linear head, where every header of a small frame is).
#[inline(always)]
fn header<T>(ctx: &impl Frame, offset: usize) -> Option<&T> {
    let start = ctx.data() + offset;
    if start + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    // SAFETY: in bounds (checked above) and every header type has alignment 1.
    Some(unsafe { &*(start as *const T) })
}

#[inline(always)]
fn frame(ctx: &impl Frame) -> Option<()> {
    if ctx.tag_taken() {
        return None;
    }
    let eth: &EthHdr = header(ctx, 0)?;
    // A tag still in the bytes (XDP, or the inner one of QinQ at TC): not ours either.
    match eth.ethertype() {
        ETH_P_IP => advert(ctx, ETH_HDR_LEN),
        ETH_P_ARP => arp(ctx, ETH_HDR_LEN),
        _ => None,
    }
}

#[inline(always)]
fn advert(ctx: &impl Frame, offset: usize) -> Option<()> {
    let ip: &Ipv4Hdr = header(ctx, offset)?;
    if ip.proto != IPPROTO_VRRP {
        return None;
    }
    let ihl = ip.header_len();
    if !(20..=60).contains(&ihl) {
        return None;
    }
    let total = ip.total_len() as usize;
    let vrrp: &VrrpHdr = header(ctx, offset + ihl)?;
    let key = InstanceKey::new(ctx.ifindex(), vrrp.vrid);
    // Foreign VRIDs stop here, one hash lookup: a flood of them costs the agent nothing.
    // SAFETY: the value is only read during this run; the agent replaces entries whole.
    let config = unsafe { INSTANCES.get(key) }?;
    let record = PEERS.get_ptr_mut(key)?;
    let event = SCRATCH.get_ptr_mut(0)?;
    let available = ctx.len().saturating_sub(offset);
    let len = total.min(available).min(MAX_PACKET_V4);
    if len < 20 {
        return None;
    }
    // SAFETY: `event` is this CPU's scratch slot, `record` a map value, both valid for this run.
    let (event, record) = unsafe { (&mut *event, &mut *record) };
    load(ctx, offset, event, len)?;
    // SAFETY: a helper without arguments or memory effects.
    let now = unsafe { bpf_ktime_get_ns() };
    let packet = event.packet.get(..len)?;
    let report = match decode_ipv4_fields(packet)
        .and_then(|a| a.check(&config.expect(key.vrid)).map(|()| a))
    {
        Ok(a) => {
            let src = a.src.octets();
            let urgent = config.is_master()
                || a.priority == 0
                || record.count == 0
                || record.src != src
                || record.priority != a.priority
                || record.interval_cs != a.interval_cs;
            record.t_ns = now;
            record.count += 1;
            record.src = src;
            record.priority = a.priority;
            record.interval_cs = a.interval_cs;
            urgent
        }
        Err(_) => {
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
