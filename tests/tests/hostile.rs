//! Hostile and malformed input on the segment never moves the VIP: frames an attacker or a
//! neighbouring group puts on the wire, end to end in the namespace test bed (`vrrp_lab::Lab`:
//! r1 priority 200, r2 100, VRID 51, 100 ms adverts) with a third host playing the sender.
//!
//! Root only (skipped otherwise); run through `cargo xtask test`, which builds the agent and
//! installs trafgen (netsniff-ng) first.

use std::net::Ipv4Addr;
use std::time::Duration;

use vrrp_lab::frames::{advert_frame, parse_mac, vlan_tagged};
use vrrp_lab::lab::{count_after, Lab, IFACE, SEC, SETTLE, VIP};
use vrrp_lab::skip_unless_root;

/// A host on the segment playing the attacker: its MAC and address, and our VIP.
fn spoofer(lab: &mut Lab) -> (([u8; 6], Ipv4Addr), Ipv4Addr) {
    lab.topo.add_host("spoof", "198.51.100.30/24").unwrap();
    let mac = parse_mac(&lab.topo.ns("spoof").mac(IFACE).unwrap()).unwrap();
    (
        (mac, "198.51.100.30".parse().unwrap()),
        VIP.parse().unwrap(),
    )
}

/// An 802.1Q-tagged advert belongs to that VLAN's interface, not to the untagged one: VLAN
/// 100's group reusing VRID 51 at priority 255 must not make eth0's master resign (VRIDs are
/// reused per VLAN; keepalived and the raw socket never see such frames on the parent). The same
/// advert untagged does make it resign: the control that the frames reach r1.
///
/// TC ingress and the raw socket only: the lab's bridge moves the tag into the frame's metadata,
/// where an XDP program cannot see it (a NIC with rx-vlan-offload does the same); see README,
/// Receive paths.
fn tagged_advert_is_not_ours(name: &str, xdp: &str) {
    let mut lab = Lab::new(name);
    lab.elect_r1(&["--xdp", xdp], SETTLE);
    let (src, vip) = spoofer(&mut lab);
    let advert = advert_frame(src, 51, 255, 10, &[vip]);

    let mark = lab.log_len("r1");
    let gap = Duration::from_millis(50);
    let mut tagged = lab.send_frames("spoof", &[vlan_tagged(&advert, 100)], gap, 20);
    let sent = tagged.wait_timeout(10 * SEC);
    lab.check(sent.is_some_and(|s| s.success()), "trafgen failed");
    // Several master-down intervals of r1's own group (0.36 s) after the last tagged advert.
    std::thread::sleep(SEC);
    let log = lab.log_since("r1", mark);
    lab.check(
        !log.contains("MASTER -> BACKUP"),
        &format!("a VLAN 100 advert made eth0's master resign ({xdp}):\n{log}"),
    );
    lab.assert_state("r1", "MASTER");

    let mut control = lab.send_frames("spoof", &[advert], gap, 1);
    control.wait_timeout(10 * SEC);
    lab.wait_log("r1", mark, "MASTER -> BACKUP", SETTLE);
    // With the spoofer silent, r1 preempts back.
    lab.wait_holders(&["r1"], SETTLE);
}

#[test]
fn tagged_advert_is_not_ours_tc() {
    skip_unless_root!();
    tagged_advert_is_not_ours("ho_vlan_tc", "tc");
}

#[test]
fn tagged_advert_is_not_ours_raw_socket() {
    skip_unless_root!();
    tagged_advert_is_not_ours("ho_vlan_raw", "off");
}

/// r1's SIGUSR1 status line: adverts sent so far.
fn adverts_sent(lab: &mut Lab) -> u64 {
    let log = lab.status("r1", "status: sent ");
    count_after(&log, "status: sent ")
        .unwrap_or_else(|| lab.fail(&format!("no advert count in r1's status:\n{log}")))
}

