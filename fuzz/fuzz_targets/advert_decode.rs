//! The advert decoders on any IPv4 or IPv6 packet: no panic, and the kernel program's decider
//! (the field checks, then the checksums over a zero-padded copy of what it loads) gives the
//! agent's verdict; the per-instance checks and the two address-list comparisons (exact, and
//! the kernel's digest) agree.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use vrrp_common::{
    advert::{checksum_v6_holds, checksums_hold, decode_ipv4_fields, decode_ipv6_fields},
    checksum::SUM_STEP,
    maps::{MAX_PACKET, MAX_PACKET_V4, MAX_PACKET_V6},
    AddrList, Auth, Expect, Version,
};

fuzz_target!(|packet: &[u8]| {
    let v6 = vrrp_common::advert::ip_version(packet) == Some(6);
    let full = vrrp_common::decode(packet);
    // What the kernel program loads: the datagram as far as the frame and its buffer go.
    let (total, max) = match v6 {
        true => (
            packet
                .get(4..6)
                .map(|b| 40 + usize::from(u16::from_be_bytes([b[0], b[1]]))),
            MAX_PACKET_V6,
        ),
        false => (
            packet
                .get(2..4)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
            MAX_PACKET_V4,
        ),
    };
    let len = total.unwrap_or(0).min(packet.len()).min(max);
    if len < 20 {
        assert!(full.is_err());
        return;
    }
    let mut buf = [0u8; MAX_PACKET + SUM_STEP];
    buf[..len].copy_from_slice(&packet[..len]);
    let kernel = match v6 {
        true => decode_ipv6_fields(&packet[..len]).is_ok() && checksum_v6_holds(&buf, len),
        false => {
            decode_ipv4_fields(&packet[..len]).is_ok_and(|a| checksums_hold(&buf, len, a.version))
        }
    };
    assert_eq!(kernel, full.is_ok(), "kernel and agent disagree");

    let Ok(advert) = full else { return };
    let local: IpAddr = if v6 {
        "fe80::2".parse().unwrap()
    } else {
        "192.0.2.2".parse().unwrap()
    };
    for version in [Version::V2, Version::V3] {
        let expect = Expect {
            vrid: advert.vrid,
            version,
            interval_cs: 100,
            auth: Auth::password(b"s3cr3t"),
            local_addr: local,
        };
        let _ = advert.check(&expect);
    }
    let ours: [IpAddr; 2] = match v6 {
        true => ["fe80::1".parse().unwrap(), "2001:db8::50".parse().unwrap()],
        false => [
            "192.0.2.50".parse().unwrap(),
            "198.51.100.100".parse().unwrap(),
        ],
    };
    for ours in [&ours[..1], &ours[..]] {
        let exact = advert.check_addrs(ours).is_ok();
        let digest = AddrList::of(advert.addrs()) == AddrList::of(ours.iter().copied());
        assert_eq!(exact, digest, "address list verdicts differ");
    }
});
