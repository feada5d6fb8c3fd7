//! keepalived 2.2.7 over IPv6 (tests/vectors/keepalived-2.2.7-ipv6*.pcap, captured from a real
//! pair; how, in the notes beside them): every advert decodes to what tcpdump printed and
//! re-encodes byte for byte but the flow label (the kernel's hash, random per boot) and the
//! unicast hop limit (keepalived leaves the kernel's 64; we send 255, RFC 9568 §5.1.2.3); every
//! Neighbor Advertisement is what our encoder makes.

use core::net::{IpAddr, Ipv6Addr};
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use super::frames_of;
use crate::wire::{
    header_at, EthHdr, Ipv6Hdr, ETH_HDR_LEN, ETH_P_ARP, ETH_P_IPV6, IPPROTO_VRRP, MAX_ADVERT_LEN,
    NA_FRAME_LEN,
};
use crate::{
    decode_ipv6, encode, encode_unsolicited_na, AdvertSpec, Auth, ChecksumForm, DecodeError,
    Version,
};

const VECTORS: [&str; 2] = [
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/keepalived-2.2.7-ipv6"
    ),
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/keepalived-2.2.7-ipv6-unicast"
    ),
];

/// The first line tcpdump printed for each frame.
fn printed(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(std::format!("{path}.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .map(str::to_string)
        .collect()
}

/// The value after `key ` in a tcpdump line, up to the next comma or parenthesis.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let (_, rest) = line
        .split_once(&std::format!("{key} "))
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"));
    rest.split([',', ')']).next().unwrap()
}

/// The advert's source and destination as printed: "SRC > DST: VRRPv3".
fn endpoints(line: &str) -> (IpAddr, IpAddr) {
    let (head, _) = line.split_once(": VRRPv3").unwrap();
    let (src, dst) = head.rsplit_once(") ").unwrap().1.split_once(" > ").unwrap();
    (src.parse().unwrap(), dst.parse().unwrap())
}

#[test]
fn every_ipv6_vector_decodes_as_printed_and_reencodes() {
    let (mut adverts, mut nas, mut routers) = (0, 0, 0);
    for path in VECTORS {
        let frames = frames_of(path);
        let printed = printed(path);
        assert_eq!(frames.len(), printed.len(), "{path}");
        for (i, (frame, line)) in frames.iter().zip(&printed).enumerate() {
            let what = || std::format!("{path} frame {i}: {line}");
            let eth: &EthHdr = header_at(frame, 0).unwrap();
            if eth.ethertype() == ETH_P_ARP {
                continue; // the IPv4 excluded VIP's GARP, covered by the IPv4 vectors
            }
            assert_eq!(eth.ethertype(), ETH_P_IPV6, "{}", what());
            let packet = &frame[ETH_HDR_LEN..];
            let ip: &Ipv6Hdr = header_at(packet, 0).unwrap();
            if ip.next_hdr == IPPROTO_VRRP {
                check_advert(packet, line, &what);
                adverts += 1;
            } else {
                let target: Ipv6Addr = field(line, "tgt is").parse().unwrap();
                let router = line.contains("Flags [router, override]");
                let mut na = [0; NA_FRAME_LEN];
                encode_unsolicited_na(eth.src, target, router, &mut na).unwrap();
                assert_eq!(&frame[..], &na[..], "{}", what());
                nas += 1;
                routers += usize::from(router);
            }
        }
    }
    assert_eq!((adverts, nas, routers), (29, 60, 16));
}

fn check_advert(packet: &[u8], line: &str, what: &dyn Fn() -> String) {
    let advert = decode_ipv6(packet).unwrap_or_else(|e| panic!("{e}: {}", what()));
    let (src, dst) = endpoints(line);
    let addrs: Vec<IpAddr> = advert.addrs().collect();
    // The list ends the line: "addrs: A" or "addrs(N): A,B,C".
    let listed = line.rsplit_once(": ").unwrap().1;
    let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    assert_eq!(shown.join(","), listed, "{}", what());
    assert_eq!(
        (advert.src, advert.dst, advert.version, advert.vrid),
        (src, dst, Version::V3, field(line, "vrid").parse().unwrap()),
        "{}",
        what()
    );
    assert_eq!(advert.priority, field(line, "prio").parse::<u8>().unwrap());
    let hlim: u8 = field(line, "hlim").parse().unwrap();
    assert_eq!((advert.ttl, advert.tos), (hlim, 0xc0), "{}", what());
    assert_eq!(advert.checksum_form, Some(ChecksumForm::WithPseudoHeader));
    // Multicast at 255; unicast at keepalived's 64, which the RFC's 255 rule would refuse.
    assert_eq!(hlim == 255, dst.is_multicast(), "{}", what());

    let spec = AdvertSpec {
        version: Version::V3,
        vrid: advert.vrid,
        priority: advert.priority,
        interval_cs: advert.interval_cs,
        auth: Auth::None,
        src,
        dst,
        ip_id: 0,
        checksum_form: ChecksumForm::WithPseudoHeader,
        addrs: &addrs,
    };
    let mut ours = [0; MAX_ADVERT_LEN];
    let len = encode(&spec, &mut ours).unwrap();
    let mut theirs = packet.to_vec();
    // Flow label (low 20 bits of the first word) and hop limit: see the module comment.
    theirs[1] &= 0xf0;
    theirs[2..4].fill(0);
    theirs[7] = 255;
    assert_eq!(&ours[..len], &theirs[..], "{}", what());
}

/// The receive checks over IPv6, each on a keepalived advert with one thing broken (the
/// checksum repaired where the change is not to it).
#[test]
fn ipv6_receive_checks() {
    let frames = frames_of(VECTORS[0]);
    let good = frames[0][ETH_HDR_LEN..].to_vec();
    let resealed = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut p = good.clone();
        edit(&mut p);
        reseal(&mut p);
        p
    };
    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        (
            "short of a header",
            good[..39].to_vec(),
            DecodeError::Truncated { need: 40, have: 39 },
        ),
        (
            "payload cut",
            good[..good.len() - 1].to_vec(),
            DecodeError::Truncated {
                need: good.len(),
                have: good.len() - 1,
            },
        ),
        (
            "IPv4 header",
            resealed(&|p| p[0] = 0x45),
            DecodeError::NotIpv6(4),
        ),
        (
            "hop-by-hop header first",
            resealed(&|p| p[6] = 0),
            DecodeError::NextHeader(0),
        ),
        (
            "hop limit 254",
            resealed(&|p| p[7] = 254),
            DecodeError::HopLimit(254),
        ),
        (
            "VRRPv2",
            resealed(&|p| p[40] = 0x21),
            DecodeError::V2OverIpv6,
        ),
        (
            "VRRPv4",
            resealed(&|p| p[40] = 0x41),
            DecodeError::Version(4),
        ),
        ("type 2", resealed(&|p| p[40] = 0x32), DecodeError::Type(2)),
        (
            "count 0",
            resealed(&|p| p[43] = 0),
            DecodeError::NoAddresses,
        ),
        (
            "count 2 for 3 addresses",
            resealed(&|p| p[43] = 2),
            DecodeError::Length {
                count: 2,
                len: 56,
                expected: 40,
            },
        ),
        (
            "interval 0",
            resealed(&|p| p[44..46].fill(0)),
            DecodeError::ZeroInterval,
        ),
    ];
    for (name, packet, want) in cases {
        assert_eq!(decode_ipv6(&packet), Err(want), "{name}");
    }
    let mut flipped = good.clone();
    flipped[47] ^= 1;
    assert!(
        matches!(decode_ipv6(&flipped), Err(DecodeError::ChecksumV6 { .. })),
        "a flipped checksum byte"
    );
    // The same advert to a unicast peer, checksummed for the group as FRR's old code did.
    let mut unicast = good.clone();
    unicast[24..40].copy_from_slice(&Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 2).octets());
    assert!(matches!(
        decode_ipv6(&unicast),
        Err(DecodeError::ChecksumV6 { .. })
    ));
    // The flow label is the kernel's business, and a reordered list is still the list.
    let labelled = resealed(&|p| p[1..4].copy_from_slice(&[0x0f, 0xff, 0xff]));
    assert!(decode_ipv6(&labelled).is_ok());
    assert_eq!(decode_ipv6(&good).unwrap().ip_id, 0);
}

