//! Constants and header layouts of the frames VRRP sends and watches.
//!
//! Every header is `#[repr(C)]` with only `u8` / `[u8; N]` fields: alignment 1, no padding, so the
//! XDP program can read one at any offset of a packet and the agent can build one with a struct
//! literal and write it with [`bytemuck::bytes_of`]. Multi-byte fields are big-endian on the wire;
//! the accessors convert.

use core::mem::size_of;
use core::net::{Ipv4Addr, Ipv6Addr};

use bytemuck::{Pod, Zeroable};

pub const ETH_ALEN: usize = 6;
pub const ETH_BROADCAST: [u8; ETH_ALEN] = [0xff; ETH_ALEN];
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const ETH_P_IPV6: u16 = 0x86dd;

pub const IPPROTO_VRRP: u8 = 112;
/// RFC 9568 §5.1.1.2: adverts go to this group and must arrive with TTL 255.
pub const VRRP_MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// 01:00:5e + low 23 bits of 224.0.0.18 (RFC 1112 §6.4).
pub const VRRP_MULTICAST_MAC_V4: [u8; ETH_ALEN] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
/// RFC 9568 §5.1.2.2: the IPv6 group, link-local scope.
pub const VRRP_MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// 33:33 + low 32 bits of ff02::12 (RFC 2464 §7).
pub const VRRP_MULTICAST_MAC_V6: [u8; ETH_ALEN] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x12];
/// Where unsolicited Neighbor Advertisements go (RFC 4861 §7.2.6): all nodes.
pub const ALL_NODES_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_NODES_MAC_V6: [u8; ETH_ALEN] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];
/// TTL (IPv4) and Hop Limit (IPv6) of every advert; also of every Neighbor Advertisement.
pub const VRRP_TTL: u8 = 255;
/// DSCP CS6 (network control), what keepalived sets.
pub const VRRP_TOS: u8 = 0xc0;

pub const VRRP_VERSION_2: u8 = 2;
pub const VRRP_VERSION_3: u8 = 3;
pub const VRRP_TYPE_ADVERT: u8 = 1;
pub const VRRP_AUTH_NONE: u8 = 0;
pub const VRRP_AUTH_PASS: u8 = 1;
/// RFC 2338 IP Authentication Header; removed by RFC 3768 and not supported.
pub const VRRP_AUTH_AH: u8 = 2;
/// v2 only: the authentication data that follows the addresses.
pub const VRRP_AUTH_DATA_LEN: usize = 8;
/// The Count field is one byte.
pub const MAX_VRRP_ADDRS: usize = 255;

pub const ETH_HDR_LEN: usize = size_of::<EthHdr>();
pub const VLAN_HDR_LEN: usize = size_of::<VlanHdr>();
pub const IPV4_HDR_LEN: usize = size_of::<Ipv4Hdr>();
pub const IPV6_HDR_LEN: usize = size_of::<Ipv6Hdr>();
pub const VRRP_HDR_LEN: usize = size_of::<VrrpHdr>();
pub const ARP_IPV4_LEN: usize = size_of::<ArpIpv4>();
/// Largest advert the agent ever sends (v2, [`MAX_VRRP_ADDRS`] addresses, no IP options).
pub const MAX_ADVERT_LEN_V4: usize =
    IPV4_HDR_LEN + VRRP_HDR_LEN + 4 * MAX_VRRP_ADDRS + VRRP_AUTH_DATA_LEN;
/// Largest advert over IPv6 ([`MAX_VRRP_ADDRS`] addresses; far more than an MTU carries).
pub const MAX_ADVERT_LEN_V6: usize = IPV6_HDR_LEN + VRRP_HDR_LEN + 16 * MAX_VRRP_ADDRS;
/// Room for any advert either family can carry.
pub const MAX_ADVERT_LEN: usize = if MAX_ADVERT_LEN_V4 > MAX_ADVERT_LEN_V6 {
    MAX_ADVERT_LEN_V4
} else {
    MAX_ADVERT_LEN_V6
};
/// An unsolicited Neighbor Advertisement frame: Ethernet, IPv6, NA with its link-layer option.
pub const NA_FRAME_LEN: usize = ETH_HDR_LEN + IPV6_HDR_LEN + size_of::<NeighborAdvert>();
/// A gratuitous ARP frame: Ethernet header + ARP payload, no padding (the NIC pads to 60).
pub const GARP_FRAME_LEN: usize = ETH_HDR_LEN + ARP_IPV4_LEN;

