//! Interop end-to-end tests with keepalived 2.2.7 (Debian): keepalived in one router namespace,
//! `vrrp-agent` in the other (or a third), in the lab of `vrrp_lab::lab::Lab`, VRID 51,
//! VIP 198.51.100.100/24. Both implementations run the same keepalived.conf text
//! (`vrrp_lab::keepalived::conf`; the agent reads it with `-f`). Each case asserts which namespaces
//! hold the VIP, keepalived's state from its log, the agent's state from its log, and that
//! neither side rejected an advert of the other.
//!
//! Checksums: keepalived 2.2.7 sends, and accepts only, the VRRPv3 checksum that covers the IPv4
//! pseudo-header; `v3_checksum_as_v2` (RFC 9568's form) came with keepalived 2.2.8, and 2.2.7
//! logs "Unknown keyword" and ignores it. So the agents here send the pseudo-header form too (the
//! default), and `v3_checksum_as_v2_splits_from_keepalived_2_2_7` pins what the other form does.
//!
//! Root only (skipped otherwise); run through `cargo xtask test`, which builds the agent and
//! installs keepalived first.

use std::time::Duration;

use vrrp_lab::keepalived::{conf, InstanceSpec};
use vrrp_lab::lab::{Family, Impl, Lab, IFACE, POLL, SEC, SETTLE, VIP6_CIDR, VIP6_LINK_LOCAL};
use vrrp_lab::{skip_unless_root, wait_until, R1_ADDR, R1_ADDR6, R2_ADDR, R2_ADDR6};

const R3_ADDR: &str = "198.51.100.3";

/// keepalived's log lines for adverts it throws away (vrrp.c, `vrrp_check_packet`), and for
/// falling back to the pre-2.0 unicast checksum.
const KEEPALIVED_REJECTS: &[&str] = &[
    "Invalid",
    "invalid",
    "wrong version",
    "mismatch",
    "unexpected",
    "not present in MASTER advert",
    "vrrp packet too",
    "Expected ",
    "not a unicast peer",
    "auth, expecting",
    "old version",
];

/// For `period`, `master` alone holds the VIP and no one logs a new transition; at the end
/// `master` is MASTER and `backups` are BACKUP by their logs. A backup that rejected or missed
/// the master's adverts would take over within one Master_Down_Interval.
#[track_caller]
fn assert_stable(lab: &mut Lab, master: &str, backups: &[&str], period: Duration) {
    let roles: Vec<&str> = [master].iter().chain(backups).copied().collect();
    let marks: Vec<usize> = roles.iter().map(|r| lab.log_len(r)).collect();
    let changed = wait_until(period, POLL * 2, || lab.holders() != [master]);
    lab.check(
        !changed,
        &format!(
            "VIP holders changed to {:?}, want [{master}]",
            lab.holders()
        ),
    );
    for (r, mark) in roles.iter().zip(marks) {
        let imp = lab.imp(r);
        let new = lab.log(r)[mark..].to_owned();
        let flapped = ["MASTER", "BACKUP"]
            .iter()
            .any(|s| new.contains(&imp.entered(s)));
        lab.check(!flapped, &format!("{r} changed state:\n{new}"));
    }
    lab.assert_state(master, "MASTER");
    for b in backups {
        lab.assert_state(b, "BACKUP");
    }
}

/// SIGTERM to what runs in `role`; waits until it has exited and checks it said goodbye with a
/// priority-0 advert.
#[track_caller]
fn term(lab: &mut Lab, role: &str) {
    match lab.imp(role) {
        Impl::Ours => {
            let agent = lab.agent(role);
            agent.term().unwrap();
            let status = agent.wait_timeout(5 * SEC);
            lab.check(
                status.is_some_and(|s| s.success()),
                &format!("{role}'s agent did not exit cleanly on SIGTERM: {status:?}"),
            );
            lab.wait_log(role, 0, "SIGTERM: handing over", SEC);
            lab.wait_log(role, 0, "MASTER -> INIT: shutdown", SEC);
        }
        Impl::Keepalived => {
            let stopped = lab.keepalived(role).term();
            lab.ok(stopped);
            lab.wait_log(role, 0, "(VI_1) sent 0 priority", SEC);
        }
    }
}

