//! The kernel program is transparent: run by the kernel with BPF_PROG_TEST_RUN (root, no
//! interface) on over 100,000 frames through both hooks, it passes every frame unchanged, and
//! its maps and ring buffer move only for frames that pass every check the agent applies.
//!
//! Frames: the bad-input matrix of the end-to-end tests (every class, one change each, and
//! sound adverts), for an IPv4 and an IPv6 instance of the same VRID, each truncated at every
//! length, random byte changes of those, random bytes, and ARP for our VIP. The verdicts
//! expected come from the agent's own decoder.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use aya::maps::{MapData, RingBuf};
use aya::programs::{SchedClassifier, TestRun, TestRunOptions, TestRunResult, Xdp};
use vrrp_common::{
    liveness::{REFLECT_BURST, REFLECT_EVERY_NS},
    maps::{
        addr_bytes, Role, EVENT_ADVERT, EVENT_ARP_CONFLICT, EVENT_WATCH, FAMILY_V4, FAMILY_V6,
        MAP_EVENTS,
    },
    wire::{header_at, ArpIpv4, ETH_HDR_LEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6},
    AddrList, Auth, Expect, Version,
};
use vrrp_lab::frames::{
    advert_frame, fragmented, probe_frame, reseal, udp_frame, vlan_tagged, with_record_route,
    TPID_8021AD, TPID_8021Q,
};

use super::*;
use crate::testing::is_root;

/// BPF_PROG_TEST_RUN runs a frame as arriving on the loopback device.
const IFINDEX: u32 = 1;
const VRID: u8 = 51;
const US: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
const US6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 2);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);
const VIP6_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
/// XDP_PASS; TC_ACT_UNSPEC (-1) as the kernel returns it.
const XDP_PASS: u32 = 2;
const XDP_DROP: u32 = 1;
const XDP_TX: u32 = 3;
const TC_PASS: u32 = u32::MAX;

/// A small deterministic generator (xorshift64*): the same frames on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What instance VRID 51 of a family on the loopback device accepts: a v3 backup of priority
/// 100 with our VIPs, as the agent writes it.
fn expect(v6: bool) -> Expect {
    Expect {
        vrid: VRID,
        version: Version::V3,
        interval_cs: 10,
        auth: Auth::None,
        local_addr: if v6 { US6.into() } else { US.into() },
    }
}

fn vips(v6: bool) -> Vec<IpAddr> {
    match v6 {
        true => vec![VIP6_LINK_LOCAL.into(), VIP6.into()],
        false => vec![VIP.into()],
    }
}

fn entry() -> InstanceEntry {
    entry_of(false)
}

fn entry_of(v6: bool) -> InstanceEntry {
    let ours = AddrList::of(vips(v6));
    InstanceEntry {
        local_addr: addr_bytes(expect(v6).local_addr),
        auth_data: [0; 8],
        interval_cs: 10,
        version: 3,
        priority: 100,
        role: Role::Backup as u8,
        auth_type: 0,
        liveness: 0,
        addr_count: ours.count,
        addr_digest: ours.digest,
        ..bytemuck::Zeroable::zeroed()
    }
}

/// The agent's verdict on a frame: an untagged advert for our instance of its family that
/// passes every check.
fn accepted(frame: &[u8]) -> bool {
    let ip = frame.get(ETH_HDR_LEN..).unwrap_or_default();
    let ethertype = frame.get(12..14);
    let (v6, decoded) = if ethertype == Some(&ETH_P_IPV6.to_be_bytes()) {
        (true, vrrp_common::decode_ipv6(ip))
    } else if ethertype == Some(&ETH_P_IP.to_be_bytes()) {
        (false, vrrp_common::decode_ipv4(ip))
    } else {
        return false;
    };
    decoded.is_ok_and(|a| a.check(&expect(v6)).is_ok() && a.check_addrs(&vips(v6)).is_ok())
}

/// Untagged ARP whose sender address is our VIP: recorded in VIPS.
fn arp_for_vip(frame: &[u8]) -> Option<&ArpIpv4> {
    if frame.get(12..14) != Some(&ETH_P_ARP.to_be_bytes()) {
        return None;
    }
    header_at::<ArpIpv4>(frame, ETH_HDR_LEN).filter(|a| a.is_ether_ipv4() && a.spa == VIP.octets())
}

