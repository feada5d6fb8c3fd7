//! Structural receive checks: each bad packet is a good keepalived packet with one thing broken
//! (checksums repaired so that only the intended check can fire).

use std::vec::Vec;

use super::{fix_ip_checksum, fix_vrrp_checksum, good_v2, good_v3};
use crate::advert::checksums_hold;
use crate::wire::IPV4_HDR_LEN;
use crate::{decode_ipv4, decode_ipv4_fields, ChecksumForm, DecodeError};

type Mutation = fn(&mut Vec<u8>);

fn case(name: &str, good: fn() -> Vec<u8>, mutate: Mutation, want: DecodeError) {
    let mut packet = good();
    mutate(&mut packet);
    assert_eq!(decode_ipv4(&packet), Err(want), "{name}");
}

/// Sets the IPv4 total length to `len` and truncates the buffer to it.
fn set_total_len(packet: &mut Vec<u8>, len: u16) {
    packet[2..4].copy_from_slice(&len.to_be_bytes());
    packet.truncate(len.into());
    fix_ip_checksum(packet);
}

#[test]
fn truncated_below_ip_header() {
    case(
        "19 bytes",
        good_v2,
        |p| p.truncate(19),
        DecodeError::Truncated { need: 20, have: 19 },
    );
    case(
        "empty",
        good_v2,
        |p| p.clear(),
        DecodeError::Truncated { need: 20, have: 0 },
    );
}

#[test]
fn truncated_below_ip_total_length() {
    case(
        "last 4 bytes missing",
        good_v2,
        |p| p.truncate(36),
        DecodeError::Truncated { need: 40, have: 36 },
    );
}

#[test]
fn truncated_ip_total_length_below_header() {
    case(
        "total length 16",
        good_v2,
        |p| {
            p[2..4].copy_from_slice(&16u16.to_be_bytes());
            fix_ip_checksum(p);
        },
        DecodeError::Truncated { need: 20, have: 16 },
    );
}

#[test]
fn truncated_vrrp_header() {
    case(
        "4 VRRP bytes",
        good_v2,
        |p| set_total_len(p, 24),
        DecodeError::Truncated { need: 28, have: 24 },
    );
}

#[test]
fn not_ipv4() {
    case(
        "version 6",
        good_v2,
        |p| {
            p[0] = 0x65;
            fix_ip_checksum(p);
        },
        DecodeError::NotIpv4(6),
    );
}

#[test]
fn ip_header_length_below_20() {
    case(
        "IHL 4",
        good_v2,
        |p| {
            p[0] = 0x44;
            fix_ip_checksum(p);
        },
        DecodeError::IpHeaderLength(16),
    );
}

#[test]
fn ip_header_checksum() {
    case(
        "id changed",
        good_v2,
        |p| p[5] ^= 1,
        DecodeError::IpChecksum,
    );
}

#[test]
fn fragment() {
    case(
        "more fragments",
        good_v2,
        |p| {
            p[6] = 0x20;
            fix_ip_checksum(p);
        },
        DecodeError::Fragment,
    );
    case(
        "offset 8",
        good_v3,
        |p| {
            p[7] = 1;
            fix_ip_checksum(p);
        },
        DecodeError::Fragment,
    );
}

#[test]
fn not_vrrp() {
    case(
        "UDP",
        good_v2,
        |p| {
            p[9] = 17;
            fix_ip_checksum(p);
        },
        DecodeError::NotVrrp(17),
    );
}

#[test]
fn ttl_not_255() {
    case(
        "TTL 64",
        good_v2,
        |p| {
            p[8] = 64;
            fix_ip_checksum(p);
        },
        DecodeError::Ttl(64),
    );
    case(
        "TTL 254 (one hop)",
        good_v3,
        |p| {
            p[8] = 254;
            fix_ip_checksum(p);
        },
        DecodeError::Ttl(254),
    );
}

#[test]
fn bad_version() {
    for (vers_type, version) in [(0x11, 1), (0x41, 4), (0x01, 0)] {
        let mut p = good_v3();
        p[IPV4_HDR_LEN] = vers_type;
        fix_vrrp_checksum(&mut p);
        assert_eq!(decode_ipv4(&p), Err(DecodeError::Version(version)));
    }
}

