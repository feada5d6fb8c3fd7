//! Processes started in a namespace ([`Proc`]) and the registry that lets a
//! [`Topology`](crate::Topology) stop whatever is still running when it is dropped.
//!
//! Processes are always signalled by PID (each one leads its own process group, which is swept
//! with SIGKILL when it is stopped); nothing is ever killed by name.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::netns::{sanitize, Netns};
use crate::wait_until;

/// How long [`Proc`]'s drop (and [`Topology`](crate::Topology)'s) waits after SIGTERM before
/// SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A BPF link a process holds open, from `/proc/<pid>/fdinfo` (ip link does not show TCX
/// attachments, and this machine's bpftool predates them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfLink {
    /// The kernel's link type: "xdp", "tcx", ...
    pub link_type: String,
    /// The interface it is attached to, when it has one.
    pub ifindex: Option<u64>,
    /// E.g. "46 (ingress)" for a TCX ingress link.
    pub attach_type: Option<String>,
}

/// The BPF links process `pid` holds.
pub fn bpf_links(pid: u32) -> Vec<BpfLink> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| target.to_string_lossy().contains("bpf_link"))
        })
        .filter_map(|fd| {
            let info = std::fs::read_to_string(format!(
                "/proc/{pid}/fdinfo/{}",
                fd.file_name().to_string_lossy()
            ))
            .ok()?;
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(":\t"))
                    .map(str::to_owned)
            };
            Some(BpfLink {
                link_type: field("link_type")?,
                ifindex: field("ifindex").and_then(|i| i.parse().ok()),
                attach_type: field("attach_type"),
            })
        })
        .collect()
}

/// True when `pid` (our child) has exited or is not our child any more; does not reap it.
pub(crate) fn exited_nowait(pid: u32) -> bool {
    // SAFETY: plain syscall on a zeroed, properly sized siginfo_t.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r != 0 || info.si_pid() != 0
    }
}

pub(crate) fn send_signal(pid: i32, sig: i32) -> std::io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// State shared by a topology, its namespaces and the processes spawned in them.
pub(crate) struct Shared {
    /// Logs and pcaps.
    pub(crate) workdir: PathBuf,
    /// PIDs of spawned processes that have not been reaped yet.
    procs: Mutex<BTreeSet<u32>>,
    /// Numbers log and pcap file names.
    pub(crate) seq: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(workdir: PathBuf) -> Self {
        Shared {
            workdir,
            procs: Mutex::new(BTreeSet::new()),
            seq: AtomicUsize::new(0),
        }
    }

    fn register(&self, pid: u32) {
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid);
    }

    fn unregister(&self, pid: u32) {
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    }

    /// Stops the registered processes that still run (at teardown): SIGTERM, then after
    /// [`STOP_TIMEOUT`] SIGKILL to their process groups.
    pub(crate) fn stop_all(&self) {
        let pids: Vec<u32> = self
            .procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if pids.is_empty() {
            return;
        }
        // Unreaped children of ours: their pids can't be reused, so signalling is safe.
        for &pid in &pids {
            if !exited_nowait(pid) {
                log!("stopping pid {pid} still running at teardown (SIGTERM)");
                let _ = send_signal(pid as i32, libc::SIGTERM);
            }
        }
        wait_until(STOP_TIMEOUT, Duration::from_millis(20), || {
            pids.iter().all(|&p| exited_nowait(p))
        });
        for &pid in &pids {
            if !exited_nowait(pid) {
                log!("pid {pid} ignored SIGTERM, sending SIGKILL");
            }
            let _ = send_signal(-(pid as i32), libc::SIGKILL);
        }
        // Their Proc guards reap them when dropped.
    }
}

