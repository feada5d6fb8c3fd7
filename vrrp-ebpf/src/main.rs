//! XDP program: picks the adverts of the agent's VRRP instances and ARP for its VIPs out of the
//! traffic, runs the RFC receive checks with the shared decoder, records arrival times in maps and
//! wakes the agent through a ring buffer only when the election must act now. It never drops or
//! alters a frame: every path ends in XDP_PASS.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_ktime_get_ns, bpf_xdp_load_bytes},
    macros::{map, xdp},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use vrrp_common::{
    advert::decode_ipv4_fields,
    maps::{
        ArpRecord, InstanceEntry, InstanceKey, PeerRecord, RingEvent, EVENTS_BYTES, EVENT_ADVERT,
        EVENT_ARP_CONFLICT, MAP_EVENTS, MAP_INSTANCES, MAP_PEERS, MAP_VIPS, MAX_INSTANCES,
        MAX_PACKET_V4, MAX_VIPS, PROGRAM_NAME,
    },
    wire::{
        ArpIpv4, EthHdr, Ipv4Hdr, VlanHdr, VrrpHdr, ETH_HDR_LEN, ETH_P_8021AD, ETH_P_8021Q,
        ETH_P_ARP, ETH_P_IP, IPPROTO_VRRP, VLAN_HDR_LEN,
    },
};

// Each map is named after its static and the program after its function (aya's macros take only
// literal names); the agent finds them by the shared constants, and this check keeps the two from
// drifting apart.
const _: () = assert!(
    same(PROGRAM_NAME, "vrrp")
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

/// A `T` header at `offset`, bounds-checked against the packet end (the verifier needs this form).
#[inline(always)]
fn header<T>(ctx: &XdpContext, offset: usize) -> Option<&T> {
    let start = ctx.data() + offset;
    if start + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    // SAFETY: in bounds (checked above) and every header type has alignment 1.
    Some(unsafe { &*(start as *const T) })
}

#[inline(always)]
fn frame(ctx: &XdpContext) -> Option<()> {
    let eth: &EthHdr = header(ctx, 0)?;
    let mut ethertype = eth.ethertype();
    let mut offset = ETH_HDR_LEN;
    // Up to two tags: 802.1Q, or 802.1ad outer + 802.1Q inner.
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let tag: &VlanHdr = header(ctx, offset)?;
        ethertype = tag.ethertype();
        offset += VLAN_HDR_LEN;
    }
    match ethertype {
        ETH_P_IP => advert(ctx, offset),
        ETH_P_ARP => arp(ctx, offset),
        _ => None,
    }
}

#[inline(always)]
fn advert(ctx: &XdpContext, offset: usize) -> Option<()> {
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
    let key = InstanceKey::new(ctx.ingress_ifindex() as u32, vrrp.vrid);
    // Foreign VRIDs stop here, one hash lookup: a flood of them costs the agent nothing.
    // SAFETY: the value is only read during this run; the agent replaces entries whole.
    let config = unsafe { INSTANCES.get(key) }?;
    let record = PEERS.get_ptr_mut(key)?;
    let event = SCRATCH.get_ptr_mut(0)?;
    let available = ctx.data_end() - ctx.data() - offset;
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
fn arp(ctx: &XdpContext, offset: usize) -> Option<()> {
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
    event.ifindex = ctx.ingress_ifindex() as u32;
    event.len = len as u16;
    event.kind = EVENT_ARP_CONFLICT;
    let _ = EVENTS.output::<RingEvent>(&*event, 0);
    Some(())
}

/// Copies `len` bytes of the packet from `offset` into the event (the caller bounds `len` by
/// the packet and by the event).
#[inline(always)]
fn load(ctx: &XdpContext, offset: usize, event: &mut RingEvent, len: usize) -> Option<()> {
    // SAFETY: the destination holds at least `len` bytes; the helper checks the packet's bounds.
    let copied = unsafe {
        bpf_xdp_load_bytes(
            ctx.ctx,
            offset as u32,
            event.packet.as_mut_ptr().cast(),
            len as u32,
        )
    };
    (copied == 0).then_some(())
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