#[test]
fn bad_type() {
    case(
        "type 2",
        good_v3,
        |p| {
            p[IPV4_HDR_LEN] = 0x32;
            fix_vrrp_checksum(p);
        },
        DecodeError::Type(2),
    );
}

#[test]
fn zero_address_count() {
    case(
        "count 0, v2",
        good_v2,
        |p| {
            p[IPV4_HDR_LEN + 3] = 0;
            fix_vrrp_checksum(p);
        },
        DecodeError::NoAddresses,
    );
}

#[test]
fn count_larger_than_packet() {
    case(
        "count 2, one address sent",
        good_v3,
        |p| {
            p[IPV4_HDR_LEN + 3] = 2;
            fix_vrrp_checksum(p);
        },
        DecodeError::Length {
            count: 2,
            len: 12,
            expected: 16,
        },
    );
}

#[test]
fn v2_without_auth_data() {
    case(
        "v2, 8 auth bytes missing",
        good_v2,
        |p| {
            set_total_len(p, 32);
            fix_vrrp_checksum(p);
        },
        DecodeError::Length {
            count: 1,
            len: 12,
            expected: 20,
        },
    );
}

#[test]
fn v3_with_trailing_bytes_inside_ip_length() {
    case(
        "v3, 4 extra bytes",
        good_v3,
        |p| {
            p.extend_from_slice(&[0; 4]);
            set_total_len(p, 36);
            fix_vrrp_checksum(p);
        },
        DecodeError::Length {
            count: 1,
            len: 16,
            expected: 12,
        },
    );
}

#[test]
fn zero_interval() {
    case(
        "v3 0 cs",
        good_v3,
        |p| {
            p[IPV4_HDR_LEN + 5] = 0;
            fix_vrrp_checksum(p);
        },
        DecodeError::ZeroInterval,
    );
    case(
        "v2 0 s",
        good_v2,
        |p| {
            p[IPV4_HDR_LEN + 5] = 0;
            fix_vrrp_checksum(p);
        },
        DecodeError::ZeroInterval,
    );
}

#[test]
fn v2_checksum() {
    case(
        "v2 checksum off by one",
        good_v2,
        |p| p[IPV4_HDR_LEN + 7] ^= 1,
        DecodeError::Checksum {
            got: 0x7b7c,
            expected: 0x7b7d,
        },
    );
}

#[test]
fn v2_with_pseudo_header_checksum_is_rejected() {
    // v2 has one form; 0xd8e4 is this message's checksum with the IPv4 pseudo-header.
    case(
        "v2 pseudo-header checksum",
        good_v2,
        |p| p[IPV4_HDR_LEN + 6..IPV4_HDR_LEN + 8].copy_from_slice(&[0xd8, 0xe4]),
        DecodeError::Checksum {
            got: 0xd8e4,
            expected: 0x7b7d,
        },
    );
}

#[test]
fn v3_checksum_matching_neither_form() {
    case(
        "v3 checksum changed",
        good_v3,
        |p| p[IPV4_HDR_LEN + 6] = 0,
        DecodeError::ChecksumV3 {
            got: 0x00fd,
            with_pseudo_header: 0xd3fd,
            message_only: 0x768e,
        },
    );
}

#[test]
fn v3_checksum_accepts_both_forms() {
    let p = good_v3();
    assert_eq!(
        decode_ipv4(&p).unwrap().checksum_form,
        Some(ChecksumForm::WithPseudoHeader)
    );
    let mut m = p.clone();
    // RFC 9568 form, computed independently of the decoder (see the ChecksumV3 case above).
    m[IPV4_HDR_LEN + 6..IPV4_HDR_LEN + 8].copy_from_slice(&0x768eu16.to_be_bytes());
    let advert = decode_ipv4(&m).unwrap();
    assert_eq!(advert.checksum_form, Some(ChecksumForm::MessageOnly));
    let mut same = decode_ipv4(&p).unwrap();
    same.checksum_form = Some(ChecksumForm::MessageOnly);
    assert_eq!(advert, same);
}

