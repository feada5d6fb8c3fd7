//! The topology the end-to-end tests, the demo and the bench run on, and its links.
//!
//! [`Topology::new`] builds, entirely inside network namespaces it creates (nothing is
//! attached to the root namespace):
//!
//! ```text
//!   ns <prefix>-r1      ns <prefix>-r2      ns <prefix>-client
//!   eth0 198.51.100.1   eth0 198.51.100.2   eth0 198.51.100.10     (all /24)
//!        |                   |                   |
//!      p-r1                p-r2              p-client     (veth peers, ns <prefix>-br)
//!        \___________________|___________________/
//!                           br0                           (bridge, ns <prefix>-br)
//! ```
//!
//! `<prefix>` is `vt-<test name>-<pid>-<seq>`, so parallel tests never collide and leftovers
//! are easy to spot with `ip netns list`. Dropping the [`Topology`] (also while unwinding from
//! a panic) stops every process spawned through it and deletes all its namespaces; creating a
//! topology first deletes namespaces left behind by an earlier, crashed run of the same test
//! (same name, owning process no longer alive).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::is_root;
use crate::netns::{cleanup_stale, ip, kill_all_in_ns, list_netns, sanitize, Netns, TAG};
use crate::processes::Shared;

/// Address of router `r1` on the shared segment.
pub const R1_ADDR: &str = "198.51.100.1";
/// Address of router `r2` on the shared segment.
pub const R2_ADDR: &str = "198.51.100.2";
/// Address of the `client` namespace on the shared segment.
pub const CLIENT_ADDR: &str = "198.51.100.10";
/// Prefix length of the shared segment 198.51.100.0/24.
pub const PREFIX_LEN: u8 = 24;
/// The segment's IPv6 addresses of r1, r2 and the client (2001:db8::/64), beside their
/// link-local ones.
pub const R1_ADDR6: &str = "2001:db8::1";
pub const R2_ADDR6: &str = "2001:db8::2";
pub const CLIENT_ADDR6: &str = "2001:db8::10";
/// Name of the bridge namespace's role (`topo.ns(BRIDGE)`); the bridge device is `br0`.
pub const BRIDGE: &str = "br";
/// Interface name of every host's link to the bridge, inside its namespace.
pub const HOST_IFACE: &str = "eth0";
/// The second LAN (203.0.113.0/24 by convention), bridge `br1` in the bridge namespace, made by
/// [`Topology::add_lan2_link`]: for instances on a second interface.
const LAN2_BRIDGE: &str = "br1";

/// Numbers the topologies of this process.
static NEXT_SEQ: AtomicUsize = AtomicUsize::new(0);

/// Bridge + r1/r2/client namespaces; see the module docs. Everything is torn down on drop.
pub struct Topology {
    prefix: String,
    shared: Arc<Shared>,
    /// In creation order; the bridge namespace first.
    namespaces: Vec<Netns>,
}

