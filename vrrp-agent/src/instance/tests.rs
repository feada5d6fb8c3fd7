//! The instance against a recording fake of its outputs, in virtual time: no root, no sockets.

use std::net::Ipv4Addr;
use std::path::Path;

use vrrp_common::maps::PeerRecord;

use super::*;
use crate::{
    config::{keepalived::parse_str, Config},
    testing::{
        fake::{Fake, Out, US},
        Logs,
    },
};

const PEER4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const PEER: IpAddr = IpAddr::V4(PEER4);
const VIP4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
const VIP: IpAddr = IpAddr::V4(VIP4);
const MS: Duration = Duration::from_millis(1);
const INTERVAL: Duration = Duration::from_millis(100);

/// A keepalived.conf with instance VI_1 on eth0 (VRID 51, priority 100, VIP, 100 ms adverts)
/// and `extra` in its block, `before` ahead of it.
fn config(before: &str, extra: &str) -> Config {
    let text = format!(
        "{before}\nvrrp_instance VI_1 {{\ninterface eth0\nvirtual_router_id 51\npriority 100\n\
         advert_int 0.1\nversion 3\nvirtual_ipaddress {{\n{VIP}/24\n}}\n{extra}\n}}\n"
    );
    parse_str(Path::new("keepalived.conf"), &text)
        .expect("valid configuration")
        .config
}

fn links(index: u32, up: bool) -> Links {
    let link = Link {
        index,
        mac: Some([2, 0, 0, 0, 0, 1]),
        veth: false,
        up,
    };
    [("eth0".to_owned(), link)].into_iter().collect()
}

fn at(ms: u64) -> Timestamp {
    Timestamp(ms * 1_000_000)
}

/// A bound, started instance of `config`, its fake, with the startup outputs taken.
async fn started(config: Config) -> (Instance<Fake>, Fake) {
    let fake = Fake::default();
    let mut i = Instance::new(config.instances[0].clone(), &config.checks, fake.clone());
    i.bind(&links(7, true)).await.unwrap();
    i.init_tracks(&links(7, true), |_| Some(true));
    i.start(at(0)).await;
    fake.take();
    (i, fake)
}

/// Started, then master when its Master_Down_Timer fired.
async fn master(config: Config) -> (Instance<Fake>, Fake, Timestamp) {
    let (mut i, fake) = started(config).await;
    let (_, down) = i.next_deadline().unwrap();
    i.on_timers(down).await;
    assert_eq!(i.state(), State::Master);
    fake.take();
    (i, fake, down)
}

fn advert(priority: u8) -> Vec<u8> {
    advert_listing(PEER, priority, &[VIP])
}

/// An advert from `src` listing `addrs`.
fn advert_listing(src: IpAddr, priority: u8, addrs: &[IpAddr]) -> Vec<u8> {
    advert_every(src, priority, addrs, 10)
}

/// An advert from `src` listing `addrs`, with interval `interval_cs`.
fn advert_every(src: IpAddr, priority: u8, addrs: &[IpAddr], interval_cs: u16) -> Vec<u8> {
    let spec = AdvertSpec {
        version: vrrp_common::Version::V3,
        vrid: 51,
        priority,
        interval_cs,
        auth: Auth::None,
        src,
        dst: std::net::IpAddr::V4(VRRP_MULTICAST_V4),
        ip_id: 1,
        checksum_form: vrrp_common::ChecksumForm::WithPseudoHeader,
        addrs,
    };
    let mut buf = [0; MAX_ADVERT_LEN];
    let len = encode(&spec, &mut buf).unwrap();
    buf[..len].to_vec()
}

#[tokio::test]
async fn becoming_master_adds_vips_advertises_announces_and_notifies() {
    let (mut i, fake) = started(config("", "")).await;
    let (_, down) = i.next_deadline().unwrap();
    i.on_timers(down).await;
    assert_eq!(
        fake.take(),
        [
            Out::AddVip(VIP),
            Out::Advert {
                priority: 100,
                dst: std::net::IpAddr::V4(VRRP_MULTICAST_V4)
            },
            Out::Garp { count: 5 },
            Out::Kernel {
                role: Role::Master as u8,
                priority: 100
            },
            Out::Notify(State::Master, 100),
        ]
    );
    assert_eq!(i.counters.became_master, 1);
}

/// keepalived's tracking: a failing weighted check lowers the priority, and a master
/// advertises the new priority at once (not at its next advert).
#[tokio::test]
async fn priority_changes_are_advertised_at_once() {
    let check = "vrrp_script chk {\nscript /bin/true\nweight -30\n}";
    let (mut i, fake, t) = master(config(check, "track_script {\nchk\n}")).await;
    i.check_changed("chk", false, t + MS).await;
    assert_eq!(
        fake.take(),
        [
            Out::Advert {
                priority: 70,
                dst: std::net::IpAddr::V4(VRRP_MULTICAST_V4)
            },
            Out::Kernel {
                role: Role::Master as u8,
                priority: 70
            },
        ]
    );
    assert_eq!(i.state(), State::Master);
}

/// A weight-0 check that fails means FAULT, with the check named in the transition line; the
/// master says goodbye and removes its VIPs. Recovered, it restarts the election.
#[tokio::test]
async fn failing_weight_zero_check_is_fault_with_its_reason() {
    let logs = Logs::capture();
    let check = "vrrp_script chk {\nscript /bin/true\n}";
    let (mut i, fake, t) = master(config(check, "track_script {\nchk\n}")).await;
    i.check_changed("chk", false, t + MS).await;
    assert_eq!(i.state(), State::Fault);
    assert!(i.own_fault());
    assert_eq!(
        logs.count("MASTER -> FAULT: fault (check chk failed)"),
        1,
        "{}",
        logs.text()
    );
    let out = fake.take();
    assert!(out.contains(&Out::Advert {
        priority: 0,
        dst: std::net::IpAddr::V4(VRRP_MULTICAST_V4)
    }));
    assert!(out.contains(&Out::RemoveVip(VIP)));
    assert!(out.contains(&Out::Notify(State::Fault, 100)));

    i.check_changed("chk", true, t + 2 * MS).await;
    assert_eq!(i.state(), State::Backup);
    assert_eq!(logs.count("FAULT -> BACKUP: fault cleared"), 1);
}

