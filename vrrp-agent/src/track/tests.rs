use std::{
    fs,
    net::SocketAddr,
    os::unix::fs::{chown, PermissionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    time::{sleep, timeout},
};

use super::{
    effective_priority,
    exec::{identity, split, ExecError, ScriptCommand},
    probe::{comm_matches, stat_matches, status_code, Failure, Prober},
    spawn, Hysteresis, Task, TrackError,
};
use crate::config::{Check, Global, Probe, ScriptUser};

const NOBODY: u32 = 65534;

// keepalived's weight rules (vrrp_track.c), one per test.

#[test]
fn positive_weight_adds_when_up_only() {
    assert_eq!(effective_priority(100, [(10, false, true)]), Some(110));
    assert_eq!(effective_priority(100, [(10, false, false)]), Some(100));
}

#[test]
fn negative_weight_subtracts_when_down_only() {
    assert_eq!(effective_priority(100, [(-10, false, false)]), Some(90));
    assert_eq!(effective_priority(100, [(-10, false, true)]), Some(100));
}

#[test]
fn reverse_positive_weight_subtracts_when_up() {
    assert_eq!(effective_priority(100, [(10, true, true)]), Some(90));
    assert_eq!(effective_priority(100, [(10, true, false)]), Some(100));
}

#[test]
fn reverse_negative_weight_adds_when_down() {
    assert_eq!(effective_priority(100, [(-10, true, false)]), Some(110));
    assert_eq!(effective_priority(100, [(-10, true, true)]), Some(100));
}

#[test]
fn weight_zero_down_is_fault() {
    assert_eq!(effective_priority(100, [(0, false, false)]), None);
    assert_eq!(effective_priority(100, [(0, false, true)]), Some(100));
}

#[test]
fn weight_zero_reverse_up_is_fault() {
    assert_eq!(effective_priority(100, [(0, true, true)]), None);
    assert_eq!(effective_priority(100, [(0, true, false)]), Some(100));
}

#[test]
fn weights_add_up() {
    let tracked = [(10, false, true), (-30, false, false), (5, false, false)];
    assert_eq!(effective_priority(100, tracked), Some(80));
}

#[test]
fn priority_is_clamped_to_1_254() {
    assert_eq!(effective_priority(10, [(-50, false, false)]), Some(1));
    assert_eq!(effective_priority(250, [(50, false, true)]), Some(254));
    assert_eq!(effective_priority(254, []), Some(254));
}

#[test]
fn address_owner_ignores_weights_but_not_fault() {
    assert_eq!(effective_priority(255, [(-50, false, false)]), Some(255));
    assert_eq!(effective_priority(255, [(10, true, true)]), Some(255));
    assert_eq!(effective_priority(255, [(0, false, false)]), None);
}

// keepalived's rise/fall counter (vrrp_scheduler.c).

fn feed(mut h: Hysteresis, results: &[bool]) -> Vec<Option<bool>> {
    results.iter().map(|&ok| h.record(ok)).collect()
}

#[test]
fn first_result_decides_either_way() {
    assert_eq!(feed(Hysteresis::new(3, 3, false), &[false]), [Some(false)]);
    assert_eq!(feed(Hysteresis::new(3, 3, false), &[true]), [Some(true)]);
}

#[test]
fn fall_consecutive_failures_take_it_down() {
    let seen = feed(
        Hysteresis::new(2, 3, false),
        &[true, false, false, false, false],
    );
    assert_eq!(seen, [Some(true), None, None, Some(false), None]);
}

#[test]
fn a_success_restarts_the_fall_count() {
    let seen = feed(
        Hysteresis::new(1, 3, false),
        &[true, false, false, true, false, false, false],
    );
    assert_eq!(
        seen,
        [Some(true), None, None, None, None, None, Some(false)]
    );
}

#[test]
fn rise_consecutive_successes_bring_it_up() {
    let seen = feed(
        Hysteresis::new(3, 1, false),
        &[false, true, true, false, true, true, true, true],
    );
    assert_eq!(
        seen,
        [Some(false), None, None, None, None, None, Some(true), None]
    );
}

#[test]
fn init_fail_starts_down_and_needs_rise_successes() {
    let seen = feed(
        Hysteresis::new(2, 2, true),
        &[false, true, false, true, true],
    );
    assert_eq!(seen, [None, None, None, None, Some(true)]);
    assert_eq!(feed(Hysteresis::new(1, 1, true), &[true]), [Some(true)]);
}

#[test]
fn rise_and_fall_of_zero_count_as_one() {
    let seen = feed(Hysteresis::new(0, 0, false), &[true, false, true]);
    assert_eq!(seen, [Some(true), Some(false), Some(true)]);
}

// The runner, end to end on loopback.

fn check(name: &str, probe: Probe) -> Check {
    Check {
        interval: Duration::from_millis(10),
        timeout: Duration::from_millis(500),
        ..Check::new(name, probe)
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn checks_report_first_result_then_changes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scripts = [Check {
        fall: 3,
        ..check("web", Probe::Tcp(addr))
    }];
    let mut checks = spawn(&scripts, &Global::default()).unwrap();
    assert!(checks.is_up("web"), "no result yet counts as up");
    assert!(!checks.is_up("other"));
    timeout(WAIT, checks.ready()).await.unwrap();
    assert!(checks.is_up("web"));

    drop(listener);
    let change = timeout(WAIT, checks.changed()).await.unwrap();
    assert_eq!(change, Some(("web".into(), false)));
    assert!(!checks.is_up("web"));

    let _listener = TcpListener::bind(addr).await.unwrap();
    let change = timeout(WAIT, checks.changed()).await.unwrap();
    assert_eq!(change, Some(("web".into(), true)));
}

#[tokio::test]
async fn init_fail_check_starts_down() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scripts = [Check {
        rise: 3,
        init_fail: true,
        ..check("web", Probe::Tcp(listener.local_addr().unwrap()))
    }];
    let mut checks = spawn(&scripts, &Global::default()).unwrap();
    assert!(!checks.is_up("web"));
    timeout(WAIT, checks.ready()).await.unwrap();
    let change = timeout(WAIT, checks.changed()).await.unwrap();
    assert_eq!(change, Some(("web".into(), true)));
}

#[tokio::test]
async fn no_checks_means_no_changes() {
    let mut checks = spawn(&[], &Global::default()).unwrap();
    checks.ready().await;
    assert_eq!(checks.changed().await, None);
}

#[test]
fn bad_checks_are_refused_before_any_starts() {
    let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let http = |host: Option<&str>, path: &str| {
        let c = check(
            "web",
            Probe::Http {
                addr,
                host: host.map(str::to_owned),
                path: path.into(),
                status: 200,
            },
        );
        Task::new(0, &c, &Global::default()).map(drop)
    };
    assert!(http(None, "/health").is_ok());
    assert!(matches!(
        http(None, "health"),
        Err(TrackError::Http { field: "path", .. })
    ));
    assert!(matches!(
        http(None, "/a b"),
        Err(TrackError::Http { field: "path", .. })
    ));
    let injected = http(Some("x\r\nX-Evil: 1"), "/");
    assert!(matches!(
        injected,
        Err(TrackError::Http { field: "host", .. })
    ));

    let zero = Check {
        interval: Duration::ZERO,
        ..check("p", Probe::Process("nginx".into()))
    };
    let refused = Task::new(0, &zero, &Global::default()).map(drop);
    assert!(matches!(refused, Err(TrackError::Interval { .. })));

    let missing = check("s", Probe::Exec("/nonexistent/check.sh".into()));
    let err = Task::new(0, &missing, &Global::default())
        .map(drop)
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("vrrp_script s: /nonexistent/check.sh: "));
}

