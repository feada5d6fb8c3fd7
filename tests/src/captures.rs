//! tcpdump in a namespace, bounded in packets and time ([`Netns::capture`] → [`Capture`]), and
//! reading the pcap it wrote ([`Pcap`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::netns::{sanitize, Netns};
use crate::processes::{Proc, STOP_TIMEOUT};
use crate::wait_until;

impl Netns {
    /// Starts tcpdump on `iface` writing a pcap in the topology's work dir; it stops by itself
    /// after `max_packets` packets or `max_duration`. `filter` is a pcap filter ("" = all).
    /// Returns once tcpdump is listening.
    pub fn capture(
        &self,
        iface: &str,
        filter: &str,
        max_packets: u32,
        max_duration: Duration,
    ) -> Result<Capture> {
        let n = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let stem = format!("{}-{}-{n}", self.role, sanitize(iface, 15));
        let pcap = self.shared.workdir.join(format!("{stem}.pcap"));
        let log = self.shared.workdir.join(format!("{stem}.tcpdump.log"));
        let file = File::create(&log).with_context(|| log.display().to_string())?;
        let secs = max_duration.as_secs().max(1).to_string();
        let mut cmd = self.command("timeout");
        cmd.args([
            "-s",
            "INT",
            &secs,
            "tcpdump",
            "-n",
            "-U",
            "--immediate-mode",
        ])
        .args(["-Z", "root", "-i", iface])
        .args(["-c", &max_packets.max(1).to_string(), "-w"])
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
        if !filter.is_empty() {
            cmd.arg(filter);
        }
        let mut proc = self.spawn_command(cmd)?;
        proc.log = Some(log);
        let listening = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            proc.log().contains("listening on") || !proc.is_running()
        });
        if !listening || !proc.log().contains("listening on") {
            let log = proc.log();
            proc.stop(STOP_TIMEOUT);
            bail!("tcpdump on {iface} in {} did not start:\n{log}", self.name);
        }
        Ok(Capture { proc, pcap })
    }
}

/// A running tcpdump writing a pcap file; see [`Netns::capture`].
pub struct Capture {
    proc: Proc,
    pcap: PathBuf,
}

impl Capture {
    /// The pcap file (inside the topology's work dir, removed with the topology unless a
    /// test panicked).
    pub fn path(&self) -> &Path {
        &self.pcap
    }

    /// Waits up to `timeout` for tcpdump to finish by itself (packet count or duration).
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.proc.wait_timeout(timeout).is_some()
    }

    /// Stops tcpdump (it flushes the pcap) and returns a handle to read it.
    pub fn stop(mut self) -> Pcap {
        if self.proc.is_running() {
            // `timeout` relays SIGINT to tcpdump, which then flushes and exits.
            let _ = self.proc.signal(libc::SIGINT);
            self.proc.wait_timeout(STOP_TIMEOUT);
            self.proc.stop(STOP_TIMEOUT);
        }
        Pcap {
            path: self.pcap.clone(),
        }
    }
}

/// A finished capture.
pub struct Pcap {
    path: PathBuf,
}

impl Pcap {
    /// The pcap file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One line per packet matching `filter` ("" = all), as `tcpdump -n -e -tt -r` prints
    /// them (the file is read in the root namespace; no traffic is involved).
    pub fn lines(&self, filter: &str) -> Result<Vec<String>> {
        let mut cmd = Command::new("tcpdump");
        cmd.args(["-n", "-e", "-tt", "-Z", "root", "-r"])
            .arg(&self.path);
        if !filter.is_empty() {
            cmd.arg(filter);
        }
        let out = cmd.output().context("running tcpdump -r")?;
        if !out.status.success() {
            bail!(
                "tcpdump -r {}: {}",
                self.path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Number of packets matching `filter`.
    pub fn count(&self, filter: &str) -> Result<usize> {
        Ok(self.lines(filter)?.len())
    }
}