/// The VRRP checksum over the IPv6 pseudo-header, after a test changed the packet.
fn reseal(p: &mut [u8]) {
    p[46..48].fill(0);
    let len = (p.len() - 40) as u32;
    let sum = crate::checksum::pseudo_header_v6(
        p[8..24].try_into().unwrap(),
        p[24..40].try_into().unwrap(),
        len,
        IPPROTO_VRRP,
    )
    .update(&p[40..])
    .finish();
    p[46..48].copy_from_slice(&sum.to_be_bytes());
}

/// The kernel program's checks agree with the full decoder on IPv6 too: the fields decoder
/// plus `checksum_v6_holds` is `decode_ipv6`.
#[test]
fn kernel_ipv6_checks_and_full_decode_agree() {
    use crate::advert::checksum_v6_holds;
    use crate::checksum::SUM_STEP;
    let frames = frames_of(VECTORS[0]);
    let good = frames[0][ETH_HDR_LEN..].to_vec();
    for cut in 0..good.len() + 1 {
        for flip in [None, Some(7), Some(41), Some(47), Some(60)] {
            let mut p = good[..cut].to_vec();
            if let Some(at) = flip.filter(|&at| at < p.len()) {
                p[at] ^= 0x10;
            }
            let mut buf = [0u8; 2048];
            buf[..p.len()].copy_from_slice(&p);
            let kernel = crate::decode_ipv6_fields(&p).is_ok() && checksum_v6_holds(&buf, p.len());
            assert_eq!(kernel, decode_ipv6(&p).is_ok(), "cut {cut} flip {flip:?}");
            assert!(buf.len() >= p.len() + SUM_STEP);
        }
    }
}
