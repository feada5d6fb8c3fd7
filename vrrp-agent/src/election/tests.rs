//! One test per election rule, in virtual time, then multi-router scenarios.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use super::*;

const US: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
const PEER_LOW: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0));
const PEER_HIGH: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
const SEC: Duration = Duration::from_secs(1);

fn params(priority: u8) -> Params {
    Params {
        vrid: 51,
        version: Version::V3,
        priority,
        advert_interval: SEC,
        preempt: true,
        preempt_delay: Duration::ZERO,
        accept_mode: false,
        primary_addr: US,
        garp_repeat: None,
        garp_refresh: None,
        garp_lower_prio: false,
        garp_lower_prio_repeat: None,
    }
}

fn at_ms(ms: u64) -> Timestamp {
    Timestamp(ms * 1_000_000)
}

fn advert(src: IpAddr, priority: u8) -> Event {
    Event::Advert {
        src,
        priority,
        interval: SEC,
    }
}

fn actions(out: Output) -> Vec<Action> {
    out.into_iter().map(|(action, _)| action).collect()
}

/// Started at t=0, so in Backup with the Master_Down_Timer armed.
fn backup(config: Params) -> Machine {
    let mut m = Machine::new(config);
    m.handle(Event::Startup, at_ms(0));
    assert_eq!(m.state(), State::Backup);
    m
}

/// Backup at t=0 that became master when its Master_Down_Timer fired; returns that time too.
fn master(config: Params) -> (Machine, Timestamp) {
    let mut m = backup(config);
    let now = m.deadline(Timer::MasterDown).unwrap();
    m.handle(Event::TimerExpired(Timer::MasterDown), now);
    assert_eq!(m.state(), State::Master);
    (m, now)
}

#[test]
fn owner_priority_255_becomes_master_at_startup() {
    let mut m = Machine::new(params(255));
    let out = m.handle(Event::Startup, at_ms(0));
    assert!(out.iter().all(|(_, reason)| *reason == Reason::Startup));
    assert_eq!(
        actions(out),
        [
            Action::AddVips,
            Action::SendAdvert { priority: 255 },
            Action::SendGarp(Burst::Master),
            Action::ArmTimer {
                timer: Timer::Adver,
                at: at_ms(1000)
            },
            Action::Transition {
                from: State::Initialize,
                to: State::Master
            },
        ]
    );
}

#[test]
fn non_owner_starts_as_backup_with_master_down_timer() {
    let mut m = Machine::new(params(100));
    let out = actions(m.handle(Event::Startup, at_ms(0)));
    assert_eq!(m.master_adver_interval(), SEC);
    // 3 s + 156/256 s
    let down = at_ms(3609) + Duration::from_micros(375);
    assert_eq!(
        out,
        [
            Action::ArmTimer {
                timer: Timer::MasterDown,
                at: down
            },
            Action::Transition {
                from: State::Initialize,
                to: State::Backup
            },
        ]
    );
    assert_eq!(m.next_deadline(), Some((Timer::MasterDown, down)));
}

#[test]
fn v3_skew_time_scales_with_master_adver_interval() {
    let m = Machine::new(Params {
        advert_interval: Duration::from_millis(10),
        ..params(100)
    });
    assert_eq!(m.skew_time(), Duration::from_nanos(6_093_750));
    assert_eq!(m.master_down_interval(), Duration::from_nanos(36_093_750));
}

#[test]
fn v2_skew_time_is_seconds_and_interval_is_never_adopted() {
    let mut m = backup(Params {
        version: Version::V2,
        advert_interval: 3 * SEC,
        ..params(100)
    });
    assert_eq!(m.skew_time(), Duration::from_micros(609_375));
    assert_eq!(m.master_down_interval(), Duration::from_micros(9_609_375));
    m.handle(
        Event::Advert {
            src: PEER_HIGH,
            priority: 200,
            interval: SEC,
        },
        at_ms(1000),
    );
    assert_eq!(m.master_adver_interval(), 3 * SEC);
    assert_eq!(
        m.deadline(Timer::MasterDown),
        Some(at_ms(1000) + Duration::from_micros(9_609_375))
    );
}

#[test]
fn v3_backup_adopts_advert_interval() {
    let mut m = backup(params(100));
    let interval = Duration::from_millis(50);
    let out = m.handle(
        Event::Advert {
            src: PEER_HIGH,
            priority: 200,
            interval,
        },
        at_ms(500),
    );
    assert_eq!(m.master_adver_interval(), interval);
    assert_eq!(m.skew_time(), interval * 156 / 256);
    let down = at_ms(500) + 3 * interval + interval * 156 / 256;
    assert_eq!(
        out,
        [(
            Action::ArmTimer {
                timer: Timer::MasterDown,
                at: down
            },
            Reason::Advert {
                src: PEER_HIGH,
                priority: 200
            }
        )]
    );
}

