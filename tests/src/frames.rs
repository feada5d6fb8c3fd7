//! Ethernet frames for trafgen: VRRP adverts (encoded by vrrp-common, the agent's own codec) and
//! small UDP datagrams, and trafgen's configuration format. For the benchmark's loads and the
//! tests that play an attacker or a misbehaving router on the segment.
use std::net::{IpAddr, Ipv4Addr};

pub use vrrp_common::checksum::checksum;
use vrrp_common::{
    wire::{
        ETH_P_IP, ETH_P_IPV6, IPPROTO_VRRP, IPV6_HDR_LEN, MAX_ADVERT_LEN, VRRP_MULTICAST_MAC_V4,
        VRRP_MULTICAST_MAC_V6, VRRP_MULTICAST_V4, VRRP_MULTICAST_V6,
    },
    AdvertSpec, Auth, ChecksumForm, Version,
};

/// A VRRPv3 advert from `src` (MAC, address) to 224.0.0.18 (ff02::12 from an IPv6 address) for
/// `vrid` with `priority`, interval `interval_cs` and the addresses `addrs`, with the checksum
/// keepalived sends.
pub fn advert_frame<A: Into<IpAddr> + Copy>(
    src: ([u8; 6], A),
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    addrs: &[A],
) -> Vec<u8> {
    let addrs: Vec<IpAddr> = addrs.iter().map(|&a| a.into()).collect();
    let v6 = src.1.into().is_ipv6();
    let (dst, mac, ethertype) = match v6 {
        true => (VRRP_MULTICAST_V6.into(), VRRP_MULTICAST_MAC_V6, ETH_P_IPV6),
        false => (VRRP_MULTICAST_V4.into(), VRRP_MULTICAST_MAC_V4, ETH_P_IP),
    };
    let spec = AdvertSpec {
        version: Version::V3,
        vrid,
        priority,
        interval_cs,
        auth: Auth::None,
        src: src.1.into(),
        dst,
        ip_id: 0,
        checksum_form: ChecksumForm::WithPseudoHeader,
        addrs: &addrs,
    };
    let mut packet = [0; MAX_ADVERT_LEN];
    let len = vrrp_common::encode(&spec, &mut packet).expect("a valid advert spec");
    let mut f = ethernet(mac, src.0, &packet[..len]);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f
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

/// A liveness probe (`vrrp_common::liveness`) from `src` to `dst` for `vrid`, as a backup with
/// `priority` sends it.
pub fn probe_frame(
    dst: ([u8; 6], Ipv4Addr),
    src: ([u8; 6], Ipv4Addr),
    vrid: u8,
    priority: u8,
) -> Vec<u8> {
    let probe = vrrp_common::liveness::Probe::new(vrid, priority, 1, 0);
    let mut frame = ethernet(
        dst.0,
        src.0,
        &vrrp_common::liveness::encode_probe(src.1, dst.1, &probe),
    );
    set_ip_checksum(&mut frame);
    frame
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend(src);
    f.extend(ETH_P_IP.to_be_bytes());
    f.extend(ip);
    f
}

/// Tag protocol identifiers: 802.1Q, and 802.1ad (the outer tag of QinQ).
pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88a8;

/// `frame` with a VLAN tag (`tpid`, `vid`) after its source MAC.
pub fn vlan_tagged(frame: &[u8], tpid: u16, vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend(tpid.to_be_bytes());
    f.extend(vid.to_be_bytes());
    f.extend(&frame[12..]);
    f
}

/// Where the IPv4 header starts in an untagged frame.
const IP: usize = 14;

fn ip_header_len(frame: &[u8]) -> usize {
    usize::from(frame[IP] & 0x0f) * 4
}

fn ip_total_len(frame: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([frame[IP + 2], frame[IP + 3]]))
}

fn set_ip_checksum(frame: &mut [u8]) {
    let end = IP + ip_header_len(frame);
    frame[IP + 10..IP + 12].fill(0);
    let c = checksum(&[&frame[IP..end]]);
    frame[IP + 10..IP + 12].copy_from_slice(&c.to_be_bytes());
}

