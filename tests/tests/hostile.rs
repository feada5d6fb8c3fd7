//! Hostile and malformed input on the segment never moves the VIP: frames an attacker or a
//! neighbouring group puts on the wire, end to end in the namespace test bed (`vrrp_lab::Lab`:
//! r1 priority 200, r2 100, VRID 51, 100 ms adverts) with a third host playing the sender.
//!
//! Root only (skipped otherwise); run through `cargo xtask test`, which builds the agent and
//! installs trafgen (netsniff-ng) first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use vrrp_lab::frames::{
    advert_frame, checksum, fragmented, parse_mac, reseal, vlan_tagged, with_record_route,
    TPID_8021AD, TPID_8021Q,
};
use vrrp_lab::lab::{
    count_after, Family, Lab, IFACE, ROUTERS, SEC, SETTLE, VIP, VIP6, VIP6_LINK_LOCAL,
};
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
    let mut tagged = lab.send_frames("spoof", &[vlan_tagged(&advert, TPID_8021Q, 100)], gap, 20);
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
    let log = lab.status("r1", "status: ");
    count_after(&log, " sent ")
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

/// One spoofed advert with the longest VRRPv3 interval (40.95 s) and priority 255: both
/// routers follow it and adopt its interval (RFC 9568 §6.4.2), so once it is silent nobody
/// took over for three of its intervals (2 minutes without the VIP on either router). Adopted
/// as max_adopted_interval (default 10 × 100 ms), r1 takes the VIP back in about 3.2 s.
#[test]
fn spoofed_long_interval_cannot_leave_the_vip_unowned() {
    skip_unless_root!();
    let mut lab = Lab::new("ho_interval");
    lab.elect_r1(&[], SETTLE);
    let (src, vip) = spoofer(&mut lab);
    let mark = lab.log_len("r1");
    let mut spoof = lab.send_frames(
        "spoof",
        &[advert_frame(src, 51, 255, 4095, &[vip])],
        Duration::from_millis(1),
        1,
    );
    let sent = spoof.wait_timeout(10 * SEC);
    lab.check(sent.is_some_and(|s| s.success()), "trafgen failed");
    lab.wait_log("r1", mark, "MASTER -> BACKUP", SETTLE);
    lab.wait_log("r1", mark, "BACKUP -> MASTER", 6 * SEC);
    lab.wait_holders(&["r1"], SEC);
    let log = lab.status("r1", "intervals capped");
    lab.check(
        count_after(&log, "intervals capped ") == Some(1),
        &format!("the capped interval is not counted:\n{log}"),
    );
}

/// What master r1 (priority 200) does with a priority-255 advert for its group: resigns, or
/// drops it and stays master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Acted,
    Dropped,
}

/// One bad-input class, as frames sent in turn, and the verdict the receive rules give it.
struct Case {
    name: &'static str,
    frames: Vec<Vec<u8>>,
    want: Verdict,
    /// A VLAN tag: the lab's bridge hands it to XDP in the frame's metadata (see
    /// `tagged_advert_is_not_ours`), so the XDP run leaves these out.
    tagged: bool,
}

/// The deterministic variants of every bad-input class, one change each from a sound advert
/// (both checksums recomputed, so only the changed check fails), and the sound ones beside.
fn frame_matrix(src: ([u8; 6], Ipv4Addr), vip: Ipv4Addr) -> Vec<Case> {
    let sound = advert_frame(src, 51, 255, 10, &[vip]);
    // Offsets in the frame: IPv4 header at 14, VRRP message at 34.
    let changed = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut f = sound.clone();
        edit(&mut f);
        reseal(&mut f);
        f
    };
    let other: Ipv4Addr = "198.51.100.101".parse().unwrap();
    let r1: Ipv4Addr = vrrp_lab::topology::R1_ADDR.parse().unwrap();
    let case = |name, frames, want| Case {
        name,
        frames,
        want,
        tagged: false,
    };
    let mut message_only = sound.clone();
    message_only[40..42].fill(0);
    let c = checksum(&[&message_only[34..]]);
    message_only[40..42].copy_from_slice(&c.to_be_bytes());
    let mut padded = sound.clone();
    padded.extend([0; 14]);
    use Verdict::{Acted, Dropped};
    vec![
        case("sound advert", vec![sound.clone()], Acted),
        case("Ethernet padding past the packet", vec![padded], Acted),
        case(
            "VRRPv3 checksum over the message only",
            vec![message_only],
            Acted,
        ),
        case(
            "bad IPv4 header checksum",
            vec![flipped(&sound, 24)],
            Dropped,
        ),
        case("bad VRRP checksum", vec![flipped(&sound, 40)], Dropped),
        case("TTL 254", vec![changed(&|f| f[22] = 254)], Dropped),
        case("VRRP version 4", vec![changed(&|f| f[34] = 0x41)], Dropped),
        case("VRRP type 2", vec![changed(&|f| f[34] = 0x32)], Dropped),
        case("address count 0", vec![changed(&|f| f[37] = 0)], Dropped),
        case(
            "count 2, one address",
            vec![changed(&|f| f[37] = 2)],
            Dropped,
        ),
        case(
            "advert interval 0",
            vec![changed(&|f| f[38..40].fill(0))],
            Dropped,
        ),
        case(
            "IP total length past the frame",
            vec![{
                let mut f = sound.clone();
                f.truncate(f.len() - 4);
                f
            }],
            Dropped,
        ),
        case(
            "IPv4 options (Record Route)",
            vec![with_record_route(&sound)],
            Dropped,
        ),
        case("two IPv4 fragments", fragmented(&sound).to_vec(), Dropped),
        case(
            "from our own address",
            vec![advert_frame((src.0, r1), 51, 255, 10, &[vip])],
            Dropped,
        ),
        case(
            "our address and another",
            vec![advert_frame(src, 51, 255, 10, &[vip, other])],
            Dropped,
        ),
        case(
            "another address instead of ours",
            vec![advert_frame(src, 51, 255, 10, &[other])],
            Dropped,
        ),
        Case {
            tagged: true,
            ..case(
                "802.1Q VLAN 100",
                vec![vlan_tagged(&sound, TPID_8021Q, 100)],
                Dropped,
            )
        },
        Case {
            tagged: true,
            ..case(
                "QinQ 802.1ad 200, 802.1Q 100",
                vec![vlan_tagged(
                    &vlan_tagged(&sound, TPID_8021Q, 100),
                    TPID_8021AD,
                    200,
                )],
                Dropped,
            )
        },
    ]
}