// Exec checks with real scripts.

/// A directory of scripts under /tmp (root-owned, sticky: acceptable to script security).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("vrrp-track-{}-{n}", std::process::id()));
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        Self(path)
    }

    fn script(&self, name: &str, body: &str, mode: u32) -> String {
        let path = self.0.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn user(name: &str) -> ScriptUser {
    ScriptUser {
        user: name.into(),
        group: None,
    }
}

async fn run(line: &str) -> Result<(), Failure> {
    let command = ScriptCommand::resolve(line, None, false).unwrap();
    command.check(Duration::from_secs(5)).await
}

#[tokio::test]
async fn exit_status_zero_is_success() {
    let dir = TempDir::new();
    assert!(run(&dir.script("ok", "exit 0", 0o755)).await.is_ok());
    let failed = run(&dir.script("fail", "exit 1", 0o755)).await;
    assert!(matches!(failed, Err(Failure::Exit(1))), "{failed:?}");
}

#[tokio::test]
async fn line_is_split_like_keepalived_not_run_by_a_shell() {
    // A bare name is looked up in PATH; quotes group words; `$0` reaches sh untouched.
    assert!(matches!(run("sh -c 'exit 3'").await, Err(Failure::Exit(3))));
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
    assert!(matches!(split("a 'b"), Err(ExecError::Split { .. })));
    assert!(matches!(split("a\\"), Err(ExecError::Split { .. })));
    assert!(matches!(split(" \t"), Err(ExecError::Empty)));
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
    let command = ScriptCommand::resolve(&dir.script("slow", &body, 0o755), None, false).unwrap();
    let result = command.check(Duration::from_millis(300)).await;
    assert!(matches!(result, Err(Failure::TimedOut(_))), "{result:?}");
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
    let command =
        ScriptCommand::resolve(&dir.script("stubborn", &body, 0o755), None, false).unwrap();
    let started = Instant::now();
    let result = command.check(Duration::from_millis(300)).await;
    assert!(matches!(result, Err(Failure::TimedOut(_))), "{result:?}");
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
    let err = ScriptCommand::resolve(&missing, None, false).unwrap_err();
    assert!(matches!(err, ExecError::NotFound { .. }), "{err}");

    let plain = dir.script("plain", "exit 0", 0o644);
    let err = ScriptCommand::resolve(&plain, None, false).unwrap_err();
    assert!(matches!(err, ExecError::NotExecutable { .. }), "{err}");

    let err = ScriptCommand::resolve("no-such-program-here", None, false).unwrap_err();
    assert!(matches!(err, ExecError::NotInPath(_)), "{err}");

    let err = ScriptCommand::resolve(
        &dir.script("ok", "", 0o755),
        Some(&user("no-such-user")),
        false,
    );
    assert!(matches!(err, Err(ExecError::UnknownUser(_))));
}

/// Resolves `path` as root with enable_script_security.
fn secure(path: &str) -> Result<ScriptCommand, ExecError> {
    ScriptCommand::resolve(path, Some(&user("root")), true)
}

fn insecure_at(result: Result<ScriptCommand, ExecError>, at: &Path) -> bool {
    matches!(result, Err(ExecError::Insecure { path, .. }) if path == at)
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
    assert!(ScriptCommand::resolve(&s, Some(&user("root")), false).is_ok());

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
    assert!(ScriptCommand::resolve(&s, Some(&user("nobody")), true).is_ok());
}

#[test]
fn script_security_wants_a_script_user() {
    if !is_root() || identity(Some(&user("keepalived_script")), false).is_ok() {
        eprintln!("skipped: needs root and no keepalived_script user");
        return;
    }
    assert!(matches!(
        identity(None, true),
        Err(ExecError::NoDefaultUser)
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
    let as_nobody = ScriptCommand::resolve(&s, Some(&user("nobody")), false).unwrap();
    assert!(as_nobody.check(limit).await.is_ok());
    let as_root = ScriptCommand::resolve(&s, Some(&user("root")), false).unwrap();
    assert!(matches!(as_root.check(limit).await, Err(Failure::Exit(1))));
}

// In-process checks.

#[tokio::test]
async fn process_check_matches_comm() {
    let own = fs::read_to_string("/proc/self/comm").unwrap();
    let limit = Duration::from_secs(5);
    let mut probe = Prober::Process {
        name: own.trim_end().into(),
        pid: None,
    };
    assert!(probe.check(limit).await.is_ok());
    assert!(probe.check(limit).await.is_ok(), "from the remembered pid");
    let mut probe = Prober::Process {
        name: "no-such-process".into(),
        pid: None,
    };
    assert!(matches!(probe.check(limit).await, Err(Failure::NoProcess)));
}

#[test]
fn comm_matches_like_ps_c() {
    assert!(comm_matches(b"nginx", "nginx"));
    assert!(!comm_matches(b"nginx", "ngin"));
    assert!(!comm_matches(b"nginx: worker", "nginx"));
    // comm is cut to 15 bytes; a longer name matches on those.
    assert!(comm_matches(b"php-fpm-worker-", "php-fpm-worker-pool"));
    assert!(!comm_matches(b"php-fpm-worker", "php-fpm-worker-pool"));
}

#[test]
fn stat_comm_may_hold_parentheses_and_zombies_do_not_count() {
    assert!(stat_matches(b"42 (a) b) S 1 42", "a) b"));
    assert!(!stat_matches(b"42 (nginx) Z 1 42", "nginx"));
    assert!(stat_matches(b"42 (nginx) S 1 42", "nginx"));
}

#[tokio::test]
async fn tcp_check_connects() {
    let limit = Duration::from_secs(5);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(Prober::Tcp(addr).check(limit).await.is_ok());
    drop(listener);
    assert!(matches!(
        Prober::Tcp(addr).check(limit).await,
        Err(Failure::Io(_))
    ));
}

/// Answers one request with `status`, and returns the request.
async fn serve_once(status: &'static str) -> (SocketAddr, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "request cut short");
            request.extend_from_slice(&buf[..n]);
        }
        let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
        let _ = conn.write_all(answer.as_bytes()).await;
        String::from_utf8(request).unwrap()
    });
    (addr, server)
}

