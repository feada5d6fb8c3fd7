//! Per-instance receive checks on keepalived's adverts (v2 password "s3cr3t", 1 s; v3 10 cs).

use core::net::{IpAddr, Ipv4Addr};

use super::{fix_vrrp_checksum, good_v2, good_v3};
use crate::wire::IPV4_HDR_LEN;
use crate::{
    decode_ipv4, encode, AddrList, AdvertSpec, Auth, ChecksumForm, DecodeError, Expect, Version,
};

const BACKUP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

fn expect_v2() -> Expect {
    Expect {
        vrid: 51,
        version: Version::V2,
        interval_cs: 100,
        auth: Auth::password(b"s3cr3t"),
        local_addr: BACKUP,
    }
}

fn expect_v3() -> Expect {
    Expect {
        vrid: 51,
        version: Version::V3,
        interval_cs: 100,
        auth: Auth::None,
        local_addr: BACKUP,
    }
}

fn check_v2(expect: Expect) -> Result<(), DecodeError> {
    decode_ipv4(&good_v2()).unwrap().check(&expect)
}

#[test]
fn matching_adverts_pass() {
    assert_eq!(check_v2(expect_v2()), Ok(()));
    // v3 adopts the master's interval: 10 cs against our 100 cs is fine.
    assert_eq!(decode_ipv4(&good_v3()).unwrap().check(&expect_v3()), Ok(()));
}

#[test]
fn vrid_mismatch() {
    let expect = Expect {
        vrid: 52,
        ..expect_v2()
    };
    assert_eq!(
        check_v2(expect),
        Err(DecodeError::VridMismatch { got: 51, want: 52 })
    );
}

#[test]
fn version_mismatch() {
    let expect = Expect {
        version: Version::V3,
        ..expect_v2()
    };
    assert_eq!(
        check_v2(expect),
        Err(DecodeError::VersionMismatch {
            got: Version::V2,
            want: Version::V3
        })
    );
}

#[test]
fn own_advert_looped_back() {
    let master = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let expect = Expect {
        local_addr: master,
        ..expect_v3()
    };
    assert_eq!(
        decode_ipv4(&good_v3()).unwrap().check(&expect),
        Err(DecodeError::OwnAdvert(master))
    );
}

#[test]
fn v2_interval_mismatch() {
    let expect = Expect {
        interval_cs: 200,
        ..expect_v2()
    };
    assert_eq!(
        check_v2(expect),
        Err(DecodeError::IntervalMismatch {
            got_cs: 100,
            want_cs: 200
        })
    );
}

#[test]
fn auth_type_mismatch() {
    let expect = Expect {
        auth: Auth::None,
        ..expect_v2()
    };
    assert_eq!(
        check_v2(expect),
        Err(DecodeError::AuthTypeMismatch { got: 1, want: 0 })
    );

    let mut p = good_v2();
    p[IPV4_HDR_LEN + 4] = 7;
    fix_vrrp_checksum(&mut p);
    let advert = decode_ipv4(&p).unwrap();
    assert_eq!(advert.auth, Auth::Other(7));
    assert_eq!(
        advert.check(&expect_v2()),
        Err(DecodeError::AuthTypeMismatch { got: 7, want: 1 })
    );
}

#[test]
fn auth_ah_is_unsupported() {
    let mut p = good_v2();
    p[IPV4_HDR_LEN + 4] = 2;
    fix_vrrp_checksum(&mut p);
    let advert = decode_ipv4(&p).unwrap();
    assert_eq!(advert.auth, Auth::Other(2));
    assert_eq!(advert.check(&expect_v2()), Err(DecodeError::AuthAh));
}

#[test]
fn password_mismatch() {
    for wrong in [&b"s3cr3T"[..], b"s3cr3", b"s3cr3t\0x", b""] {
        let expect = Expect {
            auth: Auth::password(wrong),
            ..expect_v2()
        };
        assert_eq!(
            check_v2(expect),
            Err(DecodeError::PasswordMismatch),
            "{wrong:?}"
        );
    }
}

#[test]
fn password_is_zero_padded_and_truncated_to_8_bytes() {
    assert_eq!(Auth::password(b"s3cr3t"), Auth::Pass(*b"s3cr3t\0\0"));
    assert_eq!(Auth::password(b"longpassword"), Auth::Pass(*b"longpass"));

    // A peer configured with "longpass" is accepted by an instance configured with a longer one.
    let mut buf = [0; 64];
    let spec = AdvertSpec {
        version: Version::V2,
        vrid: 51,
        priority: 100,
        interval_cs: 100,
        auth: Auth::password(b"longpass"),
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst: IpAddr::V4(crate::wire::VRRP_MULTICAST_V4),
        ip_id: 7,
        checksum_form: ChecksumForm::MessageOnly,
        addrs: &[IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50))],
    };
    let len = encode(&spec, &mut buf).unwrap();
    assert_eq!(&buf[len - 8..len], b"longpass");
    let expect = Expect {
        auth: Auth::password(b"longpassword"),
        ..expect_v2()
    };
    assert_eq!(decode_ipv4(&buf[..len]).unwrap().check(&expect), Ok(()));
}

/// A v3 advert listing `addrs`.
fn listing(addrs: &[IpAddr], buf: &mut [u8]) -> usize {
    let spec = AdvertSpec {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        interval_cs: 100,
        auth: Auth::None,
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst: IpAddr::V4(crate::wire::VRRP_MULTICAST_V4),
        ip_id: 0,
        checksum_form: ChecksumForm::WithPseudoHeader,
        addrs,
    };
    encode(&spec, buf).unwrap()
}

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 100));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 101));
const C: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 102));

/// The address list check, as keepalived makes it, on the agent's side (exact, naming what
/// differs) and the kernel's (digests), which must agree on every list.
#[test]
fn address_list_must_be_ours() {
    let ours = [A, B];
    let cases: &[(&[IpAddr], Result<(), DecodeError>)] = &[
        (&[A, B], Ok(())),
        (&[B, A], Ok(())),
        (&[A], Err(DecodeError::AddressCount { got: 1, want: 2 })),
        (
            &[A, B, C],
            Err(DecodeError::AddressCount { got: 3, want: 2 }),
        ),
        (&[A, C], Err(DecodeError::AddressMissing(B))),
        (&[A, A], Err(DecodeError::AddressMissing(B))),
        (&[B, B], Err(DecodeError::AddressMissing(A))),
    ];
    for (addrs, want) in cases {
        let mut buf = [0; 64];
        let len = listing(addrs, &mut buf);
        let advert = decode_ipv4(&buf[..len]).unwrap();
        assert_eq!(advert.check_addrs(&ours), *want, "{addrs:?}");
        let kernel = AddrList::of(advert.addrs()) == AddrList::of(ours);
        assert_eq!(kernel, want.is_ok(), "digest of {addrs:?}");
    }
}
