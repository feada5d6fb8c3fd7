//! The package under a real systemd: a minimal Debian 12 root (debootstrap, made once and kept
//! under /var/tmp), a throwaway copy of it booted with systemd-nspawn inside router r1's network
//! namespace of the test bed, the package installed there with dpkg, and an agent in r2 beside
//! it. Then what an operator does with the unit, and what systemd must do with it.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use vrrp_lab::lab::{Lab, SEC, SETTLE};

use crate::{command, root_dir, status};

/// The cached root: debootstrap takes minutes, a copy of it seconds.
const BASE: &str = "/var/tmp/vrrp-agent-test-root";
const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";

/// With one ignored keyword, for a warning in the journal.
const CONF: &str = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 200\n \
                    advert_int 0.1\n version 3\n smtp_alert\n virtual_ipaddress {\n  \
                    198.51.100.100/24\n }\n}\n";

fn base_root() -> Result<&'static Path> {
    let base = Path::new(BASE);
    if base.join("usr/lib/systemd/systemd").exists() {
        return Ok(base);
    }
    let tmp = format!("{BASE}.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let include = "--include=systemd,systemd-sysv,iproute2,procps";
    status(command(
        "debootstrap",
        &["--variant=minbase", include, SUITE, &tmp, MIRROR],
    ))
    .context("cannot build a Debian root for the systemd test (debootstrap needs the mirror)")?;
    std::fs::rename(&tmp, base)?;
    Ok(base)
}

/// A booted copy of the base root; shut down and removed when dropped.
struct Container {
    nspawn: Child,
    leader: u32,
    dir: PathBuf,
}

