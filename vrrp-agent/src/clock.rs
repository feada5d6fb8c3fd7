//! The one clock the agent reads: CLOCK_MONOTONIC, the clock of the XDP program's
//! `bpf_ktime_get_ns`, so kernel arrival times and timer deadlines compare directly.
use std::time::Duration;

use crate::election::Timestamp;

pub fn now() -> Timestamp {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Timestamp(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The tokio instant at which `deadline` falls (tokio's clock is also CLOCK_MONOTONIC, but does
/// not expose nanoseconds, so the offset is taken against "now" on both clocks).
pub fn tokio_instant(deadline: Timestamp) -> tokio::time::Instant {
    let now = now();
    tokio::time::Instant::now() + Duration::from_nanos(deadline.0.saturating_sub(now.0))
}
