//! Raw sockets that send and receive whole VRRP packets, IP header included: IPv4 as the kernel
//! gives it, IPv6 rebuilt from what the kernel tells beside the message (an IPv6 raw socket never
//! shows the header), so one decoder judges both receive paths.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;

use socket2::{
    Domain, InterfaceIndexOrAddress, MaybeUninitSlice, MsgHdrMut, Protocol, SockAddr, Socket, Type,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use vrrp_common::wire::{
    header_at, Ipv4Hdr, Ipv6Hdr, IPPROTO_VRRP, IPV6_HDR_LEN, VRRP_MULTICAST_V4, VRRP_MULTICAST_V6,
};

use super::{register, SocketError};

/// Sends adverts built by `vrrp_common::encode`. IPPROTO_RAW implies IP_HDRINCL (IPv6 too), so
/// the packet goes out as built (TOS 0xc0, TTL 255, our IP id; for IPv6 traffic class 0xc0,
/// hop limit 255), like keepalived's; the kernel only fills in the IPv4 checksum and total
/// length (and an IP id of 0). Such a socket never receives.
///
/// Not registered with the reactor: a raw send does not block but for a full transmit queue,
/// where the next advert covers a lost one; registered for writability, every send would wake
/// the loop once more when the socket's send space came back (one wake-up per advert).
#[derive(Debug)]
pub struct AdvertSender {
    socket: Socket,
    ifname: String,
    ifindex: u32,
    v6: bool,
}

impl AdvertSender {
    /// For VRRP over IPv4, or over IPv6 (`v6`).
    pub fn new(ifname: &str, ifindex: u32, v6: bool) -> Result<Self, SocketError> {
        let error = |action| move |err| SocketError::new(action, ifname, err);
        let raw = Some(Protocol::from(libc::IPPROTO_RAW));
        let socket = if v6 {
            let socket = Socket::new(Domain::IPV6, Type::RAW, raw)
                .map_err(error("cannot open a raw IPv6 socket"))?;
            bind_to_interface(&socket, ifindex, true).map_err(error("cannot bind a raw socket"))?;
            socket
                .set_multicast_if_v6(ifindex)
                .map_err(error("cannot send multicast (IPV6_MULTICAST_IF)"))?;
            socket
                .set_multicast_loop_v6(false)
                .map_err(error("cannot turn off multicast loopback"))?;
            socket
        } else {
            let socket = Socket::new(Domain::IPV4, Type::RAW, raw)
                .map_err(error("cannot open a raw IPv4 socket"))?;
            bind_to_interface(&socket, ifindex, false)
                .map_err(error("cannot bind a raw socket"))?;
            set_multicast_if(&socket, ifindex)
                .map_err(error("cannot send multicast (IP_MULTICAST_IF)"))?;
            // Our own adverts are no input for us (keepalived turns the loop off too).
            socket
                .set_multicast_loop_v4(false)
                .map_err(error("cannot turn off multicast loopback"))?;
            socket
        };
        socket
            .set_nonblocking(true)
            .map_err(error("cannot make the advert socket non-blocking"))?;
        Ok(Self {
            socket,
            ifname: ifname.to_owned(),
            ifindex,
            v6,
        })
    }

    /// Joins 224.0.0.18 (or ff02::12) on the interface without receiving anything here: when
    /// the XDP program reads adverts, the NIC's multicast filter must still let the group in.
    pub fn join_vrrp_group(&self) -> Result<(), SocketError> {
        join_vrrp_group(&self.socket, self.ifindex, self.v6)
            .map_err(|err| SocketError::new(join_action(self.v6), &self.ifname, err))
    }

    /// Sends one packet to the destination in its header (the group, or a unicast peer).
    pub async fn send(&self, packet: &[u8]) -> Result<(), SocketError> {
        let error = |err| SocketError::new("cannot send an advert", &self.ifname, err);
        let dst = if self.v6 {
            // The scope is the interface: ff02::12 and link-local peers need it.
            header_at::<Ipv6Hdr>(packet, 0)
                .map(|ip| SocketAddr::V6(SocketAddrV6::new(ip.dst(), 0, 0, self.ifindex)))
        } else {
            header_at::<Ipv4Hdr>(packet, 0).map(|ip| SocketAddr::V4(SocketAddrV4::new(ip.dst(), 0)))
        };
        let dst = dst.ok_or_else(|| error(io::Error::from(io::ErrorKind::InvalidInput)))?;
        let to = SockAddr::from(dst);
        self.socket.send_to(packet, &to).map(drop).map_err(error)
    }
}

/// Receives every VRRP packet of one family that arrives on the interface, with its IP header.
#[derive(Debug)]
pub struct AdvertReceiver {
    fd: AsyncFd<Socket>,
    v6: bool,
}

impl AdvertReceiver {
    pub fn new(ifname: &str, ifindex: u32, v6: bool) -> Result<Self, SocketError> {
        let error = |action| move |err| SocketError::new(action, ifname, err);
        let vrrp = Some(Protocol::from(i32::from(IPPROTO_VRRP)));
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let socket =
            Socket::new(domain, Type::RAW, vrrp).map_err(error("cannot open a raw VRRP socket"))?;
        // Until bound, the socket gets VRRP from every interface; such a stray packet still goes
        // through the receive checks.
        bind_to_interface(&socket, ifindex, v6).map_err(error("cannot bind a raw socket"))?;
        join_vrrp_group(&socket, ifindex, v6).map_err(error(join_action(v6)))?;
        if v6 {
            // What the header said, for the rebuilt one, and any extension header the kernel
            // consumed (the kernel program does not follow them: the same verdict here). No
            // IPV6_CHECKSUM: the kernel would drop a bad checksum silently; the decoder names it
            // and the agent counts it.
            for option in [
                libc::IPV6_RECVPKTINFO,
                libc::IPV6_RECVHOPLIMIT,
                libc::IPV6_RECVTCLASS,
                libc::IPV6_RECVFRAGSIZE,
                libc::IPV6_RECVHOPOPTS,
                libc::IPV6_RECVRTHDR,
                libc::IPV6_RECVDSTOPTS,
            ] {
                set_option(&socket, libc::IPPROTO_IPV6, option, 1 as libc::c_int)
                    .map_err(error("cannot ask for the IPv6 header's fields"))?;
            }
        } else {
            set_option(&socket, libc::IPPROTO_IP, libc::IP_RECVFRAGSIZE, 1)
                .map_err(error("cannot ask for reassembly reports (IP_RECVFRAGSIZE)"))?;
        }
        socket
            .set_nonblocking(true)
            .map_err(error("cannot make the advert socket non-blocking"))?;
        let fd = register(socket, Interest::READABLE)
            .map_err(error("cannot register the advert socket"))?;
        Ok(Self { fd, v6 })
    }

    /// Waits for the next packet and copies it into `buf`, truncated to its length (size it for
    /// `vrrp_common::maps::MAX_PACKET`). Returns its length and whether the kernel reassembled
    /// it from fragments: the header then reads as one datagram, and only the
    /// IP(V6)_RECVFRAGSIZE message tells.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        let v6 = self.v6;
        self.fd
            .async_io(Interest::READABLE, |socket| {
                // Room for an extension header's message too (up to 2 KiB each).
                let mut control = [MaybeUninit::<u8>::uninit(); 4096];
                // Room for the sender's sockaddr_in6, which the kernel writes over.
                let mut from = SockAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
                let start = if v6 { IPV6_HDR_LEN } else { 0 };
                let body = buf.get_mut(start..).ok_or(io::ErrorKind::InvalidInput)?;
                // SAFETY: the kernel writes only initialised bytes into the buffer, and it is
                // read only up to the length recvmsg returns.
                let data = unsafe { &mut *(&raw mut *body as *mut [MaybeUninit<u8>]) };
                let mut bufs = [MaybeUninitSlice::new(data)];
                let mut msg = MsgHdrMut::new()
                    .with_addr(&mut from)
                    .with_buffers(&mut bufs)
                    .with_control(&mut control);
                let n = socket.recvmsg(&mut msg, 0)?;
                let control_len = msg.control_len();
                // SAFETY: the kernel initialised the first `control_len` bytes.
                let control = unsafe {
                    std::slice::from_raw_parts(control.as_ptr().cast::<u8>(), control_len)
                };
                if !v6 {
                    // IP_RECVFRAGSIZE is the only message asked for.
                    return Ok((n, control_len > 0));
                }
                let told = Told::parse(control);
                let src = from
                    .as_socket_ipv6()
                    .map_or(Ipv6Addr::UNSPECIFIED, |a| *a.ip());
                let header = told.header(src, n);
                buf[..IPV6_HDR_LEN].copy_from_slice(bytemuck::bytes_of(&header));
                Ok((IPV6_HDR_LEN + n, told.reassembled))
            })
            .await
    }
}

