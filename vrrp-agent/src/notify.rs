//! Notify scripts, run as keepalived runs them: `notify_master|backup|fault|stop` with no
//! arguments, `notify` with `INSTANCE|GROUP NAME STATE PRIORITY`. Fire and forget: the election
//! never waits for a script; a child is reaped in the background.
use tracing::{debug, warn};

use crate::{
    config::{Global, Notify, ScriptUser},
    election::State,
    track::exec::command,
};

#[derive(Clone, Debug)]
pub struct Notifier {
    user: Option<ScriptUser>,
}

impl Notifier {
    pub fn new(global: &Global) -> Self {
        Self {
            user: global.script_user.clone(),
        }
    }

    /// An instance entered `to`.
    pub fn transition(&self, name: &str, notify: &Notify, to: State, priority: u8) {
        let (specific, word) = match to {
            State::Master => (&notify.master, "MASTER"),
            State::Backup => (&notify.backup, "BACKUP"),
            State::Fault => (&notify.fault, "FAULT"),
            // Shutdown reaches INIT; `stopped` reports it once the instance is down.
            State::Initialize => return,
        };
        self.notify(
            "INSTANCE",
            name,
            notify,
            specific.as_deref(),
            word,
            priority,
        );
    }

    /// An instance stopped (agent shutdown).
    pub fn stopped(&self, name: &str, notify: &Notify, priority: u8) {
        self.notify(
            "INSTANCE",
            name,
            notify,
            notify.stop.as_deref(),
            "STOP",
            priority,
        );
    }

    fn notify(
        &self,
        kind: &str,
        name: &str,
        notify: &Notify,
        specific: Option<&str>,
        state: &str,
        priority: u8,
    ) {
        if let Some(line) = specific {
            self.run(line, &[]);
        }
        if let Some(line) = &notify.any {
            self.run(line, &[kind, name, state, &priority.to_string()]);
        }
    }

    fn run(&self, line: &str, args: &[&str]) {
        let spawned = command(line, self.user.as_ref()).and_then(|mut cmd| {
            cmd.args(args).kill_on_drop(false);
            cmd.spawn().map_err(Into::into)
        });
        match spawned {
            Ok(mut child) => {
                debug!("notify: {line} {}", args.join(" "));
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
            }
            Err(e) => warn!("notify script {line:?}: {e}"),
        }
    }
}