pub const ARP_HRD_ETHER: u16 = 1;
pub const ARP_OP_REQUEST: u16 = 1;
pub const ARP_OP_REPLY: u16 = 2;

pub const IPPROTO_ICMPV6: u8 = 58;
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// RFC 4861 §4.4 NA flags (first byte of the flags word): Router and Override (Solicited, 0x40,
/// is never set in an unsolicited one).
pub const NA_FLAG_ROUTER: u8 = 0x80;
pub const NA_FLAG_OVERRIDE: u8 = 0x20;
/// RFC 4861 §4.6.1: the Target Link-Layer Address option.
pub const ND_OPT_TARGET_LLADDR: u8 = 2;

/// IPv4 flags/fragment-offset word: More Fragments bit and the offset mask.
pub const IPV4_MF: u16 = 0x2000;
pub const IPV4_OFFSET_MASK: u16 = 0x1fff;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct EthHdr {
    pub dst: [u8; ETH_ALEN],
    pub src: [u8; ETH_ALEN],
    pub ethertype: [u8; 2],
}

impl EthHdr {
    pub const fn ethertype(&self) -> u16 {
        u16::from_be_bytes(self.ethertype)
    }
}

/// 802.1Q / 802.1ad tag as it follows the outer ethertype.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct VlanHdr {
    pub tci: [u8; 2],
    /// Ethertype of what follows the tag.
    pub ethertype: [u8; 2],
}

impl VlanHdr {
    pub const fn vid(&self) -> u16 {
        u16::from_be_bytes(self.tci) & 0x0fff
    }

    pub const fn ethertype(&self) -> u16 {
        u16::from_be_bytes(self.ethertype)
    }
}

/// IPv4 header without options; [`Ipv4Hdr::header_len`] tells where the payload starts.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version|  IHL  |  TOS (0xc0)   |          Total Length         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Identification        |Flags|     Fragment Offset     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   TTL (255)   | Protocol (112)|         Header Checksum       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 Source Address (the router's primary)         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |        Destination Address (224.0.0.18, or a unicast peer)    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub total_len: [u8; 2],
    pub id: [u8; 2],
    pub flags_frag: [u8; 2],
    pub ttl: u8,
    pub proto: u8,
    pub checksum: [u8; 2],
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

impl Ipv4Hdr {
    pub const fn version(&self) -> u8 {
        self.version_ihl >> 4
    }

    /// Header length in bytes, options included (IHL × 4).
    pub const fn header_len(&self) -> usize {
        (self.version_ihl & 0x0f) as usize * 4
    }

    pub const fn total_len(&self) -> u16 {
        u16::from_be_bytes(self.total_len)
    }

    pub const fn id(&self) -> u16 {
        u16::from_be_bytes(self.id)
    }

    /// True for any fragment but a whole datagram (MF set or non-zero offset).
    pub const fn is_fragment(&self) -> bool {
        u16::from_be_bytes(self.flags_frag) & (IPV4_MF | IPV4_OFFSET_MASK) != 0
    }

    pub const fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from_octets(self.src)
    }

    pub const fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from_octets(self.dst)
    }
}

/// IPv6 fixed header (RFC 8200 §3); VRRP follows it directly (next header 112).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Traffic Class |           Flow Label                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Payload Length        |  Next Header  |   Hop Limit   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      Source Address (16 bytes; the interface's link-local)    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      Destination Address (16 bytes; ff02::12, or a peer)      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Ipv6Hdr {
    pub vtc_flow: [u8; 4],
    pub payload_len: [u8; 2],
    pub next_hdr: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

impl Ipv6Hdr {
    pub const fn version(&self) -> u8 {
        self.vtc_flow[0] >> 4
    }

    pub const fn traffic_class(&self) -> u8 {
        (self.vtc_flow[0] << 4) | (self.vtc_flow[1] >> 4)
    }

    pub const fn payload_len(&self) -> u16 {
        u16::from_be_bytes(self.payload_len)
    }

    pub const fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from_octets(self.src)
    }

    pub const fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from_octets(self.dst)
    }
}

/// ICMPv6 Neighbor Advertisement (RFC 4861 §4.4) with one Target Link-Layer Address option:
/// what announces an IPv6 VIP, as gratuitous ARP does an IPv4 one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct NeighborAdvert {
    pub icmp_type: u8,
    pub code: u8,
    pub checksum: [u8; 2],
    /// R, S, O in the first byte; the rest reserved.
    pub flags: [u8; 4],
    pub target: [u8; 16],
    pub opt_type: u8,
    /// In units of 8 bytes.
    pub opt_len: u8,
    pub lladdr: [u8; ETH_ALEN],
}

