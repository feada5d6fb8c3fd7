//! Unsolicited Neighbor Advertisement, as keepalived announces an IPv6 VIP after becoming master
//! (RFC 9568 §6.4.2; the IPv6 counterpart of [`crate::arp`]).

use core::net::Ipv6Addr;

use crate::checksum::pseudo_header_v6;
use crate::error::EncodeError;
use crate::wire::{
    EthHdr, Ipv6Hdr, NeighborAdvert, ALL_NODES_MAC_V6, ALL_NODES_V6, ETH_ALEN, ETH_HDR_LEN,
    ETH_P_IPV6, ICMPV6_NEIGHBOR_ADVERT, IPPROTO_ICMPV6, IPV6_HDR_LEN, NA_FLAG_OVERRIDE,
    NA_FLAG_ROUTER, NA_FRAME_LEN, ND_OPT_TARGET_LLADDR, VRRP_TTL,
};

/// Writes the 86-byte Ethernet frame announcing `vip` at `mac` and returns its length: from the
/// VIP to all nodes (ff02::1), hop limit 255, Override set so neighbours replace the old
/// master's MAC, Solicited clear, Router as `router` says (keepalived sets it when the interface
/// forwards: RFC 4861 §7.2.5, a host that sees R clear drops the sender from its default
/// routers), with the Target Link-Layer Address option. Byte for byte what keepalived 2.2.7
/// sends.
pub fn encode_unsolicited_na(
    mac: [u8; ETH_ALEN],
    vip: Ipv6Addr,
    router: bool,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let too_small = EncodeError::BufferTooSmall {
        need: NA_FRAME_LEN,
        have: buf.len(),
    };
    let out = buf.get_mut(..NA_FRAME_LEN).ok_or(too_small)?;
    let (eth_out, rest) = out.split_at_mut(ETH_HDR_LEN);
    let (ip_out, na_out) = rest.split_at_mut(IPV6_HDR_LEN);
    let eth = EthHdr {
        dst: ALL_NODES_MAC_V6,
        src: mac,
        ethertype: ETH_P_IPV6.to_be_bytes(),
    };
    let ip = Ipv6Hdr {
        vtc_flow: [0x60, 0, 0, 0],
        payload_len: (na_out.len() as u16).to_be_bytes(),
        next_hdr: IPPROTO_ICMPV6,
        hop_limit: VRRP_TTL,
        src: vip.octets(),
        dst: ALL_NODES_V6.octets(),
    };
    let flags = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    let mut na = NeighborAdvert {
        icmp_type: ICMPV6_NEIGHBOR_ADVERT,
        code: 0,
        checksum: [0; 2],
        flags: [flags, 0, 0, 0],
        target: vip.octets(),
        opt_type: ND_OPT_TARGET_LLADDR,
        opt_len: 1,
        lladdr: mac,
    };
    na.checksum = pseudo_header_v6(ip.src, ip.dst, na_out.len() as u32, IPPROTO_ICMPV6)
        .update(bytemuck::bytes_of(&na))
        .finish()
        .to_be_bytes();
    eth_out.copy_from_slice(bytemuck::bytes_of(&eth));
    ip_out.copy_from_slice(bytemuck::bytes_of(&ip));
    na_out.copy_from_slice(bytemuck::bytes_of(&na));
    Ok(NA_FRAME_LEN)
}
