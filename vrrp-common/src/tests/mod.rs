//! Tests against keepalived 2.2.7's own packets (tests/vectors, a capture from a real
//! keepalived pair) and mutations of them.

mod check;
mod decode;
mod encode;
mod vectors;
mod vectors_v6;

use std::fs::File;
use std::vec::Vec;

use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;

use crate::checksum::Checksum;
use crate::wire::{header_at, EthHdr, ETH_HDR_LEN, ETH_P_IP, IPV4_HDR_LEN};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/keepalived-2.2.7"
);

/// Every Ethernet frame of the capture, in order.
fn frames() -> Vec<Vec<u8>> {
    frames_of(VECTORS)
}

/// Every Ethernet frame of the capture at `path` (without `.pcap`), in order.
fn frames_of(path: &str) -> Vec<Vec<u8>> {
    let file = File::open(std::format!("{path}.pcap")).expect("open vector pcap");
    let mut reader = PcapReader::new(file).expect("read pcap header");
    assert_eq!(reader.header().datalink, DataLink::ETHERNET);
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        frames.push(packet.expect("read pcap packet").data.into_owned());
    }
    frames
}

/// The IPv4 packets (Ethernet header stripped) of the capture, in order.
fn ipv4_packets() -> Vec<Vec<u8>> {
    frames()
        .into_iter()
        .filter(|f| header_at::<EthHdr>(f, 0).unwrap().ethertype() == ETH_P_IP)
        .map(|f| f[ETH_HDR_LEN..].to_vec())
        .collect()
}

/// First v2 advert in the capture: 192.0.2.1, vrid 51, prio 150, 1 s, password "s3cr3t", id 1.
fn good_v2() -> Vec<u8> {
    ipv4_packets().swap_remove(0)
}

/// First v3 advert in the capture: 192.0.2.1, vrid 51, prio 150, 10 cs, id 1, checksum 0xd3fd
/// (with pseudo-header).
fn good_v3() -> Vec<u8> {
    ipv4_packets()
        .into_iter()
        .find(|p| p[IPV4_HDR_LEN] >> 4 == 3)
        .unwrap()
}

/// Recomputes the IPv4 header checksum after a mutation (header without options).
fn fix_ip_checksum(packet: &mut [u8]) {
    packet[10..12].fill(0);
    let sum = Checksum::new().update(&packet[..IPV4_HDR_LEN]).finish();
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// Recomputes the VRRP checksum over the message only (v2 rule) after a mutation.
fn fix_vrrp_checksum(packet: &mut [u8]) {
    let vrrp = &mut packet[IPV4_HDR_LEN..];
    vrrp[6..8].fill(0);
    let sum = Checksum::new().update(vrrp).finish();
    vrrp[6..8].copy_from_slice(&sum.to_be_bytes());
}
