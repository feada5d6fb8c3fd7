//! Script lines resolved and run as keepalived runs them (`keepalived/core/notify.c`), for health
//! checks (`vrrp_script`) and notify scripts alike: the line is split into argv with keepalived's
//! quoting rules ([`words`]) and exec'd directly, with no shell, in its own process group, as the
//! script's user ([`identity`]); a line starting `</path` (bash's `</dev/tcp/HOST/PORT` idiom) is
//! the one exception keepalived hands to `/bin/sh -c`.
//!
//! Checks done once, when the line is resolved ([`security`]): the program exists (a bare name is
//! looked up in `PATH`) and is executable by the script's user, and, when the script runs with
//! root privileges, no part of its path can be changed by another user.
mod identity;
mod security;
#[cfg(test)]
mod tests;
mod words;

use std::{
    ffi::OsString,
    fmt, fs, io,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::process::{Child, Command};
use tracing::warn;

pub use identity::{identity, Identity};
pub use words::split;

use crate::config::ScriptUser;

/// keepalived waits this long after SIGTERM before it sends SIGKILL to a timed-out script.
const TERM_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
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
}

/// Why one run of a script did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("exited with status {0}")]
    Exit(i32),
    #[error("killed by signal {0}")]
    Signal(i32),
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    #[error("cannot start: {0}")]
    Spawn(io::Error),
    #[error("cannot wait for it: {0}")]
    Wait(io::Error),
}

/// A script line resolved once: what to exec, with which argv, as whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    program: PathBuf,
    argv: Vec<OsString>,
    id: Identity,
}

impl Script {
    /// Splits `line`, picks the user and checks the program as keepalived does at startup;
    /// `security` is `enable_script_security`. Without it, a path another user could change only
    /// draws a warning, as in keepalived.
    pub fn resolve(
        line: &str,
        user: Option<&ScriptUser>,
        security: bool,
    ) -> Result<Self, ScriptError> {
        let mut argv = split(line)?;
        let id = identity(user, security)?;
        if words::is_redirection(argv[0].as_bytes()) {
            // keepalived hands these to system(3); no file to check.
            let line = words::shell_line(&argv);
            return Ok(Self {
                program: "/bin/sh".into(),
                argv: vec!["sh".into(), "-c".into(), line],
                id,
            });
        }
        let given = Path::new(&argv[0]);
        let path = if argv[0].as_bytes().contains(&b'/') {
            std::path::absolute(given).map_err(|source| security::not_found(given, source))?
        } else {
            let found = security::search_path(given, id)?;
            warn!(
                "script {:?} found in PATH as {}; give the full path",
                argv[0],
                found.display()
            );
            argv[0] = found.clone().into_os_string();
            found
        };
        let real = fs::canonicalize(&path).map_err(|e| security::not_found(&path, e))?;
        let meta = fs::metadata(&real).map_err(|e| security::not_found(&path, e))?;
        if !meta.is_file() || !security::executable(&meta, id) {
            return Err(ScriptError::NotExecutable { path, id });
        }
        if security::privileged(&meta, id) {
            // The path as written (its symlinks) and the file it leads to.
            for p in [&path, &real] {
                match security::check_path(p) {
                    Err(e @ ScriptError::Insecure { .. }) if !security => {
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

    /// The command with `args` after the line's own: no shell, its own process group (so a
    /// timeout kills whatever the script started too), the script's user, no output.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg0(&self.argv[0])
            .args(&self.argv[1..])
            .args(args)
            .uid(self.id.uid)
            .gid(self.id.gid)
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
    pub async fn run(&self, timeout: Duration) -> Result<(), RunError> {
        let mut child = self
            .command(&[])
            .kill_on_drop(true)
            .spawn()
            .map_err(RunError::Spawn)?;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => exit_result(status.map_err(RunError::Wait)?),
            Err(_) => {
                terminate(&mut child).await;
                Err(RunError::TimedOut(timeout))
            }
        }
    }

    /// Starts the script with `args` and forgets it (notify scripts: the election never waits);
    /// the child is reaped in the background.
    pub fn start(&self, args: &[&str]) -> io::Result<()> {
        let mut child = self.command(args).kill_on_drop(false).spawn()?;
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }
}

/// The command line as it runs.
impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<_> = self.argv.iter().map(|w| w.to_string_lossy()).collect();
        f.write_str(&words.join(" "))
    }
}

fn exit_result(status: ExitStatus) -> Result<(), RunError> {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(RunError::Exit(code)),
        (None, signal) => Err(RunError::Signal(signal.unwrap_or_default())),
    }
}

async fn terminate(child: &mut Child) {
    // The group id is the leader's pid; `id()` is None once the leader has been reaped.
    let Some(group) = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(Pid::from_raw)
    else {
        return;
    };
    // ESRCH (the group is already gone) is the good case.
    let _ = nix::sys::signal::killpg(group, Signal::SIGTERM);
    let _ = tokio::time::timeout(TERM_GRACE, child.wait()).await;
    // Whatever ignored SIGTERM, the script's own children included. The leader, if still there,
    // is reaped in the background once the Child is dropped.
    let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
}
