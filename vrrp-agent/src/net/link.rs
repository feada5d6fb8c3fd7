//! Link-state tracking for the VRRP interface, as keepalived does it: an instance whose interface
//! is down goes FAULT and gives up its VIPs, and restarts the election when the interface is back.
//!
//! "Usable" is keepalived's rule: IFF_UP and IFF_RUNNING both set. The kernel reports IFF_RUNNING
//! while the operational state is UP, or UNKNOWN for devices that report no carrier (`lo`, dummy),
//! so a lost carrier (cable out, veth peer down) counts as down just as `ip link set down` does.
//! A deleted interface is down for good: a re-created one has another index.

use std::io;

use futures::channel::mpsc::UnboundedReceiver;
use futures::{StreamExt, TryStreamExt};
use rtnetlink::constants::RTMGRP_LINK;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::link::{LinkFlags, LinkMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::Handle;

use super::hint;
use super::netlink::to_io;

/// Watches one interface's usable state through rtnetlink link notifications (RTMGRP_LINK).
///
/// It has a netlink socket of its own, in the network namespace of the thread that creates it;
/// dropping the monitor closes it.
#[derive(Debug)]
pub struct LinkMonitor {
    ifindex: u32,
    /// For queries; replies come back here, notifications on `notifications`.
    handle: Handle,
    notifications: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    /// The state last returned by `is_up` or `changed`; `None` before the first.
    last: Option<bool>,
    /// Set when notifications cannot be trusted to tell the current state: before the first query
    /// and after the kernel dropped some (socket buffer overrun).
    resync: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(
        "cannot subscribe to link notifications for interface index {ifindex}: {source}{}",
        subscribe_hint(.source)
    )]
    Subscribe { ifindex: u32, source: io::Error },
    #[error(
        "cannot read the state of interface index {ifindex} over netlink: {source}{}",
        hint(.source, "CAP_NET_ADMIN")
    )]
    Query { ifindex: u32, source: io::Error },
    #[error(
        "the netlink socket watching interface index {ifindex} closed, so link changes are no \
         longer seen: restart the agent (the log of the netlink-proto crate says why)"
    )]
    Closed { ifindex: u32 },
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

impl LinkMonitor {
    /// Subscribes to link notifications for interface `ifindex`. Must be called inside a tokio
    /// runtime: the socket registers with its reactor and the connection's driver task is spawned
    /// on it.
    ///
    /// Subscribing comes first, so no change between this call and [`LinkMonitor::is_up`] is
    /// missed.
    pub fn new(ifindex: u32) -> Result<Self, LinkError> {
        let subscribe_error = |source| LinkError::Subscribe { ifindex, source };
        let (mut connection, handle, notifications) =
            rtnetlink::new_connection().map_err(subscribe_error)?;
        connection
            .socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, RTMGRP_LINK))
            .map_err(subscribe_error)?;
        tokio::spawn(connection);
        Ok(Self {
            ifindex,
            handle,
            notifications,
            last: None,
            resync: true,
        })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Asks the kernel whether the interface is usable now (a missing interface is not), and
    /// makes that the state [`LinkMonitor::changed`] reports changes from.
    pub async fn is_up(&mut self) -> Result<bool, LinkError> {
        let up = self.query().await?;
        self.resync = false;
        self.last = Some(up);
        Ok(up)
    }

    /// Waits until the interface's usable state differs from the one last returned by this or
    /// [`LinkMonitor::is_up`], and returns it (true = usable). Without an earlier `is_up`, the
    /// state at the first call is the baseline and is not reported.
    ///
    /// Cancel-safe, so it can sit in a `select!`. After the kernel dropped notifications (the
    /// socket's buffer overran) the state is queried again; catching up may then report a
    /// transient flip, but the last report always matches the kernel.
    pub async fn changed(&mut self) -> Result<bool, LinkError> {
        loop {
            let up = if self.resync {
                let up = self.query().await?;
                self.resync = false;
                up
            } else {
                let (message, _) = self.notifications.next().await.ok_or(LinkError::Closed {
                    ifindex: self.ifindex,
                })?;
                match observe(&message.payload, self.ifindex) {
                    Some(Observation::Usable(up)) => up,
                    Some(Observation::Lost) => {
                        self.resync = true;
                        continue;
                    }
                    None => continue,
                }
            };
            if let Some(last) = self.last.replace(up) {
                if last != up {
                    return Ok(up);
                }
            }
        }
    }

    async fn query(&self) -> Result<bool, LinkError> {
        let reply = self
            .handle
            .link()
            .get()
            .match_index(self.ifindex)
            .execute()
            .try_next()
            .await
            .map_err(to_io);
        match reply {
            Ok(Some(link)) => Ok(usable(link.header.flags)),
            Ok(None) => Ok(false),
            Err(err) if err.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(source) => Err(LinkError::Query {
                ifindex: self.ifindex,
                source,
            }),
        }
    }
}