/// Checks that `role`, which took over from a master that stopped, got its priority-0 advert:
/// keepalived logs it (after byte `since`); the agent's kernel map holds it as the last advert
/// seen (SIGUSR1 status line).
#[track_caller]
fn assert_heard_priority_0(lab: &mut Lab, role: &str, since: usize, from: &str) {
    match lab.imp(role) {
        Impl::Keepalived => {
            lab.wait_log(role, since, "Backup received priority 0 advertisement", SEC)
        }
        Impl::Ours => {
            lab.status(role, &format!("last from {from} prio 0 "));
        }
    }
}

/// Neither implementation rejected an advert, in every log of the routers.
#[track_caller]
fn assert_no_rejects(lab: &mut Lab) {
    for r in lab.routers().to_vec() {
        let Some(imp) = lab.started(r) else {
            continue;
        };
        let log = lab.log(r);
        let bad: Vec<&str> = match imp {
            Impl::Ours => log
                .lines()
                .filter(|l| l.contains("ignored advert"))
                .collect(),
            Impl::Keepalived => log
                .lines()
                .filter(|l| KEEPALIVED_REJECTS.iter().any(|n| l.contains(n)))
                .collect(),
        };
        lab.check(bad.is_empty(), &format!("{r} rejected adverts: {bad:#?}"));
    }
}

/// The advert settings of a [`pair`] run.
#[derive(Clone, Copy)]
struct Mode {
    version: u8,
    interval: Duration,
    /// `vrrp_rt_priority`, keepalived's setting for short intervals.
    rt_priority: Option<u8>,
}

const V2_1S: Mode = Mode {
    version: 2,
    interval: SEC,
    rt_priority: None,
};
const V3_100MS: Mode = Mode {
    version: 3,
    interval: Duration::from_millis(100),
    rt_priority: None,
};
const V3_10MS: Mode = Mode {
    version: 3,
    interval: Duration::from_millis(10),
    // At normal priority, keepalived's VRRP process on a busy 2-CPU host sometimes sends late
    // enough for its peer's 36 ms Master_Down_Interval to run out.
    rt_priority: Some(1),
};

impl Mode {
    fn spec(self, priority: u8, state: &str) -> InstanceSpec {
        self.spec_of(Family::V4, priority, state)
    }

    /// The instance over `family`: IPv6 with the link-local VIP first, as RFC 9568 wants.
    fn spec_of(self, family: Family, priority: u8, state: &str) -> InstanceSpec {
        let vips = match family {
            Family::V4 => InstanceSpec::default().vips,
            Family::V6 => vec![VIP6_LINK_LOCAL.into(), VIP6_CIDR.into()],
        };
        InstanceSpec {
            vips,
            version: self.version,
            interval: self.interval,
            priority,
            state: state.into(),
            rt_priority: self.rt_priority,
            // VRRPv2 as the keepalived tutorials set it up.
            auth_pass: (self.version == 2).then(|| "s3cr3t".into()),
            ..Default::default()
        }
    }

    /// Bound for an election: Master_Down_Interval is ~3.6 intervals, plus start-up.
    fn timeout(self) -> Duration {
        SETTLE.max(self.interval * 10)
    }

    /// Several Master_Down_Intervals.
    fn stable(self) -> Duration {
        SEC.max(self.interval * 4)
    }
}

/// `master`'s implementation runs in r1 at priority 200, the other in r2 at 100:
/// 1. r2 starts alone and takes the VIP;
/// 2. r1 starts later and preempts it;
/// 3. both stay put for several Master_Down_Intervals: each accepts the other's adverts;
/// 4. SIGTERM to r1: r2 takes over on its priority-0 advert.
fn pair(name: &str, master: Impl, mode: Mode) {
    pair_of(Family::V4, name, master, mode);
}

