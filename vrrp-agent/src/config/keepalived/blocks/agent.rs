//! `vrrp_agent`, our extension: XDP mode, VRRPv3 checksum, in-process checks.
use super::{
    engine::{block, set, value, walk, Many, One, Table},
    global::set_checksum,
    script::check,
    Diags, Draft, Stmt,
};
use crate::config::{checksum_form, XdpMode};

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
