//! Root-only: every socket and address lives in two network namespaces made for the test, joined
//! by a veth pair (`va` in A, `vb` in B); addresses come from 198.51.100.0/24 and 203.0.113.0/24.

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use rtnetlink::packet_route::address::AddressAttribute;
use socket2::{Domain, Protocol, Socket, Type};
use vrrp_common::wire::{
    ETH_BROADCAST, ETH_P_ARP, ETH_P_IPV6, GARP_FRAME_LEN, MAX_ADVERT_LEN, NA_FRAME_LEN,
    VRRP_MULTICAST_V6,
};
use vrrp_common::{AdvertSpec, Auth, ChecksumForm, Version};

use super::*;
use crate::config::Vip;

const A_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
const B_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
/// On `vb` before B_ADDR, as a VIP left by a crashed run would be.
const B_STALE_VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));

/// A named network namespace, deleted on drop (also when the test panics).
pub(super) struct Netns(String);

impl Netns {
    /// `tag` must be unique among the tests of this binary: they run in parallel.
    pub(super) fn new(tag: &str) -> Self {
        let ns = Self(format!("vrrp-net-{}-{tag}", std::process::id()));
        run("ip", &["netns", "add", &ns.0]);
        ns
    }

    /// `ip -n NS ARGS`, which runs in the namespace without the caller entering it.
    pub(super) fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.0];
        all.extend(args);
        run("ip", &all)
    }

    /// Moves the calling thread (only) into the namespace: sockets opened afterwards live there.
    pub(super) fn enter(&self) {
        let file = File::open(format!("/run/netns/{}", self.0)).expect("open netns");
        // SAFETY: a valid namespace file descriptor.
        let ret = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(ret, 0, "setns: {}", std::io::Error::last_os_error());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program}: {err}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Two new namespaces `{tag}-a` and `{tag}-b` joined by a veth pair, `va` in A and `vb` in B, both
/// up, with the /24 addresses `a_addrs` and `b_addrs` added in order.
pub(super) fn veth_pair(tag: &str, a_addrs: &[IpAddr], b_addrs: &[IpAddr]) -> (Netns, Netns) {
    let a = Netns::new(&format!("{tag}-a"));
    let b = Netns::new(&format!("{tag}-b"));
    a.ip(&[
        "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &b.0,
    ]);
    for (ns, dev, addrs) in [(&a, "va", a_addrs), (&b, "vb", b_addrs)] {
        for addr in addrs {
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", dev]);
        }
        ns.ip(&["link", "set", dev, "up"]);
    }
    (a, b)
}

/// Runs the future `test()` makes in a current-thread runtime on a thread of its own, so it may
/// `Netns::enter` (the harness may reuse its threads for other tests); its panics become ours.
pub(super) fn on_own_thread<F: Future<Output = ()>>(test: impl FnOnce() -> F + Send) {
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(test());
            })
            .join()
    });
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn netns_interface_vips_adverts_and_garp() {
    if !is_root() {
        eprintln!(
            "skipping netns_interface_vips_adverts_and_garp: needs root (network namespaces)"
        );
        return;
    }
    let (a, b) = veth_pair("net", &[A_ADDR], &[B_STALE_VIP, B_ADDR]);
    on_own_thread(|| in_namespaces(&a, &b));
}

async fn in_namespaces(a: &Netns, b: &Netns) {
    a.enter();
    let nl_a = Netlink::connect().expect("netlink in A");
    let links = Links::query(&nl_a).await.expect("links in A");
    let va = links.get("va").expect("va").clone();
    let mac = va.mac.expect("va has a MAC");
    assert!(va.veth, "va is one end of a veth pair");
    assert!(a
        .ip(&["-j", "link", "show", "va"])
        .contains(&format!("\"ifindex\":{},", va.index)));
    assert!(a
        .ip(&["link", "show", "va"])
        .contains(&format!("link/ether {}", mac_text(mac))));
    assert_eq!(
        source_address(&nl_a, va.index, false, &[]).await.unwrap(),
        Some(A_ADDR)
    );
    // A new namespace's loopback has no address.
    let lo = links.get("lo").expect("lo");
    let none = source_address(&nl_a, lo.index, false, &[]).await.unwrap();
    assert_eq!(none, None);

    vips(a, &nl_a, va.index).await;

    let sender = AdvertSender::new("va", va.index, false).expect("advert sender");
    sender.join_vrrp_group().expect("join on the sender");
    assert!(a.ip(&["maddr", "show", "dev", "va"]).contains("224.0.0.18"));
    let announcer = Announcer::new("va", va.index, mac).expect("announcer");

    b.enter();
    let nl_b = Netlink::connect().expect("netlink in B");
    let vb = Links::query(&nl_b)
        .await
        .expect("links in B")
        .get("vb")
        .expect("vb")
        .clone();
    let primary = source_address(&nl_b, vb.index, false, &[B_STALE_VIP]).await;
    let primary = primary.unwrap();
    assert_eq!(
        primary,
        Some(B_ADDR),
        "the stale VIP must not be the primary"
    );
    let first = source_address(&nl_b, vb.index, false, &[]).await.unwrap();
    assert_eq!(first, Some(B_STALE_VIP), "first address in kernel order");
    let receiver = AdvertReceiver::new("vb", vb.index, false).expect("advert receiver");
    let arp_capture = capture(vb.index, ETH_P_ARP);

    adverts(&sender, &receiver).await;
    garps(&announcer, mac, &arp_capture).await;
}