/// Rule for both receive paths: no VRRP sender adds IP options, and the kernel rewrites some
/// (Record Route) before a raw socket sees the header.
#[test]
fn ip_options() {
    case(
        "Router Alert (RFC 2113), IHL 6",
        good_v3,
        |p| {
            p.splice(IPV4_HDR_LEN..IPV4_HDR_LEN, [0x94, 0x04, 0x00, 0x00]);
            p[0] = 0x46;
            p[2..4].copy_from_slice(&36u16.to_be_bytes());
            fix_ip_checksum(p);
        },
        DecodeError::IpOptions(24),
    );
}

#[test]
fn ethernet_padding_is_skipped() {
    let mut p = good_v3();
    p.extend_from_slice(&[0; 14]);
    let advert = decode_ipv4(&p).unwrap();
    assert_eq!(
        (advert.vrid, advert.priority, advert.interval_cs),
        (51, 150, 10)
    );
    assert_eq!(advert.checksum_form, Some(ChecksumForm::WithPseudoHeader));
    assert_eq!(
        advert.addrs().collect::<Vec<_>>(),
        [core::net::Ipv4Addr::new(192, 0, 2, 50)]
    );
}

#[test]
fn every_prefix_of_a_good_packet_is_an_error_not_a_panic() {
    for good in [good_v2(), good_v3()] {
        for len in 0..good.len() {
            assert!(decode_ipv4(&good[..len]).is_err(), "prefix {len}");
        }
    }
}

#[test]
fn messages_are_precise() {
    use std::string::ToString;
    assert_eq!(
        DecodeError::Ttl(64).to_string(),
        "TTL 64, must be 255 (advert crossed a router?)"
    );
    assert_eq!(
        DecodeError::ChecksumV3 {
            got: 0xfd,
            with_pseudo_header: 0xd3fd,
            message_only: 0x768e
        }
        .to_string(),
        "bad VRRPv3 checksum 0x00fd, expected 0xd3fd (with IPv4 pseudo-header) or 0x768e (message only)"
    );
    assert_eq!(
        DecodeError::VersionMismatch {
            got: crate::Version::V2,
            want: crate::Version::V3
        }
        .to_string(),
        "VRRPv2 advert, we run VRRPv3"
    );
}

/// The XDP program's decode skips exactly the checksums; every other check still applies.
#[test]
fn fields_decode_skips_only_the_checksums() {
    let mut bad_sums = good_v3();
    bad_sums[10] ^= 0xff; // IPv4 header checksum
    bad_sums[IPV4_HDR_LEN + 6] ^= 0xff; // VRRP checksum
    let fields = decode_ipv4_fields(&bad_sums).unwrap();
    assert_eq!(fields.checksum_form, None);
    assert_eq!(fields.priority, decode_ipv4(&good_v3()).unwrap().priority);
    assert_eq!(decode_ipv4(&bad_sums), Err(DecodeError::IpChecksum));

    let mut ttl = good_v3();
    ttl[8] = 64;
    assert_eq!(decode_ipv4_fields(&ttl), Err(DecodeError::Ttl(64)));
}

/// One verdict: the kernel program's checks (the fields, then [`checksums_hold`] over its
/// zero-padded buffer) accept
/// exactly what [`decode_ipv4`] accepts, for every packet of keepalived's capture and every
/// single-byte change of its adverts (checksums left as they are, so most changes must be caught
/// by a checksum alone).
#[test]
fn kernel_checks_and_full_decode_agree() {
    let mut cases = 0;
    for packet in super::ipv4_packets() {
        for at in 0..=packet.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut p = packet.clone();
                if let Some(b) = p.get_mut(at) {
                    *b ^= flip;
                }
                let mut buf = [0u8; 2048];
                buf[..p.len()].copy_from_slice(&p);
                let full = decode_ipv4(&p).is_ok();
                let kernel = decode_ipv4_fields(&p)
                    .map(|a| a.version)
                    .is_ok_and(|v| checksums_hold(&buf, p.len(), v));
                assert_eq!(kernel, full, "byte {at} ^ {flip:#x}");
                cases += 1;
            }
        }
    }
    assert!(cases > 1000, "{cases}");
}
