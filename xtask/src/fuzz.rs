//! `cargo xtask fuzz [--secs N] [TARGET]`: the cargo-fuzz targets in fuzz/, each for a bounded
//! time, from seed corpora made of the vendored keepalived capture and the example configs.
//! New inputs libFuzzer finds stay in target/fuzz-corpus/, crashes in fuzz/artifacts/.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::{command, root_dir, setup::NIGHTLY, status};

/// Every target in fuzz/Cargo.toml.
pub const TARGETS: &[&str] = &[
    "advert_decode",
    "advert_roundtrip",
    "keepalived_conf",
    "cli_values",
];

#[derive(clap::Args)]
pub struct Opts {
    /// Seconds each target runs.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// One target (default: all of them, in turn).
    pub target: Option<String>,
}

pub fn run(opts: &Opts) -> Result<()> {
    let targets: Vec<&str> = match &opts.target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => bail!("no fuzz target {t}: write one of {}", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    let fuzz_dir = root_dir().join("fuzz");
    for target in targets {
        let corpus = seed(target)?;
        let mut cmd = command("cargo", &[&format!("+{NIGHTLY}"), "fuzz", "run", target]);
        cmd.current_dir(&fuzz_dir)
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={}", opts.secs))
            // An allocation that grows without bound is a finding too.
            .arg("-rss_limit_mb=2048");
        status(cmd).with_context(|| {
            format!("fuzz target {target} failed: its input is in fuzz/artifacts/{target}/")
        })?;
    }
    Ok(())
}

/// The target's corpus directory, with its seeds written in.
fn seed(target: &str) -> Result<PathBuf> {
    let dir = root_dir().join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let seeds: Vec<Vec<u8>> = match target {
        "advert_decode" => {
            let vectors = root_dir().join("vrrp-common/tests/vectors");
            let mut seeds = Vec::new();
            for name in [
                "keepalived-2.2.7",
                "keepalived-2.2.7-ipv6",
                "keepalived-2.2.7-ipv6-unicast",
            ] {
                seeds.extend(capture_packets(&vectors.join(format!("{name}.pcap")))?);
            }
            seeds
        }
        "keepalived_conf" => config_seeds(&root_dir().join("vrrp-agent/tests/configs"))?,
        "cli_values" => {
            vec![b"198.51.100.100/24\x001s\x003\x00pseudo\x005s\x00500us\x002s".to_vec()]
        }
        _ => Vec::new(),
    };
    for (n, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{n}")), s)?;
    }
    Ok(dir)
}

/// The IP packets (the bytes after the Ethernet header) of a little-endian pcap file.
fn capture_packets(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.get(..4) != Some(&[0xd4, 0xc3, 0xb2, 0xa1]) {
        bail!("{}: not a little-endian pcap file", path.display());
    }
    let mut packets = Vec::new();
    let mut at = 24;
    while let Some(header) = bytes.get(at..at + 16) {
        let len = u32::from_le_bytes(header[8..12].try_into()?) as usize;
        let frame = bytes
            .get(at + 16..at + 16 + len)
            .context("truncated pcap")?;
        packets.extend(frame.get(14..).map(<[u8]>::to_vec));
        at += 16 + len;
    }
    Ok(packets)
}

/// Every example config as keepalived.conf alone, and one with two includes filled from the
/// included files of the example with includes.
fn config_seeds(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "conf") {
            seeds.push(std::fs::read(&path)?);
        }
    }
    let included = dir.join("with-includes/conf.d");
    let mut with = b"include a.conf\ninclude b*.conf\n".to_vec();
    for name in ["00-checks.conf", "10-public.conf"] {
        with.push(0);
        with.extend(std::fs::read(included.join(name))?);
    }
    seeds.push(with);
    Ok(seeds)
}