/// Every frame of the test: over 100,000.
fn frames() -> Vec<Vec<u8>> {
    let src = (PEER_MAC, PEER);
    let sound = advert_frame(src, VRID, 200, 10, &[VIP]);
    let changed = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut f = sound.clone();
        edit(&mut f);
        reseal(&mut f);
        f
    };
    let mut garp = [0u8; 64];
    let len = vrrp_common::encode_garp(PEER_MAC, VIP, &mut garp).unwrap();
    let mut ours = garp;
    vrrp_common::encode_garp(OUR_MAC, VIP, &mut ours).unwrap();
    let [first, last] = fragmented(&sound);
    let mut bases = vec![
        sound.clone(),
        advert_frame(src, VRID, 0, 10, &[VIP]),
        advert_frame(src, VRID, 150, 20, &[VIP]),
        advert_frame((PEER_MAC, US), VRID, 200, 10, &[VIP]),
        advert_frame(src, VRID, 200, 10, &[VIP, PEER]),
        advert_frame(src, VRID, 200, 10, &[PEER]),
        advert_frame(src, VRID + 1, 200, 10, &[VIP]),
        changed(&|f| f[22] = 254),
        changed(&|f| f[34] = 0x21),
        changed(&|f| f[34] = 0x32),
        changed(&|f| f[37] = 0),
        changed(&|f| f[37] = 2),
        changed(&|f| f[38..40].fill(0)),
        with_record_route(&sound),
        first,
        last,
        vlan_tagged(&sound, TPID_8021Q, 100),
        vlan_tagged(&vlan_tagged(&sound, TPID_8021Q, 100), TPID_8021AD, 200),
        garp[..len].to_vec(),
        ours[..len].to_vec(),
        udp_frame((OUR_MAC, US), src),
    ];
    let mut padded = sound.clone();
    padded.extend([0; 14]);
    bases.push(padded);
    bases.extend(frames_v6());

    let mut all = bases.clone();
    for base in &bases {
        all.extend((ETH_HDR_LEN..base.len()).map(|n| base[..n].to_vec()));
    }
    let mut rng = Rng(0x5eed_f00d_cafe_d00d);
    for _ in 0..75_000 {
        let mut f = bases[rng.below(bases.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(f.len());
            f[at] = rng.next() as u8;
        }
        all.push(f);
    }
    for n in 0..25_000 {
        let mut f: Vec<u8> = (0..ETH_HDR_LEN + rng.below(1500))
            .map(|_| rng.next() as u8)
            .collect();
        // A third of them IPv4 with protocol 112, a third IPv6 with next header 112, to get
        // past the first checks.
        if n % 3 == 0 && f.len() >= ETH_HDR_LEN + 20 {
            f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
            f[14] = 0x45;
            f[23] = 112;
        } else if n % 3 == 1 && f.len() >= ETH_HDR_LEN + 40 {
            f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
            f[14] = 0x60;
            f[20] = 112;
        }
        all.push(f);
    }
    all
}

/// IPv6 adverts for the IPv6 instance: sound ones (and the same list in another order), and one
/// change each: priority 0, another VRID, our own, a list not ours, hop limit 254, VRRPv2,
/// count 0, interval 0, a broken checksum, an extension header before VRRP, a unicast advert
/// checksummed for the group, and one longer than a frame carries.
fn frames_v6() -> Vec<Vec<u8>> {
    let src = (PEER_MAC, IpAddr::from(PEER6));
    let ours = vips(true);
    let sound = advert_frame(src, VRID, 200, 10, &ours);
    let changed = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut f = sound.clone();
        edit(&mut f);
        reseal(&mut f);
        f
    };
    // The VRRP header starts after Ethernet and IPv6.
    const V: usize = ETH_HDR_LEN + 40;
    let mut unresealed = sound.clone();
    unresealed[V + 7] ^= 1;
    let many: Vec<IpAddr> = (0..100u16)
        .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i).into())
        .collect();
    vec![
        sound.clone(),
        advert_frame(src, VRID, 200, 10, &[ours[1], ours[0]]),
        advert_frame(src, VRID, 0, 10, &ours),
        advert_frame(src, VRID + 1, 200, 10, &ours),
        advert_frame((PEER_MAC, US6.into()), VRID, 200, 10, &ours),
        advert_frame(src, VRID, 200, 10, &ours[1..]),
        advert_frame(src, VRID, 200, 10, &many),
        changed(&|f| f[ETH_HDR_LEN + 7] = 254),
        changed(&|f| f[ETH_HDR_LEN + 6] = 0),
        changed(&|f| f[V] = 0x21),
        changed(&|f| f[V + 3] = 0),
        changed(&|f| f[V + 4..V + 6].fill(0)),
        changed(&|f| f[ETH_HDR_LEN + 24..ETH_HDR_LEN + 40].copy_from_slice(&US6.octets())),
        unresealed,
        vlan_tagged(&sound, TPID_8021Q, 100),
    ]
}

