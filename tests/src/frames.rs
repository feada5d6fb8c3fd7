//! Ethernet frames for trafgen: VRRP adverts (encoded by vrrp-common, the agent's own codec) and
//! small UDP datagrams, and trafgen's configuration format. For the benchmark's loads and the
//! tests that play an attacker or a misbehaving router on the segment.
use std::net::Ipv4Addr;

pub use vrrp_common::checksum::checksum;
use vrrp_common::{
    wire::{ETH_P_IP, MAX_ADVERT_LEN_V4, VRRP_MULTICAST_MAC_V4, VRRP_MULTICAST_V4},
    AdvertSpec, Auth, ChecksumForm, Version,
};

/// A VRRPv3 advert from `src` (MAC, address) to 224.0.0.18 for `vrid` with `priority`, interval
/// `interval_cs` and the addresses `addrs`, with the checksum keepalived sends.
pub fn advert_frame(
    src: ([u8; 6], Ipv4Addr),
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    addrs: &[Ipv4Addr],
) -> Vec<u8> {
    let spec = AdvertSpec {
        version: Version::V3,
        vrid,
        priority,
        interval_cs,
        auth: Auth::None,
        src: src.1,
        dst: VRRP_MULTICAST_V4,
        ip_id: 0,
        checksum_form: ChecksumForm::WithPseudoHeader,
        addrs,
    };
    let mut packet = [0; MAX_ADVERT_LEN_V4];
    let len = vrrp_common::encode_ipv4(&spec, &mut packet).expect("a valid advert spec");
    ethernet(VRRP_MULTICAST_MAC_V4, src.0, &packet[..len])
}

/// A minimal Ethernet frame (60 bytes) with a UDP datagram to the discard port.
pub fn udp_frame(dst: ([u8; 6], Ipv4Addr), src: ([u8; 6], Ipv4Addr)) -> Vec<u8> {
    // Checksum 0: none, allowed over IPv4.
    let mut udp = vec![0x0f, 0xa0, 0, 9, 0, 26, 0, 0];
    udp.extend([0; 18]);
    let mut ip = vec![0x45, 0];
    ip.extend((20 + udp.len() as u16).to_be_bytes());
    ip.extend([0, 0, 0x40, 0, 64, 17, 0, 0]);
    ip.extend(src.1.octets());
    ip.extend(dst.1.octets());
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend(udp);
    ethernet(dst.0, src.0, &ip)
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend(src);
    f.extend(ETH_P_IP.to_be_bytes());
    f.extend(ip);
    f
}

/// `frame` with an 802.1Q tag for `vid` after its source MAC.
pub fn vlan_tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend(0x8100u16.to_be_bytes());
    f.extend(vid.to_be_bytes());
    f.extend(&frame[12..]);
    f
}

/// trafgen's configuration for `frames`, each pinned to `cpu` if given.
pub fn trafgen_config(frames: &[Vec<u8>], cpu: Option<usize>) -> String {
    let mut s = String::new();
    for f in frames {
        if let Some(cpu) = cpu {
            s += &format!("cpu({cpu}): ");
        }
        let bytes: Vec<String> = f.iter().map(|b| format!("{b:#04x}")).collect();
        s += &format!("{{ {} }}\n", bytes.join(", "));
    }
    s
}

/// "aa:bb:cc:dd:ee:ff" as bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x42, 0xa8, 0x75, 0xd2, 0x69, 0x7d];

    #[test]
    fn advert_frame_is_keepalived_s_vrrpv3() {
        let src = (MAC, Ipv4Addr::new(198, 51, 100, 22));
        let f = advert_frame(src, 1, 100, 1, &[Ipv4Addr::new(203, 0, 113, 1)]);
        // Checked against tcpdump's decoding of the same bytes.
        assert_eq!(f.len(), 46);
        assert_eq!(f[..6], VRRP_MULTICAST_MAC_V4);
        assert_eq!(f[14..24], [0x45, 0xc0, 0, 32, 0, 0, 0, 0, 255, 112]);
        assert_eq!(f[34..], [0x31, 1, 100, 1, 0, 1, 0x24, 0x21, 203, 0, 113, 1]);
        assert_eq!(
            checksum(&[&f[14..34]]),
            0,
            "the IPv4 header checksum is right"
        );
    }

    #[test]
    fn udp_frame_is_minimal() {
        let f = udp_frame(
            (MAC, Ipv4Addr::new(198, 51, 100, 2)),
            ([2; 6], Ipv4Addr::new(198, 51, 100, 21)),
        );
        assert_eq!(f.len(), 60);
        assert_eq!(checksum(&[&f[14..34]]), 0);
        assert_eq!(f[36..38], [0, 9]);
    }

    #[test]
    fn trafgen_config_lines_and_macs() {
        let conf = trafgen_config(&[vec![1, 0xab]], Some(1));
        assert_eq!(conf, "cpu(1): { 0x01, 0xab }\n");
        assert_eq!(parse_mac("42:a8:75:d2:69:7d"), Some(MAC));
        assert_eq!(parse_mac("42:a8"), None);
    }
}
