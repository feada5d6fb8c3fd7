//! Virtual IP addresses on an interface, added and removed over rtnetlink as
//! `ip addr add|del ADDR/LEN brd + dev IFNAME [label LABEL]` would, and for IPv6 as keepalived
//! adds them: `ip -6 addr add ADDR/LEN dev IFNAME nodad` (and `preferred_lft 0` for a /128).
//!
//! Both directions are idempotent, so the agent can remove its VIPs on start (a crashed run may
//! have left them) and repeat a transition without tracking what the kernel already has.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressProtocol, CacheInfo,
};

use super::netlink::{family, local_addr, to_io};
use super::{hint, Netlink};

use crate::config::Vip;

#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error("cannot {action} VIP {addr} on {ifname}: {source}{}", hint(.source, "CAP_NET_ADMIN"))]
    Netlink {
        action: &'static str,
        addr: IpAddr,
        ifname: String,
        source: io::Error,
    },
    #[error("cannot list the addresses of {ifname}: {source}{}", hint(.source, "CAP_NET_ADMIN"))]
    List { ifname: String, source: io::Error },
}

/// The address protocol our VIPs carry (IFA_PROTO, Linux 5.18+): keepalived's RTPROT_KEEPALIVED,
/// as keepalived 2.3.2+ tags its VIPs, so `ip addr` (iproute2 6.3+, with keepalived's entry in
/// rt_addrprotos) shows `proto keepalived` and tools that leave the VRRP daemon's addresses alone
/// treat ours the same. Older kernels ignore the attribute.
pub const VIP_PROTOCOL: u8 = 18;

/// The broadcast address `ip addr add … brd +` sets: host bits all ones, none for /31 and /32
/// (RFC 3021 point-to-point and host routes have no broadcast).
pub fn broadcast(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    (prefix_len < 31).then(|| Ipv4Addr::from_bits(addr.to_bits() | (u32::MAX >> prefix_len)))
}

/// The VIPs of one interface.
#[derive(Clone, Debug)]
pub struct Vips {
    nl: Netlink,
    ifname: String,
    ifindex: u32,
}

impl Vips {
    pub fn new(nl: Netlink, ifname: &str, ifindex: u32) -> Self {
        Self {
            nl,
            ifname: ifname.to_owned(),
            ifindex,
        }
    }

    /// Adds `vip`; already present (same address and prefix) is success.
    pub async fn add(&self, vip: &Vip) -> Result<(), VipError> {
        let mut request = self
            .nl
            .handle()
            .address()
            .add(self.ifindex, vip.addr, vip.prefix_len);
        // Ours instead of rtnetlink's: it adds the label.
        *request.message_mut() = add_message(self.ifindex, vip);
        match request.execute().await.map_err(to_io) {
            Err(err) if err.raw_os_error() != Some(libc::EEXIST) => {
                Err(self.error("add", vip, err))
            }
            _ => Ok(()),
        }
    }

    /// Removes `vip` (matched by address and prefix, whatever its label, as `ip addr del` does);
    /// absent is success.
    pub async fn remove(&self, vip: &Vip) -> Result<(), VipError> {
        let request = self
            .nl
            .handle()
            .address()
            .del(del_message(self.ifindex, vip));
        match request.execute().await.map_err(to_io) {
            Err(err)
                if !matches!(
                    err.raw_os_error(),
                    // ENODEV: the interface went away, and its addresses with it.
                    Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ENODEV)
                ) =>
            {
                Err(self.error("remove", vip, err))
            }
            _ => Ok(()),
        }
    }

    /// Whether `addr` is on the interface, with any prefix length.
    pub async fn present(&self, addr: IpAddr) -> Result<bool, VipError> {
        let list = self.list(addr.is_ipv6()).await?;
        Ok(list.iter().any(|vip| vip.addr == addr))
    }

    /// Every IPv4 or IPv6 (`v6`) address on the interface, VIP or not, in the kernel's order.
    pub async fn list(&self, v6: bool) -> Result<Vec<Vip>, VipError> {
        let messages = self
            .nl
            .addresses(self.ifindex, v6)
            .await
            .map_err(|source| VipError::List {
                ifname: self.ifname.clone(),
                source,
            })?;
        Ok(messages
            .iter()
            .filter_map(|message| {
                let label = message.attributes.iter().find_map(|attr| match attr {
                    AddressAttribute::Label(label) if *label != self.ifname => Some(label.clone()),
                    _ => None,
                });
                Some(Vip {
                    label,
                    scope: message.header.scope.into(),
                    ..Vip::new(local_addr(message)?, message.header.prefix_len)
                })
            })
            .collect())
    }

    fn error(&self, action: &'static str, vip: &Vip, source: io::Error) -> VipError {
        VipError::Netlink {
            action,
            addr: vip.addr,
            ifname: self.ifname.clone(),
            source,
        }
    }
}