/// What the run saw that the frame-by-frame checks cannot judge alone.
#[derive(Default)]
struct Seen {
    accepted: u64,
    accepted_v6: u64,
    rejected_reports: u64,
}

/// One hook's run of a frame: its verdict and the bytes it left, or `None` where the kernel's
/// test harness cannot build the frame for that hook.
type Hook = dyn Fn(&Dataplane, &[u8], &mut [u8]) -> Option<(u32, usize)>;

/// Runs every frame through `run` (one hook), asserting transparency and the map updates.
fn run_all(hook: &str, dp: &mut Dataplane, ring: &mut RingBuf<MapData>, run: &Hook) -> Seen {
    let keys = [FAMILY_V4, FAMILY_V6].map(|f| InstanceKey::new(IFINDEX, VRID, f));
    let adverts = |dp: &Dataplane| keys.map(|k| dp.peer(&k).unwrap().count).iter().sum::<u64>();
    let vip_count = |dp: &Dataplane| dp.vips.get(&VIP.octets(), 0).unwrap().count;
    let mut seen = Seen::default();
    let mut out = vec![0u8; 4096];
    let started = Instant::now();
    for (n, frame) in frames().iter().enumerate() {
        let (peer, arp) = (adverts(dp), vip_count(dp));
        let Some((verdict, size)) = run(dp, frame, &mut out) else {
            continue;
        };
        let what = || format!("{hook}, frame {n}: {frame:02x?}");
        assert!(
            verdict == XDP_PASS || verdict == TC_PASS,
            "verdict {verdict}: {}",
            what()
        );
        assert_eq!(&out[..size], &frame[..], "bytes changed: {}", what());
        let good = accepted(frame);
        let counted = adverts(dp) - peer;
        assert_eq!(counted, u64::from(good), "PEERS: {}", what());
        let arp_seen = vip_count(dp) - arp;
        assert_eq!(
            arp_seen,
            u64::from(arp_for_vip(frame).is_some()),
            "VIPS: {}",
            what()
        );
        seen.accepted += u64::from(good);
        seen.accepted_v6 += u64::from(good && frame[12..14] == ETH_P_IPV6.to_be_bytes());
        while let Some(item) = ring.next() {
            let event = bytemuck::pod_read_unaligned::<RingEvent>(&item);
            match event.kind {
                EVENT_ADVERT if good => {}
                EVENT_ADVERT => seen.rejected_reports += 1,
                EVENT_ARP_CONFLICT => assert!(
                    arp_for_vip(frame).is_some_and(|a| a.sha != OUR_MAC),
                    "ARP conflict event: {}",
                    what()
                ),
                kind => panic!("event {kind}: {}", what()),
            }
        }
    }
    // Rejected adverts are reported for the log at most once a second per instance.
    let bound = (started.elapsed().as_secs() + 1) * keys.len() as u64;
    assert!(
        seen.rejected_reports <= bound,
        "{hook}: {} reports",
        seen.rejected_reports
    );
    seen
}

/// One BPF_PROG_TEST_RUN of `frame`: the program's return value and the bytes it left in `out`.
fn test_run<P>(program: &P, frame: &[u8], out: &mut [u8]) -> (u32, usize)
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = TestRunResult>,
{
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(out),
        ..TestRunOptions::default()
    };
    let r = program
        .test_run(opts)
        .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of {} bytes: {e:?}", frame.len()));
    (r.return_value, r.data_size_out as usize)
}