/// Recomputes the checksums of an untagged VRRPv3 advert frame (IPv4 header; VRRP with the
/// pseudo-header, as keepalived sends it) after a test changed its bytes: the frame then fails
/// only the check the change was made for.
pub fn reseal(frame: &mut [u8]) {
    if frame[12..14] == ETH_P_IPV6.to_be_bytes() {
        return reseal_v6(frame);
    }
    set_ip_checksum(frame);
    let (vrrp, end) = (IP + ip_header_len(frame), IP + ip_total_len(frame));
    frame[vrrp + 6..vrrp + 8].fill(0);
    let len = ((end - vrrp) as u16).to_be_bytes();
    let pseudo = [&frame[IP + 12..IP + 20], &[0, IPPROTO_VRRP], &len[..]].concat();
    let c = checksum(&[&pseudo, &frame[vrrp..end]]);
    frame[vrrp + 6..vrrp + 8].copy_from_slice(&c.to_be_bytes());
}

/// [`reseal`] over IPv6: the VRRP checksum over the IPv6 pseudo-header, for the payload length
/// the header says (bytes past it untouched).
fn reseal_v6(frame: &mut [u8]) {
    let vrrp = IP + IPV6_HDR_LEN;
    let len = usize::from(u16::from_be_bytes([frame[IP + 4], frame[IP + 5]]));
    let end = (vrrp + len).min(frame.len());
    frame[vrrp + 6..vrrp + 8].fill(0);
    let upper = ((end - vrrp) as u32).to_be_bytes();
    let pseudo = [
        &frame[IP + 8..IP + 40],
        &upper[..],
        &[0, 0, 0, IPPROTO_VRRP],
    ]
    .concat();
    let c = checksum(&[&pseudo, &frame[vrrp..end]]);
    frame[vrrp + 6..vrrp + 8].copy_from_slice(&c.to_be_bytes());
}

/// An untagged advert frame with an IPv4 Record Route option (one empty slot, then a NOP), the
/// option a kernel rewrites on delivery.
pub fn with_record_route(frame: &[u8]) -> Vec<u8> {
    let mut f = frame[..IP + 20].to_vec();
    f.extend([7, 7, 4, 0, 0, 0, 0, 1]);
    f.extend(&frame[IP + 20..]);
    f[IP] += 2;
    let total = (ip_total_len(&f) + 8) as u16;
    f[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
    reseal(&mut f);
    f
}

/// An untagged advert frame (no IP options) as two IPv4 fragments: the first 8 bytes of the
/// VRRP message, then the rest.
pub fn fragmented(frame: &[u8]) -> [Vec<u8>; 2] {
    let payload = &frame[IP + 20..IP + ip_total_len(frame)];
    let part = |bytes: &[u8], frag: u16| {
        let mut f = frame[..IP + 20].to_vec();
        f.extend(bytes);
        let total = (20 + bytes.len()) as u16;
        f[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
        f[IP + 6..IP + 8].copy_from_slice(&frag.to_be_bytes());
        set_ip_checksum(&mut f);
        f
    };
    // More Fragments, offset 0; then offset 1 (in 8-byte units), the last.
    [part(&payload[..8], 0x2000), part(&payload[8..], 1)]
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
    fn resealed_options_and_fragments_stay_well_formed() {
        let src = (MAC, Ipv4Addr::new(198, 51, 100, 22));
        let f = advert_frame(src, 1, 100, 1, &[Ipv4Addr::new(203, 0, 113, 1)]);
        let mut same = f.clone();
        reseal(&mut same);
        assert_eq!(same, f, "resealing a sound frame changes nothing");

        let rr = with_record_route(&f);
        assert_eq!(
            (rr.len(), rr[14], rr[16..18].to_vec()),
            (54, 0x47, vec![0, 40])
        );
        assert_eq!(checksum(&[&rr[14..42]]), 0);
        assert_eq!(
            rr[42..],
            f[34..],
            "the VRRP message follows the option unchanged"
        );

        let [first, last] = fragmented(&f);
        assert_eq!((first[20], last[20], last[21]), (0x20, 0, 1));
        assert_eq!([&first[34..], &last[34..]].concat(), f[34..]);
        assert_eq!(checksum(&[&first[14..34]]), 0);
        assert_eq!(checksum(&[&last[14..34]]), 0);
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
