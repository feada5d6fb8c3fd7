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

fn json(lab: &Lab, role: &str) -> serde_json::Value {
    let out = cli(lab, role, &["status", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| lab.fail(&format!("{e}: {text}")))
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
    let r2 = json(&lab, "r2");
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
        (mac, "198.51.100.30".parse().unwrap()),
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
    let r2 = json(&lab, "r2");
    let counters = &r2["instances"][0]["counters"];
    lab.check(
        counters["rejected_by"]["TTL"] == 1,
        &format!("r2: {counters}"),
    );

    lab.agent("r1").term().unwrap();
    lab.wait_holders(&["r2"], SETTLE);
    let r2 = json(&lab, "r2");
    let i = &r2["instances"][0];
    let c = &i["counters"];
    lab.check(
        i["state"] == "MASTER"
            && c["became_master"] == 1
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