#[test]
fn backup_priority_zero_advert_arms_master_down_at_skew_time() {
    let mut m = backup(params(100));
    let out = m.handle(advert(PEER_HIGH, 0), at_ms(2000));
    assert_eq!(
        out,
        [(
            Action::ArmTimer {
                timer: Timer::MasterDown,
                at: at_ms(2000) + m.skew_time()
            },
            Reason::PriorityZeroAdvert { src: PEER_HIGH }
        )]
    );
    assert_eq!(
        Reason::PriorityZeroAdvert { src: PEER_HIGH }.to_string(),
        "priority 0 advert from 198.51.100.2 (master shutting down)"
    );
}

#[test]
fn backup_accepts_advert_without_preempt_or_from_at_least_its_priority() {
    let mut no_preempt = backup(Params {
        preempt: false,
        ..params(100)
    });
    no_preempt.handle(advert(PEER_LOW, 50), at_ms(1000));
    assert_eq!(
        no_preempt.deadline(Timer::MasterDown),
        Some(at_ms(1000) + no_preempt.master_down_interval())
    );

    let mut preempt = backup(params(100));
    preempt.handle(advert(PEER_LOW, 100), at_ms(1000));
    assert_eq!(
        preempt.deadline(Timer::MasterDown),
        Some(at_ms(1000) + preempt.master_down_interval())
    );
}

#[test]
fn backup_with_preempt_discards_lower_priority_advert() {
    let mut m = backup(params(100));
    let down = m.deadline(Timer::MasterDown).unwrap();
    assert_eq!(m.handle(advert(PEER_LOW, 50), at_ms(1000)), []);
    assert_eq!(m.deadline(Timer::MasterDown), Some(down));
    m.handle(Event::TimerExpired(Timer::MasterDown), down);
    assert_eq!(m.state(), State::Master);
}

#[test]
fn preempt_delay_accepts_lower_priority_adverts_until_it_ends() {
    let mut m = backup(Params {
        preempt_delay: 5 * SEC,
        ..params(100)
    });
    // The first lower-priority advert opens the window at t=1 s, until t=6 s.
    let out = m.handle(advert(PEER_LOW, 50), at_ms(1000));
    assert_eq!(
        out[0].1,
        Reason::PreemptDelay {
            src: PEER_LOW,
            priority: 50
        }
    );
    assert_eq!(out.len(), 1);
    assert_eq!(m.handle(advert(PEER_LOW, 50), at_ms(5999)).len(), 1);
    assert_eq!(m.handle(advert(PEER_LOW, 50), at_ms(6000)), []);
    let down = at_ms(5999) + m.master_down_interval();
    assert_eq!(m.deadline(Timer::MasterDown), Some(down));
}

#[test]
fn preempt_delay_window_ends_on_better_advert_and_when_leaving_backup() {
    let mut m = backup(Params {
        preempt_delay: 5 * SEC,
        ..params(100)
    });
    m.handle(advert(PEER_LOW, 50), at_ms(1000));
    // keepalived: a master at least as good as us ends the window; the next one starts afresh.
    m.handle(advert(PEER_HIGH, 200), at_ms(2000));
    m.handle(advert(PEER_LOW, 50), at_ms(3000));
    assert_eq!(m.handle(advert(PEER_LOW, 50), at_ms(7999)).len(), 1);
    assert_eq!(m.handle(advert(PEER_LOW, 50), at_ms(8000)), []);

    m.handle(Event::Fault, at_ms(8000));
    m.handle(Event::FaultCleared, at_ms(9000));
    assert_eq!(m.handle(advert(PEER_LOW, 50), at_ms(10_000)).len(), 1);
}

#[test]
fn backup_master_down_expiry_becomes_master() {
    let mut m = backup(Params {
        garp_repeat: Some(5 * SEC),
        ..params(100)
    });
    let now = m.deadline(Timer::MasterDown).unwrap();
    let out = m.handle(Event::TimerExpired(Timer::MasterDown), now);
    assert!(out
        .iter()
        .all(|(_, reason)| *reason == Reason::MasterDownTimerExpired));
    assert_eq!(
        actions(out),
        [
            Action::AddVips,
            Action::SendAdvert { priority: 100 },
            Action::SendGarp(Burst::Master),
            Action::ArmTimer {
                timer: Timer::Adver,
                at: now + SEC
            },
            Action::ArmTimer {
                timer: Timer::GarpRepeat,
                at: now + 5 * SEC
            },
            Action::Transition {
                from: State::Backup,
                to: State::Master
            },
        ]
    );
    assert_eq!(m.deadline(Timer::MasterDown), None);
}

