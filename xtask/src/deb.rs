//! `cargo xtask deb`: the Debian package (cargo-deb metadata in vrrp-agent/Cargo.toml), with the
//! binary built with its kernel program, and the man page and completions the binary writes
//! from its own command-line definition. `cargo xtask test` installs it with dpkg in a
//! throwaway layer over this machine's /usr, /etc and /var and checks what it installed.
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};

use crate::{cargo, command, root_dir, status};

/// The release binary (with its kernel program), and the man page (gzipped) and completions
/// it writes from its own command line: target/release/assets/.
fn build_assets() -> Result<PathBuf> {
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
    Ok(assets)
}

/// Builds target/debian/vrrp-agent_VERSION-1_ARCH.deb and returns its path.
pub fn build() -> Result<PathBuf> {
    build_assets()?;
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

/// `cargo xtask install [--destdir DIR]`: what the package installs, put in place on a host
/// without dpkg (or under DIR, for a staged image); the unit is not enabled, and an existing
/// /etc/default/vrrp-agent is kept.
pub fn install(destdir: &std::path::Path) -> Result<()> {
    let assets = build_assets()?;
    let root = root_dir();
    let put = |from: PathBuf, to: &str, mode: &str| -> Result<()> {
        let target = destdir.join(to.trim_start_matches('/'));
        let mut cmd = command("install", &["-D", "-m", mode]);
        cmd.arg(&from).arg(&target);
        status(cmd)
    };
    put(
        root.join("target/release/vrrp-agent"),
        "/usr/sbin/vrrp-agent",
        "755",
    )?;
    put(
        root.join("packaging/vrrp-agent.service"),
        "/usr/lib/systemd/system/vrrp-agent.service",
        "644",
    )?;
    if !destdir.join("etc/default/vrrp-agent").exists() {
        put(
            root.join("packaging/vrrp-agent.default"),
            "/etc/default/vrrp-agent",
            "644",
        )?;
    }
    put(
        assets.join("vrrp-agent.8.gz"),
        "/usr/share/man/man8/vrrp-agent.8.gz",
        "644",
    )?;
    put(
        assets.join("vrrp-agent.bash"),
        "/usr/share/bash-completion/completions/vrrp-agent",
        "644",
    )?;
    put(
        assets.join("_vrrp-agent"),
        "/usr/share/zsh/vendor-completions/_vrrp-agent",
        "644",
    )?;
    put(
        assets.join("vrrp-agent.fish"),
        "/usr/share/fish/vendor_completions.d/vrrp-agent.fish",
        "644",
    )?;
    for doc in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        put(
            root.join(doc),
            &format!("/usr/share/doc/vrrp-agent/{doc}"),
            "644",
        )?;
    }
    eprintln!(
        "xtask: installed under {}; systemctl daemon-reload, then enable vrrp-agent once \
         keepalived is stopped",
        destdir.display()
    );
    Ok(())
}

/// `cargo xtask install` puts every file where the package does: staged under target/, each
/// installed path must be one of the package's.
pub fn test_staged_install(deb: &std::path::Path) -> Result<()> {
    let stage = root_dir().join("target/install-test");
    let _ = std::fs::remove_dir_all(&stage);
    install(&stage)?;
    let listing = std::process::Command::new("dpkg-deb")
        .arg("-c")
        .arg(deb)
        .output()
        .context("cannot run dpkg-deb")?;
    let listing = String::from_utf8_lossy(&listing.stdout);
    let packaged: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5)?.strip_prefix('.'))
        .collect();
    let mut pending = vec![stage.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let rel = format!("/{}", path.strip_prefix(&stage)?.display());
            if !packaged.contains(&rel.as_str()) {
                bail!("cargo xtask install puts {rel}, which the package does not have");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&stage);
    Ok(())
}
