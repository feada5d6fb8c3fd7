//! One agent per configuration: a PID file, locked while the agent runs (`-p/--pid`). A second
//! agent with the same file waits a little for the first to finish its hand-over, then refuses
//! to start; the lock goes with the process, even after `kill -9`, so a stale file never blocks
//! a restart.
use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read as _, Write as _},
    os::{
        fd::AsRawFd as _,
        unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    },
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PidFileError {
    #[error("another vrrp-agent (pid {pid}) runs with {}: stop it first, or give this one its own file with --pid", .path.display())]
    Running { path: PathBuf, pid: String },
    #[error("cannot use the PID file {}: {source}; choose another with --pid", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The PID file the agent holds locked while it runs; removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    _file: File,
}

/// How long a new agent waits for the file's holder to finish: an agent that was told to stop
/// hands over first (2 s at most for the new master's advert), and a restart that does not wait
/// for it (a script, a supervisor other than systemd) must not fail for that.
pub const WAIT: Duration = Duration::from_secs(5);

impl PidFile {
    /// [`PidFile::try_lock`], again every 50 ms while another agent holds it, for `wait` at
    /// most.
    pub fn lock(path: &Path, wait: Duration) -> Result<Self, PidFileError> {
        let until = Instant::now() + wait;
        loop {
            match Self::try_lock(path) {
                Err(PidFileError::Running { .. }) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                done => return done,
            }
        }
    }

    pub fn try_lock(path: &Path) -> Result<Self, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(io)?;
        // SAFETY: a valid open file descriptor; flock has no memory effects.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(io(err));
            }
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(PidFileError::Running {
                path: path.to_path_buf(),
                pid: pid.trim().to_owned(),
            });
        }
        file.set_len(0).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            _file: file,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The initial network namespace's inode number (the kernel's `PROC_NET_INIT_INO`): PID 1's
/// namespace file may not be readable, even by root in a sandbox, but this number is fixed.
const INIT_NETNS_INO: u64 = 0xEFFF_FFF9;

/// keepalived's place for its own, `/run/vrrp-agent.pid`; in another network namespace than
/// the host's (one agent per namespace, as in the test bed), one file per namespace beside it.
pub fn default_path() -> PathBuf {
    match netns() {
        Some(ours) => PathBuf::from(format!("/run/vrrp-agent/netns-{ours}.pid")),
        None => PathBuf::from("/run/vrrp-agent.pid"),
    }
}

/// `/run/vrrp-agent/NAME.EXT`, or `NAME-netns-INODE.EXT` in another network namespace than the
/// host's: the agent's runtime files that agents in namespaces must not share.
pub fn runtime_path(name: &str, ext: &str) -> PathBuf {
    match netns() {
        Some(ours) => PathBuf::from(format!("/run/vrrp-agent/{name}-netns-{ours}.{ext}")),
        None => PathBuf::from(format!("/run/vrrp-agent/{name}.{ext}")),
    }
}

/// This thread's network namespace, unless it is the host's.
fn netns() -> Option<u64> {
    let ours = fs::metadata("/proc/thread-self/ns/net").ok()?.ino();
    (ours != INIT_NETNS_INO).then_some(ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn a_second_agent_with_the_same_file_is_refused() {
        let dir = TempDir::new();
        let path = dir.0.join("run/agent.pid");
        let held = PidFile::try_lock(&path).unwrap();
        let pid = fs::read_to_string(&path).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        // flock is per open file: a second open in this process stands for a second agent.
        let err = PidFile::lock(&path, Duration::from_millis(100))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        assert!(!path.exists(), "removed at exit");
        let again = PidFile::try_lock(&path);
        assert!(again.is_ok(), "free once the first is gone");
    }

    /// The test process runs in the host's namespace (PROC_NET_INIT_INO); a thread moved into
    /// another one gets a file of its own.
    #[test]
    fn one_default_file_per_network_namespace() {
        if !crate::testing::is_root() {
            eprintln!("skipped: needs root (a network namespace)");
            return;
        }
        let host = default_path();
        let other = std::thread::spawn(|| {
            // SAFETY: a new network namespace for this thread only; no memory effects.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            default_path()
        })
        .join()
        .unwrap();
        assert_ne!(other, host);
        let other = other.to_string_lossy().into_owned();
        assert!(other.starts_with("/run/vrrp-agent/netns-"), "{other}");
        if fs::metadata("/proc/thread-self/ns/net")
            .map(|m| m.ino())
            .ok()
            == Some(INIT_NETNS_INO)
        {
            assert_eq!(host, PathBuf::from("/run/vrrp-agent.pid"));
        }
    }
}
