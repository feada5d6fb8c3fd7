//! `vrrp-agent`: the binary edge. Reads the configuration (a keepalived.conf with `-f`, or one
//! instance from flags), checks it (`-t`, `check-config`), or runs the agent until SIGTERM/SIGINT.
use std::{io::IsTerminal as _, process::ExitCode};

use clap::Parser as _;
use tracing::{error, warn};
use vrrp_agent::{
    agent,
    config::{
        cli::{Cli, Command},
        keepalived, Config,
    },
};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if cli.config_test || matches!(cli.command, Some(Command::CheckConfig)) {
        let n = config.instances.len();
        println!(
            "configuration OK: {n} VRRP instance(s), {} check(s)",
            config.checks.len()
        );
        return ExitCode::SUCCESS;
    }
    // One thread: the election is one state machine per instance and the I/O is small; a single
    // event loop keeps the order of events exact.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(agent::run(config, cli.file.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration from `-f FILE` (warnings logged) or from the instance flags.
fn load(cli: &Cli) -> Result<Config, String> {
    let Some(path) = &cli.file else {
        if cli.config_test || cli.command.is_some() {
            return Err("error: checking a configuration needs -f FILE".into());
        }
        return cli.instance.config().map_err(|e| format!("error: {e}"));
    };
    let loaded = keepalived::load(path).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|d| format!("error: {d}")).collect();
        lines.join("\n")
    })?;
    for w in &loaded.warnings {
        warn!("{w}");
    }
    let mut config = loaded.config;
    if let Some(xdp) = cli.instance.xdp {
        config.global.xdp = xdp;
    }
    if let Some(priority) = cli.instance.rt_priority {
        config.global.rt_priority = priority;
    }
    Ok(config)
}
