//! One run of a check. The in-process ones fork nothing, so they can run every few milliseconds:
//! a process by name, a TCP connect, an HTTP status.
use std::{fs, io, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

use crate::script::{RunError, Script};

/// Why one run failed; logged at debug, and with the state change.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    #[error(transparent)]
    Script(#[from] RunError),
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    #[error("no such process")]
    NoProcess,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("HTTP status {got}, want {want}")]
    Status { got: u16, want: u16 },
    #[error("the answer does not start with an HTTP status line")]
    NotHttp,
}

impl Failure {
    /// Its kind, for the counts `status` shows.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Failure::Script(RunError::Exit(_)) => "exit status",
            Failure::Script(RunError::Signal(_)) => "signal",
            Failure::Script(RunError::TimedOut(_)) | Failure::TimedOut(_) => "timeout",
            Failure::Script(RunError::Spawn(_) | RunError::Wait(_)) => "cannot run",
            Failure::NoProcess => "no process",
            Failure::Io(_) => "connection",
            Failure::Status { .. } => "HTTP status",
            Failure::NotHttp => "not HTTP",
        }
    }
}

pub(super) enum Prober {
    Exec(Script),
    Process {
        name: Arc<str>,
        /// The last match: checked first, so a steady state costs one read, not a /proc scan.
        pid: Option<u32>,
    },
    Tcp(SocketAddr),
    Http {
        addr: SocketAddr,
        request: Vec<u8>,
        status: u16,
    },
}

impl Prober {
    pub(super) async fn check(&mut self, limit: Duration) -> Result<(), Failure> {
        let timed_out = |_| Failure::TimedOut(limit);
        match self {
            Prober::Exec(script) => Ok(script.run(limit).await?),
            Prober::Process { name, pid } => {
                let (name, last) = (name.clone(), *pid);
                // Reading /proc is quick but not free; keep it off the thread that sends adverts.
                let found = tokio::task::spawn_blocking(move || find_process(&name, last));
                *pid = timeout(limit, found)
                    .await
                    .map_err(timed_out)?
                    .map_err(io::Error::other)??;
                match pid {
                    Some(_) => Ok(()),
                    None => Err(Failure::NoProcess),
                }
            }
            Prober::Tcp(addr) => {
                let stream = timeout(limit, TcpStream::connect(*addr))
                    .await
                    .map_err(timed_out)??;
                no_time_wait(&stream);
                Ok(())
            }
            Prober::Http {
                addr,
                request,
                status,
            } => timeout(limit, http(*addr, request, *status))
                .await
                .map_err(timed_out)?,
        }
    }
}

/// Close with a reset, as HAProxy does after a health check: at millisecond intervals a normal
/// close would leave thousands of TIME_WAIT sockets. Failing to set it only costs that.
fn no_time_wait(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// `GET path HTTP/1.1` with `Host` (the check's, else the address) and `Connection: close`.
pub(super) fn http_request(addr: SocketAddr, host: Option<&str>, path: &str) -> Vec<u8> {
    let host = host.map_or_else(|| addr.to_string(), str::to_owned);
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: vrrp-agent\r\n\r\n"
    )
    .into_bytes()
}

/// Only the status line is read: no TLS, no redirects, no body; 1xx interim answers count as
/// the status.
async fn http(addr: SocketAddr, request: &[u8], want: u16) -> Result<(), Failure> {
    let mut stream = TcpStream::connect(addr).await?;
    no_time_wait(&stream);
    stream.write_all(request).await?;
    // "HTTP/1.1 200" is all we need; the line may be longer, or come in pieces.
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() && !head[..len].contains(&b'\n') {
        match stream.read(&mut head[len..]).await? {
            0 => break,
            n => len += n,
        }
    }
    let got = status_code(&head[..len]).ok_or(Failure::NotHttp)?;
    if got == want {
        Ok(())
    } else {
        Err(Failure::Status { got, want })
    }
}

/// The code of `HTTP/x.y NNN …`.
pub(super) fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&c| c == b'\n').next()?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&c| c == b' ');
    let (version, code) = (words.next()?, words.next()?);
    if !version.starts_with(b"HTTP/") || code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// A live process whose name is `name`, trying `last` first.
fn find_process(name: &str, last: Option<u32>) -> io::Result<Option<u32>> {
    if last.is_some_and(|pid| is_named(pid, name)) {
        return Ok(last);
    }
    // Only thread-group leaders are listed, as `ps -C` selects processes, not threads.
    for entry in fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if is_named(pid, name) {
            return Ok(Some(pid));
        }
    }
    Ok(None)
}

fn is_named(pid: u32, name: &str) -> bool {
    // A process that exits while we look is simply not a match.
    fs::read(format!("/proc/{pid}/stat")).is_ok_and(|stat| stat_matches(&stat, name))
}

/// `/proc/PID/stat` is `PID (comm) STATE …`; comm may hold ')' itself, so the last one ends it.
/// Zombies do not count: their program has exited.
pub(super) fn stat_matches(stat: &[u8], name: &str) -> bool {
    let (Some(open), Some(close)) = (
        stat.iter().position(|&c| c == b'('),
        stat.iter().rposition(|&c| c == b')'),
    ) else {
        return false;
    };
    let alive = !matches!(stat.get(close + 2), Some(b'Z' | b'X'));
    alive && open < close && comm_matches(&stat[open + 1..close], name)
}

/// procps' `ps -C`: comm equals the name, or, comm being cut to 15 bytes (TASK_COMM_LEN - 1),
/// a 15-byte comm equals the name's first 15 bytes.
pub(super) fn comm_matches(comm: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    comm == name || (comm.len() == 15 && name.len() > 15 && comm == &name[..15])
}
