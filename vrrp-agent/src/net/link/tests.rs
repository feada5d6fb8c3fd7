use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rtnetlink::packet_route::address::AddressAttribute;

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

fn message(family: AddressFamily, index: u32, name: &str, flags: LinkFlags) -> LinkMessage {
    let mut link = LinkMessage::default();
    link.header.interface_family = family;
    link.header.index = index;
    link.header.flags = flags;
    link.attributes = vec![
        LinkAttribute::IfName(name.into()),
        LinkAttribute::Address(vec![2, 0, 0, 0, 0, 7]),
    ];
    link
}

fn address_message(index: u32, addr: IpAddr) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = crate::net::netlink::family(addr.is_ipv6());
    message.header.index = index;
    message.attributes = vec![AddressAttribute::Local(addr)];
    message
}

fn link(index: u32, up: bool) -> Link {
    Link {
        index,
        mac: Some([2, 0, 0, 0, 0, 7]),
        veth: false,
        up,
    }
}

#[test]
fn observes_links_by_name_and_addresses() {
    let running = LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp;
    let unspec = AddressFamily::Unspec;
    let inner = NetlinkPayload::InnerMessage;
    let change = |name: &str, link| {
        Some(Observed::Change(Change::Link {
            name: name.into(),
            link,
        }))
    };
    let new = |m| inner(RouteNetlinkMessage::NewLink(m));
    let del = |m| inner(RouteNetlinkMessage::DelLink(m));
    assert_eq!(
        observe(&new(message(unspec, 7, "eth0", running))),
        change("eth0", Some(link(7, true)))
    );
    assert_eq!(
        observe(&new(message(unspec, 7, "eth0", LinkFlags::Up))),
        change("eth0", Some(link(7, false)))
    );
    assert_eq!(
        observe(&del(message(unspec, 7, "eth0", running))),
        change("eth0", None)
    );
    // Leaving a bridge is not being deleted.
    let port = message(AddressFamily::Bridge, 7, "eth0", running);
    assert_eq!(observe(&del(port)), None);

    let addr = IpAddr::from([198, 51, 100, 100]);
    let gone = inner(RouteNetlinkMessage::DelAddress(address_message(7, addr)));
    assert_eq!(
        observe(&gone),
        Some(Observed::Change(Change::Address {
            index: 7,
            addr,
            added: false
        }))
    );
    assert_eq!(
        observe(&NetlinkPayload::Overrun(Vec::new())),
        Some(Observed::Lost)
    );
    assert_eq!(observe(&NetlinkPayload::Noop), None);
}

#[test]
fn table_reports_changes_renames_and_resyncs() {
    let mut links = Links::default();
    assert_eq!(
        links.update("eth0", Some(link(7, true))),
        [("eth0".into(), Some(link(7, true)))]
    );
    assert_eq!(links.update("eth0", Some(link(7, true))), [], "no change");
    // Renamed: the old name is gone.
    assert_eq!(
        links.update("wan0", Some(link(7, true))),
        [("eth0".into(), None), ("wan0".into(), Some(link(7, true)))]
    );
    // Deleted and created again: a new index under the same name.
    assert_eq!(links.update("wan0", None), [("wan0".into(), None)]);
    assert_eq!(
        links.update("wan0", Some(link(9, false))),
        [("wan0".into(), Some(link(9, false)))]
    );
    let now: Links = [("lan0".to_owned(), link(3, true))].into_iter().collect();
    assert_eq!(
        links.replace(now.clone()),
        [("wan0".into(), None), ("lan0".into(), Some(link(3, true)))]
    );
    assert_eq!(links, now);
}

/// Long enough for the kernel's deferred operstate update (linkwatch, up to 1 s).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// The next change of `name` (links) or of `index` (addresses), skipping others.
async fn next_of(watch: &mut Watch, name: &str, index: u32, what: &str) -> Change {
    let wait = async {
        loop {
            match watch.next().await.expect("watch") {
                Watched::Change(c @ Change::Link { .. }) if matches!(&c, Change::Link { name: n, .. } if n == name) => {
                    return c
                }
                // The IPv4 addresses the tests change, not the link-local ones that come and go.
                Watched::Change(c @ Change::Address { index: i, addr, .. })
                    if i == index && addr.is_ipv4() =>
                {
                    return c
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(CHANGE_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| panic!("no change within {CHANGE_TIMEOUT:?} after {what}"))
}

/// Waits until `name` is reported with `up`.
async fn until_up(watch: &mut Watch, name: &str, up: bool, what: &str) -> Link {
    loop {
        if let Change::Link { link: Some(l), .. } = next_of(watch, name, 0, what).await {
            if l.up == up {
                return l;
            }
        }
    }
}

#[test]
fn netns_watch_follows_interfaces_by_name() {
    if !is_root() {
        eprintln!(
            "skipping netns_watch_follows_interfaces_by_name: needs root (network namespaces)"
        );
        return;
    }
    let (a, b) = veth_pair("watch", &[], &[]);
    on_own_thread(|| watch_va(&a, &b));
}

async fn watch_va(a: &Netns, b: &Netns) {
    a.enter();
    let nl = Netlink::connect().expect("netlink");
    let mut watch = Watch::new().expect("watch");
    let links = Links::query(&nl).await.expect("query");
    let va = links.get("va").expect("va listed").clone();
    assert!(va.veth && va.mac.is_some(), "{va:?}");
    assert!(links.get("lo").is_some_and(|lo| !lo.veth));

    b.ip(&["link", "set", "vb", "down"]);
    until_up(&mut watch, "va", false, "peer down (carrier loss)").await;
    b.ip(&["link", "set", "vb", "up"]);
    until_up(&mut watch, "va", true, "peer up").await;

    let addr = IpAddr::from([198, 51, 100, 7]);
    a.ip(&["addr", "add", "198.51.100.7/24", "dev", "va"]);
    let added = Change::Address {
        index: va.index,
        addr,
        added: true,
    };
    assert_eq!(
        next_of(&mut watch, "", va.index, "address add").await,
        added
    );
    let source = |vips: &'static [IpAddr]| source_address(&nl, va.index, false, vips);
    assert_eq!(source(&[]).await.unwrap(), Some(addr));
    const ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    assert_eq!(source(&[ADDR]).await.unwrap(), None);
    a.ip(&["addr", "del", "198.51.100.7/24", "dev", "va"]);
    let deleted = Change::Address {
        index: va.index,
        addr,
        added: false,
    };
    assert_eq!(
        next_of(&mut watch, "", va.index, "address del").await,
        deleted
    );

    // Deleted and created again: the same name, another index.
    b.ip(&["link", "del", "vb"]);
    loop {
        if let Change::Link { link: None, .. } = next_of(&mut watch, "va", 0, "deleting").await {
            break;
        }
    }
    a.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vc"]);
    a.ip(&["link", "set", "va", "up"]);
    a.ip(&["link", "set", "vc", "up"]);
    let again = until_up(&mut watch, "va", true, "re-creating").await;
    assert_ne!(again.index, va.index);
}
