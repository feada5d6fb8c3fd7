//! Reads the client's capture: a pcap (Ethernet, kernel time stamps in nanoseconds) reduced to the
//! three kinds of frame the figures need, over IPv4 or IPv6.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{bail, ensure, Context as _, Result};

/// Wall-clock time (CLOCK_REALTIME, the clock of pcap time stamps) in nanoseconds.
pub type Nanos = i64;

#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub t: Nanos,
    /// Ethernet source: who actually sent it (a reply through the new master carries its MAC).
    pub src_mac: [u8; 6],
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Advert {
        src: IpAddr,
        vrid: u8,
        prio: u8,
    },
    /// Any ARP (a gratuitous one has the VIP as sender address) or Neighbor Advertisement (the
    /// VIP as target): what moves the client to a new master.
    Announce {
        vip: IpAddr,
    },
    /// ICMP or ICMPv6.
    EchoReply {
        src: IpAddr,
    },
}

const LINKTYPE_ETHERNET: u32 = 1;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;
const PROTO_VRRP: u8 = 112;
const ICMPV6_ECHO_REPLY: u8 = 129;
const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;

pub fn read(path: &std::path::Path) -> Result<Vec<Frame>> {
    let data = std::fs::read(path).with_context(|| path.display().to_string())?;
    parse(&data).with_context(|| path.display().to_string())
}

/// Parses a classic pcap file (either byte order, micro- or nanosecond stamps); frames that are
/// none of the three kinds are skipped, a truncated last record ends the list.
pub fn parse(data: &[u8]) -> Result<Vec<Frame>> {
    ensure!(data.len() >= 24, "not a pcap file: {} bytes", data.len());
    let magic = u32::from_le_bytes(data[0..4].try_into()?);
    let (le, nano) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        m => bail!("not a pcap file (magic {m:#x})"),
    };
    let u32_at = |b: &[u8], off: usize| -> u32 {
        let raw: [u8; 4] = b[off..off + 4].try_into().expect("4 bytes");
        if le {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        }
    };
    let linktype = u32_at(data, 20);
    ensure!(
        linktype == LINKTYPE_ETHERNET,
        "link type {linktype}, want Ethernet"
    );
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let sec = i64::from(u32_at(data, off));
        let frac = i64::from(u32_at(data, off + 4));
        let len = u32_at(data, off + 8) as usize;
        let body = off + 16;
        if body + len > data.len() {
            break;
        }
        let t = sec * 1_000_000_000 + if nano { frac } else { frac * 1000 };
        if let Some(f) = frame(t, &data[body..body + len]) {
            frames.push(f);
        }
        off = body + len;
    }
    Ok(frames)
}