/// A tracked interface that goes down means FAULT too, and so does the sync group's hold.
#[tokio::test]
async fn tracked_interface_down_and_sync_group_hold_are_fault() {
    let (mut i, _fake) = started(config("", "")).await;
    i.link_changed(
        "eth0",
        Some(&links(7, false).get("eth0").unwrap().clone()),
        &links(7, false),
        at(1),
    )
    .await;
    assert_eq!(i.state(), State::Fault);
    i.link_changed("eth0", links(7, true).get("eth0"), &links(7, true), at(2))
        .await;
    assert_eq!(i.state(), State::Backup);
    i.hold(Some("sync group G: VI_2 is in FAULT".into()), at(3))
        .await;
    assert_eq!(i.state(), State::Fault);
    assert!(!i.own_fault(), "held, not faulty on its own");
    i.hold(None, at(4)).await;
    assert_eq!(i.state(), State::Backup);
}

/// keepalived logs a rejected advert, but a flood of them must not flood the log: one line per
/// LOG_EVERY (the first at once), with how many were held back; every one is counted.
#[tokio::test]
async fn rejected_adverts_are_logged_at_most_every_ten_seconds() {
    let logs = Logs::capture();
    let (mut i, _fake) = started(config("", "")).await;
    let mut bad = advert(200);
    bad[8] = 64; // TTL
    for n in 0..100 {
        i.on_packet(&bad, false, at(1 + n)).await;
    }
    assert_eq!(logs.count("ignored advert"), 1, "{}", logs.text());
    i.on_packet(&bad, false, at(1) + LOG_EVERY).await;
    assert_eq!(logs.count("ignored advert"), 2);
    assert!(logs.text().contains("suppressed=99"), "{}", logs.text());
    assert_eq!(i.counters.rejected, 101);
    assert_eq!(i.state(), State::Backup, "a rejected advert is no input");

    // Counted by the check that failed, and shown so in the status line.
    i.on_packet(&advert_listing(PEER, 200, &[OTHER_VIP]), false, at(2))
        .await;
    let by: Vec<_> = i.counters.rejected_by.clone().into_iter().collect();
    assert_eq!(by, [("TTL", 101), ("address list", 1)]);
    let line = crate::control::line(&serde_json::to_value(i.status(at(3))).unwrap());
    assert!(
        line.contains("rejected 102 (TTL 101, address list 1)"),
        "{line}"
    );
}

/// The product's headline rule: before declaring the master down, read the kernel's record;
/// an advert the kernel timestamped after the last one the agent handled (its wake-up was late
/// under load) counts, and the backup stays backup.
#[tokio::test]
async fn kernel_record_is_read_before_declaring_the_master_down() {
    let (mut i, fake) = started(config("", "")).await;
    i.on_packet(&advert(200), false, at(10)).await;
    let (timer, down) = i.next_deadline().unwrap();
    assert_eq!(timer, Timer::MasterDown);
    // The kernel saw another advert 300 ms later; the agent wakes at the old deadline.
    fake.world().peer = Some(PeerRecord {
        t_ns: at(310).0,
        count: 2,
        src: addr_bytes(PEER),
        priority: 200,
        interval_cs: 10,
        ..PeerRecord::default()
    });
    i.on_timers(down).await;
    assert_eq!(i.state(), State::Backup);
    let (_, later) = i.next_deadline().unwrap();
    assert!(later > down, "re-armed from the kernel's arrival time");

    // Nothing newer in the record: the master is down.
    i.on_timers(later).await;
    assert_eq!(i.state(), State::Master);
}

/// The kernel's record after the master's advert at `t`, which restarted the kernel's
/// Master_Down timer (to `watch`).
fn watched_record(t: Timestamp, watch: Timestamp) -> PeerRecord {
    PeerRecord {
        t_ns: t.0,
        count: 2,
        src: addr_bytes(PEER),
        priority: 200,
        interval_cs: 10,
        watch_ns: watch.0,
        ..PeerRecord::default()
    }
}

/// A backup that heard the master at 10 ms, woke at its deadline and found in the kernel's
/// record a later advert (at 500 ms) that restarted the kernel's timer: the deadline both share.
async fn kernel_keeps_master_down() -> (Instance<Fake>, Fake, Timestamp) {
    let (mut i, fake) = started(config("", "")).await;
    i.on_packet(&advert(200), false, at(10)).await;
    let (_, down) = i.next_deadline().unwrap();
    let kernel_down = at(500) + i.machine.master_down_interval();
    fake.world().peer = Some(watched_record(at(500), kernel_down));
    i.on_timers(down).await;
    (i, fake, kernel_down)
}

/// The kernel keeps a backup's Master_Down timer for the master whose adverts restart ours:
/// its entry names that master and our Master_Down_Interval; a master, or a backup that has
/// followed no one yet, names none.
#[tokio::test]
async fn kernel_watches_the_master_whose_adverts_restart_the_timer() {
    let (mut i, _) = started(config("", "")).await;
    assert_eq!(i.kernel_entry().watch_down_ns, 0, "no master heard yet");
    i.on_packet(&advert(200), false, at(10)).await;
    let e = i.kernel_entry();
    let down = i.machine.master_down_interval();
    assert_eq!(
        (e.watch_src, e.watch_priority, e.watch_interval_cs),
        (addr_bytes(PEER), 200, 10)
    );
    assert_eq!(e.watch_down_ns, down.as_nanos() as u64);
    assert!(e.watches(addr_bytes(PEER), 200, 10));
    assert!(!e.watches(addr_bytes(PEER), 150, 10), "another priority");
    assert!(!e.watches(addr_bytes(PEER), 200, 20), "another interval");

    let (mut m, _, _) = master(config("", "")).await;
    assert_eq!(m.kernel_entry().watch_down_ns, 0, "a master watches no one");
    m.on_packet(&advert(200), false, at(900)).await;
    assert_eq!(m.state(), State::Backup);
    assert!(
        m.kernel_entry().watches(addr_bytes(PEER), 200, 10),
        "yielded to it: its timer runs from that advert"
    );
}

/// keepalived preempt_delay: a lower-priority master's adverts restart the timer only until the
/// delay runs out, a matter of time the kernel does not know: it watches no such master.
#[tokio::test]
async fn kernel_does_not_watch_a_master_followed_only_for_preempt_delay() {
    let (mut i, _) = started(config("", "preempt_delay 5")).await;
    i.on_packet(&advert(50), false, at(10)).await;
    assert_eq!(
        i.machine.followed(),
        Some(PEER),
        "followed during the delay"
    );
    assert_eq!(i.kernel_entry().watch_down_ns, 0);
    i.on_packet(&advert(200), false, at(20)).await;
    assert_ne!(i.kernel_entry().watch_down_ns, 0);
}

