//! Script lines resolved and run as keepalived runs them (`keepalived/core/notify.c`): the line is
//! split into argv with keepalived's quoting rules and exec'd directly, with no shell, in its own
//! process group, as the script's user; a line starting `</path` (bash's `</dev/tcp/HOST/PORT`
//! idiom) is the one exception keepalived hands to `/bin/sh -c`.
//!
//! Checks done once, when the line is resolved: the program exists (a bare name is looked up in
//! `PATH`) and is executable by the script's user, and, when the script runs with root
//! privileges, no part of its path can be changed by another user. keepalived disables a script
//! that fails them with a log line; we refuse it with an error instead, since a health check that
//! silently never runs is a failover that never happens.
use std::{
    ffi::{c_char, c_int, CString, OsString},
    fs, io,
    os::unix::{
        ffi::{OsStrExt, OsStringExt},
        fs::MetadataExt,
    },
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::process::{Child, Command};
use tracing::warn;

use super::probe::Failure;
use crate::config::ScriptUser;

/// keepalived's default script user when neither `user` nor `script_user` names one.
const DEFAULT_USER: &str = "keepalived_script";
/// keepalived's `_CS_PATH`, used when the agent has no `PATH`.
const DEFAULT_PATH: &str = "/bin:/usr/bin";
/// keepalived waits this long after SIGTERM before it sends SIGKILL to a timed-out script.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Who a script runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

impl Identity {
    /// The agent's own real ids: keepalived's fallback when `keepalived_script` does not exist.
    fn current() -> Self {
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        unsafe {
            Self {
                uid: libc::getuid(),
                gid: libc::getgid(),
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot split {line:?} into words: {reason}")]
    Split { line: String, reason: &'static str },
    #[error("the script line is empty; give the path of the program to run")]
    Empty,
    #[error("user {0:?} does not exist; create it, or name another in `user` or `script_user`")]
    UnknownUser(String),
    #[error("group {0:?} does not exist; create it, or name another in `user` or `script_user`")]
    UnknownGroup(String),
    #[error("group {0:?}: supplementary groups (a group starting with ':') are not supported; name the group without ':'")]
    SupplementaryGroups(String),
    #[error("cannot look up {name:?}: {source}")]
    Lookup { name: String, source: io::Error },
    #[error("enable_script_security needs a script user: create the user keepalived_script, or set `script_user` in global_defs or `user` in the vrrp_script")]
    NoDefaultUser,
    #[error("cannot run scripts as uid:gid {}:{} without root; run the agent as root, or set `script_user` to the agent's own user", .0.uid, .0.gid)]
    NotRoot(Identity),
    #[error("{0:?} is not an executable file in PATH; give its full path")]
    NotInPath(PathBuf),
    #[error("{path}: {source}; give the full path of an existing script")]
    NotFound { path: PathBuf, source: io::Error },
    #[error("{} is not an executable file for uid:gid {}:{}; chmod +x it, or run the script as its owner", .path.display(), .id.uid, .id.gid)]
    NotExecutable { path: PathBuf, id: Identity },
    #[error("{} {reason}, and the script runs with root privileges; make every part of the path root-owned and not writable by group or others (chown root:root, chmod go-w), or run the script as an unprivileged `user`", .path.display())]
    Insecure { path: PathBuf, reason: String },
    #[error("cannot start the script: {0}")]
    Spawn(#[from] io::Error),
}

/// `line` as a command ready to spawn, run as `user` (or keepalived's default script user),
/// without `enable_script_security`: a path another user could change only draws a warning.
pub fn command(line: &str, user: Option<&ScriptUser>) -> Result<Command, ExecError> {
    Ok(ScriptCommand::resolve(line, user, false)?.command())
}

/// A script line resolved once: what to exec, with which argv, as whom.
#[derive(Clone, Debug)]
pub struct ScriptCommand {
    program: PathBuf,
    argv: Vec<OsString>,
    id: Identity,
}

impl ScriptCommand {
    /// Splits `line`, picks the user and checks the program as keepalived does at startup;
    /// `security` is `enable_script_security`.
    pub fn resolve(
        line: &str,
        user: Option<&ScriptUser>,
        security: bool,
    ) -> Result<Self, ExecError> {
        let mut argv = split(line)?;
        let id = identity(user, security)?;
        if is_redirection(argv[0].as_bytes()) {
            // keepalived hands these to system(3); no file to check.
            let line = shell_line(&argv);
            return Ok(Self {
                program: "/bin/sh".into(),
                argv: vec!["sh".into(), "-c".into(), line],
                id,
            });
        }
        let given = Path::new(&argv[0]);
        let path = if argv[0].as_bytes().contains(&b'/') {
            std::path::absolute(given).map_err(|source| ExecError::NotFound {
                path: given.to_owned(),
                source,
            })?
        } else {
            let found = search_path(given, id)?;
            warn!(
                "script {:?} found in PATH as {}; give the full path",
                argv[0],
                found.display()
            );
            argv[0] = found.clone().into_os_string();
            found
        };
        let not_found = |source| ExecError::NotFound {
            path: path.clone(),
            source,
        };
        let real = fs::canonicalize(&path).map_err(not_found)?;
        let meta = fs::metadata(&real).map_err(not_found)?;
        if !meta.is_file() || !executable(&meta, id) {
            return Err(ExecError::NotExecutable { path, id });
        }
        if privileged(&meta, id) {
            // The path as written (its symlinks) and the file it leads to.
            for p in [&path, &real] {
                match check_path(p) {
                    Err(e @ ExecError::Insecure { .. }) if !security => {
                        warn!("{e}; enable_script_security would refuse it")
                    }
                    checked => checked?,
                }
            }
        }
        Ok(Self {
            program: real,
            argv,
            id,
        })
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg0(&self.argv[0])
            .args(&self.argv[1..])
            .uid(self.id.uid)
            .gid(self.id.gid)
            // Its own group, so a timeout kills whatever the script started too.
            .process_group(0)
            // keepalived drops these before exec: no loader or word-splitting override from the
            // agent's environment reaches a root script.
            .env_remove("IFS")
            .env_remove("LD_PRELOAD")
            .env_remove("LD_LIBRARY_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// One run: success is exit status 0. On timeout the script's process group gets SIGTERM,
    /// then SIGKILL once the script is gone or after keepalived's 2 s grace, and the run fails.
    pub(super) async fn check(&self, timeout: Duration) -> Result<(), Failure> {
        let mut child = self
            .command()
            .kill_on_drop(true)
            .spawn()
            .map_err(Failure::Spawn)?;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => exit_result(status?),
            Err(_) => {
                terminate(&mut child).await;
                Err(Failure::TimedOut(timeout))
            }
        }
    }
}

fn exit_result(status: ExitStatus) -> Result<(), Failure> {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(Failure::Exit(code)),
        (None, signal) => Err(Failure::Signal(signal.unwrap_or_default())),
    }
}

async fn terminate(child: &mut Child) {
    // The group id is the leader's pid; `id()` is None once the leader has been reaped.
    let Some(pgid) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
        return;
    };
    signal_group(pgid, libc::SIGTERM);
    let _ = tokio::time::timeout(TERM_GRACE, child.wait()).await;
    // Whatever ignored SIGTERM, the script's own children included. The leader, if still there,
    // is reaped in the background once the Child is dropped.
    signal_group(pgid, libc::SIGKILL);
}

fn signal_group(pgid: i32, signal: c_int) {
    // SAFETY: kill has no memory effects; ESRCH (the group is already gone) is the good case.
    unsafe { libc::kill(-pgid, signal) };
}

/// keepalived's second pass over a `script` value (`alloc_strvec_quoted_escaped`): words split on
/// white space; `'…'` and `"…"` group words and are removed; a backslash escape is C's
/// (`\n`, `\t`, `\x41`, `\101`, `\cA`, `\E` …, any other character stands for itself), inside
/// quotes too.
pub fn split(line: &str) -> Result<Vec<OsString>, ExecError> {
    let fail = |reason| ExecError::Split {
        line: line.to_owned(),
        reason,
    };
    let s = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while s.get(i).is_some_and(|&c| is_space(c)) {
            i += 1;
        }
        if i == s.len() {
            break;
        }
        let mut word = Vec::new();
        let mut quote = None;
        while let Some(&c) = s.get(i) {
            i += 1;
            match (c, quote) {
                (b'\\', _) => {
                    if i == s.len() {
                        return Err(fail("it ends with a backslash"));
                    }
                    word.push(unescape(s, &mut i));
                }
                (c, Some(q)) if c == q => quote = None,
                (_, Some(_)) => word.push(c),
                (b'"' | b'\'', None) => quote = Some(c),
                (c, None) if is_space(c) => break,
                (c, None) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err(fail("a quote is not closed"));
        }
        words.push(OsString::from_vec(word));
    }
    if words.is_empty() {
        return Err(ExecError::Empty);
    }
    Ok(words)
}

/// keepalived's WHITE_SPACE_STR.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\x0c' | b'\n' | b'\r' | b'\x0b')
}

/// The escape after a backslash, starting at `s[*i]`, which exists.
fn unescape(s: &[u8], i: &mut usize) -> u8 {
    let c = s[*i];
    *i += 1;
    match c {
        b'x' if s.get(*i).is_some_and(u8::is_ascii_hexdigit) => digits(s, i, 16, 2, 0),
        b'0'..=b'7' => digits(s, i, 8, 2, c - b'0'),
        b'c' if *i < s.len() => {
            *i += 1;
            s[*i - 1] & 0x1f
        }
        b'a' => 0x07,
        b'b' => 0x08,
        b'E' => 0x1b,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        other => other,
    }
}

/// Up to `max` more digits of `radix` onto `value`, with C's char arithmetic (`\777` wraps).
fn digits(s: &[u8], i: &mut usize, radix: u8, max: usize, mut value: u8) -> u8 {
    for _ in 0..max {
        let Some(d) = s
            .get(*i)
            .and_then(|&d| char::from(d).to_digit(radix.into()))
        else {
            break;
        };
        value = value.wrapping_mul(radix).wrapping_add(d as u8);
        *i += 1;
    }
    value
}

/// `</path…` as one word: keepalived's test for "open this file", which only a shell can do.
fn is_redirection(word: &[u8]) -> bool {
    word.first() == Some(&b'<')
        && word[1..].iter().find(|&&c| c != b' ' && c != b'\t') == Some(&b'/')
}

/// keepalived's `cmd_str`: the redirection as written, every other word single-quoted.
fn shell_line(argv: &[OsString]) -> OsString {
    let mut line = argv[0].as_bytes().to_vec();
    for word in &argv[1..] {
        line.extend_from_slice(b" '");
        for &c in word.as_bytes() {
            match c {
                b'\'' => line.extend_from_slice(b"'\\''"),
                c => line.push(c),
            }
        }
        line.push(b'\'');
    }
    OsString::from_vec(line)
}

/// `user [group]`, else `keepalived_script` if it exists, else the agent's own user (refused
/// under `enable_script_security`, which wants scripts off root unless asked for).
pub fn identity(user: Option<&ScriptUser>, security: bool) -> Result<Identity, ExecError> {
    let id = match user {
        Some(ScriptUser { user, group }) => {
            let found = lookup_user(user)?.ok_or_else(|| ExecError::UnknownUser(user.clone()))?;
            let gid = match group {
                None => found.gid,
                Some(g) if g.starts_with(':') => {
                    return Err(ExecError::SupplementaryGroups(g.clone()))
                }
                Some(g) => lookup_group(g)?.ok_or_else(|| ExecError::UnknownGroup(g.clone()))?,
            };
            Identity {
                uid: found.uid,
                gid,
            }
        }
        None => match lookup_user(DEFAULT_USER)? {
            Some(id) => id,
            None if security => return Err(ExecError::NoDefaultUser),
            None => Identity::current(),
        },
    };
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 && id != Identity::current() {
        return Err(ExecError::NotRoot(id));
    }
    Ok(id)
}

fn lookup_user(name: &str) -> Result<Option<Identity>, ExecError> {
    lookup(
        name,
        // SAFETY: the pointers come from `lookup`, valid for the call.
        |n, p: *mut libc::passwd, b, l, r| unsafe { libc::getpwnam_r(n, p, b, l, r) },
        |p| Identity {
            uid: p.pw_uid,
            gid: p.pw_gid,
        },
    )
}

fn lookup_group(name: &str) -> Result<Option<u32>, ExecError> {
    lookup(
        name,
        // SAFETY: the pointers come from `lookup`, valid for the call.
        |n, g: *mut libc::group, b, l, r| unsafe { libc::getgrnam_r(n, g, b, l, r) },
        |g| g.gr_gid,
    )
}

/// getpwnam_r / getgrnam_r (the re-entrant ones: other threads may look names up too), with
/// the buffer grown until the entry fits.
fn lookup<T, R>(
    name: &str,
    call: impl Fn(*const c_char, *mut T, *mut c_char, usize, *mut *mut T) -> c_int,
    read: impl Fn(&T) -> R,
) -> Result<Option<R>, ExecError> {
    let fail = |source| ExecError::Lookup {
        name: name.to_owned(),
        source,
    };
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    let mut buf = vec![0 as c_char; 1024];
    loop {
        // SAFETY: passwd and group are plain C structs for which all zeroes is valid.
        let mut entry: T = unsafe { std::mem::zeroed() };
        let mut found = std::ptr::null_mut();
        let rc = call(
            cname.as_ptr(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        match rc {
            0 => return Ok((!found.is_null()).then(|| read(&entry))),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            // Ways getpwnam_r(3) allows for "no such name".
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            rc => return Err(fail(io::Error::from_raw_os_error(rc))),
        }
    }
}

/// keepalived's `find_path`: the first regular file in PATH this user may execute.
fn search_path(name: &Path, id: Identity) -> Result<PathBuf, ExecError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && executable(&m, id)))
        .ok_or_else(|| ExecError::NotInPath(name.to_owned()))
}

/// keepalived's `is_executable`: the mode bits for this uid/gid (root needs any x bit).
fn executable(meta: &fs::Metadata, id: Identity) -> bool {
    let mode = meta.mode();
    if id.uid == 0 {
        mode & 0o111 != 0
    } else if id.uid == meta.uid() {
        mode & 0o100 != 0
    } else if id.gid == meta.gid() {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// keepalived guards a script that runs as root (user or group), or is set-uid/gid root.
fn privileged(meta: &fs::Metadata, id: Identity) -> bool {
    let mode = meta.mode();
    id.uid == 0
        || id.gid == 0
        || (meta.uid() == 0 && mode & libc::S_IXUSR != 0 && mode & libc::S_ISUID != 0)
        || (meta.gid() == 0 && mode & libc::S_IXGRP != 0 && mode & libc::S_ISGID != 0)
}

/// keepalived's `check_security` on every prefix of `path` ("/", "/etc", "/etc/keepalived", …):
/// each must be root-owned, and a file or a directory without the sticky bit must not be
/// writable by a non-root group or by everyone. A symlink is judged by its owner only; unlike
/// keepalived we accept root-owned symlinked directories (merged /usr's /bin), since the path
/// they lead to is checked as well.
fn check_path(path: &Path) -> Result<(), ExecError> {
    let mut prefix = PathBuf::new();
    for part in path.components() {
        prefix.push(part);
        let meta = fs::symlink_metadata(&prefix).map_err(|source| ExecError::NotFound {
            path: prefix.clone(),
            source,
        })?;
        if let Some(reason) = insecurity(&meta) {
            return Err(ExecError::Insecure {
                path: prefix,
                reason,
            });
        }
    }
    Ok(())
}

fn insecurity(meta: &fs::Metadata) -> Option<String> {
    let mode = meta.mode();
    let guarded = meta.is_file() || (meta.is_dir() && mode & libc::S_ISVTX == 0);
    if meta.uid() != 0 {
        Some(format!("is owned by uid {}", meta.uid()))
    } else if guarded && mode & 0o002 != 0 {
        Some("is writable by everyone".into())
    } else if guarded && meta.gid() != 0 && mode & 0o020 != 0 {
        Some(format!("is writable by group {}", meta.gid()))
    } else {
        None
    }
}
