//! Tests of the namespace topology helper itself (root only; skipped otherwise).

use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use vrrp_lab::{
    is_root, list_netns, skip_unless_root, wait_until, Topology, CLIENT_ADDR, R1_ADDR, R2_ADDR,
};

const SEC: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(100);

fn assert_gone(names: &[String]) {
    let now = list_netns();
    let left: Vec<_> = names.iter().filter(|n| now.contains(n)).collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

fn pid_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn ping_cut_and_restore_links() {
    skip_unless_root!();
    let topo = Topology::new("topo_ping").unwrap();
    let names = topo.ns_names();
    assert_eq!(names.len(), 4);
    for n in &names {
        assert!(n.starts_with(topo.prefix()), "{n}");
        assert!(list_netns().contains(n), "{n} not created");
    }

    // Addresses as specified, eth0 inside each host namespace, nothing on the bridge ns' br0.
    assert!(topo.addrs("r1", "eth0").contains(&format!("{R1_ADDR}/24")));
    assert!(topo.has_addr("r2", "eth0", R2_ADDR));
    assert!(topo.has_addr("client", "eth0", &format!("{CLIENT_ADDR}/24")));
    assert!(!topo.has_addr("r1", "eth0", R2_ADDR));
    assert!(topo.addrs("r1", "nonexistent0").is_empty());
    assert!(topo
        .addrs("br", "br0")
        .iter()
        .all(|a| !a.starts_with("198.51.100.")));

    let reach = |ns: &str, addr: &str| topo.ping(ns, addr, 1, SEC);
    for addr in [R1_ADDR, R2_ADDR] {
        assert!(
            wait_until(10 * SEC, POLL, || reach("client", addr)),
            "client cannot ping {addr}"
        );
    }
    assert!(reach("r1", R2_ADDR));

    // Pulled cable: r1 loses carrier, client loses r1 but keeps r2.
    topo.cut_link("r1");
    assert!(
        wait_until(5 * SEC, POLL, || topo
            .ns("r1")
            .oper_state("eth0")
            .as_deref()
            != Some("UP")),
        "r1 eth0 still UP after cut_link: {:?}",
        topo.ns("r1").oper_state("eth0")
    );
    assert!(
        !reach("client", R1_ADDR),
        "client still reaches r1 after cut"
    );
    assert!(reach("client", R2_ADDR), "client lost r2 after cutting r1");

    topo.restore_link("r1");
    assert!(
        wait_until(10 * SEC, POLL, || reach("client", R1_ADDR)),
        "client cannot ping r1 after restore_link"
    );
    assert_eq!(topo.ns("r1").oper_state("eth0").as_deref(), Some("UP"));

    // Administrative down inside the router.
    topo.link_down("r1");
    assert_eq!(topo.ns("r1").oper_state("eth0").as_deref(), Some("DOWN"));
    assert!(!reach("client", R1_ADDR));
    assert!(reach("client", R2_ADDR));
    topo.link_up("r1");
    assert!(wait_until(10 * SEC, POLL, || reach("client", R1_ADDR)));

    drop(topo);
    assert_gone(&names);
}

#[test]
fn processes_signals_and_teardown() {
    skip_unless_root!();
    let topo = Topology::new("topo_procs").unwrap();
    let names = topo.ns_names();

    // Runs inside the namespace: sees r1's address.
    let out = topo
        .ns("r1")
        .run_ok("ip", ["-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(out.contains(R1_ADDR), "{out}");

    // Output goes to the log file.
    let mut p = topo.ns("r2").spawn(
        "sh",
        ["-c", "echo hello from r2; ip -4 -o addr show dev eth0"],
    );
    let st = p.wait_timeout(5 * SEC).expect("sh did not exit");
    assert!(st.success());
    assert!(p.log().contains("hello from r2"), "{}", p.log());
    assert!(p.log().contains(R2_ADDR), "{}", p.log());
    assert!(
        p.signal(libc::SIGTERM).is_err(),
        "signal after exit must fail"
    );

    // SIGTERM and SIGKILL reach the process itself.
    let mut a = topo.ns("r1").spawn("sleep", ["1000"]);
    assert!(a.is_running());
    a.term().unwrap();
    let st = a.wait_timeout(5 * SEC).expect("no exit after SIGTERM");
    assert_eq!(st.signal(), Some(libc::SIGTERM));

    let mut b = topo.ns("r1").spawn("sleep", ["1000"]);
    b.kill9().unwrap();
    let st = b.wait_timeout(5 * SEC).expect("no exit after SIGKILL");
    assert_eq!(st.signal(), Some(libc::SIGKILL));

    // A process ignoring SIGTERM is SIGKILLed (with its children) by stop().
    let mut stubborn = topo
        .ns("r2")
        .spawn("sh", ["-c", "trap '' TERM; sleep 1000 & wait"]);
    std::thread::sleep(Duration::from_millis(200));
    let st = stubborn.stop(Duration::from_millis(300));
    assert_eq!(st.signal(), Some(libc::SIGKILL));

    // Guard outliving the topology: Topology's drop stops it.
    let mut survivor = topo.ns("client").spawn("sleep", ["1000"]);
    let pid = survivor.pid();
    drop(topo);
    assert!(survivor.try_wait().is_some(), "pid {pid} survived teardown");
    assert!(!pid_exists(pid));
    assert_gone(&names);
}

#[test]
fn panic_in_test_body_still_cleans_up() {
    skip_unless_root!();
    let mut seen = (Vec::new(), 0u32);
    let res = catch_unwind(AssertUnwindSafe(|| {
        let topo = Topology::new("topo_panic").unwrap();
        let agent = topo.ns("r1").spawn("sleep", ["1000"]);
        seen = (topo.ns_names(), agent.pid());
        panic!("deliberate panic inside a test body");
    }));
    assert!(res.is_err());
    let (names, pid) = seen;
    assert_eq!(names.len(), 4);
    assert_gone(&names);
    assert!(!pid_exists(pid), "spawned process {pid} survived the panic");
    // The workdir is kept for post-mortem on panic; remove it here.
    let workdir = std::env::temp_dir().join(names[0].trim_end_matches("-br"));
    assert!(workdir.is_dir(), "{} kept", workdir.display());
    std::fs::remove_dir_all(workdir).unwrap();
}

#[test]
fn stale_namespaces_of_a_crashed_run_are_removed() {
    skip_unless_root!();
    // A pid equal to pid_max can never be alive: simulates a run that died without cleanup.
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stale = format!("vt-topo_stale-{pid_max}-0-r1");
    let other = format!("vt-topo_stale_other-{pid_max}-0-r1");
    for n in [&stale, &other] {
        let st = std::process::Command::new("ip")
            .args(["netns", "add", n])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let topo = Topology::new("topo_stale").unwrap();
    let now = list_netns();
    assert!(!now.contains(&stale), "stale namespace not removed");
    assert!(now.contains(&other), "another test's namespace was removed");
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &other])
        .status();
    drop(topo);
    assert_gone(&[stale, other]);
}

#[test]
fn capture_records_pings() {
    skip_unless_root!();
    let topo = Topology::new("topo_capture").unwrap();
    let cap = topo
        .ns("client")
        .capture("eth0", "icmp", 100, 30 * SEC)
        .unwrap();
    assert!(wait_until(10 * SEC, POLL, || topo.ping("client", R1_ADDR, 1, SEC)));
    assert!(topo.ping("client", R2_ADDR, 3, 5 * SEC));
    let pcap = cap.stop();
    let all = pcap.lines("").unwrap();
    let to_r2 = pcap
        .lines(&format!(
            "icmp[icmptype] = icmp-echo and dst host {R2_ADDR}"
        ))
        .unwrap();
    assert!(to_r2.len() >= 3, "{all:#?}");
    assert!(
        all.iter().any(|l| l.contains("ICMP echo reply")),
        "{all:#?}"
    );

    // Bounded by packet count: stops by itself.
    let mut cap = topo.ns("r2").capture("eth0", "icmp", 2, 30 * SEC).unwrap();
    assert!(topo.ping("client", R2_ADDR, 2, 5 * SEC));
    assert!(cap.wait(10 * SEC), "tcpdump -c 2 did not finish");
    assert_eq!(cap.stop().count("").unwrap(), 2);
}

#[test]
fn not_root_is_reported() {
    if is_root() {
        return;
    }
    assert!(Topology::new("topo_noroot").is_err());
}