/// Each lower-priority or priority-0 advert asks the master for an advert at once (RFC 9568
/// §6.4.3); 2,000 spoofed ones in 0.2 s must not make it send 2,000: at most four answers per
/// advert interval (100 ms), beside its own adverts, and it stays master.
#[test]
fn spoofed_low_priority_adverts_get_a_bounded_answer() {
    skip_unless_root!();
    let mut lab = Lab::new("ho_answer");
    lab.elect_r1(&[], SETTLE);
    let (src, vip) = spoofer(&mut lab);
    let frames = [
        advert_frame(src, 51, 50, 10, &[vip]),
        advert_frame(src, 51, 0, 10, &[vip]),
    ];
    let before = adverts_sent(&mut lab);
    let started = std::time::Instant::now();
    let mut storm = lab.send_frames("spoof", &frames, Duration::from_micros(100), 1000);
    let sent = storm.wait_timeout(10 * SEC);
    lab.check(sent.is_some_and(|s| s.success()), "trafgen failed");
    let took = started.elapsed();
    let answers = adverts_sent(&mut lab) - before;
    // Its own adverts over the storm and the status round trips, plus four answers per interval.
    let intervals = took.as_millis() as u64 / 100 + 2;
    lab.check(
        answers <= 5 * intervals,
        &format!("2000 spoofed adverts in {took:?} made r1 send {answers} adverts"),
    );
    lab.assert_state("r1", "MASTER");
}

/// An advert with a bad VRRP checksum is no advert (RFC 9568 §7.1: verify before acting): a
/// storm of them, priority 255 for our VRID, must not keep r2 from taking over from a dead
/// master. (The kernel program once recorded them as the master's adverts, and the agent
/// replayed the record at each Master_Down deadline: no takeover for the whole storm.)
fn bad_checksum_storm_does_not_hold_off_takeover(name: &str, xdp: &str) {
    let mut lab = Lab::new(name);
    lab.elect_r1(&["--xdp", xdp], SETTLE);
    let (src, vip) = spoofer(&mut lab);
    let mut bad = advert_frame(src, 51, 255, 10, &[vip]);
    // Ethernet 14 + IPv4 20 + the checksum's offset in the VRRP header, 6.
    bad[14 + 20 + 6] ^= 0xff;
    let mut storm = lab.send_frames("spoof", &[bad], Duration::from_millis(50), 80);
    std::thread::sleep(Duration::from_millis(300));
    let mark = lab.log_len("r2");
    lab.agent("r1").kill9().unwrap();
    // Master_Down is 0.36 s; the storm goes on for about 3.7 s more.
    lab.wait_log("r2", mark, "BACKUP -> MASTER", 2 * SEC);
    let sent = storm.wait_timeout(10 * SEC);
    lab.check(sent.is_some_and(|s| s.success()), "trafgen failed");
}

#[test]
fn bad_checksum_storm_does_not_hold_off_takeover_tc() {
    skip_unless_root!();
    bad_checksum_storm_does_not_hold_off_takeover("ho_csum_tc", "tc");
}

#[test]
fn bad_checksum_storm_does_not_hold_off_takeover_xdp() {
    skip_unless_root!();
    bad_checksum_storm_does_not_hold_off_takeover("ho_csum_skb", "skb");
}

#[test]
fn bad_checksum_storm_does_not_hold_off_takeover_raw_socket() {
    skip_unless_root!();
    bad_checksum_storm_does_not_hold_off_takeover("ho_csum_raw", "off");
}

/// The client's neighbour entry for the VIP: the MAC it sends the VIP's traffic to.
fn client_vip_mac(lab: &Lab) -> Option<String> {
    let out = lab.topo.ns("client").run_ok("ip", ["neigh", "show", VIP]);
    let mut words = out.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_owned)
}

/// A host on the segment claims our VIP with one gratuitous ARP (a misconfigured host, or a
/// poisoning attempt): clients would send the VIP's traffic to it. The master, told by its
/// kernel program, answers with its own gratuitous ARP, and the client's entry is r1's again.
#[test]
fn arp_claiming_our_vip_is_answered() {
    skip_unless_root!();
    let mut lab = Lab::new("ho_arp");
    lab.elect_r1(&[], SETTLE);
    lab.wait_client_reaches_vip_at("r1", SETTLE);
    let r1_mac = lab.topo.ns("r1").mac(IFACE).unwrap();
    let ((spoof_mac, _), vip) = spoofer(&mut lab);
    let mut garp = [0u8; 64];
    let len = vrrp_common::encode_garp(spoof_mac, vip, &mut garp).unwrap();
    let mut claim = lab.send_frames(
        "spoof",
        &[garp[..len].to_vec()],
        Duration::from_millis(1),
        1,
    );
    claim.wait_timeout(10 * SEC);
    let back = vrrp_lab::wait_until(2 * SEC, Duration::from_millis(20), || {
        client_vip_mac(&lab).as_deref() == Some(r1_mac.as_str())
    });
    lab.check(
        back,
        &format!(
            "the client still sends the VIP's traffic to {:?} (r1 is {r1_mac})",
            client_vip_mac(&lab)
        ),
    );
}