/// What an IPv6 raw socket tells of a packet's header, beside the message.
#[derive(Debug, Default, PartialEq, Eq)]
struct Told {
    dst: Option<Ipv6Addr>,
    hop_limit: u8,
    traffic_class: u8,
    reassembled: bool,
    /// The next header of the fixed one when an extension header came first (hop-by-hop 0,
    /// routing 43, destination options 60).
    extension: Option<u8>,
}

impl Told {
    /// The control messages of one `recvmsg` (`struct cmsghdr` after `struct cmsghdr`, each
    /// padded to the word size).
    fn parse(mut control: &[u8]) -> Self {
        const WORD: usize = size_of::<usize>();
        const HEADER: usize = size_of::<libc::cmsghdr>();
        let mut told = Self::default();
        while control.len() >= HEADER {
            let len = usize::from_ne_bytes(control[..WORD].try_into().unwrap_or_default());
            let level = i32::from_ne_bytes(control[WORD..WORD + 4].try_into().unwrap_or_default());
            let kind = i32::from_ne_bytes(control[WORD + 4..HEADER].try_into().unwrap_or_default());
            let Some(data) = control.get(HEADER..len) else {
                break;
            };
            let int = || {
                data.get(..4)
                    .map(|b| i32::from_ne_bytes(b.try_into().unwrap_or_default()))
            };
            match (level, kind) {
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    // struct in6_pktinfo: the destination, then the interface index.
                    told.dst = data
                        .get(..16)
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                        .map(Ipv6Addr::from);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    told.hop_limit = int().map_or(0, |v| v as u8);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => {
                    told.traffic_class = int().map_or(0, |v| v as u8);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_RECVFRAGSIZE) => told.reassembled = true,
                (libc::IPPROTO_IPV6, libc::IPV6_HOPOPTS) => told.extension = Some(0),
                (libc::IPPROTO_IPV6, libc::IPV6_RTHDR) => {
                    told.extension = told.extension.or(Some(43));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_DSTOPTS) => {
                    told.extension = told.extension.or(Some(60));
                }
                _ => {}
            }
            let next = len.next_multiple_of(WORD);
            control = control.get(next..).unwrap_or_default();
        }
        told
    }