/// An idle backup does not wake per advert: once the kernel's record shows its timer due when
/// ours is, the agent sleeps past the deadline, and the kernel's word (its timer fired) makes
/// it take over at once.
#[tokio::test]
async fn idle_backup_sleeps_while_the_kernel_keeps_master_down() {
    let (mut i, fake, kernel_down) = kernel_keeps_master_down().await;
    let (timer, wake) = i.next_deadline().unwrap();
    assert_eq!(timer, Timer::MasterDown);
    assert_eq!(wake, kernel_down + WATCH_GRACE, "the kernel wakes it");
    // Woken for something else past the deadline (another instance's timer), it neither acts
    // nor reads the kernel's record.
    fake.world().peer_error = Some("not to be read".into());
    i.on_timers(kernel_down + MS).await;
    assert_eq!((i.state(), i.counters.output_errors), (State::Backup, 0));
    fake.world().peer_error = None;

    i.kernel_master_down(kernel_down, kernel_down).await;
    assert_eq!(i.state(), State::Master, "taken over at the kernel's word");
}

/// The usual case: by the kernel's word the master sent more adverts than the agent has read;
/// the last of them sets the deadline the kernel just reached, and the agent acts at once.
#[tokio::test]
async fn kernel_word_after_unread_adverts_takes_over_at_once() {
    let (mut i, fake, _) = kernel_keeps_master_down().await;
    let last = at(900);
    let kernel_down = last + i.machine.master_down_interval();
    fake.world().peer = Some(watched_record(last, kernel_down));
    i.kernel_master_down(kernel_down, kernel_down + MS).await;
    assert_eq!(i.state(), State::Master);
}

/// The kernel's timer for an older deadline (the master's interval changed since) is not ours:
/// the agent keeps its own.
#[tokio::test]
async fn kernel_timer_for_another_deadline_is_not_relied_on() {
    let (mut i, fake) = started(config("", "")).await;
    i.on_packet(&advert(200), false, at(10)).await;
    let (_, down) = i.next_deadline().unwrap();
    let last = at(500);
    fake.world().peer = Some(watched_record(last, last + Duration::from_millis(1)));
    i.on_timers(down).await;
    let (_, wake) = i.next_deadline().unwrap();
    assert_eq!(wake, last + i.machine.master_down_interval());
}

/// Should the kernel's word be lost (a full ring buffer), the agent still takes over, a grace
/// period late, and says so.
#[tokio::test]
async fn lost_kernel_word_still_takes_over_late_and_says_so() {
    let logs = Logs::capture();
    let (mut i, _, _) = kernel_keeps_master_down().await;
    let (_, wake) = i.next_deadline().unwrap();
    i.on_timers(wake).await;
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.counters.watch_missed, 1);
    assert!(
        logs.text().contains("did not wake the agent"),
        "{}",
        logs.text()
    );
}

/// A master that wakes half an advert interval late or more counts the advert as late and says
/// so; a little late is not.
#[tokio::test]
async fn an_advert_sent_half_an_interval_late_is_counted_and_said() {
    let logs = Logs::capture();
    let (mut i, _, _) = master(config("", "")).await;
    let (timer, due) = i.next_deadline().unwrap();
    assert_eq!(timer, Timer::Adver);
    i.on_timers(due + (INTERVAL / 2 - MS)).await;
    assert_eq!(i.counters.adverts_late, 0);
    let (_, due) = i.next_deadline().unwrap();
    i.on_timers(due + INTERVAL / 2).await;
    assert_eq!(i.counters.adverts_late, 1);
    assert_eq!(logs.count("advert sent 50.0ms late"), 1, "{}", logs.text());
    let line = crate::control::line(&serde_json::to_value(i.status(due)).unwrap());
    assert!(
        line.contains("adverts sent half an interval late: 1"),
        "{line}"
    );
}

/// A backup whose Master_Down_Timer is due at the returned deadline, the master heard at 10 ms
/// and nothing newer in the kernel's record.
async fn master_down_due() -> (Instance<Fake>, Fake, Timestamp) {
    let (mut i, fake) = started(config("", "")).await;
    i.on_packet(&advert(200), false, at(10)).await;
    fake.world().peer = Some(watched_record(at(10), Timestamp(0)));
    let (_, down) = i.next_deadline().unwrap();
    (i, fake, down)
}

/// Master_Down_Timer due while frames wait in this host's receive backlogs (measured under a
/// flood steered to one CPU: the master's advert held 43.2 ms there, a wrong takeover): the
/// backup looks again once every CPU has processed as many frames, and the advert among them
/// keeps it backup.
#[tokio::test]
async fn master_down_while_frames_wait_in_the_backlog_waits_for_them() {
    let logs = Logs::capture();
    let (mut i, fake, down) = master_down_due().await;
    fake.world().backlog = vec![softnet(7, 0, 0), softnet(100, 0, 50)];
    i.on_timers(down).await;
    assert_eq!(i.state(), State::Backup, "50 frames waiting");
    let look = down + Duration::from_micros(200);
    assert_eq!(i.wake_at(), Some(look));
    fake.world().backlog = vec![softnet(9, 0, 0), softnet(149, 0, 400)];
    i.on_timers(look).await;
    assert_eq!(i.state(), State::Backup, "49 frames of 50 processed");
    // The 50th was the master's advert, stamped by the kernel as it came through.
    let arrived = look + Duration::from_micros(100);
    fake.world().peer = Some(watched_record(arrived, Timestamp(0)));
    fake.world().backlog = vec![softnet(9, 0, 0), softnet(150, 0, 400)];
    i.on_timers(look + Duration::from_micros(200)).await;
    assert_eq!(i.state(), State::Backup);
    assert_eq!(
        i.next_deadline(),
        Some((
            Timer::MasterDown,
            arrived + i.machine.master_down_interval()
        ))
    );
    assert_eq!(i.counters.master_down_held, 1);
    let why = "the master's advert was among them";
    assert_eq!(logs.count(why), 1, "{}", logs.text());
}

/// The backlogs are read before the kernel's record: an advert a CPU processed in between (the
/// last of the frames waited for, or one the first look found already through) is in the
/// record the backup reads next.
#[tokio::test]
async fn master_down_reads_the_record_after_the_backlog() {
    let (mut i, fake, down) = master_down_due().await;
    fake.world().backlog = vec![softnet(100, 0, 50)];
    i.on_timers(down).await;
    let look = down + Duration::from_micros(200);
    let arrived = look + Duration::from_micros(10);
    fake.world().backlog = vec![softnet(150, 0, 0)];
    fake.world().peer_once_backlog_read = Some(watched_record(arrived, Timestamp(0)));
    i.on_timers(look).await;
    assert_eq!(i.state(), State::Backup, "the last frame was the advert");
    assert_eq!(i.counters.master_down_held, 1);

    let (mut i, fake, down) = master_down_due().await;
    fake.world().peer_once_backlog_read = Some(watched_record(down, Timestamp(0)));
    i.on_timers(down).await;
    assert_eq!(i.state(), State::Backup, "through at the first look");
    assert_eq!(i.counters.master_down_held, 0, "not held: found at once");
}