#[test]
fn master_adver_expiry_sends_advert_and_rearms() {
    let (mut m, t0) = master(params(100));
    let out = m.handle(Event::TimerExpired(Timer::Adver), t0 + SEC);
    assert_eq!(
        out,
        [
            (
                Action::SendAdvert { priority: 100 },
                Reason::AdverTimerExpired
            ),
            (
                Action::ArmTimer {
                    timer: Timer::Adver,
                    at: t0 + 2 * SEC
                },
                Reason::AdverTimerExpired
            ),
        ]
    );
}

#[test]
fn master_priority_zero_advert_sends_advert_at_once() {
    let (mut m, t0) = master(params(100));
    let now = t0 + Duration::from_millis(300);
    let out = actions(m.handle(advert(PEER_HIGH, 0), now));
    assert_eq!(
        out,
        [
            Action::SendAdvert { priority: 100 },
            Action::ArmTimer {
                timer: Timer::Adver,
                at: now + SEC
            },
        ]
    );
    assert_eq!(m.state(), State::Master);
}

#[test]
fn master_yields_to_higher_priority_advert() {
    let (mut m, t0) = master(Params {
        garp_repeat: Some(5 * SEC),
        ..params(100)
    });
    let now = t0 + Duration::from_millis(300);
    let interval = Duration::from_millis(200);
    let out = m.handle(
        Event::Advert {
            src: PEER_LOW,
            priority: 200,
            interval,
        },
        now,
    );
    assert_eq!(
        out[0].1.to_string(),
        "higher priority advert from 198.51.100.0 (prio 200)"
    );
    assert_eq!(m.master_adver_interval(), interval);
    assert_eq!(
        actions(out),
        [
            Action::CancelTimer(Timer::Adver),
            Action::CancelTimer(Timer::GarpRepeat),
            Action::RemoveVips,
            Action::ArmTimer {
                timer: Timer::MasterDown,
                at: now + m.master_down_interval()
            },
            Action::Transition {
                from: State::Master,
                to: State::Backup
            },
        ]
    );
}

#[test]
fn master_equal_priority_tie_goes_to_higher_address() {
    let (mut m, t0) = master(params(100));
    let out = m.handle(advert(PEER_LOW, 100), t0 + Duration::from_millis(100));
    assert_eq!(
        out[0],
        (
            Action::SendAdvert { priority: 100 },
            Reason::LowerAddressAdvert {
                src: PEER_LOW,
                priority: 100
            }
        )
    );
    assert_eq!(m.state(), State::Master);

    let out = m.handle(advert(PEER_HIGH, 100), t0 + Duration::from_millis(200));
    assert_eq!(
        out[0].1,
        Reason::HigherAddressAdvert {
            src: PEER_HIGH,
            priority: 100
        }
    );
    assert_eq!(m.state(), State::Backup);
}

#[test]
fn master_discards_lower_priority_advert_and_asserts_itself() {
    let (mut m, t0) = master(params(100));
    let now = t0 + Duration::from_millis(300);
    let out = m.handle(advert(PEER_HIGH, 50), now);
    let reason = Reason::LowerPriorityAdvert {
        src: PEER_HIGH,
        priority: 50,
    };
    assert_eq!(
        out,
        [
            (Action::SendAdvert { priority: 100 }, reason),
            (
                Action::ArmTimer {
                    timer: Timer::Adver,
                    at: now + SEC
                },
                reason
            ),
        ]
    );
    assert_eq!(m.state(), State::Master);
    assert_eq!(m.master_adver_interval(), SEC);
}

/// RFC 9568 §6.4.3 answers each priority-0 and lower-priority advert with an advert; a flood of
/// them must not become a flood of ours: at most one answer per quarter advert interval. The
/// first answer comes at once (the RFC's intent); the others wait for the gap or the Adver_Timer.
#[test]
fn master_answers_priority_zero_and_lower_priority_adverts_at_most_four_times_an_interval() {
    for priority in [0, 50] {
        let (mut m, t0) = master(params(100));
        let sent = |out: Output| {
            actions(out)
                .iter()
                .filter(|a| matches!(a, Action::SendAdvert { .. }))
                .count()
        };
        // 1000 adverts in one advert interval (1 s), one a millisecond.
        let answers: usize = (1..=1000)
            .map(|ms| sent(m.handle(advert(PEER_HIGH, priority), t0 + Duration::from_millis(ms))))
            .sum();
        assert_eq!(answers, 4, "priority {priority}");
        assert_eq!(m.state(), State::Master);
    }
}

fn lower_prio_garp(repeat: Option<Duration>) -> Params {
    Params {
        garp_lower_prio: true,
        garp_lower_prio_repeat: repeat,
        ..params(100)
    }
}

