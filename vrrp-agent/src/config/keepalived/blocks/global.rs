//! `global_defs`, and the readers of its keywords that instances and scripts take too.
use std::{net::IpAddr, time::Duration};

use vrrp_common::wire::{VRRP_MULTICAST_V4, VRRP_MULTICAST_V6};

use vrrp_common::ChecksumForm;

use super::{
    engine::{
        block, flag, lenient, lenient_number, lenient_seconds, one, set, switch, walk, Ignore, One,
        Table,
    },
    values::{int, uint, version, whole_seconds},
    Diags, Draft, Stmt, BFD, EMAIL, FIFO, FIREWALL, LVS, NOT_TUNABLE, RFC, SNMP, STRICT, TUNING,
    VMAC,
};
use crate::config::ScriptUser;

pub(super) fn global_defs(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
    if let Some(items) = block(d, s) {
        walk(d, "global_defs", &[GLOBAL_DEFS], draft, items);
    }
}

#[rustfmt::skip]
pub(super) const GLOBAL_DEFS: &Table<Draft> = &[
    ("router_id", One(|d, g, s| g.global.router_id = one(d, s).map(str::to_string))),
    ("vrrp_version", One(|d, g, s| g.version = lenient_number(d, s, VERSION, version).or(g.version))),
    ("vrrp_garp_interval", One(|d, g, s| set(&mut g.garp.interval, any_seconds(d, s)))),
    ("vrrp_gna_interval", One(|d, g, s| set(&mut g.garp.na_interval, any_seconds(d, s)))),
    ("vrrp_mcast_group6", One(|d, _, s| mcast_group(d, s))),
    ("vrrp_skip_check_adv_addr", One(|d, g, s| g.global.skip_check_adv_addr = switch(d, s))),
    ("script_user", One(|d, g, s| g.global.script_user = user(d, s))),
    ("enable_script_security", One(|d, g, s| g.global.script_security = switch(d, s))),
    ("vrrp_rt_priority", One(rt_priority)),
    ("vrrp_startup_delay", One(|d, g, s| set(&mut g.global.startup_delay, any_seconds(d, s)))),
    ("vrrp_garp_master_delay", One(|d, g, s| set(&mut g.garp.repeat_after, garp_delay(d, s)))),
    ("vrrp_garp_master_repeat", One(|d, g, s| set(&mut g.garp.count, garp_repeat(d, s)))),
    ("vrrp_garp_master_refresh", One(|d, g, s| set(&mut g.garp.refresh, garp_delay(d, s)))),
    ("vrrp_min_garp", One(min_garp)),
    ("v3_checksum_as_v2", One(global_checksum_as_v2)),
    ("vrrp_strict", One(|d, _, s| vrrp_strict(d, s))),
    // Unicast adverts are only accepted from the unicast peers, always.
    ("vrrp_check_unicast_src", One(|d, _, s| _ = switch(d, s))),
    ("vrrp_mcast_group4", One(|d, _, s| mcast_group(d, s))),
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
    ("vrrp_garp_lower_prio_delay", One(|d, g, s| set(&mut g.lower_prio_delay, garp_delay(d, s).map(Some)))),
    ("vrrp_garp_lower_prio_repeat", One(|d, g, s| set(&mut g.lower_prio_count, garp_count(d, s).map(Some)))),
    ("vrrp_down_timer_adverts", Ignore(RFC)),
    ("vrrp_lower_prio_no_advert", Ignore(RFC)),
    ("vrrp_higher_prio_send_advert", Ignore(RFC)),
    ("vrrp_owner_ignore_adverts", Ignore(RFC)),
    ("log_unknown_vrids", Ignore(NOT_TUNABLE)),
    ("vrrp_delay_after_boot", Ignore("use vrrp_startup_delay")),
    // The agent always runs an instance whose interface is missing in FAULT until it appears.
    ("dynamic_interfaces", One(|_, _, _| {})),
    ("default_interface", Ignore("give every instance its interface")),
    ("disable_local_igmp", Ignore(NOT_TUNABLE)),
    ("startup_script", Ignore("run it from the service manager, e.g. systemd ExecStartPre=")),
    ("startup_script_timeout", Ignore(TUNING)),
    ("shutdown_script", Ignore("run it from the service manager, e.g. systemd ExecStopPost=")),
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

const VERSION: &str = "the line is ignored (instances without version speak VRRPv2)";

/// keepalived clamps to SCHED_RR's 1 to 99; 0 is ours, for normal scheduling.
fn rt_priority(d: &mut Diags, g: &mut Draft, s: &Stmt) {
    let Some(p) = lenient_number(d, s, "the line is ignored", |v| int(v, i64::MIN, i64::MAX))
    else {
        return;
    };
    let clamped = p.clamp(0, 99);
    if clamped != p {
        d.warn(
            &s.loc,
            format!(
                "vrrp_rt_priority {p}: SCHED_RR priorities go to 99; {clamped} is used, as \
                 keepalived does (0 is normal scheduling here)"
            ),
        );
    }
    g.global.rt_priority = clamped as u8;
}

/// Decimal seconds, any number of them.
fn any_seconds(d: &mut Diags, s: &Stmt) -> Option<Duration> {
    lenient_seconds(d, s, Duration::ZERO..=Duration::MAX, "the line is ignored")
}

/// keepalived: one gratuitous ARP per VIP, and no second burst.
fn min_garp(d: &mut Diags, g: &mut Draft, s: &Stmt) {
    if flag(d, s) == Some(true) {
        g.garp.count = 1;
        g.garp.repeat_after = None;
    }
}

fn global_checksum_as_v2(d: &mut Diags, g: &mut Draft, s: &Stmt) {
    if let Some(form) = checksum_as_v2(d, s) {
        set_checksum(d, g, s, form);
    }
}

/// keepalived 2.2.7 turns vrrp_strict on whatever follows it, `off` too: refused either way.
fn vrrp_strict(d: &mut Diags, s: &Stmt) {
    let off = match s.args() {
        [] => String::new(),
        [v, ..] => format!(
            " (keepalived 2.2.7 ignores \"{v}\" and turns it on: remove the line to leave it off)"
        ),
    };
    d.error(
        &s.loc,
        format!("vrrp_strict is not supported{off}: {STRICT}"),
    );
}

/// `strict_mode [on|off]`: refused when on.
pub(super) fn strict_mode(d: &mut Diags, s: &Stmt) {
    if flag(d, s) == Some(true) {
        d.error(&s.loc, format!("strict_mode is not supported: {STRICT}"));
    }
}

/// `vrrp_mcast_group4` / `vrrp_mcast_group6` / `mcast_dst_ip`: keepalived skips what is not a
/// multicast address and sends to 224.0.0.18 (ff02::12); only those groups are spoken here.
pub(super) fn mcast_group(d: &mut Diags, s: &Stmt) {
    let multicast = |v: &str| match v.parse::<IpAddr>() {
        Ok(ip) if ip.is_multicast() => Ok(ip),
        _ => Err("not a multicast address".to_string()),
    };
    let then = "skipped: adverts go to 224.0.0.18 (ff02::12)";
    let vrrp = [IpAddr::V4(VRRP_MULTICAST_V4), IpAddr::V6(VRRP_MULTICAST_V6)];
    match lenient(d, s, then, multicast) {
        Some(ip) if !vrrp.contains(&ip) => d.error(
            &s.loc,
            format!(
                "{} {ip}: this agent sends adverts to 224.0.0.18 / ff02::12 (or unicast peers) \
                 only; remove it, and keep the other routers on those groups",
                s.keyword()
            ),
        ),
        _ => {}
    }
}

pub(super) fn set_checksum(d: &mut Diags, g: &mut Draft, s: &Stmt, form: ChecksumForm) {
    match &g.checksum {
        Some((other, first)) if *other != form => d.error(
            &s.loc,
            format!("the VRRPv3 checksum is already set otherwise at {first}: keep one"),
        ),
        _ => g.checksum = Some((form, s.loc.clone())),
    }
}

/// `v3_checksum_as_v2 [on|off]`: the VRRPv3 checksum form sent. keepalived before 2.2.8 (2.2.7
/// in Debian 12) does not know the keyword and drops adverts in that form, so say so.
pub(super) fn checksum_as_v2(d: &mut Diags, s: &Stmt) -> Option<ChecksumForm> {
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
pub(super) fn user(d: &mut Diags, s: &Stmt) -> Option<ScriptUser> {
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

/// `garp_master_repeat`: keepalived takes any count and 0 as 1; the agent sends at most 255.
pub(super) fn garp_repeat(d: &mut Diags, s: &Stmt) -> Option<u8> {
    match garp_count(d, s)? {
        0 => {
            d.warn(
                &s.loc,
                format!("{} 0 means 1, as in keepalived", s.keyword()),
            );
            Some(1)
        }
        n => Some(n),
    }
}

/// A gratuitous ARP count: keepalived's is unsigned, this agent's at most 255.
pub(super) fn garp_count(d: &mut Diags, s: &Stmt) -> Option<u8> {
    let n = lenient_number(d, s, "the line is ignored", |v| uint(v, 0, u32::MAX.into()))?;
    if n > 255 {
        d.warn(
            &s.loc,
            format!(
                "{} {n}: this agent sends at most 255 gratuitous ARPs a burst; 255 it is",
                s.keyword()
            ),
        );
    }
    Some(n.min(255) as u8)
}

/// keepalived's whole seconds, where 0 means off.
pub(super) fn garp_delay(d: &mut Diags, s: &Stmt) -> Option<Option<Duration>> {
    lenient_number(d, s, "the line is ignored", whole_seconds)
}