/// A deadline the kernel kept but did not wake the agent for is already a grace period late:
/// it waits for no backlog, and is counted and logged as missed.
#[tokio::test]
async fn a_missed_kernel_deadline_waits_for_no_backlog() {
    let (mut i, fake, _) = kernel_keeps_master_down().await;
    fake.world().backlog = vec![softnet(0, 0, 1000)];
    let (_, wake) = i.next_deadline().unwrap();
    i.on_timers(wake).await;
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.counters.watch_missed, 1);
}

/// The frames waiting held no advert: the backup takes over once they are through, or one
/// advert interval after the deadline at the latest (a backlog that does not drain); an idle
/// host, or one whose backlogs cannot be read, at once.
#[tokio::test]
async fn master_down_waits_for_the_backlog_at_most_one_advert_interval() {
    let (mut i, fake, down) = master_down_due().await;
    fake.world().backlog = vec![softnet(0, 0, 1000)];
    i.on_timers(down).await;
    fake.world().backlog = vec![softnet(1000, 0, 1000)];
    i.on_timers(down + Duration::from_micros(200)).await;
    assert_eq!(i.state(), State::Master, "drained, no advert");

    let (mut i, fake, down) = master_down_due().await;
    fake.world().backlog = vec![softnet(0, 0, 1000)];
    i.on_timers(down).await;
    i.on_timers(down + (INTERVAL - Duration::from_micros(1)))
        .await;
    assert_eq!(i.state(), State::Backup);
    i.on_timers(down + INTERVAL).await;
    assert_eq!(i.state(), State::Master, "one advert interval later");
    assert_eq!(i.counters.master_down_held, 0);

    for unreadable in [false, true] {
        let (mut i, fake, down) = master_down_due().await;
        fake.world().backlog = vec![softnet(0, 0, 0)];
        fake.world().backlog_unreadable = unreadable;
        i.on_timers(down).await;
        assert_eq!(i.state(), State::Master, "unreadable: {unreadable}");
    }
}

const OTHER_VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 101));

/// RFC 3768 §7.1 address list check, as keepalived 2.2.7 makes it: an advert whose list is not
/// ours (another address, or one more) is dropped, however high its priority; ours is not.
#[tokio::test]
async fn address_list_other_than_ours_is_dropped() {
    let (mut i, _, t) = master(config("", "")).await;
    for addrs in [&[OTHER_VIP][..], &[VIP, OTHER_VIP]] {
        i.on_packet(&advert_listing(PEER, 200, addrs), false, t + MS)
            .await;
        assert_eq!(i.state(), State::Master, "{addrs:?}");
    }
    i.on_packet(&advert(200), false, t + MS).await;
    assert_eq!(i.state(), State::Backup);
}

/// `vrrp_skip_check_adv_addr` as keepalived means it: a backup compares the list of a new
/// master's adverts, not of the one it follows; the kernel then checks no list (count 0), so
/// its record of another source is not replayed either.
#[tokio::test]
async fn skip_check_adv_addr_trusts_only_the_master_followed() {
    let (mut i, fake) = started(config("global_defs {\nvrrp_skip_check_adv_addr\n}", "")).await;
    let entry = i.kernel_entry();
    assert_eq!(
        (entry.addr_count, entry.addr_digest),
        (0, AddrList::of([VIP]).digest)
    );
    let stranger = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 3));
    i.on_packet(&advert_listing(stranger, 200, &[OTHER_VIP]), false, at(10))
        .await;
    assert_eq!(
        i.machine.followed(),
        None,
        "a new master's list is compared"
    );
    i.on_packet(&advert(200), false, at(20)).await;
    assert_eq!(i.machine.followed(), Some(PEER));
    i.on_packet(&advert_listing(PEER, 200, &[OTHER_VIP]), false, at(30))
        .await;
    let (_, down) = i.next_deadline().unwrap();
    assert!(
        down > at(300),
        "the followed master's advert counted: {down:?}"
    );

    fake.world().peer = Some(PeerRecord {
        t_ns: down.0 - 1,
        count: 9,
        src: addr_bytes(stranger),
        priority: 250,
        interval_cs: 10,
        ..PeerRecord::default()
    });
    i.on_timers(down).await;
    assert_eq!(i.state(), State::Master, "an unchecked record is no advert");
}

/// Without it, the kernel compares every list with ours.
#[tokio::test]
async fn kernel_compares_the_address_list() {
    let (i, _) = started(config("", "")).await;
    let entry = i.kernel_entry();
    assert_eq!(
        (entry.addr_count, entry.addr_digest),
        (1, AddrList::of([VIP]).digest)
    );
}

/// RFC 9568 §6.4.2 has a backup adopt the master's interval; one spoofed advert with the
/// longest (40.95 s) would leave the VIP unowned for two minutes after its sender fell silent.
/// Adopted as max_adopted_interval (default ten times ours: 1 s), logged once, counted.
#[tokio::test]
async fn adopted_interval_is_capped() {
    let logs = Logs::capture();
    let (mut i, _) = started(config("", "")).await;
    for n in 0..3 {
        i.on_packet(&advert_every(PEER, 255, &[VIP], 4095), false, at(10 + n))
            .await;
    }
    let (timer, down) = i.next_deadline().unwrap();
    assert_eq!(timer, Timer::MasterDown);
    // 3 × 1 s + Skew_Time (256 − 100) / 256 × 1 s, from the last advert.
    assert_eq!(down, at(12) + Duration::from_nanos(3_609_375_000));
    assert_eq!(i.counters.intervals_capped, 3);
    assert_eq!(logs.count("above max_adopted_interval 1s"), 1);
}

/// The raw socket reports a datagram the kernel reassembled: dropped, as the XDP program drops
/// the fragments it sees.
#[tokio::test]
async fn reassembled_advert_is_dropped() {
    let (mut i, _, t) = master(config("", "")).await;
    i.on_packet(&advert(200), true, t + MS).await;
    assert_eq!(i.state(), State::Master);
}

