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

    /// An instance entered `to`: `notify` gets `INSTANCE NAME STATE PRIORITY`.
    pub fn transition(&self, name: &str, notify: &Notify, to: State, priority: u8) {
        // Shutdown reaches INIT; `stopped` reports it once the instance is down.
        if to != State::Initialize {
            self.notify(notify, to, &["INSTANCE", name], Some(priority));
        }
    }

    /// An instance stopped (agent shutdown).
    pub fn stopped(&self, name: &str, notify: &Notify, priority: u8) {
        self.notify(
            notify,
            State::Initialize,
            &["INSTANCE", name],
            Some(priority),
        );
    }

    /// A sync group's members entered `to` together: `notify` gets `GROUP NAME STATE`.
    pub fn group(&self, name: &str, notify: &Notify, to: State) {
        self.notify(notify, to, &["GROUP", name], None);
    }

    /// Runs the state's own script (`notify_master` ...; INIT means `notify_stop`), then
    /// `notify` with `who`, the state word and the priority if any.
    fn notify(&self, notify: &Notify, to: State, who: &[&str; 2], priority: Option<u8>) {
        let (specific, word) = match to {
            State::Master => (&notify.master, "MASTER"),
            State::Backup => (&notify.backup, "BACKUP"),
            State::Fault => (&notify.fault, "FAULT"),
            State::Initialize => (&notify.stop, "STOP"),
        };
        if let Some(line) = specific {
            self.run(line, &[]);
        }
        if let Some(line) = &notify.any {
            let priority = priority.map(|p| p.to_string());
            let mut args = vec![who[0], who[1], word];
            args.extend(priority.as_deref());
            self.run(line, &args);
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
