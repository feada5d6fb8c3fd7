//! The route-netlink connection shared by interface lookup and VIP changes.

use std::io;

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

    /// The IPv4 addresses of interface `index`, in the kernel's order (primaries first).
    pub(super) async fn ipv4_addresses(&self, index: u32) -> io::Result<Vec<AddressMessage>> {
        let mut request = self.handle.address().get().set_link_index_filter(index);
        // Asks the kernel for IPv4 only; the index filter runs here (dumps cannot filter by it).
        request.message_mut().header.family = AddressFamily::Inet;
        request.execute().try_collect().await.map_err(to_io)
    }
}

/// The local IPv4 address of an address message (IFA_LOCAL; IFA_ADDRESS is the peer on
/// point-to-point links).
pub(super) fn local_ipv4(message: &AddressMessage) -> Option<std::net::Ipv4Addr> {
    message.attributes.iter().find_map(|attr| match attr {
        AddressAttribute::Local(std::net::IpAddr::V4(addr)) => Some(*addr),
        _ => None,
    })
}

/// The errno of a netlink NACK, so callers can match EEXIST and friends; anything else (a
/// malformed reply) becomes `ErrorKind::Other`.
pub(super) fn to_io(err: rtnetlink::Error) -> io::Error {
    match err {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => io::Error::other(other),
    }
}