/// keepalived garp_lower_prio_repeat / garp_lower_prio_delay: a master that hears another master
/// with a lower priority (or equal priority and a lower address) answers with an advert and a
/// gratuitous ARP burst, and repeats the burst after the delay.
#[test]
fn master_announces_vips_again_on_lower_priority_advert() {
    let (mut m, t0) = master(lower_prio_garp(Some(5 * SEC)));
    let now = t0 + SEC / 2;
    let reason = Reason::LowerPriorityAdvert {
        src: PEER_HIGH,
        priority: 50,
    };
    assert_eq!(
        m.handle(advert(PEER_HIGH, 50), now),
        [
            (Action::SendAdvert { priority: 100 }, reason),
            (
                Action::ArmTimer {
                    timer: Timer::Adver,
                    at: now + SEC
                },
                reason
            ),
            (Action::SendGarp(Burst::LowerPriority), reason),
            (
                Action::ArmTimer {
                    timer: Timer::GarpLowerPrio,
                    at: now + 5 * SEC
                },
                reason
            ),
        ]
    );
    let later = now + 5 * SEC;
    assert_eq!(
        m.handle(Event::TimerExpired(Timer::GarpLowerPrio), later),
        [(
            Action::SendGarp(Burst::LowerPriority),
            Reason::GarpLowerPrioTimerExpired
        )]
    );
    assert_eq!(m.deadline(Timer::GarpLowerPrio), None, "one shot");

    let (mut tie, t0) = master(lower_prio_garp(None));
    let out = actions(tie.handle(advert(PEER_LOW, 100), t0 + SEC / 2));
    assert!(
        out.contains(&Action::SendGarp(Burst::LowerPriority)),
        "{out:?}"
    );
    let out = actions(tie.handle(advert(PEER_LOW, 0), t0 + SEC));
    assert!(
        !out.contains(&Action::SendGarp(Burst::LowerPriority)),
        "prio 0: {out:?}"
    );
}

/// Ours: a flood of lower-priority adverts makes at most one burst per LOWER_PRIO_GARP_MIN_GAP.
#[test]
fn lower_priority_garp_is_rate_limited() {
    let (mut m, t0) = master(lower_prio_garp(None));
    let bursts = |m: &mut Machine, from: Timestamp, n: u64, step: Duration| {
        (0..n)
            .flat_map(|i| actions(m.handle(advert(PEER_HIGH, 50), from + step * i as u32)))
            .filter(|a| *a == Action::SendGarp(Burst::LowerPriority))
            .count()
    };
    let step = Duration::from_millis(1);
    assert_eq!(bursts(&mut m, t0 + SEC / 2, 100, step), 1, "100 in 100 ms");
    let later = t0 + SEC / 2 + LOWER_PRIO_GARP_MIN_GAP;
    assert_eq!(bursts(&mut m, later, 1, step), 1, "the next gap");
}

/// Without garp_lower_prio_repeat (0), no burst; leaving master cancels a pending repeat.
#[test]
fn lower_priority_garp_off_or_cancelled() {
    let (mut off, t0) = master(params(100));
    let out = actions(off.handle(advert(PEER_HIGH, 50), t0 + SEC / 2));
    assert!(
        !out.contains(&Action::SendGarp(Burst::LowerPriority)),
        "{out:?}"
    );

    let (mut m, t0) = master(lower_prio_garp(Some(5 * SEC)));
    m.handle(advert(PEER_HIGH, 50), t0 + SEC / 2);
    assert!(m.deadline(Timer::GarpLowerPrio).is_some());
    m.handle(advert(PEER_HIGH, 200), t0 + SEC);
    assert_eq!(m.state(), State::Backup);
    assert_eq!(m.deadline(Timer::GarpLowerPrio), None);
}

