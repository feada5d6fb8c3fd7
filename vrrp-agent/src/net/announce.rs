//! Announcing a VIP after a takeover, out of a packet socket so the frame leaves exactly as
//! vrrp-common builds it: gratuitous ARP for IPv4, an unsolicited Neighbor Advertisement for
//! IPv6 (keepalived's way too: the NA leaves even while the kernel has not finished with the
//! address, and it carries the interface's MAC).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use vrrp_common::wire::{
    ALL_NODES_MAC_V6, ETH_ALEN, ETH_BROADCAST, ETH_P_ARP, ETH_P_IPV6, GARP_FRAME_LEN, NA_FRAME_LEN,
};

use super::{register, SocketError};

/// Announces VIPs on one interface from its MAC address.
#[derive(Debug)]
pub struct Announcer {
    fd: AsyncFd<Socket>,
    /// Where the frames go: the interface, as ARP to the broadcast address, or as IPv6 to all
    /// nodes.
    arp_to: SockAddr,
    na_to: SockAddr,
    mac: [u8; ETH_ALEN],
    ifname: String,
}

impl Announcer {
    pub fn new(ifname: &str, ifindex: u32, mac: [u8; ETH_ALEN]) -> Result<Self, SocketError> {
        let error = |action| move |err| SocketError::new(action, ifname, err);
        // Protocol 0 and no bind: the kernel queues no received frames on a send-only socket;
        // each send names the interface and the EtherType instead.
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(error("cannot open a packet socket"))?;
        socket
            .set_nonblocking(true)
            .map_err(error("cannot make the packet socket non-blocking"))?;
        let fd = register(socket, Interest::WRITABLE)
            .map_err(error("cannot register the packet socket"))?;
        let address = error("cannot address the interface");
        let arp_to = link_addr(ifindex, ETH_P_ARP, ETH_BROADCAST).map_err(address)?;
        let address = error("cannot address the interface");
        let na_to = link_addr(ifindex, ETH_P_IPV6, ALL_NODES_MAC_V6).map_err(address)?;
        Ok(Self {
            fd,
            arp_to,
            na_to,
            mac,
            ifname: ifname.to_owned(),
        })
    }

    /// Sends one announcement for `vip`; an NA with the Router flag as `router` says (repeats,
    /// spacing and [`Announcer::forwarding`] are the caller's policy).
    pub async fn announce(&self, vip: IpAddr, router: bool) -> Result<(), SocketError> {
        match vip {
            IpAddr::V4(vip) => self.garp(vip).await,
            IpAddr::V6(vip) => self.na(vip, router).await,
        }
    }

    /// Whether the interface forwards IPv6 (`net.ipv6.conf.IFNAME.forwarding`; unreadable, with
    /// IPv6 off, counts as not): an NA then says "router", keepalived's rule, since a host that
    /// reads "not a router" drops the sender from its default routers (RFC 4861 §7.2.5).
    pub fn forwarding(&self) -> bool {
        let path = format!("/proc/sys/net/ipv6/conf/{}/forwarding", self.ifname);
        std::fs::read_to_string(path).is_ok_and(|v| v.trim() != "0")
    }

    async fn garp(&self, vip: Ipv4Addr) -> Result<(), SocketError> {
        let mut frame = [0; GARP_FRAME_LEN];
        // The buffer is exactly the frame's size, so encoding cannot fail.
        let len = vrrp_common::encode_garp(self.mac, vip, &mut frame).unwrap_or(GARP_FRAME_LEN);
        self.send(&frame[..len], &self.arp_to, "cannot send a gratuitous ARP")
            .await
    }

    async fn na(&self, vip: Ipv6Addr, router: bool) -> Result<(), SocketError> {
        let mut frame = [0; NA_FRAME_LEN];
        let len = vrrp_common::encode_unsolicited_na(self.mac, vip, router, &mut frame)
            .unwrap_or(NA_FRAME_LEN);
        self.send(
            &frame[..len],
            &self.na_to,
            "cannot send a neighbour advertisement",
        )
        .await
    }

    async fn send(
        &self,
        frame: &[u8],
        to: &SockAddr,
        action: &'static str,
    ) -> Result<(), SocketError> {
        self.fd
            .async_io(Interest::WRITABLE, |socket| socket.send_to(frame, to))
            .await
            .map(drop)
            .map_err(|err| SocketError::new(action, &self.ifname, err))
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
