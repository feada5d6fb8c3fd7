//! The advert decoder on any IPv4 packet: no panic, and the kernel program's decider (the field
//! checks, then the checksums over a zero-padded copy of what it loads) gives the agent's verdict;
//! the per-instance checks and the two address-list comparisons (exact, and the kernel's digest)
//! agree.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use vrrp_common::{
    advert::{checksums_hold, decode_ipv4_fields},
    checksum::SUM_STEP,
    maps::MAX_PACKET_V4,
    AddrList, Auth, Expect, Version,
};

const OURS: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 50), Ipv4Addr::new(198, 51, 100, 100)];

fuzz_target!(|packet: &[u8]| {
    let full = vrrp_common::decode_ipv4(packet);
    // What the kernel program loads: the datagram as far as the frame and its buffer go.
    let total = packet
        .get(2..4)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let len = total.min(packet.len()).min(MAX_PACKET_V4);
    if len < 20 {
        assert!(full.is_err());
        return;
    }
    let mut buf = [0u8; MAX_PACKET_V4 + SUM_STEP];
    buf[..len].copy_from_slice(&packet[..len]);
    let kernel = decode_ipv4_fields(&packet[..len]).is_ok_and(|a| checksums_hold(&buf, len, a.version));
    assert_eq!(kernel, full.is_ok(), "kernel and agent disagree");

    let Ok(advert) = full else { return };
    for version in [Version::V2, Version::V3] {
        let expect = Expect {
            vrid: advert.vrid,
            version,
            interval_cs: 100,
            auth: Auth::password(b"s3cr3t"),
            local_addr: Ipv4Addr::new(192, 0, 2, 2),
        };
        let _ = advert.check(&expect);
    }
    for ours in [&OURS[..1], &OURS[..]] {
        let exact = advert.check_addrs(ours).is_ok();
        let digest = AddrList::of(advert.addrs()) == AddrList::of(ours.iter().copied());
        assert_eq!(exact, digest, "address list verdicts differ");
    }
});
