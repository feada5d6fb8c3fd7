//! encode → decode: whatever the encoder accepts, the decoder reads back field for field.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use vrrp_common::{wire::MAX_ADVERT_LEN_V4, AdvertSpec, Auth, ChecksumForm, Version};

fuzz_target!(|input: (bool, u8, u8, u16, Option<[u8; 8]>, [u32; 3], bool, Vec<u32>)| {
    let (v3, vrid, priority, interval_cs, pass, [src, dst, id], pseudo, addrs) = input;
    let addrs: Vec<Ipv4Addr> = addrs.into_iter().map(Ipv4Addr::from).collect();
    let spec = AdvertSpec {
        version: if v3 { Version::V3 } else { Version::V2 },
        vrid,
        priority,
        interval_cs,
        auth: pass.map_or(Auth::None, Auth::Pass),
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
        ip_id: id as u16,
        checksum_form: if pseudo {
            ChecksumForm::WithPseudoHeader
        } else {
            ChecksumForm::MessageOnly
        },
        addrs: &addrs,
    };
    let mut buf = [0u8; MAX_ADVERT_LEN_V4];
    let Ok(len) = vrrp_common::encode_ipv4(&spec, &mut buf) else {
        return;
    };
    let advert = vrrp_common::decode_ipv4(&buf[..len]).expect("an encoded advert decodes");
    assert_eq!(
        (advert.version, advert.vrid, advert.priority, advert.interval_cs),
        (spec.version, vrid, priority, interval_cs)
    );
    assert_eq!((advert.src, advert.dst, advert.ip_id), (spec.src, spec.dst, spec.ip_id));
    assert_eq!(advert.auth, spec.auth);
    assert!(advert.addrs().eq(addrs.iter().copied()));
    if v3 && pseudo {
        assert_eq!(advert.checksum_form, Some(ChecksumForm::WithPseudoHeader));
    }
});
