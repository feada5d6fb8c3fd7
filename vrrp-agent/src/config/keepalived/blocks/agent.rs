//! `vrrp_agent`, our extension: XDP mode, VRRPv3 checksum, in-process checks, the liveness
//! channel's defaults.
use std::time::Duration;

use super::{
    engine::{block, set, value, walk, Many, One, Table},
    global::set_checksum,
    script::check,
    values::uint,
    Diags, Draft, Loc, Stmt,
};
use crate::config::{checksum_form, cli::parse_duration, XdpMode};

/// `liveness_interval` and `liveness_multiplier` as written, in vrrp_agent or an instance.
#[derive(Clone, Default)]
pub(super) struct LivenessDraft {
    pub(super) interval: Option<(Duration, Loc)>,
    pub(super) multiplier: Option<(u8, Loc)>,
}

/// The keywords both blocks share.
pub(super) fn liveness_interval(d: &mut Diags, l: &mut LivenessDraft, s: &Stmt) {
    if let Some(t) = value(d, s, parse_duration) {
        l.interval = Some((t, s.loc.clone()));
    }
}

pub(super) fn liveness_multiplier(d: &mut Diags, l: &mut LivenessDraft, s: &Stmt) {
    if let Some(n) = value(d, s, |v| uint(v, 0, 255)) {
        l.multiplier = Some((n as u8, s.loc.clone()));
    }
}

pub(super) fn vrrp_agent(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
    if let Some(items) = block(d, s) {
        walk(d, "vrrp_agent", &[AGENT], draft, items);
    }
}

#[rustfmt::skip]
pub(super) const AGENT: &Table<Draft> = &[
    ("xdp", One(|d, g, s| set(&mut g.global.xdp, value(d, s, xdp_mode)))),
    ("checksum", One(checksum)),
    ("check", Many(check)),
    ("liveness_interval", One(|d, g, s| liveness_interval(d, &mut g.liveness, s))),
    ("liveness_multiplier", One(|d, g, s| liveness_multiplier(d, &mut g.liveness, s))),
    ("metrics_listen", One(|d, g, s| set(&mut g.global.metrics_listen, value(d, s, |v| v.parse::<std::net::SocketAddr>().map_err(|_| "write ADDR:PORT, e.g. 127.0.0.1:9650".to_owned())).map(Some)))),
    ("max_adopted_interval", One(|d, g, s| set(&mut g.max_adopted_interval, value(d, s, parse_duration).map(Some)))),
];

fn xdp_mode(v: &str) -> Result<XdpMode, String> {
    match v {
        "auto" => Ok(XdpMode::Auto),
        "native" => Ok(XdpMode::Native),
        "skb" => Ok(XdpMode::Skb),
        "tc" => Ok(XdpMode::Tc),
        "off" => Ok(XdpMode::Off),
        _ => Err("write auto, native, skb, tc or off".into()),
    }
}

fn checksum(d: &mut Diags, g: &mut Draft, s: &Stmt) {
    if let Some(form) = value(d, s, checksum_form) {
        set_checksum(d, g, s, form);
    }
}
