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
    pub checks: Vec<CheckStatus>,
}

/// A `vrrp_script` or `check`: passing, failing, or no result yet.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckStatus {
    pub name: String,
    pub up: Option<bool>,
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
    let text = if json {
        match only {
            Some(_) => shown.first().map(ToString::to_string).unwrap_or_default(),
            None => doc.to_string(),
        }
    } else {
        shown.iter().map(|i| line(i)).collect::<Vec<_>>().join("\n")
    };
    let code = match check_master {
        Some(_) if shown.first().is_some_and(|i| i["state"] != "MASTER") => 1,
        _ => 0,
    };
    (text, code)
}

/// One instance on one line, as `ip -br` shows an interface.
fn line(i: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| {
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    };
    let c = &i["counters"];
    let master = match &i["master"] {
        serde_json::Value::Null => "-".to_owned(),
        m => s(m),
    };
    // On the kernel path the kernel counts every valid advert; the agent sees the urgent ones.
    let received = match &i["kernel"]["adverts"] {
        serde_json::Value::Null => c["adverts_received"].clone(),
        n => n.clone(),
    };
    let since = i["last_transition_secs"]
        .as_f64()
        .map_or("-".to_owned(), |t| format!("{t:.1}s"));
    format!(
        "{:<12} {:<7} {} vrid {} prio {}/{} master {} {} sent {} received {} rejected {} since {}",
        s(&i["name"]),
        s(&i["state"]),
        s(&i["iface"]),
        i["vrid"],
        i["priority"],
        i["base_priority"],
        master,
        s(&i["receive_path"]).replace(' ', "-"),
        c["adverts_sent"],
        received,
        c["rejected"],
        since
    )
}
