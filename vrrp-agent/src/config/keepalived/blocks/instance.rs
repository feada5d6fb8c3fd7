//! `vrrp_instance`: its keywords, the authentication block, VIPs, trackers and notify scripts.
use std::{net::Ipv4Addr, time::Duration};

use vrrp_common::{ChecksumForm, Version};

use super::{
    engine::{
        block, did_you_mean, entries, named, none, one, parse_at, set, value, walk, Ignore, Many,
        One, Refuse, Table,
    },
    global::{checksum_as_v2, garp_repeat, strict},
    sync_group::GroupDraft,
    values::{
        broadcast, byte, cidr, iface, int, ipv4, scope, seconds, uint, version, vrrp_group,
        whole_seconds,
    },
    Diags, Draft, Loc, Stmt, EMAIL, FIFO, IPV6, LVS, NOT_TUNABLE, NO_TRACKER, RFC, TUNING, VMAC,
};
use crate::config::{Notify, Tracked, Vip};

/// A vrrp_instance as written, before global defaults and cross-checks.
pub(super) struct InstanceDraft {
    pub(super) loc: Loc,
    pub(super) name: String,
    pub(super) iface: Option<String>,
    pub(super) vrid: Option<u8>,
    pub(super) priority: Option<u8>,
    /// `state MASTER`, which keepalived only uses to default the priority to 255 and to clear
    /// nopreempt and preempt_delay: a non-owner starts as backup either way.
    pub(super) master: bool,
    pub(super) version: Option<(Version, Loc)>,
    pub(super) advert: Option<(Duration, Loc)>,
    pub(super) auth_type: Option<Loc>,
    pub(super) auth_pass: Option<(String, Loc)>,
    pub(super) nopreempt: Option<Loc>,
    pub(super) preempt_delay: Option<(Duration, Loc)>,
    pub(super) checksum: Option<ChecksumForm>,
    pub(super) garp_count: Option<u8>,
    pub(super) garp_delay: Option<Option<Duration>>,
    pub(super) garp_refresh: Option<Option<Duration>>,
    pub(super) garp_lower_prio_count: Option<u8>,
    pub(super) garp_lower_prio_delay: Option<Option<Duration>>,
    pub(super) vips: Vec<(Vip, Loc)>,
    pub(super) excluded: Vec<(Vip, Loc)>,
    /// A virtual_ipaddress entry was refused (and said so): "no VIPs" would only repeat it.
    pub(super) bad_vips: bool,
    pub(super) tracks: Tracks,
    pub(super) track_primary: bool,
    /// `accept` / `no_accept`, the last one wins as in keepalived.
    pub(super) accept: bool,
    pub(super) src_ip: Option<(Ipv4Addr, Loc)>,
    pub(super) peers: Vec<(Ipv4Addr, Loc)>,
    pub(super) notify: Notify,
}

/// `track_script` and `track_interface` entries, of an instance or a sync group.
#[derive(Clone, Default)]
pub(super) struct Tracks {
    pub(super) checks: Vec<TrackDraft>,
    pub(super) interfaces: Vec<TrackDraft>,
}

#[derive(Clone)]
pub(super) struct TrackDraft {
    pub(super) tracked: Tracked,
    /// `reverse` / `noreverse` after the weight; the model keeps reverse on the script only.
    pub(super) reverse: Option<bool>,
    pub(super) loc: Loc,
}

impl InstanceDraft {
    /// keepalived defaults an instance that says `state MASTER` to the address owner.
    pub(super) fn priority(&self) -> u8 {
        self.priority.unwrap_or(if self.master { 255 } else { 100 })
    }
}

pub(super) fn vrrp_instance(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
    let Some((name, items)) = named(d, s) else {
        return;
    };
    let mut instance = InstanceDraft {
        loc: s.loc.clone(),
        name: name.to_string(),
        iface: None,
        vrid: None,
        priority: None,
        master: false,
        version: None,
        advert: None,
        auth_type: None,
        auth_pass: None,
        nopreempt: None,
        preempt_delay: None,
        checksum: None,
        garp_count: None,
        garp_delay: None,
        garp_refresh: None,
        garp_lower_prio_count: None,
        garp_lower_prio_delay: None,
        vips: Vec::new(),
        excluded: Vec::new(),
        bad_vips: false,
        tracks: Tracks::default(),
        track_primary: true,
        accept: true,
        src_ip: None,
        peers: Vec::new(),
        notify: Notify::default(),
    };
    walk(
        d,
        &format!("vrrp_instance {name}"),
        INSTANCE,
        &mut instance,
        items,
    );
    draft.instances.push(instance);
}

