//! Gratuitous ARP, as keepalived announces a VIP after becoming master.

use core::net::Ipv4Addr;

use crate::error::EncodeError;
use crate::wire::{
    ArpIpv4, EthHdr, ARP_HRD_ETHER, ARP_OP_REQUEST, ETH_ALEN, ETH_BROADCAST, ETH_HDR_LEN,
    ETH_P_ARP, ETH_P_IP, GARP_FRAME_LEN,
};

/// Writes the 42-byte Ethernet frame announcing `vip` at `mac` and returns its length: a broadcast
/// ARP request "who-has VIP tell VIP" with target MAC ff:ff:ff:ff:ff:ff, byte for byte what
/// keepalived 2.2.7 sends (a request, not a reply: RFC 5227 §3 prefers it, and old hosts that
/// ignore unsolicited replies still update their cache from a request).
pub fn encode_garp(
    mac: [u8; ETH_ALEN],
    vip: Ipv4Addr,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let too_small = EncodeError::BufferTooSmall {
        need: GARP_FRAME_LEN,
        have: buf.len(),
    };
    let out = buf.get_mut(..GARP_FRAME_LEN).ok_or(too_small)?;
    let (eth_out, arp_out) = out.split_at_mut_checked(ETH_HDR_LEN).ok_or(too_small)?;
    let eth = EthHdr {
        dst: ETH_BROADCAST,
        src: mac,
        ethertype: ETH_P_ARP.to_be_bytes(),
    };
    let arp = ArpIpv4 {
        htype: ARP_HRD_ETHER.to_be_bytes(),
        ptype: ETH_P_IP.to_be_bytes(),
        hlen: ETH_ALEN as u8,
        plen: 4,
        oper: ARP_OP_REQUEST.to_be_bytes(),
        sha: mac,
        spa: vip.octets(),
        tha: ETH_BROADCAST,
        tpa: vip.octets(),
    };
    eth_out.copy_from_slice(bytemuck::bytes_of(&eth));
    arp_out.copy_from_slice(bytemuck::bytes_of(&arp));
    Ok(GARP_FRAME_LEN)
}
