//! What each keepalived keyword does here (the tables), and the model built from the statements.
use std::{
    collections::{hash_map::Entry, HashMap},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use vrrp_common::{ChecksumForm, Version};

use super::{lex::Stmt, Diags, Loc};
use crate::config::{
    checksum_form, Check, Config, Garp, Global, Notify, Probe, ScriptUser, Tracked, Vip, XdpMode,
};

mod resolve;

/// The configuration `stmts` describe; errors and warnings go to `d`.
pub fn config(stmts: &[Stmt], d: &mut Diags) -> Config {
    let mut draft = Draft::default();
    walk(d, "the top level", TOP, &mut draft, stmts);
    draft.resolve(d)
}

type Handler<T> = fn(&mut Diags, &mut T, &Stmt);

enum Rule<T> {
    /// Read into the model; at most once per block.
    One(Handler<T>),
    /// Read into the model; may come again (each adds to a list).
    Many(Handler<T>),
    /// keepalived's, but changes nothing this agent does: one warning, saying why.
    Ignore(&'static str),
    /// keepalived's, and running without it would not do what keepalived did: an error, saying
    /// what to write instead.
    Refuse(&'static str),
}

use Rule::{Ignore, Many, One, Refuse};

type Table<T> = [(&'static str, Rule<T>)];

const EMAIL: &str = "this agent does VRRP only and sends no e-mail; a notify script can";
const LVS: &str = "this agent does VRRP only: no LVS/IPVS virtual servers or real server checks";
const BFD: &str = "this agent does VRRP only: no BFD";
const SNMP: &str = "this agent does VRRP only: no SNMP or D-Bus";
const FIREWALL: &str = "this agent adds no iptables/nftables rules";
const FIFO: &str = "no notify FIFOs; use notify scripts";
const TUNING: &str = "keepalived process setting; no effect on this agent";
const STATIC: &str = "this agent manages the VIPs of its instances only; configure other \
                      addresses, routes and rules with the system's network configuration";
const VMAC: &str = "VMAC is not supported: the VIPs use the interface's own MAC address, and \
                    gratuitous ARPs update the neighbours after a failover";
const NOT_TUNABLE: &str = "not configurable in this agent";
const RFC: &str = "this agent does what the VRRP RFCs say here";
const TRACKER_DEF: &str = "track_file, track_process and track_bfd are not supported, so \
                           nothing can track it";
const IPV6: &str = "IPv6 VRRP is not supported yet; this agent runs VRRP over IPv4";
const STRICT: &str = "in keepalived it also turns on no_accept and refuses unicast peers, \
                      authentication and preempt_delay; write no_accept in the instances that \
                      need it and remove vrrp_strict";
const NO_TRACKER: &str = "use a vrrp_script, or an in-process check in the vrrp_agent block \
                          (check NAME { process NAME }), in track_script";

const TOP: &Table<Draft> = &[
    ("global_defs", Many(global_defs)),
    ("vrrp_script", Many(vrrp_script)),
    ("vrrp_instance", Many(vrrp_instance)),
    ("vrrp_sync_group", Many(vrrp_sync_group)),
    ("vrrp_agent", One(vrrp_agent)),
    ("virtual_server", Ignore(LVS)),
    ("virtual_server_group", Ignore(LVS)),
    ("real_server", Ignore(LVS)),
    ("SSL", Ignore(LVS)),
    ("net_namespace_ipvs", Ignore(LVS)),
    ("bfd_instance", Ignore(BFD)),
    ("static_ipaddress", Ignore(STATIC)),
    ("static_routes", Ignore(STATIC)),
    ("static_rules", Ignore(STATIC)),
    ("track_group", Ignore(STATIC)),
    (
        "garp_group",
        Ignore("per-interface gratuitous ARP pacing; vrrp_garp_interval in global_defs paces all"),
    ),
    ("linkbeat_interfaces", Ignore(NOT_TUNABLE)),
    ("linkbeat_use_polling", Ignore(NOT_TUNABLE)),
    ("interface_up_down_delays", Ignore(NOT_TUNABLE)),
    ("track_file", Ignore(TRACKER_DEF)),
    ("vrrp_track_file", Ignore(TRACKER_DEF)),
    ("vrrp_track_process", Ignore(TRACKER_DEF)),
    ("namespace_with_ipsets", Ignore(FIREWALL)),
    ("use_pid_dir", Ignore(TUNING)),
    ("instance", Ignore(TUNING)),
    ("child_wait_time", Ignore(TUNING)),
    (
        "net_namespace",
        Refuse("run the agent in the namespace instead: ip netns exec NAME vrrp-agent -f FILE"),
    ),
];

/// Everything read so far; [`Draft::resolve`] checks the cross-references and builds the model.
#[derive(Default)]
struct Draft {
    global: Global,
    /// `vrrp_version`: instances without `version` (keepalived: 2).
    version: Option<Version>,
    /// `vrrp_garp_*`: what instances start from.
    garp: Garp,
    /// `vrrp_garp_lower_prio_repeat|delay`; unset, keepalived uses the `vrrp_garp_master_*` ones.
    lower_prio_count: Option<u8>,
    lower_prio_delay: Option<Option<Duration>>,
    /// `v3_checksum_as_v2` in global_defs, or `checksum` in vrrp_agent.
    checksum: Option<(ChecksumForm, Loc)>,
    checks: Vec<(Check, Loc)>,
    /// vrrp_scripts and checks refused: tracking them is no further error.
    broken: Vec<String>,
    instances: Vec<InstanceDraft>,
    groups: Vec<GroupDraft>,
}

impl Draft {
    /// A vrrp_script or check that says nothing it can do: an error unless one was reported.
    fn broken(&mut self, d: &mut Diags, s: &Stmt, refused: bool, what: &str) {
        if !refused {
            d.error(&s.loc, format!("{} {} {what}", s.keyword(), s.args()[0]));
        }
        self.broken.push(s.args()[0].clone());
    }
}

fn global_defs(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
    if let Some(items) = block(d, s) {
        walk(d, "global_defs", GLOBAL_DEFS, draft, items);
    }
}

const GLOBAL_DEFS: &Table<Draft> = &[
    (
        "router_id",
        One(|d, g, s| g.global.router_id = one(d, s).map(str::to_string)),
    ),
    (
        "vrrp_version",
        One(|d, g, s| g.version = value(d, s, version)),
    ),
    (
        "vrrp_garp_interval",
        One(|d, g, s| {
            if let Some(t) = value(d, s, seconds) {
                g.garp.interval = t;
            }
        }),
    ),
    // IPv6 neighbour advertisements: nothing to pace in IPv4 VRRP, in keepalived either.
    ("vrrp_gna_interval", One(|d, _, s| _ = value(d, s, seconds))),
    ("vrrp_mcast_group6", One(|d, _, s| _ = one(d, s))),
    (
        "vrrp_skip_check_adv_addr",
        One(|d, g, s| {
            if let Some(on) = flag(d, s) {
                g.global.skip_check_adv_addr = on;
            }
        }),
    ),
    (
        "script_user",
        One(|d, g, s| g.global.script_user = user(d, s)),
    ),
    (
        "enable_script_security",
        One(|d, g, s| {
            if let Some(on) = flag(d, s) {
                g.global.script_security = on;
            }
        }),
    ),
    (
        "vrrp_rt_priority",
        One(|d, g, s| {
            if let Some(p) = value(d, s, |v| int(v, 1, 99)) {
                g.global.rt_priority = p as u8;
            }
        }),
    ),
    (
        "vrrp_startup_delay",
        One(|d, g, s| {
            if let Some(t) = value(d, s, seconds) {
                g.global.startup_delay = t;
            }
        }),
    ),
    (
        "vrrp_garp_master_delay",
        One(|d, g, s| {
            if let Some(t) = value(d, s, whole_seconds) {
                g.garp.repeat_after = t;
            }
        }),
    ),
    (
        "vrrp_garp_master_repeat",
        One(|d, g, s| {
            if let Some(n) = garp_repeat(d, s) {
                g.garp.count = n;
            }
        }),
    ),
    (
        "vrrp_garp_master_refresh",
        One(|d, g, s| {
            if let Some(t) = value(d, s, whole_seconds) {
                g.garp.refresh = t;
            }
        }),
    ),
    // keepalived: one gratuitous ARP per VIP, and no second burst.
    (
        "vrrp_min_garp",
        One(|d, g, s| {
            if flag(d, s) == Some(true) {
                g.garp.count = 1;
                g.garp.repeat_after = None;
            }
        }),
    ),
    (
        "v3_checksum_as_v2",
        One(|d, g, s| {
            if let Some(form) = checksum_as_v2(d, s) {
                set_checksum(d, g, s, form);
            }
        }),
    ),
    (
        "vrrp_strict",
        One(|d, _, s| {
            if flag(d, s) == Some(true) {
                d.error(&s.loc, format!("vrrp_strict is not supported: {STRICT}"));
            }
        }),
    ),
    // Unicast adverts are only accepted from the unicast peers, always.
    ("vrrp_check_unicast_src", One(|d, _, s| _ = flag(d, s))),
    (
        "vrrp_mcast_group4",
        One(|d, _, s| _ = value(d, s, vrrp_group)),
    ),
    ("notification_email", Ignore(EMAIL)),
    ("notification_email_from", Ignore(EMAIL)),
    ("smtp_server", Ignore(EMAIL)),
    ("smtp_helo_name", Ignore(EMAIL)),
    ("smtp_connect_timeout", Ignore(EMAIL)),
    ("smtp_alert", Ignore(EMAIL)),
    ("smtp_alert_vrrp", Ignore(EMAIL)),
    ("smtp_alert_checker", Ignore(EMAIL)),
    ("no_email_faults", Ignore(EMAIL)),
    ("no_checker_emails", Ignore(EMAIL)),
    ("lvs_timeouts", Ignore(LVS)),
    ("lvs_flush", Ignore(LVS)),
    ("lvs_flush_on_stop", Ignore(LVS)),
    ("lvs_flush_onstop", Ignore(LVS)),
    ("lvs_sync_daemon", Ignore(LVS)),
    ("lvs_process_name", Ignore(LVS)),
    ("lvs_notify_fifo", Ignore(LVS)),
    ("lvs_notify_fifo_script", Ignore(LVS)),
    ("lvs_netlink_cmd_rcv_bufs", Ignore(LVS)),
    ("lvs_netlink_cmd_rcv_bufs_force", Ignore(LVS)),
    ("lvs_netlink_monitor_rcv_bufs", Ignore(LVS)),
    ("lvs_netlink_monitor_rcv_bufs_force", Ignore(LVS)),
    ("checker_process_name", Ignore(LVS)),
    ("checker_priority", Ignore(LVS)),
    ("checker_no_swap", Ignore(LVS)),
    ("checker_rt_priority", Ignore(LVS)),
    ("checker_cpu_affinity", Ignore(LVS)),
    ("checker_rlimit_rttime", Ignore(LVS)),
    ("checker_rlimit_rtime", Ignore(LVS)),
    ("checker_log_all_failures", Ignore(LVS)),
    ("rs_init_notifies", Ignore(LVS)),
    ("nftables_ipvs", Ignore(LVS)),
    ("nftables_ipvs_priority", Ignore(LVS)),
    ("nftables_ipvs_start_fwmark", Ignore(LVS)),
    ("snmp_vs_stats_update_interval", Ignore(LVS)),
    ("snmp_rs_stats_update_interval", Ignore(LVS)),
    ("bfd_process_name", Ignore(BFD)),
    ("bfd_priority", Ignore(BFD)),
    ("bfd_no_swap", Ignore(BFD)),
    ("bfd_rt_priority", Ignore(BFD)),
    ("bfd_cpu_affinity", Ignore(BFD)),
    ("bfd_rlimit_rttime", Ignore(BFD)),
    ("bfd_rlimit_rtime", Ignore(BFD)),
    ("snmp_socket", Ignore(SNMP)),
    ("enable_traps", Ignore(SNMP)),
    ("enable_snmp_vrrp", Ignore(SNMP)),
    ("enable_snmp_keepalived", Ignore(SNMP)),
    ("enable_snmp_rfc", Ignore(SNMP)),
    ("enable_snmp_rfcv2", Ignore(SNMP)),
    ("enable_snmp_rfcv3", Ignore(SNMP)),
    ("enable_snmp_checker", Ignore(SNMP)),
    ("enable_dbus", Ignore(SNMP)),
    ("dbus_service_name", Ignore(SNMP)),
    ("dbus_no_interface_name", Ignore(SNMP)),
    ("vrrp_iptables", Ignore(FIREWALL)),
    ("vrrp_ipsets", Ignore(FIREWALL)),
    ("nftables", Ignore(FIREWALL)),
    ("nftables_priority", Ignore(FIREWALL)),
    ("nftables_ifindex", Ignore(FIREWALL)),
    ("nftables_counters", Ignore(FIREWALL)),
    ("notify_fifo", Ignore(FIFO)),
    ("notify_fifo_script", Ignore(FIFO)),
    ("vrrp_notify_fifo", Ignore(FIFO)),
    ("vrrp_notify_fifo_script", Ignore(FIFO)),
    ("vrrp_notify_priority_changes", Ignore(FIFO)),
    ("fifo_write_vrrp_states_on_reload", Ignore(FIFO)),
    ("vmac_prefix", Ignore(VMAC)),
    ("vmac_addr_prefix", Ignore(VMAC)),
    ("vrrp_garp_extra_if", Ignore(VMAC)),
    ("vrrp_vmac_garp_intvl", Ignore(VMAC)),
    ("vrrp_garp_master_refresh_repeat", Ignore(NOT_TUNABLE)),
    (
        "vrrp_garp_lower_prio_delay",
        One(|d, g, s| g.lower_prio_delay = value(d, s, whole_seconds)),
    ),
    (
        "vrrp_garp_lower_prio_repeat",
        One(|d, g, s| g.lower_prio_count = value(d, s, byte)),
    ),
    ("vrrp_down_timer_adverts", Ignore(RFC)),
    ("vrrp_lower_prio_no_advert", Ignore(RFC)),
    ("vrrp_higher_prio_send_advert", Ignore(RFC)),
    ("vrrp_owner_ignore_adverts", Ignore(RFC)),
    ("log_unknown_vrids", Ignore(NOT_TUNABLE)),
    ("vrrp_delay_after_boot", Ignore("use vrrp_startup_delay")),
    ("dynamic_interfaces", Ignore(NOT_TUNABLE)),
    (
        "default_interface",
        Ignore("give every instance its interface"),
    ),
    ("disable_local_igmp", Ignore(NOT_TUNABLE)),
    (
        "startup_script",
        Ignore("run it from the service manager, e.g. systemd ExecStartPre="),
    ),
    ("startup_script_timeout", Ignore(TUNING)),
    (
        "shutdown_script",
        Ignore("run it from the service manager, e.g. systemd ExecStopPost="),
    ),
    ("shutdown_script_timeout", Ignore(TUNING)),
    ("process_names", Ignore(TUNING)),
    ("process_name", Ignore(TUNING)),
    ("vrrp_process_name", Ignore(TUNING)),
    ("use_symlink_paths", Ignore(TUNING)),
    ("set_supplementary_groups", Ignore(TUNING)),
    ("max_auto_priority", Ignore(TUNING)),
    ("min_auto_priority_delay", Ignore(TUNING)),
    ("vrrp_priority", Ignore(TUNING)),
    ("vrrp_no_swap", Ignore(TUNING)),
    ("vrrp_cpu_affinity", Ignore(TUNING)),
    ("vrrp_rlimit_rttime", Ignore(TUNING)),
    ("vrrp_rlimit_rtime", Ignore(TUNING)),
    ("vrrp_netlink_cmd_rcv_bufs", Ignore(TUNING)),
    ("vrrp_netlink_cmd_rcv_bufs_force", Ignore(TUNING)),
    ("vrrp_netlink_monitor_rcv_bufs", Ignore(TUNING)),
    ("vrrp_netlink_monitor_rcv_bufs_force", Ignore(TUNING)),
    ("process_monitor_rcv_bufs", Ignore(TUNING)),
    ("process_monitor_rcv_bufs_force", Ignore(TUNING)),
    ("vrrp_rx_bufs_policy", Ignore(TUNING)),
    ("vrrp_rx_bufs_multiplier", Ignore(TUNING)),
    ("umask", Ignore(TUNING)),
    ("random_seed", Ignore(TUNING)),
    ("reload_check_config", Ignore(TUNING)),
    ("reload_time_file", Ignore(TUNING)),
    ("reload_repeat", Ignore(TUNING)),
    ("reload_file", Ignore(TUNING)),
    ("include_check", Ignore(TUNING)),
    ("config_save_dir", Ignore(TUNING)),
    ("tmp_config_directory", Ignore(TUNING)),
    ("data_use_instance", Ignore(TUNING)),
    ("json_version", Ignore(TUNING)),
    ("iproute_usr_dir", Ignore(TUNING)),
    ("iproute_etc_dir", Ignore(TUNING)),
    ("state_dump_file", Ignore(TUNING)),
    ("stats_dump_file", Ignore(TUNING)),
    ("json_dump_file", Ignore(TUNING)),
];

/// A vrrp_script or an in-process check, before its timeout defaults to its interval.
struct ScriptDraft {
    script: Check,
    check: Option<(Probe, Loc)>,
    /// What the check does was given but refused: no need to say it is missing.
    refused: bool,
    timeout: Option<Duration>,
}

fn vrrp_script(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
    let Some((name, items)) = named(d, s) else {
        return;
    };
    let mut script = ScriptDraft::new(name);
    walk(
        d,
        &format!("vrrp_script {name}"),
        SCRIPT,
        &mut script,
        items,
    );
    let refused = script.refused;
    match script.finish() {
        Some(script) => draft.checks.push((script, s.loc.clone())),
        None => draft.broken(
            d,
            s,
            refused,
            "has no script: add script \"/path/to/check args\"",
        ),
    }
}

const SCRIPT: &Table<ScriptDraft> = &[
    (
        "script",
        One(|d, sd, s| {
            let line = match s.args() {
                [line] if !line.is_empty() => Some(Probe::Exec(line.clone())),
                [] | [_] => {
                    d.error(
                        &s.loc,
                        "script needs a command: script \"/path/to/check args\"",
                    );
                    None
                }
                [first, ..] => {
                    d.error(
                        &s.loc,
                        format!(
                            "script takes one command line: quote it, as in script \"{}\" \
                             (keepalived would run {first} alone)",
                            s.args().join(" ")
                        ),
                    );
                    None
                }
            };
            sd.set(d, s, line);
        }),
    ),
    ("user", One(|d, sd, s| sd.script.user = user(d, s))),
    ("interval", One(script_interval)),
    ("timeout", One(script_timeout)),
    ("weight", One(script_weight)),
    ("rise", One(script_rise)),
    ("fall", One(script_fall)),
    ("init_fail", One(script_init_fail)),
];

impl ScriptDraft {
    /// keepalived's defaults; an unset timeout becomes the interval when the block ends.
    fn new(name: &str) -> Self {
        Self {
            script: Check::new(name, Probe::Exec(String::new())),
            check: None,
            refused: false,
            timeout: None,
        }
    }

    /// What the check does; `None` when the statement was refused (and said so).
    fn set(&mut self, d: &mut Diags, s: &Stmt, check: Option<Probe>) {
        match (&self.check, check) {
            (_, None) => self.refused = true,
            (Some((_, first)), Some(_)) => d.error(
                &s.loc,
                format!("a check does one thing, and {first} already says what: keep one"),
            ),
            (None, Some(check)) => self.check = Some((check, s.loc.clone())),
        }
    }

    fn finish(mut self) -> Option<Check> {
        self.script.probe = self.check?.0;
        self.script.timeout = self.timeout.unwrap_or(self.script.interval);
        Some(self.script)
    }
}

// Handlers shared by the SCRIPT and CHECK tables.

fn script_interval(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    if let Some(t) = script_seconds(d, s) {
        sd.script.interval = t;
    }
}

fn script_timeout(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    sd.timeout = script_seconds(d, s);
}

fn script_rise(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    if let Some(n) = script_count(d, s) {
        sd.script.rise = n;
    }
}

fn script_fall(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    if let Some(n) = script_count(d, s) {
        sd.script.fall = n;
    }
}

fn script_init_fail(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    sd.script.init_fail = none(d, s);
}

/// `rise` and `fall`: at least 1, and at most keepalived's int.
fn script_count(d: &mut Diags, s: &Stmt) -> Option<u32> {
    value(d, s, |v| uint(v, 1, i32::MAX as u64)).map(|n| n as u32)
}

fn script_weight(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    let (weight, reverse) = match s.args() {
        [w] => (w, false),
        [w, r] if r == "reverse" => (w, true),
        _ => {
            return d.error(
                &s.loc,
                "weight takes a number from -253 to 253, then optionally reverse",
            )
        }
    };
    match int(weight, -253, 253) {
        Ok(w) => {
            sd.script.weight = w as i32;
            sd.script.reverse = reverse;
        }
        Err(e) => d.error(&s.loc, format!("weight {weight}: {e}")),
    }
}

/// keepalived's script interval and timeout: 0 means 1 second, with a warning.
fn script_seconds(d: &mut Diags, s: &Stmt) -> Option<Duration> {
    let t = value(d, s, seconds)?;
    if t.is_zero() {
        d.warn(
            &s.loc,
            format!("{} 0 means 1 second, as in keepalived", s.keyword()),
        );
        return Some(Duration::from_secs(1));
    }
    Some(t)
}

/// A vrrp_instance as written, before global defaults and cross-checks.
struct InstanceDraft {
    loc: Loc,
    name: String,
    iface: Option<String>,
    vrid: Option<u8>,
    priority: Option<u8>,
    /// `state MASTER`, which keepalived only uses to default the priority to 255 and to clear
    /// nopreempt and preempt_delay: a non-owner starts as backup either way.
    master: bool,
    version: Option<(Version, Loc)>,
    advert: Option<(Duration, Loc)>,
    auth_type: Option<Loc>,
    auth_pass: Option<(String, Loc)>,
    nopreempt: Option<Loc>,
    preempt_delay: Option<(Duration, Loc)>,
    checksum: Option<ChecksumForm>,
    garp_count: Option<u8>,
    garp_delay: Option<Option<Duration>>,
    garp_refresh: Option<Option<Duration>>,
    garp_lower_prio_count: Option<u8>,
    garp_lower_prio_delay: Option<Option<Duration>>,
    vips: Vec<(Vip, Loc)>,
    excluded: Vec<(Vip, Loc)>,
    /// A virtual_ipaddress entry was refused (and said so): "no VIPs" would only repeat it.
    bad_vips: bool,
    tracks: Tracks,
    track_primary: bool,
    /// `accept` / `no_accept`, the last one wins as in keepalived.
    accept: bool,
    src_ip: Option<(Ipv4Addr, Loc)>,
    peers: Vec<(Ipv4Addr, Loc)>,
    notify: Notify,
}

/// `track_script` and `track_interface` entries, of an instance or a sync group.
#[derive(Clone, Default)]
struct Tracks {
    checks: Vec<TrackDraft>,
    interfaces: Vec<TrackDraft>,
}

#[derive(Clone)]
struct TrackDraft {
    tracked: Tracked,
    /// `reverse` / `noreverse` after the weight; the model keeps reverse on the script only.
    reverse: Option<bool>,
    loc: Loc,
}

impl InstanceDraft {
    /// keepalived defaults an instance that says `state MASTER` to the address owner.
    fn priority(&self) -> u8 {
        self.priority.unwrap_or(if self.master { 255 } else { 100 })
    }
}

fn vrrp_instance(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
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

const INSTANCE: &Table<InstanceDraft> = &[
    (
        "state",
        One(|d, i, s| {
            if let Some(master) = value(d, s, |v| match v {
                "MASTER" => Ok(true),
                "BACKUP" => Ok(false),
                _ => Err("write MASTER or BACKUP".into()),
            }) {
                i.master = master;
            }
        }),
    ),
    ("interface", One(|d, i, s| i.iface = value(d, s, iface))),
    (
        "virtual_router_id",
        One(|d, i, s| {
            i.vrid = value(d, s, |v| uint(v, 1, 255)).map(|n| n as u8);
        }),
    ),
    (
        "priority",
        One(|d, i, s| {
            i.priority = value(d, s, |v| uint(v, 1, 255)).map(|n| n as u8);
        }),
    ),
    (
        "advert_int",
        One(|d, i, s| {
            i.advert = value(d, s, seconds).map(|t| (t, s.loc.clone()));
        }),
    ),
    (
        "version",
        One(|d, i, s| {
            i.version = value(d, s, version).map(|v| (v, s.loc.clone()));
        }),
    ),
    (
        "nopreempt",
        One(|d, i, s| {
            if none(d, s) {
                i.nopreempt = Some(s.loc.clone());
            }
        }),
    ),
    // keepalived keeps it for old configurations: preempting is the default.
    ("preempt", One(|d, _, s| _ = none(d, s))),
    (
        "preempt_delay",
        One(|d, i, s| {
            i.preempt_delay = value(d, s, |v| {
                seconds(v).and_then(|t| {
                    (t <= Duration::from_secs(1000))
                        .then_some(t)
                        .ok_or_else(|| "keepalived's range is 0 to 1000 seconds".to_string())
                })
            })
            .map(|t| (t, s.loc.clone()));
        }),
    ),
    // keepalived's default without vrrp_strict.
    (
        "accept",
        One(|d, i, s| {
            if none(d, s) {
                i.accept = true;
            }
        }),
    ),
    (
        "authentication",
        One(|d, i, s| {
            if let Some(items) = block(d, s) {
                let what = format!("authentication of vrrp_instance {}", i.name);
                walk(d, &what, AUTHENTICATION, i, items);
            }
        }),
    ),
    (
        "virtual_ipaddress",
        Many(|d, i, s| {
            let (vips, bad) = vips(d, s);
            i.vips.extend(vips);
            i.bad_vips |= bad;
        }),
    ),
    (
        "virtual_ipaddress_excluded",
        Many(|d, i, s| {
            let (vips, bad) = vips(d, s);
            i.excluded.extend(vips);
            i.bad_vips |= bad;
        }),
    ),
    ("track_script", Many(track_script)),
    ("track_interface", Many(track_interface)),
    (
        "dont_track_primary",
        One(|d, i, s| {
            if none(d, s) {
                i.track_primary = false;
            }
        }),
    ),
    ("mcast_src_ip", One(src_ip)),
    ("unicast_src_ip", One(src_ip)),
    ("unicast_peer", Many(unicast_peer)),
    ("notify", One(|d, i, s| i.notify.any = notify(d, s))),
    (
        "notify_master",
        One(|d, i, s| i.notify.master = notify(d, s)),
    ),
    (
        "notify_backup",
        One(|d, i, s| i.notify.backup = notify(d, s)),
    ),
    ("notify_fault", One(|d, i, s| i.notify.fault = notify(d, s))),
    ("notify_stop", One(|d, i, s| i.notify.stop = notify(d, s))),
    (
        "garp_master_delay",
        One(|d, i, s| i.garp_delay = value(d, s, whole_seconds)),
    ),
    (
        "garp_master_repeat",
        One(|d, i, s| i.garp_count = garp_repeat(d, s)),
    ),
    (
        "garp_master_refresh",
        One(|d, i, s| i.garp_refresh = value(d, s, whole_seconds)),
    ),
    (
        "v3_checksum_as_v2",
        One(|d, i, s| {
            if let Some(form) = checksum_as_v2(d, s) {
                i.checksum = Some(form);
            }
        }),
    ),
    (
        "strict_mode",
        One(|d, _, s| {
            if flag(d, s) == Some(true) {
                d.error(&s.loc, format!("strict_mode is not supported: {STRICT}"));
            }
        }),
    ),
    ("check_unicast_src", One(|d, _, s| _ = none(d, s))),
    ("mcast_dst_ip", One(|d, _, s| _ = value(d, s, vrrp_group))),
    (
        "debug",
        Ignore("set RUST_LOG=debug for the agent's debug log"),
    ),
    (
        "no_accept",
        One(|d, i, s| {
            if none(d, s) {
                i.accept = false;
            }
        }),
    ),
    ("native_ipv6", Refuse(IPV6)),
    (
        "auth_hmac",
        Refuse("HMAC authentication is a keepalived extension no other router speaks; remove it"),
    ),
    ("track_file", Refuse(NO_TRACKER)),
    ("track_process", Refuse(NO_TRACKER)),
    ("track_bfd", Refuse(NO_TRACKER)),
    (
        "no_virtual_ipaddress",
        Refuse("every instance needs a virtual_ipaddress here (RFC 9568 requires one)"),
    ),
    ("use_vmac", Ignore(VMAC)),
    ("use_vmac_addr", Ignore(VMAC)),
    ("vmac_xmit_base", Ignore(VMAC)),
    ("use_ipvlan", Ignore(VMAC)),
    ("garp_extra_if", Ignore(VMAC)),
    ("vmac_garp_intvl", Ignore(VMAC)),
    ("smtp_alert", Ignore(EMAIL)),
    ("lvs_sync_daemon_interface", Ignore(LVS)),
    ("notify_priority_changes", Ignore(FIFO)),
    (
        "notify_deleted",
        Ignore("no notify script runs when an instance is removed"),
    ),
    ("notify_master_rx_lower_pri", Ignore(NOT_TUNABLE)),
    (
        "virtual_routes",
        Ignore("add the routes from notify_master and notify_backup scripts"),
    ),
    (
        "virtual_rules",
        Ignore("add the rules from notify_master and notify_backup scripts"),
    ),
    (
        "promote_secondaries",
        Ignore("set it with sysctl net.ipv4.conf.IF.promote_secondaries=1"),
    ),
    (
        "skip_check_adv_addr",
        Ignore("use vrrp_skip_check_adv_addr in global_defs"),
    ),
    ("unicast_ttl", Ignore(NOT_TUNABLE)),
    ("unicast_fault_no_peer", Ignore(NOT_TUNABLE)),
    ("old_unicast_checksum", Ignore(NOT_TUNABLE)),
    ("track_src_ip", Ignore(NOT_TUNABLE)),
    ("vrf", Ignore(NOT_TUNABLE)),
    ("linkbeat_use_polling", Ignore(NOT_TUNABLE)),
    ("kernel_rx_buf_size", Ignore(TUNING)),
    ("garp_master_refresh_repeat", Ignore(NOT_TUNABLE)),
    (
        "garp_lower_prio_delay",
        One(|d, i, s| i.garp_lower_prio_delay = value(d, s, whole_seconds)),
    ),
    (
        "garp_lower_prio_repeat",
        One(|d, i, s| i.garp_lower_prio_count = value(d, s, byte)),
    ),
    ("down_timer_adverts", Ignore(RFC)),
    ("timer_expired_backup", Ignore(NOT_TUNABLE)),
    ("thread_timer_expired", Ignore(NOT_TUNABLE)),
    ("lower_prio_no_advert", Ignore(RFC)),
    ("higher_prio_send_advert", Ignore(RFC)),
    ("owner_ignore_adverts", Ignore(RFC)),
];

const AUTHENTICATION: &Table<InstanceDraft> = &[
    (
        "auth_type",
        One(|d, i, s| match one(d, s) {
            Some("PASS") => i.auth_type = Some(s.loc.clone()),
            Some("AH") => d.error(
                &s.loc,
                "auth_type AH (IPsec AH) is not supported: change every router of the group to \
             auth_type PASS, or drop authentication (RFC 3768 removed it)",
            ),
            Some(other) => d.error(&s.loc, format!("auth_type {other}: write PASS")),
            None => {}
        }),
    ),
    (
        "auth_pass",
        One(|d, i, s| {
            if let Some(pass) = one(d, s) {
                i.auth_pass = Some((pass.to_string(), s.loc.clone()));
            }
        }),
    ),
];

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
/// The good entries, and whether any was refused.
fn vips(d: &mut Diags, s: &Stmt) -> (Vec<(Vip, Loc)>, bool) {
    let entries = entries(d, s);
    let good: Vec<(Vip, Loc)> = entries
        .iter()
        .filter_map(|e| Some((vip(d, e)?, e.loc.clone())))
        .collect();
    let bad = good.len() < entries.len();
    (good, bad)
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

fn track_script<T: Tracker>(d: &mut Diags, t: &mut T, s: &Stmt) {
    for e in entries(d, s) {
        if let Some(track) = track(d, e, true) {
            t.tracks().checks.push(track);
        }
    }
}

fn track_interface<T: Tracker>(d: &mut Diags, t: &mut T, s: &Stmt) {
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
trait Tracker {
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
fn notify(d: &mut Diags, s: &Stmt) -> Option<String> {
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

struct GroupDraft {
    loc: Loc,
    name: String,
    members: Vec<(String, Loc)>,
    notify: Notify,
    tracks: Tracks,
    /// `sync_group_tracking_weight`: members keep their weighted trackers.
    tracking_weight: bool,
}

fn vrrp_sync_group(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
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
    };
    walk(
        d,
        &format!("vrrp_sync_group {name}"),
        SYNC_GROUP,
        &mut group,
        items,
    );
    draft.groups.push(group);
}

const SYNC_GROUP: &Table<GroupDraft> = &[
    (
        "group",
        One(|d, g, s| {
            for e in entries(d, s) {
                g.members
                    .extend(e.words.iter().map(|w| (w.clone(), e.loc.clone())));
            }
        }),
    ),
    ("notify", One(|d, g, s| g.notify.any = notify(d, s))),
    (
        "notify_master",
        One(|d, g, s| g.notify.master = notify(d, s)),
    ),
    (
        "notify_backup",
        One(|d, g, s| g.notify.backup = notify(d, s)),
    ),
    ("notify_fault", One(|d, g, s| g.notify.fault = notify(d, s))),
    ("notify_stop", One(|d, g, s| g.notify.stop = notify(d, s))),
    ("track_script", Many(track_script)),
    ("track_interface", Many(track_interface)),
    (
        "sync_group_tracking_weight",
        One(|d, g, s| {
            if let Some(on) = flag(d, s) {
                g.tracking_weight = on;
            }
        }),
    ),
    ("track_file", Refuse(NO_TRACKER)),
    ("track_process", Refuse(NO_TRACKER)),
    ("track_bfd", Refuse(NO_TRACKER)),
    ("smtp_alert", Ignore(EMAIL)),
    ("notify_priority_changes", Ignore(FIFO)),
    (
        "global_tracking",
        Ignore("deprecated in keepalived; use sync_group_tracking_weight"),
    ),
];

fn vrrp_agent(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
    if let Some(items) = block(d, s) {
        walk(d, "vrrp_agent", AGENT, draft, items);
    }
}

const AGENT: &Table<Draft> = &[
    (
        "xdp",
        One(|d, g, s| {
            if let Some(mode) = value(d, s, |v| match v {
                "auto" => Ok(XdpMode::Auto),
                "native" => Ok(XdpMode::Native),
                "skb" => Ok(XdpMode::Skb),
                "off" => Ok(XdpMode::Off),
                _ => Err("write auto, native, skb or off".into()),
            }) {
                g.global.xdp = mode;
            }
        }),
    ),
    (
        "checksum",
        One(|d, g, s| {
            if let Some(form) = value(d, s, checksum_form) {
                set_checksum(d, g, s, form);
            }
        }),
    ),
    ("check", Many(check)),
];

fn check(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
    let Some((name, items)) = named(d, s) else {
        return;
    };
    let mut check = ScriptDraft::new(name);
    walk(d, &format!("check {name}"), CHECK, &mut check, items);
    let refused = check.refused;
    match check.finish() {
        Some(script) => draft.checks.push((script, s.loc.clone())),
        None => draft.broken(
            d,
            s,
            refused,
            "checks nothing: add process NAME, tcp ADDR:PORT or http URL",
        ),
    }
}

const CHECK: &Table<ScriptDraft> = &[
    (
        "process",
        One(|d, c, s| {
            let name = value(d, s, process);
            c.set(d, s, name.map(Probe::Process));
        }),
    ),
    (
        "tcp",
        One(|d, c, s| {
            let addr = value(d, s, socket_addr);
            c.set(d, s, addr.map(Probe::Tcp));
        }),
    ),
    (
        "http",
        One(|d, c, s| {
            let check = http(d, s);
            c.set(d, s, check);
        }),
    ),
    // The vrrp_script keywords for when and how the result counts, with their defaults.
    ("interval", One(script_interval)),
    ("timeout", One(script_timeout)),
    ("weight", One(script_weight)),
    ("rise", One(script_rise)),
    ("fall", One(script_fall)),
    ("init_fail", One(script_init_fail)),
];

/// `http http://ADDR[:PORT][/PATH] [status N] [host NAME]`.
fn http(d: &mut Diags, s: &Stmt) -> Option<Probe> {
    let usage = "write http http://ADDR[:PORT]/PATH [status N] [host NAME]";
    let Some((url, options)) = s.args().split_first() else {
        d.error(&s.loc, format!("http needs a URL: {usage}"));
        return None;
    };
    let (addr, path) = parse_at(d, &s.loc, "http", url, url_parts)?;
    let (mut status, mut host) = (200, None);
    for option in options.chunks(2) {
        match option {
            [k, v] if k == "status" => {
                status = parse_at(d, &s.loc, k, v, |v| uint(v, 100, 599))? as u16
            }
            [k, v] if k == "host" => host = Some(v.clone()),
            _ => {
                d.error(&s.loc, format!("http {}: {usage}", s.args().join(" ")));
                return None;
            }
        }
    }
    Some(Probe::Http {
        addr,
        host,
        path,
        status,
    })
}

fn set_checksum(d: &mut Diags, g: &mut Draft, s: &Stmt, form: ChecksumForm) {
    match &g.checksum {
        Some((other, first)) if *other != form => d.error(
            &s.loc,
            format!("the VRRPv3 checksum is already set otherwise at {first}: keep one"),
        ),
        _ => g.checksum = Some((form, s.loc.clone())),
    }
}

/// Runs `table`'s rules over `items`, the statements of the block described by `what`.
fn walk<T>(d: &mut Diags, what: &str, table: &Table<T>, target: &mut T, items: &[Stmt]) {
    let mut seen: HashMap<&str, &Loc> = HashMap::new();
    for s in items {
        let keyword = s.keyword();
        match table.iter().find(|(k, _)| *k == keyword).map(|(_, r)| r) {
            Some(One(handle)) => match seen.entry(keyword) {
                Entry::Occupied(first) => d.error(
                    &s.loc,
                    format!("{keyword} is already given at {}: keep one", first.get()),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(&s.loc);
                    handle(d, target, s);
                }
            },
            Some(Many(handle)) => handle(d, target, s),
            Some(Ignore(why)) => d.ignored(&s.loc, keyword, why),
            Some(Refuse(why)) => d.error(&s.loc, format!("{keyword} is not supported: {why}")),
            None => unknown(d, s, what, table),
        }
    }
}

fn unknown<T>(d: &mut Diags, s: &Stmt, what: &str, table: &Table<T>) {
    let keyword = s.keyword();
    let hint = if let Some(home) = home_of(keyword) {
        format!(": it belongs in {home}")
    } else if let Some(near) = closest(keyword, table.iter().map(|(k, _)| *k)) {
        format!(" (did you mean \"{near}\"?)")
    } else {
        ": check its spelling and the block it is in".to_string()
    };
    d.error(
        &s.loc,
        format!("unknown keyword \"{keyword}\" in {what}{hint}"),
    );
}

/// The block a keyword misplaced elsewhere belongs in.
fn home_of(keyword: &str) -> Option<&'static str> {
    fn has<T>(table: &Table<T>, keyword: &str) -> bool {
        table.iter().any(|(k, _)| *k == keyword)
    }
    [
        ("the top level", has(TOP, keyword)),
        ("global_defs", has(GLOBAL_DEFS, keyword)),
        ("a vrrp_instance", has(INSTANCE, keyword)),
        (
            "the authentication block of a vrrp_instance",
            has(AUTHENTICATION, keyword),
        ),
        ("a vrrp_script", has(SCRIPT, keyword)),
        ("a vrrp_sync_group", has(SYNC_GROUP, keyword)),
        ("the vrrp_agent block", has(AGENT, keyword)),
        ("a check of the vrrp_agent block", has(CHECK, keyword)),
    ]
    .into_iter()
    .find_map(|(home, yes)| yes.then_some(home))
}

/// ` (did you mean "NEAR"?)` when a candidate is close to `word`, else nothing.
fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|near| format!(" (did you mean \"{near}\"?)"))
        .unwrap_or_default()
}

/// The candidate a typo of `word` most likely meant: at most two edits away.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(n, c)| n <= 2 && n < word.len().min(c.len()) / 2 + 1)
        .min_by_key(|&(n, _)| n)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The statements of `KEYWORD { … }`.
fn block<'s>(d: &mut Diags, s: &'s Stmt) -> Option<&'s [Stmt]> {
    match (&s.block, s.args()) {
        (Some(items), []) => Some(items),
        (Some(_), _) => {
            d.error(
                &s.loc,
                format!("{} takes no value before its block", s.keyword()),
            );
            None
        }
        (None, _) => {
            d.error(
                &s.loc,
                format!("{0} needs a block: {0} {{ … }}", s.keyword()),
            );
            None
        }
    }
}

/// The name and statements of `KEYWORD NAME { … }`.
fn named<'s>(d: &mut Diags, s: &'s Stmt) -> Option<(&'s str, &'s [Stmt])> {
    match (s.args(), &s.block) {
        ([name], Some(items)) => Some((name, items)),
        ([name], None) => {
            d.error(
                &s.loc,
                format!(
                    "{} {name} needs a block: add '{{' after the name",
                    s.keyword()
                ),
            );
            None
        }
        _ => {
            d.error(
                &s.loc,
                format!("{0} takes one name: {0} NAME {{ … }}", s.keyword()),
            );
            None
        }
    }
}

/// The lines of a list block such as `virtual_ipaddress { … }`.
fn entries<'s>(d: &mut Diags, s: &'s Stmt) -> &'s [Stmt] {
    let items = block(d, s).unwrap_or_default();
    for e in items.iter().filter(|e| e.block.is_some()) {
        d.error(
            &e.loc,
            format!("{}: a list entry takes no block", e.keyword()),
        );
    }
    items
}

/// The value of `KEYWORD VALUE`.
fn one<'s>(d: &mut Diags, s: &'s Stmt) -> Option<&'s str> {
    match (s.args(), &s.block) {
        ([v], None) => Some(v),
        _ => {
            d.error(
                &s.loc,
                format!("{0} takes one value: {0} VALUE", s.keyword()),
            );
            None
        }
    }
}