/// RTM_DELADDR matches IFA_LOCAL, then IFA_ADDRESS with the prefix length; it would also match
/// IFA_LABEL, so the label is left out.
fn del_message(ifindex: u32, vip: &Vip) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = family(vip.addr.is_ipv6());
    message.header.prefix_len = vip.prefix_len;
    message.header.index = ifindex;
    message.attributes = vec![
        AddressAttribute::Local(vip.addr),
        AddressAttribute::Address(vip.addr),
    ];
    message
}

fn add_message(ifindex: u32, vip: &Vip) -> AddressMessage {
    let mut message = del_message(ifindex, vip);
    message.header.scope = vip.scope.into();
    match vip.addr {
        IpAddr::V4(addr) => {
            let brd = vip.broadcast.or_else(|| broadcast(addr, vip.prefix_len));
            message
                .attributes
                .extend(brd.map(AddressAttribute::Broadcast));
        }
        IpAddr::V6(_) => {
            // Usable at once: duplicate address detection would hold the VIP back for a second
            // or more after the takeover, and fail it for good if the old master still had it.
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
            // keepalived's rule: a /128 VIP is deprecated, so the host never picks it as the
            // source of its own connections (which would break when the VIP moves).
            if vip.prefix_len == 128 {
                let mut lifetimes = CacheInfo::default();
                lifetimes.ifa_preferred = 0;
                lifetimes.ifa_valid = u32::MAX;
                message
                    .attributes
                    .push(AddressAttribute::CacheInfo(lifetimes));
            }
        }
    }
    message
        .attributes
        .extend(vip.label.clone().map(AddressAttribute::Label));
    message
        .attributes
        .push(AddressAttribute::Protocol(AddressProtocol::Other(
            VIP_PROTOCOL,
        )));
    message
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_route::AddressFamily;

    use super::*;

    fn vip(addr: [u8; 4], prefix_len: u8, label: Option<&str>) -> Vip {
        Vip {
            label: label.map(str::to_owned),
            ..Vip::new(IpAddr::from(addr), prefix_len)
        }
    }

    #[test]
    fn broadcast_like_ip_brd_plus() {
        let addr = Ipv4Addr::new(198, 51, 100, 10);
        assert_eq!(broadcast(addr, 24), Some(Ipv4Addr::new(198, 51, 100, 255)));
        assert_eq!(broadcast(addr, 30), Some(Ipv4Addr::new(198, 51, 100, 11)));
        assert_eq!(broadcast(addr, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast(addr, 31), None);
        assert_eq!(broadcast(addr, 32), None);
    }

    #[test]
    fn add_message_carries_broadcast_and_label() {
        let message = add_message(7, &vip([203, 0, 113, 5], 24, Some("eth0:1")));
        assert_eq!(message.header.index, 7);
        assert_eq!(message.header.prefix_len, 24);
        assert_eq!(message.header.family, AddressFamily::Inet);
        let addr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));
        assert_eq!(
            message.attributes,
            [
                AddressAttribute::Local(addr),
                AddressAttribute::Address(addr),
                AddressAttribute::Broadcast(Ipv4Addr::new(203, 0, 113, 255)),
                AddressAttribute::Label("eth0:1".to_owned()),
                AddressAttribute::Protocol(AddressProtocol::Other(18)),
            ]
        );
        let host = add_message(7, &vip([203, 0, 113, 5], 32, None));
        assert_eq!(host.attributes.len(), 3, "{:?}", host.attributes);
    }

    #[test]
    fn ipv6_vips_skip_dad_and_a_host_vip_is_deprecated() {
        let addr: IpAddr = "2001:db8::50".parse().unwrap();
        let host = add_message(7, &Vip::new(addr, 128));
        assert_eq!(host.header.family, AddressFamily::Inet6);
        let mut lifetimes = CacheInfo::default();
        lifetimes.ifa_valid = u32::MAX;
        assert_eq!(
            host.attributes,
            [
                AddressAttribute::Local(addr),
                AddressAttribute::Address(addr),
                AddressAttribute::Flags(AddressFlags::Nodad),
                AddressAttribute::CacheInfo(lifetimes),
                AddressAttribute::Protocol(AddressProtocol::Other(18)),
            ]
        );
        let subnet = add_message(7, &Vip::new(addr, 64));
        assert!(!subnet
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::CacheInfo(_))));
    }

    #[test]
    fn hints_name_the_capability() {
        let err = VipError::Netlink {
            action: "add",
            addr: Ipv4Addr::new(198, 51, 100, 10).into(),
            ifname: "eth0".to_owned(),
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        let text = err.to_string();
        assert!(
            text.starts_with("cannot add VIP 198.51.100.10 on eth0: "),
            "{text}"
        );
        assert!(
            text.ends_with(": run as root or give the agent CAP_NET_ADMIN"),
            "{text}"
        );
    }
}
