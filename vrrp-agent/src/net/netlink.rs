//! The route-netlink connection shared by interface lookup and VIP changes.

use std::io;
use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

/// A handle to one rtnetlink connection; cheap to clone, all clones share the connection.
#[derive(Clone, Debug)]
pub struct Netlink {
    handle: Handle,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open a netlink socket: {0}")]
pub struct NetlinkError(#[source] io::Error);

impl Netlink {
    /// Opens a connection in the calling thread's network namespace and spawns its driver task on
    /// the current tokio runtime (it ends when the last clone is dropped).
    pub fn connect() -> Result<Self, NetlinkError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError)?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The IPv4 or IPv6 (`v6`) addresses of interface `index`, in the kernel's order
    /// (primaries first).
    pub(super) async fn addresses(&self, index: u32, v6: bool) -> io::Result<Vec<AddressMessage>> {
        let mut request = self.handle.address().get().set_link_index_filter(index);
        // Asks the kernel for one family; the index filter runs here (dumps cannot filter by it).
        request.message_mut().header.family = family(v6);
        request.execute().try_collect().await.map_err(to_io)
    }
}

pub(super) fn family(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

/// The local address of an address message: IFA_LOCAL (IFA_ADDRESS is the peer on
/// point-to-point links), or for IPv6, where the kernel sends IFA_LOCAL only with a peer,
/// IFA_ADDRESS.
pub(super) fn local_addr(message: &AddressMessage) -> Option<IpAddr> {
    let attr = |local: bool| {
        message.attributes.iter().find_map(|attr| match attr {
            AddressAttribute::Local(addr) if local => Some(*addr),
            AddressAttribute::Address(addr) if !local => Some(*addr),
            _ => None,
        })
    };
    match message.header.family {
        AddressFamily::Inet => attr(true),
        AddressFamily::Inet6 => attr(true).or_else(|| attr(false)),
        _ => None,
    }
}

/// The errno of a netlink NACK, so callers can match EEXIST and friends; anything else (a
/// malformed reply) becomes `ErrorKind::Other`.
pub(super) fn to_io(err: rtnetlink::Error) -> io::Error {
    match err {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => io::Error::other(other),
    }
}