#[test]
fn master_shutdown_sends_priority_zero_and_removes_vips() {
    let (mut m, t0) = master(params(100));
    let out = actions(m.handle(Event::Shutdown, t0 + SEC / 2));
    assert_eq!(
        out,
        [
            Action::CancelTimer(Timer::Adver),
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Initialize
            },
        ]
    );
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn backup_shutdown_cancels_master_down() {
    let mut m = backup(params(100));
    let out = actions(m.handle(Event::Shutdown, at_ms(1000)));
    assert_eq!(
        out,
        [
            Action::CancelTimer(Timer::MasterDown),
            Action::Transition {
                from: State::Backup,
                to: State::Initialize
            },
        ]
    );
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn master_priority_change_advertises_at_once() {
    let (mut m, t0) = master(params(100));
    let now = t0 + Duration::from_millis(400);
    let out = m.handle(Event::PriorityChanged(80), now);
    let reason = Reason::PriorityChanged { from: 100, to: 80 };
    assert_eq!(reason.to_string(), "priority changed from 100 to 80");
    assert_eq!(
        out,
        [
            (Action::SendAdvert { priority: 80 }, reason),
            (
                Action::ArmTimer {
                    timer: Timer::Adver,
                    at: now + SEC
                },
                reason
            ),
        ]
    );
    assert_eq!(m.handle(Event::PriorityChanged(80), now), []);
}

#[test]
fn backup_priority_change_applies_from_next_rearm() {
    let mut m = backup(params(100));
    let armed = m.deadline(Timer::MasterDown);
    assert_eq!(m.handle(Event::PriorityChanged(200), at_ms(1000)), []);
    assert_eq!(m.deadline(Timer::MasterDown), armed);
    assert_eq!(m.skew_time(), SEC * 56 / 256);
    m.handle(advert(PEER_HIGH, 250), at_ms(2000));
    assert_eq!(
        m.deadline(Timer::MasterDown),
        Some(at_ms(2000) + 3 * SEC + SEC * 56 / 256)
    );
}

#[test]
fn owner_semantics_follow_current_priority() {
    let mut raised = Machine::new(params(100));
    raised.handle(Event::PriorityChanged(255), at_ms(0));
    let out = actions(raised.handle(Event::Startup, at_ms(0)));
    assert_eq!(out[0], Action::AddVips);
    assert_eq!(raised.state(), State::Master);

    let mut lowered = Machine::new(params(255));
    lowered.handle(Event::PriorityChanged(254), at_ms(0));
    lowered.handle(Event::Startup, at_ms(0));
    assert_eq!(lowered.state(), State::Backup);
}

#[test]
fn priority_zero_is_treated_as_one() {
    let mut m = Machine::new(params(0));
    assert_eq!(m.priority(), 1);
    m.handle(Event::PriorityChanged(50), at_ms(0));
    m.handle(Event::PriorityChanged(0), at_ms(0));
    assert_eq!(m.priority(), 1);
}

#[test]
fn accept_mode_or_owner_accepts_vip_traffic() {
    for (accept_mode, priority, accept) in
        [(false, 100, false), (true, 100, true), (false, 255, true)]
    {
        let config = Params {
            accept_mode,
            ..params(priority)
        };
        assert_eq!(
            config.accepts_vip_traffic(),
            accept,
            "{accept_mode} {priority}"
        );
    }
}

#[test]
fn fault_moves_any_state_to_fault_state() {
    let (mut m, t0) = master(Params {
        garp_repeat: Some(5 * SEC),
        ..params(100)
    });
    let out = m.handle(Event::Fault, t0 + SEC / 2);
    assert!(out.iter().all(|(_, reason)| *reason == Reason::Fault));
    assert_eq!(
        actions(out),
        [
            Action::CancelTimer(Timer::Adver),
            Action::CancelTimer(Timer::GarpRepeat),
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Fault
            },
        ]
    );
    assert_eq!(m.next_deadline(), None);
    assert_eq!(m.handle(Event::Fault, t0 + SEC), []);

    let mut b = backup(params(100));
    b.handle(Event::Fault, at_ms(1000));
    assert_eq!((b.state(), b.next_deadline()), (State::Fault, None));

    // Before Startup: parked in Fault, started by FaultCleared.
    let mut i = Machine::new(params(100));
    i.handle(Event::Fault, at_ms(0));
    assert_eq!(i.state(), State::Fault);
}

#[test]
fn fault_cleared_acts_as_startup() {
    let mut m = backup(params(100));
    m.handle(Event::Fault, at_ms(1000));
    let out = m.handle(Event::FaultCleared, at_ms(2000));
    assert_eq!(
        out.last(),
        Some(&(
            Action::Transition {
                from: State::Fault,
                to: State::Backup
            },
            Reason::FaultCleared
        ))
    );
    assert_eq!(
        m.deadline(Timer::MasterDown),
        Some(at_ms(2000) + m.master_down_interval())
    );

    let mut owner = Machine::new(params(255));
    owner.handle(Event::Fault, at_ms(0));
    owner.handle(Event::FaultCleared, at_ms(1000));
    assert_eq!(owner.state(), State::Master);
}