/// One verdict on every receive path: each case of [`frame_matrix`] is sent three times to r1
/// (a resignation is the proof it was acted on; r1 takes the VIP back once the sender is
/// silent), and the verdicts must be the table's. (Before: fragments were acted on by the raw
/// socket only, which gets them reassembled; a Record Route option by XDP/TC only, while the
/// raw socket got the header as the kernel rewrote it; the address list was never checked.)
fn one_verdict_on_every_path(name: &str, xdp: &str, family: Family) {
    let mut lab = Lab::of(family, name);
    lab.elect_r1(&["--xdp", xdp], SETTLE);
    let (src, vip) = spoofer(&mut lab);
    let matrix = match family {
        Family::V4 => frame_matrix(src, vip),
        Family::V6 => frame_matrix_v6(src.0, &lab.source_addr("r1")),
    };
    let mut wrong = Vec::new();
    for case in matrix {
        if case.tagged && xdp == "skb" {
            continue;
        }
        let mark = lab.log_len("r1");
        let count = 3 * case.frames.len() as u32;
        let mut sending = lab.send_frames("spoof", &case.frames, Duration::from_millis(20), count);
        let sent = sending.wait_timeout(10 * SEC);
        lab.check(sent.is_some_and(|s| s.success()), "trafgen failed");
        std::thread::sleep(Duration::from_millis(300));
        let got = if lab.log_since("r1", mark).contains("MASTER -> BACKUP") {
            lab.wait_log("r1", mark, "BACKUP -> MASTER", SETTLE);
            Verdict::Acted
        } else {
            Verdict::Dropped
        };
        if got != case.want {
            wrong.push(format!(
                "{}: {got:?}, the rule says {:?}",
                case.name, case.want
            ));
        }
    }
    lab.check(
        wrong.is_empty(),
        &format!(
            "--xdp {xdp} decides otherwise than the rules:\n{}",
            wrong.join("\n")
        ),
    );
}

#[test]
fn one_verdict_on_every_path_tc() {
    skip_unless_root!();
    one_verdict_on_every_path("ho_matrix_tc", "tc", Family::V4);
}

#[test]
fn one_verdict_on_every_path_ipv6_tc() {
    skip_unless_root!();
    one_verdict_on_every_path("ho_matrix6_tc", "tc", Family::V6);
}

#[test]
fn one_verdict_on_every_path_ipv6_raw_socket() {
    skip_unless_root!();
    one_verdict_on_every_path("ho_matrix6_raw", "off", Family::V6);
}

#[test]
fn one_verdict_on_every_path_xdp() {
    skip_unless_root!();
    one_verdict_on_every_path("ho_matrix_skb", "skb", Family::V4);
}

#[test]
fn one_verdict_on_every_path_raw_socket() {
    skip_unless_root!();
    one_verdict_on_every_path("ho_matrix_raw", "off", Family::V4);
}

/// `frame` with the byte at `at` inverted and the checksums left as they were.
fn flipped(frame: &[u8], at: usize) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[at] ^= 0xff;
    f
}

