//! Why an advert was dropped or could not be built. One variant per RFC check, so the agent can log
//! and count each; messages are short because they end up in logs once per bad packet.

use core::net::IpAddr;

use crate::Version;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    // Structural checks (decode_ipv4).
    #[error("truncated: {have} bytes, need {need}")]
    Truncated { need: usize, have: usize },
    #[error("IP version {0}, expected 4")]
    NotIpv4(u8),
    #[error("IPv4 header length {0}, below 20")]
    IpHeaderLength(usize),
    #[error("bad IPv4 header checksum")]
    IpChecksum,
    #[error("IPv4 options (no VRRP sender adds them)")]
    IpOptions(usize),
    #[error("IPv4 fragment (adverts are never fragmented)")]
    Fragment,
    #[error("IP protocol {0}, expected 112 (VRRP)")]
    NotVrrp(u8),
    #[error("TTL {0}, must be 255 (advert crossed a router?)")]
    Ttl(u8),
    #[error("IP version {0}, expected 6")]
    NotIpv6(u8),
    #[error("IPv6 next header {0}, expected 112 (VRRP; extension headers are not followed)")]
    NextHeader(u8),
    #[error("hop limit {0}, must be 255 (advert crossed a router?)")]
    HopLimit(u8),
    #[error("VRRPv2 over IPv6 (IPv6 carries VRRPv3 only)")]
    V2OverIpv6,
    #[error("VRRP version {0}, expected 2 or 3")]
    Version(u8),
    #[error("VRRP type {0}, expected 1 (advertisement)")]
    Type(u8),
    #[error("address count 0, must be at least 1")]
    NoAddresses,
    #[error("VRRP length {len} bytes, {count} address(es) need {expected}")]
    Length {
        count: u8,
        len: usize,
        expected: usize,
    },
    #[error("advert interval 0")]
    ZeroInterval,
    #[error("bad VRRPv2 checksum {got:#06x}, expected {expected:#06x}")]
    Checksum { got: u16, expected: u16 },
    #[error(
        "bad VRRPv3 checksum {got:#06x}, expected {with_pseudo_header:#06x} \
         (with IPv4 pseudo-header) or {message_only:#06x} (message only)"
    )]
    ChecksumV3 {
        got: u16,
        with_pseudo_header: u16,
        message_only: u16,
    },
    #[error("bad VRRPv3 checksum {got:#06x}, expected {expected:#06x} (with IPv6 pseudo-header)")]
    ChecksumV6 { got: u16, expected: u16 },

    // Per-instance checks (Advert::check).
    #[error("VRID {got}, ours {want}")]
    VridMismatch { got: u8, want: u8 },
    #[error("{got} advert, we run {want}")]
    VersionMismatch { got: Version, want: Version },
    #[error("our own advert looped back (source {0})")]
    OwnAdvert(IpAddr),
    #[error("auth type 2 (IP AH) not supported")]
    AuthAh,
    #[error("auth type {got}, ours {want}")]
    AuthTypeMismatch { got: u8, want: u8 },
    #[error("password mismatch")]
    PasswordMismatch,
    #[error("advert interval {got_cs} cs, ours {want_cs} cs (VRRPv2 requires equal intervals)")]
    IntervalMismatch { got_cs: u16, want_cs: u16 },
    #[error("{got} addresses, we have {want} (check virtual_ipaddress on both routers)")]
    AddressCount { got: u8, want: u8 },
    #[error("our address {0} is not in the advert (check virtual_ipaddress on both routers)")]
    AddressMissing(IpAddr),
}

impl DecodeError {
    /// The receive check that failed, in a few words: what rejects are counted by.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::NotIpv4(_) => "not IPv4",
            Self::IpHeaderLength(_) => "IP header length",
            Self::IpChecksum => "IP checksum",
            Self::IpOptions(_) => "IP options",
            Self::Fragment => "fragment",
            Self::NotVrrp(_) => "not VRRP",
            Self::Ttl(_) => "TTL",
            Self::NotIpv6(_) => "not IPv6",
            Self::NextHeader(_) => "next header",
            Self::HopLimit(_) => "hop limit",
            Self::V2OverIpv6 => "VRRPv2 over IPv6",
            Self::Version(_) => "VRRP version",
            Self::Type(_) => "VRRP type",
            Self::NoAddresses => "no addresses",
            Self::Length { .. } => "length",
            Self::ZeroInterval => "interval 0",
            Self::Checksum { .. } | Self::ChecksumV3 { .. } | Self::ChecksumV6 { .. } => {
                "VRRP checksum"
            }
            Self::VridMismatch { .. } => "VRID",
            Self::VersionMismatch { .. } => "version mismatch",
            Self::OwnAdvert(_) => "own advert",
            Self::AuthAh => "auth AH",
            Self::AuthTypeMismatch { .. } => "auth type",
            Self::PasswordMismatch => "password",
            Self::IntervalMismatch { .. } => "interval mismatch",
            Self::AddressCount { .. } | Self::AddressMissing(_) => "address list",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("no address to advertise")]
    NoAddresses,
    #[error("{0} addresses, at most 255 fit in an advert")]
    TooManyAddresses(usize),
    #[error("interval {interval_cs} cs not encodable in {version} (v2: 1-255 whole seconds, v3: 1-4095 cs)")]
    Interval { version: Version, interval_cs: u16 },
    #[error("the addresses are not all of the source's family")]
    FamilyMismatch,
    #[error("VRRPv2 cannot carry IPv6 addresses (use VRRPv3)")]
    V2OverIpv6,
    #[error("VRRPv3 has no authentication")]
    AuthV3,
    #[error("auth type {0} cannot be sent (only 0 and 1)")]
    UnsupportedAuth(u8),
    #[error("buffer {have} bytes, need {need}")]
    BufferTooSmall { need: usize, have: usize },
}
