//! The one clock the agent reads: CLOCK_MONOTONIC, the clock of the XDP program's
//! `bpf_ktime_get_ns`, so kernel arrival times and timer deadlines compare directly.
use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use tokio::io::{unix::AsyncFd, Interest};

use crate::election::Timestamp;

const NANOS: u64 = 1_000_000_000;

pub fn now() -> Timestamp {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Timestamp(ts.tv_sec as u64 * NANOS + ts.tv_nsec as u64)
}

/// Wakes the event loop at election deadlines. A timerfd on CLOCK_MONOTONIC fires within the
/// kernel's timer slack (50 µs by default); tokio's timer rounds every sleep up to the next
/// millisecond, a tenth of a 10 ms advert interval.
pub struct Alarm(AsyncFd<OwnedFd>);

impl Alarm {
    pub fn new() -> io::Result<Self> {
        // SAFETY: no pointers; a negative result is an error.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the OwnedFd stays open and the same until the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Self(fd))
    }

    /// Waits until `at`; at once if it has passed. Re-arming replaces the previous deadline
    /// (and resets an expiry nobody waited for).
    pub async fn until(&self, at: Timestamp) -> io::Result<()> {
        // An all-zero value would disarm the timer instead of firing it.
        let at = at.0.max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at / NANOS) as libc::time_t,
                tv_nsec: (at % NANOS) as libc::c_long,
            },
        };
        let fd = self.0.get_ref().as_raw_fd();
        // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
        let ret = unsafe {
            libc::timerfd_settime(fd, libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut())
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = self.0.readable().await?;
            // No read(2) of the expiry count: re-arming resets it, and the clock says whether
            // this readiness is ours or one left from an expiry nobody waited for (a select that
            // took another branch). One syscall less per wake-up.
            guard.clear_ready();
            if now() >= Timestamp(at) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn alarm_fires_at_the_deadline_not_before() {
        let alarm = Alarm::new().unwrap();
        for wait in [
            Duration::ZERO,
            Duration::from_micros(1500),
            Duration::from_millis(3),
        ] {
            let at = now() + wait;
            alarm.until(at).await.unwrap();
            assert!(now() >= at, "woke before the deadline ({wait:?})");
        }
        // A past deadline returns at once, also after an expiry nobody read.
        alarm.until(now()).await.unwrap();
        alarm.until(Timestamp(1)).await.unwrap();
    }
}