const HMAC: &str =
    "HMAC authentication is a keepalived extension no other router speaks; remove it";
const NO_VIPS: &str = "every instance needs a virtual_ipaddress here (RFC 9568 requires one)";

#[rustfmt::skip]
pub(super) const INSTANCE: &Table<InstanceDraft> = &[
    ("state", One(state)),
    ("interface", One(|d, i, s| i.iface = value(d, s, iface))),
    ("virtual_router_id", One(|d, i, s| i.vrid = value(d, s, |v| uint(v, 1, 255)).map(|n| n as u8))),
    ("priority", One(|d, i, s| i.priority = value(d, s, |v| uint(v, 1, 255)).map(|n| n as u8))),
    ("advert_int", One(|d, i, s| i.advert = value(d, s, seconds).map(|t| (t, s.loc.clone())))),
    ("version", One(|d, i, s| i.version = value(d, s, version).map(|v| (v, s.loc.clone())))),
    ("nopreempt", One(|d, i, s| i.nopreempt = none(d, s).then(|| s.loc.clone()))),
    // keepalived keeps it for old configurations: preempting is the default.
    ("preempt", One(|d, _, s| _ = none(d, s))),
    ("preempt_delay", One(preempt_delay)),
    // keepalived's default without vrrp_strict.
    ("accept", One(|d, i, s| i.accept |= none(d, s))),
    ("no_accept", One(|d, i, s| i.accept &= !none(d, s))),
    ("authentication", One(authentication)),
    ("virtual_ipaddress", Many(|d, i, s| i.bad_vips |= vips(d, s, &mut i.vips))),
    ("virtual_ipaddress_excluded", Many(|d, i, s| i.bad_vips |= vips(d, s, &mut i.excluded))),
    ("track_script", Many(track_script)),
    ("track_interface", Many(track_interface)),
    ("dont_track_primary", One(|d, i, s| i.track_primary &= !none(d, s))),
    ("mcast_src_ip", One(src_ip)),
    ("unicast_src_ip", One(src_ip)),
    ("unicast_peer", Many(unicast_peer)),
    ("notify", One(|d, i, s| i.notify.any = notify(d, s))),
    ("notify_master", One(|d, i, s| i.notify.master = notify(d, s))),
    ("notify_backup", One(|d, i, s| i.notify.backup = notify(d, s))),
    ("notify_fault", One(|d, i, s| i.notify.fault = notify(d, s))),
    ("notify_stop", One(|d, i, s| i.notify.stop = notify(d, s))),
    ("garp_master_delay", One(|d, i, s| i.garp_delay = value(d, s, whole_seconds))),
    ("garp_master_repeat", One(|d, i, s| i.garp_count = garp_repeat(d, s))),
    ("garp_master_refresh", One(|d, i, s| i.garp_refresh = value(d, s, whole_seconds))),
    ("garp_lower_prio_delay", One(|d, i, s| i.garp_lower_prio_delay = value(d, s, whole_seconds))),
    ("garp_lower_prio_repeat", One(|d, i, s| i.garp_lower_prio_count = value(d, s, byte))),
    ("v3_checksum_as_v2", One(|d, i, s| i.checksum = checksum_as_v2(d, s).or(i.checksum))),
    ("strict_mode", One(|d, _, s| strict(d, s))),
    ("check_unicast_src", One(|d, _, s| _ = none(d, s))),
    ("mcast_dst_ip", One(|d, _, s| _ = value(d, s, vrrp_group))),
    ("debug", Ignore("set RUST_LOG=debug for the agent's debug log")),
    ("native_ipv6", Refuse(IPV6)),
    ("auth_hmac", Refuse(HMAC)),
    ("track_file", Refuse(NO_TRACKER)),
    ("track_process", Refuse(NO_TRACKER)),
    ("track_bfd", Refuse(NO_TRACKER)),
    ("no_virtual_ipaddress", Refuse(NO_VIPS)),
    ("use_vmac", Ignore(VMAC)),
    ("use_vmac_addr", Ignore(VMAC)),
    ("vmac_xmit_base", Ignore(VMAC)),
    ("use_ipvlan", Ignore(VMAC)),
    ("garp_extra_if", Ignore(VMAC)),
    ("vmac_garp_intvl", Ignore(VMAC)),
    ("smtp_alert", Ignore(EMAIL)),
    ("lvs_sync_daemon_interface", Ignore(LVS)),
    ("notify_priority_changes", Ignore(FIFO)),
    ("notify_deleted", Ignore("no notify script runs when an instance is removed")),
    ("notify_master_rx_lower_pri", Ignore(NOT_TUNABLE)),
    ("virtual_routes", Ignore("add the routes from notify_master and notify_backup scripts")),
    ("virtual_rules", Ignore("add the rules from notify_master and notify_backup scripts")),
    ("promote_secondaries", Ignore("set it with sysctl net.ipv4.conf.IF.promote_secondaries=1")),
    ("skip_check_adv_addr", Ignore("use vrrp_skip_check_adv_addr in global_defs")),
    ("unicast_ttl", Ignore(NOT_TUNABLE)),
    ("unicast_fault_no_peer", Ignore(NOT_TUNABLE)),
    ("old_unicast_checksum", Ignore(NOT_TUNABLE)),
    ("track_src_ip", Ignore(NOT_TUNABLE)),
    ("vrf", Ignore(NOT_TUNABLE)),
    ("linkbeat_use_polling", Ignore(NOT_TUNABLE)),
    ("kernel_rx_buf_size", Ignore(TUNING)),
    ("garp_master_refresh_repeat", Ignore(NOT_TUNABLE)),
    ("down_timer_adverts", Ignore(RFC)),
    ("timer_expired_backup", Ignore(NOT_TUNABLE)),
    ("thread_timer_expired", Ignore(NOT_TUNABLE)),
    ("lower_prio_no_advert", Ignore(RFC)),
    ("higher_prio_send_advert", Ignore(RFC)),
    ("owner_ignore_adverts", Ignore(RFC)),
];