/// `KEYWORD VALUE`, parsed; the error says what to write.
fn value<V>(d: &mut Diags, s: &Stmt, parse: impl Fn(&str) -> Result<V, String>) -> Option<V> {
    let v = one(d, s)?;
    parse_at(d, &s.loc, s.keyword(), v, parse)
}

/// `v` parsed; the error names it as `what v`.
fn parse_at<V>(
    d: &mut Diags,
    loc: &Loc,
    what: &str,
    v: &str,
    parse: impl Fn(&str) -> Result<V, String>,
) -> Option<V> {
    parse(v)
        .map_err(|e| d.error(loc, format!("{what} {v}: {e}")))
        .ok()
}

/// A keyword without value, as `nopreempt`.
fn none(d: &mut Diags, s: &Stmt) -> bool {
    let ok = s.args().is_empty() && s.block.is_none();
    if !ok {
        d.error(&s.loc, format!("{} takes no value", s.keyword()));
    }
    ok
}

/// keepalived's `KEYWORD [<BOOL>]`: on without a value.
fn flag(d: &mut Diags, s: &Stmt) -> Option<bool> {
    if s.args().is_empty() && s.block.is_none() {
        return Some(true);
    }
    value(d, s, |v| match v {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err("write on or off (or nothing, which means on)".into()),
    })
}

