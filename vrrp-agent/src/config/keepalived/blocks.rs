//! What each keepalived keyword does here (the tables), and the model built from the statements.
use std::time::Duration;

use vrrp_common::{ChecksumForm, Version};

use super::{lex::Stmt, Diags, Loc, Places};
use crate::config::{Check, Config, Garp, Global};

mod agent;
mod engine;
mod global;
mod instance;
mod resolve;
mod script;
mod sync_group;
mod values;

use agent::{vrrp_agent, LivenessDraft};
use engine::{walk, Ignore, Many, Refuse, Table};
use global::global_defs;
use instance::{vrrp_instance, InstanceDraft};
use script::vrrp_script;
use sync_group::{vrrp_sync_group, GroupDraft};

/// The configuration `stmts` describe, and where its parts are; errors and warnings go to `d`.
pub fn config(stmts: &[Stmt], d: &mut Diags) -> (Config, Places) {
    let mut draft = Draft::default();
    walk(d, "the top level", &[TOP], &mut draft, stmts);
    draft.resolve(d)
}

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
const STRICT: &str = "in keepalived it also turns on no_accept and refuses unicast peers, \
                      authentication and preempt_delay; write no_accept in the instances that \
                      need it and remove vrrp_strict";
const NO_TRACKER: &str = "use a vrrp_script, or an in-process check in the vrrp_agent block \
                          (check NAME { process NAME }), in track_script";

const GARP_GROUP: &str =
    "per-interface gratuitous ARP pacing; vrrp_garp_interval in global_defs paces all";
const NAMESPACE: &str =
    "run the agent in the namespace instead: ip netns exec NAME vrrp-agent -f FILE";

#[rustfmt::skip]
const TOP: &Table<Draft> = &[
    ("global_defs", Many(global_defs)),
    ("vrrp_script", Many(vrrp_script)),
    ("vrrp_instance", Many(vrrp_instance)),
    ("vrrp_sync_group", Many(vrrp_sync_group)),
    ("vrrp_agent", Many(vrrp_agent)),
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
    ("garp_group", Ignore(GARP_GROUP)),
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
    ("net_namespace", Refuse(NAMESPACE)),
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
    /// `liveness_interval` / `liveness_multiplier` in vrrp_agent: every instance's default.
    liveness: LivenessDraft,
    /// `max_adopted_interval` in vrrp_agent.
    max_adopted_interval: Option<Duration>,
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
