//! Builds the XDP program (vrrp-ebpf) for bpfel-unknown-none and leaves it in OUT_DIR, from where
//! `dataplane` embeds it. This needs a nightly with rust-src and bpf-linker (`cargo xtask setup`).
//! Without them the agent still builds, so pure-code tests run with plain `cargo test`, but the
//! binary can only run with `--xdp off` and says so; `VRRP_REQUIRE_EBPF=1` (set by xtask) makes a
//! missing toolchain a build error instead.
use std::{env, path::Path, process::Command};

use anyhow::{bail, Context as _};

const TOOLCHAIN: &str = "nightly";

fn main() -> anyhow::Result<()> {
    println!("cargo::rustc-check-cfg=cfg(vrrp_no_ebpf)");
    git_commit();
    println!("cargo:rerun-if-env-changed=VRRP_REQUIRE_EBPF");
    let require = env::var_os("VRRP_REQUIRE_EBPF").is_some_and(|v| v == "1");
    if let Some(missing) = missing_toolchain() {
        if require {
            bail!("cannot build the XDP program: {missing}; run `cargo xtask setup`");
        }
        println!(
            "cargo:warning=XDP program not built ({missing}); this binary only runs with \
             --xdp off. Run `cargo xtask setup` and rebuild for the XDP fast path."
        );
        println!("cargo:rustc-cfg=vrrp_no_ebpf");
        return Ok(());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vrrp-ebpf");
    let root = root.to_str().context("non-UTF-8 workspace path")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "vrrp-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(TOOLCHAIN),
    )
}

/// The commit this build comes from, for `--version` and the start-up log ("unknown" outside a
/// git checkout, e.g. from a source tarball).
fn git_commit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(&root)
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    let suffix = if dirty { "-modified" } else { "" };
    println!("cargo:rustc-env=VRRP_GIT_COMMIT={commit}{suffix}");
    // A new commit or a changed work tree: the line must not go stale.
    for file in ["HEAD", "index"] {
        println!(
            "cargo:rerun-if-changed={}",
            root.join(".git").join(file).display()
        );
    }
}

/// What is missing to build the eBPF object, if anything.
fn missing_toolchain() -> Option<String> {
    let sysroot = Command::new("rustup")
        .args(["run", TOOLCHAIN, "rustc", "--print", "sysroot"])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
        .ok()
        .filter(|o| o.status.success());
    let Some(sysroot) = sysroot else {
        return Some(format!("no `{TOOLCHAIN}` toolchain"));
    };
    let sysroot = String::from_utf8_lossy(&sysroot.stdout);
    if !Path::new(sysroot.trim())
        .join("lib/rustlib/src/rust/library/core")
        .is_dir()
    {
        return Some(format!("no rust-src for `{TOOLCHAIN}`"));
    }
    let on_path = env::var_os("PATH")
        .map(|p| env::split_paths(&p).any(|d| d.join("bpf-linker").is_file()))
        .unwrap_or(false);
    (!on_path).then(|| "no bpf-linker on PATH".to_string())
}
