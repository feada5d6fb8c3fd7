//! End-to-end tests of keepalived.conf compatibility: agents started with `-f keepalived.conf`,
//! real nginx from Debian in the router namespaces, the client fetching a page over the VIP.
//!
//! The nginx checks probe 127.0.0.1 inside the router's namespace: both routers share this
//! host's PID namespace, so `pidof nginx` would see the other router's nginx too.
//!
//! Root only (skipped otherwise); run through `cargo xtask test`, which builds the agent and
//! installs nginx and curl first.

use std::{path::Path, process::Command, time::Duration};

use vrrp_lab::lab::{Lab, SEC, VIP as VIP1, VIP6};
use vrrp_lab::{agent_bin, skip_unless_root, wait_until, Proc, R1_ADDR, R2_ADDR};

const VIP2: &str = "198.51.100.101";
/// VRRPv2 at 1 s (keepalived's defaults): Master_Down is ~3.6 s, checks run every second.
const FAILOVER: Duration = Duration::from_secs(20);

/// The usual keepalived+nginx tutorial config: VRRPv2, PASS auth, a script check with a weight
/// that drops the master below the backup when nginx fails.
fn nginx_conf(state: &str, priority: u8, extra: &str) -> String {
    nginx_conf_with(SCRIPT_CHECK, state, priority, extra)
}

/// The tutorials' check: a script run every second.
const SCRIPT_CHECK: &str = r#"vrrp_script chk_nginx {
    script "/usr/bin/curl -sf -o /dev/null --max-time 1 http://127.0.0.1/"
    interval 1
    timeout 2
    weight -60
    fall 1
    rise 1
}"#;

/// The extension: the same check in process, every 100 ms, no fork/exec.
const IN_PROCESS_CHECK: &str = r#"vrrp_agent {
    check chk_nginx {
        http http://127.0.0.1/
        interval 0.1
        timeout 0.5
        weight -60
    }
}"#;

fn nginx_conf_with(check: &str, state: &str, priority: u8, extra: &str) -> String {
    format!(
        r#"! keepalived.conf as in the keepalived + nginx tutorials
global_defs {{
    router_id {state}_node
    enable_script_security
    script_user root
}}

{check}

vrrp_instance VI_1 {{
    state {state}
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    {extra}
    authentication {{
        auth_type PASS
        auth_pass s3cr3t
    }}
    virtual_ipaddress {{
        {VIP1}/24 dev eth0 label eth0:1
    }}
    track_script {{
        chk_nginx
    }}
}}
"#
    )
}

/// Starts nginx in `role`'s namespace serving its role name on port 80, in the foreground so it
/// is stopped by PID with the lab.
fn start_nginx(lab: &Lab, role: &str) -> Proc {
    let dir = lab.topo.workdir();
    let conf = dir.join(format!("nginx-{role}.conf"));
    let text = format!(
        "daemon off;\npid {pid};\nerror_log {err};\nevents {{}}\nhttp {{\n  access_log off;\n  \
         server {{ listen 80; listen [::]:80; location / {{ return 200 \"{role}\\n\"; }} }}\n}}\n",
        pid = dir.join(format!("nginx-{role}.pid")).display(),
        err = dir.join(format!("nginx-{role}.err")).display(),
    );
    std::fs::write(&conf, text).expect("write nginx.conf");
    let proc = lab
        .topo
        .ns(role)
        .spawn("nginx", ["-c", conf.to_str().expect("UTF-8 path")]);
    let up = wait_until(10 * SEC, Duration::from_millis(100), || {
        fetch(lab, role, "127.0.0.1").as_deref() == Some(role)
    });
    assert!(up, "nginx did not start in {role}: {}", proc.log());
    proc
}