async fn vips(a: &Netns, nl: &Netlink, index: u32) {
    let vips = Vips::new(nl.clone(), "va", index);
    let vip = Vip {
        label: Some("va:1".to_owned()),
        ..Vip::new(VIP, 24)
    };
    vips.add(&vip).await.expect("add VIP");
    vips.add(&vip).await.expect("adding again is fine");
    let shown = a.ip(&["-j", "addr", "show", "dev", "va"]);
    assert!(
        shown.contains(&format!(
            "\"local\":\"{VIP}\",\"prefixlen\":24,\"broadcast\":\"198.51.100.255\""
        )),
        "{shown}"
    );
    assert!(shown.contains("\"label\":\"va:1\""), "{shown}");
    assert!(vips.present(VIP).await.expect("present"));
    let listed = vips.list(false).await.expect("list");
    assert_eq!(listed, [Vip::new(A_ADDR, 24), vip.clone()]);
    // Tagged as the VRRP daemon's (iproute2 6.1 here cannot show it: ask the kernel).
    let protocols: Vec<_> = nl
        .addresses(index, false)
        .await
        .unwrap()
        .iter()
        .map(|m| {
            m.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Protocol(p) => Some(u8::from(*p)),
                _ => None,
            })
        })
        .collect();
    assert_eq!(protocols, [None, Some(vip::VIP_PROTOCOL)]);
    // The VIP must not be taken for the advert source even when it is the first address.
    let source = source_address(nl, index, false, &[A_ADDR]).await;
    assert_eq!(source.unwrap(), Some(VIP));

    vips.remove(&vip).await.expect("remove VIP");
    vips.remove(&vip).await.expect("removing again is fine");
    assert!(!vips.present(VIP).await.expect("present"));
    let shown = a.ip(&["-j", "addr", "show", "dev", "va"]);
    assert!(!shown.contains(&VIP.to_string()), "{shown}");
}

async fn adverts(sender: &AdvertSender, receiver: &AdvertReceiver) {
    let addrs = [VIP];
    let spec = AdvertSpec {
        ip_id: 0x1234,
        ..spec_v3(A_ADDR, vrrp_common::wire::VRRP_MULTICAST_V4.into(), &addrs)
    };
    let packet = round_trip(sender, receiver, &spec).await;
    let advert = vrrp_common::decode_ipv4(&packet).expect("decode");
    assert_eq!(
        (advert.ttl, advert.tos, advert.src, advert.ip_id),
        (255, 0xc0, A_ADDR, 0x1234)
    );
    assert_eq!((advert.vrid, advert.priority), (51, 150));
    assert_eq!(advert.addrs().collect::<Vec<_>>(), addrs);
}

/// A VRRPv3 advert of VRID 51 at priority 150, every second.
fn spec_v3(src: IpAddr, dst: IpAddr, addrs: &[IpAddr]) -> AdvertSpec<'_> {
    AdvertSpec {
        version: Version::V3,
        vrid: 51,
        priority: 150,
        interval_cs: 100,
        auth: Auth::None,
        src,
        dst,
        ip_id: 0,
        checksum_form: ChecksumForm::WithPseudoHeader,
        addrs,
    }
}

/// Sends the advert of `spec` and returns what the receiver got: the packet as built, the
/// header too (IPv6: rebuilt from what the socket tells), in one datagram.
async fn round_trip(
    sender: &AdvertSender,
    receiver: &AdvertReceiver,
    spec: &AdvertSpec<'_>,
) -> Vec<u8> {
    let mut packet = [0; MAX_ADVERT_LEN];
    let len = vrrp_common::encode(spec, &mut packet).expect("encode");
    sender.send(&packet[..len]).await.expect("send advert");
    let mut buf = [0; vrrp_common::maps::MAX_PACKET];
    let recv = tokio::time::timeout(Duration::from_secs(2), receiver.recv(&mut buf));
    let (got, reassembled) = recv.await.expect("no advert within 2 s").expect("recv");
    assert!(!reassembled, "one datagram, no fragments");
    assert_eq!(
        &buf[..got],
        &packet[..len],
        "to {}: the packet as sent",
        spec.dst
    );
    buf[..got].to_vec()
}