impl Container {
    fn boot(netns: &str, deb: &Path) -> Result<Self> {
        let dir = root_dir().join("target/systemd-root");
        let _ = std::fs::remove_dir_all(&dir);
        let mut copy = command("cp", &["-a", BASE]);
        copy.arg(&dir);
        status(copy)?;
        std::fs::copy(deb, dir.join("root/vrrp-agent.deb"))?;
        std::fs::create_dir_all(dir.join("etc/keepalived"))?;
        std::fs::write(dir.join("etc/keepalived/keepalived.conf"), CONF)?;
        let log = std::fs::File::create(root_dir().join("target/systemd-boot.log"))?;
        let nspawn = Command::new("systemd-nspawn")
            .arg("--quiet")
            .arg("--directory")
            .arg(&dir)
            // No machined or D-Bus on the host: the container is this process's child.
            .args(["--register=no", "--keep-unit", "--capability=all"])
            // nspawn's own seccomp filter keeps bpf(2) from containers.
            .args(["--system-call-filter=bpf", "--boot"])
            .arg(format!("--network-namespace-path=/run/netns/{netns}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start systemd-nspawn")?;
        let mut c = Self {
            leader: 0,
            nspawn,
            dir,
        };
        c.leader = c.wait_leader()?;
        // "degraded" is fine: a minimal root has units that fail in a container.
        let _ = c.run(&["systemctl", "is-system-running", "--wait"]);
        c.exec(&["dpkg", "-i", "/root/vrrp-agent.deb"])?;
        Ok(c)
    }

    /// The container's PID 1: nspawn's child.
    fn wait_leader(&mut self) -> Result<u32> {
        let parent = self.nspawn.id();
        let until = Instant::now() + 10 * SEC;
        while Instant::now() < until {
            for entry in std::fs::read_dir("/proc")?.flatten() {
                let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
                if fields.get(1).and_then(|p| p.parse().ok()) == Some(parent) {
                    return entry.file_name().to_string_lossy().parse().context("pid");
                }
            }
            std::thread::sleep(SEC / 10);
        }
        bail!("systemd-nspawn started no container (target/systemd-boot.log)")
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        Command::new("nsenter")
            .args(["-t", &self.leader.to_string(), "-a"])
            .args(args)
            .output()
            .context("cannot run nsenter")
    }

    fn exec(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "in the container, {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn unit(&self, property: &str) -> String {
        self.exec(&["systemctl", "show", "-p", property, "--value", "vrrp-agent"])
            .unwrap_or_default()
    }

    /// Waits until the unit's `property` is `want`.
    fn wait_unit(&self, property: &str, want: &str, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.unit(property) == want {
                return Ok(());
            }
            std::thread::sleep(SEC / 10);
        }
        bail!(
            "vrrp-agent.service: {property} is {:?}, not {want:?}, after {timeout:?}; its journal:\n{}",
            self.unit(property),
            self.exec(&["journalctl", "-u", "vrrp-agent", "--no-pager"])
                .unwrap_or_default()
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // SIGTERM makes nspawn shut the container down cleanly.
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.nspawn.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + 15 * SEC;
        while Instant::now() < until && self.nspawn.try_wait().ok().flatten().is_none() {
            std::thread::sleep(SEC / 10);
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The unit under systemd: start (active, MASTER in its status line, the kernel receive path,
/// the VIP on r1), reload (no transition anywhere), a stalled event loop (the watchdog restarts
/// it), stop (priority 0: r2 takes over within Skew_Time, the VIP leaves r1), a configuration
/// error (the unit fails once and is not restarted).
pub fn test(deb: &Path) -> Result<()> {
    base_root()?;
    let mut lab = Lab::with_agent("sd_unit", &root_dir().join("target/release/vrrp-agent"));
    lab.start("r2", 100, &[]);
    let netns = lab.topo.ns("r1").name().to_owned();
    let c = Container::boot(&netns, deb)?;

    c.exec(&["systemctl", "start", "vrrp-agent"])?;
    c.wait_unit("StatusText", "VI_1 MASTER prio 200", SETTLE)?;
    lab.wait_holders(&["r1"], SETTLE);
    let journal = c.exec(&["journalctl", "-u", "vrrp-agent", "--no-pager"])?;
    if !journal.contains("receive path: TC ingress") {
        bail!("not the kernel receive path under systemd:\n{journal}");
    }
    // Native journald records at keepalived's priorities: `journalctl -p warning` finds them.
    let warnings = c.exec(&[
        "journalctl",
        "-u",
        "vrrp-agent",
        "-p",
        "warning",
        "--no-pager",
    ])?;
    if !warnings.contains("ignored: smtp_alert") || warnings.contains("receive path") {
        bail!("journal priorities:\n{warnings}");
    }
    eprintln!("xtask: systemd: started, MASTER, TC ingress, VIP on r1, warnings at warning");

    let mark = lab.log_len("r2");
    c.exec(&["systemctl", "reload", "vrrp-agent"])?;
    std::thread::sleep(2 * SEC);
    c.wait_unit("StatusText", "VI_1 MASTER prio 200", SEC)?;
    if lab.log_since("r2", mark).contains(" -> ") {
        bail!("a reload moved r2:\n{}", lab.log_since("r2", mark));
    }
    eprintln!("xtask: systemd: reloaded, no transition");

    // WatchdogSec=5s, RestartSec=1s.
    c.exec(&["systemctl", "kill", "-s", "SIGSTOP", "vrrp-agent"])?;
    let stalled = Instant::now();
    c.wait_unit("NRestarts", "1", 15 * SEC)?;
    c.wait_unit("StatusText", "VI_1 MASTER prio 200", SETTLE)?;
    eprintln!(
        "xtask: systemd: stalled loop restarted by the watchdog, master again after {:.1?}",
        stalled.elapsed()
    );

    let mark = lab.log_len("r2");
    c.exec(&["systemctl", "stop", "vrrp-agent"])?;
    lab.wait_log("r2", mark, "BACKUP -> MASTER", SEC);
    lab.wait_holders(&["r2"], SETTLE);
    eprintln!("xtask: systemd: stopped, r2 took over, the VIP left r1");

    std::fs::write(
        c.dir.join("etc/keepalived/keepalived.conf"),
        "vrrp_instance VI_1 {\n priorty 200\n}\n",
    )?;
    let _ = c.run(&["systemctl", "start", "vrrp-agent"]);
    std::thread::sleep(3 * SEC);
    c.wait_unit("ActiveState", "failed", SEC)?;
    c.wait_unit("ExecMainStatus", "2", SEC)?;
    c.wait_unit("NRestarts", "0", SEC)?;
    let errors = c.exec(&["journalctl", "-u", "vrrp-agent", "-p", "err", "--no-pager"])?;
    if !errors.contains("priorty") {
        bail!("the configuration error is not in the journal as an error:\n{errors}");
    }
    eprintln!("xtask: systemd: a broken configuration failed once (status 2, logged as an error), no restart");
    Ok(())
}
