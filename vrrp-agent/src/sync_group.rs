//! keepalived's `vrrp_sync_group` as a pure function of its members' states: members go MASTER,
//! BACKUP and FAULT together. No I/O and no clock: the agent reports the members' states after
//! each event ([`SyncGroups::step`]) and carries out the [`Command`]s, until there are none.
//!
//! The rules (keepalived's vrrp_sync.c):
//! - one member in FAULT on its own (a tracked interface or check) holds every other member in
//!   FAULT; when it recovers they all restart the election;
//! - a member that becomes MASTER takes the others to MASTER; one that leaves MASTER for BACKUP
//!   takes the others to BACKUP;
//! - the group's notify scripts run once per state, for the first member to get there.
use std::collections::BTreeMap;

use crate::{
    config::SyncGroup,
    election::{Event, State},
};

/// A member as the group sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub state: State,
    /// In FAULT for a reason of its own, not only because the group holds it there.
    pub own_fault: bool,
}

/// What the agent must do for the groups, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Hold `member` in FAULT because of another member (`Some(cause)`), or release it (`None`).
    Hold {
        member: String,
        cause: Option<String>,
    },
    /// Feed `event` (SyncMaster or SyncBackup) to `member`.
    Follow { member: String, event: Event },
    /// Run the notify scripts of group `group` for `state`.
    Notify { group: String, state: State },
}

#[derive(Debug)]
struct Group {
    config: SyncGroup,
    /// The states the group last acted on, by member; absent means INIT (not started yet).
    seen: BTreeMap<String, State>,
    /// Members held in FAULT by the group, with the cause told to them.
    held: BTreeMap<String, String>,
}

/// Every sync group of the configuration.
#[derive(Debug, Default)]
pub struct SyncGroups(Vec<Group>);

impl SyncGroups {
    pub fn new(groups: &[SyncGroup]) -> Self {
        let mut all = Self::default();
        all.reconfigure(groups);
        all
    }

    /// After a reload: groups defined as before keep what they saw, the others start afresh.
    pub fn reconfigure(&mut self, groups: &[SyncGroup]) {
        let mut old = std::mem::take(&mut self.0);
        self.0 = groups
            .iter()
            .map(
                |config| match old.iter().position(|g| g.config == *config) {
                    Some(i) => old.swap_remove(i),
                    None => Group {
                        config: config.clone(),
                        seen: BTreeMap::new(),
                        held: BTreeMap::new(),
                    },
                },
            )
            .collect();
    }

    /// Forgets what was seen of `member` (it stopped; one of that name may start afresh).
    pub fn forget(&mut self, member: &str) {
        for g in &mut self.0 {
            g.seen.remove(member);
            g.held.remove(member);
        }
    }

    /// The group `member` belongs to.
    pub fn group_of(&self, member: &str) -> Option<&SyncGroup> {
        self.0
            .iter()
            .map(|g| &g.config)
            .find(|g| g.members.iter().any(|m| m == member))
    }

    /// One pass over the groups with the members' current states (`None`: no such instance);
    /// the commands to carry out, empty once the groups are settled.
    pub fn step(&mut self, members: impl Fn(&str) -> Option<Member>) -> Vec<Command> {
        let mut out = Vec::new();
        for g in &mut self.0 {
            let present: Vec<(String, Member)> = g
                .config
                .members
                .iter()
                .filter_map(|name| Some((name.clone(), members(name)?)))
                .collect();
            g.hold(&present, &mut out);
            if !out.is_empty() {
                // FAULT first; the state changes it causes are seen in the next pass.
                return out;
            }
            for (name, member) in &present {
                let before = g
                    .seen
                    .insert(name.clone(), member.state)
                    .unwrap_or(State::Initialize);
                if before == member.state {
                    continue;
                }
                // The first member to get there speaks for the group.
                let first = present
                    .iter()
                    .all(|(other, _)| other == name || g.seen.get(other) != Some(&member.state));
                if first {
                    out.push(Command::Notify {
                        group: g.config.name.clone(),
                        state: member.state,
                    });
                }
                let event = match (before, member.state) {
                    (_, State::Master) => Event::SyncMaster,
                    (State::Master, State::Backup) => Event::SyncBackup,
                    _ => continue,
                };
                for (other, _) in present.iter().filter(|(other, _)| other != name) {
                    out.push(Command::Follow {
                        member: other.clone(),
                        event,
                    });
                }
                return out;
            }
        }
        out
    }
}

impl Group {
    /// FAULT spreads: while a member is in FAULT on its own, the others are held there.
    fn hold(&mut self, present: &[(String, Member)], out: &mut Vec<Command>) {
        let faulty = present
            .iter()
            .find(|(_, m)| m.own_fault)
            .map(|(name, _)| name);
        for (name, _) in present {
            let cause = faulty
                .filter(|f| *f != name)
                .map(|f| format!("sync group {}: {f} is in FAULT", self.config.name));
            let changed = match &cause {
                Some(c) => self.held.insert(name.clone(), c.clone()).is_none(),
                None => self.held.remove(name).is_some(),
            };
            if changed {
                out.push(Command::Hold {
                    member: name.clone(),
                    cause,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