impl Topology {
    /// Builds the topology for the test `name` (used in namespace names; non-alphanumerics
    /// become '_'). Namespaces of a crashed earlier run of the same test are removed first.
    pub fn new(name: &str) -> Result<Self> {
        if !is_root() {
            bail!("network namespaces need root");
        }
        let name = sanitize(name, 40);
        cleanup_stale(&name);
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{TAG}-{name}-{}-{seq}", std::process::id());
        let workdir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("creating {}", workdir.display()))?;
        // From here on, Drop cleans up whatever was created if a step fails.
        let mut topo = Topology {
            prefix,
            shared: Arc::new(Shared::new(workdir)),
            namespaces: Vec::new(),
        };
        topo.add_ns(BRIDGE)?;
        topo.add_bridge("br0")?;
        topo.add_host("r1", &format!("{R1_ADDR}/{PREFIX_LEN}"))?;
        topo.add_host("r2", &format!("{R2_ADDR}/{PREFIX_LEN}"))?;
        topo.add_host("client", &format!("{CLIENT_ADDR}/{PREFIX_LEN}"))?;
        for (role, addr) in [("r1", R1_ADDR6), ("r2", R2_ADDR6), ("client", CLIENT_ADDR6)] {
            let ns = &topo.ns(role).name;
            let cidr = format!("{addr}/64");
            ip(&["-n", ns, "addr", "add", &cidr, "dev", HOST_IFACE, "nodad"])?;
        }
        Ok(topo)
    }

    fn add_ns(&mut self, role: &str) -> Result<String> {
        let role = sanitize(role, 13);
        if self.namespaces.iter().any(|n| n.role == role) {
            bail!("namespace role {role} already exists");
        }
        let name = format!("{}-{role}", self.prefix);
        ip(&["netns", "add", &name])?;
        self.namespaces.push(Netns {
            name: name.clone(),
            role,
            shared: self.shared.clone(),
        });
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    fn add_bridge(&self, bridge: &str) -> Result<()> {
        let br = &self.ns(BRIDGE).name;
        ip(&[
            "-n",
            br,
            "link",
            "add",
            bridge,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", br, "link", "set", bridge, "up"])
    }

    /// Adds another namespace `role` (≤ 13 alphanumerics) attached to the bridge by a veth
    /// pair: `eth0` inside it with address `cidr` (use 198.51.100.0/24 or 203.0.113.0/24),
    /// `p-<role>` in the bridge namespace.
    pub fn add_host(&mut self, role: &str, cidr: &str) -> Result<&Netns> {
        self.add_ns(role)?;
        let ns = self.namespaces.last().expect("just added");
        self.connect(ns, HOST_IFACE, "br0", "p", cidr)?;
        Ok(self.namespaces.last().expect("just added"))
    }

    /// Adds a host `role` on the second LAN only (see [`add_lan2_link`](Self::add_lan2_link)).
    pub fn add_lan2_host(&mut self, role: &str, cidr: &str) -> Result<&Netns> {
        self.add_ns(role)?;
        self.add_lan2_link(
            &self.namespaces.last().expect("just added").role,
            HOST_IFACE,
            cidr,
        )?;
        Ok(self.namespaces.last().expect("just added"))
    }

    /// Connects `host` to the second LAN (bridge `br1`, made on first use; use 203.0.113.0/24):
    /// `iface` inside it with address `cidr`, `q-<host>` in the bridge namespace.
    pub fn add_lan2_link(&self, host: &str, iface: &str, cidr: &str) -> Result<()> {
        if self.ns(BRIDGE).link_json(LAN2_BRIDGE).is_none() {
            self.add_bridge(LAN2_BRIDGE)?;
        }
        self.connect(self.ns(host), iface, LAN2_BRIDGE, "q", cidr)
    }

    /// A veth pair from `iface` in `ns` to port `<port>-<role>` on `bridge`.
    fn connect(&self, ns: &Netns, iface: &str, bridge: &str, port: &str, cidr: &str) -> Result<()> {
        let br = &self.ns(BRIDGE).name;
        let port = format!("{port}-{}", ns.role);
        // Both ends are created directly in their target namespaces, never in the root one.
        ip(&[
            "-n", br, "link", "add", &port, "type", "veth", "peer", "name", iface, "netns",
            &ns.name,
        ])?;
        ip(&["-n", br, "link", "set", &port, "master", bridge, "up"])?;
        ip(&["-n", &ns.name, "addr", "add", cidr, "dev", iface])?;
        ip(&["-n", &ns.name, "link", "set", iface, "up"])
    }

    /// `<prefix>` of all namespace names (`vt-<name>-<pid>-<seq>`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Directory for logs and pcaps; removed on drop unless the test is panicking.
    pub fn workdir(&self) -> &Path {
        &self.shared.workdir
    }

    /// The namespace with role `role` ("br", "r1", "r2", "client", ...). Panics if unknown.
    pub fn ns(&self, role: &str) -> &Netns {
        self.namespaces
            .iter()
            .find(|n| n.role == role)
            .unwrap_or_else(|| panic!("no namespace {role:?} in topology {}", self.prefix))
    }

    /// All namespaces, bridge first.
    pub fn namespaces(&self) -> impl Iterator<Item = &Netns> {
        self.namespaces.iter()
    }

    /// Full names of all namespaces.
    pub fn ns_names(&self) -> Vec<String> {
        self.namespaces.iter().map(|n| n.name.clone()).collect()
    }

    /// Pulls `host`'s cable: downs its port `p-<host>` in the bridge namespace, so the host's
    /// `eth0` loses carrier. Panics on failure.
    pub fn cut_link(&self, host: &str) {
        self.set_port_state("p", host, "down");
    }

    /// Undoes [`cut_link`](Self::cut_link).
    pub fn restore_link(&self, host: &str) {
        self.set_port_state("p", host, "up");
    }

    /// [`cut_link`](Self::cut_link) for `host`'s link to the second LAN.
    pub fn cut_lan2_link(&self, host: &str) {
        self.set_port_state("q", host, "down");
    }

    fn set_port_state(&self, port: &str, host: &str, state: &str) {
        let port = format!("{port}-{}", self.ns(host).role);
        ip(&["-n", &self.ns(BRIDGE).name, "link", "set", &port, state])
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Deletes `host`'s `eth0` (and its veth peer), as a container restart or a driver reload
    /// does; the interface is gone, with its addresses.
    pub fn delete_link(&self, host: &str) {
        ip(&["-n", &self.ns(host).name, "link", "del", HOST_IFACE])
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Creates `host`'s `eth0` on the LAN again, with address `cidr` (a new interface index).
    pub fn recreate_link(&self, host: &str, cidr: &str) {
        self.connect(self.ns(host), HOST_IFACE, "br0", "p", cidr)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Administratively downs `eth0` inside `host` (as `ip link set eth0 down` there would).
    pub fn link_down(&self, host: &str) {
        self.set_eth0(host, "down");
    }

    /// Brings `eth0` inside `host` back up.
    pub fn link_up(&self, host: &str) {
        self.set_eth0(host, "up");
    }

    fn set_eth0(&self, host: &str, state: &str) {
        ip(&["-n", &self.ns(host).name, "link", "set", HOST_IFACE, state])
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// See [`Netns::addrs`].
    pub fn addrs(&self, ns: &str, iface: &str) -> Vec<String> {
        self.ns(ns).addrs(iface)
    }

    /// See [`Netns::has_addr`].
    pub fn has_addr(&self, ns: &str, iface: &str, addr: &str) -> bool {
        self.ns(ns).has_addr(iface, addr)
    }

    /// See [`Netns::ping`].
    pub fn ping(&self, from_ns: &str, addr: &str, count: u32, timeout: Duration) -> bool {
        self.ns(from_ns).ping(addr, count, timeout)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.shared.stop_all();
        for ns in self.namespaces.iter().rev() {
            kill_all_in_ns(&ns.name);
            if let Err(e) = ip(&["netns", "del", &ns.name]) {
                log!("{e:#}");
            }
        }
        let left: Vec<_> = list_netns()
            .into_iter()
            .filter(|n| n.starts_with(&format!("{}-", self.prefix)))
            .collect();
        if !left.is_empty() {
            log!("namespaces left behind: {left:?}");
        }
        if std::thread::panicking() {
            log!(
                "test failed: keeping logs and captures in {}",
                self.shared.workdir.display()
            );
        } else if let Err(e) = std::fs::remove_dir_all(&self.shared.workdir) {
            log!("removing {}: {e}", self.shared.workdir.display());
        }
    }
}