fn frame(t: Nanos, b: &[u8]) -> Option<Frame> {
    let src_mac: [u8; 6] = b.get(6..12)?.try_into().ok()?;
    let ethertype = u16::from_be_bytes(b.get(12..14)?.try_into().ok()?);
    let l3 = b.get(14..)?;
    let kind = match ethertype {
        ETHERTYPE_ARP => Kind::Announce {
            vip: ipv4(l3.get(14..18)?),
        },
        ETHERTYPE_IPV4 => {
            let ihl = usize::from(l3.first()? & 0x0f) * 4;
            let src = ipv4(l3.get(12..16)?);
            let l4 = l3.get(ihl..)?;
            match *l3.get(9)? {
                PROTO_VRRP => advert(src, l4)?,
                PROTO_ICMP if *l4.first()? == 0 => Kind::EchoReply { src },
                _ => return None,
            }
        }
        ETHERTYPE_IPV6 => {
            let src = ipv6(l3.get(8..24)?);
            let l4 = l3.get(40..)?;
            match (*l3.get(6)?, *l4.first()?) {
                (PROTO_VRRP, _) => advert(src, l4)?,
                (PROTO_ICMPV6, ICMPV6_ECHO_REPLY) => Kind::EchoReply { src },
                (PROTO_ICMPV6, ICMPV6_NEIGHBOR_ADVERT) => Kind::Announce {
                    vip: ipv6(l4.get(8..24)?),
                },
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(Frame { t, src_mac, kind })
}

fn advert(src: IpAddr, vrrp: &[u8]) -> Option<Kind> {
    Some(Kind::Advert {
        src,
        vrid: *vrrp.get(1)?,
        prio: *vrrp.get(2)?,
    })
}

fn ipv4(b: &[u8]) -> IpAddr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()
}

fn ipv6(b: &[u8]) -> IpAddr {
    let octets: [u8; 16] = b.try_into().unwrap_or_default();
    Ipv6Addr::from(octets).into()
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub const R1_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    pub const R2_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn eth(src: [u8; 6], ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend(src);
        f.extend(ethertype.to_be_bytes());
        f.extend(l3);
        f
    }

    fn ip(proto: u8, src: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 255, proto, 0, 0];
        h.extend(src);
        h.extend([224, 0, 0, 18]);
        h.extend(l4);
        h
    }

    pub fn advert(src_mac: [u8; 6], src: [u8; 4], vrid: u8, prio: u8) -> Vec<u8> {
        eth(
            src_mac,
            ETHERTYPE_IPV4,
            &ip(PROTO_VRRP, src, &[0x31, vrid, prio, 1, 0, 1, 0, 0]),
        )
    }

    fn ip6(next_header: u8, src: [u8; 16], l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0, 0, l4.len() as u8, next_header, 255];
        h.extend(src);
        h.extend([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12]);
        h.extend(l4);
        h
    }

    pub fn advert6(src_mac: [u8; 6], src: [u8; 16], vrid: u8, prio: u8) -> Vec<u8> {
        let vrrp = [0x31, vrid, prio, 1, 0, 1, 0, 0];
        eth(src_mac, ETHERTYPE_IPV6, &ip6(PROTO_VRRP, src, &vrrp))
    }

    pub fn na(src_mac: [u8; 6], vip: [u8; 16]) -> Vec<u8> {
        let mut icmp = vec![ICMPV6_NEIGHBOR_ADVERT, 0, 0, 0, 0x20, 0, 0, 0];
        icmp.extend(vip);
        eth(src_mac, ETHERTYPE_IPV6, &ip6(PROTO_ICMPV6, vip, &icmp))
    }

    pub fn reply6(src_mac: [u8; 6], src: [u8; 16]) -> Vec<u8> {
        let icmp = [ICMPV6_ECHO_REPLY, 0, 0, 0];
        eth(src_mac, ETHERTYPE_IPV6, &ip6(PROTO_ICMPV6, src, &icmp))
    }

    pub fn garp(src_mac: [u8; 6], vip: [u8; 4]) -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
        a.extend(src_mac);
        a.extend(vip);
        a.extend([0; 6]);
        a.extend(vip);
        eth(src_mac, ETHERTYPE_ARP, &a)
    }

    pub fn reply(src_mac: [u8; 6], src: [u8; 4]) -> Vec<u8> {
        eth(src_mac, ETHERTYPE_IPV4, &ip(PROTO_ICMP, src, &[0, 0, 0, 0]))
    }

    /// A nanosecond pcap in little-endian order, as tcpdump writes here.
    pub fn pcap(frames: &[(Nanos, Vec<u8>)]) -> Vec<u8> {
        let mut out = 0xa1b2_3c4du32.to_le_bytes().to_vec();
        out.extend([2, 0, 4, 0]);
        out.extend([0; 8]);
        out.extend(262_144u32.to_le_bytes());
        out.extend(LINKTYPE_ETHERNET.to_le_bytes());
        for (t, f) in frames {
            out.extend(((t / 1_000_000_000) as u32).to_le_bytes());
            out.extend(((t % 1_000_000_000) as u32).to_le_bytes());
            out.extend((f.len() as u32).to_le_bytes());
            out.extend((f.len() as u32).to_le_bytes());
            out.extend(f);
        }
        out
    }

    #[test]
    fn parses_the_three_kinds_over_ipv6() {
        let (r1, vip) = (
            "fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap(),
            "2001:db8::100".parse::<Ipv6Addr>().unwrap(),
        );
        let router_solicitation = eth(
            R1_MAC,
            ETHERTYPE_IPV6,
            &ip6(PROTO_ICMPV6, r1.octets(), &[133, 0, 0, 0]),
        );
        let file = pcap(&[
            (1, advert6(R1_MAC, r1.octets(), 51, 200)),
            (2, router_solicitation),
            (3, na(R2_MAC, vip.octets())),
            (4, reply6(R2_MAC, vip.octets())),
        ]);
        let kinds: Vec<Kind> = parse(&file).unwrap().into_iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Advert {
                    src: r1.into(),
                    vrid: 51,
                    prio: 200
                },
                Kind::Announce { vip: vip.into() },
                Kind::EchoReply { src: vip.into() },
            ]
        );
    }

    #[test]
    fn parses_the_three_kinds_and_skips_the_rest() {
        let other = eth(R1_MAC, 0x88b5, &[0; 40]);
        let file = pcap(&[
            (
                1_000_000_000_123,
                advert(R1_MAC, [198, 51, 100, 1], 51, 200),
            ),
            (1_000_000_000_456, other),
            (1_000_000_001_000, garp(R2_MAC, [198, 51, 100, 100])),
            (1_000_000_002_000, reply(R2_MAC, [198, 51, 100, 100])),
        ]);
        let frames = parse(&file).unwrap();
        assert_eq!(
            frames,
            [
                Frame {
                    t: 1_000_000_000_123,
                    src_mac: R1_MAC,
                    kind: Kind::Advert {
                        src: Ipv4Addr::new(198, 51, 100, 1).into(),
                        vrid: 51,
                        prio: 200
                    }
                },
                Frame {
                    t: 1_000_000_001_000,
                    src_mac: R2_MAC,
                    kind: Kind::Announce {
                        vip: Ipv4Addr::new(198, 51, 100, 100).into()
                    }
                },
                Frame {
                    t: 1_000_000_002_000,
                    src_mac: R2_MAC,
                    kind: Kind::EchoReply {
                        src: Ipv4Addr::new(198, 51, 100, 100).into()
                    }
                },
            ]
        );
    }

    #[test]
    fn microsecond_big_endian_and_truncated_files() {
        let mut file = 0xa1b2_c3d4u32.to_be_bytes().to_vec();
        file.extend([0, 2, 0, 4]);
        file.extend([0; 12]);
        file.extend(LINKTYPE_ETHERNET.to_be_bytes());
        let f = reply(R1_MAC, [198, 51, 100, 100]);
        file.extend(5u32.to_be_bytes());
        file.extend(7u32.to_be_bytes());
        file.extend((f.len() as u32).to_be_bytes());
        file.extend((f.len() as u32).to_be_bytes());
        file.extend(&f);
        file.extend([0; 20]); // a record cut short by the writer's stop
        let frames = parse(&file).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].t, 5_000_007_000);
        assert!(parse(b"garbage that is long enough..").is_err());
    }
}
