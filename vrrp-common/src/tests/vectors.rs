//! Every packet keepalived sent in the capture decodes to what tcpdump printed (the .txt beside
//! it) and re-encodes byte for byte.

use std::string::{String, ToString};
use std::vec::Vec;

use super::{frames, VECTORS};
use crate::wire::{header_at, ArpIpv4, EthHdr, ARP_OP_REQUEST, ETH_HDR_LEN, ETH_P_ARP, ETH_P_IP};
use crate::{decode_ipv4, encode, encode_garp, AdvertSpec, Auth, ChecksumForm, Version};

/// One frame as tcpdump described it.
#[derive(Debug, PartialEq)]
enum Printed {
    Advert {
        ip_id: u16,
        src: String,
        version: Version,
        vrid: u8,
        priority: u8,
        interval_cs: u16,
        addrs: String,
        password: Option<String>,
    },
    Garp {
        mac: String,
        vip: String,
    },
}

/// The value after `key ` in a comma-separated tcpdump field list.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(", ")
        .find_map(|f| f.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
}

fn printed() -> Vec<Printed> {
    let text = std::fs::read_to_string(std::format!("{VECTORS}.txt")).unwrap();
    let mut lines = text.lines().peekable();
    let mut out = Vec::new();
    while let Some(line) = lines.next() {
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        if line.contains("ethertype ARP") {
            let (mac, _) = line.split_once(' ').unwrap().1.split_once(' ').unwrap();
            let vip = line
                .split("tell ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap();
            out.push(Printed::Garp {
                mac: mac.into(),
                vip: vip.into(),
            });
            continue;
        }
        assert!(line.contains("ethertype IPv4"), "{line}");
        let vrrp = lines.next().unwrap().trim();
        let (src, rest) = vrrp.split_once(" > ").unwrap();
        let (_, rest) = rest.split_once(": ").unwrap();
        let (addrs, password) = match field(rest, "addrs:").split_once(" auth ") {
            Some((a, p)) => (a, Some(p.trim_matches('"').into())),
            None => (field(rest, "addrs:"), None),
        };
        let intvl = field(rest, "intvl");
        out.push(Printed::Advert {
            ip_id: field(line, "id").parse().unwrap(),
            src: src.into(),
            version: match rest.split(',').next().unwrap() {
                "VRRPv2" => Version::V2,
                "VRRPv3" => Version::V3,
                v => panic!("{v}"),
            },
            vrid: field(rest, "vrid").parse().unwrap(),
            priority: field(rest, "prio").parse().unwrap(),
            interval_cs: match intvl.strip_suffix("cs") {
                Some(cs) => cs.parse().unwrap(),
                None => intvl.strip_suffix('s').unwrap().parse::<u16>().unwrap() * 100,
            },
            addrs: addrs.into(),
            password,
        });
    }
    out
}

fn mac_string(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    std::format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

#[test]
fn every_vector_decodes_as_printed_and_reencodes_identically() {
    let frames = frames();
    let printed = printed();
    assert_eq!(frames.len(), printed.len());
    let (mut v2, mut v3, mut garps) = (0, 0, 0);
    let mut priorities = Vec::new();

    for (i, (frame, printed)) in frames.iter().zip(&printed).enumerate() {
        let eth: &EthHdr = header_at(frame, 0).unwrap();
        let payload = &frame[ETH_HDR_LEN..];
        let mut buf = [0; 1500];
        match eth.ethertype() {
            ETH_P_IP => {
                let advert = decode_ipv4(payload).unwrap_or_else(|e| panic!("frame {i}: {e}"));
                let addrs: Vec<_> = advert.addrs().collect();
                let decoded = Printed::Advert {
                    ip_id: advert.ip_id,
                    src: advert.src.to_string(),
                    version: advert.version,
                    vrid: advert.vrid,
                    priority: advert.priority,
                    interval_cs: advert.interval_cs,
                    addrs: addrs
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                    password: match advert.auth {
                        Auth::Pass(p) => Some(
                            String::from_utf8(p.to_vec())
                                .unwrap()
                                .trim_end_matches('\0')
                                .into(),
                        ),
                        _ => None,
                    },
                };
                assert_eq!(&decoded, printed, "frame {i}");
                assert_eq!((advert.ttl, advert.tos), (255, 0xc0), "frame {i}");
                assert_eq!(advert.dst, crate::wire::VRRP_MULTICAST_V4, "frame {i}");
                // keepalived's default v3 form; v2 has only one.
                let form = match advert.version {
                    Version::V2 => ChecksumForm::MessageOnly,
                    Version::V3 => ChecksumForm::WithPseudoHeader,
                };
                assert_eq!(advert.checksum_form, Some(form), "frame {i}");
                match advert.version {
                    Version::V2 => v2 += 1,
                    Version::V3 => v3 += 1,
                }
                priorities.push(advert.priority);

                let spec = AdvertSpec {
                    version: advert.version,
                    vrid: advert.vrid,
                    priority: advert.priority,
                    interval_cs: advert.interval_cs,
                    auth: advert.auth,
                    src: advert.src,
                    dst: advert.dst,
                    ip_id: advert.ip_id,
                    checksum_form: form,
                    addrs: &addrs,
                };
                let len = encode(&spec, &mut buf).unwrap();
                assert_eq!(&buf[..len], payload, "frame {i} re-encoded");
            }
            ETH_P_ARP => {
                let arp: &ArpIpv4 = header_at(payload, 0).unwrap();
                assert!(arp.is_ether_ipv4(), "frame {i}");
                assert_eq!(arp.oper(), ARP_OP_REQUEST, "frame {i}");
                assert_eq!(arp.sender_ipv4(), arp.target_ipv4(), "frame {i}");
                let decoded = Printed::Garp {
                    mac: mac_string(eth.src),
                    vip: arp.target_ipv4().to_string(),
                };
                assert_eq!(&decoded, printed, "frame {i}");
                garps += 1;

                let len = encode_garp(eth.src, arp.target_ipv4(), &mut buf).unwrap();
                assert_eq!(&buf[..len], &frame[..], "frame {i} re-encoded");
            }
            other => panic!("frame {i}: ethertype {other:#06x}"),
        }
    }

    assert_eq!((v2, v3, garps), (9, 19, 20));
    for prio in [150, 100, 0] {
        assert!(priorities.contains(&prio), "no advert with priority {prio}");
    }
}