/// `v3_checksum_as_v2 [on|off]`: the VRRPv3 checksum form sent. keepalived before 2.2.8 (2.2.7
/// in Debian 12) does not know the keyword and drops adverts in that form, so say so.
fn checksum_as_v2(d: &mut Diags, s: &Stmt) -> Option<ChecksumForm> {
    if !flag(d, s)? {
        return Some(ChecksumForm::WithPseudoHeader);
    }
    d.warn(
        &s.loc,
        "v3_checksum_as_v2: keepalived before 2.2.8 (Debian 12 has 2.2.7) ignores this keyword \
         and drops adverts with this checksum; in a group with such routers leave it out",
    );
    Some(ChecksumForm::MessageOnly)
}

/// `USER [GROUP]`; keepalived's `:GROUP` (also set the user's supplementary groups) is read as
/// GROUP, with a warning.
fn user(d: &mut Diags, s: &Stmt) -> Option<ScriptUser> {
    let (user, group) = match (s.args(), &s.block) {
        ([user], None) => (user, None),
        ([user, group], None) => (user, Some(group)),
        _ => {
            d.error(
                &s.loc,
                format!(
                    "{} takes a user and optionally a group: USER [GROUP]",
                    s.keyword()
                ),
            );
            return None;
        }
    };
    let group = group.map(|g| match g.strip_prefix(':') {
        Some(bare) => {
            d.warn(
                &s.loc,
                format!(
                    "{}: the supplementary groups of {user} are not set (':'); scripts run with \
                     group {bare} only",
                    s.keyword()
                ),
            );
            bare.to_string()
        }
        None => g.clone(),
    });
    Some(ScriptUser {
        user: user.clone(),
        group: group.filter(|g| !g.is_empty()),
    })
}

