//! encode → decode: whatever the encoder accepts, the decoder of its family reads back field
//! for field.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vrrp_common::{wire::MAX_ADVERT_LEN, AdvertSpec, Auth, ChecksumForm, Version};

type Input = (
    bool,
    bool,
    u8,
    u8,
    u16,
    Option<[u8; 8]>,
    [u128; 2],
    u16,
    bool,
    Vec<u128>,
);

fuzz_target!(|input: Input| {
    let (v6, v3, vrid, priority, interval_cs, pass, [src, dst], id, pseudo, addrs) = input;
    let addr = |a: u128| match v6 {
        true => IpAddr::V6(Ipv6Addr::from(a)),
        false => IpAddr::V4(Ipv4Addr::from(a as u32)),
    };
    let addrs: Vec<IpAddr> = addrs.into_iter().map(addr).collect();
    let spec = AdvertSpec {
        version: if v3 { Version::V3 } else { Version::V2 },
        vrid,
        priority,
        interval_cs,
        auth: pass.map_or(Auth::None, Auth::Pass),
        src: addr(src),
        dst: addr(dst),
        ip_id: id,
        checksum_form: if pseudo {
            ChecksumForm::WithPseudoHeader
        } else {
            ChecksumForm::MessageOnly
        },
        addrs: &addrs,
    };
    let mut buf = [0u8; MAX_ADVERT_LEN];
    let Ok(len) = vrrp_common::encode(&spec, &mut buf) else {
        return;
    };
    let advert = vrrp_common::decode(&buf[..len]).expect("an encoded advert decodes");
    assert_eq!(
        (
            advert.version,
            advert.vrid,
            advert.priority,
            advert.interval_cs
        ),
        (spec.version, vrid, priority, interval_cs)
    );
    assert_eq!((advert.src, advert.dst), (spec.src, spec.dst));
    assert_eq!(advert.ip_id, if v6 { 0 } else { id });
    assert_eq!(advert.auth, spec.auth);
    assert!(advert.addrs().eq(addrs.iter().copied()));
    if v6 || (v3 && pseudo) {
        assert_eq!(advert.checksum_form, Some(ChecksumForm::WithPseudoHeader));
    }
});
