//! `vrrp-agent status`: the running agent answers over its control socket, with the state and
//! counters of each instance; the answers change as a failover happens.
//!
//! Root only (skipped otherwise); run through `cargo xtask test`.

use std::process::Output;
use std::time::Duration;

use vrrp_lab::frames::{advert_frame, parse_mac, reseal};
use vrrp_lab::lab::{Lab, IFACE, SEC, SETTLE, VIP};
use vrrp_lab::skip_unless_root;

/// `vrrp-agent ARGS` in `role`'s namespace (where its default control socket is that agent's).
fn cli(lab: &Lab, role: &str, args: &[&str]) -> Output {
    lab.topo.ns(role).run(lab.bin(), args)
}

#[test]
fn status_follows_a_failover() {
    skip_unless_root!();
    let mut lab = Lab::new("st_failover");
    lab.elect_r1(&[], SETTLE);

    let line = String::from_utf8_lossy(&cli(&lab, "r1", &["status"]).stdout).into_owned();
    lab.check(
        line.starts_with("VI_51") && line.contains(" MASTER ") && line.contains("prio 200/200"),
        &format!("r1: {line}"),
    );
    let r2 = lab.status_json("r2");
    let i = &r2["instances"][0];
    lab.check(
        r2["version"] == 1 && i["state"] == "BACKUP" && i["master"] == "198.51.100.1",
        &format!("r2: {r2}"),
    );
    let code = |role| {
        cli(&lab, role, &["status", "--check-master", "VI_51"])
            .status
            .code()
    };
    lab.check(
        code("r1") == Some(0) && code("r2") == Some(1),
        "--check-master",
    );

    // One advert with TTL 254 from a third host: r2 counts it by its reason.
    lab.topo.add_host("spoof", "198.51.100.30/24").unwrap();
    let mac = parse_mac(&lab.topo.ns("spoof").mac(IFACE).unwrap()).unwrap();
    let mut bad = advert_frame(
        (mac, "198.51.100.30".parse::<std::net::Ipv4Addr>().unwrap()),
        51,
        255,
        10,
        &[VIP.parse().unwrap()],
    );
    bad[22] = 254;
    reseal(&mut bad);
    lab.send_frames("spoof", &[bad], Duration::from_millis(1), 1)
        .wait_timeout(5 * SEC);
    std::thread::sleep(SEC / 5);
    let r2 = lab.status_json("r2");
    let counters = &r2["instances"][0]["counters"];
    lab.check(
        counters["rejected_by"]["TTL"] == 1,
        &format!("r2: {counters}"),
    );

    // r2 may have been master for a moment at the start, before r1's first advert.
    let before = lab.status_json("r2")["instances"][0]["counters"]["became_master"].as_u64();
    let netns = lab
        .topo
        .ns("r1")
        .run_ok("stat", ["-L", "-c", "%i", "/proc/self/ns/net"]);
    let socket = format!("/run/vrrp-agent/control-netns-{}.sock", netns.trim());
    lab.check(std::path::Path::new(&socket).exists(), &socket);
    lab.agent("r1").term().unwrap();
    lab.wait_holders(&["r2"], SETTLE);
    lab.agent("r1").wait_timeout(5 * SEC);
    lab.check(
        !std::path::Path::new(&socket).exists(),
        "r1's control socket left behind",
    );
    let r2 = lab.status_json("r2");
    let i = &r2["instances"][0];
    let c = &i["counters"];
    lab.check(
        i["state"] == "MASTER"
            && c["became_master"].as_u64() == before.map(|n| n + 1)
            && c["priority_zero_received"].as_u64() >= Some(1)
            && i["last_transition"]
                .as_str()
                .is_some_and(|t| t.starts_with("BACKUP -> MASTER")),
        &format!("r2 after the failover: {r2}"),
    );
}

#[test]
fn status_without_an_agent_or_as_another_user_says_so() {
    skip_unless_root!();
    let mut lab = Lab::new("st_errors");
    lab.start("r1", 200, &[]);
    lab.wait_holders(&["r1"], SETTLE);
    let none = cli(
        &lab,
        "r1",
        &["status", "--control-socket", "/nonexistent/control.sock"],
    );
    let stderr = String::from_utf8_lossy(&none.stderr);
    lab.check(
        none.status.code() == Some(3) && stderr.contains("no vrrp-agent answers"),
        &format!("{:?}: {stderr}", none.status),
    );
    // The socket is root's alone (0600).
    let nobody = lab.topo.ns("r1").run(
        "setpriv",
        [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            lab.bin(),
            "status",
        ],
    );
    lab.check(
        nobody.status.code() == Some(3),
        &format!("nobody: {nobody:?}"),
    );
    let missing = cli(&lab, "r1", &["status", "VI_9"]);
    lab.check(missing.status.code() == Some(2), &format!("{missing:?}"));
}

