//! `cargo xtask setup`: installs the pinned toolchain pieces and the test tools. Idempotent: each
//! step checks first and does nothing when the piece is present.
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::{command, is_root, status};

/// The eBPF crate builds with this toolchain (`-Z build-std=core` needs its rust-src).
pub const NIGHTLY: &str = "nightly";
/// bpf-linker 0.10.4 links with the nightly's own libLLVM, so it always matches rustc's LLVM;
/// 0.13 defaults to LLVM 23 and fails against LLVM 22 (shared/TOOLCHAIN.md).
const BPF_LINKER: &str = "0.10.4";
const CARGO_FUZZ: &str = "0.13.2";
const CARGO_DEB: &str = "3.8.0";
/// Debian packages the agent, the end-to-end tests and the benchmark drive: (command that proves
/// it is there, package). `nft` enforces `no_accept`; keepalived is the interop peer and the
/// benchmark's baseline; trafgen and stress-ng make the benchmark's loads.
const PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("tcpdump", "tcpdump"),
    ("nginx", "nginx"),
    ("curl", "curl"),
    ("nft", "nftables"),
    ("keepalived", "keepalived"),
    ("trafgen", "netsniff-ng"),
    ("stress-ng", "stress-ng"),
    ("systemd-analyze", "systemd"),
    ("man", "man-db"),
    ("debootstrap", "debootstrap"),
    ("systemd-nspawn", "systemd-container"),
];

pub fn run() -> Result<()> {
    nightly_rust_src()?;
    bpf_linker()?;
    cargo_tool("fuzz", CARGO_FUZZ)?;
    cargo_tool("deb", CARGO_DEB)?;
    debian_packages()
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn nightly_rust_src() -> Result<()> {
    let Some(sysroot) = output(
        Command::new("rustup")
            .args(["run", NIGHTLY, "rustc", "--print", "sysroot"])
            .env("RUSTUP_AUTO_INSTALL", "0"),
    ) else {
        bail!(
            "no `{NIGHTLY}` Rust toolchain: the XDP program needs one. Install it with \
             `rustup toolchain install {NIGHTLY} --profile minimal --component rust-src`"
        );
    };
    let core = std::path::Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/core");
    if !core.is_dir() {
        status(command(
            "rustup",
            &["component", "add", "rust-src", "--toolchain", NIGHTLY],
        ))
        .context("cannot add rust-src to the nightly toolchain")?;
    }
    Ok(())
}

fn bpf_linker() -> Result<()> {
    let have = output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if have.split_whitespace().nth(1) == Some(BPF_LINKER) {
        return Ok(());
    }
    status(command(
        "cargo",
        &["install", &format!("bpf-linker@{BPF_LINKER}"), "--locked"],
    ))
    .context("cannot install bpf-linker (it needs crates.io)")?;
    if output(Command::new("bpf-linker").arg("--version")).is_none() {
        bail!("bpf-linker installed but not on PATH: add ~/.cargo/bin to PATH");
    }
    Ok(())
}

/// cargo-`name` at `version`: the fuzz targets' runner (`cargo xtask fuzz`, and the short runs
/// of `cargo xtask test`), the Debian package's builder (`cargo xtask deb`).
fn cargo_tool(name: &str, version: &str) -> Result<()> {
    let have = output(Command::new("cargo").args([name, "--version"])).unwrap_or_default();
    if have.split_whitespace().nth(1) == Some(version) {
        return Ok(());
    }
    status(command(
        "cargo",
        &["install", &format!("cargo-{name}@{version}"), "--locked"],
    ))
    .with_context(|| format!("cannot install cargo-{name} (it needs crates.io)"))
}

fn debian_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(cmd, _)| {
            output(Command::new("sh").args(["-c", &format!("command -v {cmd}")])).is_none()
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages: {}; install them with `sudo apt-get install {}`",
            missing.join(", "),
            missing.join(" ")
        );
    }
    status(command("apt-get", &["update", "-q"]))?;
    // Debian starts a service (nginx, keepalived) when its package is installed: the tests run
    // them only inside their own namespaces, so keep them from starting on this host's interfaces.
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n").context("writing policy-rc.d")?;
        std::fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let mut install = command(
        "apt-get",
        &["install", "-y", "-q", "--no-install-recommends"],
    );
    install
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    let installed = status(install);
    if ours {
        std::fs::remove_file(policy).context("removing policy-rc.d")?;
    }
    installed
}