/// With unicast peers, the kernel's record of another source does not count.
#[tokio::test]
async fn kernel_record_from_a_stranger_does_not_count_with_unicast_peers() {
    let unicast = format!("unicast_src_ip {US}\nunicast_peer {{\n198.51.100.3\n}}");
    let (mut i, fake) = started(config("", &unicast)).await;
    let (_, down) = i.next_deadline().unwrap();
    fake.world().peer = Some(PeerRecord {
        t_ns: down.0 - 1,
        count: 1,
        src: addr_bytes(PEER),
        priority: 200,
        interval_cs: 10,
        ..PeerRecord::default()
    });
    i.on_timers(down).await;
    assert_eq!(i.state(), State::Master);
}

/// A VIP that cannot be added is a recoverable error: counted, logged, and added at a later
/// advert; the instance stays master and keeps advertising.
#[tokio::test]
async fn failed_vip_add_is_retried_at_each_advert() {
    let logs = Logs::capture();
    let (mut i, fake) = started(config("", "")).await;
    fake.world().failing_adds = 2;
    let (_, down) = i.next_deadline().unwrap();
    i.on_timers(down).await;
    assert_eq!(i.state(), State::Master);
    assert!(!fake.take().contains(&Out::AddVip(VIP)));
    assert_eq!(logs.count("cannot add VIP 198.51.100.100"), 1);
    i.on_timers(down + INTERVAL).await;
    assert!(!fake.take().contains(&Out::AddVip(VIP)), "still failing");
    i.on_timers(down + 2 * INTERVAL).await;
    assert!(fake.take().contains(&Out::AddVip(VIP)));
    assert_eq!(i.counters.output_errors, 2);
    assert_eq!(logs.count("all VIPs added on a later try"), 1);
}

/// The transition line is stamped when the decision is taken, before its actions (keepalived
/// logs "Entering MASTER STATE" before its VIPs): adding a VIP may wait for the host's RTNL
/// lock, and its warning follows the line it belongs to.
#[tokio::test]
async fn the_transition_is_logged_before_its_actions() {
    let logs = Logs::capture();
    let (mut i, fake) = started(config("", "")).await;
    fake.world().failing_adds = 1;
    let (_, down) = i.next_deadline().unwrap();
    i.on_timers(down).await;
    let text = logs.text();
    let line = text.find("BACKUP -> MASTER").expect("transition logged");
    let warning = text.find("cannot add VIP").expect("failure logged");
    assert!(line < warning, "{text}");
}

/// A VIP deleted behind a master's back is put back at once and counted; `no_track` ones and
/// those of a backup are left alone.
#[tokio::test]
async fn vip_deleted_while_master_is_put_back() {
    let (mut i, fake, t) = master(config("", "")).await;
    fake.world().addrs.remove(&VIP);
    i.address_changed(7, VIP, false, &links(7, true), t + MS)
        .await;
    assert_eq!(fake.take(), [Out::AddVip(VIP)]);
    assert_eq!(i.counters.vips_restored, 1);
    // Ours again already (our own remove and add in quick succession): nothing.
    i.address_changed(7, VIP, false, &links(7, true), t + MS)
        .await;
    assert_eq!(fake.take(), []);

    let no_track = "virtual_ipaddress_excluded {\n203.0.113.5/24 no_track\n}";
    let (mut i, fake, t) = master(config("", no_track)).await;
    let excluded = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));
    fake.world().addrs.remove(&excluded);
    i.address_changed(7, excluded, false, &links(7, true), t + MS)
        .await;
    assert_eq!(fake.take(), []);

    let (mut backup, fake) = started(config("", "")).await;
    backup
        .address_changed(7, VIP, false, &links(7, true), at(1))
        .await;
    assert_eq!(fake.take(), []);
}

/// An interface missing at start: the instance runs in FAULT and binds when it appears.
#[tokio::test]
async fn missing_interface_means_fault_until_it_appears() {
    let logs = Logs::capture();
    let config = config("", "");
    let fake = Fake::default();
    let mut i = Instance::new(config.instances[0].clone(), &config.checks, fake.clone());
    let none = Links::default();
    i.bind(&none).await.unwrap();
    i.init_tracks(&none, |_| None);
    i.start(at(0)).await;
    assert_eq!(i.state(), State::Fault);
    assert_eq!(i.ifindex(), None);
    assert_eq!(
        logs.count("INIT -> FAULT: fault (interface eth0 is missing)"),
        1
    );

    let appeared = links(9, true);
    i.link_changed("eth0", appeared.get("eth0"), &appeared, at(5))
        .await;
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.ifindex(), Some(9));
    assert!(fake.take().contains(&Out::Bind(9)));
}

/// An interface deleted and created again (new index): the instance leaves it (FAULT: goodbye,
/// VIPs removed), then binds to the new one and is back in the election.
#[tokio::test]
async fn recreated_interface_is_bound_again() {
    let (mut i, fake, t) = master(config("", "")).await;
    i.link_changed("eth0", None, &Links::default(), t + MS)
        .await;
    assert_eq!(i.state(), State::Fault);
    let out = fake.take();
    assert!(out.contains(&Out::RemoveVip(VIP)), "{out:?}");
    assert_eq!(out.last(), Some(&Out::Unbind));

    let again = links(12, true);
    i.link_changed("eth0", again.get("eth0"), &again, t + 2 * MS)
        .await;
    assert_eq!((i.state(), i.ifindex()), (State::Backup, Some(12)));

    // The same name with another index in one step (deleted and created between two reads).
    let (mut i, fake, t) = master(config("", "")).await;
    let moved = links(13, true);
    i.link_changed("eth0", moved.get("eth0"), &moved, t + MS)
        .await;
    assert_eq!((i.state(), i.ifindex()), (State::Backup, Some(13)));
    let out = fake.take();
    assert!(
        out.contains(&Out::Unbind) && out.contains(&Out::Bind(13)),
        "{out:?}"
    );
}

/// An interface that exists but cannot be opened: FAULT with the reason, and a new try at the
/// next change of the interface or its addresses.
#[tokio::test]
async fn interface_that_cannot_be_opened_is_fault_and_retried() {
    let config = config("", "");
    let fake = Fake::default();
    let refused = ("VI_1".to_owned(), "no IPv4 address".to_owned());
    fake.world().bind_errors.extend([refused]);
    let mut i = Instance::new(config.instances[0].clone(), &config.checks, fake.clone());
    assert!(i.bind(&links(7, true)).await.is_err(), "prepare refuses it");
    i.init_tracks(&links(7, true), |_| None);
    i.start(at(0)).await;
    i.address_changed(7, US, true, &links(7, true), at(1)).await;
    assert_eq!(i.state(), State::Fault);
    fake.world().bind_errors.clear();
    i.address_changed(7, US, true, &links(7, true), at(2)).await;
    assert_eq!(i.state(), State::Backup);
}

