//! Raw IPv4 sockets that send and receive whole VRRP packets (IP header included).

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddrV4;
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;

use socket2::{
    Domain, InterfaceIndexOrAddress, MaybeUninitSlice, MsgHdrMut, Protocol, SockAddr, Socket, Type,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use vrrp_common::wire::{header_at, Ipv4Hdr, IPPROTO_VRRP, VRRP_MULTICAST_V4};

use super::{register, SocketError};

/// Sends adverts built by `vrrp_common::encode_ipv4`. IPPROTO_RAW implies IP_HDRINCL, so the
/// packet goes out as built (TOS 0xc0, TTL 255, our IP id), like keepalived's; the kernel only
/// fills in the IP checksum and total length (and an IP id of 0). Such a socket never receives.
///
/// Not registered with the reactor: a raw send does not block but for a full transmit queue,
/// where the next advert covers a lost one; registered for writability, every send would wake
/// the loop once more when the socket's send space came back (one wake-up per advert).
#[derive(Debug)]
pub struct AdvertSender {
    socket: Socket,
    ifname: String,
    ifindex: u32,
}

impl AdvertSender {
    pub fn new(ifname: &str, ifindex: u32) -> Result<Self, SocketError> {
        let error = |action| move |err| SocketError::new(action, ifname, err);
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
        .map_err(error("cannot open a raw IPv4 socket"))?;
        bind_to_interface(&socket, ifindex).map_err(error("cannot bind a raw socket"))?;
        set_multicast_if(&socket, ifindex)
            .map_err(error("cannot send multicast (IP_MULTICAST_IF)"))?;
        // Our own adverts are no input for us (keepalived turns the loop off too).
        socket
            .set_multicast_loop_v4(false)
            .map_err(error("cannot turn off multicast loopback"))?;
        socket
            .set_nonblocking(true)
            .map_err(error("cannot make the advert socket non-blocking"))?;
        Ok(Self {
            socket,
            ifname: ifname.to_owned(),
            ifindex,
        })
    }

    /// Joins 224.0.0.18 on the interface without receiving anything here: when the XDP program
    /// reads adverts, the NIC's multicast filter must still let the group in.
    pub fn join_vrrp_group(&self) -> Result<(), SocketError> {
        join_vrrp_group(&self.socket, self.ifindex)
            .map_err(|err| SocketError::new("cannot join 224.0.0.18", &self.ifname, err))
    }

    /// Sends one IPv4 packet to the destination in its header (224.0.0.18, or a unicast peer).
    pub async fn send(&self, packet: &[u8]) -> Result<(), SocketError> {
        let error = |err| SocketError::new("cannot send an advert", &self.ifname, err);
        let dst = header_at::<Ipv4Hdr>(packet, 0)
            .map(Ipv4Hdr::dst)
            .ok_or_else(|| error(io::Error::from(io::ErrorKind::InvalidInput)))?;
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        self.socket.send_to(packet, &to).map(drop).map_err(error)
    }
}

/// Receives every VRRP packet that arrives on the interface, IPv4 header included.
#[derive(Debug)]
pub struct AdvertReceiver {
    fd: AsyncFd<Socket>,
}

impl AdvertReceiver {
    pub fn new(ifname: &str, ifindex: u32) -> Result<Self, SocketError> {
        let error = |action| move |err| SocketError::new(action, ifname, err);
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )
        .map_err(error("cannot open a raw VRRP socket"))?;
        // Until bound, the socket gets VRRP from every interface; such a stray packet still goes
        // through the receive checks.
        bind_to_interface(&socket, ifindex).map_err(error("cannot bind a raw socket"))?;
        join_vrrp_group(&socket, ifindex).map_err(error("cannot join 224.0.0.18"))?;
        set_ip_option(&socket, libc::IP_RECVFRAGSIZE, 1)
            .map_err(error("cannot ask for reassembly reports (IP_RECVFRAGSIZE)"))?;
        socket
            .set_nonblocking(true)
            .map_err(error("cannot make the advert socket non-blocking"))?;
        let fd = register(socket, Interest::READABLE)
            .map_err(error("cannot register the advert socket"))?;
        Ok(Self { fd })
    }

    /// Waits for the next packet and copies it into `buf`, truncated to its length (size it for
    /// `vrrp_common::wire::MAX_ADVERT_LEN_V4` plus 40 bytes of IP options). Returns its length
    /// and whether the kernel reassembled it from fragments: the header then reads as one
    /// datagram, and only the IP_RECVFRAGSIZE message (the only one asked for) tells.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        self.fd
            .async_io(Interest::READABLE, |socket| {
                let mut control = [MaybeUninit::<u8>::uninit(); 64];
                // SAFETY: the kernel writes only initialised bytes into the buffer, and it is
                // read only up to the length recvmsg returns.
                let data = unsafe { &mut *(&raw mut *buf as *mut [MaybeUninit<u8>]) };
                let mut bufs = [MaybeUninitSlice::new(data)];
                let mut msg = MsgHdrMut::new()
                    .with_buffers(&mut bufs)
                    .with_control(&mut control);
                let n = socket.recvmsg(&mut msg, 0)?;
                Ok((n, msg.control_len() > 0))
            })
            .await
    }
}

/// SO_BINDTOIFINDEX: sends leave by this interface whatever the routes say, and only packets
/// that arrived on it are received.
fn bind_to_interface(socket: &Socket, ifindex: u32) -> io::Result<()> {
    let index = NonZeroU32::new(ifindex).ok_or(io::ErrorKind::InvalidInput)?;
    socket.bind_device_by_index_v4(Some(index))
}

/// IP_ADD_MEMBERSHIP by interface index: the interface may have no address yet.
fn join_vrrp_group(socket: &Socket, ifindex: u32) -> io::Result<()> {
    socket.join_multicast_v4_n(&VRRP_MULTICAST_V4, &InterfaceIndexOrAddress::Index(ifindex))
}

/// IP_MULTICAST_IF by interface index (socket2 only sets it by address).
fn set_multicast_if(socket: &Socket, ifindex: u32) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: i32::try_from(ifindex).map_err(|_| io::ErrorKind::InvalidInput)?,
    };
    set_ip_option(socket, libc::IP_MULTICAST_IF, mreqn)
}

/// An IPPROTO_IP option socket2 has no setter for.
fn set_ip_option<T>(socket: &Socket, option: libc::c_int, value: T) -> io::Result<()> {
    // SAFETY: a valid socket, and a pointer to a live value with its exact size.
    let ret = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            option,
            (&raw const value).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