/// The page at `addr` fetched from `from`'s namespace.
fn fetch(lab: &Lab, from: &str, addr: &str) -> Option<String> {
    let host = match addr.contains(':') {
        true => format!("[{addr}]"),
        false => addr.to_owned(),
    };
    let out = lab.topo.ns(from).run(
        "curl",
        ["-sf", "--max-time", "1", &format!("http://{host}/")],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Waits until the client's request to `vip` is answered by `role`'s nginx.
#[track_caller]
fn wait_served_by(lab: &Lab, vip: &str, role: &str, timeout: Duration) {
    let ok = wait_until(timeout, Duration::from_millis(200), || {
        fetch(lab, "client", vip).as_deref() == Some(role)
    });
    lab.check(
        ok,
        &format!(
            "the client's request to {vip} was not answered by {role}'s nginx within \
             {timeout:?} (now: {:?})",
            fetch(lab, "client", vip)
        ),
    );
}

fn nginx_failover(name: &str, check: &str, nopreempt: bool) {
    let mut lab = Lab::new(name);
    let mut nginx1 = start_nginx(&lab, "r1");
    let _nginx2 = start_nginx(&lab, "r2");
    let (r1_state, r1_extra) = if nopreempt {
        ("BACKUP", "nopreempt")
    } else {
        ("MASTER", "")
    };
    lab.start_conf("r1", &nginx_conf_with(check, r1_state, 150, r1_extra), &[]);
    lab.start_conf("r2", &nginx_conf_with(check, "BACKUP", 100, ""), &[]);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
    // The label from the config is on the address.
    let labelled = lab
        .topo
        .ns("r1")
        .run_ok("ip", ["-br", "addr", "show", "label", "eth0:1"]);
    lab.check(
        labelled.contains(VIP1),
        &format!("no eth0:1 label: {labelled}"),
    );
    wait_served_by(&lab, VIP1, "r1", FAILOVER);

    // nginx dies on the master: its check fails, priority 150 - 60 = 90 < 100, r2 takes over.
    let mark = lab.log_len("r1");
    nginx1.term().unwrap();
    lab.wait_log("r1", mark, "priority 150 -> 90", FAILOVER);
    lab.wait_holders_of(VIP1, &["r2"], FAILOVER);
    wait_served_by(&lab, VIP1, "r2", FAILOVER);

    // nginx back: priority 150 again; r1 preempts, unless nopreempt.
    let _nginx1 = start_nginx(&lab, "r1");
    lab.wait_log("r1", mark, "priority 90 -> 150", FAILOVER);
    if nopreempt {
        std::thread::sleep(8 * SEC); // more than two Master_Down intervals
        lab.wait_holders_of(VIP1, &["r2"], SEC);
        wait_served_by(&lab, VIP1, "r2", SEC);
    } else {
        lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
        wait_served_by(&lab, VIP1, "r1", FAILOVER);
    }
}

/// nginx stops on the master → the VIP moves and the client's HTTP request is answered by the
/// backup's nginx; nginx back → the VIP returns.
#[test]
fn nginx_check_moves_vip_and_back() {
    skip_unless_root!();
    nginx_failover("kc_nginx", SCRIPT_CHECK, false);
}

/// The same with the in-process HTTP check of the `vrrp_agent` extension.
#[test]
fn in_process_http_check_moves_vip_and_back() {
    skip_unless_root!();
    nginx_failover("kc_inproc", IN_PROCESS_CHECK, false);
}

/// The same with `nopreempt` on r1: nginx back does not move the VIP back.
#[test]
fn nginx_check_with_nopreempt_stays() {
    skip_unless_root!();
    nginx_failover("kc_nopreempt", SCRIPT_CHECK, true);
}

/// A VRRPv3 `vrrp_instance` at 100 ms with VIP `vip`/24 and the lines `extra` ("" for none).
fn instance(name: &str, iface: &str, vrid: u8, prio: u8, vip: &str, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n  interface {iface}\n  virtual_router_id {vrid}\n  \
         priority {prio}\n  advert_int 0.1\n  version 3\n  virtual_ipaddress {{ {vip}/24 }}\n  \
         {extra}\n}}\n"
    )
}

fn dual_master_conf(p51: u8, p52: u8) -> String {
    instance("VI_1", "eth0", 51, p51, VIP1, "") + &instance("VI_2", "eth0", 52, p52, VIP2, "")
}