    /// The IPv6 header the packet came with (flow label aside): VRRP right after it, or the
    /// extension header the kernel consumed, which the decoder then refuses as the kernel
    /// program does.
    fn header(&self, src: Ipv6Addr, len: usize) -> Ipv6Hdr {
        let tc = self.traffic_class;
        Ipv6Hdr {
            vtc_flow: [0x60 | tc >> 4, tc << 4, 0, 0],
            payload_len: u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes(),
            next_hdr: self.extension.unwrap_or(IPPROTO_VRRP),
            hop_limit: self.hop_limit,
            src: src.octets(),
            // Without the message (never, with IPV6_RECVPKTINFO set) the checksum fails.
            dst: self.dst.unwrap_or(Ipv6Addr::UNSPECIFIED).octets(),
        }
    }
}

fn join_action(v6: bool) -> &'static str {
    if v6 {
        "cannot join ff02::12"
    } else {
        "cannot join 224.0.0.18"
    }
}

/// SO_BINDTOIFINDEX: sends leave by this interface whatever the routes say, and only packets
/// that arrived on it are received.
fn bind_to_interface(socket: &Socket, ifindex: u32, v6: bool) -> io::Result<()> {
    let index = Some(NonZeroU32::new(ifindex).ok_or(io::ErrorKind::InvalidInput)?);
    if v6 {
        socket.bind_device_by_index_v6(index)
    } else {
        socket.bind_device_by_index_v4(index)
    }
}

