//! Root-only: every socket and address lives in two network namespaces made for the test, joined
//! by a veth pair (`va` in A, `vb` in B); addresses come from 198.51.100.0/24 and 203.0.113.0/24.

use std::fs::File;
use std::future::Future;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use rtnetlink::packet_route::address::AddressAttribute;
use socket2::{Domain, Protocol, Socket, Type};
use vrrp_common::wire::{ETH_BROADCAST, ETH_P_ARP, GARP_FRAME_LEN, MAX_ADVERT_LEN_V4};
use vrrp_common::{AdvertSpec, Auth, ChecksumForm, Version};

use super::*;
use crate::config::Vip;

const A_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const B_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// On `vb` before B_ADDR, as a VIP left by a crashed run would be.
const B_STALE_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

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
pub(super) fn veth_pair(tag: &str, a_addrs: &[Ipv4Addr], b_addrs: &[Ipv4Addr]) -> (Netns, Netns) {
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
        primary_ipv4(&nl_a, va.index, &[]).await.unwrap(),
        Some(A_ADDR)
    );
    // A new namespace's loopback has no address.
    let lo = links.get("lo").expect("lo");
    assert_eq!(primary_ipv4(&nl_a, lo.index, &[]).await.unwrap(), None);

    vips(a, &nl_a, va.index).await;

    let sender = AdvertSender::new("va", va.index).expect("advert sender");
    sender.join_vrrp_group().expect("join on the sender");
    assert!(a.ip(&["maddr", "show", "dev", "va"]).contains("224.0.0.18"));
    let garp = GarpSender::new("va", va.index, mac).expect("garp sender");

    b.enter();
    let nl_b = Netlink::connect().expect("netlink in B");
    let vb = Links::query(&nl_b)
        .await
        .expect("links in B")
        .get("vb")
        .expect("vb")
        .clone();
    let primary = primary_ipv4(&nl_b, vb.index, &[B_STALE_VIP]).await.unwrap();
    assert_eq!(
        primary,
        Some(B_ADDR),
        "the stale VIP must not be the primary"
    );
    let first = primary_ipv4(&nl_b, vb.index, &[]).await.unwrap();
    assert_eq!(first, Some(B_STALE_VIP), "first address in kernel order");
    let receiver = AdvertReceiver::new("vb", vb.index).expect("advert receiver");
    let arp_capture = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
    )
    .expect("capture socket");
    arp_capture
        .bind(&garp::link_addr(vb.index, ETH_P_ARP, ETH_BROADCAST).expect("sockaddr_ll"))
        .expect("bind capture socket");
    arp_capture
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("capture timeout");

    adverts(&sender, &receiver).await;
    garps(&garp, mac, &arp_capture).await;
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
    let listed = vips.list().await.expect("list");
    assert_eq!(listed, [Vip::new(A_ADDR, 24), vip.clone()]);
    // Tagged as the VRRP daemon's (iproute2 6.1 here cannot show it: ask the kernel).
    let protocols: Vec<_> = nl
        .ipv4_addresses(index)
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
    assert_eq!(primary_ipv4(nl, index, &[A_ADDR]).await.unwrap(), Some(VIP));

    vips.remove(&vip).await.expect("remove VIP");
    vips.remove(&vip).await.expect("removing again is fine");
    assert!(!vips.present(VIP).await.expect("present"));
    let shown = a.ip(&["-j", "addr", "show", "dev", "va"]);
    assert!(!shown.contains(&VIP.to_string()), "{shown}");
}

async fn adverts(sender: &AdvertSender, receiver: &AdvertReceiver) {
    let addrs = [VIP];
    let spec = AdvertSpec {
        version: Version::V3,
        vrid: 51,
        priority: 150,
        interval_cs: 100,
        auth: Auth::None,
        src: A_ADDR,
        dst: vrrp_common::wire::VRRP_MULTICAST_V4,
        ip_id: 0x1234,
        checksum_form: ChecksumForm::WithPseudoHeader,
        addrs: &addrs,
    };
    let mut packet = [0; MAX_ADVERT_LEN_V4];
    let len = vrrp_common::encode_ipv4(&spec, &mut packet).expect("encode");
    sender.send(&packet[..len]).await.expect("send advert");

    let mut buf = [0; MAX_ADVERT_LEN_V4 + 40];
    let (got, reassembled) = tokio::time::timeout(Duration::from_secs(2), receiver.recv(&mut buf))
        .await
        .expect("no advert within 2 s")
        .expect("recv");
    assert!(!reassembled, "one datagram, no fragments");
    assert_eq!(
        &buf[..got],
        &packet[..len],
        "the IP header must go out as built"
    );
    let advert = vrrp_common::decode_ipv4(&buf[..got]).expect("decode");
    assert_eq!(
        (advert.ttl, advert.tos, advert.src, advert.ip_id),
        (255, 0xc0, A_ADDR, 0x1234)
    );
    assert_eq!((advert.vrid, advert.priority), (51, 150));
    assert_eq!(advert.addrs().collect::<Vec<_>>(), addrs);
}

async fn garps(garp: &GarpSender, mac: [u8; 6], capture: &Socket) {
    garp.announce(VIP).await.expect("send GARP");
    let mut expected = [0; GARP_FRAME_LEN];
    vrrp_common::encode_garp(mac, VIP, &mut expected).expect("encode GARP");
    let mut frame = [0; 128];
    // Blocking with a timeout is fine here: the frame is already queued on the capture socket.
    let len = std::io::Read::read(&mut &*capture, &mut frame).expect("no GARP within 2 s");
    assert!(len >= GARP_FRAME_LEN, "short frame: {len}");
    assert_eq!(&frame[..GARP_FRAME_LEN], &expected);
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
    let ping = |to: Ipv4Addr| {
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
    assert!(ping(VIP) && ping(A_ADDR));
    on_own_thread(|| async {
        a.enter();
        let mut fw = Firewall::default();
        fw.apply([VIP].into()).await.expect("apply");
        assert_eq!(fw.dropped(), &[VIP].into());
    });
    assert!(!ping(VIP), "traffic to the no_accept VIP still answered");
    assert!(ping(A_ADDR), "the rule must drop only the VIPs");
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