impl Netns {
    /// Starts `program args` in the background in this namespace; stdout and stderr go to a
    /// log file in the topology's work dir ([`Proc::log`]). The guard stops it on drop.
    /// Panics if it cannot be started.
    pub fn spawn<I, S>(&self, program: &str, args: I) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn_env(program, args, [] as [(&str, &str); 0])
    }

    /// Like [`spawn`](Self::spawn), with environment variables `envs` set for the program
    /// (e.g. `[("RUST_LOG", "info")]`).
    pub fn spawn_env<I, S, E, K, V>(&self, program: &str, args: I, envs: E) -> Proc
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let base = Path::new(program)
            .file_name()
            .map(|f| sanitize(&f.to_string_lossy(), 32))
            .unwrap_or_default();
        let n = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let log = self
            .shared
            .workdir
            .join(format!("{}-{base}-{n}.log", self.role));
        let file = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = file.try_clone().expect("dup log file");
        let mut cmd = self.command(program);
        cmd.args(args)
            .envs(envs)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err);
        let mut p = self.spawn_command(cmd).unwrap_or_else(|e| panic!("{e:#}"));
        p.log = Some(log);
        p
    }

    /// Spawns a command built with [`command`](Self::command) (its stdio as configured there)
    /// as a [`Proc`] guard, in a process group of its own.
    pub fn spawn_command(&self, mut cmd: Command) -> Result<Proc> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let desc = format!("{cmd:?}");
        let child = cmd.spawn().with_context(|| format!("spawning {desc}"))?;
        self.shared.register(child.id());
        Ok(Proc {
            child,
            status: None,
            shared: self.shared.clone(),
            log: None,
            desc,
        })
    }
}

/// A process running in a namespace. Dropping it sends SIGTERM, then SIGKILL (to its whole
/// process group) after [`STOP_TIMEOUT`], and reaps it.
pub struct Proc {
    child: Child,
    status: Option<ExitStatus>,
    shared: Arc<Shared>,
    /// Its stdout and stderr, when they go to a file.
    pub(crate) log: Option<PathBuf>,
    desc: String,
}

impl Proc {
    /// PID (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`) to the process. Errors once it has been reaped.
    pub fn signal(&mut self, sig: i32) -> Result<()> {
        if self.try_wait().is_some() {
            bail!("process {} has already exited (and was reaped)", self.pid());
        }
        send_signal(self.pid() as i32, sig).with_context(|| format!("kill({}, {sig})", self.pid()))
    }

    /// SIGTERM (graceful shutdown).
    pub fn term(&mut self) -> Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// SIGKILL (crash); the process is reaped by a later wait/try_wait/drop.
    pub fn kill9(&mut self) -> Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// Exit status if it has exited (reaps it), None while it runs.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            match self.child.try_wait() {
                Ok(Some(s)) => self.reaped(s),
                Ok(None) => {}
                Err(e) => log!("waiting for {}: {e}", self.pid()),
            }
        }
        self.status
    }

    fn reaped(&mut self, s: ExitStatus) {
        self.status = Some(s);
        self.shared.unregister(self.child.id());
    }

    /// True while it has not exited.
    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, Duration::from_millis(20), || {
            self.try_wait().is_some()
        });
        self.status
    }

    /// SIGTERM, wait up to `timeout`, then SIGKILL its process group; reaps it.
    pub fn stop(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let pid = self.pid();
        if !exited_nowait(pid) {
            let _ = send_signal(pid as i32, libc::SIGTERM);
            wait_until(timeout, Duration::from_millis(20), || exited_nowait(pid));
        }
        // The leader is not reaped yet, so its pid still names our process group.
        if !exited_nowait(pid) {
            log!("{} did not exit on SIGTERM, sending SIGKILL", self.desc);
        }
        let _ = send_signal(-(pid as i32), libc::SIGKILL);
        match self.child.wait() {
            Ok(s) => self.reaped(s),
            Err(e) => {
                log!("waiting for {pid}: {e}");
                self.shared.unregister(pid);
            }
        }
        self.status.expect("reaped")
    }

    /// Path of the log file holding its stdout and stderr, if [`Netns::spawn`] made one.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Current contents of its log (stdout + stderr); empty without a log.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(STOP_TIMEOUT);
    }
}
