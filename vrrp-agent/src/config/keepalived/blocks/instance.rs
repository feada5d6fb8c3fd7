//! `vrrp_instance`: its keywords, the authentication block, VIPs, trackers and notify scripts.
use std::{net::IpAddr, time::Duration};

use vrrp_common::{ChecksumForm, Version};

use super::{
    agent::{liveness_interval, liveness_multiplier, LivenessDraft},
    engine::{
        block, did_you_mean, entries, ignore_rest, lenient, lenient_at, lenient_number,
        lenient_seconds, named, none, one, parse_at, set, switch, value, walk, First, Ignore, Many,
        One, Refuse, Table,
    },
    global::{checksum_as_v2, garp_count, garp_delay, garp_repeat, mcast_group, strict_mode},
    sync_group::GroupDraft,
    values::{broadcast, iface, int, ip, scope, uint, version},
    Diags, Draft, Loc, Stmt, EMAIL, FIFO, LVS, NOT_TUNABLE, NO_TRACKER, RFC, TUNING, VMAC,
};
use crate::config::{Notify, Tracked, Vip};

/// A vrrp_instance as written, before global defaults and cross-checks.
pub(super) struct InstanceDraft {
    /// The vrrp_scripts and checks defined before this block: keepalived 2.2.7 tracks only those.
    pub(super) checks_before: usize,
    pub(super) loc: Loc,
    pub(super) name: String,
    pub(super) iface: Option<String>,
    pub(super) vrid: Option<u8>,
    pub(super) priority: Option<u8>,
    /// `state MASTER`, which keepalived only uses to default the priority to 255 and to clear
    /// nopreempt and preempt_delay: a non-owner starts as backup either way.
    pub(super) master: bool,
    pub(super) version: Option<Version>,
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
    pub(super) skip_check_adv_addr: bool,
    /// `accept` / `no_accept`, the last one wins as in keepalived.
    pub(super) accept: bool,
    pub(super) src_ip: Option<(IpAddr, Loc)>,
    pub(super) peers: Vec<(IpAddr, Loc)>,
    pub(super) native_ipv6: Option<Loc>,
    pub(super) notify: Notify,
    /// Extension: overrides vrrp_agent's.
    pub(super) liveness: LivenessDraft,
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
        checks_before: draft.checks.len(),
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
        skip_check_adv_addr: false,
        accept: true,
        src_ip: None,
        peers: Vec::new(),
        native_ipv6: None,
        notify: Notify::default(),
        liveness: LivenessDraft::default(),
    };
    walk(
        d,
        &format!("vrrp_instance {name}"),
        &[INSTANCE],
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
    ("state", Many(state)),
    ("interface", One(|d, i, s| i.iface = value(d, s, iface))),
    ("virtual_router_id", One(|d, i, s| i.vrid = value(d, s, |v| uint(v, 1, 255)).map(|n| n as u8))),
    ("priority", One(priority)),
    ("advert_int", One(advert_int)),
    ("version", First(|d, i, s| i.version = lenient_number(d, s, VERSION, version))),
    // In order, as keepalived: preempt after nopreempt clears it.
    ("nopreempt", Many(|d, i, s| i.nopreempt = none(d, s).then(|| s.loc.clone()).or(i.nopreempt.take()))),
    ("preempt", Many(|d, i, s| i.nopreempt = i.nopreempt.take().filter(|_| !none(d, s)))),
    ("preempt_delay", One(preempt_delay)),
    // keepalived's default without vrrp_strict.
    ("accept", One(|d, i, s| i.accept |= none(d, s))),
    ("no_accept", One(|d, i, s| i.accept &= !none(d, s))),
    ("authentication", One(authentication)),
    ("virtual_ipaddress", Many(|d, i, s| vips(d, i, s, false))),
    ("virtual_ipaddress_excluded", Many(|d, i, s| vips(d, i, s, true))),
    ("track_script", Many(track_script)),
    ("track_interface", Many(track_interface)),
    ("dont_track_primary", One(|d, i, s| i.track_primary &= !none(d, s))),
    ("skip_check_adv_addr", One(|d, i, s| i.skip_check_adv_addr = switch(d, s))),
    ("mcast_src_ip", One(src_ip)),
    ("unicast_src_ip", One(src_ip)),
    ("unicast_peer", Many(unicast_peer)),
    ("notify", First(|d, i, s| i.notify.any = notify(d, s))),
    ("notify_master", First(|d, i, s| i.notify.master = notify(d, s))),
    ("notify_backup", First(|d, i, s| i.notify.backup = notify(d, s))),
    ("notify_fault", First(|d, i, s| i.notify.fault = notify(d, s))),
    ("notify_stop", First(|d, i, s| i.notify.stop = notify(d, s))),
    ("liveness_interval", One(|d, i, s| liveness_interval(d, &mut i.liveness, s))),
    ("liveness_multiplier", One(|d, i, s| liveness_multiplier(d, &mut i.liveness, s))),
    ("garp_master_delay", One(|d, i, s| set(&mut i.garp_delay, garp_delay(d, s).map(Some)))),
    ("garp_master_repeat", One(|d, i, s| set(&mut i.garp_count, garp_repeat(d, s).map(Some)))),
    ("garp_master_refresh", One(|d, i, s| set(&mut i.garp_refresh, garp_delay(d, s).map(Some)))),
    ("garp_lower_prio_delay", One(|d, i, s| set(&mut i.garp_lower_prio_delay, garp_delay(d, s).map(Some)))),
    ("garp_lower_prio_repeat", One(|d, i, s| set(&mut i.garp_lower_prio_count, garp_count(d, s).map(Some)))),
    ("v3_checksum_as_v2", One(|d, i, s| i.checksum = checksum_as_v2(d, s).or(i.checksum))),
    ("strict_mode", One(|d, _, s| strict_mode(d, s))),
    ("check_unicast_src", One(|d, _, s| _ = none(d, s))),
    ("mcast_dst_ip", One(|d, _, s| mcast_group(d, s))),
    ("debug", Ignore("set RUST_LOG=debug for the agent's debug log")),
    ("native_ipv6", One(native_ipv6)),
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

/// The global vrrp_version, else 2.
const VERSION: &str = "the line is ignored (the version is vrrp_version's, else 2)";

/// `state MASTER|BACKUP`, as keepalived reads it: once MASTER, a later BACKUP is ignored.
fn state(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    match one(d, s) {
        Some("MASTER") => i.master = true,
        Some("BACKUP") if i.master => d.warn(
            &s.loc,
            "state previously set as MASTER - ignoring BACKUP, as keepalived does; keep one state",
        ),
        Some("BACKUP") | None => {}
        Some(other) => {
            d.warn(
                &s.loc,
                format!(
                    "unknown state '{other}', defaulting to BACKUP, as keepalived does; write \
                     state MASTER or state BACKUP, in capitals"
                ),
            );
            i.master = false;
        }
    }
}

/// keepalived takes 1 to 255 and uses 100 for anything else, even after `state MASTER` (which
/// would otherwise make it 255).
fn priority(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    let priority = lenient(d, s, "priority 100 is used", |v| uint(v, 1, 255));
    i.priority = Some(priority.map_or(100, |n| n as u8));
}

/// keepalived takes 0.01 to 255 seconds here, and rounds to what the version sends when the
/// instance is complete.
fn advert_int(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    let range = Duration::from_millis(10)..=Duration::from_secs(255);
    let then = "the line is ignored (1 second unless given before)";
    if let Some(t) = lenient_seconds(d, s, range, then) {
        i.advert = Some((t, s.loc.clone()));
    }
}

fn preempt_delay(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    let range = Duration::ZERO..=Duration::from_secs(1000);
    let delay = lenient_seconds(d, s, range, "preempt_delay 0 is used");
    i.preempt_delay = Some((delay.unwrap_or_default(), s.loc.clone()));
}

fn authentication(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    if let Some(items) = block(d, s) {
        let what = format!("authentication of vrrp_instance {}", i.name);
        walk(d, &what, &[AUTHENTICATION], i, items);
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
        Some(other) => d.warn(
            &s.loc,
            format!(
                "auth_type {other}: unknown authentication type; no authentication, as \
                 keepalived does; write PASS"
            ),
        ),
        None => {}
    }
}

/// `mcast_src_ip` / `unicast_src_ip`, the last one given.
fn src_ip(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    let then = "skipped: adverts go from the interface's address";
    let Some(ip) = lenient(d, s, then, ip) else {
        return;
    };
    if let Some((other, first)) = i.src_ip.as_ref().filter(|(other, _)| *other != ip) {
        d.warn(
            &s.loc,
            format!(
                "the advert source is already {other} ({first}): this one counts, as in \
                 keepalived; keep one"
            ),
        );
    }
    i.src_ip = Some((ip, s.loc.clone()));
}

/// `unicast_peer { ADDR [min_ttl N] [max_ttl N] … }`; keepalived skips a bad address, but
/// without any peer it would send multicast adverts instead, which is refused.
fn unicast_peer(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    let entries = entries(d, s);
    for e in entries {
        let Some(peer) = lenient_at(d, &e.loc, "unicast_peer", e.keyword(), "skipped", ip) else {
            continue;
        };
        for option in e.args().chunks(2) {
            match option {
                [k, v] if k == "min_ttl" || k == "max_ttl" => {
                    let ttl = |v: &str| uint(v, 0, 255);
                    if lenient_at(d, &e.loc, k, v.as_str(), "ignored", ttl).is_some() {
                        d.ignored(&e.loc, &format!("unicast_peer {k}"), NOT_TUNABLE);
                    }
                }
                _ => d.warn(
                    &e.loc,
                    format!(
                        "unicast_peer {peer}: unknown option \"{}\", ignored as keepalived does; \
                         write ADDR [min_ttl N] [max_ttl N]",
                        option.join(" ")
                    ),
                ),
            }
        }
        if let Some((_, first)) = i.peers.iter().find(|(p, _)| *p == peer) {
            d.warn(
                &e.loc,
                format!("unicast peer {peer} is already listed at {first}: remove this one"),
            );
        } else {
            i.peers.push((peer, e.loc.clone()));
        }
    }
    if i.peers.is_empty() && !entries.is_empty() {
        d.error(
            &s.loc,
            "unicast_peer: no peer address is usable, and keepalived would send multicast \
             adverts instead; give the peers' addresses",
        );
    }
}

/// `virtual_ipaddress` entries: `ADDR[/LEN] [dev IF] [label L] [scope S] [brd B] …`, one a line.
/// An address listed before is skipped.
fn vips(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt, excluded: bool) {
    for e in entries(d, s) {
        let Some(vip) = vip(d, e) else {
            i.bad_vips = true;
            continue;
        };
        let listed = i
            .vips
            .iter()
            .chain(&i.excluded)
            .find(|(v, _)| v.addr == vip.addr);
        if let Some((_, first)) = listed {
            d.warn(
                &e.loc,
                format!(
                    "VIP {} is already listed at {first}: this one is skipped; remove it",
                    vip.addr
                ),
            );
            continue;
        }
        let list = if excluded {
            &mut i.excluded
        } else {
            &mut i.vips
        };
        list.push((vip, e.loc.clone()));
    }
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

/// One VIP entry; `None` when keepalived would skip it (with a warning) or it is refused.
fn vip(d: &mut Diags, e: &Stmt) -> Option<Vip> {
    let (addr, prefix_len) = vip_address(d, e)?;
    let mut vip = Vip::new(addr, prefix_len);
    let mut words = e.args().iter();
    while let Some(option) = words.next() {
        let option = option.as_str();
        let takes_value = VIP_OPTIONS.contains(&(option, true));
        // Only an option that takes a value consumes the next word.
        let value = match takes_value.then(|| words.next()) {
            None => "",
            Some(Some(v)) => v.as_str(),
            Some(None) => {
                d.warn(
                    &e.loc,
                    format!(
                        "VIP {addr}: {option} needs a value; the VIP is skipped, as keepalived \
                         does"
                    ),
                );
                return None;
            }
        };
        match option {
            "dev" => vip.dev = Some(parse_at(d, &e.loc, option, value, iface)?),
            "label" | "scope" | "brd" | "broadcast" if addr.is_ipv6() => d.warn(
                &e.loc,
                format!(
                    "VIP {addr}: {option} has no meaning for an IPv6 address (the kernel derives \
                     its scope; IPv6 has no broadcast, and no labels); ignored"
                ),
            ),
            "label" => vip.label = Some(value.to_string()),
            "scope" => set(
                &mut vip.scope,
                lenient_at(d, &e.loc, option, value, "ignored", scope),
            ),
            "brd" | "broadcast" if value == "-" && prefix_len > 30 => d.warn(
                &e.loc,
                format!(
                    "VIP {addr}: a /{prefix_len} has no broadcast address; brd - is ignored, as \
                     keepalived does"
                ),
            ),
            "brd" | "broadcast" => {
                if let IpAddr::V4(addr) = addr {
                    let brd = |v: &str| broadcast(v, addr, prefix_len);
                    let skip = "the VIP is skipped";
                    vip.broadcast = lenient_at(d, &e.loc, option, value, skip, brd)?;
                }
            }
            "peer" => {
                d.error(
                    &e.loc,
                    format!("VIP {addr}: peer (a point-to-point VIP) is not supported"),
                );
                return None;
            }
            "use_vmac" => d.ignored(&e.loc, "use_vmac", VMAC),
            // IPv6 address flags: no effect on IPv4, in keepalived either.
            "home" | "-nodad" | "mngtmpaddr" | "preferred_lft" if addr.is_ipv4() => {}
            "-nodad" => d.warn(
                &e.loc,
                format!(
                    "VIP {addr}: -nodad is ignored: IPv6 VIPs are always added without \
                     duplicate address detection, so they answer at once after a takeover"
                ),
            ),
            "home" | "mngtmpaddr" | "preferred_lft" => d.ignored(
                &e.loc,
                &format!("virtual_ipaddress option {option}"),
                NOT_TUNABLE,
            ),
            "no_track" => vip.no_track = true,
            "noprefixroute" | "autojoin" | "track_group" => d.ignored(
                &e.loc,
                &format!("virtual_ipaddress option {option}"),
                NOT_TUNABLE,
            ),
            other => {
                let hint = did_you_mean(other, VIP_OPTIONS.iter().map(|(o, _)| *o));
                d.warn(
                    &e.loc,
                    format!(
                        "VIP {addr}: unknown option \"{other}\"{hint} is ignored, as keepalived \
                         does; write ADDR[/LEN] [dev IF] [label LABEL] [scope SCOPE] [brd ADDR]"
                    ),
                );
            }
        }
    }
    Some(vip)
}

/// `ADDR[/LEN]`, a host address (/32, /128) by default; keepalived skips a bad address and
/// takes a length past the address's as the address's.
fn vip_address(d: &mut Diags, e: &Stmt) -> Option<(IpAddr, u8)> {
    let (addr, len) = match e.keyword().split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (e.keyword(), None),
    };
    let skip = |d: &mut Diags, why: &str| {
        d.warn(
            &e.loc,
            format!(
                "VIP {}: {why}; the VIP is skipped, as keepalived does",
                e.keyword()
            ),
        )
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        skip(d, "not an IPv4 or IPv6 address");
        return None;
    };
    let max = if addr.is_ipv6() { 128 } else { 32 };
    let len = len.unwrap_or(if addr.is_ipv6() { "128" } else { "32" });
    match len.parse::<u32>() {
        Ok(0) => {
            d.error(
                &e.loc,
                format!(
                    "VIP {addr}/0: a VIP is one address or more; write a length from 1 to {max}"
                ),
            );
            None
        }
        Ok(n) if n <= max => Some((addr, n as u8)),
        Ok(_) => {
            d.warn(
                &e.loc,
                format!(
                    "VIP {addr}/{len}: keepalived takes a length past {max} as /{max}, and so \
                     does this agent; write /{max}"
                ),
            );
            Some((addr, max as u8))
        }
        Err(_) => {
            skip(d, &format!("the prefix length is 1 to {max}"));
            None
        }
    }
}

/// `native_ipv6`: keepalived's way to make an instance IPv6 before any address says so. Here
/// the first VIP says it; the keyword only has to agree.
fn native_ipv6(d: &mut Diags, i: &mut InstanceDraft, s: &Stmt) {
    if none(d, s) {
        i.native_ipv6 = Some(s.loc.clone());
    }
}

pub(super) fn track_script<T: Tracker>(d: &mut Diags, t: &mut T, s: &Stmt) {
    for e in entries(d, s) {
        if let Some(track) = track(d, e, true) {
            add_track(d, &mut t.tracks().checks, track);
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
            Some(track) => add_track(d, &mut t.tracks().interfaces, track),
            None => {}
        }
    }
}

/// keepalived ignores a second entry for the same script or interface.
fn add_track(d: &mut Diags, list: &mut Vec<TrackDraft>, track: TrackDraft) {
    match list.iter().find(|t| t.tracked.name == track.tracked.name) {
        Some(first) => d.warn(
            &track.loc,
            format!(
                "{} is already tracked at {}: this entry is ignored, as keepalived does; remove it",
                track.tracked.name, first.loc
            ),
        ),
        None => list.push(track),
    }
}

/// `NAME [weight N [reverse|noreverse]]` (`noreverse` for scripts only), read as keepalived does:
/// an unknown option or a weight without value drops the entry; a bad weight is the script's own
/// (0 for an interface); ±254 is ±253; anything else is ignored. Each with a warning.
fn track(d: &mut Diags, e: &Stmt, script: bool) -> Option<TrackDraft> {
    let usage = if script {
        "NAME [weight N [reverse|noreverse]]"
    } else {
        "NAME [weight N]"
    };
    let (weight, more) = match e.args() {
        [] => (None, &[][..]),
        [w, weight, more @ ..] if w == "weight" => (Some(weight), more),
        [option, ..] => {
            let why = if option == "weight" {
                "weight needs a value".to_string()
            } else {
                format!("unknown option \"{option}\"")
            };
            d.warn(
                &e.loc,
                format!(
                    "{}: {why}; the entry is ignored, as keepalived does; write {usage}",
                    e.words.join(" ")
                ),
            );
            return None;
        }
    };
    let weight = weight.and_then(|w| {
        let own = if script {
            "the vrrp_script's own weight is used"
        } else {
            "weight 0 is used"
        };
        let w = lenient_at(d, &e.loc, "weight", w.as_str(), own, |v| int(v, -254, 254));
        match w {
            Some(w) if w.abs() == 254 => {
                d.warn(
                    &e.loc,
                    format!("weight {w} is taken as ±253, the limit, as keepalived does"),
                );
                Some(w.signum() as i32 * 253)
            }
            Some(w) => Some(w as i32),
            None if script => None,
            None => Some(0),
        }
    });
    let reverse = match more {
        [] => None,
        [r, ..] if r == "reverse" => Some(true),
        [r, ..] if script && r == "noreverse" => Some(false),
        [other, ..] => {
            d.warn(
                &e.loc,
                format!(
                    "{}: unknown weight option \"{other}\" is ignored, as keepalived does; write \
                     {usage}",
                    e.keyword()
                ),
            );
            None
        }
    };
    ignore_rest(d, &e.loc, e.keyword(), more.get(1..).unwrap_or_default());
    Some(TrackDraft {
        tracked: Tracked {
            name: e.keyword().to_string(),
            weight,
        },
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