/// Dual master: each host master of one VIP; one host down → both VIPs on the other; back → each
/// returns home.
#[test]
fn dual_master() {
    skip_unless_root!();
    let mut lab = Lab::new("kc_dual");
    lab.start_conf("r1", &dual_master_conf(150, 100), &[]);
    lab.start_conf("r2", &dual_master_conf(100, 150), &[]);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
    lab.wait_holders_of(VIP2, &["r2"], FAILOVER);

    lab.agent("r1").term().unwrap();
    lab.wait_holders_of(VIP1, &["r2"], FAILOVER);
    lab.wait_holders_of(VIP2, &["r2"], FAILOVER);

    lab.start_conf("r1", &dual_master_conf(150, 100), &[]);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
    lab.wait_holders_of(VIP2, &["r2"], FAILOVER);
}

/// keepalived.conf with an IPv4 and an IPv6 instance of the same VRID in each agent: r1 master
/// of the IPv4 VIP, r2 of the IPv6 one, each serving its own over HTTP; r2's nginx fails → the
/// IPv6 VIP moves to r1 alone, the IPv4 one stays; nginx back → it returns.
#[test]
fn dual_stack_instances_move_independently() {
    skip_unless_root!();
    let mut lab = Lab::new("kc_dual_stack");
    let _nginx1 = start_nginx(&lab, "r1");
    let mut nginx2 = start_nginx(&lab, "r2");
    let conf = |p4: u8, p6: u8| {
        let v6 = "virtual_ipaddress {\n    fe80::1\n    2001:db8::100/64\n  }\n  \
                  track_script {\n    chk_nginx\n  }";
        format!(
            "global_defs {{\n  enable_script_security\n  script_user root\n}}\n\
             {SCRIPT_CHECK}\n{}vrrp_instance VI_6 {{\n  interface eth0\n  virtual_router_id 51\n  \
             priority {p6}\n  advert_int 0.1\n  {v6}\n}}\n",
            instance("VI_4", "eth0", 51, p4, VIP1, "")
        )
    };
    lab.start_conf("r1", &conf(150, 100), &[]);
    lab.start_conf("r2", &conf(100, 150), &[]);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
    lab.wait_holders_of(VIP6, &["r2"], FAILOVER);
    wait_served_by(&lab, VIP1, "r1", FAILOVER);
    wait_served_by(&lab, VIP6, "r2", FAILOVER);

    // r2's nginx fails: 150 - 60 = 90 < 100, its IPv6 VIP goes to r1; the IPv4 one stays.
    nginx2.term().unwrap();
    lab.wait_holders_of(VIP6, &["r1"], FAILOVER);
    wait_served_by(&lab, VIP6, "r1", FAILOVER);
    lab.wait_holders_of(VIP1, &["r1"], SEC);
    let _nginx2 = start_nginx(&lab, "r2");
    lab.wait_holders_of(VIP6, &["r2"], FAILOVER);
    wait_served_by(&lab, VIP6, "r2", FAILOVER);
    wait_served_by(&lab, VIP1, "r1", FAILOVER);
}

/// Three routers: the VIP always goes to the best live one.
#[test]
fn three_nodes_hand_over_in_priority_order() {
    skip_unless_root!();
    let mut lab = Lab::new("kc_three");
    lab.add_router("r3", "198.51.100.3/24");
    let conf = |prio: u8| instance("VI_1", "eth0", 51, prio, VIP1, "");
    lab.start_conf("r1", &conf(150), &[]);
    lab.start_conf("r2", &conf(100), &[]);
    lab.start_conf("r3", &conf(50), &[]);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
    lab.agent("r1").term().unwrap();
    lab.wait_holders_of(VIP1, &["r2"], FAILOVER);
    lab.agent("r2").term().unwrap();
    lab.wait_holders_of(VIP1, &["r3"], FAILOVER);
}

