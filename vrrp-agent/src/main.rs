//! `vrrp-agent`: the binary edge. Reads the configuration (a keepalived.conf with `-f`, or one
//! instance from flags), checks it (`-t`, `check-config`), or runs the agent until SIGTERM/SIGINT.
use std::process::ExitCode;

use clap::Parser as _;
use tracing::{error, info, warn};
use vrrp_agent::{
    agent,
    config::{
        cli::{self, Cli, Command},
        keepalived::{self, Loaded},
    },
    control, init, logging,
    net::{Links, Netlink},
    pidfile::{self, PidFile},
    privileges,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(warning) = logging::init(cli.log_format) {
        warn!("{warning}");
    }
    if cli.print_version {
        println!("{}", cli::version_line());
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Status {
        json,
        check_master,
        instance,
    }) = &cli.command
    {
        let (text, code) = control::status_command(
            &cli.control_socket(),
            *json,
            check_master.as_deref(),
            instance.as_deref(),
        );
        if code >= 2 {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
        return ExitCode::from(code);
    }
    if let Some(Command::GenerateAssets { dir }) = &cli.command {
        return match cli::generate_assets(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write to {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
    let checking = cli.config_test || matches!(cli.command, Some(Command::CheckConfig));
    let loaded = match load(&cli, checking) {
        Ok(c) => c,
        Err(e) if checking => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            // Through the log: under systemd the journal files it as an error.
            for line in e.lines() {
                error!("{}", line.strip_prefix("error: ").unwrap_or(line));
            }
            return ExitCode::from(2);
        }
    };
    // Held until the process exits.
    let mut _pid_file = None;
    if !checking {
        info!("{}", cli::version_line());
        for note in cli.keepalived.notes() {
            info!("{note}");
        }
        // Before the runtime starts its threads.
        if let Some(exit) = init::become_init_if_pid_1() {
            return exit;
        }
        let path = cli.pid_file.clone().unwrap_or_else(pidfile::default_path);
        match PidFile::lock(&path, pidfile::WAIT) {
            Ok(held) => _pid_file = Some(held),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
        match privileges::drop_unneeded() {
            Ok(kept) => {
                let mut names: Vec<String> = kept.iter().map(ToString::to_string).collect();
                names.sort();
                info!("capabilities kept: {}", names.join(", "));
            }
            Err(e) => {
                warn!("cannot drop the capabilities it does not need: {e}; going on with all")
            }
        }
    }
    // One thread: the election is one state machine per instance and the I/O is small; a single
    // event loop keeps the order of events exact.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if checking {
        runtime.block_on(warn_missing_interfaces(&loaded));
        let config = &loaded.config;
        println!(
            "configuration OK: {} VRRP instance(s), {} check(s)",
            config.instances.len(),
            config.checks.len()
        );
        return ExitCode::SUCCESS;
    }
    match runtime.block_on(agent::run(loaded, cli.config_file(), &cli.control_socket())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A warning about the configuration: with `-t` on stderr in the form of its errors
/// (`warning: FILE:LINE: ...`), else in the log.
fn finding(checking: bool, message: &str) {
    if checking {
        eprintln!("warning: {message}");
    } else {
        warn!("{message}");
    }
}

/// The configuration from the keepalived.conf (`-f`, or the default; warnings logged) or from
/// the one-instance flags, with the agent-wide flags over it.
fn load(cli: &Cli, checking: bool) -> Result<Loaded, String> {
    let mut loaded = match cli.config_file() {
        Some(path) => {
            let loaded = keepalived::load(&path).map_err(|errors| {
                let lines: Vec<String> = errors.iter().map(|d| format!("error: {d}")).collect();
                lines.join("\n")
            })?;
            for w in &loaded.warnings {
                finding(checking, &w.to_string());
            }
            loaded
        }
        None => Loaded::from(cli.instance.config().map_err(|e| format!("error: {e}"))?),
    };
    cli.override_global(&mut loaded.config);
    Ok(loaded)
}

/// `-t`: interfaces the configuration names that this host does not have. Not an error: the
/// agent runs such an instance in FAULT until the interface appears.
async fn warn_missing_interfaces(loaded: &Loaded) {
    let links: anyhow::Result<Links> = async {
        let nl = Netlink::connect()?;
        Ok(Links::query(&nl).await?)
    }
    .await;
    let links = match links {
        Ok(links) => links,
        Err(e) => {
            return finding(
                true,
                &format!("cannot list this host's interfaces to check them: {e}"),
            )
        }
    };
    for i in &loaded.config.instances {
        let tracked = i.track_interfaces.iter().map(|t| t.name.as_str());
        let mut names: Vec<&str> = i.devices().chain(tracked).collect();
        names.dedup();
        for name in names.into_iter().filter(|n| links.get(n).is_none()) {
            let at = loaded
                .instance_place(&i.name)
                .map(|p| format!("{p}: "))
                .unwrap_or_default();
            finding(
                true,
                &format!(
                    "{at}vrrp_instance {}: interface {name} does not exist on this host; the \
                     instance will wait in FAULT until it appears",
                    i.name
                ),
            );
        }
    }
}