fn pair_of(family: Family, name: &str, master: Impl, mode: Mode) {
    let mut lab = Lab::of(family, name);
    if family == Family::V6 {
        lab.wait_link_local();
    }
    let t = mode.timeout();
    let spec = |priority, state| conf(&mode.spec_of(family, priority, state));
    lab.start_as("r2", master.other(), &spec(100, "BACKUP"));
    lab.wait_holders(&["r2"], t);
    lab.wait_entered("r2", 0, "MASTER", t);

    let mark = lab.log_len("r2");
    lab.start_as("r1", master, &spec(200, "MASTER"));
    lab.wait_holders(&["r1"], t);
    lab.wait_entered("r1", 0, "MASTER", t);
    lab.wait_entered("r2", mark, "BACKUP", t);
    assert_stable(&mut lab, "r1", &["r2"], mode.stable());
    lab.wait_client_reaches_vip_at("r1", t);

    let mark = lab.log_len("r2");
    term(&mut lab, "r1");
    lab.wait_holders(&["r2"], t);
    lab.wait_entered("r2", mark, "MASTER", t);
    let r1 = lab.source_addr("r1");
    assert_heard_priority_0(&mut lab, "r2", mark, &r1);
    assert_no_rejects(&mut lab);
    lab.wait_client_reaches_vip_at("r2", t);
}

/// VRRPv2, `auth_type PASS`, 1 s adverts (keepalived's defaults); ours is the master.
#[test]
fn v2_pass_1s_ours_master() {
    skip_unless_root!();
    pair("io_v2_ours", Impl::Ours, V2_1S);
}

/// VRRPv2, `auth_type PASS`, 1 s adverts; keepalived is the master.
#[test]
fn v2_pass_1s_keepalived_master() {
    skip_unless_root!();
    pair("io_v2_ka", Impl::Keepalived, V2_1S);
}

/// VRRPv3 at 100 ms, keepalived's default checksum (IPv4 pseudo-header); ours is the master.
#[test]
fn v3_100ms_ours_master() {
    skip_unless_root!();
    pair("io_v3_100_ours", Impl::Ours, V3_100MS);
}

/// VRRPv3 at 100 ms; keepalived is the master.
#[test]
fn v3_100ms_keepalived_master() {
    skip_unless_root!();
    pair("io_v3_100_ka", Impl::Keepalived, V3_100MS);
}

/// VRRPv3 over IPv6 at 100 ms (keepalived's IPv6 adverts: link-local source, ff02::12, the
/// IPv6 pseudo-header checksum); ours is the master.
#[test]
fn v3_ipv6_100ms_ours_master() {
    skip_unless_root!();
    pair_of(Family::V6, "io_v6_ours", Impl::Ours, V3_100MS);
}

/// VRRPv3 over IPv6 at 100 ms; keepalived is the master.
#[test]
fn v3_ipv6_100ms_keepalived_master() {
    skip_unless_root!();
    pair_of(Family::V6, "io_v6_ka", Impl::Keepalived, V3_100MS);
}

/// VRRPv3 at 10 ms, the shortest interval; ours is the master.
#[test]
fn v3_10ms_ours_master() {
    skip_unless_root!();
    pair("io_v3_10_ours", Impl::Ours, V3_10MS);
}

/// VRRPv3 at 10 ms; keepalived is the master.
#[test]
fn v3_10ms_keepalived_master() {
    skip_unless_root!();
    pair("io_v3_10_ka", Impl::Keepalived, V3_10MS);
}

