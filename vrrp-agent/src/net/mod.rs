//! The agent's I/O with the network, kept thin so each piece can be swapped or stubbed: interfaces
//! by name and their changes, and VIPs, over rtnetlink; adverts over raw IPv4 and IPv6 sockets;
//! gratuitous ARP and Neighbor Advertisements over a packet socket; the `no_accept` firewall
//! rule through `nft`. Packet formats live in `vrrp-common`: no
//! header is laid out here, frames come from its encoders.
//!
//! The sockets and the netlink connection belong to the network namespace of the thread that
//! creates them, and must be created inside a tokio runtime (they register with its reactor).

pub mod advert;
pub mod announce;
pub mod firewall;
pub mod link;
pub mod liveness;
pub mod netlink;
pub mod vip;

#[cfg(test)]
mod tests;

use std::io;

use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub use advert::{AdvertReceiver, AdvertSender};
pub use announce::Announcer;
pub use firewall::{Firewall, FirewallError};
pub use link::{source_address, Change, Link, LinkError, Links, Watch, Watched};
pub use netlink::{Netlink, NetlinkError};
pub use vip::{VipError, Vips};

/// A socket operation that failed, with the step, the interface and a hint at the fix.
#[derive(Debug, thiserror::Error)]
#[error("{action} on {ifname}: {source}{}", hint(.source, "CAP_NET_RAW"))]
pub struct SocketError {
    /// What was attempted, e.g. "cannot open a raw IPv4 socket".
    pub action: &'static str,
    pub ifname: String,
    pub source: io::Error,
}

impl SocketError {
    fn new(action: &'static str, ifname: &str, source: io::Error) -> Self {
        Self {
            action,
            ifname: ifname.to_owned(),
            source,
        }
    }
}

/// Registers a non-blocking socket with the current runtime's reactor. (`AsyncFd::new` and
/// `with_interest` are deprecated in tokio 1.54 for not tying the descriptor's lifetime.)
fn register(socket: Socket, interest: Interest) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: a Socket owns its descriptor, which stays open and the same until the AsyncFd
    // drops the Socket.
    unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(io::Error::from)
}

/// What to do about the errors an operator can fix; `capability` is the one the operation needs.
fn hint(err: &io::Error, capability: &str) -> String {
    match err.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => format!(": run as root or give the agent {capability}"),
        Some(libc::ENODEV) => ": the interface is gone; check `ip link`".to_owned(),
        Some(libc::ENETDOWN) => ": the interface is down; bring it up".to_owned(),
        Some(libc::ENOBUFS | libc::EAGAIN) => ": the interface's transmit queue is full".to_owned(),
        _ => String::new(),
    }
}