#[test]
fn fault_and_initialize_ignore_other_events() {
    let mut init = Machine::new(params(100));
    let mut fault = Machine::new(params(100));
    fault.handle(Event::Fault, at_ms(0));
    for event in [
        advert(PEER_HIGH, 0),
        advert(PEER_HIGH, 200),
        Event::TimerExpired(Timer::MasterDown),
        Event::PriorityChanged(120),
    ] {
        assert_eq!(init.handle(event, at_ms(1000)), []);
        assert_eq!(fault.handle(event, at_ms(1000)), []);
    }
    assert_eq!(init.handle(Event::FaultCleared, at_ms(1000)), []);
    assert_eq!(init.handle(Event::Shutdown, at_ms(1000)), []);
    assert_eq!(fault.handle(Event::Startup, at_ms(1000)), []);
    assert_eq!(
        (init.state(), fault.state()),
        (State::Initialize, State::Fault)
    );

    let out = actions(fault.handle(Event::Shutdown, at_ms(2000)));
    assert_eq!(
        out,
        [Action::Transition {
            from: State::Fault,
            to: State::Initialize
        }]
    );
}

#[test]
fn stale_or_early_timer_expiry_is_ignored() {
    let mut m = backup(params(100));
    let down = m.deadline(Timer::MasterDown).unwrap();
    // Early wake-up: the deadline has not passed yet.
    assert_eq!(
        m.handle(
            Event::TimerExpired(Timer::MasterDown),
            Timestamp(down.0 - 1)
        ),
        []
    );
    // A timer that is not armed in this state.
    assert_eq!(m.handle(Event::TimerExpired(Timer::Adver), down), []);
    // A timer cancelled by leaving the state.
    m.handle(Event::Shutdown, at_ms(1000));
    m.handle(Event::Startup, at_ms(1000));
    assert_eq!(m.handle(Event::TimerExpired(Timer::MasterDown), down), []);
    assert_eq!(m.state(), State::Backup);
}

#[test]
fn advert_stamped_by_kernel_beats_late_timer_wakeup() {
    let mut m = backup(params(100));
    let down = m.deadline(Timer::MasterDown).unwrap();
    // The driver wakes 5 ms late; the XDP record shows an advert that arrived 1 ms before the
    // deadline. Fed first with its kernel timestamp, it re-arms the timer past the wake-up.
    let arrival = Timestamp(down.0 - 1_000_000);
    let wakeup = down + Duration::from_millis(5);
    m.handle(advert(PEER_HIGH, 200), arrival);
    assert_eq!(m.handle(Event::TimerExpired(Timer::MasterDown), wakeup), []);
    assert_eq!(m.state(), State::Backup);
    assert_eq!(
        m.deadline(Timer::MasterDown),
        Some(arrival + m.master_down_interval())
    );
}

#[test]
fn garp_repeat_sends_one_more_garp_in_master() {
    let (mut m, t0) = master(Params {
        garp_repeat: Some(5 * SEC),
        ..params(100)
    });
    let out = m.handle(Event::TimerExpired(Timer::GarpRepeat), t0 + 5 * SEC);
    assert_eq!(
        out,
        [(
            Action::SendGarp(Burst::Master),
            Reason::GarpRepeatTimerExpired
        )]
    );
    assert_eq!(m.deadline(Timer::GarpRepeat), None);
    assert_eq!(
        m.handle(Event::TimerExpired(Timer::GarpRepeat), t0 + 10 * SEC),
        []
    );
}

#[test]
fn advert_from_own_address_is_ignored() {
    let (mut m, t0) = master(params(100));
    assert_eq!(m.handle(advert(US, 100), t0 + SEC / 2), []);
    let mut b = backup(params(100));
    assert_eq!(b.handle(advert(US, 0), at_ms(1000)), []);
}

/// Routers on one LAN in virtual time: adverts reach every other running router at once.
struct Lan {
    routers: Vec<Machine>,
    /// Crashed routers neither send nor receive.
    alive: Vec<bool>,
    now: Timestamp,
    /// (time, router, new state)
    transitions: Vec<(Timestamp, usize, State)>,
    /// (time, router, priority) of every advert sent.
    adverts: Vec<(Timestamp, usize, u8)>,
}

impl Lan {
    fn new(configs: Vec<Params>) -> Self {
        let n = configs.len();
        Lan {
            routers: configs.into_iter().map(Machine::new).collect(),
            alive: vec![true; n],
            now: Timestamp(0),
            transitions: Vec::new(),
            adverts: Vec::new(),
        }
    }

