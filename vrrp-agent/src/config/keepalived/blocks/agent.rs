//! `vrrp_agent`, our extension: XDP mode, VRRPv3 checksum, in-process checks.
use super::{
    engine::{block, value, walk, Many, One, Table},
    global::set_checksum,
    script::check,
    Diags, Draft, Stmt,
};
use crate::config::{checksum_form, XdpMode};

pub(super) fn vrrp_agent(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
    if let Some(items) = block(d, s) {
        walk(d, "vrrp_agent", AGENT, draft, items);
    }
}

pub(super) const AGENT: &Table<Draft> = &[
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
