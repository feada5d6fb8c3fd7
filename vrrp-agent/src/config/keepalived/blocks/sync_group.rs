//! `vrrp_sync_group`: its members, notify scripts and trackers.
use super::{
    engine::{entries, named, switch, walk, First, Ignore, Many, One, Refuse, Table},
    instance::{notify, track_interface, track_script, Tracks},
    Diags, Draft, Loc, Stmt, EMAIL, FIFO, NO_TRACKER,
};
use crate::config::Notify;

pub(super) struct GroupDraft {
    pub(super) loc: Loc,
    pub(super) name: String,
    pub(super) members: Vec<(String, Loc)>,
    pub(super) notify: Notify,
    pub(super) tracks: Tracks,
    /// `sync_group_tracking_weight`: members keep their weighted trackers.
    pub(super) tracking_weight: bool,
    /// The vrrp_scripts and checks defined before this block: keepalived 2.2.7 tracks only those.
    pub(super) checks_before: usize,
}

pub(super) fn vrrp_sync_group(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
    let Some((name, items)) = named(d, s) else {
        return;
    };
    let mut group = GroupDraft {
        loc: s.loc.clone(),
        name: name.to_string(),
        members: Vec::new(),
        notify: Notify::default(),
        tracks: Tracks::default(),
        tracking_weight: false,
        checks_before: draft.checks.len(),
    };
    walk(
        d,
        &format!("vrrp_sync_group {name}"),
        &[SYNC_GROUP],
        &mut group,
        items,
    );
    draft.groups.push(group);
}

#[rustfmt::skip]
pub(super) const SYNC_GROUP: &Table<GroupDraft> = &[
    ("group", First(members)),
    ("notify", First(|d, g, s| g.notify.any = notify(d, s))),
    ("notify_master", First(|d, g, s| g.notify.master = notify(d, s))),
    ("notify_backup", First(|d, g, s| g.notify.backup = notify(d, s))),
    ("notify_fault", First(|d, g, s| g.notify.fault = notify(d, s))),
    ("notify_stop", First(|d, g, s| g.notify.stop = notify(d, s))),
    ("track_script", Many(track_script)),
    ("track_interface", Many(track_interface)),
    ("sync_group_tracking_weight", One(|d, g, s| g.tracking_weight = switch(d, s))),
    ("track_file", Refuse(NO_TRACKER)),
    ("track_process", Refuse(NO_TRACKER)),
    ("track_bfd", Refuse(NO_TRACKER)),
    ("smtp_alert", Ignore(EMAIL)),
    ("notify_priority_changes", Ignore(FIFO)),
    ("global_tracking", Ignore("deprecated in keepalived; use sync_group_tracking_weight")),
];

/// `group { NAME… }`: the member instances, by name, one or more a line.
fn members(d: &mut Diags, g: &mut GroupDraft, s: &Stmt) {
    for e in entries(d, s) {
        g.members
            .extend(e.words.iter().map(|w| (w.clone(), e.loc.clone())));
    }
}
