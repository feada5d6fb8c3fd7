//! The service manager's side (systemd, `Type=notify`): readiness, reload, stop, a status line
//! and the watchdog, over `$NOTIFY_SOCKET` (the sd-notify crate). Without it (a terminal, a
//! supervisor that is not systemd) every call does nothing.
use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

/// Every instance has started.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A SIGHUP reload begins; [`ready`] ends it. systemd 253+ wants the time with it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The hand-over begins.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("handing over")]);
}

/// One short line with each instance's state (`systemctl status` shows it).
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

/// The event loop is alive.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often to tell the watchdog (`WatchdogSec=` in the unit): twice per period, as systemd
/// advises; `None` when no watchdog is set. As libsystemd's sd_watchdog_enabled(3): a
/// `WATCHDOG_PID` that names another process means the watchdog is not ours, a missing one does
/// not (sd-notify's own check wants it set).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse() != Ok(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

fn send(states: &[NotifyState]) {
    // Not fatal: systemd only loses a status update, and says so itself on a missed READY.
    if let Err(e) = sd_notify::notify(false, states) {
        debug!("cannot notify the service manager: {e}");
    }
}
