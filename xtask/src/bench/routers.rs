//! The routers a bench cycle runs (either implementation, from the same keepalived.conf), the
//! switch that pulls and restores the master's cable, and the client's capture.
use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use vrrp_lab::{
    keepalived::{self, InstanceSpec, Keepalived},
    lab::{Family, VIP6_CIDR, VIP6_LINK_LOCAL},
    Proc, Topology,
};

use super::{
    measure::{Interval, VRID},
    pcap, write, Impl,
};

/// A router running one of the implementations, from the same keepalived.conf text.
pub enum Router {
    Ours(Proc),
    Keepalived(Keepalived),
}

impl Router {
    /// `liveness`: vrrp-agent's liveness settings, added to the file in its `vrrp_agent` block.
    #[allow(clippy::too_many_arguments)] // each is one fact about this router
    pub fn start(
        imp: Impl,
        topo: &Topology,
        bin: &Path,
        agent_args: &[String],
        liveness: Option<&str>,
        role: &str,
        prio: u8,
        iv: Interval,
        family: Family,
    ) -> Result<Router> {
        let vips = match family {
            Family::V4 => InstanceSpec::default().vips,
            Family::V6 => vec![VIP6_LINK_LOCAL.into(), VIP6_CIDR.into()],
        };
        // The figures count the adverts of VRID only: say it rather than rely on the default.
        let mut conf = keepalived::conf(&InstanceSpec {
            vrid: VRID,
            priority: prio,
            interval: iv.duration(),
            vips,
            ..Default::default()
        });
        if let Some(settings) = liveness {
            conf += &format!("vrrp_agent {{\n    {settings}\n}}\n");
        }
        Ok(match imp {
            Impl::Ours | Impl::Liveness => {
                let path = topo.workdir().join(format!("{role}-vrrp-agent.conf"));
                write(&path, &conf)?;
                let bin = bin.to_str().context("UTF-8 path")?;
                let path = path.to_str().context("UTF-8 path")?;
                let args = ["-f", path]
                    .into_iter()
                    .chain(agent_args.iter().map(String::as_str));
                Router::Ours(topo.ns(role).spawn_env(bin, args, [("RUST_LOG", "info")]))
            }
            Impl::Keepalived => Router::Keepalived(Keepalived::start(topo, role, &conf)?),
        })
    }

    /// keepalived: its main process and VRRP child.
    pub fn pids(&self) -> Vec<u32> {
        match self {
            Router::Ours(p) => vec![p.pid()],
            Router::Keepalived(k) => k.pids(),
        }
    }

    /// SIGTERM; keepalived's also waits until it has exited.
    pub fn term(&mut self) -> Result<()> {
        match self {
            Router::Ours(p) => p.term(),
            Router::Keepalived(k) => k.term(),
        }
    }

    /// SIGKILL: no goodbye, no cleanup (keepalived: its main process and VRRP child).
    pub fn kill9(&mut self) -> Result<()> {
        match self {
            Router::Ours(p) => p.kill9(),
            Router::Keepalived(k) => k.kill9(),
        }
    }

    pub fn log(&self) -> String {
        match self {
            Router::Ours(p) => p.log(),
            Router::Keepalived(k) => k.log(),
        }
    }
}

/// `ip -batch` in the bridge namespace, reading commands from a pipe: a port changes state
/// within microseconds of the trigger time instead of after an `ip` process start
/// (milliseconds, more under CPU load; it runs at nice -20 so stress-ng does not delay it).
pub struct PortSwitch {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl PortSwitch {
    pub fn new(bridge_ns: &str) -> Result<PortSwitch> {
        let mut child = Command::new("nice")
            .args(["-n", "-20", "ip", "-n", bridge_ns, "-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .context("starting ip -batch")?;
        let stdin = child.stdin.take();
        Ok(PortSwitch { child, stdin })
    }

    pub fn set(&mut self, port: &str, up: bool) -> Result<()> {
        let stdin = self.stdin.as_mut().context("ip -batch closed")?;
        writeln!(stdin, "link set {port} {}", if up { "up" } else { "down" })?;
        stdin.flush()?;
        Ok(())
    }
}

impl Drop for PortSwitch {
    fn drop(&mut self) {
        // End of input ends it.
        self.stdin.take();
        let _ = self.child.wait();
    }
}

/// tcpdump on the client's eth0 with nanosecond kernel time stamps, bounded in time.
pub struct Capture {
    proc: Proc,
    pcap: PathBuf,
    log: PathBuf,
}

impl Capture {
    pub fn start(topo: &Topology, filter: &str, bound: Duration, n: usize) -> Result<Capture> {
        let pcap = topo.workdir().join(format!("client-{n}.pcap"));
        let log = topo.workdir().join(format!("client-{n}.tcpdump.log"));
        let file = std::fs::File::create(&log)?;
        let mut cmd = topo.ns("client").command("timeout");
        cmd.args(["-s", "INT", &bound.as_secs().max(1).to_string(), "tcpdump"])
            .args(["-n", "-i", "eth0", "-s", "128", "-B", "16384", "-Z", "root"])
            // Immediate mode: without it the frames of the kernel's last, unfinished ring block
            // (up to a second of them) are lost when tcpdump is stopped.
            .args(["--immediate-mode", "--time-stamp-precision=nano"])
            .args(["-c", "10000000", "-w"])
            .arg(&pcap)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        let mut proc = topo.ns("client").spawn_command(cmd)?;
        let read = || std::fs::read_to_string(&log).unwrap_or_default();
        let up = vrrp_lab::wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            read().contains("listening on") || !proc.is_running()
        });
        if !up || !read().contains("listening on") {
            proc.stop(Duration::from_secs(2));
            bail!("tcpdump did not start:\n{}", read());
        }
        Ok(Capture { proc, pcap, log })
    }

    /// Stops tcpdump (SIGINT: it flushes) and reads the frames; the file is removed.
    pub fn finish(mut self) -> Result<Vec<pcap::Frame>> {
        if self.proc.is_running() {
            // `timeout` relays SIGINT to tcpdump.
            let _ = self.proc.signal(libc::SIGINT);
            self.proc.wait_timeout(Duration::from_secs(5));
        }
        self.proc.stop(Duration::from_secs(2));
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        if let Some(l) = log
            .lines()
            .find(|l| l.contains("dropped by kernel") && !l.starts_with("0 "))
        {
            eprintln!("bench: tcpdump: {l}: figures may miss frames");
        }
        let frames = pcap::read(&self.pcap);
        let _ = std::fs::remove_file(&self.pcap);
        frames
    }
}
