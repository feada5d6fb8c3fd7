//! Project tasks: `cargo xtask setup | test | run | demo | bench | fuzz | deb`.
mod bench;
mod deb;
mod demo;
mod fuzz;
mod setup;
mod systemd;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Build, test and run the VRRP agent")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the build and the tests need (nightly rust-src, bpf-linker, Debian packages).
    Setup,
    /// Every check: formatting, clippy, unit tests, end-to-end tests in network namespaces (root).
    Test {
        /// Skip the end-to-end tests (no root needed).
        #[arg(long)]
        unit_only: bool,
    },
    /// Build the agent (with its XDP program) and run it; arguments go to vrrp-agent.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Two agents in network namespaces: election, failover and failback, shown live.
    Demo,
    /// Failover benchmark of vrrp-agent and keepalived under load (root; writes target/bench/).
    Bench(bench::Opts),
    /// Fuzz the advert codec, keepalived.conf and the command line (cargo fuzz, fuzz/).
    Fuzz(fuzz::Opts),
    /// Install what the package installs, on a host without dpkg (root), or under --destdir.
    Install {
        #[arg(long, default_value = "/")]
        destdir: PathBuf,
    },
    /// Build the Debian package: target/debian/vrrp-agent_VERSION-1_ARCH.deb.
    Deb {
        /// Then test it (root): installed by dpkg in a throwaway overlay, and the unit under
        /// systemd in a container in the test bed (as `cargo xtask test` does).
        #[arg(long)]
        test: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::run(),
        Task::Test { unit_only } => test(unit_only),
        Task::Run { args } => run(&args),
        Task::Demo => demo::run(),
        Task::Bench(opts) => bench::run(opts),
        Task::Fuzz(opts) => fuzz::run(&opts),
        Task::Install { destdir } => {
            setup::run()?;
            deb::install(&destdir)
        }
        Task::Deb { test } => {
            setup::run()?;
            let deb = deb::build()?;
            if test {
                deb::test_install(&deb)?;
                deb::test_staged_install(&deb)?;
                systemd::test(&deb)?;
            }
            Ok(())
        }
    }
}

fn root_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A cargo command in the workspace that must build the XDP program (no silent fallback).
fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root_dir())
        .args(args)
        .env("VRRP_REQUIRE_EBPF", "1");
    cmd
}

fn command(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}

fn status(mut cmd: Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let st = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed ({st})");
    }
    Ok(())
}

/// Seconds each fuzz target runs in `cargo xtask test`: a smoke run that keeps the targets
/// building and catches shallow crashes; the long runs are `cargo xtask fuzz --secs N`.
const FUZZ_SECS: u64 = 15;

fn test(unit_only: bool) -> Result<()> {
    if !unit_only && !is_root() {
        bail!(
            "the end-to-end tests create network namespaces and need root: \
             run `sudo -E cargo xtask test`, or `cargo xtask test --unit-only`"
        );
    }
    setup::run()?;
    status(cargo(&["fmt", "--all", "--", "--check"]))?;
    status(cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    status(cargo(&["test", "--workspace", "--exclude", "vrrp-lab"]))?;
    fuzz::run(&fuzz::Opts {
        secs: FUZZ_SECS,
        target: None,
    })?;
    if !unit_only {
        // The end-to-end tests start the agent binary; build it first, then run them one at a
        // time so two topologies never compete for the two CPUs and blur the timing.
        status(cargo(&["build", "-p", "vrrp-agent"]))?;
        status(cargo(&["test", "-p", "vrrp-lab", "--", "--test-threads=1"]))?;
        let deb = deb::build()?;
        deb::test_install(&deb)?;
        deb::test_staged_install(&deb)?;
        systemd::test(&deb)?;
    }
    Ok(())
}

fn run(args: &[String]) -> Result<()> {
    status(cargo(&["build", "--release", "-p", "vrrp-agent"]))?;
    let bin = root_dir().join("target/release/vrrp-agent");
    let mut cmd = if is_root() {
        Command::new(&bin)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg(&bin);
        sudo
    };
    cmd.args(args);
    status(cmd)
}