fn garp_repeat(d: &mut Diags, s: &Stmt) -> Option<u8> {
    let n = value(d, s, |v| uint(v, 0, 255))?;
    if n == 0 {
        d.warn(
            &s.loc,
            format!("{} 0 means 1, as in keepalived", s.keyword()),
        );
        return Some(1);
    }
    Some(n as u8)
}

/// A count of 0 to 255.
fn byte(v: &str) -> Result<u8, String> {
    uint(v, 0, 255).map(|n| n as u8)
}

fn uint(v: &str, lo: u64, hi: u64) -> Result<u64, String> {
    v.parse()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("write a whole number from {lo} to {hi}"))
}

fn int(v: &str, lo: i64, hi: i64) -> Result<i64, String> {
    v.parse()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("write a whole number from {lo} to {hi}"))
}

fn version(v: &str) -> Result<Version, String> {
    match v {
        "2" => Ok(Version::V2),
        "3" => Ok(Version::V3),
        _ => Err("the VRRP version is 2 or 3".into()),
    }
}

/// keepalived's decimal seconds (`1`, `0.5`, `2.71828`), exact to the microsecond.
fn seconds(v: &str) -> Result<Duration, String> {
    let bad = || "write seconds, like 1 or 0.5".to_string();
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 6
    {
        return Err(bad());
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let micros: u32 = format!("{fraction:0<6}").parse().map_err(|_| bad())?;
    Ok(Duration::from_secs(secs) + Duration::from_micros(micros.into()))
}

/// keepalived's whole seconds, where 0 means off.
fn whole_seconds(v: &str) -> Result<Option<Duration>, String> {
    let n = uint(v, 0, u32::MAX.into())?;
    Ok((n > 0).then(|| Duration::from_secs(n)))
}

fn iface(v: &str) -> Result<String, String> {
    if v.is_empty() || v.len() > 15 || v.contains(['/', ':']) {
        return Err("not an interface name (at most 15 bytes, no '/' or ':')".into());
    }
    Ok(v.to_string())
}

fn ipv4(v: &str) -> Result<Ipv4Addr, String> {
    match v.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(ip),
        Ok(IpAddr::V6(_)) => Err(IPV6.into()),
        Err(_) => Err("not an IPv4 address".into()),
    }
}

