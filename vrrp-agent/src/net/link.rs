//! Interfaces by name, and one netlink watch for their changes and for address changes.
//!
//! The agent follows interfaces by name, as keepalived does: an interface that is deleted and
//! created again (a container restart, a driver reload) is the same interface with a new index.
//! "Usable" is keepalived's rule: IFF_UP and IFF_RUNNING both set. The kernel reports IFF_RUNNING
//! while the operational state is UP, or UNKNOWN for devices that report no carrier (`lo`,
//! dummy), so a lost carrier (cable out, veth peer down) counts as down just as `ip link set
//! down` does.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use futures::channel::mpsc::UnboundedReceiver;
use futures::{StreamExt, TryStreamExt};
use rtnetlink::constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::address::{AddressHeaderFlags, AddressMessage};
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::Handle;

use super::netlink::{local_addr, to_io};
use super::{hint, Netlink};

/// An interface as the agent needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    /// `None` for interfaces without an Ethernet-like address (VRRP cannot run there).
    pub mac: Option<[u8; 6]>,
    /// A veth device: XDP runs in SKB mode there unless driver mode is asked for.
    pub veth: bool,
    /// keepalived's rule: administratively up and operationally up (or without carrier).
    pub up: bool,
}

/// The interfaces of the network namespace, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links(BTreeMap<String, Link>);

/// Something that changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Interface `name` is now `link`, or gone (`None`).
    Link { name: String, link: Option<Link> },
    /// An address appeared on, changed on (an IPv6 address done with duplicate address
    /// detection), or went from, interface `index`.
    Address {
        index: u32,
        addr: IpAddr,
        added: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot subscribe to link and address notifications: {source}{}", subscribe_hint(.source))]
    Subscribe { source: io::Error },
    #[error("cannot list the interfaces over netlink: {source}{}", hint(.source, "CAP_NET_ADMIN"))]
    Query { source: io::Error },
    #[error(
        "the netlink socket watching interfaces closed, so link and address changes are no longer \
         seen: restart the agent (the log of the netlink-proto crate says why)"
    )]
    Closed,
}

fn subscribe_hint(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE) => {
            ": too many open files; raise the agent's limit (`ulimit -n`, LimitNOFILE=)".to_owned()
        }
        Some(libc::EPERM | libc::EACCES) => {
            ": a security policy (seccomp, SELinux, AppArmor) forbids netlink sockets; allow \
             AF_NETLINK for the agent"
                .to_owned()
        }
        _ => String::new(),
    }
}

impl Links {
    /// Every interface of the namespace now.
    pub async fn query(nl: &Netlink) -> Result<Self, LinkError> {
        dump(nl.handle()).await
    }

    pub fn get(&self, name: &str) -> Option<&Link> {
        self.0.get(name)
    }

    /// Records that `name` is now `link` (or gone); returns what changed, by name: also an
    /// interface that had this index under another name (a rename) is gone.
    pub fn update(&mut self, name: &str, link: Option<Link>) -> Vec<(String, Option<Link>)> {
        let mut changes = Vec::new();
        if let Some(new) = &link {
            let renamed: Vec<String> = self
                .0
                .iter()
                .filter(|(n, l)| *n != name && l.index == new.index)
                .map(|(n, _)| n.clone())
                .collect();
            for old in renamed {
                self.0.remove(&old);
                changes.push((old, None));
            }
        }
        let before = match &link {
            Some(l) => self.0.insert(name.to_owned(), l.clone()),
            None => self.0.remove(name),
        };
        if before != link {
            changes.push((name.to_owned(), link));
        }
        changes
    }

    /// Takes `now` as the table; returns every name whose link differs.
    pub fn replace(&mut self, now: Links) -> Vec<(String, Option<Link>)> {
        let old = std::mem::replace(self, now);
        let gone = old
            .0
            .keys()
            .filter(|n| !self.0.contains_key(*n))
            .map(|n| (n.clone(), None));
        let changed = self
            .0
            .iter()
            .filter(|(n, l)| old.0.get(*n) != Some(l))
            .map(|(n, l)| (n.clone(), Some(l.clone())));
        gone.chain(changed).collect()
    }
}