/// keepalived's rule: administratively up and operationally up (or without carrier reporting).
fn usable(flags: LinkFlags) -> bool {
    flags.contains(LinkFlags::Up | LinkFlags::Running)
}

#[derive(Debug, PartialEq, Eq)]
enum Observation {
    /// The interface's state, as a notification tells it.
    Usable(bool),
    /// Notifications were dropped: the state must be queried.
    Lost,
}

/// What a notification says about interface `ifindex`, if anything.
fn observe(payload: &NetlinkPayload<RouteNetlinkMessage>, ifindex: u32) -> Option<Observation> {
    // AF_BRIDGE messages are about bridge ports: an RTM_DELLINK of those only means the interface
    // left its bridge. The AF_UNSPEC ones are about the interface itself.
    let ours = |link: &LinkMessage| {
        link.header.index == ifindex && link.header.interface_family == AddressFamily::Unspec
    };
    match payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) if ours(link) => {
            Some(Observation::Usable(usable(link.header.flags)))
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) if ours(link) => {
            Some(Observation::Usable(false))
        }
        NetlinkPayload::Overrun(_) => Some(Observation::Lost),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::net::tests::{is_root, on_own_thread, veth_pair, Netns};

    #[test]
    fn usable_needs_up_and_running() {
        // A veth or NIC with carrier: UP, RUNNING (operstate UP) and LOWER_UP.
        assert!(usable(
            LinkFlags::Up | LinkFlags::Broadcast | LinkFlags::Running | LinkFlags::LowerUp
        ));
        // lo and dummy: operstate UNKNOWN still sets RUNNING.
        assert!(usable(
            LinkFlags::Up | LinkFlags::Loopback | LinkFlags::Running
        ));
        // Carrier lost (peer down, cable out): UP alone, NO-CARRIER in `ip link`.
        assert!(!usable(LinkFlags::Up | LinkFlags::Broadcast));
        // Carrier there but operstate not up yet (e.g. 802.1X DORMANT): not usable either.
        assert!(!usable(
            LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Dormant
        ));
        assert!(!usable(LinkFlags::Broadcast | LinkFlags::Multicast));
        assert!(!usable(LinkFlags::empty()));
    }

    fn link(family: AddressFamily, index: u32, flags: LinkFlags) -> LinkMessage {
        let mut link = LinkMessage::default();
        link.header.interface_family = family;
        link.header.index = index;
        link.header.flags = flags;
        link
    }

    #[test]
    fn observes_only_its_interface() {
        let running = LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp;
        let new = |link| NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link));
        let del = |link| NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link));
        let unspec = AddressFamily::Unspec;
        assert_eq!(
            observe(&new(link(unspec, 7, running)), 7),
            Some(Observation::Usable(true))
        );
        assert_eq!(
            observe(&new(link(unspec, 7, LinkFlags::Up)), 7),
            Some(Observation::Usable(false))
        );
        assert_eq!(
            observe(&del(link(unspec, 7, running)), 7),
            Some(Observation::Usable(false))
        );
        assert_eq!(observe(&new(link(unspec, 8, LinkFlags::Up)), 7), None);
        assert_eq!(observe(&del(link(unspec, 8, running)), 7), None);
        // Leaving a bridge is not being deleted.
        assert_eq!(
            observe(&del(link(AddressFamily::Bridge, 7, running)), 7),
            None
        );
        assert_eq!(
            observe(&NetlinkPayload::Overrun(Vec::new()), 7),
            Some(Observation::Lost)
        );
        assert_eq!(observe(&NetlinkPayload::Noop, 7), None);
    }

    /// Long enough for the kernel's deferred operstate update (linkwatch, up to 1 s).
    const CHANGE_TIMEOUT: Duration = Duration::from_secs(5);

    async fn next_change(monitor: &mut LinkMonitor, what: &str) -> bool {
        tokio::time::timeout(CHANGE_TIMEOUT, monitor.changed())
            .await
            .unwrap_or_else(|_| panic!("no link change within {CHANGE_TIMEOUT:?} after {what}"))
            .expect("link monitor")
    }

    #[test]
    fn netns_carrier_and_admin_state() {
        if !is_root() {
            eprintln!("skipping netns_carrier_and_admin_state: needs root (network namespaces)");
            return;
        }
        let (a, b) = veth_pair("link", &[], &[]);
        on_own_thread(|| watch_va(&a, &b));
    }

    async fn watch_va(a: &Netns, b: &Netns) {
        a.enter();
        let index = ifindex(a, "va");
        let mut monitor = LinkMonitor::new(index).expect("link monitor");
        // The operstate may still be catching up with `ip link set up`.
        if !monitor.is_up().await.expect("is_up") {
            assert!(next_change(&mut monitor, "setting both ends up").await);
        }

        // Neither another interface nor a change that keeps va usable is reported.
        // (A veth pair inside A: dummy is not built into every kernel.)
        a.ip(&["link", "add", "vx", "type", "veth", "peer", "name", "vy"]);
        a.ip(&["link", "set", "vx", "up"]);
        a.ip(&["link", "set", "vy", "up"]);
        a.ip(&["link", "set", "vy", "down"]);
        a.ip(&["link", "del", "vx"]);
        a.ip(&["link", "set", "va", "mtu", "1400"]);
        let quiet = tokio::time::timeout(Duration::from_millis(500), monitor.changed()).await;
        assert!(quiet.is_err(), "reported {quiet:?} without a change");

        b.ip(&["link", "set", "vb", "down"]);
        assert!(!next_change(&mut monitor, "peer down (carrier loss)").await);
        assert!(a.ip(&["link", "show", "va"]).contains("NO-CARRIER"));
        b.ip(&["link", "set", "vb", "up"]);
        assert!(next_change(&mut monitor, "peer up").await);
        assert!(monitor.is_up().await.expect("is_up"));

        a.ip(&["link", "set", "va", "down"]);
        assert!(!next_change(&mut monitor, "own end down").await);
        assert!(!monitor.is_up().await.expect("is_up"));
        a.ip(&["link", "set", "va", "up"]);
        assert!(next_change(&mut monitor, "own end up").await);

        // Deleting the pair from B takes va away too.
        b.ip(&["link", "del", "vb"]);
        assert!(!next_change(&mut monitor, "deleting the veth pair").await);
        assert!(!monitor.is_up().await.expect("is_up of a deleted interface"));
    }

    fn ifindex(ns: &Netns, name: &str) -> u32 {
        let shown = ns.ip(&["-o", "link", "show", name]);
        shown
            .split(':')
            .next()
            .and_then(|index| index.trim().parse().ok())
            .unwrap_or_else(|| panic!("no index in {shown:?}"))
    }
}
