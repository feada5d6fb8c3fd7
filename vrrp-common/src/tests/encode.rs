//! Send side: checksum forms, address lists, and every way a spec can be refused.

use core::net::{IpAddr, Ipv4Addr};
use std::vec::Vec;

use super::{good_v2, good_v3};
use crate::wire::{IPV4_HDR_LEN, MAX_ADVERT_LEN, MAX_ADVERT_LEN_V4, VRRP_MULTICAST_V4};
use crate::{
    decode_ipv4, encode, encode_garp, AdvertSpec, Auth, ChecksumForm, EncodeError, Version,
};

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50));

/// The spec keepalived's first v3 advert in the capture was sent from.
fn spec_v3(addrs: &[IpAddr]) -> AdvertSpec<'_> {
    AdvertSpec {
        version: Version::V3,
        vrid: 51,
        priority: 150,
        interval_cs: 10,
        auth: Auth::None,
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst: IpAddr::V4(VRRP_MULTICAST_V4),
        ip_id: 1,
        checksum_form: ChecksumForm::WithPseudoHeader,
        addrs,
    }
}

/// The spec keepalived's first v2 advert in the capture was sent from.
fn spec_v2(addrs: &[IpAddr]) -> AdvertSpec<'_> {
    AdvertSpec {
        version: Version::V2,
        interval_cs: 100,
        auth: Auth::password(b"s3cr3t"),
        checksum_form: ChecksumForm::MessageOnly,
        ..spec_v3(addrs)
    }
}

fn packet(spec: &AdvertSpec) -> Result<Vec<u8>, EncodeError> {
    let mut buf = [0; MAX_ADVERT_LEN];
    encode(spec, &mut buf).map(|len| buf[..len].to_vec())
}

#[test]
fn v3_both_checksum_forms_on_send() {
    let keepalived = good_v3();
    assert_eq!(packet(&spec_v3(&[VIP])).unwrap(), keepalived);

    let rfc = packet(&AdvertSpec {
        checksum_form: ChecksumForm::MessageOnly,
        ..spec_v3(&[VIP])
    })
    .unwrap();
    let mut expected = keepalived.clone();
    expected[IPV4_HDR_LEN + 6..IPV4_HDR_LEN + 8].copy_from_slice(&[0x76, 0x8e]);
    assert_eq!(rfc, expected);
    assert_eq!(
        decode_ipv4(&rfc).unwrap().checksum_form,
        Some(ChecksumForm::MessageOnly)
    );
}

#[test]
fn v2_ignores_checksum_form() {
    let spec = AdvertSpec {
        checksum_form: ChecksumForm::WithPseudoHeader,
        ..spec_v2(&[VIP])
    };
    assert_eq!(packet(&spec).unwrap(), good_v2());
}

#[test]
fn v2_without_auth_sends_type_0_and_zero_data() {
    let p = packet(&AdvertSpec {
        auth: Auth::None,
        ..spec_v2(&[VIP])
    })
    .unwrap();
    assert_eq!(p.len(), 40);
    assert_eq!(p[IPV4_HDR_LEN + 4..IPV4_HDR_LEN + 6], [0, 1]);
    assert_eq!(p[32..], [0; 8]);
    assert_eq!(decode_ipv4(&p).unwrap().auth, Auth::None);
}

#[test]
fn many_addresses_round_trip() {
    let addrs: Vec<IpAddr> = (0..=254)
        .map(|i| Ipv4Addr::new(10, 0, 1, i).into())
        .collect();
    for spec in [spec_v2(&addrs), spec_v3(&addrs), spec_v3(&addrs[..3])] {
        let p = packet(&spec).unwrap();
        let advert = decode_ipv4(&p).unwrap();
        assert_eq!(advert.addrs().len(), spec.addrs.len());
        assert!(advert.addrs().eq(spec.addrs.iter().copied()));
        assert_eq!(usize::from(p[IPV4_HDR_LEN + 3]), spec.addrs.len());
    }
    assert_eq!(packet(&spec_v2(&addrs)).unwrap().len(), MAX_ADVERT_LEN_V4);
}