/// kill -9 of keepalived as master: no priority-0 advert, so the agent takes over when its
/// Master_Down_Interval runs out, and the dead keepalived's VIP stays on r1 until the runner's
/// drop removes it.
#[test]
fn keepalived_master_killed() {
    skip_unless_root!();
    let mut lab = Lab::new("io_kill9");
    let t = V3_100MS.timeout();
    lab.start_as("r1", Impl::Keepalived, &conf(&V3_100MS.spec(200, "MASTER")));
    lab.wait_holders(&["r1"], t);
    lab.start_as("r2", Impl::Ours, &conf(&V3_100MS.spec(100, "BACKUP")));
    lab.wait_entered("r2", 0, "BACKUP", t);
    assert_stable(&mut lab, "r1", &["r2"], V3_100MS.stable());

    let mark = lab.log_len("r2");
    let killed = lab.keepalived("r1").kill9();
    lab.ok(killed);
    lab.wait_entered("r2", mark, "MASTER", t);
    lab.wait_holders(&["r1", "r2"], t);
    let log = lab.log("r1");
    lab.check(
        !log.contains("sent 0 priority"),
        "keepalived said goodbye although it was killed",
    );
    assert_no_rejects(&mut lab);
    lab.drop_keepalived("r1");
    lab.wait_holders(&["r2"], SEC);
}

/// With `v3_checksum_as_v2` in the shared config, the agent sends RFC 9568's checksum (VRRP
/// message only) and keepalived 2.2.7, which does not know the keyword, keeps the pseudo-header.
/// The agent still accepts keepalived's adverts (no switch is needed to receive either form),
/// but keepalived rejects the agent's: both end up MASTER. Mixed groups with 2.2.7 must keep
/// the default.
#[test]
fn v3_checksum_as_v2_splits_from_keepalived_2_2_7() {
    skip_unless_root!();
    let mut lab = Lab::new("io_csum");
    let t = V3_100MS.timeout();
    let spec = |priority: u8| InstanceSpec {
        priority,
        v3_checksum_as_v2: true,
        ..Default::default()
    };
    lab.start_as("r1", Impl::Keepalived, &conf(&spec(200)));
    lab.wait_log("r1", 0, "Unknown keyword 'v3_checksum_as_v2'", t);
    lab.wait_holders(&["r1"], t);
    lab.wait_entered("r1", 0, "MASTER", t);
    lab.start_as("r2", Impl::Ours, &conf(&spec(100)));
    lab.wait_entered("r2", 0, "BACKUP", t);
    assert_stable(&mut lab, "r1", &["r2"], V3_100MS.stable());
    assert_no_rejects(&mut lab);

    // The agent becomes master; keepalived, back at a lower priority, cannot hear it.
    term(&mut lab, "r1");
    lab.wait_holders(&["r2"], t);
    lab.start_as("r1", Impl::Keepalived, &conf(&spec(50)));
    lab.wait_log("r1", 0, "(VI_1) Invalid VRRPv3 checksum", t);
    lab.wait_entered("r1", 0, "MASTER", t);
    lab.wait_holders(&["r1", "r2"], t);
    lab.assert_state("r2", "MASTER");
}

/// Unicast peers (`unicast_src_ip` + `unicast_peer`), keepalived in r1 at 100, the agent in r2 at
/// 200: the agent preempts, keepalived stays backup, then takes over on the agent's priority-0
/// advert. Nothing goes to 224.0.0.18; the adverts go both ways between the two addresses.
#[test]
fn unicast_peers() {
    skip_unless_root!();
    unicast(Family::V4, "io_unicast");
}

/// The same over IPv6, between global addresses: keepalived sends its unicast adverts with the
/// kernel's hop limit (64), which the agent accepts as keepalived does; the agent sends 255.
#[test]
fn unicast_peers_ipv6() {
    skip_unless_root!();
    unicast(Family::V6, "io_unicast6");
}

