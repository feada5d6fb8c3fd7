//! Where log lines go and in which form: text on a terminal or a plain stderr, native journald
//! records under systemd (priority and structured fields, journald's own timestamp), or JSON
//! lines for log shippers.
use std::os::fd::AsRawFd as _;

use clap::ValueEnum;
use tracing_journald::{Priority, PriorityMappings};
use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _, EnvFilter};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// journald when stderr is the journal (`$JOURNAL_STREAM`, set by systemd), else text.
    Auto,
    /// One line per event with its time, level and fields (colours on a terminal).
    Text,
    /// Native journald records: keepalived's priorities (transitions at info, 6; warnings at
    /// 4), fields such as INSTANCE, VRID and IFACE, no second timestamp.
    Journald,
    /// One JSON object per line.
    Json,
}

/// Sets the process-wide subscriber (`RUST_LOG` filters, `info` by default). Returns a warning
/// to log once it is up, when journald was asked for and cannot be reached (text instead).
pub fn init(format: LogFormat) -> Option<String> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let journald = match format {
        LogFormat::Journald => true,
        LogFormat::Auto => stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()),
        LogFormat::Text | LogFormat::Json => false,
    };
    let mut warning = None;
    if journald {
        match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer
                    .with_field_prefix(None)
                    .with_syslog_identifier("vrrp-agent".into())
                    .with_priority_mappings(PriorityMappings {
                        info: Priority::Informational,
                        debug: Priority::Debug,
                        ..PriorityMappings::new()
                    });
                tracing_subscriber::registry()
                    .with(filter())
                    .with(layer)
                    .init();
                return None;
            }
            Err(e) => warning = Some(format!("cannot log to journald ({e}): text on stderr")),
        }
    }
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter());
    if format == LogFormat::Json {
        fmt.json().init();
    } else {
        use std::io::IsTerminal as _;
        fmt.with_ansi(std::io::stderr().is_terminal()).init();
    }
    warning
}

/// Whether stderr is the stream systemd connected to the journal: `$JOURNAL_STREAM` names its
/// device and inode (`DEV:INODE`), as systemd.exec(5) says to check.
fn stderr_is_journal(stream: Option<&str>) -> bool {
    let Some((dev, ino)) = stream.and_then(|s| s.split_once(':')) else {
        return false;
    };
    // SAFETY: an all-zero stat is a valid value for fstat to fill in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: stderr's descriptor and a pointer to a live stat.
    if unsafe { libc::fstat(std::io::stderr().as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    dev.parse() == Ok(st.st_dev) && ino.parse() == Ok(st.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_stderr() {
        // SAFETY: as in stderr_is_journal.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as in stderr_is_journal.
        assert_eq!(unsafe { libc::fstat(2, &mut st) }, 0);
        let ours = format!("{}:{}", st.st_dev, st.st_ino);
        assert!(stderr_is_journal(Some(&ours)));
        // Inherited from a parent whose stderr was the journal, ours is not: text.
        assert!(!stderr_is_journal(Some(&format!(
            "{}:{}",
            st.st_dev,
            st.st_ino + 1
        ))));
        assert!(!stderr_is_journal(Some("garbage")));
        assert!(!stderr_is_journal(None));
    }
}
