//! keepalived.conf: keepalived's configuration language, read into a [`Config`], so an existing
//! keepalived setup runs unchanged.
//!
//! Syntax as keepalived's: keywords with values, blocks in braces (the `{` on the same or the next
//! line), `#` and `!` comments to the end of the line (not inside `"…"`), `"…"` quotes around
//! values with spaces (`'…'` too on script and notify lines, as in keepalived), a trailing `\` to
//! continue a line, and `include PATTERN` anywhere: glob patterns and `{a,b}` alternatives,
//! relative to the including file's directory, every match in sorted order, nested includes
//! allowed and loops refused; a pattern that matches nothing, or a file that cannot be read, is a
//! warning, as in keepalived (an error with the `includem`/`includew`/`includeb`/`includea`
//! variants).
//!
//! Every keyword keepalived knows is handled one of three ways (the tables in `blocks`):
//! - read into the model, with keepalived's meaning and defaults;
//! - ignored with one warning per keyword (not per occurrence) when it is outside VRRP or does not
//!   change what this agent does: e-mail, LVS, BFD, SNMP, firewall, VMAC, process tuning…;
//! - refused with an error that says what to write instead, when running without it would
//!   behave differently from keepalived (`vrrp_strict`, `auth_type AH`, IPv6, track_file…).
//!
//! What keepalived 2.2.7 logs and runs anyway runs here too, with the value keepalived ends up
//! with and a warning that says so and what to write instead: a bad value (`state SLAVE` is
//! BACKUP, `priority 300` is 100…), a keyword given twice (the one keepalived keeps), words after
//! a value, a VIP or peer keepalived skips, a missing or extra `}`… Where keepalived accepts a
//! dubious combination and fixes it up (nopreempt with `state MASTER`, a weighted tracker on an
//! address owner…), so does this parser, with keepalived's warning. What keepalived refuses
//! (no interface, a VRID out of range) and what would run differently here (an unknown keyword, a
//! track_script naming no script) are errors, each with its file and line, all of them reported.
//! The parser's own bounds (block nesting, file sizes, include depth) are errors too.
//!
//! Extension, ours (keepalived itself would refuse a file that has it): a top-level block
//! ```text
//! vrrp_agent {
//!     xdp auto|native|skb|off     # how the XDP program is attached (default auto)
//!     checksum pseudo|message     # VRRPv3 checksum sent by every instance (default pseudo)
//!     check NAME {                # an in-process health check, tracked like a vrrp_script
//!         process nginx           #   one of: a process of that name runs,
//!         tcp 127.0.0.1:80        #   a TCP connect succeeds,
//!         http http://127.0.0.1:8080/healthz [status 200] [host NAME]  # a GET answers so
//!         interval 2              #   and vrrp_script's interval, timeout, weight [reverse],
//!         fall 2                  #   rise, fall and init_fail, with its defaults
//!     }
//! }
//! ```
use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    rc::Rc,
};

use super::Config;

mod blocks;
mod lex;
#[cfg(test)]
mod tests;

/// An error or a warning about the configuration, at a line of one of its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 for the file as a whole (it cannot be read).
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file.display(), self.message),
            line => write!(f, "{}:{line}: {}", self.file.display(), self.message),
        }
    }
}

/// A configuration that loaded, and what was ignored or adjusted on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
    /// Kept out of `config`, which a reload compares with `==`: a check that only moved lines
    /// is the same check.
    places: Places,
}

/// A configuration from the command line: no file, so no places and no warnings.
impl From<Config> for Loaded {
    fn from(config: Config) -> Self {
        Self {
            config,
            warnings: Vec::new(),
            places: Places::default(),
        }
    }
}

impl Loaded {
    /// Where the vrrp_script or vrrp_agent check `name` is defined.
    pub fn check_place(&self, name: &str) -> Option<&Place> {
        self.places.checks.get(name)
    }

    /// Where the vrrp_instance `name` is defined.
    pub fn instance_place(&self, name: &str) -> Option<&Place> {
        self.places.instances.get(name)
    }
}

/// A line of one of the configuration's files, for messages about what it defines
/// (`FILE:LINE: …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

impl From<&Loc> for Place {
    fn from(loc: &Loc) -> Self {
        Self {
            file: loc.file.to_path_buf(),
            line: loc.line,
        }
    }
}

/// Where the checks and instances of a [`Config`] are defined, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Places {
    checks: HashMap<String, Place>,
    instances: HashMap<String, Place>,
}

/// Reads and checks the keepalived.conf at `path`, with its includes.
pub fn load(path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    match lex::read_limited(path) {
        Ok(text) => parse_str(path, &text),
        Err(e) => Err(vec![Diagnostic {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read the configuration: {e}"),
        }]),
    }
}

/// Checks `text` as the content of `file`, whose directory relative includes start from.
pub fn parse_str(file: &Path, text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    let mut diags = Diags::default();
    let stmts = lex::read(file, text, &mut diags);
    let (config, places) = blocks::config(&stmts, &mut diags);
    diags.finish(config, places)
}

/// Where a statement is.
#[derive(Clone, Debug)]
struct Loc {
    file: Rc<Path>,
    line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Errors and warnings.
#[derive(Default)]
struct Diags {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Ignored keywords already warned about: the warning's index and how often it came again.
    ignored: HashMap<String, (usize, usize)>,
}

impl Diags {
    fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.errors.push(diagnostic(loc, message.into()));
    }

    fn warn(&mut self, loc: &Loc, message: impl Into<String>) {
        self.warnings.push(diagnostic(loc, message.into()));
    }

    /// One warning for `keyword` however often it comes; [`Diags::finish`] adds how often.
    fn ignored(&mut self, loc: &Loc, keyword: &str, why: &str) {
        if let Some((_, again)) = self.ignored.get_mut(keyword) {
            *again += 1;
            return;
        }
        self.ignored
            .insert(keyword.to_string(), (self.warnings.len(), 0));
        self.warn(loc, format!("ignored: {keyword} is not supported ({why})"));
    }

    /// The errors, or the configuration and its warnings; each list in file and line order.
    fn finish(mut self, config: Config, places: Places) -> Result<Loaded, Vec<Diagnostic>> {
        let by_place = |a: &Diagnostic, b: &Diagnostic| (&a.file, a.line).cmp(&(&b.file, b.line));
        if !self.errors.is_empty() {
            self.errors.sort_by(by_place);
            return Err(self.errors);
        }
        for (index, again) in self.ignored.into_values() {
            if again > 0 {
                let s = if again == 1 { "" } else { "s" };
                self.warnings[index].message += &format!(" [and {again} more time{s}]");
            }
        }
        self.warnings.sort_by(by_place);
        Ok(Loaded {
            config,
            warnings: self.warnings,
            places,
        })
    }
}

fn diagnostic(loc: &Loc, message: String) -> Diagnostic {
    Diagnostic {
        file: loc.file.to_path_buf(),
        line: loc.line,
        message,
    }
}
