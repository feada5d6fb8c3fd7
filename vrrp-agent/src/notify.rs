//! Notify scripts, run as keepalived runs them: `notify_master|backup|fault|stop` with no
//! arguments, `notify` with `INSTANCE|GROUP NAME STATE PRIORITY`. Resolved once, when the
//! configuration is loaded; fire and forget: the election never waits for a script.
use tracing::{debug, warn};

use crate::{
    config::{Global, Notify},
    election::State,
    script::Script,
};

/// The notify scripts of one instance or sync group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notifier {
    master: Option<Script>,
    backup: Option<Script>,
    fault: Option<Script>,
    stop: Option<Script>,
    any: Option<Script>,
}

impl Notifier {
    /// Resolves the scripts of `notify` (of `owner`, e.g. "vrrp_instance VI_1"). One that cannot
    /// run (missing, not executable, insecure under `enable_script_security`) is left out with a
    /// warning, as keepalived disables it.
    pub fn resolve(owner: &str, notify: &Notify, global: &Global) -> Self {
        let resolve = |keyword: &str, line: &Option<String>| {
            let line = line.as_deref()?;
            Script::resolve(line, global.script_user.as_ref(), global.script_security)
                .map_err(|e| warn!("{owner}: {keyword} {line:?} will not run: {e}"))
                .ok()
        };
        Self {
            master: resolve("notify_master", &notify.master),
            backup: resolve("notify_backup", &notify.backup),
            fault: resolve("notify_fault", &notify.fault),
            stop: resolve("notify_stop", &notify.stop),
            any: resolve("notify", &notify.any),
        }
    }

    /// Instance `name` entered `to` (INIT: it stopped) with `priority`.
    pub fn instance(&self, name: &str, to: State, priority: u8) {
        self.run(to, &["INSTANCE", name], Some(priority));
    }

    /// The members of sync group `name` entered `to` together.
    pub fn group(&self, name: &str, to: State) {
        self.run(to, &["GROUP", name], None);
    }

    /// Runs the state's own script (`notify_master` ...; INIT means `notify_stop`), then
    /// `notify` with `who`, the state word and the priority if any.
    fn run(&self, to: State, who: &[&str; 2], priority: Option<u8>) {
        let (specific, word) = match to {
            State::Master => (&self.master, "MASTER"),
            State::Backup => (&self.backup, "BACKUP"),
            State::Fault => (&self.fault, "FAULT"),
            State::Initialize => (&self.stop, "STOP"),
        };
        if let Some(script) = specific {
            start(script, &[]);
        }
        if let Some(script) = &self.any {
            let priority = priority.map(|p| p.to_string());
            let mut args = vec![who[0], who[1], word];
            args.extend(priority.as_deref());
            start(script, &args);
        }
    }
}

fn start(script: &Script, args: &[&str]) {
    match script.start(args) {
        Ok(()) => debug!("notify: {script} {}", args.join(" ")),
        Err(e) => warn!("notify script {script} did not start: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::TempDir;

    /// What the scripts wrote, once both have run.
    async fn written(dir: &TempDir) -> (String, String) {
        for _ in 0..250 {
            let read = |name| std::fs::read_to_string(dir.0.join(name)).ok();
            if let (Some(own), Some(any)) = (read("own"), read("any")) {
                return (own, any);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the notify scripts did not run");
    }

    #[tokio::test]
    async fn keepalived_arguments() {
        let dir = TempDir::new();
        let script = |name: &str| {
            let out = dir.0.join(name);
            let body = format!("echo \"$@\" > {}", out.display());
            dir.script(&format!("{name}.sh"), &body, 0o755)
        };
        let notify = Notify {
            master: Some(script("own")),
            any: Some(script("any")),
            ..Notify::default()
        };
        let notifier = Notifier::resolve("vrrp_instance VI_1", &notify, &Global::default());
        notifier.instance("VI_1", State::Master, 150);
        assert_eq!(
            written(&dir).await,
            ("\n".into(), "INSTANCE VI_1 MASTER 150\n".into())
        );
    }

    /// keepalived disables a notify script that another user could change when
    /// enable_script_security is on, as it does a vrrp_script; without it, a warning.
    #[test]
    fn an_insecure_script_is_refused_under_script_security() {
        if !crate::testing::is_root() {
            eprintln!("skipped: needs root (a script that runs as root)");
            return;
        }
        let dir = TempDir::new();
        let notify = Notify {
            master: Some(dir.script("writable.sh", "exit 0", 0o757)),
            ..Notify::default()
        };
        let root = crate::config::ScriptUser {
            user: "root".into(),
            group: None,
        };
        let secure = Global {
            script_security: true,
            script_user: Some(root),
            ..Global::default()
        };
        let notifier = Notifier::resolve("vrrp_instance VI_1", &notify, &secure);
        assert_eq!(notifier, Notifier::default(), "refused");
        let notifier = Notifier::resolve("vrrp_instance VI_1", &notify, &Global::default());
        assert!(
            notifier.master.is_some(),
            "runs, as in keepalived, with a warning"
        );
    }

    #[test]
    fn a_script_that_cannot_run_is_left_out() {
        let notify = Notify {
            master: Some("/nonexistent/notify.sh".into()),
            ..Notify::default()
        };
        let notifier = Notifier::resolve("vrrp_instance VI_1", &notify, &Global::default());
        assert_eq!(notifier, Notifier::default());
    }
}