/// The fixed 8 bytes that start every VRRP message (v2 and v3), then the IPvX addresses and,
/// in v2 only, 8 bytes of authentication data.
///
/// ```text
/// VRRPv3 (RFC 9568 §5.1)
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Ver=3 | Type=1| Virtual Rtr ID|   Priority    |Count IPvX Addr|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |(rsvd) |  Max Adver Int (centiseconds) |          Checksum     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      IPvX Address(es)                         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// VRRPv2 (RFC 3768 §5.1): the second word differs, authentication data follows
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Ver=2 | Type=1| Virtual Rtr ID|   Priority    | Count IP Addrs|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Auth Type   |   Adver Int   |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address(es)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (1)                   |
/// |                     Authentication Data (2)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// The checksum covers the VRRP message; v3 over IPv4 as keepalived and FRR send it also covers
/// the IPv4 pseudo-header (both forms are accepted on receive).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct VrrpHdr {
    pub version_type: u8,
    pub vrid: u8,
    pub priority: u8,
    pub count: u8,
    /// v2: `[auth_type, adver_int (s)]`; v3: 4 reserved bits + 12-bit max_adver_int (cs).
    pub interval: [u8; 2],
    pub checksum: [u8; 2],
}

impl VrrpHdr {
    pub const fn version(&self) -> u8 {
        self.version_type >> 4
    }

    pub const fn kind(&self) -> u8 {
        self.version_type & 0x0f
    }

    /// v2 only.
    pub const fn auth_type(&self) -> u8 {
        self.interval[0]
    }

    /// Advert interval in centiseconds, read per the header's own version (0 for others).
    pub const fn interval_cs(&self) -> u16 {
        match self.version() {
            VRRP_VERSION_2 => self.interval[1] as u16 * 100,
            VRRP_VERSION_3 => u16::from_be_bytes(self.interval) & 0x0fff,
            _ => 0,
        }
    }

    pub const fn checksum(&self) -> u16 {
        u16::from_be_bytes(self.checksum)
    }
}

/// ARP payload for Ethernet hardware and IPv4 protocol addresses (RFC 826). A gratuitous ARP
/// (RFC 5227 §3) is a request whose sender and target addresses are both the VIP.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      Hardware Type (1)        |     Protocol Type (0x0800)    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  HW Len (6)   | Proto Len (4) |  Operation (1 req, 2 reply)   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |              Sender Hardware Address (MAC), bytes 0-3         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Sender MAC, bytes 4-5       |  Sender Protocol Addr, 0-1    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Sender Protocol Addr, 2-3    |   Target MAC, bytes 0-1       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |              Target Hardware Address (MAC), bytes 2-5         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  Target Protocol Address (IP)                 |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct ArpIpv4 {
    pub htype: [u8; 2],
    pub ptype: [u8; 2],
    pub hlen: u8,
    pub plen: u8,
    pub oper: [u8; 2],
    pub sha: [u8; ETH_ALEN],
    pub spa: [u8; 4],
    pub tha: [u8; ETH_ALEN],
    pub tpa: [u8; 4],
}

impl ArpIpv4 {
    /// True when the fixed fields say Ethernet/IPv4, i.e. the other fields mean what they say.
    pub const fn is_ether_ipv4(&self) -> bool {
        u16::from_be_bytes(self.htype) == ARP_HRD_ETHER
            && u16::from_be_bytes(self.ptype) == ETH_P_IP
            && self.hlen as usize == ETH_ALEN
            && self.plen == 4
    }

    pub const fn oper(&self) -> u16 {
        u16::from_be_bytes(self.oper)
    }

    pub const fn sender_ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::from_octets(self.spa)
    }

    pub const fn target_ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::from_octets(self.tpa)
    }
}

const _: () = {
    assert!(ETH_HDR_LEN == 14);
    assert!(VLAN_HDR_LEN == 4);
    assert!(IPV4_HDR_LEN == 20);
    assert!(IPV6_HDR_LEN == 40);
    assert!(NA_FRAME_LEN == 86);
    assert!(VRRP_HDR_LEN == 8);
    assert!(ARP_IPV4_LEN == 28);
    assert!(core::mem::align_of::<Ipv4Hdr>() == 1);
};

/// The `T` header at `offset` in `bytes`, or `None` if it does not fit. Never panics.
pub fn header_at<T: Pod>(bytes: &[u8], offset: usize) -> Option<&T> {
    let end = offset.checked_add(size_of::<T>())?;
    bytemuck::try_from_bytes(bytes.get(offset..end)?).ok()
}
