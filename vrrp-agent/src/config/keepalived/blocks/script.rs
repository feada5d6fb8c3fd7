//! `vrrp_script`, and the in-process `check` of the vrrp_agent block, which shares its keywords.
use std::time::Duration;

use super::{
    engine::{named, none, parse_at, value, walk, One, Table},
    global::user,
    values::{int, process, seconds, socket_addr, uint, url_parts},
    Diags, Draft, Loc, Stmt,
};
use crate::config::{Check, Probe};

/// A vrrp_script or an in-process check, before its timeout defaults to its interval.
pub(super) struct ScriptDraft {
    script: Check,
    check: Option<(Probe, Loc)>,
    /// What the check does was given but refused: no need to say it is missing.
    refused: bool,
    timeout: Option<Duration>,
}

pub(super) fn vrrp_script(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
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

#[rustfmt::skip]
pub(super) const SCRIPT: &Table<ScriptDraft> = &[
    ("script", One(script)),
    ("user", One(|d, sd, s| sd.script.user = user(d, s))),
    ("interval", One(script_interval)),
    ("timeout", One(script_timeout)),
    ("weight", One(script_weight)),
    ("rise", One(script_rise)),
    ("fall", One(script_fall)),
    ("init_fail", One(script_init_fail)),
];

fn script(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
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
    sd.set(line, d, s);
}

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

    /// What the check does, from `s`; `None` when the statement was refused (and said so).
    fn set(&mut self, check: Option<Probe>, d: &mut Diags, s: &Stmt) {
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

pub(super) fn check(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
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

#[rustfmt::skip]
pub(super) const CHECK: &Table<ScriptDraft> = &[
    ("process", One(|d, c, s| c.set(value(d, s, process).map(Probe::Process), d, s))),
    ("tcp", One(|d, c, s| c.set(value(d, s, socket_addr).map(Probe::Tcp), d, s))),
    ("http", One(|d, c, s| c.set(http(d, s), d, s))),
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