/// `ADDR[/LEN]`, /32 by default as in keepalived.
fn cidr(v: &str) -> Result<(Ipv4Addr, u8), String> {
    let (addr, len) = v.split_once('/').unwrap_or((v, "32"));
    let addr = ipv4(addr)?;
    let len = uint(len, 1, 32).map_err(|_| format!("prefix length {len}: use 1 to 32"))?;
    Ok((addr, len as u8))
}

/// rtnetlink scopes by name (iproute2's rt_scopes) or number.
fn scope(v: &str) -> Result<u8, String> {
    match v {
        "global" => Ok(0),
        "site" => Ok(200),
        "link" => Ok(253),
        "host" => Ok(254),
        "nowhere" => Ok(255),
        _ => uint(v, 0, 255)
            .map(|n| n as u8)
            .map_err(|_| "write global, site, link, host, nowhere or 0 to 255".into()),
    }
}

/// `brd ADDR`, `+` (all host bits set, the default) or `-` (all clear), as `ip addr add`.
fn broadcast(v: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<Option<Ipv4Addr>, String> {
    match v {
        "+" => Ok(None),
        "-" if prefix_len <= 30 => Ok(Some(Ipv4Addr::from(
            u32::from(addr) & (u32::MAX << (32 - prefix_len)),
        ))),
        "-" => Err("a /31 or /32 has no broadcast address".into()),
        _ => ipv4(v).map(Some),
    }
}

/// keepalived's `vrrp_mcast_group4` / `mcast_dst_ip`: only the IANA group is spoken here.
fn vrrp_group(v: &str) -> Result<(), String> {
    match ipv4(v)? {
        ip if ip == Ipv4Addr::new(224, 0, 0, 18) => Ok(()),
        _ => Err(
            "this agent sends adverts to 224.0.0.18 (or unicast peers) only; remove it, \
                  and keep the other routers on 224.0.0.18"
                .into(),
        ),
    }
}

/// A process name as the kernel keeps it (`/proc/PID/comm`, what `ps -C` and `pidof` match).
fn process(v: &str) -> Result<String, String> {
    if v.is_empty() || v.len() > 15 || v.contains('/') {
        return Err(
            "write the process name as ps -C matches it (at most 15 bytes, no path)".into(),
        );
    }
    Ok(v.to_string())
}

fn socket_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| "write ADDR:PORT with an IP address, like 127.0.0.1:80 or [::1]:80".into())
}

/// `http://ADDR[:PORT][/PATH]`, the address an IP (the `host` option sets the Host header).
fn url_parts(v: &str) -> Result<(SocketAddr, String), String> {
    let rest = v.strip_prefix("http://").ok_or_else(|| {
        "write http://ADDR[:PORT]/PATH (plain HTTP; https is not supported)".to_string()
    })?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let bare = authority.trim_start_matches('[').trim_end_matches(']');
    let addr = authority
        .parse()
        .or_else(|_| bare.parse().map(|ip| SocketAddr::new(ip, 80)))
        .map_err(|_| {
            format!("{authority}: write an IP address, with the name in host NAME if needed")
        })?;
    Ok((addr, path.to_string()))
}
