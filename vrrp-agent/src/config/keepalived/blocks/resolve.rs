//! From what the blocks said to the model: global defaults, cross-references (track_script
//! names, sync group members, VRIDs) and keepalived's fix-ups of dubious combinations.
use std::{
    collections::{hash_map::Entry, HashMap},
    net::IpAddr,
    time::Duration,
};

use vrrp_common::{maps::MAX_ADDRS_V6, ChecksumForm, Version};

use super::{
    engine::did_you_mean,
    instance::{TrackDraft, Tracks},
    Draft, GroupDraft, InstanceDraft,
};
use crate::config::{
    keepalived::{Diags, Loc, Place, Places},
    password, Check, Config, ConfigError, Garp, Liveness, Probe, SyncGroup, Vip, VrrpInstance,
    ADOPTED_INTERVAL_FACTOR,
};

impl Draft {
    pub(super) fn resolve(self, d: &mut Diags) -> (Config, Places) {
        // keepalived runs the first of a name.
        let mut checks: HashMap<&str, (&Check, &Loc)> = HashMap::new();
        for (script, loc) in &self.checks {
            match checks.entry(&script.name) {
                Entry::Occupied(first) => d.warn(
                    loc,
                    format!(
                        "a vrrp_script or check named {} is already defined at {}: this one is \
                         ignored, as keepalived does; rename or remove one",
                        script.name,
                        first.get().1
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert((script, loc));
                }
            }
        }
        let mut group_of: HashMap<&str, &GroupDraft> = HashMap::new();
        // Each name's first instance, by index: a later one of the same name is not built.
        let mut names: HashMap<&str, (usize, &Loc)> = HashMap::new();
        for (n, instance) in self.instances.iter().enumerate() {
            if let Some((_, first)) = names.get(instance.name.as_str()) {
                d.warn(
                    &instance.loc,
                    format!(
                        "vrrp_instance {} is already defined at {first}: this one is ignored, as \
                         keepalived does; rename or remove one",
                        instance.name
                    ),
                );
            } else {
                names.insert(&instance.name, (n, &instance.loc));
            }
        }
        let mut groups = Vec::new();
        let mut group_tracks: HashMap<&str, Tracks> = HashMap::new();
        let mut group_names: HashMap<&str, &Loc> = HashMap::new();
        for group in &self.groups {
            if let Some(first) = group_names.get(group.name.as_str()) {
                d.warn(
                    &group.loc,
                    format!(
                        "vrrp_sync_group {} is already defined at {first}: this one is ignored, \
                         as keepalived does; rename or remove one",
                        group.name
                    ),
                );
                continue;
            }
            group_names.insert(&group.name, &group.loc);
            let before = &self.checks[..group.checks_before];
            check_tracks(d, &group.tracks, before, &checks, &self.broken);
            let mut members = Vec::new();
            for (member, loc) in &group.members {
                if !names.contains_key(member.as_str()) {
                    let hint = did_you_mean(member, names.keys().copied());
                    d.warn(
                        loc,
                        format!(
                            "vrrp_sync_group {}: no vrrp_instance named {member}{hint}; the \
                             member is skipped, as keepalived does",
                            group.name
                        ),
                    );
                } else if let Some(other) = group_of.get(member.as_str()) {
                    d.warn(
                        loc,
                        format!(
                            "vrrp_instance {member} is already in vrrp_sync_group {} ({}): it \
                             stays there, as keepalived does; an instance syncs with one group",
                            other.name, other.loc
                        ),
                    );
                } else {
                    group_of.insert(member, group);
                    members.push(member.clone());
                }
            }
            if members.len() == 1 {
                d.warn(
                    &group.loc,
                    format!(
                        "vrrp_sync_group {} has only 1 vrrp_instance, which syncs with nothing \
                         (keepalived warns too); add the instances that change state together",
                        group.name
                    ),
                );
            }
            if members.is_empty() {
                d.warn(
                    &group.loc,
                    format!(
                        "vrrp_sync_group {} has no members (group {{ … }}): ignored, as in \
                         keepalived",
                        group.name
                    ),
                );
            } else {
                group_tracks.insert(&group.name, self.group_tracks(d, group, &checks));
                groups.push(SyncGroup {
                    name: group.name.clone(),
                    members,
                    notify: group.notify.clone(),
                });
            }
        }
        // VRRP over IPv4 and over IPv6 are separate routers, each with its own VRIDs.
        let mut vrids: HashMap<(&str, u8, bool), (&str, &Loc)> = HashMap::new();
        let mut instances = Vec::new();
        let mut places = Places::default();
        for (n, draft) in self.instances.iter().enumerate() {
            if names[draft.name.as_str()].0 != n {
                continue;
            }
            let before = &self.checks[..draft.checks_before];
            check_tracks(d, &draft.tracks, before, &checks, &self.broken);
            if let (Some(iface), Some(vrid)) = (&draft.iface, draft.vrid) {
                let v6 = draft.vips.first().is_some_and(|(v, _)| v.addr.is_ipv6());
                match vrids.entry((iface, vrid, v6)) {
                    Entry::Occupied(e) => d.error(
                        &draft.loc,
                        format!(
                            "vrrp_instance {}: virtual_router_id {vrid} on {iface} is already used \
                             by vrrp_instance {} ({}) of the same family: give each instance of an \
                             interface its own",
                            draft.name,
                            e.get().0,
                            e.get().1
                        ),
                    ),
                    Entry::Vacant(e) => {
                        e.insert((&draft.name, &draft.loc));
                    }
                }
            }
            let group = group_of
                .get(draft.name.as_str())
                .map(|g| (*g, &group_tracks[g.name.as_str()]));
            if let Some(instance) = self.instance(d, draft, group, &checks) {
                places
                    .instances
                    .insert(instance.name.clone(), Place::from(&draft.loc));
                instances.push(instance);
            }
        }
        // The first definition of each name, as the checks map above.
        let mut checks = Vec::new();
        for (check, loc) in self.checks {
            if let Entry::Vacant(slot) = places.checks.entry(check.name.clone()) {
                slot.insert(Place::from(&loc));
                checks.push(check);
            }
        }
        let config = Config {
            global: self.global,
            instances,
            checks,
            sync_groups: groups,
        };
        (config, places)
    }

    /// The instance, with global defaults and keepalived's fix-ups, validated.
    fn instance(
        &self,
        d: &mut Diags,
        i: &InstanceDraft,
        group: Option<(&GroupDraft, &Tracks)>,
        checks: &HashMap<&str, (&Check, &Loc)>,
    ) -> Option<VrrpInstance> {
        let name = &i.name;
        let (Some(iface), Some(vrid)) = (&i.iface, i.vrid) else {
            d.error(
                &i.loc,
                format!(
                    "vrrp_instance {name} needs {}",
                    match (&i.iface, i.vrid) {
                        (None, None) => "an interface and a virtual_router_id",
                        (None, _) => "an interface (interface eth0)",
                        _ => "a virtual_router_id (1 to 255, the same on every router)",
                    }
                ),
            );
            return None;
        };
        if i.vips.is_empty() {
            let given = if i.bad_vips {
                " usable (the ones given are skipped or refused above)"
            } else {
                ""
            };
            d.error(
                &i.loc,
                format!(
                    "vrrp_instance {name} has no{given} virtual_ipaddress: keepalived runs a \
                     VRRPv2 instance without one, this agent needs the addresses it moves"
                ),
            );
            return None;
        }
        let (vips, excluded) = family_vips(d, i);
        let v6 = vips[0].addr.is_ipv6();
        let version = match (i.version.or(self.version), v6) {
            // keepalived: IPv6 makes the instance VRRPv3 when no version is set, and ignores a
            // version 2 that comes after the IPv6 addresses (and sends VRRPv2 over IPv6, which no
            // RFC defines, when it comes first: here it is VRRPv3 either way).
            (Some(Version::V2), true) => {
                d.warn(
                    &i.loc,
                    format!(
                        "vrrp_instance {name}: vrrp_version 2 conflicts with its IPv6 addresses \
                         (VRRPv2 is IPv4 only); ignored, VRRPv3 is used, as keepalived does"
                    ),
                );
                Version::V3
            }
            (Some(version), _) => version,
            (None, true) => Version::V3,
            (None, false) => Version::V2,
        };
        if let Some(loc) = i.native_ipv6.as_ref().filter(|_| !v6) {
            d.error(
                loc,
                format!(
                    "vrrp_instance {name}: native_ipv6 with IPv4 VIPs; an instance runs VRRP over \
                     the family of its first VIP: list IPv6 VIPs, or drop native_ipv6"
                ),
            );
            return None;
        }
        if v6 && i.peers.is_empty() && !is_link_local(&vips[0]) {
            let loc = i.vips.first().map_or(&i.loc, |(_, loc)| loc);
            d.warn(
                loc,
                format!(
                    "vrrp_instance {name}: the first IPv6 VIP should be link local (RFC 9568 \
                     §5.2.9: routers list fe80::… first); kept as is, as keepalived does"
                ),
            );
        }
        let advert = match &i.advert {
            Some((t, loc)) => sendable_interval(d, version, *t, loc),
            None => Duration::from_secs(1),
        };
        let priority = i.priority();
        let mut preempt = i.nopreempt.is_none();
        let mut preempt_delay = i.preempt_delay.clone();
        if let Some(loc) = &i.nopreempt {
            let why = if priority == 255 {
                Some("priority 255 (the address owner always takes over)")
            } else if i.master {
                Some("state MASTER: write state BACKUP on every router to keep nopreempt")
            } else {
                None
            };
            if let Some(why) = why {
                d.warn(
                    loc,
                    format!("nopreempt is cleared, as keepalived does, with {why}"),
                );
                preempt = true;
            }
        }
        if let Some((delay, loc)) = &preempt_delay {
            if !delay.is_zero() && (i.master || !preempt) {
                let with = if i.master {
                    "state MASTER"
                } else {
                    "nopreempt"
                };
                d.warn(
                    loc,
                    format!("preempt_delay is dropped, as keepalived does, with {with}"),
                );
                preempt_delay = None;
            }
        }
        let auth_pass = self.auth(d, i, version);
        let tracks = self.member_tracks(d, i, priority, group, checks);
        let garp = Garp {
            count: i.garp_count.unwrap_or(self.garp.count),
            repeat_after: i.garp_delay.unwrap_or(self.garp.repeat_after),
            refresh: i.garp_refresh.unwrap_or(self.garp.refresh),
            interval: self.garp.interval,
            na_interval: self.garp.na_interval,
            // keepalived: the global lower-priority settings, else the global master ones (not
            // the instance's own garp_master_*).
            lower_prio_count: i
                .garp_lower_prio_count
                .or(self.lower_prio_count)
                .unwrap_or(self.garp.count),
            lower_prio_repeat_after: i
                .garp_lower_prio_delay
                .or(self.lower_prio_delay)
                .unwrap_or(self.garp.repeat_after),
        };
        let v6 = vips.first().is_some_and(|v| v.addr.is_ipv6());
        let liveness = self.liveness(d, i, name, v6);
        let instance = VrrpInstance {
            name: name.clone(),
            iface: iface.clone(),
            vrid,
            priority,
            vips,
            excluded_vips: excluded,
            version,
            advert_interval: advert,
            auth_pass,
            preempt,
            preempt_delay: preempt_delay.map_or(Duration::ZERO, |(t, _)| t),
            accept: i.accept,
            checksum: i
                .checksum
                .or(self.checksum.as_ref().map(|(c, _)| *c))
                .unwrap_or(ChecksumForm::WithPseudoHeader),
            garp,
            track_checks: tracks.checks.into_iter().map(|t| t.tracked).collect(),
            track_interfaces: tracks.interfaces.into_iter().map(|t| t.tracked).collect(),
            track_primary: i.track_primary,
            skip_check_adv_addr: i.skip_check_adv_addr || self.global.skip_check_adv_addr,
            src_ip: i.src_ip.as_ref().map(|(ip, _)| *ip),
            unicast_peers: i.peers.iter().map(|(p, _)| *p).collect(),
            notify: i.notify.clone(),
            liveness,
            max_adopted_interval: self
                .max_adopted_interval
                .unwrap_or(advert * ADOPTED_INTERVAL_FACTOR),
        };
        if let Err(e) = instance.validate() {
            d.error(locate(&e, i), format!("vrrp_instance {name}: {e}"));
            return None;
        }
        Some(instance)
    }

    /// The instance's liveness channel: its own interval and multiplier, else vrrp_agent's
    /// (for IPv4 instances: the channel runs over IPv4 only, so vrrp_agent's leaves an IPv6
    /// instance out, with a warning; its own is an error); a multiplier alone leaves the
    /// channel off, with a warning.
    fn liveness(&self, d: &mut Diags, i: &InstanceDraft, name: &str, v6: bool) -> Option<Liveness> {
        let (own, all) = (&i.liveness, &self.liveness);
        if let (true, None, Some((_, loc))) = (v6, &own.interval, &all.interval) {
            d.warn(
                loc,
                format!(
                    "vrrp_agent's liveness_interval leaves out vrrp_instance {name}: the liveness \
                     channel runs over IPv4 only"
                ),
            );
            return None;
        }
        let multiplier = own.multiplier.as_ref().or(all.multiplier.as_ref());
        let Some((interval, _)) = own.interval.as_ref().or(all.interval.as_ref()) else {
            if let Some((_, loc)) = multiplier {
                d.warn(
                    loc,
                    "liveness_multiplier without liveness_interval: the liveness channel stays                      off; add liveness_interval",
                );
            }
            return None;
        };
        Some(Liveness {
            interval: *interval,
            multiplier: multiplier.map_or(Liveness::DEFAULT_MULTIPLIER, |(n, _)| *n),
        })
    }

    /// keepalived's authentication: PASS with a password, on VRRPv2; anything less is dropped
    /// with a warning, as keepalived does.
    fn auth(&self, d: &mut Diags, i: &InstanceDraft, version: Version) -> Option<[u8; 8]> {
        let pass = i.auth_pass.as_ref().filter(|(p, _)| !p.is_empty());
        match (&i.auth_type, pass) {
            (None, None) => None,
            (Some(loc), None) => {
                d.warn(
                    loc,
                    "auth_type PASS without auth_pass: no authentication, as in keepalived; add \
                     auth_pass",
                );
                None
            }
            (None, Some((_, loc))) => {
                d.warn(
                    loc,
                    "auth_pass without auth_type PASS: no authentication, as in keepalived; add \
                     auth_type PASS",
                );
                None
            }
            (Some(loc), Some(_)) if version == Version::V3 => {
                d.warn(
                    loc,
                    "authentication is dropped with VRRP version 3 (RFC 9568 has none), as \
                     keepalived does; remove it",
                );
                None
            }
            (Some(_), Some((pass, loc))) => {
                if pass.len() > 8 {
                    d.warn(
                        loc,
                        "auth_pass is longer than 8 bytes: the first 8 are sent, as keepalived does",
                    );
                }
                password(pass).ok()
            }
        }
    }

    /// A sync group's trackers as its members get them: unweighted when a member is the address
    /// owner, as keepalived does.
    fn group_tracks(
        &self,
        d: &mut Diags,
        group: &GroupDraft,
        checks: &HashMap<&str, (&Check, &Loc)>,
    ) -> Tracks {
        let mut tracks = group.tracks.clone();
        let has_owner = self
            .instances
            .iter()
            .any(|m| m.priority() == 255 && group.members.iter().any(|(n, _)| *n == m.name));
        if has_owner {
            let weighted = |t: &TrackDraft| weight(t, checks) != 0;
            for t in tracks.checks.iter_mut().filter(|t| weighted(t)).chain(
                tracks
                    .interfaces
                    .iter_mut()
                    .filter(|t| t.tracked.weight.unwrap_or(0) != 0),
            ) {
                d.warn(
                    &t.loc,
                    format!(
                        "vrrp_sync_group {}: the weight of {} is cleared, as keepalived does, \
                         because a member has priority 255",
                        group.name, t.tracked.name
                    ),
                );
                t.tracked.weight = Some(0);
            }
        }
        tracks
    }

    /// The instance's trackers, then its sync group's, with keepalived's rules: weighted trackers
    /// of a sync group member (without sync_group_tracking_weight) or of the address owner are
    /// dropped or made unweighted.
    fn member_tracks(
        &self,
        d: &mut Diags,
        i: &InstanceDraft,
        priority: u8,
        group: Option<(&GroupDraft, &Tracks)>,
        checks: &HashMap<&str, (&Check, &Loc)>,
    ) -> Tracks {
        let owner = priority == 255;
        let synced = group.is_some_and(|(g, _)| !g.tracking_weight);
        let why = match group {
            _ if owner => "priority 255 (the address owner)".to_string(),
            Some((g, _)) => format!(
                "vrrp_sync_group {} (set sync_group_tracking_weight to keep it)",
                g.name
            ),
            None => String::new(),
        };
        let mut out = Tracks::default();
        for t in &i.tracks.checks {
            if (owner || synced) && weight(t, checks) != 0 {
                d.warn(
                    &t.loc,
                    format!(
                        "vrrp_instance {}: track_script {} is dropped because it has a weight, \
                         as keepalived does with {why}",
                        i.name, t.tracked.name
                    ),
                );
            } else {
                out.checks.push(t.clone());
            }
        }
        for t in &i.tracks.interfaces {
            let mut t = t.clone();
            if (owner || synced) && t.tracked.weight.unwrap_or(0) != 0 {
                let done = if owner { "dropped" } else { "made unweighted" };
                d.warn(
                    &t.loc,
                    format!(
                        "vrrp_instance {}: track_interface {} is {done} because it has a weight, \
                         as keepalived does with {why}",
                        i.name, t.tracked.name
                    ),
                );
                if owner {
                    continue;
                }
                t.tracked.weight = Some(0);
            }
            out.interfaces.push(t);
        }
        if let Some((_, tracks)) = group {
            for (from, to) in [
                (&tracks.checks, &mut out.checks),
                (&tracks.interfaces, &mut out.interfaces),
            ] {
                for t in from {
                    if !to.iter().any(|o| o.tracked.name == t.tracked.name) {
                        to.push(t.clone());
                    }
                }
            }
        }
        out
    }
}

/// A track_script entry's weight: its own, else its script's.
fn weight(t: &TrackDraft, checks: &HashMap<&str, (&Check, &Loc)>) -> i32 {
    t.tracked
        .weight
        .or_else(|| checks.get(t.tracked.name.as_str()).map(|(s, _)| s.weight))
        .unwrap_or(0)
}

/// Every track_script names a vrrp_script or check, and a `reverse` after the weight agrees with
/// the script's own (the model keeps reverse on the script). keepalived 2.2.7 only finds a
/// vrrp_script defined `before` the block that tracks it: the agent tracks a later one too, with
/// a warning.
fn check_tracks(
    d: &mut Diags,
    tracks: &Tracks,
    before: &[(Check, Loc)],
    checks: &HashMap<&str, (&Check, &Loc)>,
    broken: &[String],
) {
    for t in &tracks.checks {
        let name = t.tracked.name.as_str();
        match checks.get(name) {
            Some((script, loc))
                if matches!(script.probe, Probe::Exec(_))
                    && !before.iter().any(|(c, _)| c.name == name) =>
            {
                d.warn(
                    &t.loc,
                    format!(
                        "track_script {name}: vrrp_script {name} is defined later ({loc}); \
                         keepalived 2.2.7 does not find it and runs without it, this agent tracks \
                         it: move the vrrp_script above"
                    ),
                );
            }
            _ => {}
        }
        match (checks.get(name), t.reverse) {
            (None, _) if broken.iter().any(|b| b == name) => {}
            (None, _) => {
                let hint = did_you_mean(name, checks.keys().copied());
                d.error(
                    &t.loc,
                    format!("track_script {name}: no vrrp_script or check by that name{hint}"),
                );
            }
            (Some((script, _)), Some(reverse)) if reverse != script.reverse => d.error(
                &t.loc,
                format!(
                    "track_script {name} … {}: a different reverse than vrrp_script {name}'s is \
                     not supported; write weight N{} in the vrrp_script instead",
                    if reverse { "reverse" } else { "noreverse" },
                    if reverse { " reverse" } else { "" }
                ),
            ),
            _ => {}
        }
    }
}

/// What keepalived makes of an advert interval that the version cannot send: VRRPv2 whole
/// seconds, VRRPv3 steps of 10 ms up to 40.95 s, both rounded half up.
fn sendable_interval(d: &mut Diags, version: Version, t: Duration, loc: &Loc) -> Duration {
    let (step, max, what) = match version {
        Version::V2 => (
            1_000_000,
            255_000_000,
            "VRRPv2 sends whole seconds, 1 to 255",
        ),
        Version::V3 => (
            10_000,
            40_950_000,
            "VRRPv3 sends 0.01 to 40.95 seconds in steps of 0.01",
        ),
    };
    let micros = t.as_micros() as u64;
    let sent = ((micros + step / 2) / step * step).clamp(step, max);
    let sent = Duration::from_micros(sent);
    if sent != t {
        let to_v3 = if version == Version::V2 {
            ", or version 3 (vrrp_version 3 in global_defs) for sub-second adverts"
        } else {
            ""
        };
        d.warn(
            loc,
            format!(
                "advert_int {}: {what}; keepalived makes it {}, and so does this agent: write \
                 that{to_v3}",
                t.as_secs_f64(),
                sent.as_secs_f64()
            ),
        );
    }
    sent
}

/// Where to point at for an error of [`VrrpInstance::validate`].
fn is_link_local(vip: &Vip) -> bool {
    matches!(vip.addr, IpAddr::V6(a) if a.is_unicast_link_local())
}

/// The advertised and excluded VIPs as keepalived keeps them: the first VIP sets the family,
/// one of the other family is dropped with a warning (excluded VIPs may mix), and an IPv6 list
/// longer than a frame carries moves its tail to the excluded ones.
fn family_vips(d: &mut Diags, i: &InstanceDraft) -> (Vec<Vip>, Vec<Vip>) {
    let v6 = i.vips[0].0.addr.is_ipv6();
    let (mut vips, mut excluded) = (Vec::new(), Vec::new());
    for (vip, loc) in &i.vips {
        if vip.addr.is_ipv6() != v6 {
            let family = if v6 { "IPv6" } else { "IPv4" };
            d.warn(
                loc,
                format!(
                    "VIP {}: the address family must match the instance's ({family}, from its \
                     first VIP); skipped, as keepalived does: move it to an instance of its own, \
                     or to virtual_ipaddress_excluded",
                    vip.addr
                ),
            );
        } else if v6 && vips.len() == MAX_ADDRS_V6 {
            d.warn(
                loc,
                format!(
                    "VIP {}: an IPv6 advert carries at most {MAX_ADDRS_V6} addresses in a \
                     1500-byte frame; this one and those after it are moved to the excluded \
                     VIPs, as keepalived does",
                    vip.addr
                ),
            );
            excluded.push(vip.clone());
        } else {
            vips.push(vip.clone());
        }
    }
    excluded.extend(i.excluded.iter().map(|(v, _)| v.clone()));
    (vips, excluded)
}

fn locate<'a>(e: &ConfigError, i: &'a InstanceDraft) -> &'a Loc {
    if let ConfigError::LivenessInterval(_)
    | ConfigError::LivenessMultiplier(_)
    | ConfigError::LivenessSlow { .. } = e
    {
        let l = &i.liveness;
        let loc = match e {
            ConfigError::LivenessMultiplier(_) => l.multiplier.as_ref().map(|(_, loc)| loc),
            _ => l.interval.as_ref().map(|(_, loc)| loc),
        };
        return loc.unwrap_or(&i.loc);
    }
    let addr = match e {
        ConfigError::DuplicateVip(addr)
        | ConfigError::LabelPrefix { addr, .. }
        | ConfigError::LabelLength { addr, .. } => addr,
        ConfigError::FamilyMismatch { addr, .. } | ConfigError::Ipv6UnicastSource(addr) => {
            let mut given = i.src_ip.iter().chain(&i.peers);
            return given
                .find(|(a, _)| a == addr)
                .map_or(&i.loc, |(_, loc)| loc);
        }
        _ => return &i.loc,
    };
    i.vips
        .iter()
        .chain(&i.excluded)
        .rfind(|(v, _)| v.addr == *addr)
        .map_or(&i.loc, |(_, loc)| loc)
}