/// A master that hears a lower-priority master answers with an advert and the lower-priority
/// gratuitous ARP burst (garp_lower_prio_repeat).
#[tokio::test]
async fn lower_priority_master_gets_an_advert_and_gratuitous_arp() {
    let (mut i, fake, t) = master(config("", "garp_lower_prio_repeat 2")).await;
    i.on_packet(&advert(50), false, t + MS).await;
    assert_eq!(
        fake.take(),
        [
            Out::Advert {
                priority: 100,
                dst: std::net::IpAddr::V4(VRRP_MULTICAST_V4)
            },
            Out::Garp { count: 2 },
        ]
    );
}

/// Shutdown of a master: priority-0 advert, VIPs removed, notify_stop.
#[tokio::test]
async fn master_shutdown_says_goodbye() {
    let (mut i, fake, t) = master(config("", "")).await;
    i.shutdown(t + MS).await;
    assert_eq!(
        fake.take(),
        [
            Out::Advert {
                priority: 0,
                dst: std::net::IpAddr::V4(VRRP_MULTICAST_V4)
            },
            Out::RemoveVip(VIP),
            Out::Kernel {
                role: Role::Idle as u8,
                priority: 100
            },
            Out::Notify(State::Initialize, 100),
        ]
    );
}

/// Unicast peers: each advert goes to every peer, none to the multicast group.
#[tokio::test]
async fn unicast_adverts_go_to_every_peer() {
    let unicast = "unicast_peer {\n198.51.100.2\n198.51.100.3\n}";
    let (mut i, fake, t) = master(config("", unicast)).await;
    i.on_timers(t + INTERVAL).await;
    let dsts: Vec<IpAddr> = fake
        .take()
        .into_iter()
        .filter_map(|o| match o {
            Out::Advert { dst, .. } => Some(dst),
            _ => None,
        })
        .collect();
    assert_eq!(
        dsts,
        [PEER, std::net::IpAddr::V4(Ipv4Addr::new(198, 51, 100, 3))]
    );
}

/// ARP from another MAC for our VIP while master (split-brain evidence, or a host claiming the
/// address, from the kernel): logged at most every LOG_EVERY, counted, and answered with a
/// gratuitous ARP burst each time (the kernel reports a VIP's conflicts at most once a second);
/// not as backup, not for another address or interface.
#[tokio::test]
async fn arp_conflicts_are_logged_counted_and_answered_while_master() {
    let logs = Logs::capture();
    let rival = [2, 0, 0, 0, 0, 9];
    let (mut backup, fake) = started(config("", "")).await;
    backup.arp_conflict(7, VIP4, rival, at(1)).await;
    assert_eq!(backup.counters.arp_conflicts, 0);
    assert!(fake.take().is_empty());

    let (mut i, fake, t) = master(config("", "")).await;
    i.arp_conflict(7, VIP4, rival, t + MS).await;
    i.arp_conflict(7, VIP4, rival, t + 2 * MS).await;
    i.arp_conflict(8, VIP4, rival, t + 3 * MS).await;
    i.arp_conflict(7, PEER4, rival, t + 4 * MS).await;
    assert_eq!(i.counters.arp_conflicts, 2);
    assert_eq!(
        fake.take(),
        [Out::Garp { count: 5 }, Out::Garp { count: 5 }]
    );
    assert_eq!(
        logs.count("VIP claimed by 02:00:00:00:00:09 while we are master"),
        1,
        "{}",
        logs.text()
    );
}

/// A flap storm (a spoofer alternating priorities, a flapping link) does not flood the log: at
/// most TRANSITION_LINES transition lines per LOG_EVERY; the next line logged after a held-back
/// run says how many it held back. Counters and notify still see every transition.
#[tokio::test]
async fn transition_lines_are_bounded_under_a_flap_storm() {
    let logs = Logs::capture();
    let (mut i, _fake, mut t) = master(config("", "")).await;
    for _ in 0..20 {
        t = t + 10 * MS;
        i.on_packet(&advert(200), false, t).await;
        assert_eq!(i.state(), State::Backup);
        let (_, down) = i.next_deadline().unwrap();
        t = down;
        i.on_timers(t).await;
        assert_eq!(i.state(), State::Master);
    }
    let lines = || logs.count("-> BACKUP: ") + logs.count("-> MASTER: ");
    assert_eq!(lines(), TRANSITION_LINES as usize, "{}", logs.text());
    assert_eq!(i.counters.became_master, 21);
    i.on_packet(&advert(200), false, t + LOG_EVERY).await;
    let held = "MASTER -> BACKUP: higher priority advert from 198.51.100.2 (prio 200) (22 \
                transitions before this one not logged)";
    assert_eq!(logs.count(held), 1, "{}", logs.text());
}

/// An interface without an IPv4 address yet (networkd still at it) is no error: the instance
/// waits in FAULT and binds when an address appears.
#[tokio::test]
async fn interface_without_an_address_waits_in_fault() {
    let logs = Logs::capture();
    let config = config("", "");
    let fake = Fake::default();
    fake.world().no_address = true;
    let mut i = Instance::new(config.instances[0].clone(), &config.checks, fake.clone());
    i.bind(&links(7, true)).await.unwrap();
    i.init_tracks(&links(7, true), |_| None);
    i.start(at(0)).await;
    assert_eq!(i.state(), State::Fault);
    assert_eq!(
        logs.count("fault (interface eth0 has no IPv4 address yet)"),
        1
    );
    fake.world().no_address = false;
    i.address_changed(7, US, true, &links(7, true), at(1)).await;
    assert_eq!((i.state(), i.ifindex()), (State::Backup, Some(7)));
}

/// After lost netlink notifications, a master puts back the VIPs that went missing meanwhile.
#[tokio::test]
async fn resync_puts_back_vips_lost_with_the_notifications() {
    let (mut i, fake, t) = master(config("", "")).await;
    fake.world().addrs.remove(&VIP);
    i.resync(&links(7, true), t + MS).await;
    assert_eq!(fake.take(), [Out::AddVip(VIP)]);
    assert_eq!(i.counters.vips_restored, 1);
}