/// `GET /metrics` on each router (its own loopback, the same port): keepalived-exporter's
/// names and values, which follow a failover, and ours beside them.
fn scrape(lab: &Lab, role: &str) -> String {
    let out = lab.topo.ns(role).run(
        "curl",
        ["-sf", "--max-time", "5", "http://127.0.0.1:9650/metrics"],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of the sample whose line starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(series))?;
    line.rsplit(' ').next()?.parse().ok()
}

#[test]
fn metrics_speak_keepalived_exporter() {
    skip_unless_root!();
    let mut lab = Lab::new("st_metrics");
    lab.elect_r1(&["--metrics-listen", "127.0.0.1:9650"], SETTLE);
    let labels = r#"{iname="VI_51",intf="eth0",vrid="51""#;
    let state = format!(r#"keepalived_vrrp_state{labels},ip_address="{VIP}"}}"#);
    let (r1, r2) = (scrape(&lab, "r1"), scrape(&lab, "r2"));
    lab.check(
        sample(&r1, &state) == Some(2.0)
            && sample(&r2, &state) == Some(1.0)
            && sample(&r1, "keepalived_up") == Some(1.0)
            && sample(
                &r1,
                &format!("keepalived_advertisements_sent_total{labels}}}"),
            )
            .is_some_and(|n| n > 0.0)
            && sample(
                &r1,
                &format!("vrrp_agent_receive_path{labels},path=\"kernel\"}}"),
            ) == Some(1.0)
            && r1.contains("vrrp_agent_build_info{version="),
        &format!("r1:\n{r1}\nr2:\n{r2}"),
    );
    // r2's kernel timed r1's adverts: 100 ms apart, below the 134.2 ms bound, none below 67.1.
    std::thread::sleep(SEC);
    let r2 = scrape(&lab, "r2");
    let bucket = |le: &str| {
        // The encoder puts `le` first.
        let rest = &labels[1..];
        sample(
            &r2,
            &format!("vrrp_agent_advert_gap_seconds_bucket{{le=\"{le}\",{rest}"),
        )
    };
    lab.check(
        bucket("0.134217728").is_some_and(|n| n >= 5.0)
            && bucket("0.067108864").is_some_and(|n| n <= 1.0)
            && bucket("+Inf") == bucket("0.134217728"),
        &format!("r2's advert gaps:\n{r2}"),
    );

    // Kept alive, as Prometheus expects: two scrapes, one connection.
    let url = "http://127.0.0.1:9650/metrics";
    let two = lab.topo.ns("r1").run(
        "curl",
        [
            "-sv",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            url,
            url,
        ],
    );
    let verbose = String::from_utf8_lossy(&two.stderr);
    lab.check(
        verbose.matches("HTTP/1.1 200 OK").count() == 2
            && verbose.contains("Re-using existing connection"),
        &format!("two scrapes on one connection:\n{verbose}"),
    );

    let became = format!("keepalived_become_master_total{labels}}}");
    let before = sample(&r2, &became).unwrap_or(0.0);
    lab.agent("r1").term().unwrap();
    lab.wait_holders(&["r2"], SETTLE);
    let r2 = scrape(&lab, "r2");
    lab.check(
        sample(&r2, &state) == Some(2.0)
            && sample(&r2, &became) == Some(before + 1.0)
            && sample(
                &r2,
                &format!("keepalived_priority_zero_received_total{labels}}}"),
            )
            .is_some_and(|n| n >= 1.0),
        &format!("r2 after the failover:\n{r2}"),
    );

    // The port taken (by r2's own agent): a clear error at start, nothing else done.
    let conf = lab.topo.workdir().join("r2-port.conf");
    std::fs::write(
        &conf,
        "vrrp_instance VI_9 {\n interface eth0\n virtual_router_id 9\n priority 100\n \
         virtual_ipaddress {\n  198.51.100.109/24\n }\n}\n",
    )
    .unwrap();
    let pid = lab.topo.workdir().join("second.pid");
    let sock = lab.topo.workdir().join("second.sock");
    let second = lab.topo.ns("r2").run(
        lab.bin(),
        [
            "-f",
            conf.to_str().unwrap(),
            "--pid",
            pid.to_str().unwrap(),
            "--control-socket",
            sock.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:9650",
        ],
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    lab.check(
        second.status.code() == Some(1)
            && stderr.contains("cannot serve metrics on 127.0.0.1:9650"),
        &format!("{:?}: {stderr}", second.status),
    );
}

/// A check that fails shows as failing in `status --json` and as BAD (0) in
/// `keepalived_script_status`; one that passes as GOOD (1).
#[test]
fn checks_show_their_state() {
    skip_unless_root!();
    let mut lab = Lab::new("st_checks");
    let conf = format!(
        "vrrp_script chk_good {{\n script /bin/true\n interval 1\n}}\n\
         vrrp_script chk_bad {{\n script /bin/false\n interval 1\n}}\n\
         vrrp_instance VI_1 {{\n interface {IFACE}\n virtual_router_id 51\n priority 200\n \
         advert_int 0.1\n version 3\n virtual_ipaddress {{\n  {VIP}/24\n }}\n \
         track_script {{\n  chk_good\n  chk_bad weight -10\n }}\n}}\n"
    );
    lab.start_conf("r1", &conf, &["--metrics-listen", "127.0.0.1:9650"]);
    lab.wait_holders(&["r1"], SETTLE);
    std::thread::sleep(2 * SEC);
    let doc = lab.status_json("r1");
    let up = |name: &str| {
        doc["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name))
            .map(|c| c["up"].clone())
    };
    lab.check(
        up("chk_good") == Some(true.into()) && up("chk_bad") == Some(false.into()),
        &format!("{doc}"),
    );
    let i = &doc["instances"][0];
    let tracked = i["tracked"].as_array().cloned().unwrap_or_default();
    let own = tracked.iter().find(|t| t["name"] == IFACE);
    let bad = tracked.iter().find(|t| t["name"] == "chk_bad");
    lab.check(
        i["priority"] == 190
            && own.is_some_and(|t| t["kind"] == "interface" && t["up"] == true)
            && bad.is_some_and(|t| t["kind"] == "check" && t["weight"] == -10 && t["up"] == false)
            && i["counters"]["garps_sent"] == 5,
        &format!("{doc}"),
    );
    let bad = (doc["checks"].as_array().into_iter().flatten())
        .find(|c| c["name"] == "chk_bad")
        .cloned()
        .unwrap_or_default();
    lab.check(
        bad["runs"].as_u64() >= Some(2)
            && bad["failures"]["exit status"] == bad["runs"]
            && bad["to_change"] == 1
            && bad["last_failure"] == "exited with status 1",
        &format!("chk_bad: {bad}"),
    );
    let text = String::from_utf8_lossy(&cli(&lab, "r1", &["status"]).stdout).into_owned();
    lab.check(
        text.lines()
            .any(|l| l.starts_with("check chk_bad") && l.contains(" DOWN ")),
        &text,
    );
    let metrics = scrape(&lab, "r1");
    lab.check(
        sample(&metrics, r#"keepalived_script_status{name="chk_good"}"#) == Some(1.0)
            && sample(&metrics, r#"keepalived_script_status{name="chk_bad"}"#) == Some(0.0)
            && sample(
                &metrics,
                r#"vrrp_agent_check_failures_total{name="chk_bad",kind="exit status"}"#,
            ) >= Some(2.0),
        &metrics,
    );
    // SIGUSR1 logs the same lines.
    lab.status("r1", "status: check chk_bad");
}

/// What the counters say went over the link is what went over it: the master's adverts sent
/// and the backup's adverts received, read before and after a window, against a capture on
/// the backup's link timed by the same clock.
#[test]
fn advert_counters_match_a_capture() {
    skip_unless_root!();
    let mut lab = Lab::new("st_capture");
    lab.elect_r1(&[], SETTLE);
    let capture = lab
        .topo
        .ns("r2")
        .capture(IFACE, "ip proto 112 and src 198.51.100.1", 1000, 20 * SEC)
        .unwrap_or_else(|e| lab.fail(&format!("{e:#}")));
    let counts = |lab: &Lab| {
        let r1 = lab.status_json("r1")["instances"][0]["counters"]["adverts_sent"].as_u64();
        let r2 = lab.status_json("r2")["instances"][0]["kernel"]["adverts"].as_u64();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        (r1.unwrap_or(0), r2.unwrap_or(0), now.unwrap().as_secs_f64())
    };
    std::thread::sleep(SEC / 2);
    let (sent0, received0, t0) = counts(&lab);
    std::thread::sleep(3 * SEC);
    let (sent1, received1, t1) = counts(&lab);
    std::thread::sleep(SEC / 2);
    let lines = capture.stop().lines("").unwrap_or_default();
    let on_link = (lines.iter())
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .filter(|t| (t0..t1).contains(t))
        .count() as u64;
    // Each edge of the window may fall between a counter's read and the clock's.
    let near = |n: u64| n.abs_diff(on_link) <= 2;
    lab.check(
        on_link >= 25 && near(sent1 - sent0) && near(received1 - received0),
        &format!(
            "{on_link} adverts on the link; r1 counted {} sent, r2 {} received",
            sent1 - sent0,
            received1 - received0
        ),
    );
}
