//! The VRRP wire format, defined once: header layouts, constants, the advert codec with one typed
//! error per RFC receive check, and the BPF map types. `no_std` so the XDP program and the agent
//! share it.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod advert;
pub mod arp;
pub mod checksum;
pub mod error;
pub mod liveness;
pub mod maps;
pub mod ndisc;
pub mod wire;

#[cfg(test)]
mod tests;

pub use advert::{
    decode, decode_ipv4, decode_ipv4_fields, decode_ipv6, decode_ipv6_fields, encode, AddrList,
    Addrs, Advert, AdvertSpec, Auth, ChecksumForm, Expect,
};
pub use arp::encode_garp;
pub use error::{DecodeError, EncodeError};
pub use ndisc::encode_unsolicited_na;

/// VRRP protocol version spoken by an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: advert interval in whole seconds, optional simple-password authentication.
    V2,
    /// RFC 9568: advert interval in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The number in the version field.
    pub const fn number(self) -> u8 {
        match self {
            Self::V2 => wire::VRRP_VERSION_2,
            Self::V3 => wire::VRRP_VERSION_3,
        }
    }
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}