/// The matrix over IPv6, from a link-local source on the spoofer's MAC, to an instance with
/// VIPs fe80::1 and 2001:db8::100 (`r1` is its link-local address): the RFC 9568 checks, and an
/// advert behind a hop-by-hop header, which no path follows (the kernel program does not walk
/// extension headers; the raw socket, behind which the kernel consumed it, is told and refuses).
fn frame_matrix_v6(mac: [u8; 6], r1: &str) -> Vec<Case> {
    let src: IpAddr = "fe80::30".parse().unwrap();
    let ours: [IpAddr; 2] = [VIP6_LINK_LOCAL.parse().unwrap(), VIP6.parse().unwrap()];
    let sound = advert_frame((mac, src), 51, 255, 10, &ours);
    // Offsets in the frame: IPv6 header at 14, VRRP message at 54.
    let changed = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut f = sound.clone();
        edit(&mut f);
        reseal(&mut f);
        f
    };
    let mut hop_by_hop = sound.clone();
    // Next header VRRP, length 0, a PadN option of 4 bytes; the VRRP checksum stays valid.
    hop_by_hop.splice(54..54, [112, 0, 1, 4, 0, 0, 0, 0]);
    hop_by_hop[20] = 0;
    hop_by_hop[19] += 8;
    let other: IpAddr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x101).into();
    let r1: IpAddr = r1.parse().unwrap();
    let case = |name, frames, want| Case {
        name,
        frames,
        want,
        tagged: false,
    };
    use Verdict::{Acted, Dropped};
    vec![
        case("sound advert", vec![sound.clone()], Acted),
        case(
            "the list in another order",
            vec![advert_frame((mac, src), 51, 255, 10, &[ours[1], ours[0]])],
            Acted,
        ),
        case("bad VRRP checksum", vec![flipped(&sound, 60)], Dropped),
        case("hop limit 254", vec![changed(&|f| f[21] = 254)], Dropped),
        case(
            "VRRPv2 over IPv6",
            vec![changed(&|f| f[54] = 0x21)],
            Dropped,
        ),
        case("address count 0", vec![changed(&|f| f[57] = 0)], Dropped),
        case(
            "advert interval 0",
            vec![changed(&|f| f[58..60].fill(0))],
            Dropped,
        ),
        case("behind a hop-by-hop header", vec![hop_by_hop], Dropped),
        case(
            "from our own address",
            vec![advert_frame((mac, r1), 51, 255, 10, &ours)],
            Dropped,
        ),
        case(
            "another address instead of ours",
            vec![advert_frame((mac, src), 51, 255, 10, &[ours[0], other])],
            Dropped,
        ),
    ]
}

/// Replies of `count` pings from the client to the VIP, 100 ms apart.
fn pings_answered(lab: &Lab, count: u32) -> u32 {
    let out = lab.topo.ns("client").run(
        "ping",
        [
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.1",
            "-W",
            "1",
            VIP,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(", ")
        .find_map(|part| part.strip_suffix(" received")?.parse().ok())
        .unwrap_or(0)
}

/// A storm of every bad-input class at once (each frame of the matrix that must be dropped, in
/// turn, 5,000 a second for 4 s) on a healthy pair: no transition on either router, r1 stays
/// master, the client keeps reaching the VIP, r1's log grows by a few lines at most, and the
/// rejects are counted (by the check that failed, where the agent sees them all).
fn storm_moves_nothing(name: &str, xdp: &str) {
    let mut lab = Lab::new(name);
    lab.elect_r1(&["--xdp", xdp], SETTLE);
    lab.wait_client_reaches_vip_at("r1", SETTLE);
    let (src, vip) = spoofer(&mut lab);
    let frames: Vec<Vec<u8>> = frame_matrix(src, vip)
        .into_iter()
        .filter(|c| c.want == Verdict::Dropped)
        .flat_map(|c| c.frames)
        .collect();
    let marks = [lab.log_len("r1"), lab.log_len("r2")];
    let mut storm = lab.send_frames("spoof", &frames, Duration::from_micros(200), 20_000);
    let answered = pings_answered(&lab, 30);
    let sent = storm.wait_timeout(15 * SEC);
    lab.check(sent.is_some_and(|s| s.success()), "trafgen failed");
    for (role, mark) in ROUTERS.iter().zip(marks) {
        let log = lab.log_since(role, mark);
        lab.check(
            !log.contains(" -> "),
            &format!("{role} changed state in the storm:\n{log}"),
        );
    }
    lab.assert_state("r1", "MASTER");
    lab.check(
        answered >= 29,
        &format!("the client got {answered} of 30 replies from the VIP"),
    );
    let lines = lab.log_since("r1", marks[0]).lines().count();
    lab.check(lines <= 5, &format!("r1 logged {lines} lines in the storm"));

    let status = lab.status("r1", "status: ");
    let counted = if xdp == "off" {
        // Every class the kernel lets through to the socket, counted by its check.
        let by = status.split("rejected ").nth(1).unwrap_or_default();
        let reasons = by
            .split_once(')')
            .map_or(0, |(r, _)| r.matches(',').count() + 1);
        reasons >= 6
    } else {
        // The kernel counts them all; the agent sees one a second, with its reason.
        count_after(&status, "kernel: rejected ").is_some_and(|n| n > 5_000)
    };
    lab.check(
        counted,
        &format!("rejects not counted as they should be:\n{status}"),
    );
}

#[test]
fn storm_of_every_bad_class_moves_nothing_tc() {
    skip_unless_root!();
    storm_moves_nothing("ho_storm_tc", "tc");
}

#[test]
fn storm_of_every_bad_class_moves_nothing_raw_socket() {
    skip_unless_root!();
    storm_moves_nothing("ho_storm_raw", "off");
}