/// `track_interface`: the tracked interface loses carrier → FAULT (VIP released, the backup
/// takes over); carrier back → the election restarts and r1 preempts.
#[test]
fn track_interface_down_is_fault() {
    skip_unless_root!();
    let mut lab = Lab::new("kc_trackif");
    add_uplink(&lab, "r1");
    // A notify script that records its arguments (keepalived's: INSTANCE NAME STATE PRIORITY).
    let record = lab.topo.workdir().join("notify.log");
    let script = lab.topo.workdir().join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", record.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let conf = |prio: u8, extra: &str| instance("VI_1", "eth0", 51, prio, VIP1, extra);
    let r1_extra = format!(
        "track_interface {{\n    uplink\n  }}\n  notify {}",
        script.display()
    );
    lab.start_conf("r1", &conf(150, &r1_extra), &[]);
    lab.start_conf("r2", &conf(100, ""), &[]);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);

    let mark = lab.log_len("r1");
    set_uplink_carrier(&lab, "r1", "down");
    lab.wait_log(
        "r1",
        mark,
        "MASTER -> FAULT: fault (interface uplink down)",
        FAILOVER,
    );
    lab.wait_holders_of(VIP1, &["r2"], FAILOVER);

    set_uplink_carrier(&lab, "r1", "up");
    lab.wait_log("r1", mark, "FAULT -> BACKUP: fault cleared", FAILOVER);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);

    let notified = || std::fs::read_to_string(&record).unwrap_or_default();
    let want = [
        "INSTANCE VI_1 BACKUP 150",
        "INSTANCE VI_1 MASTER 150",
        "INSTANCE VI_1 FAULT 150",
    ];
    let ok = wait_until(FAILOVER, Duration::from_millis(100), || {
        want.iter().all(|w| notified().lines().any(|l| l == *w))
    });
    lab.check(
        ok,
        &format!("notify calls: want {want:?} among:\n{}", notified()),
    );
}

/// Adds an "uplink" to `role`: a veth pair inside its namespace, so no traffic leaves it; setting
/// `uplink-peer` down cuts its carrier.
fn add_uplink(lab: &Lab, role: &str) {
    let ns = lab.topo.ns(role);
    ns.run_ok(
        "ip",
        [
            "link",
            "add",
            "uplink",
            "type",
            "veth",
            "peer",
            "name",
            "uplink-peer",
        ],
    );
    ns.run_ok("ip", ["link", "set", "uplink", "up"]);
    set_uplink_carrier(lab, role, "up");
}

/// Cuts ("down") or restores ("up") the carrier of `role`'s uplink (see [`add_uplink`]).
fn set_uplink_carrier(lab: &Lab, role: &str, state: &str) {
    lab.topo
        .ns(role)
        .run_ok("ip", ["link", "set", "uplink-peer", state]);
}

/// `vrrp_sync_group`: one member's FAULT takes the whole group to FAULT, so both VIPs move
/// together; when it clears, both come back.
#[test]
fn sync_group_members_fail_over_together() {
    skip_unless_root!();
    let mut lab = Lab::new("kc_sync");
    add_uplink(&lab, "r1");
    let conf = |prio: u8, track: &str| {
        "vrrp_sync_group G1 {\n  group {\n    VI_1\n    VI_2\n  }\n}\n".to_owned()
            + &instance("VI_1", "eth0", 51, prio, VIP1, "")
            + &instance("VI_2", "eth0", 52, prio, VIP2, track)
    };
    lab.start_conf("r1", &conf(150, "track_interface {\n    uplink\n  }"), &[]);
    lab.start_conf("r2", &conf(100, ""), &[]);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
    lab.wait_holders_of(VIP2, &["r1"], FAILOVER);

    let mark = lab.log_len("r1");
    set_uplink_carrier(&lab, "r1", "down");
    lab.wait_log(
        "r1",
        mark,
        "fault (sync group G1: VI_2 is in FAULT)",
        FAILOVER,
    );
    lab.wait_holders_of(VIP1, &["r2"], FAILOVER);
    lab.wait_holders_of(VIP2, &["r2"], FAILOVER);

    set_uplink_carrier(&lab, "r1", "up");
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
    lab.wait_holders_of(VIP2, &["r1"], FAILOVER);
}