#[test]
fn kernel_program_is_transparent_and_records_only_what_passes() {
    if !is_root() {
        eprintln!("skipping kernel_program_is_transparent: needs root (BPF_PROG_TEST_RUN)");
        return;
    }
    let mut dp = Dataplane::load().expect("load the kernel program");
    dp.set_instance(InstanceKey::new(IFINDEX, VRID, FAMILY_V4), entry())
        .unwrap();
    dp.set_instance(InstanceKey::new(IFINDEX, VRID, FAMILY_V6), entry_of(true))
        .unwrap();
    dp.set_vip_owner(VIP, Some(OUR_MAC)).unwrap();
    let map = dp.ebpf.take_map(MAP_EVENTS).unwrap();
    let mut ring = RingBuf::try_from(map).unwrap();
    dp.tc().unwrap();

    let xdp = run_all("XDP", &mut dp, &mut ring, &|dp, frame, out| {
        let program: &Xdp = dp.ebpf.program(PROGRAM_NAME).unwrap().try_into().unwrap();
        Some(test_run(program, frame, out))
    });
    let tc = run_all("TC", &mut dp, &mut ring, &|dp, frame, out| {
        // The kernel builds no skb for an IP frame without a whole IP header (EINVAL).
        let header = match [frame[12], frame[13]] {
            t if t == ETH_P_IP.to_be_bytes() => 20,
            t if t == ETH_P_IPV6.to_be_bytes() => 40,
            _ => 0,
        };
        if frame.len() < ETH_HDR_LEN + header {
            return None;
        }
        let program: &SchedClassifier = dp.ebpf.program(PROGRAM_TC).unwrap().try_into().unwrap();
        Some(test_run(program, frame, out))
    });
    // The control: sound adverts among them were recorded, the same number on both hooks.
    assert!(xdp.accepted > 1000, "{}", xdp.accepted);
    assert!(xdp.accepted_v6 > 100, "{}", xdp.accepted_v6);
    assert_eq!(xdp.accepted, tc.accepted);
}

/// The verifier takes the IPv6 path whole: an advert filling a 1500-byte frame (90 addresses)
/// is checked to the end and counted; one address more does not fit the kernel's copy and is
/// rejected, as its decoder-side twin is above.
#[test]
fn kernel_takes_an_ipv6_advert_as_long_as_a_frame() {
    if !is_root() {
        eprintln!("skipping kernel_takes_an_ipv6_advert_as_long_as_a_frame: needs root");
        return;
    }
    let mut dp = Dataplane::load().expect("load the kernel program");
    let key = InstanceKey::new(IFINDEX, VRID, FAMILY_V6);
    let full: Vec<IpAddr> = (0..91u16)
        .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 2, i).into())
        .collect();
    let mut out = vec![0u8; 4096];
    for (count, counted) in [(90, 1), (91, 0)] {
        let ours = AddrList::of(full[..count].iter().copied());
        let e = InstanceEntry {
            addr_count: ours.count,
            addr_digest: ours.digest,
            ..entry_of(true)
        };
        dp.set_instance(key, e).unwrap();
        let frame = advert_frame(
            (PEER_MAC, IpAddr::from(PEER6)),
            VRID,
            200,
            10,
            &full[..count],
        );
        assert_eq!(frame.len(), ETH_HDR_LEN + 48 + 16 * count);
        let before = dp.peer(&key).unwrap().count;
        let program: &Xdp = dp.ebpf.program(PROGRAM_NAME).unwrap().try_into().unwrap();
        test_run(program, &frame, &mut out);
        assert_eq!(
            dp.peer(&key).unwrap().count - before,
            counted,
            "{count} addresses"
        );
    }
}

