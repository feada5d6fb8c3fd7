//! A Prometheus scraper inside a router's namespace: `GET /metrics` at a fixed rate from a thread
//! of the bench, so the scrape's cost shows in the agent's idle figures and nowhere else (no
//! curl process per scrape). As Prometheus does, it keeps its connection alive.
use std::{
    fs::File,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    os::fd::AsRawFd as _,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

pub struct Scraper {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<u64>>,
}

impl Scraper {
    /// Scrapes `addr` in network namespace `netns` every `every`, for at most `bound`.
    pub fn start(netns: &str, addr: SocketAddr, every: Duration, bound: Duration) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let path = format!("/run/netns/{netns}");
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let ns = File::open(&path).with_context(|| path.clone())?;
            // SAFETY: `ns` is an open namespace file for the call; setns moves only this
            // thread into the namespace.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("setns {path}: {}", std::io::Error::last_os_error());
            }
            let start = Instant::now();
            let mut answered = 0;
            let mut next = start;
            let mut conn = None;
            while !flag.load(Ordering::Relaxed) && start.elapsed() < bound {
                let stream = match conn.take() {
                    Some(s) => s,
                    None => TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                        .with_context(|| format!("connecting to {addr}"))?,
                };
                if let Some(stream) = scrape(stream)? {
                    answered += 1;
                    conn = Some(stream);
                }
                next += every;
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            Ok(answered)
        });
        Scraper { stop, thread }
    }

    /// Stops it: the scrapes answered with 200 and a body.
    pub fn stop(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(answered) => answered,
            Err(_) => bail!("the scraper thread panicked"),
        }
    }
}

/// One scrape on `stream`: the stream again, to reuse, when it got a 200 with metrics.
fn scrape(mut stream: TcpStream) -> Result<Option<TcpStream>> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length = (head.lines())
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse::<usize>().ok());
        match length {
            Some(len) if body.len() >= len => {
                let ok = head.starts_with("HTTP/1.1 200") && body.contains("keepalived_up 1");
                return Ok(ok.then_some(stream));
            }
            Some(_) => continue,
            None => bail!("no Content-Length in {head:?}"),
        }
    }
}