fn unicast(family: Family, name: &str) {
    let mut lab = Lab::of(family, name);
    if family == Family::V6 {
        lab.wait_link_local();
    }
    let t = V3_100MS.timeout();
    let spec = |priority: u8, src: &str, peer: &str| InstanceSpec {
        priority,
        unicast_src: Some(src.parse().unwrap()),
        unicast_peers: vec![peer.parse().unwrap()],
        vips: vec![family.vip().into()],
        ..Default::default()
    };
    let (r1, r2) = match family {
        Family::V4 => (R1_ADDR, R2_ADDR),
        Family::V6 => (R1_ADDR6, R2_ADDR6),
    };
    let (ip, group) = match family {
        Family::V4 => ("ip", "224.0.0.18"),
        Family::V6 => ("ip6", "ff02::12"),
    };
    let cap = lab
        .topo
        .ns("r1")
        .capture(IFACE, "", 100_000, Duration::from_secs(60))
        .unwrap();
    lab.start_as("r1", Impl::Keepalived, &conf(&spec(100, r1, r2)));
    lab.wait_holders(&["r1"], t);
    lab.wait_entered("r1", 0, "MASTER", t);
    let mark = lab.log_len("r1");
    lab.start_as("r2", Impl::Ours, &conf(&spec(200, r2, r1)));
    lab.wait_holders(&["r2"], t);
    lab.wait_entered("r2", 0, "MASTER", t);
    lab.wait_entered("r1", mark, "BACKUP", t);
    assert_stable(&mut lab, "r2", &["r1"], V3_100MS.stable());

    let mark = lab.log_len("r1");
    term(&mut lab, "r2");
    lab.wait_holders(&["r1"], t);
    lab.wait_entered("r1", mark, "MASTER", t);
    assert_heard_priority_0(&mut lab, "r1", mark, r2);
    assert_no_rejects(&mut lab);

    let pcap = cap.stop();
    let count = |filter: &str| pcap.count(filter).unwrap();
    let multicast = pcap.lines(&format!("dst host {group}")).unwrap();
    lab.check(
        multicast.is_empty(),
        &format!("traffic to {group}: {multicast:#?}"),
    );
    let vrrp = count(&format!("{ip} proto 112"));
    let from_keepalived = count(&format!("{ip} proto 112 and src {r1} and dst {r2}"));
    let from_ours = count(&format!("{ip} proto 112 and src {r2} and dst {r1}"));
    lab.check(
        from_keepalived > 0 && from_ours > 0 && from_keepalived + from_ours == vrrp,
        &format!(
            "VRRP packets: {vrrp}, keepalived → agent {from_keepalived}, agent → keepalived \
             {from_ours}; want only these two flows, both non-empty"
        ),
    );
}

/// Three routers, keepalived in r1 (250) and r3 (50), the agent in r2 (200): each newcomer with a
/// higher priority preempts, and the VIP goes down the priority order as the masters stop.
#[test]
fn three_routers_mixed() {
    skip_unless_root!();
    let mut lab = Lab::new("io_three");
    lab.add_router("r3", &format!("{R3_ADDR}/24"));
    let t = V3_100MS.timeout();
    let stable = V3_100MS.stable();
    lab.start_as("r3", Impl::Keepalived, &conf(&V3_100MS.spec(50, "BACKUP")));
    lab.wait_holders(&["r3"], t);
    lab.wait_entered("r3", 0, "MASTER", t);

    let mark = lab.log_len("r3");
    lab.start_as("r2", Impl::Ours, &conf(&V3_100MS.spec(200, "BACKUP")));
    lab.wait_holders(&["r2"], t);
    lab.wait_entered("r3", mark, "BACKUP", t);
    assert_stable(&mut lab, "r2", &["r3"], stable);

    let mark = lab.log_len("r2");
    lab.start_as("r1", Impl::Keepalived, &conf(&V3_100MS.spec(250, "MASTER")));
    lab.wait_holders(&["r1"], t);
    lab.wait_entered("r2", mark, "BACKUP", t);
    assert_stable(&mut lab, "r1", &["r2", "r3"], stable);

    // r2 has the shorter Skew_Time, so it answers r1's priority-0 advert before r3 would.
    let mark = lab.log_len("r2");
    term(&mut lab, "r1");
    lab.wait_holders(&["r2"], t);
    lab.wait_entered("r2", mark, "MASTER", t);
    assert_stable(&mut lab, "r2", &["r3"], stable);

    let mark = lab.log_len("r3");
    term(&mut lab, "r2");
    lab.wait_holders(&["r3"], t);
    lab.wait_entered("r3", mark, "MASTER", t);
    assert_heard_priority_0(&mut lab, "r3", mark, R2_ADDR);
    assert_no_rejects(&mut lab);
}