/// `unicast_peer`: adverts go to the peer, not to 224.0.0.18, and failover works over them.
#[test]
fn unicast_peers() {
    skip_unless_root!();
    let mut lab = Lab::new("kc_unicast");
    let conf = |prio: u8, me: &str, peer: &str| {
        let unicast = format!("unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}");
        instance("VI_1", "eth0", 51, prio, VIP1, &unicast)
    };
    lab.start_conf("r1", &conf(150, R1_ADDR, R2_ADDR), &[]);
    lab.start_conf("r2", &conf(100, R2_ADDR, R1_ADDR), &[]);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
    // r2 stays backup on r1's unicast adverts, and none go to the multicast group.
    let mut cap = lab
        .topo
        .ns("r2")
        .capture("eth0", "ip proto 112", 10, 3 * SEC)
        .unwrap();
    cap.wait(5 * SEC); // 10 adverts take a second
    let lines = cap.stop().lines("").unwrap();
    lab.check(
        lines
            .iter()
            .any(|l| l.contains(&format!("{R1_ADDR} > {R2_ADDR}"))),
        &format!("no unicast advert from r1 to r2 seen: {lines:?}"),
    );
    lab.check(
        !lines.iter().any(|l| l.contains("224.0.0.18")),
        &format!("multicast adverts seen with unicast peers: {lines:?}"),
    );
    lab.assert_state("r2", "BACKUP");

    lab.agent("r1").term().unwrap();
    lab.wait_holders_of(VIP1, &["r2"], FAILOVER);
}

/// SIGHUP reload: an unchanged instance keeps its state and VIP (no transition, no gap); a new
/// instance starts; a bad file is refused and the running configuration stays.
#[test]
fn sighup_reload_without_flap() {
    skip_unless_root!();
    let mut lab = Lab::new("kc_reload");
    // VI_1 alone: r1 150, r2 100.
    let first = |conf: &str| conf[..conf.find("vrrp_instance VI_2").unwrap()].to_owned();
    let one = dual_master_conf(150, 100);
    let path = lab.start_conf("r1", &first(&one), &[]);
    lab.start_conf("r2", &first(&dual_master_conf(100, 150)), &[]);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
    lab.wait_log("r2", 0, "-> BACKUP", FAILOVER);

    // Add VI_2 on r1 only: VI_1 must not move, VI_2 starts and, alone, takes VIP2.
    let mark = lab.log_len("r1");
    std::fs::write(&path, &one).unwrap();
    lab.agent("r1").signal(libc::SIGHUP).unwrap();
    lab.wait_log(
        "r1",
        mark,
        "SIGHUP: 1 instance(s) unchanged, 0 stopped, 1 starting",
        FAILOVER,
    );
    lab.wait_holders_of(VIP2, &["r1"], FAILOVER);
    lab.assert_stable(&["r1"], 2 * SEC);
    let since = lab.log_since("r1", mark);
    let vi_1_moved = since
        .lines()
        .any(|l| l.contains(" -> ") && l.contains("instance=VI_1"));
    lab.check(
        !vi_1_moved,
        &format!("VI_1 changed state on reload:\n{since}"),
    );

    // A broken file is refused; both instances stay as they are.
    let mark = lab.log_len("r1");
    std::fs::write(
        &path,
        format!("{one}\nvrrp_instance VI_3 {{\n  priorty 1\n}}\n"),
    )
    .unwrap();
    lab.agent("r1").signal(libc::SIGHUP).unwrap();
    lab.wait_log(
        "r1",
        mark,
        "still running the previous configuration",
        FAILOVER,
    );
    lab.wait_holders_of(VIP1, &["r1"], SEC);
    lab.wait_holders_of(VIP2, &["r1"], SEC);
}

