//! Health checks (keepalived's `vrrp_script`, and in-process checks of ours) and the priority rule
//! of `track_script` / `track_interface`.
//!
//! As keepalived runs a `vrrp_script` (keepalived/vrrp/vrrp_scheduler.c, vrrp_track.c):
//! - a check runs at once, then every `interval`; a run still going when the next is due makes
//!   it skip that one; a run longer than `timeout` fails;
//! - its state changes after `rise` consecutive successes or `fall` consecutive failures;
//! - until its first result a check is neither up nor down, and that first result, either way,
//!   decides; with `init_fail` it starts down and needs `rise` successes.
//!
//! [`Checks::is_up`] reports a check without a result yet as up ([`Checks::ready`] waits for the
//! first results); `init_fail` ones as down.
mod probe;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::mpsc,
    task::JoinSet,
    time::{interval, MissedTickBehavior},
};
use tracing::{debug, info};

use crate::{
    config::{Check, Global, Probe},
    script::{Script, ScriptError},
};
use probe::Prober;

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("vrrp_script {name}: {source}")]
    Script { name: String, source: ScriptError },
    #[error("vrrp_script {name}: interval 0; give it an interval above zero")]
    Interval { name: String },
    #[error("check {name}: HTTP {field} {value:?} must have no spaces or control characters, and a path must start with '/'; percent-encode them")]
    Http {
        name: String,
        field: &'static str,
        value: String,
    },
}

/// Starts one task per check (call it inside the tokio runtime). Pass only the checks some
/// instance tracks: keepalived does not run the others. Every check is validated before any
/// starts.
pub fn spawn(scripts: &[Check], global: &Global) -> Result<Checks, TrackError> {
    let tasks = scripts
        .iter()
        .enumerate()
        .map(|(index, s)| Task::new(index, s, global))
        .collect::<Result<Vec<_>, _>>()?;
    let (tx, rx) = mpsc::channel(64);
    let mut set = JoinSet::new();
    for task in tasks {
        set.spawn(task.run(tx.clone()));
    }
    Ok(Checks {
        names: scripts.iter().map(|s| s.name.clone()).collect(),
        up: scripts.iter().map(|s| !s.init_fail).collect(),
        fresh: scripts.iter().map(|s| !s.init_fail).collect(),
        rx,
        _tasks: set,
    })
}

/// The running checks; dropping this stops them.
pub struct Checks {
    names: Vec<String>,
    up: Vec<bool>,
    /// No result yet (and not `init_fail`).
    fresh: Vec<bool>,
    rx: mpsc::Receiver<(usize, bool)>,
    _tasks: JoinSet<()>,
}

impl Checks {
    /// The check's state as of the last [`Checks::changed`] or [`Checks::ready`]; false for a
    /// name [`spawn`] was not given.
    pub fn is_up(&self, name: &str) -> bool {
        self.names
            .iter()
            .position(|n| n == name)
            .is_some_and(|i| self.up[i])
    }

    /// The next change of a check's state: its name and whether it is now up. `None` once no
    /// check is running (none were given).
    pub async fn changed(&mut self) -> Option<(String, bool)> {
        loop {
            let (index, changed) = self.next().await?;
            if changed {
                return Some((self.names[index].clone(), self.up[index]));
            }
        }
    }

    /// Waits until every check has its first result (each is bounded by its `timeout`), so
    /// [`Checks::is_up`] is no longer a guess. keepalived keeps an instance whose weight-0 check
    /// has no result yet in INIT, and adds no weight for it; waiting here before starting the
    /// instances has the same effect. Changes seen meanwhile are only in `is_up`.
    pub async fn ready(&mut self) {
        while self.fresh.contains(&true) {
            if self.next().await.is_none() {
                return;
            }
        }
    }

    /// Applies one report from a task; true when it changed the state.
    async fn next(&mut self) -> Option<(usize, bool)> {
        let (index, up) = self.rx.recv().await?;
        self.fresh[index] = false;
        let changed = self.up[index] != up;
        self.up[index] = up;
        Some((index, changed))
    }
}

struct Task {
    index: usize,
    name: String,
    probe: Prober,
    state: Hysteresis,
    interval: Duration,
    timeout: Duration,
}

