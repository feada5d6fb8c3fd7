//! How a block's statements meet its table: the rules, the walk, the hints for unknown keywords,
//! and the readers of a statement's shape (a block, a name, one value, a flag).
use std::{
    collections::{hash_map::Entry, HashMap},
    fmt,
    ops::RangeInclusive,
    time::Duration,
};

use super::{
    agent::AGENT,
    global::GLOBAL_DEFS,
    instance::{AUTHENTICATION, INSTANCE},
    script::{CHECK, SCRIPT, TIMING},
    sync_group::SYNC_GROUP,
    values::seconds,
    Diags, Loc, Stmt, TOP,
};

pub(super) type Handler<T> = fn(&mut Diags, &mut T, &Stmt);

pub(super) enum Rule<T> {
    /// Read into the model; given again, the last one counts, as in keepalived, with a warning.
    One(Handler<T>),
    /// Read into the model; given again, the first one counts, as in keepalived, with a warning.
    First(Handler<T>),
    /// Read into the model; may come again (each adds to a list).
    Many(Handler<T>),
    /// keepalived's, but changes nothing this agent does: one warning, saying why.
    Ignore(&'static str),
    /// keepalived's, and running without it would not do what keepalived did: an error, saying
    /// what to write instead.
    Refuse(&'static str),
}

pub(super) use Rule::{First, Ignore, Many, One, Refuse};

pub(super) type Table<T> = [(&'static str, Rule<T>)];

/// Runs the rules of `tables` over `items`, the statements of the block described by `what`.
pub(super) fn walk<T>(
    d: &mut Diags,
    what: &str,
    tables: &[&Table<T>],
    target: &mut T,
    items: &[Stmt],
) {
    let mut seen: HashMap<&str, &Loc> = HashMap::new();
    for s in items {
        let keyword = s.keyword();
        let rows = tables.iter().flat_map(|t| t.iter());
        match rows.clone().find(|(k, _)| *k == keyword).map(|(_, r)| r) {
            Some(One(handle)) => {
                if let Some(first) = seen.insert(keyword, &s.loc) {
                    d.warn(
                        &s.loc,
                        format!(
                            "{keyword} is already given at {first}: this one counts, as in \
                             keepalived; keep one"
                        ),
                    );
                }
                handle(d, target, s);
            }
            Some(First(handle)) => match seen.entry(keyword) {
                Entry::Occupied(first) => d.warn(
                    &s.loc,
                    format!(
                        "{keyword} is already given at {}: this one is ignored, as keepalived \
                         does; keep one",
                        first.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(&s.loc);
                    handle(d, target, s);
                }
            },
            Some(Many(handle)) => handle(d, target, s),
            Some(Ignore(why)) => d.ignored(&s.loc, keyword, why),
            Some(Refuse(why)) => d.error(&s.loc, format!("{keyword} is not supported: {why}")),
            None => unknown(d, s, what, rows.map(|(k, _)| *k)),
        }
    }
}

fn unknown<'a>(d: &mut Diags, s: &Stmt, what: &str, keywords: impl Iterator<Item = &'a str>) {
    let keyword = s.keyword();
    let hint = if let Some(home) = home_of(keyword) {
        format!(": it belongs in {home}")
    } else if let Some(near) = closest(keyword, keywords) {
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
        (
            "a vrrp_script",
            has(SCRIPT, keyword) || has(TIMING, keyword),
        ),
        ("a vrrp_sync_group", has(SYNC_GROUP, keyword)),
        ("the vrrp_agent block", has(AGENT, keyword)),
        ("a check of the vrrp_agent block", has(CHECK, keyword)),
    ]
    .into_iter()
    .find_map(|(home, yes)| yes.then_some(home))
}

/// ` (did you mean "NEAR"?)` when a candidate is close to `word`, else nothing.
pub(super) fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|near| format!(" (did you mean \"{near}\"?)"))
        .unwrap_or_default()
}

/// The candidate a typo of `word` most likely meant: at most two edits away.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(n, c)| n <= 2 && n < word.len().min(c.len()) / 2 + 1)
        // Ties alphabetically, so that the hint does not depend on a HashMap's order.
        .min_by_key(|&(n, c)| (n, c))
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
pub(super) fn block<'s>(d: &mut Diags, s: &'s Stmt) -> Option<&'s [Stmt]> {
    match (&s.block, s.args()) {
        (Some(items), rest) => {
            ignore_rest(d, &s.loc, s.keyword(), rest);
            Some(items)
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
pub(super) fn named<'s>(d: &mut Diags, s: &'s Stmt) -> Option<(&'s str, &'s [Stmt])> {
    match (s.args(), &s.block) {
        ([name, rest @ ..], Some(items)) => {
            ignore_rest(d, &s.loc, &format!("{} {name}", s.keyword()), rest);
            Some((name, items))
        }
        ([name, ..], None) => {
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
pub(super) fn entries<'s>(d: &mut Diags, s: &'s Stmt) -> &'s [Stmt] {
    let items = block(d, s).unwrap_or_default();
    for e in items.iter().filter(|e| e.block.is_some()) {
        d.error(
            &e.loc,
            format!("{}: a list entry takes no block", e.keyword()),
        );
    }
    items
}

/// The value of `KEYWORD VALUE`; words after it are ignored, as keepalived does.
pub(super) fn one<'s>(d: &mut Diags, s: &'s Stmt) -> Option<&'s str> {
    match (s.args(), &s.block) {
        ([v, rest @ ..], None) => {
            ignore_rest(d, &s.loc, s.keyword(), rest);
            Some(v)
        }
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
pub(super) fn value<V>(
    d: &mut Diags,
    s: &Stmt,
    parse: impl Fn(&str) -> Result<V, String>,
) -> Option<V> {
    let v = one(d, s)?;
    parse_at(d, &s.loc, s.keyword(), v, parse)
}

/// `v` parsed; the error names it as `what v`.
pub(super) fn parse_at<V>(
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

/// Stores a value that was read; keeps the field as it was when the statement was refused.
pub(super) fn set<V>(field: &mut V, value: Option<V>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// `KEYWORD VALUE`, where keepalived logs a bad value and runs on: a bad value is a warning that
/// says what to write and what keepalived does instead (`then`, such as "1 is used"), and `None`.
pub(super) fn lenient<V>(
    d: &mut Diags,
    s: &Stmt,
    then: &str,
    parse: impl Fn(&str) -> Result<V, String>,
) -> Option<V> {
    let v = one(d, s)?;
    lenient_at(d, &s.loc, s.keyword(), v, then, parse)
}

/// [`lenient`], for the numbers keepalived reads with strtol(3): digits with something after
/// them count as the digits (`2s` is 2), with a warning.
pub(super) fn lenient_number<V>(
    d: &mut Diags,
    s: &Stmt,
    then: &str,
    parse: impl Fn(&str) -> Result<V, String>,
) -> Option<V> {
    let v = one(d, s)?;
    let unsigned = v.strip_prefix(['-', '+']).unwrap_or(v);
    let n = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    let digits = &v[..v.len() - unsigned.len() + n];
    match (parse(v), parse(digits)) {
        (Ok(number), _) => Some(number),
        (Err(_), Ok(number)) if n > 0 => {
            d.warn(
                &s.loc,
                format!(
                    "{0} {v}: not a number; keepalived reads {digits}, and so does this agent: \
                     write {0} {digits}",
                    s.keyword()
                ),
            );
            Some(number)
        }
        _ => lenient_at(d, &s.loc, s.keyword(), v, then, parse),
    }
}

/// [`lenient`] decimal seconds within `range`; more than 6 decimals are rounded to the
/// microsecond, as keepalived does, with a warning.
pub(super) fn lenient_seconds(
    d: &mut Diags,
    s: &Stmt,
    range: RangeInclusive<Duration>,
    then: &str,
) -> Option<Duration> {
    let v = one(d, s)?;
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    let cut = (fraction.len() > 6 && fraction.bytes().all(|b| b.is_ascii_digit()))
        .then(|| seconds(&format!("{whole}.{}", &fraction[..6])).ok())
        .flatten();
    let t = match cut {
        Some(cut) => {
            let up = fraction.as_bytes()[6] >= b'5';
            let rounded = cut + Duration::from_micros(up.into());
            d.warn(
                &s.loc,
                format!(
                    "{} {v}: more than 6 decimals; keepalived rounds it to {}, and so does this \
                     agent",
                    s.keyword(),
                    rounded.as_secs_f64()
                ),
            );
            rounded
        }
        None => lenient_at(d, &s.loc, s.keyword(), v, then, seconds)?,
    };
    let (lo, hi) = (range.start().as_secs_f64(), range.end().as_secs_f64());
    let within = |_| {
        range
            .contains(&t)
            .then_some(t)
            .ok_or_else(|| format!("keepalived takes {lo} to {hi} seconds"))
    };
    lenient_at(d, &s.loc, s.keyword(), v, then, within)
}

/// `v` parsed; when it cannot be, a warning that names it as `what v` and says what keepalived
/// does instead (`then`).
pub(super) fn lenient_at<W: fmt::Display + Copy, V>(
    d: &mut Diags,
    loc: &Loc,
    what: &str,
    v: W,
    then: &str,
    parse: impl Fn(W) -> Result<V, String>,
) -> Option<V> {
    parse(v)
        .map_err(|e| d.warn(loc, format!("{what} {v}: {e}; {then}, as keepalived does")))
        .ok()
}

/// A keyword without value, as `nopreempt`; words after it are ignored, as keepalived does.
pub(super) fn none(d: &mut Diags, s: &Stmt) -> bool {
    if s.block.is_some() {
        d.error(&s.loc, format!("{} takes no value", s.keyword()));
        return false;
    }
    ignore_rest(d, &s.loc, s.keyword(), s.args());
    true
}

/// A keyword that keepalived 2.2.7 turns on whatever follows it, `off` too.
pub(super) fn switch(d: &mut Diags, s: &Stmt) -> bool {
    match s.args() {
        [off, ..] if s.block.is_none() && parse_bool(off) == Ok(false) => {
            d.warn(
                &s.loc,
                format!(
                    "{0} {off}: keepalived 2.2.7 ignores \"{off}\" and turns {0} on, and so \
                     does this agent; remove the line to leave it off",
                    s.keyword()
                ),
            );
            true
        }
        _ => none(d, s),
    }
}

/// keepalived's `KEYWORD [<BOOL>]`: on without a value; a bad value is ignored with a warning.
pub(super) fn flag(d: &mut Diags, s: &Stmt) -> Option<bool> {
    if s.args().is_empty() && s.block.is_none() {
        return Some(true);
    }
    lenient(d, s, "the line is ignored", parse_bool)
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err("write on or off (or nothing, which means on)".into()),
    }
}

/// Words after what a statement takes: keepalived ignores them, so does this agent, with a
/// warning.
pub(super) fn ignore_rest(d: &mut Diags, loc: &Loc, what: &str, rest: &[String]) {
    if !rest.is_empty() {
        d.warn(
            loc,
            format!(
                "{what}: \"{}\" is ignored, as keepalived does; remove it",
                rest.join(" ")
            ),
        );
    }
}