fn check_config(path: &Path) -> (bool, String) {
    let out = Command::new(agent_bin())
        .args(["-t", "-f", path.to_str().expect("UTF-8 path")])
        .output()
        .expect("run vrrp-agent -t");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `vrrp-agent -t -f FILE`: 0 for a good file; non-zero with FILE:LINE for a bad one. Needs no
/// root and no network.
#[test]
fn check_config_names_file_and_line() {
    let dir = std::env::temp_dir().join(format!("vrrp-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.conf");
    std::fs::write(&good, nginx_conf("MASTER", 150, "")).unwrap();
    let (ok, text) = check_config(&good);
    assert!(ok, "good config refused: {text}");

    let bad = dir.join("bad.conf");
    std::fs::write(
        &bad,
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priorty 100\n}\n",
    )
    .unwrap();
    let (ok, text) = check_config(&bad);
    assert!(!ok, "bad config accepted: {text}");
    assert!(text.contains("bad.conf:4:"), "no file:line in: {text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two instances on two interfaces in one agent (one XDP program, both VRIDs in its map), the
/// second with `no_accept`: its master answers ARP for the VIP but drops traffic to it. Each
/// interface fails over on its own.
#[test]
fn two_interfaces_and_no_accept() {
    skip_unless_root!();
    const VIP_B: &str = "203.0.113.100";
    let mut lab = Lab::new("kc_two_ifaces");
    lab.topo
        .add_lan2_link("r1", "eth1", "203.0.113.1/24")
        .unwrap();
    lab.topo
        .add_lan2_link("r2", "eth1", "203.0.113.2/24")
        .unwrap();
    lab.topo
        .add_lan2_host("client2", "203.0.113.10/24")
        .unwrap();
    let conf = |prio: u8| {
        instance("VI_A", "eth0", 51, prio, VIP1, "")
            + &instance("VI_B", "eth1", 52, prio, VIP_B, "no_accept")
    };
    lab.start_conf("r1", &conf(150), &[]);
    lab.start_conf("r2", &conf(100), &[]);
    lab.wait_holders_of(VIP1, &["r1"], FAILOVER);
    lab.wait_holders_on("eth1", VIP_B, &["r1"], FAILOVER);
    for iface in ["eth0", "eth1"] {
        lab.wait_log(
            "r1",
            0,
            &format!("receive path: TC ingress (veth) iface={iface}"),
            SEC,
        );
    }

    // VI_A accepts; VI_B's master answers ARP (the client learns r1's MAC) but drops the ping.
    let client2 = lab.topo.ns("client2");
    lab.check(
        lab.topo.ping("client", VIP1, 1, 2 * SEC),
        "ping to the accepting VIP",
    );
    lab.check(
        !client2.ping(VIP_B, 2, 2 * SEC),
        "no_accept: the master answered a ping to its VIP",
    );
    let r1_mac = lab.topo.ns("r1").mac("eth1");
    lab.check(
        client2.neigh_lladdr(VIP_B) == r1_mac,
        &format!(
            "ARP for {VIP_B}: {:?}, want r1's {r1_mac:?}",
            client2.neigh_lladdr(VIP_B)
        ),
    );

    // r1 loses its second LAN: only VI_B moves, and r2 drops its traffic too.
    lab.topo.cut_lan2_link("r1");
    lab.wait_holders_on("eth1", VIP_B, &["r2"], FAILOVER);
    lab.wait_holders_of(VIP1, &["r1"], SEC);
    lab.check(
        !client2.ping(VIP_B, 2, 2 * SEC),
        "no_accept: the new master answered a ping to its VIP",
    );
    lab.check(
        client2.neigh_lladdr(VIP_B) == lab.topo.ns("r2").mac("eth1"),
        "the client did not learn r2's MAC for the VIP",
    );

    // Stopping the agent takes its firewall table with it.
    let stopped = lab.agent("r2").stop(5 * SEC);
    lab.check(stopped.success(), &format!("r2 stopped with {stopped}"));
    let table = lab
        .topo
        .ns("r2")
        .run("nft", ["list", "table", "inet", "vrrp_agent"]);
    lab.check(!table.status.success(), "r2 left its nftables table behind");
}