async fn garps(announcer: &Announcer, mac: [u8; 6], capture: &Socket) {
    announcer.announce(VIP, false).await.expect("send GARP");
    let mut expected = [0; GARP_FRAME_LEN];
    let IpAddr::V4(vip) = VIP else { unreachable!() };
    vrrp_common::encode_garp(mac, vip, &mut expected).expect("encode GARP");
    let mut frame = [0; 128];
    // Blocking with a timeout is fine here: the frame is already queued on the capture socket.
    let len = std::io::Read::read(&mut &*capture, &mut frame).expect("no GARP within 2 s");
    assert!(len >= GARP_FRAME_LEN, "short frame: {len}");
    assert_eq!(&frame[..GARP_FRAME_LEN], &expected);
}

/// IPv6 on the same veth pair: A's link-local is the advert source (a link-local VIP is not),
/// VIPs go on without duplicate address detection, adverts go out as built and come back with
/// their header rebuilt, multicast and to a link-local peer, and the NA leaves as encoded.
#[test]
fn netns_ipv6_source_vips_adverts_and_na() {
    if !is_root() {
        eprintln!("skipping netns_ipv6_source_vips_adverts_and_na: needs root");
        return;
    }
    let (a, b) = (Netns::new("v6-a"), Netns::new("v6-b"));
    for ns in [&a, &b] {
        // Addresses usable at once, as on a host up for a while.
        let sysctl = [
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ];
        for s in sysctl {
            run("ip", &["netns", "exec", &ns.0, "sysctl", "-qw", s]);
        }
    }
    a.ip(&[
        "link",
        "add",
        "va",
        "address",
        "02:00:00:00:00:01",
        "type",
        "veth",
        "peer",
        "name",
        "vb",
        "address",
        "02:00:00:00:00:02",
        "netns",
        &b.0,
    ]);
    a.ip(&["addr", "add", "2001:db8::1/64", "dev", "va"]);
    a.ip(&["link", "set", "va", "up"]);
    b.ip(&["link", "set", "vb", "up"]);
    // Frames sent before the carrier is seen are dropped (the queue is not set up yet).
    for (ns, dev) in [(&a, "va"), (&b, "vb")] {
        let up = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            ns.ip(&["link", "show", dev]).contains("state UP")
        });
        assert!(up, "{dev} not up");
    }
    on_own_thread(|| ipv6_in_namespaces(&a, &b));
}

const A_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
const B_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 2);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);
const VIP6_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

async fn ipv6_in_namespaces(a: &Netns, b: &Netns) {
    a.enter();
    let nl_a = Netlink::connect().expect("netlink in A");
    let links = Links::query(&nl_a).await.expect("links");
    let va = links.get("va").expect("va").clone();
    let mac = va.mac.expect("va has a MAC");
    let vips = Vips::new(nl_a.clone(), "va", va.index);
    // A link-local VIP added first must not become the source.
    let link_local_vip = Vip::new(VIP6_LINK_LOCAL.into(), 128);
    vips.add(&link_local_vip).await.expect("add fe80::1");
    let ours = [IpAddr::from(VIP6_LINK_LOCAL)];
    let source = source_address(&nl_a, va.index, true, &ours).await.unwrap();
    assert_eq!(source, Some(A_LINK_LOCAL.into()));
    let vip = Vip::new(VIP6.into(), 128);
    vips.add(&vip).await.expect("add VIP");
    vips.add(&vip).await.expect("adding again is fine");
    let shown = a.ip(&["-6", "addr", "show", "dev", "va"]);
    let line = shown
        .lines()
        .find(|l| l.contains("2001:db8::50/128"))
        .expect(&shown);
    assert!(
        line.contains("deprecated") && line.contains("nodad"),
        "{line}"
    );
    assert!(!line.contains("tentative"), "{line}");
    assert!(vips.present(VIP6.into()).await.unwrap());
    let listed = vips.list(true).await.unwrap();
    assert!(
        listed.iter().any(|v| v.addr == IpAddr::from(VIP6)),
        "{listed:?}"
    );
    vips.remove(&vip).await.expect("remove VIP");
    assert!(!vips.present(VIP6.into()).await.unwrap());

    let sender = AdvertSender::new("va", va.index, true).expect("advert sender");
    sender.join_vrrp_group().expect("join ff02::12");
    assert!(a.ip(&["maddr", "show", "dev", "va"]).contains("ff02::12"));
    let announcer = Announcer::new("va", va.index, mac).expect("announcer");

    b.enter();
    let nl_b = Netlink::connect().expect("netlink in B");
    let links = Links::query(&nl_b).await.expect("links");
    let vb = links.get("vb").expect("vb").clone();
    let receiver = AdvertReceiver::new("vb", vb.index, true).expect("advert receiver");
    let capture = capture(vb.index, ETH_P_IPV6);

    for dst in [VRRP_MULTICAST_V6, B_LINK_LOCAL] {
        let addrs = [IpAddr::from(VIP6_LINK_LOCAL), IpAddr::from(VIP6)];
        let spec = spec_v3(A_LINK_LOCAL.into(), dst.into(), &addrs);
        let packet = round_trip(&sender, &receiver, &spec).await;
        let advert = vrrp_common::decode_ipv6(&packet).expect("decode");
        assert_eq!((advert.ttl, advert.tos), (255, 0xc0));
        assert_eq!(advert.addrs().collect::<Vec<_>>(), addrs);
    }

    let router = announcer.forwarding();
    announcer
        .announce(VIP6.into(), router)
        .await
        .expect("send NA");
    let mut expected = [0; NA_FRAME_LEN];
    vrrp_common::encode_unsolicited_na(mac, VIP6, false, &mut expected).expect("encode NA");
    // The adverts above and the kernel's own IPv6 frames (MLD, router solicitations) pass by
    // too: the NA is the ICMPv6 (next header 58) Neighbor Advertisement (type 136).
    let mut frame = [0; 256];
    loop {
        let len = std::io::Read::read(&mut &capture, &mut frame).expect("no NA within 2 s");
        if len > 54 && frame[20] == 58 && frame[54] == 136 {
            assert_eq!(&frame[..len], &expected);
            break;
        }
    }
}

