//! The agent as a systemd service: what it tells the service manager over `$NOTIFY_SOCKET`
//! (READY with a status line, the status on each transition, RELOADING around SIGHUP, the
//! watchdog from its loop, STOPPING), and one agent per PID file.
//!
//! Root only (skipped otherwise); run through `cargo xtask test`.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use vrrp_lab::lab::{Lab, IFACE, SEC, SETTLE, VIP_CIDR};
use vrrp_lab::skip_unless_root;

fn conf(priority: u8) -> String {
    format!(
        "vrrp_instance VI_1 {{\n interface {IFACE}\n virtual_router_id 51\n priority {priority}\n \
         advert_int 0.1\n version 3\n virtual_ipaddress {{\n  {VIP_CIDR}\n }}\n}}\n"
    )
}

/// The service manager's end: every datagram the agent sends, as text.
struct Manager(UnixDatagram, Vec<String>);

impl Manager {
    /// Reads until a message contains `want`, for `timeout` at most; whether one did.
    fn until(&mut self, want: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.0.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let found = msg.contains(want);
                self.1.push(msg);
                if found {
                    return true;
                }
            }
        }
        false
    }
}

#[test]
fn the_service_manager_hears_ready_status_reload_watchdog_and_stopping() {
    skip_unless_root!();
    let mut lab = Lab::new("sv_notify");
    let path = lab.topo.workdir().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(SEC / 10)).unwrap();
    let mut manager = Manager(socket, Vec::new());
    let env = [
        ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ("WATCHDOG_USEC", "200000"),
    ];
    lab.start_conf_env("r1", &conf(200), &[], &env);

    let ready = manager.until("READY=1", SETTLE);
    let first = manager.1.last().cloned().unwrap_or_default();
    let master = manager.until("STATUS=VI_1 MASTER prio 200", SETTLE);
    lab.check(
        ready && first.contains("STATUS=VI_1 BACKUP prio 200") && master,
        &format!("no READY with the status, then MASTER: {:?}", manager.1),
    );
    // WATCHDOG_USEC 200 ms: told every 100 ms.
    manager.1.clear();
    let started = Instant::now();
    while started.elapsed() < SEC {
        manager.until("\u{0}", SEC / 10);
    }
    let pings = manager
        .1
        .iter()
        .filter(|m| m.contains("WATCHDOG=1"))
        .count();
    lab.check(
        (8..=12).contains(&pings),
        &format!("{pings} watchdog messages in 1 s"),
    );

    lab.agent("r1").signal(libc::SIGHUP).unwrap();
    let reloading = manager.until("RELOADING=1", SETTLE);
    let reloaded = manager.until("READY=1", SETTLE);
    lab.check(reloading && reloaded, &format!("SIGHUP: {:?}", manager.1));

    lab.agent("r1").term().unwrap();
    lab.check(
        manager.until("STOPPING=1", SETTLE),
        &format!("SIGTERM: {:?}", manager.1),
    );
}

#[test]
fn a_second_agent_with_the_same_pid_file_refuses_to_start() {
    skip_unless_root!();
    let mut lab = Lab::new("sv_pid");
    let pid_file = lab.topo.workdir().join("agent.pid");
    let pid_arg = pid_file.to_str().unwrap().to_owned();
    let conf_path = lab.start_conf("r1", &conf(200), &["--pid", &pid_arg]);
    lab.wait_holders(&["r1"], SETTLE);
    let pid = lab.agent("r1").pid();
    let written = std::fs::read_to_string(&pid_file).unwrap_or_default();
    lab.check(
        written.trim() == pid.to_string(),
        &format!("PID file: {written:?}"),
    );

    let conf_arg = conf_path.to_str().unwrap().to_owned();
    let second = lab.topo.ns("r1").run(
        lab.bin(),
        ["-f", conf_arg.as_str(), "--pid", pid_arg.as_str()],
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    lab.check(
        second.status.code() == Some(2)
            && stderr.contains(&format!("another vrrp-agent (pid {pid}) runs")),
        &format!("the second agent: {:?}\n{stderr}", second.status),
    );
    lab.assert_state("r1", "MASTER");
}

/// The unit as shipped passes systemd's own checks (ExecStart pointed at the binary under test).
#[test]
fn the_unit_file_verifies() {
    let unit = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/vrrp-agent.service"
    );
    let text = std::fs::read_to_string(unit).unwrap();
    let dir = std::env::temp_dir().join(format!("vrrp-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("vrrp-agent.service");
    let bin = vrrp_lab::agent_bin();
    std::fs::write(
        &copy,
        text.replace("/usr/sbin/vrrp-agent", bin.to_str().unwrap()),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (package systemd)");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
}

/// `--log-format json`: one JSON object per line, for log shippers; journald asked for where
/// there is none: said once, then text. The agent runs for a second in a network namespace of
/// its own without interfaces (its instance waits in FAULT), then SIGTERM.
#[test]
fn log_formats() {
    skip_unless_root!();
    let conf = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vrrp-agent/tests/configs/nginx-master.conf"
    );
    let pid = std::env::temp_dir().join(format!("vrrp-logs-{}.pid", std::process::id()));
    let run = |format: &str| {
        let out = std::process::Command::new("timeout")
            .args(["1", "unshare", "--net"])
            .arg(vrrp_lab::agent_bin())
            .args(["--log-format", format, "-f", conf, "--pid"])
            .arg(&pid)
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let json = run("json");
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let version = lines.iter().find(|l| l["level"] == "INFO").expect(&json);
    let message = version["fields"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("vrrp-agent "), "{json}");
    if !std::path::Path::new("/run/systemd/journal/socket").exists() {
        let text = run("journald");
        assert!(
            text.lines()
                .next()
                .unwrap()
                .contains("cannot log to journald"),
            "{text}"
        );
    }
}

/// `-t` says everything it found in one form: `warning: FILE:LINE: ...` beside the errors'
/// `error: FILE:LINE: ...`, not warnings through the log with a timestamp.
#[test]
fn config_test_findings_in_one_form() {
    let conf = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vrrp-agent/tests/configs/nginx-master.conf"
    );
    let out = std::process::Command::new(vrrp_lab::agent_bin())
        .args(["-t", "-f", conf])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with("warning: ")) && !stderr.is_empty(),
        "{stderr}"
    );
}