/// `state MASTER|BACKUP`.
fn state(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    let master = value(d, s, |v| match v {
        "MASTER" => Ok(true),
        "BACKUP" => Ok(false),
        _ => Err("write MASTER or BACKUP".into()),
    });
    set(&mut i.master, master);
}

fn preempt_delay(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    let delay = value(d, s, |v| {
        seconds(v).and_then(|t| {
            (t <= Duration::from_secs(1000))
                .then_some(t)
                .ok_or_else(|| "keepalived's range is 0 to 1000 seconds".to_string())
        })
    });
    i.preempt_delay = delay.map(|t| (t, s.loc.clone()));
}

fn authentication(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    if let Some(items) = block(d, s) {
        let what = format!("authentication of vrrp_instance {}", i.name);
        walk(d, &what, AUTHENTICATION, i, items);
    }
}

#[rustfmt::skip]
pub(super) const AUTHENTICATION: &Table<InstanceDraft> = &[
    ("auth_type", One(auth_type)),
    ("auth_pass", One(|d, i, s| i.auth_pass = one(d, s).map(|p| (p.to_string(), s.loc.clone())))),
];

fn auth_type(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    match one(d, s) {
        Some("PASS") => i.auth_type = Some(s.loc.clone()),
        Some("AH") => d.error(
            &s.loc,
            "auth_type AH (IPsec AH) is not supported: change every router of the group to \
             auth_type PASS, or drop authentication (RFC 3768 removed it)",
        ),
        Some(other) => d.error(&s.loc, format!("auth_type {other}: write PASS")),
        None => {}
    }
}