impl Task {
    fn new(index: usize, script: &Check, global: &Global) -> Result<Self, TrackError> {
        let name = script.name.clone();
        if script.interval.is_zero() {
            return Err(TrackError::Interval { name });
        }
        let probe = match &script.probe {
            Probe::Exec(line) => {
                let user = script.user.as_ref().or(global.script_user.as_ref());
                let command =
                    Script::resolve(line, user, global.script_security).map_err(|source| {
                        TrackError::Script {
                            name: name.clone(),
                            source,
                        }
                    })?;
                Prober::Exec(command)
            }
            Probe::Process(process) => Prober::Process {
                name: Arc::from(process.as_str()),
                pid: None,
            },
            Probe::Tcp(addr) => Prober::Tcp(*addr),
            Probe::Http {
                addr,
                host,
                path,
                status,
            } => {
                let bad = |field, value: &str| TrackError::Http {
                    name: name.clone(),
                    field,
                    value: value.to_owned(),
                };
                if !path.starts_with('/') || !header_safe(path) {
                    return Err(bad("path", path));
                }
                if let Some(host) = host.as_deref().filter(|h| !header_safe(h)) {
                    return Err(bad("host", host));
                }
                Prober::Http {
                    addr: *addr,
                    request: probe::http_request(*addr, host.as_deref(), path),
                    status: *status,
                }
            }
        };
        Ok(Self {
            index,
            name,
            probe,
            state: Hysteresis::new(script.rise, script.fall, script.init_fail),
            interval: script.interval,
            timeout: script.timeout,
        })
    }

    async fn run(mut self, tx: mpsc::Sender<(usize, bool)>) {
        let mut ticks = interval(self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            let result = self.probe.check(self.timeout).await;
            match &result {
                Ok(()) => debug!(check = %self.name, "ok"),
                Err(e) => debug!(check = %self.name, "failed: {e}"),
            }
            let Some(up) = self.state.record(result.is_ok()) else {
                continue;
            };
            match &result {
                Ok(()) => info!(check = %self.name, "up"),
                Err(e) => info!(check = %self.name, "down: {e}"),
            }
            if tx.send((self.index, up)).await.is_err() {
                return;
            }
        }
    }
}

/// Nothing that would end or split the request line or a header.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && !s.bytes().any(|c| c.is_ascii_control() || c == b' ')
}

/// keepalived's per-script `result` counter (vrrp_scheduler.c): 0..rise is down, rise..rise+fall
/// is up. A success below rise-1 counts up, at rise-1 or above it jumps to the top (up); a
/// failure above rise counts down, at rise or below it drops to 0 (down). So `rise` consecutive
/// successes bring a check up and `fall` consecutive failures take it down.
#[derive(Debug)]
struct Hysteresis {
    rise: u32,
    count: u32,
    top: u32,
    /// No result yet: the first one decides either way.
    fresh: bool,
}

impl Hysteresis {
    /// keepalived reads a `rise` or `fall` of 0 as 1.
    fn new(rise: u32, fall: u32, init_fail: bool) -> Self {
        let (rise, fall) = (rise.max(1), fall.max(1));
        Self {
            rise,
            // Fresh: one success is enough; init_fail: the full `rise`.
            count: if init_fail { 0 } else { rise - 1 },
            top: rise.saturating_add(fall - 1),
            fresh: !init_fail,
        }
    }

    /// Counts one result; the new state when it is to be reported (a change, or the first).
    fn record(&mut self, ok: bool) -> Option<bool> {
        let fresh = std::mem::take(&mut self.fresh);
        if ok {
            if self.count < self.rise - 1 {
                self.count += 1;
                return None;
            }
            let was_down = self.count < self.rise;
            self.count = self.top;
            was_down.then_some(true)
        } else {
            if self.count > self.rise {
                self.count -= 1;
                return None;
            }
            let was_up = self.count == self.rise;
            self.count = 0;
            (was_up || fresh).then_some(false)
        }
    }
}

/// keepalived's effective priority (vrrp_track.c) from the tracked objects, each `(weight,
/// reverse, up)`; `None` means FAULT.
///
/// | weight | reverse | up          | down         |
/// |--------|---------|-------------|--------------|
/// | 0      | no      | -           | FAULT        |
/// | 0      | yes     | FAULT       | -            |
/// | > 0    | no      | + weight    | -            |
/// | < 0    | no      | -           | + weight (<0)|
/// | > 0    | yes     | - weight    | -            |
/// | < 0    | yes     | -           | - weight (>0)|
///
/// `reverse` flips the sign of the change, not when it applies (except for weight 0). The sum is
/// clamped to 1..=254. The address owner (255) keeps 255: keepalived drops weighted trackers of
/// an owner at startup, so only weight-0 ones (FAULT) count for it.
pub fn effective_priority(
    base: u8,
    tracked: impl IntoIterator<Item = (i32, bool, bool)>,
) -> Option<u8> {
    let mut total = i32::from(base);
    for (weight, reverse, up) in tracked {
        if weight == 0 {
            if up == reverse {
                return None;
            }
        } else if base != 255 && (weight > 0) == up {
            total = total.saturating_add(if reverse {
                weight.saturating_neg()
            } else {
                weight
            });
        }
    }
    if base == 255 {
        return Some(255);
    }
    Some(total.clamp(1, 254) as u8)
}