/// IP_ADD_MEMBERSHIP / IPV6_ADD_MEMBERSHIP by interface index: the interface may have no address
/// yet.
fn join_vrrp_group(socket: &Socket, ifindex: u32, v6: bool) -> io::Result<()> {
    if v6 {
        socket.join_multicast_v6(&VRRP_MULTICAST_V6, ifindex)
    } else {
        socket.join_multicast_v4_n(&VRRP_MULTICAST_V4, &InterfaceIndexOrAddress::Index(ifindex))
    }
}

/// IP_MULTICAST_IF by interface index (socket2 only sets it by address).
fn set_multicast_if(socket: &Socket, ifindex: u32) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: i32::try_from(ifindex).map_err(|_| io::ErrorKind::InvalidInput)?,
    };
    set_option(socket, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, mreqn)
}

/// A socket option socket2 has no setter for.
fn set_option<T>(
    socket: &Socket,
    level: libc::c_int,
    option: libc::c_int,
    value: T,
) -> io::Result<()> {
    // SAFETY: a valid socket, and a pointer to a live value with its exact size.
    let ret = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One control message as the kernel lays it out: `cmsghdr`, data, padding to a word.
    fn cmsg(kind: i32, data: &[u8]) -> Vec<u8> {
        let len = size_of::<libc::cmsghdr>() + data.len();
        let mut m = len.to_ne_bytes().to_vec();
        m.extend(libc::IPPROTO_IPV6.to_ne_bytes());
        m.extend(kind.to_ne_bytes());
        m.extend(data);
        m.resize(len.next_multiple_of(size_of::<usize>()), 0);
        m
    }

    #[test]
    fn the_header_is_rebuilt_from_the_control_messages() {
        let dst: Ipv6Addr = "ff02::12".parse().unwrap();
        let mut pktinfo = dst.octets().to_vec();
        pktinfo.extend(7u32.to_ne_bytes());
        let control = [
            cmsg(libc::IPV6_PKTINFO, &pktinfo),
            cmsg(libc::IPV6_HOPLIMIT, &255i32.to_ne_bytes()),
            cmsg(libc::IPV6_TCLASS, &0xc0i32.to_ne_bytes()),
        ]
        .concat();
        let told = Told::parse(&control);
        assert_eq!(
            told,
            Told {
                dst: Some(dst),
                hop_limit: 255,
                traffic_class: 0xc0,
                ..Told::default()
            }
        );
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let h = told.header(src, 24);
        assert_eq!(
            (h.version(), h.traffic_class(), h.payload_len()),
            (6, 0xc0, 24)
        );
        assert_eq!(
            (h.next_hdr, h.hop_limit, h.src(), h.dst()),
            (112, 255, src, dst)
        );

        // A hop-by-hop header the kernel consumed shows as the next header again; a cut-off
        // message ends the walk.
        let with_options = [
            control.clone(),
            cmsg(libc::IPV6_HOPOPTS, &[112, 0, 1, 4, 0, 0, 0, 0]),
        ]
        .concat();
        assert_eq!(Told::parse(&with_options).header(src, 24).next_hdr, 0);
        let reassembled = [
            control,
            cmsg(libc::IPV6_RECVFRAGSIZE, &1280i32.to_ne_bytes()),
        ]
        .concat();
        assert!(Told::parse(&reassembled).reassembled);
        assert_eq!(Told::parse(&reassembled[..20]), Told::default());
    }
}