#[test]
fn v3_interval_uses_12_bits() {
    let p = packet(&AdvertSpec {
        interval_cs: 4095,
        ..spec_v3(&[VIP])
    })
    .unwrap();
    assert_eq!(p[IPV4_HDR_LEN + 4..IPV4_HDR_LEN + 6], [0x0f, 0xff]);
    assert_eq!(decode_ipv4(&p).unwrap().interval_cs, 4095);
}

#[test]
fn refused_specs() {
    let addrs = [VIP; 256];
    let cases: [(&str, AdvertSpec, EncodeError); 10] = [
        ("no address", spec_v3(&[]), EncodeError::NoAddresses),
        (
            "256 addresses",
            spec_v3(&addrs),
            EncodeError::TooManyAddresses(256),
        ),
        (
            "v2 1.5 s",
            AdvertSpec {
                interval_cs: 150,
                ..spec_v2(&[VIP])
            },
            EncodeError::Interval {
                version: Version::V2,
                interval_cs: 150,
            },
        ),
        (
            "v2 0 s",
            AdvertSpec {
                interval_cs: 0,
                ..spec_v2(&[VIP])
            },
            EncodeError::Interval {
                version: Version::V2,
                interval_cs: 0,
            },
        ),
        (
            "v2 256 s",
            AdvertSpec {
                interval_cs: 25600,
                ..spec_v2(&[VIP])
            },
            EncodeError::Interval {
                version: Version::V2,
                interval_cs: 25600,
            },
        ),
        (
            "v3 4096 cs",
            AdvertSpec {
                interval_cs: 4096,
                ..spec_v3(&[VIP])
            },
            EncodeError::Interval {
                version: Version::V3,
                interval_cs: 4096,
            },
        ),
        (
            "v3 0 cs",
            AdvertSpec {
                interval_cs: 0,
                ..spec_v3(&[VIP])
            },
            EncodeError::Interval {
                version: Version::V3,
                interval_cs: 0,
            },
        ),
        (
            "v3 with password",
            AdvertSpec {
                auth: Auth::password(b"x"),
                ..spec_v3(&[VIP])
            },
            EncodeError::AuthV3,
        ),
        (
            "v2 with AH",
            AdvertSpec {
                auth: Auth::Other(2),
                ..spec_v2(&[VIP])
            },
            EncodeError::UnsupportedAuth(2),
        ),
        (
            "v2 with undefined auth type",
            AdvertSpec {
                auth: Auth::Other(9),
                ..spec_v2(&[VIP])
            },
            EncodeError::UnsupportedAuth(9),
        ),
    ];
    for (name, spec, want) in cases {
        assert_eq!(packet(&spec), Err(want), "{name}");
    }
}

#[test]
fn buffer_too_small() {
    let mut buf = [0; 39];
    assert_eq!(
        encode(&spec_v2(&[VIP]), &mut buf),
        Err(EncodeError::BufferTooSmall { need: 40, have: 39 })
    );
    let mut buf = [0; 41];
    assert_eq!(
        encode_garp([2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 0, 2, 50), &mut buf),
        Err(EncodeError::BufferTooSmall { need: 42, have: 41 })
    );
}

#[test]
fn garp_layout() {
    let mut buf = [0xaa; 64];
    let len = encode_garp(
        [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
        Ipv4Addr::new(10, 1, 2, 3),
        &mut buf,
    )
    .unwrap();
    assert_eq!(len, 42);
    #[rustfmt::skip]
    let expected = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // our MAC
        0x08, 0x06, // ARP
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet/IPv4, request
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 1, 2, 3, // sender: MAC, VIP
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 10, 1, 2, 3, // target: broadcast, VIP
    ];
    assert_eq!(buf[..len], expected);
    assert_eq!(buf[len..], [0xaa; 22]);
}