/// The kernel path, with PEER's adverts recorded (`peer` set), and the liveness channel on:
/// backup of PEER, which reflected our probes.
async fn probing_backup() -> (Instance<Fake>, Fake) {
    let fake = Fake::default();
    fake.world().peer = Some(PeerRecord::default());
    let config = config("", "liveness_interval 200us");
    let mut i = Instance::new(config.instances[0].clone(), &config.checks, fake.clone());
    i.bind(&links(7, true)).await.unwrap();
    i.init_tracks(&links(7, true), |_| Some(true));
    i.start(at(0)).await;
    i.on_packet(&advert(200), false, at(10)).await;
    i.liveness_changed(change(true, true, 10), at(10)).await;
    (i, fake)
}

fn change(up: bool, first: bool, last_ms: u64) -> LivenessChange {
    LivenessChange {
        peer: PEER4.octets(),
        vrid: 51,
        first: first.into(),
        up: up.into(),
        _pad: 0,
        last_ns: at(last_ms).0,
    }
}

fn probes(out: &[Out]) -> Vec<&Out> {
    out.iter().filter(|o| matches!(o, Out::Probe(_))).collect()
}

/// As backup the instance probes the master whose adverts it accepts, with its priority:
/// slowly until the master reflects (it may not speak the channel), then every interval, and
/// says so once. As master, or without a master yet, it probes nobody. The kernel entry says
/// liveness is on, so the kernel reflects probes while we are master.
#[tokio::test]
async fn backup_probes_the_master_it_follows() {
    let logs = Logs::capture();
    let (mut i, fake) = probing_backup().await;
    let out = fake.take();
    assert_eq!(
        probes(&out),
        [
            &Out::Probe(Some((PEER4, 100, false))),
            &Out::Probe(Some((PEER4, 100, true)))
        ]
    );
    assert_eq!(
        logs.count("liveness channel up: probing every 200µs, taking over after 600µs of silence"),
        1,
        "{}",
        logs.text()
    );
    // The same master again: nothing new to do.
    i.on_packet(&advert(200), false, at(110)).await;
    assert!(probes(&fake.take()).is_empty());
    // Master now: probing stops.
    probes_sent_after(&fake, 110);
    i.liveness_changed(change(false, true, 110), at(111)).await;
    assert_eq!(i.state(), State::Master);
    assert_eq!(probes(&fake.take()), [&Out::Probe(None)]);
    assert_eq!(i.kernel_entry().liveness, 1);
}

/// Silence on the channel from the master we follow, first in line, with no advert since the
/// last reflection: master now, the transition line says how long the channel was silent.
#[tokio::test]
async fn silent_master_means_master_down_now() {
    let logs = Logs::capture();
    let (mut i, fake) = probing_backup().await;
    fake.take();
    probes_sent_after(&fake, 11);
    i.liveness_changed(change(false, true, 11), at(12)).await;
    assert_eq!(i.state(), State::Master);
    assert!(fake.take().contains(&Out::AddVip(VIP)));
    let line = "BACKUP -> MASTER: master 198.51.100.2 gone (liveness channel silent) (last \
                reflection 1.0ms before)";
    assert_eq!(logs.count(line), 1, "{}", logs.text());
}

/// The prober sent its probes every 200 µs from `ms` on.
fn probes_sent_after(fake: &Fake, ms: u64) {
    fake.world().probes_sent = (1..=5).map(|k| Timestamp(at(ms).0 + k * 200_000)).collect();
}

/// A silence that is no proof of the master's death: the backup stays backup, VRRP's timing
/// decides, and the reason is logged and counted.
async fn assert_no_proof(i: &mut Instance<Fake>, logs: &Logs, why: &str) {
    i.liveness_changed(change(false, true, 11), at(12)).await;
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.counters.liveness_distrusted, 1);
    let line = format!("liveness channel silent, not trusted: {why}; VRRP timing decides");
    assert_eq!(logs.count(&line), 1, "{}", logs.text());
}

/// Not first in line (another backup has a higher priority), or about a master we no longer
/// follow: not ours to act on.
#[tokio::test]
async fn silence_of_a_master_not_ours_to_judge_is_ignored() {
    let (mut i, fake) = probing_backup().await;
    probes_sent_after(&fake, 11);
    i.liveness_changed(change(false, false, 11), at(12)).await;
    assert_eq!(i.state(), State::Backup);
    let mut other = change(false, true, 11);
    other.peer = [198, 51, 100, 9];
    i.liveness_changed(other, at(12)).await;
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.counters.liveness_distrusted, 0);
}

/// The kernel recorded a reflection after the silence it reported: the channel is back.
#[tokio::test]
async fn a_reflection_after_the_reported_silence_cancels_it() {
    let (mut i, fake) = probing_backup().await;
    probes_sent_after(&fake, 11);
    fake.world().session = Some(Session {
        last_ns: at(12).0,
        ..Session::default()
    });
    i.liveness_changed(change(false, true, 11), at(12)).await;
    assert_eq!(i.state(), State::Backup);
}

/// Our own probes did not go out (this host stalled: a vCPU descheduled, a frozen thread): the
/// silence says nothing about the master.
#[tokio::test]
async fn silence_after_our_own_probes_were_late_is_no_proof() {
    let logs = Logs::capture();
    let (mut i, fake) = probing_backup().await;
    fake.world().probes_sent = vec![Timestamp(at(11).0 + 200_000)];
    let why = "this host did not send its probes on time (a stalled CPU)";
    assert_no_proof(&mut i, &logs, why).await;
}

/// A channel that lost or held up probes in the last second cannot tell loss from death.
#[tokio::test]
async fn silence_on_a_channel_in_trouble_lately_is_no_proof() {
    let logs = Logs::capture();
    let (mut i, fake) = probing_backup().await;
    probes_sent_after(&fake, 11);
    fake.world().session = Some(Session {
        last_ns: at(11).0,
        troubled_ns: at(10).0,
        ..Session::default()
    });
    let why = "the channel lost or held up probes in the last second (a flood or a busy CPU on \
               the way)";
    assert_no_proof(&mut i, &logs, why).await;
}

/// The master's adverts arriving after the last reflection: the channel lost probes, the master
/// lives.
#[tokio::test]
async fn silence_while_adverts_arrive_is_no_proof() {
    let logs = Logs::capture();
    let (mut i, fake) = probing_backup().await;
    probes_sent_after(&fake, 11);
    // The kernel recorded an advert at 11.5 ms; the last reflection was at 11 ms.
    fake.world().peer = Some(PeerRecord {
        t_ns: at(11).0 + 500_000,
        count: 2,
        src: addr_bytes(PEER),
        priority: 200,
        interval_cs: 10,
        ..PeerRecord::default()
    });
    let why = "the master's adverts still arrive (probes lost on the way)";
    assert_no_proof(&mut i, &logs, why).await;
}

