//! `cargo xtask deb`: the Debian package (cargo-deb metadata in vrrp-agent/Cargo.toml), with the
//! binary built with its kernel program, and the man page and completions the binary writes
//! from its own command-line definition. `cargo xtask test` installs it with dpkg in a
//! throwaway layer over this machine's /usr, /etc and /var and checks what it installed.
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};

use crate::{cargo, command, root_dir, status};

/// Builds target/debian/vrrp-agent_VERSION-1_ARCH.deb and returns its path.
pub fn build() -> Result<PathBuf> {
    status(cargo(&["build", "--release", "-p", "vrrp-agent"]))?;
    let release = root_dir().join("target/release");
    let assets = release.join("assets");
    let _ = std::fs::remove_dir_all(&assets);
    let bin = release.join("vrrp-agent");
    let mut generate = command(bin.to_str().context("UTF-8 path")?, &["generate-assets"]);
    generate.arg(&assets);
    status(generate)?;
    let mut gzip = command("gzip", &["-9nf"]);
    gzip.arg(assets.join("vrrp-agent.8"));
    status(gzip)?;
    let out = root_dir().join("target/debian");
    let _ = std::fs::remove_dir_all(&out);
    status(cargo(&[
        "deb",
        "-p",
        "vrrp-agent",
        "--no-build",
        "-o",
        out.to_str().context("UTF-8 path")?,
    ]))?;
    let debs: Vec<PathBuf> = std::fs::read_dir(&out)?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    match debs.as_slice() {
        [deb] => {
            eprintln!("xtask: built {}", deb.display());
            Ok(deb.clone())
        }
        _ => bail!(
            "cargo deb left {} packages in {}",
            debs.len(),
            out.display()
        ),
    }
}

/// Installs `deb` with dpkg where it changes nothing of this machine: in a private mount
/// namespace whose /usr, /etc and /var are overlays on a scratch directory. Then the installed
/// binary prints its version with the kernel program built in, systemd verifies the installed
/// unit, man finds the page, and a purge removes it all.
pub fn test_install(deb: &std::path::Path) -> Result<()> {
    const SCRIPT: &str = r#"set -e
scratch=$1; deb=$2
for d in usr etc var; do
    mkdir -p "$scratch/$d.up" "$scratch/$d.work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$scratch/$d.up,workdir=$scratch/$d.work" "/$d"
done
dpkg -i "$deb"
/usr/sbin/vrrp-agent -v | grep -q 'XDP program built in: yes'
systemd-analyze verify /usr/lib/systemd/system/vrrp-agent.service
test -f /etc/default/vrrp-agent
man -w vrrp-agent >/dev/null
test -f /usr/share/bash-completion/completions/vrrp-agent
dpkg -P vrrp-agent
test ! -e /usr/sbin/vrrp-agent
test ! -e /etc/default/vrrp-agent
"#;
    let scratch = root_dir().join("target/deb-install");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let mut cmd = command(
        "unshare",
        &[
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            SCRIPT,
            "sh",
        ],
    );
    cmd.arg(&scratch).arg(deb);
    let result = status(cmd).context("the package does not install, run or purge cleanly");
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