fn http(addr: SocketAddr, host: Option<&str>) -> Prober {
    Prober::Http {
        addr,
        request: super::probe::http_request(addr, host, "/health"),
        status: 200,
    }
}

#[tokio::test]
async fn http_check_wants_the_status() {
    let limit = Duration::from_secs(5);
    let (addr, server) = serve_once("200 OK").await;
    assert!(http(addr, None).check(limit).await.is_ok());
    let request = server.await.unwrap();
    let head = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    assert!(request.starts_with(&head), "{request}");

    let (addr, server) = serve_once("503 Service Unavailable").await;
    let result = http(addr, Some("example.test")).check(limit).await;
    assert!(
        matches!(
            result,
            Err(Failure::Status {
                got: 503,
                want: 200
            })
        ),
        "{result:?}"
    );
    assert!(server.await.unwrap().contains("\r\nHost: example.test\r\n"));
}

#[test]
fn status_line_parsing() {
    assert_eq!(status_code(b"HTTP/1.1 200 OK\r\nServer: x"), Some(200));
    assert_eq!(status_code(b"HTTP/1.0 503\r\n"), Some(503));
    assert_eq!(status_code(b"HTTP/1.1 404"), Some(404));
    assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
    assert_eq!(status_code(b"HTTP/1.1 20"), None);
    assert_eq!(status_code(b""), None);
}
