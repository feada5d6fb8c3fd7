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
//! [`Checks`] runs them by name: a check whose definition does not change across a reload keeps
//! running with its state; [`Checks::state`] is `None` until a check's first result (`init_fail`
//! ones start down), and the agent holds an instance in INIT until its checks have one.
mod probe;
#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    sync::mpsc,
    time::{interval, MissedTickBehavior},
};
use tracing::{debug, info};

use crate::{
    config::{Check, Global, Probe},
    script::{Script, ScriptError},
    task::Stop,
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

impl TrackError {
    /// The check the error is about.
    pub fn check(&self) -> &str {
        match self {
            Self::Script { name, .. } | Self::Interval { name } | Self::Http { name, .. } => name,
        }
    }
}

/// The running checks, by name (call inside the tokio runtime).
pub struct Checks {
    running: BTreeMap<String, Running>,
    tx: mpsc::Sender<Report>,
    rx: mpsc::Receiver<Report>,
    next_id: u64,
}

struct Running {
    check: Check,
    /// Tells this task's reports from those of a task it replaced.
    id: u64,
    /// `None` until the first result.
    up: Option<bool>,
    /// Written by the task after each run.
    runs: Arc<Mutex<Runs>>,
    _task: Stop,
}

/// What a check's task counts of its runs, for [`Checks::status`].
#[derive(Debug, Default)]
struct Runs {
    runs: u64,
    failures: BTreeMap<&'static str, u64>,
    to_change: u32,
    /// When the last run ended, how long it took, and why it failed.
    last: Option<(Instant, Duration, Option<String>)>,
}

/// A check as `vrrp-agent status` shows it: its state, where it stands between `rise` and
/// `fall`, and its runs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckStatus {
    pub name: String,
    /// `None` until its first result.
    pub up: Option<bool>,
    pub rise: u32,
    pub fall: u32,
    /// How many results in a row against its state would change it.
    pub to_change: u32,
    pub runs: u64,
    /// Failed runs by kind: "exit status", "signal", "timeout", "cannot run", "no process",
    /// "connection", "HTTP status", "not HTTP".
    pub failures: BTreeMap<&'static str, u64>,
    /// The last run: how long it took, how long ago it ended, and why it failed.
    pub last_run_ms: Option<f64>,
    pub last_run_secs: Option<f64>,
    pub last_failure: Option<String>,
}

/// A check's first result, or a change: the task's id and the state.
struct Report {
    id: u64,
    up: bool,
}

/// Checks started for a configuration not yet in force ([`Checks::prepare`]); dropping it stops
/// them.
pub struct Prepared {
    wanted: Vec<Check>,
    started: Vec<Running>,
}

impl Default for Checks {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(64);
        Self {
            running: BTreeMap::new(),
            tx,
            rx,
            next_id: 0,
        }
    }
}

impl Checks {
    /// Starts the checks of `wanted` that do not already run with the same definition; what runs
    /// now is untouched until [`Checks::commit`]. Pass only the checks some instance tracks:
    /// keepalived does not run the others. Every new check is validated before any starts.
    pub fn prepare(&mut self, wanted: &[Check], global: &Global) -> Result<Prepared, TrackError> {
        let new: Vec<&Check> = wanted
            .iter()
            .filter(|c| self.running.get(&c.name).is_none_or(|r| r.check != **c))
            .collect();
        let tasks = new
            .iter()
            .map(|c| Task::new(c, global))
            .collect::<Result<Vec<_>, _>>()?;
        let started = new
            .into_iter()
            .zip(tasks)
            .map(|(check, task)| {
                self.next_id += 1;
                let id = self.next_id;
                let runs = task.runs.clone();
                Running {
                    check: check.clone(),
                    id,
                    up: check.init_fail.then_some(false),
                    runs,
                    _task: Stop::spawn(task.run(id, self.tx.clone())),
                }
            })
            .collect();
        Ok(Prepared {
            wanted: wanted.to_vec(),
            started,
        })
    }

