//! The control socket: `vrrp-agent status` asks the running agent over a local Unix socket
//! (no signals, no files in /tmp, no races). One request line, one JSON answer, then the agent
//! closes. Owner root, mode 0600: only root asks.
use std::{
    io::{self, Read as _, Write as _},
    os::unix::{fs::PermissionsExt as _, net::UnixStream},
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::UnixListener,
    sync::oneshot,
};
use tracing::debug;

use crate::{
    agent::{Input, Inputs},
    pidfile,
    task::Stop,
};

const REQUEST: &[u8] = b"status\n";

/// What `vrrp-agent status --json` shows and `/metrics` encodes: every instance, every check.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Snapshot {
    /// [`crate::instance::STATUS_VERSION`].
    pub version: u32,
    pub instances: Vec<crate::instance::Status>,
    pub checks: Vec<crate::track::CheckStatus>,
}

/// `/run/vrrp-agent/control.sock`, or one per network namespace as for the PID file.
pub fn default_path() -> PathBuf {
    pidfile::runtime_path("control", "sock")
}

/// The listening socket; its file goes when this is dropped (at exit).
#[derive(Debug)]
pub struct Listening {
    _task: Stop,
    path: PathBuf,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Answers each connection with the JSON status the event loop gives for an
/// [`Input::Status`]. Binding replaces a stale socket file: the caller holds the PID file.
pub fn serve(path: &Path, inputs: &Inputs) -> io::Result<Listening> {
    let inputs = inputs.clone();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let task = Stop::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                // Out of file descriptors, say: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let inputs = inputs.clone();
            tokio::spawn(async move {
                let mut line = [0u8; REQUEST.len()];
                let asked =
                    tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut line));
                if !matches!(asked.await, Ok(Ok(_))) || line != REQUEST {
                    return debug!("control socket: not a status request");
                }
                let (tx, rx) = oneshot::channel();
                if inputs.send(Input::Status(tx)).await.is_err() {
                    return;
                }
                if let Ok(snapshot) = rx.await {
                    let answer = serde_json::to_string(&snapshot).unwrap_or_default();
                    let _ = stream.write_all(answer.as_bytes()).await;
                }
            });
        }
    });
    Ok(Listening {
        _task: task,
        path: path.to_path_buf(),
    })
}

/// Asks the agent at `path` for its status: the JSON text.
pub fn ask(path: &Path) -> io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(REQUEST)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// `vrrp-agent status`: what to print, and the exit status (0; 1 when `check_master` is not
/// master; 2 for an instance the agent does not run; 3 when no agent answers).
pub fn status_command(
    path: &Path,
    json: bool,
    check_master: Option<&str>,
    only: Option<&str>,
) -> (String, u8) {
    let answer = match ask(path) {
        Ok(a) => a,
        Err(e) => {
            let msg = format!(
                "error: no vrrp-agent answers on {} ({e}): is it running, and with this \
                 --control-socket?",
                path.display()
            );
            return (msg, 3);
        }
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&answer) else {
        return (format!("error: not a status document: {answer}"), 3);
    };
    let instances = doc["instances"].as_array().cloned().unwrap_or_default();
    let name = |i: &serde_json::Value| i["name"].as_str().unwrap_or_default().to_owned();
    let wanted = only.or(check_master);
    if let Some(want) = wanted {
        if !instances.iter().any(|i| name(i) == want) {
            let names: Vec<String> = instances.iter().map(name).collect();
            let msg = format!(
                "error: no instance {want}; the agent runs {}",
                names.join(", ")
            );
            return (msg, 2);
        }
    }
    let shown: Vec<&serde_json::Value> = instances
        .iter()
        .filter(|i| wanted.is_none_or(|w| name(i) == w))
        .collect();
    let text = match (json, only) {
        (true, Some(_)) => shown.first().map(ToString::to_string).unwrap_or_default(),
        (true, None) => doc.to_string(),
        (false, _) => {
            let checks = doc["checks"].as_array().cloned().unwrap_or_default();
            let checks = checks.iter().filter(|_| wanted.is_none()).map(check_line);
            let lines: Vec<String> = shown.iter().map(|i| line(i)).chain(checks).collect();
            lines.join("\n")
        }
    };
    let code = match check_master {
        Some(_) if shown.first().is_some_and(|i| i["state"] != "MASTER") => 1,
        _ => 0,
    };
    (text, code)
}

