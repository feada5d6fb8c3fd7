//! Gratuitous ARP out of a packet socket, so the frame leaves exactly as vrrp-common builds it.

use std::net::Ipv4Addr;

use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use vrrp_common::wire::{ETH_ALEN, ETH_BROADCAST, ETH_P_ARP, GARP_FRAME_LEN};

use super::{register, SocketError};

/// Announces VIPs on one interface from its MAC address.
#[derive(Debug)]
pub struct GarpSender {
    fd: AsyncFd<Socket>,
    /// Where every frame goes: the interface, as an ARP frame to the broadcast address.
    to: SockAddr,
    mac: [u8; ETH_ALEN],
    ifname: String,
}

impl GarpSender {
    pub fn new(ifname: &str, ifindex: u32, mac: [u8; ETH_ALEN]) -> Result<Self, SocketError> {
        let error = |action| move |err| SocketError::new(action, ifname, err);
        // Protocol 0 and no bind: the kernel queues no received frames on a send-only socket;
        // each send names the interface and ETH_P_ARP instead.
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(error("cannot open a packet socket"))?;
        socket
            .set_nonblocking(true)
            .map_err(error("cannot make the packet socket non-blocking"))?;
        let fd = register(socket, Interest::WRITABLE)
            .map_err(error("cannot register the packet socket"))?;
        let to = link_addr(ifindex, ETH_P_ARP, ETH_BROADCAST)
            .map_err(error("cannot address the interface"))?;
        Ok(Self {
            fd,
            to,
            mac,
            ifname: ifname.to_owned(),
        })
    }

    /// Sends one gratuitous ARP for `vip` (repeats and spacing are the caller's policy).
    pub async fn announce(&self, vip: Ipv4Addr) -> Result<(), SocketError> {
        let mut frame = [0; GARP_FRAME_LEN];
        // The buffer is exactly the frame's size, so encoding cannot fail.
        let len = vrrp_common::encode_garp(self.mac, vip, &mut frame).unwrap_or(GARP_FRAME_LEN);
        self.fd
            .async_io(Interest::WRITABLE, |socket| {
                socket.send_to(&frame[..len], &self.to)
            })
            .await
            .map(drop)
            .map_err(|err| SocketError::new("cannot send a gratuitous ARP", &self.ifname, err))
    }
}

/// A `sockaddr_ll` for interface `ifindex` and EtherType `protocol`.
pub(super) fn link_addr(
    ifindex: u32,
    protocol: u16,
    dst: [u8; ETH_ALEN],
) -> std::io::Result<SockAddr> {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is a sockaddr type of this platform and fits in the storage.
    let sll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    sll.sll_family = libc::AF_PACKET as libc::sa_family_t;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = i32::try_from(ifindex).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    sll.sll_halen = ETH_ALEN as u8;
    sll.sll_addr[..ETH_ALEN].copy_from_slice(&dst);
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the storage holds an initialised sockaddr_ll of that length.
    Ok(unsafe { SockAddr::new(storage, len) })
}