fn src_ip(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    let Some(ip) = value(d, s, ipv4) else {
        return;
    };
    match &i.src_ip {
        Some((other, first)) if *other != ip => d.error(
            &s.loc,
            format!("the advert source is already {other} ({first}): keep one"),
        ),
        _ => i.src_ip = Some((ip, s.loc.clone())),
    }
}

fn unicast_peer(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    for e in entries(d, s) {
        let Some(peer) = parse_at(d, &e.loc, "unicast_peer", e.keyword(), ipv4) else {
            continue;
        };
        for option in e.args().chunks(2) {
            match option {
                [k, v] if k == "min_ttl" || k == "max_ttl" => {
                    if parse_at(d, &e.loc, k, v, |v| uint(v, 0, 255)).is_some() {
                        d.ignored(&e.loc, &format!("unicast_peer {k}"), NOT_TUNABLE);
                    }
                }
                _ => d.error(
                    &e.loc,
                    format!(
                        "unicast_peer {}: write ADDR [min_ttl N] [max_ttl N]",
                        e.words.join(" ")
                    ),
                ),
            }
        }
        if let Some((_, first)) = i.peers.iter().find(|(p, _)| *p == peer) {
            d.error(
                &e.loc,
                format!("unicast peer {peer} is already listed at {first}"),
            );
        } else {
            i.peers.push((peer, e.loc.clone()));
        }
    }
}

/// `virtual_ipaddress` entries: `ADDR[/LEN] [dev IF] [label L] [scope S] [brd B] …`, one a line.
/// The good entries go to `list`; true when any was refused.
fn vips(d: &mut Diags, s: &Stmt, list: &mut Vec<(Vip, Loc)>) -> bool {
    let entries = entries(d, s);
    let before = list.len();
    list.extend(
        entries
            .iter()
            .filter_map(|e| Some((vip(d, e)?, e.loc.clone()))),
    );
    list.len() - before < entries.len()
}

/// keepalived's options of a VIP entry, and whether each takes a value.
const VIP_OPTIONS: [(&str, bool); 15] = [
    ("dev", true),
    ("label", true),
    ("scope", true),
    ("brd", true),
    ("broadcast", true),
    ("peer", true),
    ("use_vmac", false),
    ("home", false),
    ("-nodad", false),
    ("mngtmpaddr", false),
    ("noprefixroute", false),
    ("autojoin", false),
    ("no_track", false),
    ("preferred_lft", true),
    ("track_group", true),
];

fn vip(d: &mut Diags, e: &Stmt) -> Option<Vip> {
    let (addr, prefix_len) = parse_at(d, &e.loc, "VIP", e.keyword(), cidr)?;
    let mut vip = Vip::new(addr, prefix_len);
    let mut words = e.args().iter();
    let mut good = true;
    while let Some(option) = words.next() {
        let option = option.as_str();
        let takes_value = VIP_OPTIONS.contains(&(option, true));
        // Only an option that takes a value consumes the next word.
        let value = match takes_value.then(|| words.next()) {
            None => "",
            Some(Some(v)) => v.as_str(),
            Some(None) => {
                d.error(&e.loc, format!("VIP {addr}: {option} needs a value"));
                return None;
            }
        };
        match option {
            "dev" => match parse_at(d, &e.loc, option, value, iface) {
                Some(dev) => vip.dev = Some(dev),
                None => good = false,
            },
            "label" => vip.label = Some(value.to_string()),
            "scope" => match parse_at(d, &e.loc, option, value, scope) {
                Some(scope) => vip.scope = scope,
                None => good = false,
            },
            "brd" | "broadcast" => {
                match parse_at(d, &e.loc, option, value, |v| broadcast(v, addr, prefix_len)) {
                    Some(brd) => vip.broadcast = brd,
                    None => good = false,
                }
            }
            "peer" => {
                d.error(
                    &e.loc,
                    format!("VIP {addr}: peer (a point-to-point VIP) is not supported"),
                );
                good = false;
            }
            "use_vmac" => d.ignored(&e.loc, "use_vmac", VMAC),
            // IPv6 address flags: no effect on IPv4, in keepalived either.
            "home" | "-nodad" | "mngtmpaddr" | "preferred_lft" => {}
            "no_track" => vip.no_track = true,
            "noprefixroute" | "autojoin" | "track_group" => d.ignored(
                &e.loc,
                &format!("virtual_ipaddress option {option}"),
                NOT_TUNABLE,
            ),
            other => {
                let hint = did_you_mean(other, VIP_OPTIONS.iter().map(|(o, _)| *o));
                d.error(
                    &e.loc,
                    format!(
                        "VIP {addr}: unknown option \"{other}\"{hint}; write ADDR[/LEN] [dev IF] \
                         [label LABEL] [scope SCOPE] [brd ADDR]"
                    ),
                );
                good = false;
            }
        }
    }
    good.then_some(vip)
}