/// The backup's Master_Down timer in the kernel: each advert of the master the entry names
/// restarts it (the record says until when), others do not, and when the master falls silent it
/// fires once and tells the agent on the ring.
#[test]
fn kernel_master_down_timer_follows_the_named_master() {
    if !is_root() {
        eprintln!("skipping kernel_master_down_timer: needs root (BPF_PROG_TEST_RUN)");
        return;
    }
    let mut dp = Dataplane::load().expect("load the kernel program");
    let key = InstanceKey::new(IFINDEX, VRID, FAMILY_V4);
    let down_ns = 50_000_000;
    let watching = InstanceEntry {
        watch_src: addr_bytes(PEER.into()),
        watch_priority: 200,
        watch_interval_cs: 10,
        watch_down_ns: down_ns,
        ..entry()
    };
    dp.set_instance(key, watching).unwrap();
    let map = dp.ebpf.take_map(MAP_EVENTS).unwrap();
    let mut ring = RingBuf::try_from(map).unwrap();
    let mut out = vec![0u8; 4096];
    let mut run = |dp: &Dataplane, frame: &[u8]| {
        let program: &Xdp = dp.ebpf.program(PROGRAM_NAME).unwrap().try_into().unwrap();
        test_run(program, frame, &mut out);
        dp.peer(&key).unwrap()
    };
    let fired = |ring: &mut RingBuf<MapData>| {
        let mut watch = 0;
        while let Some(item) = ring.next() {
            let event = bytemuck::pod_read_unaligned::<RingEvent>(&item);
            if event.kind == EVENT_WATCH {
                assert_eq!((event.ifindex, event.packet[0]), (IFINDEX, VRID));
                watch += 1;
            }
        }
        watch
    };
    let master = advert_frame((PEER_MAC, PEER), VRID, 200, 10, &[VIP]);
    let other = advert_frame((PEER_MAC, PEER), VRID, 150, 10, &[VIP]);

    let record = run(&dp, &master);
    assert_eq!(record.watch_ns, record.t_ns + down_ns, "started");
    let started = record.watch_ns;
    std::thread::sleep(std::time::Duration::from_millis(10));
    let record = run(&dp, &other);
    assert_eq!(record.watch_ns, started, "another priority: not restarted");
    let record = run(&dp, &master);
    assert!(record.watch_ns > started, "restarted");
    assert_eq!(fired(&mut ring), 0, "no word while the master speaks");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(fired(&mut ring), 1, "one word when it fell silent");

    // A master (or an entry naming no one) starts nothing.
    let master_entry = InstanceEntry {
        role: Role::Master as u8,
        ..watching
    };
    dp.set_instance(key, master_entry).unwrap();
    let before = dp.peer(&key).unwrap().watch_ns;
    assert_eq!(run(&dp, &master).watch_ns, before);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(fired(&mut ring), 0);
}

/// The reflector's rate limit (`vrrp_common::liveness::REFLECT_EVERY_NS`): a burst of probes at
/// a master gets its first `REFLECT_BURST` turned around (XDP_TX), the rest dropped and counted.
#[test]
fn reflector_turns_around_a_bounded_burst_of_probes() {
    if !is_root() {
        eprintln!(
            "skipping reflector_turns_around_a_bounded_burst: needs root (BPF_PROG_TEST_RUN)"
        );
        return;
    }
    let mut dp = Dataplane::load().expect("load the kernel program");
    let key = InstanceKey::new(IFINDEX, VRID, FAMILY_V4);
    let master = InstanceEntry {
        role: Role::Master as u8,
        liveness: 1,
        ..entry()
    };
    dp.set_instance(key, master).unwrap();
    let probe = probe_frame((OUR_MAC, US), (PEER_MAC, PEER), VRID, 254);
    dp.tc().unwrap();
    let tc: &SchedClassifier = dp.ebpf.program(PROGRAM_TC).unwrap().try_into().unwrap();
    let mut out = vec![0u8; 4096];
    eprintln!("TC verdict {}", test_run(tc, &probe, &mut out).0);
    let program: &Xdp = dp.ebpf.program(PROGRAM_NAME).unwrap().try_into().unwrap();
    let started = Instant::now();
    let verdicts: Vec<u32> = (0..1000)
        .map(|_| test_run(program, &probe, &mut out).0)
        .collect();
    let steady = started.elapsed().as_nanos() as u64 / REFLECT_EVERY_NS;
    let reflected = verdicts.iter().filter(|&&v| v == XDP_TX).count() as u64;
    assert!(
        verdicts[..REFLECT_BURST as usize]
            .iter()
            .all(|&v| v == XDP_TX)
            && reflected <= REFLECT_BURST + steady + 1,
        "{reflected} reflected in {steady} intervals: {verdicts:?}"
    );
    assert!(verdicts.iter().all(|&v| v == XDP_TX || v == XDP_DROP));
    let best = dp.reflector(&key).expect("the reflector's record");
    assert_eq!(best.limited, 1000 - reflected);
    assert_eq!(best.src, PEER.octets(), "first in line");
}