    /// The prepared checks replace the running ones: unchanged checks keep running with their
    /// state, new and changed ones start, the others stop.
    pub fn commit(&mut self, prepared: Prepared) {
        let mut old = std::mem::take(&mut self.running);
        let mut started = prepared.started;
        for check in prepared.wanted {
            let running = match started.iter().position(|r| r.check.name == check.name) {
                Some(i) => started.swap_remove(i),
                None => old
                    .remove(&check.name)
                    .expect("prepare started what is not running"),
            };
            self.running.insert(check.name, running);
        }
    }

    /// The check's state: `None` before its first result, or for a name not running.
    pub fn state(&self, name: &str) -> Option<bool> {
        self.running.get(name)?.up
    }

    /// Every running check, by name.
    pub fn status(&self) -> Vec<CheckStatus> {
        let now = Instant::now();
        (self.running.iter())
            .map(|(name, r)| {
                let runs = r.runs.lock().unwrap_or_else(|e| e.into_inner());
                let last = runs.last.as_ref();
                CheckStatus {
                    name: name.clone(),
                    up: r.up,
                    rise: r.check.rise.max(1),
                    fall: r.check.fall.max(1),
                    to_change: runs.to_change,
                    runs: runs.runs,
                    failures: runs.failures.clone(),
                    last_run_ms: last.map(|(_, took, _)| took.as_secs_f64() * 1000.0),
                    last_run_secs: last.map(|(at, _, _)| (now - *at).as_secs_f64()),
                    last_failure: last.and_then(|(_, _, why)| why.clone()),
                }
            })
            .collect()
    }

    /// The next first result or change of a running check: its name and whether it is now up.
    /// Cancel-safe; waits forever while no check runs.
    pub async fn changed(&mut self) -> (String, bool) {
        loop {
            // The channel never closes: `self.tx` keeps it open.
            let Some(report) = self.rx.recv().await else {
                continue;
            };
            // A report from a task that was replaced or never committed is stale.
            let Some((name, running)) = self.running.iter_mut().find(|(_, r)| r.id == report.id)
            else {
                continue;
            };
            if running.up.replace(report.up) != Some(report.up) {
                return (name.clone(), report.up);
            }
        }
    }
}

struct Task {
    name: String,
    probe: Prober,
    state: Hysteresis,
    interval: Duration,
    timeout: Duration,
    runs: Arc<Mutex<Runs>>,
}

impl Task {
    fn new(check: &Check, global: &Global) -> Result<Self, TrackError> {
        let name = check.name.clone();
        if check.interval.is_zero() {
            return Err(TrackError::Interval { name });
        }
        let probe = match &check.probe {
            Probe::Exec(line) => {
                let user = check.user.as_ref().or(global.script_user.as_ref());
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
        let state = Hysteresis::new(check.rise, check.fall, check.init_fail);
        let runs = Runs {
            to_change: state.to_change(),
            ..Runs::default()
        };
        Ok(Self {
            name,
            probe,
            state,
            interval: check.interval,
            timeout: check.timeout,
            runs: Arc::new(Mutex::new(runs)),
        })
    }

    async fn run(mut self, id: u64, tx: mpsc::Sender<Report>) {
        let mut ticks = interval(self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            let started = Instant::now();
            let result = self.probe.check(self.timeout).await;
            match &result {
                Ok(()) => debug!(check = %self.name, "ok"),
                Err(e) => debug!(check = %self.name, "failed: {e}"),
            }
            let change = self.state.record(result.is_ok());
            self.count(started, &result);
            let Some(up) = change else {
                continue;
            };
            match &result {
                Ok(()) => info!(check = %self.name, "up"),
                Err(e) => info!(check = %self.name, "down: {e}"),
            }
            if tx.send(Report { id, up }).await.is_err() {
                return;
            }
        }
    }

    /// Counts a run for [`Checks::status`].
    fn count(&self, started: Instant, result: &Result<(), probe::Failure>) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.runs += 1;
        if let Err(e) = result {
            *runs.failures.entry(e.kind()).or_default() += 1;
        }
        runs.to_change = self.state.to_change();
        let why = result.as_ref().err().map(ToString::to_string);
        runs.last = Some((Instant::now(), started.elapsed(), why));
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

    /// How many results in a row against the current state would change it (1 before the
    /// first result).
    fn to_change(&self) -> u32 {
        match self.fresh {
            true => 1,
            false if self.count >= self.rise => self.count - self.rise + 1,
            false => self.rise - self.count,
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
