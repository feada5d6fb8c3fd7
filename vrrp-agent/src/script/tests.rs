use std::{
    fs,
    os::unix::fs::{chown, PermissionsExt},
    path::Path,
    time::{Duration, Instant},
};

use tokio::time::sleep;

use super::{identity, split, RunError, Script, ScriptError};
use crate::{
    config::ScriptUser,
    testing::{is_root, TempDir},
};

const NOBODY: u32 = 65534;

fn user(name: &str) -> ScriptUser {
    ScriptUser {
        user: name.into(),
        group: None,
    }
}

async fn run(line: &str) -> Result<(), RunError> {
    let command = Script::resolve(line, None, false).unwrap();
    command.run(Duration::from_secs(5)).await
}

#[tokio::test]
async fn exit_status_zero_is_success() {
    let dir = TempDir::new();
    assert!(run(&dir.script("ok", "exit 0", 0o755)).await.is_ok());
    let failed = run(&dir.script("fail", "exit 1", 0o755)).await;
    assert!(matches!(failed, Err(RunError::Exit(1))), "{failed:?}");
}

#[tokio::test]
async fn line_is_split_like_keepalived_not_run_by_a_shell() {
    // A bare name is looked up in PATH; quotes group words; `$0` reaches sh untouched.
    assert!(matches!(
        run("sh -c 'exit 3'").await,
        Err(RunError::Exit(3))
    ));
    assert!(run(r#"sh -c '[ "$0" = "a b" ]' "a b""#).await.is_ok());
    // keepalived's one shell case: a `</path` redirection.
    assert!(run("</dev/null").await.is_ok());
    assert!(run("</nonexistent/file").await.is_err());
}

#[test]
fn split_follows_keepalived_quoting() {
    let words = split(r#" a  "b c" 'd e'f \x41\101\n\cA\q "\"" '\'' "#).unwrap();
    let words: Vec<_> = words.iter().map(|w| w.to_str().unwrap()).collect();
    assert_eq!(words, ["a", "b c", "d ef", "AA\n\x01q", "\"", "'"]);
    assert!(matches!(split("a 'b"), Err(ScriptError::Split { .. })));
    assert!(matches!(split("a\\"), Err(ScriptError::Split { .. })));
    assert!(matches!(split(" \t"), Err(ScriptError::Empty)));
}

fn pids(dir: &TempDir) -> Vec<u32> {
    let text = fs::read_to_string(dir.0.join("pids")).unwrap();
    text.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Gone, or a zombie waiting for a parent (in a container PID 1 may not reap).
async fn gone(pid: u32) -> bool {
    for _ in 0..100 {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit_once(") ")
                    .is_some_and(|(_, s)| s.starts_with('Z')) =>
            {
                return true
            }
            Ok(_) => sleep(Duration::from_millis(20)).await,
        }
    }
    false
}

#[tokio::test]
async fn timeout_kills_the_process_group() {
    let dir = TempDir::new();
    let body = format!("sleep 30 &\necho $$ $! > {}/pids\nwait", dir.0.display());
    let command = Script::resolve(&dir.script("slow", &body, 0o755), None, false).unwrap();
    let result = command.run(Duration::from_millis(300)).await;
    assert!(matches!(result, Err(RunError::TimedOut(_))), "{result:?}");
    for pid in pids(&dir) {
        assert!(gone(pid).await, "pid {pid} survived the timeout");
    }
}

#[tokio::test]
async fn sigkill_follows_when_sigterm_is_ignored() {
    let dir = TempDir::new();
    let body = format!(
        "trap '' TERM\nsleep 30 &\necho $$ $! > {}/pids\nwait",
        dir.0.display()
    );
    let command = Script::resolve(&dir.script("stubborn", &body, 0o755), None, false).unwrap();
    let started = Instant::now();
    let result = command.run(Duration::from_millis(300)).await;
    assert!(matches!(result, Err(RunError::TimedOut(_))), "{result:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "SIGKILL before the grace"
    );
    for pid in pids(&dir) {
        assert!(gone(pid).await, "pid {pid} survived SIGKILL");
    }
}

#[test]
fn missing_or_non_executable_script_is_refused() {
    let dir = TempDir::new();
    let missing = dir.0.join("missing").to_str().unwrap().to_owned();
    let err = Script::resolve(&missing, None, false).unwrap_err();
    assert!(matches!(err, ScriptError::NotFound { .. }), "{err}");

    let plain = dir.script("plain", "exit 0", 0o644);
    let err = Script::resolve(&plain, None, false).unwrap_err();
    assert!(matches!(err, ScriptError::NotExecutable { .. }), "{err}");

    let err = Script::resolve("no-such-program-here", None, false).unwrap_err();
    assert!(matches!(err, ScriptError::NotInPath(_)), "{err}");

    let err = Script::resolve(
        &dir.script("ok", "", 0o755),
        Some(&user("no-such-user")),
        false,
    );
    assert!(matches!(err, Err(ScriptError::UnknownUser(_))));
}

/// Resolves `path` as root with enable_script_security.
fn secure(path: &str) -> Result<Script, ScriptError> {
    Script::resolve(path, Some(&user("root")), true)
}

fn insecure_at(result: Result<Script, ScriptError>, at: &Path) -> bool {
    matches!(result, Err(ScriptError::Insecure { path, .. }) if path == at)
}

#[test]
fn script_security_refuses_what_others_can_change() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new();
    let s = dir.script("check", "exit 0", 0o755);
    assert!(secure(&s).is_ok());

    fs::set_permissions(&s, fs::Permissions::from_mode(0o757)).unwrap();
    assert!(insecure_at(secure(&s), Path::new(&s)), "world-writable");
    // Without enable_script_security it is only a warning, as in keepalived.
    assert!(Script::resolve(&s, Some(&user("root")), false).is_ok());

    fs::set_permissions(&s, fs::Permissions::from_mode(0o775)).unwrap();
    assert!(secure(&s).is_ok(), "group root may write");
    chown(&s, None, Some(NOBODY)).unwrap();
    assert!(insecure_at(secure(&s), Path::new(&s)), "group-writable");

    fs::set_permissions(&s, fs::Permissions::from_mode(0o755)).unwrap();
    chown(&s, Some(NOBODY), Some(0)).unwrap();
    assert!(insecure_at(secure(&s), Path::new(&s)), "owned by nobody");
    chown(&s, Some(0), Some(0)).unwrap();

    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(insecure_at(secure(&s), &dir.0), "writable directory");
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(secure(&s).is_ok(), "a sticky directory is fine, as /tmp");

    // The same insecure file run by an unprivileged user is nobody's escalation.
    fs::set_permissions(&s, fs::Permissions::from_mode(0o757)).unwrap();
    assert!(Script::resolve(&s, Some(&user("nobody")), true).is_ok());
}

#[test]
fn script_security_wants_a_script_user() {
    if !is_root() || identity(Some(&user("keepalived_script")), false).is_ok() {
        eprintln!("skipped: needs root and no keepalived_script user");
        return;
    }
    assert!(matches!(
        identity(None, true),
        Err(ScriptError::NoDefaultUser)
    ));
    assert_eq!(identity(None, false).unwrap().uid, 0);
}

#[tokio::test]
async fn script_runs_as_its_user() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new();
    let s = dir.script("whoami", r#"[ "$(id -u):$(id -g)" = 65534:65534 ]"#, 0o755);
    let limit = Duration::from_secs(5);
    let as_nobody = Script::resolve(&s, Some(&user("nobody")), false).unwrap();
    assert!(as_nobody.run(limit).await.is_ok());
    let as_root = Script::resolve(&s, Some(&user("root")), false).unwrap();
    assert!(matches!(as_root.run(limit).await, Err(RunError::Exit(1))));
}
