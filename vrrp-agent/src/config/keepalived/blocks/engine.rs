//! How a block's statements meet its table: the rules, the walk, the hints for unknown keywords,
//! and the readers of a statement's shape (a block, a name, one value, a flag).
use std::collections::{hash_map::Entry, HashMap};

use super::{
    agent::AGENT,
    global::GLOBAL_DEFS,
    instance::{AUTHENTICATION, INSTANCE},
    script::{CHECK, SCRIPT},
    sync_group::SYNC_GROUP,
    Diags, Loc, Stmt, TOP,
};

pub(super) type Handler<T> = fn(&mut Diags, &mut T, &Stmt);

pub(super) enum Rule<T> {
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

pub(super) use Rule::{Ignore, Many, One, Refuse};

pub(super) type Table<T> = [(&'static str, Rule<T>)];

/// Runs `table`'s rules over `items`, the statements of the block described by `what`.
pub(super) fn walk<T>(d: &mut Diags, what: &str, table: &Table<T>, target: &mut T, items: &[Stmt]) {
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
pub(super) fn block<'s>(d: &mut Diags, s: &'s Stmt) -> Option<&'s [Stmt]> {
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
pub(super) fn named<'s>(d: &mut Diags, s: &'s Stmt) -> Option<(&'s str, &'s [Stmt])> {
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

/// The value of `KEYWORD VALUE`.
pub(super) fn one<'s>(d: &mut Diags, s: &'s Stmt) -> Option<&'s str> {
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

/// A keyword without value, as `nopreempt`.
pub(super) fn none(d: &mut Diags, s: &Stmt) -> bool {
    let ok = s.args().is_empty() && s.block.is_none();
    if !ok {
        d.error(&s.loc, format!("{} takes no value", s.keyword()));
    }
    ok
}

/// keepalived's `KEYWORD [<BOOL>]`: on without a value.
pub(super) fn flag(d: &mut Diags, s: &Stmt) -> Option<bool> {
    if s.args().is_empty() && s.block.is_none() {
        return Some(true);
    }
    value(d, s, |v| match v {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err("write on or off (or nothing, which means on)".into()),
    })
}
