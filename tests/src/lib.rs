//! A lab of network namespaces for the end-to-end tests (`tests/tests/*.rs`) and for xtask's demo
//! and bench. Nothing is attached to the root namespace; everything is removed on drop.
//!
//! - [`topology`]: the [`Topology`] (bridge, r1, r2, client, more hosts, a second LAN), its
//!   addresses and its links (cut, restore, down, up).
//! - [`netns`]: one namespace ([`Netns`]): commands in it, what `ip` shows there, and the
//!   removal of namespaces a crashed earlier run left behind.
//! - [`processes`]: processes started in a namespace ([`Proc`]), signalled by PID only.
//! - [`captures`]: tcpdump in a namespace ([`Capture`]) and reading the pcap ([`Pcap`]).
//! - [`lab`]: a topology with `vrrp-agent`s in its routers, and what the tests observe of them.
//! - [`keepalived`]: keepalived next to (or instead of) the agent, and the keepalived.conf both
//!   read.
//!
//! Typical use in an integration test (`tests/tests/*.rs`):
//!
//! ```no_run
//! use std::time::Duration;
//! use vrrp_lab::{skip_unless_root, wait_until, Topology, R1_ADDR};
//!
//! #[test]
//! fn failover() {
//!     skip_unless_root!();
//!     let topo = Topology::new("failover").unwrap();
//!     // Agents run inside the router namespaces; their output goes to a log file.
//!     let mut agent = topo.ns("r1").spawn("/path/to/vrrp-agent", ["--iface", "eth0"]);
//!     let cap = topo.ns("client").capture("eth0", "vrrp", 100, Duration::from_secs(30)).unwrap();
//!     assert!(wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
//!         topo.has_addr("r1", "eth0", "198.51.100.100")
//!     }), "agent log:\n{}", agent.log());
//!     assert!(topo.ping("client", R1_ADDR, 1, Duration::from_secs(2)));
//!     topo.cut_link("r1"); // r1 sees carrier loss, like a pulled cable
//!     agent.kill9().unwrap(); // or agent.signal(libc::SIGTERM) / agent.term()
//!     let pcap_lines = cap.stop().lines("").unwrap();
//!     # let _ = pcap_lines;
//! } // drop: remaining processes are stopped, namespaces deleted
//! ```

use std::time::{Duration, Instant};

// Before the modules, so they can use it.
macro_rules! log {
    ($($arg:tt)*) => { eprintln!("[topology] {}", format_args!($($arg)*)) };
}

pub mod captures;
pub mod frames;
pub mod keepalived;
pub mod lab;
pub mod netns;
pub mod processes;
pub mod topology;

pub use captures::{Capture, Pcap};
pub use lab::agent_bin;
pub use netns::{list_netns, Netns, XdpAttachment};
pub use processes::{Proc, STOP_TIMEOUT};
pub use topology::{
    Topology, BRIDGE, CLIENT_ADDR, CLIENT_ADDR6, HOST_IFACE, PREFIX_LEN, R1_ADDR, R1_ADDR6,
    R2_ADDR, R2_ADDR6,
};

/// True when running as root (needed for network namespaces).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Returns from the calling test with a clear message when not running as root.
#[macro_export]
macro_rules! skip_unless_root {
    () => {
        if !$crate::is_root() {
            fn __f() {}
            let name = ::std::any::type_name_of_val(&__f);
            eprintln!(
                "SKIPPED {}: needs root to create network namespaces (run `cargo xtask test` as root)",
                name.strip_suffix("::__f").unwrap_or(name)
            );
            return;
        }
    };
}

/// Polls `cond` every `poll` until it returns true (→ true) or `timeout` passes (→ false).
/// `cond` is always evaluated at least once, and once more at the deadline.
pub fn wait_until(timeout: Duration, poll: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(poll.min(deadline - now));
        if Instant::now() >= deadline {
            return cond();
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn wait_until_times_out_and_succeeds() {
        assert!(!wait_until(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || false
        ));
        let mut n = 0;
        assert!(wait_until(
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                n == 3
            }
        ));
    }
}
