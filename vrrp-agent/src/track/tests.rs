use std::{fs, net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    time::timeout,
};

use super::{
    effective_priority,
    probe::{comm_matches, stat_matches, status_code, Failure, Prober},
    Checks, Hysteresis, Task, TrackError,
};
use crate::config::{Check, Global, Probe};

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

#[test]
fn to_change_counts_the_results_that_would_change_the_state() {
    let mut h = Hysteresis::new(2, 3, false);
    assert_eq!(h.to_change(), 1, "fresh: the first result decides");
    h.record(true);
    assert_eq!(h.to_change(), 3, "up: fall failures");
    h.record(false);
    assert_eq!(h.to_change(), 2);
    h.record(false);
    h.record(false);
    assert_eq!(h.to_change(), 2, "down: rise successes");
    h.record(true);
    assert_eq!(h.to_change(), 1);
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

/// The running set of `wanted`.
fn run_checks(checks: &mut Checks, wanted: &[Check]) {
    let prepared = checks.prepare(wanted, &Global::default()).unwrap();
    checks.commit(prepared);
}

#[tokio::test]
async fn checks_report_first_result_then_changes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let web = Check {
        fall: 3,
        ..check("web", Probe::Tcp(addr))
    };
    let mut checks = Checks::default();
    run_checks(&mut checks, std::slice::from_ref(&web));
    assert_eq!(checks.state("web"), None, "no result yet");
    assert_eq!(checks.state("other"), None);
    let first = timeout(WAIT, checks.changed()).await.unwrap();
    assert_eq!(first, ("web".into(), true));
    assert_eq!(checks.state("web"), Some(true));

    drop(listener);
    let change = timeout(WAIT, checks.changed()).await.unwrap();
    assert_eq!(change, ("web".into(), false));
    assert_eq!(checks.state("web"), Some(false));

    let _listener = TcpListener::bind(addr).await.unwrap();
    let change = timeout(WAIT, checks.changed()).await.unwrap();
    assert_eq!(change, ("web".into(), true));
}

/// `status` shows each check's runs, its failures by kind, and how close it is to changing.
#[tokio::test]
async fn status_counts_runs_and_failures_by_kind() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let web = Check {
        rise: 2,
        fall: 3,
        ..check("web", Probe::Tcp(addr))
    };
    let mut checks = Checks::default();
    run_checks(&mut checks, &[web]);
    let [fresh] = &checks.status()[..] else {
        panic!("one check")
    };
    assert_eq!((fresh.runs, fresh.to_change, fresh.up), (0, 1, None));
    assert_eq!(fresh.last_run_ms, None);
    let first = timeout(WAIT, checks.changed()).await.unwrap();
    assert_eq!(first, ("web".into(), false));
    // The task counts before it reports; a few more runs go by.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let [down] = &checks.status()[..] else {
        panic!("one check")
    };
    assert_eq!((down.up, down.rise, down.fall), (Some(false), 2, 3));
    assert!(down.runs >= 2, "{down:?}");
    assert_eq!(
        down.failures.get("connection"),
        Some(&down.runs),
        "{down:?}"
    );
    assert_eq!(down.to_change, 2, "rise successes");
    assert!(down.last_run_ms.is_some() && down.last_run_secs.is_some());
    assert!(
        down.last_failure
            .as_deref()
            .is_some_and(|f| f.contains("refused")),
        "{down:?}"
    );
}

#[tokio::test]
async fn init_fail_check_starts_down() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web = Check {
        rise: 3,
        init_fail: true,
        ..check("web", Probe::Tcp(listener.local_addr().unwrap()))
    };
    let mut checks = Checks::default();
    run_checks(&mut checks, &[web]);
    assert_eq!(checks.state("web"), Some(false));
    let change = timeout(WAIT, checks.changed()).await.unwrap();
    assert_eq!(change, ("web".into(), true));
}

#[tokio::test]
async fn no_checks_means_no_changes() {
    let mut checks = Checks::default();
    run_checks(&mut checks, &[]);
    let quiet = timeout(Duration::from_millis(100), checks.changed()).await;
    assert!(quiet.is_err(), "{quiet:?}");
}

/// A reload keeps an unchanged check running with its state (no wait for a first result),
/// replaces a changed one (its old task's reports no longer count), stops a removed one, and a
/// refused or dropped preparation changes nothing.
#[tokio::test]
async fn reload_keeps_unchanged_checks_and_their_state() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let web = check("web", Probe::Tcp(addr));
    let mut checks = Checks::default();
    run_checks(&mut checks, std::slice::from_ref(&web));
    timeout(WAIT, checks.changed()).await.unwrap();

    let bad = check("bad", Probe::Exec("/nonexistent/check.sh".into()));
    let refused = checks.prepare(&[web.clone(), bad], &Global::default());
    assert!(matches!(refused, Err(TrackError::Script { .. })));
    let dropped = checks.prepare(&[], &Global::default()).unwrap();
    drop(dropped);
    assert_eq!(checks.state("web"), Some(true), "nothing changed");

    let slower = Check {
        interval: Duration::from_millis(20),
        ..web.clone()
    };
    let other = check("other", Probe::Tcp(addr));
    run_checks(&mut checks, &[web.clone(), other]);
    assert_eq!(checks.state("web"), Some(true), "kept with its state");
    assert_eq!(checks.state("other"), None, "new: no result yet");
    run_checks(&mut checks, &[slower]);
    assert_eq!(checks.state("web"), None, "changed: started afresh");
    assert_eq!(checks.state("other"), None, "removed");
    let first = timeout(WAIT, checks.changed()).await.unwrap();
    assert_eq!(first, ("web".into(), true));
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
        Task::new(&c, &Global::default()).map(drop)
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
    let refused = Task::new(&zero, &Global::default()).map(drop);
    assert!(matches!(refused, Err(TrackError::Interval { .. })));

    let missing = check("s", Probe::Exec("/nonexistent/check.sh".into()));
    let err = Task::new(&missing, &Global::default())
        .map(drop)
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("vrrp_script s: /nonexistent/check.sh: "));
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