pub(super) fn track_script<T: Tracker>(d: &mut Diags, t: &mut T, s: &Stmt) {
    for e in entries(d, s) {
        if let Some(track) = track(d, e, true) {
            t.tracks().checks.push(track);
        }
    }
}

pub(super) fn track_interface<T: Tracker>(d: &mut Diags, t: &mut T, s: &Stmt) {
    for e in entries(d, s) {
        if parse_at(d, &e.loc, "track_interface", e.keyword(), iface).is_none() {
            continue;
        }
        match track(d, e, false) {
            Some(TrackDraft {
                reverse: Some(true),
                loc,
                ..
            }) => d.error(
                &loc,
                "track_interface … reverse is not supported: track the interface without reverse",
            ),
            Some(track) => t.tracks().interfaces.push(track),
            None => {}
        }
    }
}

/// `NAME [weight N [reverse|noreverse]]`; keepalived turns ±254 into ±253 with a warning.
fn track(d: &mut Diags, e: &Stmt, script: bool) -> Option<TrackDraft> {
    let name = e.keyword().to_string();
    let (weight, reverse) = match e.args() {
        [] => (None, None),
        [w, n] if w == "weight" => (Some(n), None),
        [w, n, r] if w == "weight" && (r == "reverse" || (script && r == "noreverse")) => {
            (Some(n), Some(r == "reverse"))
        }
        _ => {
            let more = if script {
                "reverse|noreverse"
            } else {
                "reverse"
            };
            d.error(
                &e.loc,
                format!("{}: write NAME [weight N [{more}]]", e.words.join(" ")),
            );
            return None;
        }
    };
    let weight = match weight {
        Some(w) => {
            let mut w = parse_at(d, &e.loc, "weight", w, |v| int(v, -254, 254))? as i32;
            if w.abs() == 254 {
                d.warn(
                    &e.loc,
                    format!("weight {w} is taken as ±253, the limit, as keepalived does"),
                );
                w = w.signum() * 253;
            }
            Some(w)
        }
        None => None,
    };
    Some(TrackDraft {
        tracked: Tracked { name, weight },
        reverse,
        loc: e.loc.clone(),
    })
}

/// Instances and sync groups both take track_script and track_interface.
pub(super) trait Tracker {
    fn tracks(&mut self) -> &mut Tracks;
}

impl Tracker for InstanceDraft {
    fn tracks(&mut self) -> &mut Tracks {
        &mut self.tracks
    }
}

impl Tracker for GroupDraft {
    fn tracks(&mut self) -> &mut Tracks {
        &mut self.tracks
    }
}

/// `notify… COMMAND`: the command line as one (quoted) word, as the script runner splits it.
pub(super) fn notify(d: &mut Diags, s: &Stmt) -> Option<String> {
    match s.args() {
        [line] if !line.is_empty() && s.block.is_none() => Some(line.clone()),
        [line, more @ ..] if s.block.is_none() => {
            d.error(
                &s.loc,
                format!(
                    "{kw}: a user for one notify script is not supported; set script_user in \
                     global_defs, or, if \"{}\" are arguments, quote the command line: {kw} \
                     \"{line} {}\"",
                    more.join(" "),
                    more.join(" "),
                    kw = s.keyword()
                ),
            );
            None
        }
        _ => {
            d.error(
                &s.loc,
                format!(
                    "{} takes a command line: {0} \"/path/to/script args\"",
                    s.keyword()
                ),
            );
            None
        }
    }
}