/// The host's backlog dropped frames since the agent last looked (a flood steered to one CPU
/// drops in bursts, a clean second and then milliseconds of nothing): reflections may have been
/// among them.
#[tokio::test]
async fn silence_after_this_host_dropped_frames_is_no_proof() {
    let logs = Logs::capture();
    let (mut i, fake) = probing_backup().await;
    probes_sent_after(&fake, 11);
    fake.world().backlog = vec![softnet(0, 3, 0)];
    let why = "this host dropped received frames in the last second (a full backlog: a flood, \
               or receive work on a busy CPU)";
    assert_no_proof(&mut i, &logs, why).await;
}

/// Drops the agent saw more than a second before the silence say nothing about it: the channel
/// decides.
#[tokio::test]
async fn drops_long_before_the_silence_do_not_count() {
    let (mut i, fake) = probing_backup().await;
    fake.world().backlog = vec![softnet(0, 5, 0)];
    // The master's adverts meanwhile; the agent looks at the drops as it wakes (at 600 ms).
    for ms in (100..=1700).step_by(100) {
        i.on_packet(&advert(200), false, at(ms)).await;
        i.on_timers(at(ms)).await;
    }
    assert_eq!(i.state(), State::Backup);
    probes_sent_after(&fake, 1701);
    i.liveness_changed(change(false, true, 1701), at(1702))
        .await;
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.counters.liveness_distrusted, 0);
}

/// A CPU's drop counter is 32 bits and wraps (a host dropping for months): frames dropped across
/// the wrap are drops all the same.
#[tokio::test]
async fn drops_across_a_counter_wrap_count() {
    let (mut i, fake) = probing_backup().await;
    fake.world().backlog = vec![softnet(0, u32::MAX - 1, 0), softnet(0, 5, 0)];
    for ms in (100..=1700).step_by(100) {
        i.on_packet(&advert(200), false, at(ms)).await;
        i.on_timers(at(ms)).await;
    }
    fake.world().backlog = vec![softnet(0, 1, 0), softnet(0, 5, 0)];
    probes_sent_after(&fake, 1701);
    i.liveness_changed(change(false, true, 1701), at(1702))
        .await;
    assert_eq!(i.state(), State::Backup, "3 frames dropped");
    assert_eq!(i.counters.liveness_distrusted, 1);
}

/// One CPU's receive backlog: frames processed and dropped so far, frames waiting now.
fn softnet(processed: u32, dropped: u32, queued: u32) -> Softnet {
    Softnet {
        processed,
        dropped,
        queued: Some(queued),
    }
}

/// Frames waiting in this host's backlog at the silence may hold the reflection that would break
/// it (measured under a flood steered to one CPU: 1,108 frames waiting, the reflections 10 ms
/// late, none lost). So may frames queued after them: a reflection still on its way (the
/// bridge, the master) when the silence was reported queues behind those (measured: the backup
/// took over 2.35 ms after the last reflection once the frames waiting at the silence were
/// through, 197 frames queued again on the flooded CPU, the master alive). Trusted only at a
/// look that finds every backlog empty, if the silence still holds.
#[tokio::test]
async fn silence_is_trusted_only_once_no_frame_waits() {
    let (mut i, fake) = probing_backup().await;
    probes_sent_after(&fake, 11);
    fake.world().backlog = vec![softnet(0, 0, 100), softnet(5, 0, 0)];
    i.liveness_changed(change(false, true, 11), at(12)).await;
    let look = at(12) + Duration::from_micros(200);
    fake.world().backlog = vec![softnet(390, 0, 197), softnet(5, 0, 0)];
    i.on_timers(look).await;
    assert_eq!(i.state(), State::Backup, "197 frames queued again");
    assert_eq!(i.wake_at(), Some(look + Duration::from_micros(200)));
    fake.world().backlog = vec![softnet(587, 0, 0), softnet(5, 0, 0)];
    i.on_timers(look + Duration::from_micros(200)).await;
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.counters.liveness_distrusted, 0);
}

/// The reflection was among the frames waiting: the master lives; the silence is counted as no
/// proof.
#[tokio::test]
async fn a_reflection_held_up_in_the_backlog_is_no_proof() {
    let logs = Logs::capture();
    let (mut i, fake) = probing_backup().await;
    probes_sent_after(&fake, 11);
    fake.world().backlog = vec![softnet(0, 0, 1000)];
    i.liveness_changed(change(false, true, 11), at(12)).await;
    fake.world().session = Some(Session {
        last_ns: at(12).0 + 100_000,
        ..Session::default()
    });
    i.on_timers(at(12) + Duration::from_micros(200)).await;
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.counters.liveness_distrusted, 1);
    let why = "its reflection came late, held up in this host's receive backlog";
    assert_eq!(logs.count(why), 1, "{}", logs.text());
    assert_eq!(
        i.wake_at(),
        i.next_deadline().map(|(_, t)| t),
        "no more looks"
    );
}

/// Frames dropped while the silence waits: the reflection may have been one of them. And
/// backlogs that can no longer be read say nothing of the frames that waited.
#[tokio::test]
async fn drops_or_no_word_while_the_backlog_drains_are_no_proof() {
    for unreadable in [false, true] {
        let (mut i, fake) = probing_backup().await;
        probes_sent_after(&fake, 11);
        fake.world().backlog = vec![softnet(0, 0, 1000)];
        i.liveness_changed(change(false, true, 11), at(12)).await;
        fake.world().backlog = vec![softnet(1000, if unreadable { 0 } else { 4 }, 1000)];
        fake.world().backlog_unreadable = unreadable;
        i.on_timers(at(12) + Duration::from_micros(200)).await;
        assert_eq!(i.state(), State::Backup, "unreadable: {unreadable}");
        assert_eq!(i.counters.liveness_distrusted, 1);
    }
}

/// On the raw-socket path there is no kernel program to reflect or time probes: no probing,
/// and the log says so.
#[tokio::test]
async fn no_probes_without_the_kernel_path() {
    let logs = Logs::capture();
    let fake = Fake::default();
    let config = config("", "liveness_interval 200us");
    let mut i = Instance::new(config.instances[0].clone(), &config.checks, fake.clone());
    i.bind(&links(7, true)).await.unwrap();
    i.init_tracks(&links(7, true), |_| Some(true));
    i.start(at(0)).await;
    i.on_packet(&advert(200), false, at(10)).await;
    assert!(probes(&fake.take()).is_empty());
    assert_eq!(
        logs.count("liveness channel off: it needs the kernel receive path"),
        1
    );
}
