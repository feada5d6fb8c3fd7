//! One test per sync-group rule, with real election machines driven in virtual time.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use vrrp_common::Version;

use super::*;
use crate::election::{Machine, Params, Timer, Timestamp};

const SEC: Duration = Duration::from_secs(1);
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));

/// One member: its election and the two reasons it may be in FAULT, as an instance keeps them.
struct Router {
    name: &'static str,
    machine: Machine,
    own_fault: bool,
    held: bool,
}

impl Router {
    fn new(name: &'static str, vrid: u8) -> Self {
        Self {
            name,
            machine: Machine::new(Params {
                vrid,
                version: Version::V3,
                priority: 100,
                advert_interval: SEC,
                preempt: true,
                preempt_delay: Duration::ZERO,
                accept_mode: false,
                primary_addr: std::net::IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
                garp_repeat: None,
                garp_refresh: None,
                garp_lower_prio: false,
                garp_lower_prio_repeat: None,
            }),
            own_fault: false,
            held: false,
        }
    }

    /// FAULT while either holds, as `Instance` does.
    fn set_fault(&mut self, own: bool, held: bool, now: Timestamp) {
        let (was, is) = (self.own_fault || self.held, own || held);
        (self.own_fault, self.held) = (own, held);
        match (was, is) {
            (false, true) => _ = self.machine.handle(Event::Fault, now),
            (true, false) => _ = self.machine.handle(Event::FaultCleared, now),
            _ => {}
        }
    }
}

/// Two instances in group G, and the notify commands seen.
struct Pair {
    routers: [Router; 2],
    groups: SyncGroups,
    notified: Vec<State>,
    now: Timestamp,
}

impl Pair {
    fn new() -> Self {
        let group = SyncGroup {
            name: "G".into(),
            members: vec!["A".into(), "B".into()],
            ..SyncGroup::default()
        };
        let mut pair = Self {
            routers: [Router::new("A", 51), Router::new("B", 52)],
            groups: SyncGroups::new(&[group]),
            notified: Vec::new(),
            now: Timestamp(0),
        };
        for r in &mut pair.routers {
            r.machine.handle(Event::Startup, Timestamp(0));
        }
        pair.settle();
        pair
    }

    fn router(&mut self, name: &str) -> &mut Router {
        self.routers.iter_mut().find(|r| r.name == name).unwrap()
    }

    /// Steps the groups and carries out their commands until they have none.
    fn settle(&mut self) {
        for _ in 0..100 {
            let routers = &self.routers;
            let commands = self.groups.step(|name| {
                let r = routers.iter().find(|r| r.name == name)?;
                Some(Member {
                    state: r.machine.state(),
                    own_fault: r.own_fault,
                })
            });
            if commands.is_empty() {
                return;
            }
            let now = self.now;
            for c in commands {
                match c {
                    Command::Hold { member, cause } => {
                        let r = self.router(&member);
                        r.set_fault(r.own_fault, cause.is_some(), now);
                    }
                    Command::Follow { member, event } => {
                        self.router(&member).machine.handle(event, now);
                    }
                    Command::Notify { state, .. } => self.notified.push(state),
                }
            }
        }
        panic!("the sync group did not settle");
    }

    fn states(&self) -> [State; 2] {
        [
            self.routers[0].machine.state(),
            self.routers[1].machine.state(),
        ]
    }

    /// Fires `name`'s Master_Down_Timer: it stopped hearing its master.
    fn master_down(&mut self, name: &str) {
        let r = self.router(name);
        let at = r.machine.deadline(Timer::MasterDown).unwrap();
        r.machine.handle(Event::TimerExpired(Timer::MasterDown), at);
        self.now = at;
        self.settle();
    }
}

#[test]
fn members_start_together_and_the_group_notifies_once() {
    let pair = Pair::new();
    assert_eq!(pair.states(), [State::Backup; 2]);
    assert_eq!(pair.notified, [State::Backup]);
}

#[test]
fn a_member_becoming_master_takes_the_others_to_master() {
    let mut pair = Pair::new();
    pair.master_down("A");
    assert_eq!(pair.states(), [State::Master; 2]);
    assert_eq!(pair.notified, [State::Backup, State::Master]);
}

#[test]
fn a_member_leaving_master_for_backup_takes_the_others_to_backup() {
    let mut pair = Pair::new();
    pair.master_down("B");
    let now = pair.now + SEC / 2;
    let higher = Event::Advert {
        src: PEER,
        priority: 200,
        interval: SEC,
    };
    pair.router("B").machine.handle(higher, now);
    pair.now = now;
    pair.settle();
    assert_eq!(pair.states(), [State::Backup; 2]);
    assert_eq!(pair.notified, [State::Backup, State::Master, State::Backup]);
}

#[test]
fn own_fault_of_one_member_holds_the_others_in_fault_until_it_clears() {
    let mut pair = Pair::new();
    pair.master_down("A");
    let now = pair.now + SEC;
    pair.now = now;
    pair.router("B").set_fault(true, false, now);
    pair.settle();
    assert_eq!(pair.states(), [State::Fault; 2]);
    assert!(pair.router("A").held && !pair.router("A").own_fault);
    assert_eq!(pair.notified.last(), Some(&State::Fault));

    pair.now = now + SEC;
    pair.router("B").set_fault(false, false, now + SEC);
    pair.settle();
    assert_eq!(pair.states(), [State::Backup; 2]);
    assert!(!pair.router("A").held);
}

#[test]
fn reconfigure_keeps_an_unchanged_group_and_its_memory() {
    let mut pair = Pair::new();
    let same = pair.groups.0[0].config.clone();
    pair.groups.reconfigure(std::slice::from_ref(&same));
    pair.settle();
    assert_eq!(pair.notified, [State::Backup], "nothing new to tell");

    let renamed = SyncGroup {
        name: "H".into(),
        ..same
    };
    pair.groups.reconfigure(&[renamed]);
    pair.settle();
    assert_eq!(pair.notified, [State::Backup, State::Backup], "H is new");
    assert_eq!(
        pair.groups.group_of("B").map(|g| g.name.as_str()),
        Some("H")
    );
}

/// A member stopped by a reload and started again under its name starts afresh: held again if
/// another member is still in FAULT.
#[test]
fn a_restarted_member_is_held_again() {
    let mut pair = Pair::new();
    let now = pair.now + SEC;
    pair.now = now;
    pair.router("B").set_fault(true, false, now);
    pair.settle();
    assert!(pair.router("A").held);
    pair.groups.forget("A");
    pair.routers[0] = Router::new("A", 51);
    pair.routers[0].machine.handle(Event::Startup, now);
    pair.settle();
    assert!(pair.router("A").held, "the new A is held like the old one");
    assert_eq!(pair.states(), [State::Fault; 2]);
}

#[test]
fn members_that_do_not_run_are_skipped() {
    let group = SyncGroup {
        name: "G".into(),
        members: vec!["A".into(), "gone".into()],
        ..SyncGroup::default()
    };
    let mut groups = SyncGroups::new(&[group]);
    let a = Member {
        state: State::Master,
        own_fault: false,
    };
    let commands = groups.step(|name| (name == "A").then_some(a));
    assert_eq!(
        commands,
        [Command::Notify {
            group: "G".into(),
            state: State::Master
        }]
    );
}
