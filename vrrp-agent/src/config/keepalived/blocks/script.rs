//! `vrrp_script`, and the in-process `check` of the vrrp_agent block, which shares its keywords.
use std::time::Duration;

use super::{
    engine::{
        ignore_rest, lenient_at, lenient_number, named, none, parse_at, value, walk, One, Table,
    },
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
    read(
        d,
        draft,
        s,
        SCRIPT,
        "has no script: add script \"/path/to/check args\"",
    );
}

/// The vrrp_agent block's `check NAME { … }`.
pub(super) fn check(d: &mut Diags, draft: &mut Draft, s: &Stmt) {
    let missing = "checks nothing: add process NAME, tcp ADDR:PORT or http URL";
    read(d, draft, s, CHECK, missing);
}

/// `KEYWORD NAME { … }` read with `table` into the draft's checks; `missing` says what to add
/// when it says nothing the check can do.
fn read(d: &mut Diags, draft: &mut Draft, s: &Stmt, table: &Table<ScriptDraft>, missing: &str) {
    let Some((name, items)) = named(d, s) else {
        return;
    };
    let mut script = ScriptDraft::new(name);
    let what = format!("{} {name}", s.keyword());
    walk(d, &what, &[table, TIMING], &mut script, items);
    let refused = script.refused;
    match script.finish() {
        Some(script) => draft.checks.push((script, s.loc.clone())),
        None => draft.broken(d, s, refused, missing),
    }
}

#[rustfmt::skip]
pub(super) const SCRIPT: &Table<ScriptDraft> = &[
    ("script", One(script)),
    ("user", One(|d, sd, s| sd.script.user = user(d, s))),
];

/// When and how the result of a vrrp_script or a check counts, with keepalived's defaults.
#[rustfmt::skip]
pub(super) const TIMING: &Table<ScriptDraft> = &[
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

// The TIMING table's handlers.

fn script_interval(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    if let Some(t) = script_seconds(d, s) {
        sd.script.interval = t;
    }
}

fn script_timeout(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    sd.timeout = script_seconds(d, s);
}

fn script_rise(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    sd.script.rise = script_count(d, s);
}

fn script_fall(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    sd.script.fall = script_count(d, s);
}

fn script_init_fail(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    sd.script.init_fail = none(d, s);
}

/// `rise` and `fall`: at least 1, and at most keepalived's int; anything else is 1.
fn script_count(d: &mut Diags, s: &Stmt) -> u32 {
    let n = lenient_number(d, s, "1 is used", |v| uint(v, 1, i32::MAX as u64));
    n.map_or(1, |n| n as u32)
}

/// `weight N [reverse]`; keepalived logs a weight past ±253 but uses it, which can take the
/// priority out of its range: the agent uses ±253.
fn script_weight(d: &mut Diags, sd: &mut ScriptDraft, s: &Stmt) {
    let Some((weight, more)) = s.args().split_first() else {
        return d.error(
            &s.loc,
            "weight takes a number from -253 to 253, then optionally reverse",
        );
    };
    let any = |v: &str| int(v, i32::MIN.into(), i32::MAX.into());
    let Some(w) = lenient_at(
        d,
        &s.loc,
        "weight",
        weight.as_str(),
        "the line is ignored",
        any,
    ) else {
        return;
    };
    let clamped = w.clamp(-253, 253);
    if clamped != w {
        d.warn(
            &s.loc,
            format!(
                "weight {w}: keepalived's range is -253 to 253; it warns and uses {w}, which \
                 can take the priority out of its range; this agent uses {clamped}: write that"
            ),
        );
    }
    sd.script.weight = clamped as i32;
    sd.script.reverse = match more.first() {
        Some(r) if r == "reverse" => true,
        Some(other) => {
            d.warn(
                &s.loc,
                format!(
                    "weight {weight} {other}: unknown weight option, ignored as keepalived does; \
                     write weight N reverse, or weight N"
                ),
            );
            false
        }
        None => false,
    };
    ignore_rest(d, &s.loc, "weight", more.get(1..).unwrap_or_default());
}

/// keepalived's script interval and timeout: 0 means 1 second, with a warning. Fractions are
/// kept, as keepalived 2.4 does (2.2.7 reads whole seconds).
fn script_seconds(d: &mut Diags, s: &Stmt) -> Option<Duration> {
    let t = lenient_number(d, s, "the line is ignored", seconds)?;
    if t.is_zero() {
        d.warn(
            &s.loc,
            format!("{} 0 means 1 second, as in keepalived", s.keyword()),
        );
        return Some(Duration::from_secs(1));
    }
    Some(t)
}

#[rustfmt::skip]
pub(super) const CHECK: &Table<ScriptDraft> = &[
    ("process", One(|d, c, s| c.set(value(d, s, process).map(Probe::Process), d, s))),
    ("tcp", One(|d, c, s| c.set(value(d, s, socket_addr).map(Probe::Tcp), d, s))),
    ("http", One(|d, c, s| c.set(http(d, s), d, s))),
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