/// A JSON value as text: strings without their quotes.
fn text(v: &serde_json::Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

/// `(count)` items as "name count, ..." in parentheses, or nothing when there are none.
fn counts(v: &serde_json::Value) -> String {
    let items: Vec<String> = (v.as_object().into_iter().flatten())
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    match items.is_empty() {
        true => String::new(),
        false => format!(" ({})", items.join(", ")),
    }
}

/// A number as Rust prints it ("100", "0.5"), not as JSON does ("100.0").
fn num(v: &serde_json::Value) -> String {
    v.as_f64().map_or("-".to_owned(), |x| x.to_string())
}

/// Seconds as "1.5s", or "-" when unknown.
fn secs(v: &serde_json::Value) -> String {
    v.as_f64().map_or("-".to_owned(), |t| format!("{t:.1}s"))
}

/// One instance on one line, as `ip -br` shows an interface: what `status` prints and SIGUSR1
/// logs. The state and counters first, then what only some instances have.
pub fn line(i: &serde_json::Value) -> String {
    let c = &i["counters"];
    let master = match &i["master"] {
        serde_json::Value::Null => "-".to_owned(),
        m => text(m),
    };
    let k = &i["kernel"];
    // On the kernel path the kernel counts every valid advert; the agent sees the urgent ones.
    let received = match &k["adverts"] {
        serde_json::Value::Null => c["adverts_received"].clone(),
        n => n.clone(),
    };
    let mut line = format!(
        "{:<12} {:<7} {} vrid {} prio {}/{} master {} {} sent {} received {} rejected {}{} \
         since {}",
        text(&i["name"]),
        text(&i["state"]),
        text(&i["iface"]),
        i["vrid"],
        i["priority"],
        i["base_priority"],
        master,
        text(&i["receive_path"]).replace(' ', "-"),
        c["adverts_sent"],
        received,
        c["rejected"],
        counts(&c["rejected_by"]),
        secs(&i["last_transition_secs"]),
    );
    if let Some(fault) = i["fault"].as_str() {
        line += &format!("; fault: {fault}");
    }
    if c["adverts_late"].as_u64().is_some_and(|n| n > 0) {
        line += &format!(
            "; adverts sent half an interval late: {}",
            c["adverts_late"]
        );
    }
    if !k.is_null() {
        line += &format!("; kernel: rejected {}", k["rejected"]);
        if k["master_down_timer"] == true {
            line += ", keeps the master down timer";
        }
    }
    if !k["last_source"].is_null() {
        line += &format!(
            ", last from {} prio {} interval {}ms {} ago",
            text(&k["last_source"]),
            k["last_priority"],
            num(&k["last_interval_ms"]),
            secs(&k["last_age_secs"]),
        );
    }
    if let Some(e) = i["kernel_error"].as_str() {
        line += &format!("; cannot read the kernel's record: {e}");
    }
    let l = &i["liveness"];
    if !l.is_null() {
        line += &format!(
            "; liveness: probing {} every {}ms, {} reflections, {} lost, longest gap {:.3}ms, \
             {} silences not trusted",
            text(&l["probing"]),
            num(&l["interval_ms"]),
            l["reflections"],
            l["lost"],
            l["longest_gap_ms"].as_f64().unwrap_or_default(),
            c["liveness_distrusted"]
        );
    }
    let r = &i["reflector"];
    if !r.is_null() {
        let first = match &r["first_in_line"] {
            serde_json::Value::Null => "none".to_owned(),
            a => text(a),
        };
        line += &format!(
            "; liveness: reflecting, first in line {first}, {} probes over the rate limit",
            r["limited"]
        );
    }
    let rare: Vec<String> = [
        ("output errors", "output_errors"),
        ("VIPs restored", "vips_restored"),
        ("ARP conflicts", "arp_conflicts"),
        ("intervals capped", "intervals_capped"),
    ]
    .into_iter()
    .filter(|(_, key)| c[key].as_u64().unwrap_or_default() > 0)
    .map(|(name, key)| format!("{name} {}", c[key]))
    .collect();
    if !rare.is_empty() {
        line += &format!("; {}", rare.join(", "));
    }
    line
}

/// One check on one line: its state, how close it is to changing, its runs.
pub fn check_line(c: &serde_json::Value) -> String {
    let state = match c["up"].as_bool() {
        Some(true) => "UP",
        Some(false) => "DOWN",
        None => "-",
    };
    let mut line = format!(
        "check {:<12} {:<4} rise {} fall {}, {} to change, runs {} failed {}{}",
        text(&c["name"]),
        state,
        c["rise"],
        c["fall"],
        c["to_change"],
        c["runs"],
        (c["failures"].as_object().into_iter().flatten())
            .filter_map(|(_, n)| n.as_u64())
            .sum::<u64>(),
        counts(&c["failures"]),
    );
    if let Some(ms) = c["last_run_ms"].as_f64() {
        line += &format!(", last took {ms:.1}ms {} ago", secs(&c["last_run_secs"]));
    }
    if let Some(why) = c["last_failure"].as_str() {
        line += &format!(": {why}");
    }
    line
}