/// A packet socket on interface `index` that reads its frames of `ethertype`, 2 s at most.
fn capture(index: u32, ethertype: u16) -> Socket {
    let protocol = Protocol::from(i32::from(ethertype.to_be()));
    let socket = Socket::new(Domain::PACKET, Type::RAW, Some(protocol)).expect("capture socket");
    let addr = announce::link_addr(index, ethertype, ETH_BROADCAST).expect("sockaddr_ll");
    socket.bind(&addr).expect("bind capture socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("capture timeout");
    socket
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|byte| format!("{byte:02x}")).join(":")
}

#[test]
fn netns_no_accept_drops_vip_traffic_only() {
    if !is_root() {
        eprintln!("skipping netns_no_accept_drops_vip_traffic_only: needs root");
        return;
    }
    let (a, b) = veth_pair("nft", &[A_ADDR, VIP], &[B_ADDR]);
    // And IPv6: A's own address, an IPv6 VIP, B's address.
    for (ns, dev, addr) in [
        (&a, "va", "2001:db8::1"),
        (&a, "va", "2001:db8::50"),
        (&b, "vb", "2001:db8::2"),
    ] {
        ns.ip(&["addr", "add", &format!("{addr}/64"), "dev", dev, "nodad"]);
    }
    let (a6, vip6): (IpAddr, IpAddr) = ("2001:db8::1".parse().unwrap(), VIP6.into());
    let ping = |to: IpAddr| {
        Command::new("ip")
            .args(["netns", "exec", &b.0, "ping", "-c1", "-W1", &to.to_string()])
            .output()
            .expect("ping")
            .status
            .success()
    };
    let table = || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &a.0,
                "nft",
                "list",
                "table",
                "inet",
                "vrrp_agent",
            ])
            .output()
            .expect("nft")
    };
    assert!(ping(VIP) && ping(A_ADDR) && ping(vip6) && ping(a6));
    on_own_thread(|| async {
        a.enter();
        let mut fw = Firewall::default();
        fw.apply([VIP, vip6].into()).await.expect("apply");
        assert_eq!(fw.dropped(), &[VIP, vip6].into());
    });
    assert!(!ping(VIP), "traffic to the no_accept VIP still answered");
    assert!(
        !ping(vip6),
        "traffic to the no_accept IPv6 VIP still answered"
    );
    assert!(ping(A_ADDR) && ping(a6), "the rule must drop only the VIPs");
    // A new agent (after a crash) replaces the table, and an empty set deletes it.
    on_own_thread(|| async {
        a.enter();
        let mut fw = Firewall::default();
        fw.apply([VIP].into())
            .await
            .expect("apply over a stale table");
        fw.apply([].into()).await.expect("delete");
        fw.apply([].into()).await.expect("delete when absent");
    });
    assert!(!table().status.success(), "table left behind");
    assert!(ping(VIP));
}
