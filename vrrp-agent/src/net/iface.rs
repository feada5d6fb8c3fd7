//! What the agent needs to know about the interface VRRP runs on.

use std::io;
use std::net::Ipv4Addr;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo};

use super::netlink::{local_ipv4, to_io};
use super::{hint, Netlink};

/// Longest interface name the kernel accepts (IFNAMSIZ − 1).
pub(super) const IFNAME_MAX: usize = 15;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    /// The advert source: keepalived sends from the interface's primary address.
    pub primary: Ipv4Addr,
    /// A veth device: XDP runs in SKB mode there unless driver mode is asked for.
    pub veth: bool,
}

/// What the kernel says about a link, by name.
pub struct Link {
    pub index: u32,
    pub mac: [u8; 6],
    pub veth: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IfaceError {
    #[error("interface name {0:?} is invalid: names are 1 to 15 bytes")]
    InvalidName(String),
    #[error("interface {0:?} does not exist: check the name in the configuration (`ip link` lists them)")]
    NotFound(String),
    #[error("interface {0:?} has no Ethernet MAC address: VRRP needs an Ethernet-like interface")]
    NoMac(String),
    #[error(
        "interface {0:?} has no IPv4 address besides the VIPs: add one (adverts are sent from it)"
    )]
    NoIpv4(String),
    #[error("cannot query interface {name:?} over netlink: {source}{}", hint(.source, "CAP_NET_ADMIN"))]
    Netlink { name: String, source: io::Error },
}

impl Interface {
    /// Looks up `name`: index, MAC, and the first IPv4 address not in `vips` (a VIP left by a
    /// crashed run, or owned by this router, must not become the advert source).
    pub async fn lookup(nl: &Netlink, name: &str, vips: &[Ipv4Addr]) -> Result<Self, IfaceError> {
        let Link { index, mac, veth } = Self::link(nl, name).await?;
        let primary = nl
            .ipv4_addresses(index)
            .await
            .map_err(|source| IfaceError::Netlink {
                name: name.to_owned(),
                source,
            })?
            .iter()
            .filter_map(local_ipv4)
            .find(|addr| !vips.contains(addr))
            .ok_or_else(|| IfaceError::NoIpv4(name.to_owned()))?;
        Ok(Self {
            name: name.to_owned(),
            index,
            mac,
            primary,
            veth,
        })
    }

    /// Index, MAC and kind of `name`, which needs no address (a VIP's `dev`).
    pub async fn link(nl: &Netlink, name: &str) -> Result<Link, IfaceError> {
        if name.is_empty() || name.len() > IFNAME_MAX {
            return Err(IfaceError::InvalidName(name.to_owned()));
        }
        let netlink_error = |source| IfaceError::Netlink {
            name: name.to_owned(),
            source,
        };
        let link = nl
            .handle()
            .link()
            .get()
            .match_name(name)
            .execute()
            .try_next()
            .await
            .map_err(to_io)
            .map_err(|err| match err.raw_os_error() {
                Some(libc::ENODEV) => IfaceError::NotFound(name.to_owned()),
                _ => netlink_error(err),
            })?
            .ok_or_else(|| IfaceError::NotFound(name.to_owned()))?;
        let index = link.header.index;
        let mac = link
            .attributes
            .iter()
            .find_map(|attr| match attr {
                LinkAttribute::Address(mac) => <[u8; 6]>::try_from(mac.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| IfaceError::NoMac(name.to_owned()))?;
        let veth = link.attributes.iter().any(|attr| match attr {
            LinkAttribute::LinkInfo(info) => info.contains(&LinkInfo::Kind(InfoKind::Veth)),
            _ => false,
        });
        Ok(Link { index, mac, veth })
    }
}
