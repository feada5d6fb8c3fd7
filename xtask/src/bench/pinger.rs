//! The client's echo requests to the VIP, every millisecond, from a thread of ours that entered
//! the client's network namespace. `ping -i 0.001` would do the same but spins on a CPU between
//! probes (iputils busy-waits below 10 ms), loading the machine it measures. The replies are
//! read from the capture, not here.
use std::{
    fs::File,
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// linux/icmp.h and linux/icmpv6.h: a raw ICMP (ICMPv6) socket's filter of the types it is not
/// given (a bit set blocks a type).
const ICMP_FILTER: libc::c_int = 1;
const ICMPV6_FILTER: libc::c_int = 1;

pub struct Pinger {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Pinger {
    /// Pings `dst` from namespace `netns` every `every` until stopped, or `bound` at most.
    pub fn start(netns: &str, dst: IpAddr, every: Duration, bound: Duration) -> Result<Pinger> {
        let ns = File::open(format!("/run/netns/{netns}")).context("opening the namespace")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let sock = setup(&ns, dst.is_ipv6());
            let ready = sock.as_ref().map(|_| ()).map_err(|e| format!("{e:#}"));
            let _ = ready_tx.send(ready);
            send_loop(&sock?, dst, every, Instant::now() + bound, &flag);
            Ok(())
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Pinger {
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => bail!("pinger: {e}"),
            Err(_) => bail!("pinger thread died"),
        }
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Moves this thread into the namespace (only this thread: setns is per thread), at a high
/// priority (a client is another machine: the routers' CPU load must not delay its probes),
/// and opens a raw ICMP (ICMPv6) socket that sends only.
fn setup(ns: &File, v6: bool) -> Result<OwnedFd> {
    // SAFETY: plain syscalls on valid descriptors and a local, correctly sized value.
    unsafe {
        if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
            return Err(std::io::Error::last_os_error()).context("setns");
        }
        // PRIO_PROCESS with 0 is the calling thread on Linux; failing leaves it at nice 0.
        libc::setpriority(libc::PRIO_PROCESS, 0, -20);
        let (domain, protocol) = match v6 {
            true => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
            false => (libc::AF_INET, libc::IPPROTO_ICMP),
        };
        let fd = libc::socket(domain, libc::SOCK_RAW, protocol);
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("raw ICMP socket");
        }
        let sock = OwnedFd::from_raw_fd(fd);
        // Every type blocked: the ICMPv6 filter is 256 bits, the ICMP one 32.
        let all = [!0u32; 8];
        let (level, option, len) = match v6 {
            true => (libc::IPPROTO_ICMPV6, ICMPV6_FILTER, 32),
            false => (libc::SOL_RAW, ICMP_FILTER, 4),
        };
        libc::setsockopt(fd, level, option, all.as_ptr().cast(), len);
        Ok(sock)
    }
}

fn send_loop(sock: &OwnedFd, dst: IpAddr, every: Duration, deadline: Instant, stop: &AtomicBool) {
    // SAFETY: sockaddr_in6 is plain data, room for either family; the fields are set below.
    let mut to: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let to_len = match dst {
        IpAddr::V4(a) => {
            // SAFETY: a sockaddr_in fits in a sockaddr_in6, and both are plain data.
            let v4 = unsafe { &mut *(&raw mut to).cast::<libc::sockaddr_in>() };
            v4.sin_family = libc::AF_INET as libc::sa_family_t;
            v4.sin_addr.s_addr = u32::from(a).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            to.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            to.sin6_addr.s6_addr = a.octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    let id = std::process::id() as u16;
    let mut next = now_mono();
    let mut seq: u16 = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let pkt = echo_request(id, seq, dst.is_ipv6());
        // Errors (no neighbour yet, a full queue) are what a client sees too: keep probing.
        // SAFETY: valid socket, buffer and address for the lengths given.
        unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&raw const to).cast(),
                to_len as libc::socklen_t,
            );
        }
        seq = seq.wrapping_add(1);
        // Absolute deadlines: a late wake-up does not shift the following probes.
        next = add(next, every);
        // SAFETY: valid timespec; a signal interrupting the sleep only makes one probe early.
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &next,
                std::ptr::null_mut(),
            );
        }
    }
}

fn now_mono() -> libc::timespec {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t
}

fn add(t: libc::timespec, d: Duration) -> libc::timespec {
    let ns = t.tv_nsec as u64 + u64::from(d.subsec_nanos());
    libc::timespec {
        tv_sec: t.tv_sec + d.as_secs() as libc::time_t + (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// ICMP echo request with 56 bytes of zeros, as ping sends by default; over IPv6 ICMPv6's
/// (type 128), whose checksum the kernel fills in (it covers the pseudo-header).
fn echo_request(id: u16, seq: u16, v6: bool) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend(id.to_be_bytes());
    p.extend(seq.to_be_bytes());
    p.extend([0; 56]);
    if !v6 {
        let sum = vrrp_lab::frames::checksum(&[&p]);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksum() {
        let p = echo_request(0x1234, 1, false);
        assert_eq!(p.len(), 64);
        // type 8: 0x0800 + 0x1234 + 0x0001, complemented.
        assert_eq!(p[2..4], (!(0x0800u16 + 0x1234 + 1)).to_be_bytes());
    }

    #[test]
    fn adds_durations_across_seconds() {
        let t = libc::timespec {
            tv_sec: 5,
            tv_nsec: 999_500_000,
        };
        let n = add(t, Duration::from_millis(1));
        assert_eq!((n.tv_sec, n.tv_nsec), (6, 500_000));
    }
}