impl FromIterator<(String, Link)> for Links {
    fn from_iter<I: IntoIterator<Item = (String, Link)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// One netlink socket subscribed to link and address notifications (RTMGRP_LINK,
/// RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR), in the network namespace of the thread that
/// creates it.
pub struct Watch {
    /// For the dump after notifications were lost.
    handle: Handle,
    notifications: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
}

/// What the watch reports.
#[derive(Debug)]
pub enum Watched {
    Change(Change),
    /// The kernel dropped notifications (socket buffer overrun): the whole table, queried again.
    Resync(Links),
}

impl Watch {
    /// Subscribes; call [`Links::query`] after this, so no change between the two is missed.
    /// Must run inside a tokio runtime (the connection's driver task is spawned on it).
    pub fn new() -> Result<Self, LinkError> {
        let subscribe = |source| LinkError::Subscribe { source };
        let (mut connection, handle, notifications) =
            rtnetlink::new_connection().map_err(subscribe)?;
        connection
            .socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(
                0,
                RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
            ))
            .map_err(subscribe)?;
        tokio::spawn(connection);
        Ok(Self {
            handle,
            notifications,
        })
    }

    /// The next change. Cancel-safe.
    pub async fn next(&mut self) -> Result<Watched, LinkError> {
        loop {
            let (message, _) = self.notifications.next().await.ok_or(LinkError::Closed)?;
            match observe(&message.payload) {
                Some(Observed::Change(change)) => return Ok(Watched::Change(change)),
                Some(Observed::Lost) => return Ok(Watched::Resync(dump(&self.handle).await?)),
                None => {}
            }
        }
    }
}

async fn dump(handle: &Handle) -> Result<Links, LinkError> {
    let messages: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| LinkError::Query { source: to_io(e) })?;
    Ok(messages.iter().filter_map(parse).collect())
}

/// keepalived's rule: administratively up and operationally up (or without carrier reporting).
fn usable(flags: LinkFlags) -> bool {
    flags.contains(LinkFlags::Up | LinkFlags::Running)
}

/// The name and state of a link message.
fn parse(message: &LinkMessage) -> Option<(String, Link)> {
    let attrs = &message.attributes;
    let name = attrs.iter().find_map(|attr| match attr {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })?;
    let mac = attrs.iter().find_map(|attr| match attr {
        LinkAttribute::Address(mac) => <[u8; 6]>::try_from(mac.as_slice()).ok(),
        _ => None,
    });
    let veth = attrs.iter().any(|attr| match attr {
        LinkAttribute::LinkInfo(info) => info.contains(&LinkInfo::Kind(InfoKind::Veth)),
        _ => false,
    });
    let link = Link {
        index: message.header.index,
        mac,
        veth,
        up: usable(message.header.flags),
    };
    Some((name, link))
}

#[derive(Debug, PartialEq, Eq)]
enum Observed {
    Change(Change),
    /// Notifications were dropped: the state must be queried.
    Lost,
}

fn observe(payload: &NetlinkPayload<RouteNetlinkMessage>) -> Option<Observed> {
    // AF_BRIDGE messages are about bridge ports: an RTM_DELLINK of those only means the interface
    // left its bridge. The AF_UNSPEC ones are about the interface itself.
    let own = |link: &LinkMessage| link.header.interface_family == AddressFamily::Unspec;
    let change = match payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) if own(link) => {
            let (name, link) = parse(link)?;
            Change::Link {
                name,
                link: Some(link),
            }
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) if own(link) => {
            Change::Link {
                name: parse(link)?.0,
                link: None,
            }
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => address(a, true)?,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(a)) => address(a, false)?,
        NetlinkPayload::Overrun(_) => return Some(Observed::Lost),
        _ => return None,
    };
    Some(Observed::Change(change))
}

fn address(message: &AddressMessage, added: bool) -> Option<Change> {
    Some(Change::Address {
        index: message.header.index,
        addr: local_addr(message)?,
        added,
    })
}

/// The address adverts go out from, on interface `index`, when none is configured: for IPv4
/// the first address that is not one of `vips` (keepalived sends from the interface's primary
/// address, and a VIP left by a crashed run, or owned by this router, must not become the
/// source); for IPv6 (`v6`) the first link-local address that is not a VIP (fe80::1 may be one)
/// and is done with duplicate address detection (RFC 9568 §7.2: a tentative address cannot be
/// a source yet).
pub async fn source_address(
    nl: &Netlink,
    index: u32,
    v6: bool,
    vips: &[IpAddr],
) -> io::Result<Option<IpAddr>> {
    let messages = nl.addresses(index, v6).await?;
    let usable = |m: &&AddressMessage| {
        let unusable = AddressHeaderFlags::Tentative | AddressHeaderFlags::Dadfailed;
        !m.header.flags.intersects(unusable)
    };
    Ok(messages
        .iter()
        .filter(usable)
        .filter_map(local_addr)
        .filter(|addr| match addr {
            IpAddr::V6(a) => a.is_unicast_link_local(),
            IpAddr::V4(_) => true,
        })
        .find(|addr| !vips.contains(addr)))
}

#[cfg(test)]
mod tests;