    fn send(&mut self, router: usize, event: Event) {
        let mut queue = VecDeque::from([(router, event)]);
        while let Some((i, event)) = queue.pop_front() {
            if !self.alive[i] {
                continue;
            }
            for (action, _) in self.routers[i].handle(event, self.now) {
                match action {
                    Action::Transition { to, .. } => self.transitions.push((self.now, i, to)),
                    Action::SendAdvert { priority } => {
                        self.adverts.push((self.now, i, priority));
                        let config = self.routers[i].params();
                        let advert = Event::Advert {
                            src: config.primary_addr,
                            priority,
                            interval: config.advert_interval,
                        };
                        queue.extend(
                            (0..self.routers.len())
                                .filter(|&j| j != i)
                                .map(|j| (j, advert)),
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    /// Fires every deadline up to `end`, in order.
    fn run_until(&mut self, end: Timestamp) {
        loop {
            let next = (0..self.routers.len())
                .filter(|&i| self.alive[i])
                .filter_map(|i| {
                    let (timer, at) = self.routers[i].next_deadline()?;
                    Some((at, i, timer))
                })
                .min_by_key(|&(at, i, _)| (at, i));
            match next {
                Some((at, i, timer)) if at <= end => {
                    self.now = at;
                    self.send(i, Event::TimerExpired(timer));
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn states(&self) -> Vec<State> {
        self.routers.iter().map(Machine::state).collect()
    }
}

fn lan_params(priority: u8, addr: IpAddr) -> Params {
    Params {
        primary_addr: addr,
        ..params(priority)
    }
}

#[test]
fn scenario_higher_priority_wins_whoever_starts_first() {
    // Started together: the higher priority has the shorter Master_Down_Interval.
    let mut lan = Lan::new(vec![lan_params(100, US), lan_params(200, PEER_HIGH)]);
    lan.send(0, Event::Startup);
    lan.send(1, Event::Startup);
    lan.run_until(at_ms(20_000));
    assert_eq!(lan.states(), [State::Backup, State::Master]);
    let masters: Vec<_> = lan
        .transitions
        .iter()
        .filter(|(_, _, to)| *to == State::Master)
        .collect();
    assert_eq!(
        masters,
        [&(at_ms(3218) + Duration::from_micros(750), 1, State::Master)]
    );

    // Started later: it discards the lower master's adverts, takes over, and the old master
    // yields to its first advert.
    let mut lan = Lan::new(vec![lan_params(100, US), lan_params(200, PEER_HIGH)]);
    lan.send(0, Event::Startup);
    lan.run_until(at_ms(10_000));
    assert_eq!(lan.states(), [State::Master, State::Initialize]);
    lan.send(1, Event::Startup);
    lan.run_until(at_ms(20_000));
    assert_eq!(lan.states(), [State::Backup, State::Master]);
    let takeover = at_ms(10_000) + lan.routers[1].master_down_interval();
    assert_eq!(
        lan.transitions[lan.transitions.len() - 2..],
        [(takeover, 1, State::Master), (takeover, 0, State::Backup)]
    );
}

#[test]
fn scenario_backup_takes_over_at_master_down_interval_after_last_advert() {
    let mut lan = Lan::new(vec![lan_params(100, US), lan_params(200, PEER_HIGH)]);
    lan.send(0, Event::Startup);
    lan.send(1, Event::Startup);
    lan.run_until(at_ms(10_000));
    assert_eq!(lan.states(), [State::Backup, State::Master]);

    // The master crashes: no priority 0 advert.
    lan.alive[1] = false;
    let last_advert = lan.adverts.iter().rev().find(|a| a.1 == 1).unwrap().0;
    lan.run_until(at_ms(30_000));
    let down = lan.routers[0].master_down_interval();
    assert_eq!(
        lan.transitions.last(),
        Some(&(last_advert + down, 0, State::Master))
    );
}

#[test]
fn scenario_graceful_shutdown_hands_over_after_skew_time() {
    let mut lan = Lan::new(vec![lan_params(100, US), lan_params(200, PEER_HIGH)]);
    lan.send(0, Event::Startup);
    lan.send(1, Event::Startup);
    lan.run_until(at_ms(10_000));
    lan.send(1, Event::Shutdown);
    lan.run_until(at_ms(30_000));
    assert_eq!(lan.states(), [State::Master, State::Initialize]);
    let skew = lan.routers[0].skew_time();
    assert_eq!(
        lan.transitions.last(),
        Some(&(at_ms(10_000) + skew, 0, State::Master))
    );
}

/// keepalived vrrp_sync_master: a backup member follows the group to MASTER at once, doing all
/// a master does (VIPs, advert, GARP, advert timer); anywhere but Backup it changes nothing.
#[test]
fn sync_group_master_takes_a_backup_member_to_master() {
    let mut m = backup(params(100));
    let now = at_ms(50);
    let out = m.handle(Event::SyncMaster, now);
    assert_eq!(out[0].1, Reason::SyncGroup);
    assert_eq!(
        actions(out),
        [
            Action::CancelTimer(Timer::MasterDown),
            Action::AddVips,
            Action::SendAdvert { priority: 100 },
            Action::SendGarp(Burst::Master),
            Action::ArmTimer {
                timer: Timer::Adver,
                at: now + SEC
            },
            Action::Transition {
                from: State::Backup,
                to: State::Master
            },
        ]
    );
    assert!(m.handle(Event::SyncMaster, now).is_empty());
}

/// keepalived vrrp_sync_backup: a master member follows the group to BACKUP, releasing its VIPs
/// without a priority-0 advert (the group's new master asserts itself); elsewhere nothing.
#[test]
fn sync_group_backup_takes_a_master_member_to_backup() {
    let (mut m, t0) = master(params(100));
    let now = t0 + Duration::from_millis(300);
    let out = m.handle(Event::SyncBackup, now);
    assert_eq!(
        actions(out),
        [
            Action::CancelTimer(Timer::Adver),
            Action::RemoveVips,
            Action::ArmTimer {
                timer: Timer::MasterDown,
                at: now + m.master_down_interval()
            },
            Action::Transition {
                from: State::Master,
                to: State::Backup
            },
        ]
    );
    assert!(m.handle(Event::SyncBackup, now).is_empty());
}

/// keepalived garp_master_refresh: while master, gratuitous ARP every period, re-armed each time;
/// leaving Master cancels it.
#[test]
fn garp_refresh_repeats_while_master() {
    let (mut m, t0) = master(Params {
        garp_refresh: Some(60 * SEC),
        ..params(100)
    });
    assert_eq!(m.deadline(Timer::GarpRefresh), Some(t0 + 60 * SEC));
    let out = m.handle(Event::TimerExpired(Timer::GarpRefresh), t0 + 60 * SEC);
    assert_eq!(
        actions(out),
        [
            Action::SendGarp(Burst::Master),
            Action::ArmTimer {
                timer: Timer::GarpRefresh,
                at: t0 + 120 * SEC
            }
        ]
    );
    m.handle(advert(PEER_HIGH, 200), t0 + 61 * SEC);
    assert_eq!(m.state(), State::Backup);
    assert_eq!(m.deadline(Timer::GarpRefresh), None);
}

/// Liveness channel: the master this backup follows gone means Master_Down now, with all a new
/// master does; the master it follows is the one whose adverts it accepted last.
#[test]
fn master_gone_from_the_liveness_channel_is_master_down_early() {
    let mut m = backup(params(100));
    assert_eq!(m.followed(), None);
    m.handle(advert(PEER_HIGH, 200), at_ms(100));
    assert_eq!(m.followed(), Some(PEER_HIGH));
    let out = m.handle(Event::MasterGone { src: PEER_HIGH }, at_ms(101));
    assert!(out
        .iter()
        .all(|(_, r)| *r == Reason::MasterGone { src: PEER_HIGH }));
    assert!(actions(out).contains(&Action::SendGarp(Burst::Master)));
    assert_eq!(m.state(), State::Master);
    assert_eq!(m.followed(), None);
}

/// A report about a router this backup does not follow (an earlier master, none heard yet) is
/// stale news; outside Backup there is no master to lose.
#[test]
fn master_gone_about_another_router_or_outside_backup_is_ignored() {
    let mut m = backup(params(100));
    assert!(m
        .handle(Event::MasterGone { src: PEER_HIGH }, at_ms(1))
        .is_empty());
    m.handle(advert(PEER_HIGH, 200), at_ms(100));
    m.handle(advert(PEER_LOW, 250), at_ms(200));
    assert!(m
        .handle(Event::MasterGone { src: PEER_HIGH }, at_ms(201))
        .is_empty());
    assert_eq!((m.state(), m.followed()), (State::Backup, Some(PEER_LOW)));
    let (mut master, t) = master(params(100));
    assert!(master
        .handle(Event::MasterGone { src: PEER_HIGH }, t)
        .is_empty());
    assert_eq!(master.state(), State::Master);
}

/// A lower-priority advert a preempting backup discards does not make its sender the master it
/// follows; one accepted in the preempt delay does.
#[test]
fn the_master_followed_is_the_one_whose_adverts_count() {
    let mut m = backup(params(150));
    m.handle(advert(PEER_LOW, 100), at_ms(100));
    assert_eq!(m.followed(), None);
    let mut m = backup(Params {
        preempt_delay: 10 * SEC,
        ..params(150)
    });
    m.handle(advert(PEER_LOW, 100), at_ms(100));
    assert_eq!(m.followed(), Some(PEER_LOW));
    m.handle(advert(PEER_HIGH, 0), at_ms(200));
    assert_eq!(m.followed(), Some(PEER_HIGH));
}

/// A master that yields to a higher-priority advert follows its sender from then on (the
/// liveness channel probes it), as a backup that accepted the advert would.
#[test]
fn master_yielding_follows_the_router_it_yielded_to() {
    let (mut m, t) = master(params(100));
    assert_eq!(m.followed(), None);
    m.handle(advert(PEER_HIGH, 200), t);
    assert_eq!((m.state(), m.followed()), (State::Backup, Some(PEER_HIGH)));
}
