//! The agent's configuration model and the command line that fills it. Every value is validated
//! here, once, with a message that says what to write instead; the rest of the agent trusts it.
use std::{net::Ipv4Addr, str::FromStr, time::Duration};

use clap::{Parser, ValueEnum};
use thiserror::Error;
use vrrp_common::Version;

/// One VRRP instance on one interface (keepalived's `vrrp_instance`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub iface: String,
    pub vrid: u8,
    pub priority: u8,
    pub vips: Vec<Vip>,
    pub version: Version,
    pub advert_interval: Duration,
    /// VRRPv2 `auth_type PASS`: the password as sent, zero-padded to 8 bytes.
    pub auth_pass: Option<[u8; 8]>,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub checksum: ChecksumForm,
    pub garp: Garp,
    pub xdp: XdpMode,
}

/// A virtual address with its prefix length (keepalived defaults to /32).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// An alias label such as `eth0:1`; `None` means the interface name, as for `ip addr add`.
    pub label: Option<String>,
}

/// Gratuitous ARP on becoming master: `count` requests at once, again after `repeat_after`
/// (keepalived's `vrrp_garp_master_repeat` 5 and `garp_master_delay` 5 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Garp {
    pub count: u8,
    pub repeat_after: Option<Duration>,
}

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum XdpMode {
    /// Driver mode, falling back to SKB mode, then to the raw-socket receive path.
    Native,
    /// Generic (SKB) mode, falling back to the raw-socket receive path.
    Skb,
    /// No XDP: adverts are read from a raw socket, as keepalived does.
    Off,
}

/// The VRRPv3-over-IPv4 checksum we send; on receive both forms are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChecksumForm {
    /// Includes the IPv4 pseudo-header: what keepalived and FRR send by default.
    Pseudo,
    /// VRRP message only, as RFC 9568 words it (keepalived's `v3_checksum_as_v2`).
    Message,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("advert interval {0:?}: VRRPv2 sends whole seconds from 1s to 255s; use e.g. 1s, or --version 3 for sub-second adverts")]
    V2Interval(Duration),
    #[error("advert interval {0:?}: VRRPv3 sends 10ms to 40.95s in steps of 10ms")]
    V3Interval(Duration),
    #[error("--auth-pass needs --version 2: VRRPv3 (RFC 9568) has no authentication")]
    AuthNeedsV2,
    #[error("--auth-pass is empty; give the password of the other routers, or leave it out")]
    EmptyPassword,
    #[error("--preempt-delay has no effect with --nopreempt; use one of them")]
    PreemptDelayWithNopreempt,
    #[error("--preempt-delay {0}s: keepalived's range is 0 to 1000 seconds")]
    PreemptDelayRange(u64),
    #[error("--vip {0} is listed twice")]
    DuplicateVip(Ipv4Addr),
    #[error(
        "--garp-count 0: send at least one gratuitous ARP, or the neighbours keep the old MAC"
    )]
    GarpCount,
    #[error("VIP {addr} label {label:?} must start with the interface name, as in \"{iface}:1\"")]
    LabelPrefix {
        addr: Ipv4Addr,
        label: String,
        iface: String,
    },
    #[error("VIP {addr} label {label:?} is longer than the 15 bytes the kernel allows")]
    LabelLength { addr: Ipv4Addr, label: String },
}

/// `vrrp-agent` command line: one instance, keepalived's settings by their usual names.
#[derive(Debug, Parser)]
// `--version` is the VRRP version, as the issue and keepalived users expect, so clap's own goes.
#[command(name = "vrrp-agent", version, about, disable_version_flag = true)]
pub struct Cli {
    /// Interface the instance runs on (adverts, VIPs, XDP program).
    #[arg(long, value_name = "IF")]
    pub iface: String,
    /// Virtual router ID, shared by every router of the group.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=255))]
    pub vrid: u8,
    /// Priority: the highest live one holds the VIPs; 255 means address owner.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u8).range(1..=255))]
    pub priority: u8,
    /// Virtual IPv4 address, repeatable; /32 unless a prefix length is given; an alias label as
    /// in keepalived.conf: "198.51.100.100/24 label eth0:1".
    #[arg(long = "vip", value_name = "ADDR[/LEN] [label LABEL]", required = true)]
    pub vips: Vec<VipArg>,
    /// Advert interval: whole seconds for v2 (1s), 10ms to 40.95s for v3 (100ms, 10ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub advert_int: Duration,
    /// VRRP version (keepalived's `vrrp_version`).
    #[arg(long, value_name = "2|3", default_value = "3", value_parser = parse_version)]
    pub version: Version,
    /// VRRPv2 `auth_type PASS` password (8 characters at most are sent, as keepalived does).
    #[arg(long, value_name = "X")]
    pub auth_pass: Option<String>,
    /// Do not take over from a lower-priority master (keepalived's `nopreempt`).
    #[arg(long)]
    pub nopreempt: bool,
    /// Seconds to accept a lower-priority master before preempting it.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub preempt_delay: u64,
    /// VRRPv3 checksum to send; both forms are accepted on receive.
    #[arg(long, value_enum, default_value_t = ChecksumForm::Pseudo)]
    pub checksum: ChecksumForm,
    /// Gratuitous ARPs sent at once on becoming master.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub garp_count: u8,
    /// Send the gratuitous ARPs again this long after becoming master; 0 to not repeat.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub garp_delay: Duration,
    /// XDP attach mode for the kernel fast path.
    #[arg(long, value_enum, default_value_t = XdpMode::Native)]
    pub xdp: XdpMode,
}

/// `ADDR[/LEN] [label LABEL]` as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipArg(pub Vip);

impl FromStr for VipArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let cidr = words.next().unwrap_or_default();
        let label = match (words.next(), words.next(), words.next()) {
            (None, ..) => None,
            (Some("label"), Some(label), None) => Some(label.to_string()),
            _ => {
                return Err(format!(
                    "{s}: write ADDR[/LEN] or \"ADDR[/LEN] label LABEL\""
                ))
            }
        };
        let (addr, len) = cidr.split_once('/').unwrap_or((cidr, "32"));
        let addr: Ipv4Addr = addr.parse().map_err(|_| {
            if addr.contains(':') {
                format!("{addr}: IPv6 VIPs (VRRPv3 over IPv6) are not supported yet")
            } else {
                format!("{addr} is not an IPv4 address")
            }
        })?;
        let prefix_len = len
            .parse()
            .ok()
            .filter(|l| (1..=32).contains(l))
            .ok_or_else(|| format!("prefix length {len}: use 1 to 32"))?;
        Ok(Self(Vip {
            addr,
            prefix_len,
            label,
        }))
    }
}

fn parse_version(s: &str) -> Result<Version, String> {
    match s {
        "2" => Ok(Version::V2),
        "3" => Ok(Version::V3),
        _ => Err(format!("{s}: VRRP version is 2 or 3")),
    }
}

/// `10ms`, `100ms`, `1s`, `1.5s`, or bare seconds like keepalived's `advert_int 1`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s}: write a duration like 10ms, 100ms, 1s or 1.5s");
    let (num, unit) = match s.strip_suffix("ms") {
        Some(n) => (n, 1e-3),
        None => (s.strip_suffix('s').unwrap_or(s), 1.0),
    };
    let value: f64 = num.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    // Round to whole microseconds: "0.01" must be exactly 10 ms, not 9.999… ms.
    Ok(Duration::from_micros((value * unit * 1e6).round() as u64))
}

impl Cli {
    /// The validated instance this command line describes.
    pub fn instance(&self) -> Result<Instance, ConfigError> {
        check_interval(self.version, self.advert_int)?;
        let auth_pass = match (&self.auth_pass, self.version) {
            (None, _) => None,
            (Some(_), Version::V3) => return Err(ConfigError::AuthNeedsV2),
            (Some(p), Version::V2) if p.is_empty() => return Err(ConfigError::EmptyPassword),
            (Some(p), Version::V2) => {
                let mut pass = [0; 8];
                let n = p.len().min(8);
                pass[..n].copy_from_slice(&p.as_bytes()[..n]);
                Some(pass)
            }
        };
        if self.nopreempt && self.preempt_delay > 0 {
            return Err(ConfigError::PreemptDelayWithNopreempt);
        }
        if self.preempt_delay > 1000 {
            return Err(ConfigError::PreemptDelayRange(self.preempt_delay));
        }
        let vips: Vec<Vip> = self.vips.iter().map(|v| v.0.clone()).collect();
        for (i, v) in vips.iter().enumerate() {
            if vips[..i].iter().any(|w| w.addr == v.addr) {
                return Err(ConfigError::DuplicateVip(v.addr));
            }
            check_label(v, &self.iface)?;
        }
        if self.garp_count == 0 {
            return Err(ConfigError::GarpCount);
        }
        Ok(Instance {
            iface: self.iface.clone(),
            vrid: self.vrid,
            priority: self.priority,
            vips,
            version: self.version,
            advert_interval: self.advert_int,
            auth_pass,
            preempt: !self.nopreempt,
            preempt_delay: Duration::from_secs(self.preempt_delay),
            checksum: self.checksum,
            garp: Garp {
                count: self.garp_count,
                repeat_after: (!self.garp_delay.is_zero()).then_some(self.garp_delay),
            },
            xdp: self.xdp,
        })
    }
}

/// What `ip addr add ... label` accepts: the interface name as prefix, at most IFNAMSIZ - 1 bytes.
fn check_label(vip: &Vip, iface: &str) -> Result<(), ConfigError> {
    match &vip.label {
        Some(label) if !label.starts_with(iface) => Err(ConfigError::LabelPrefix {
            addr: vip.addr,
            label: label.clone(),
            iface: iface.to_string(),
        }),
        Some(label) if label.len() > 15 => Err(ConfigError::LabelLength {
            addr: vip.addr,
            label: label.clone(),
        }),
        _ => Ok(()),
    }
}

/// RFC 3768 carries whole seconds in 8 bits; RFC 9568 carries centiseconds in 12 bits.
pub fn check_interval(version: Version, interval: Duration) -> Result<(), ConfigError> {
    match version {
        Version::V2 if interval.subsec_nanos() != 0 || !(1..=255).contains(&interval.as_secs()) => {
            Err(ConfigError::V2Interval(interval))
        }
        Version::V3
            if !interval.as_nanos().is_multiple_of(10_000_000)
                || !(10..=40_950).contains(&interval.as_millis()) =>
        {
            Err(ConfigError::V3Interval(interval))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Instance, String> {
        let argv = std::iter::once("vrrp-agent").chain(args.split_whitespace());
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        cli.instance().map_err(|e| e.to_string())
    }

    const BASE: &str = "--iface eth0 --vrid 51 --priority 150 --vip 198.51.100.100";

    #[test]
    fn defaults_match_keepalived() {
        let i = parse(BASE).unwrap();
        assert_eq!(i.version, Version::V3);
        assert_eq!(i.advert_interval, Duration::from_secs(1));
        assert_eq!(
            i.vips,
            vec![Vip {
                addr: Ipv4Addr::new(198, 51, 100, 100),
                prefix_len: 32,
                label: None,
            }]
        );
        assert!(i.preempt);
        assert_eq!(i.checksum, ChecksumForm::Pseudo);
        assert_eq!(
            i.garp,
            Garp {
                count: 5,
                repeat_after: Some(Duration::from_secs(5))
            }
        );
        assert_eq!(i.xdp, XdpMode::Native);
    }

    #[test]
    fn full_v2_instance_with_password() {
        let i = parse(&format!(
            "{BASE} --vip 198.51.100.101/24 --version 2 --advert-int 2 --auth-pass s3cr3t \
             --preempt-delay 30 --xdp skb --garp-delay 0"
        ))
        .unwrap();
        assert_eq!(i.version, Version::V2);
        assert_eq!(i.advert_interval, Duration::from_secs(2));
        assert_eq!(i.auth_pass, Some(*b"s3cr3t\0\0"));
        assert_eq!(i.vips[1].prefix_len, 24);
        assert_eq!(i.preempt_delay, Duration::from_secs(30));
        assert_eq!(i.xdp, XdpMode::Skb);
        assert_eq!(i.garp.repeat_after, None);
    }

    #[test]
    fn vip_label_as_in_keepalived_conf() {
        let cli = Cli::try_parse_from([
            "vrrp-agent",
            "--iface",
            "eth0",
            "--vrid",
            "51",
            "--priority",
            "150",
            "--vip",
            "198.51.100.100/24 label eth0:1",
        ])
        .unwrap();
        let vip = &cli.instance().unwrap().vips[0];
        assert_eq!((vip.prefix_len, vip.label.as_deref()), (24, Some("eth0:1")));
    }

    #[test]
    fn bad_vip_labels_are_refused_at_start() {
        for (vip, want) in [
            (
                "198.51.100.100/24 label eth1:1",
                "must start with the interface name",
            ),
            ("198.51.100.100/24 label eth0:verylonglabel", "15 bytes"),
            ("198.51.100.100/24 lable eth0:1", "label LABEL"),
            ("198.51.100.100/24 label", "label LABEL"),
        ] {
            let argv = [
                "vrrp-agent",
                "--iface",
                "eth0",
                "--vrid",
                "5",
                "--priority",
                "9",
                "--vip",
                vip,
            ];
            let err = match Cli::try_parse_from(argv) {
                Ok(cli) => cli.instance().unwrap_err().to_string(),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(want), "{vip}: {err}");
        }
    }

    #[test]
    fn long_password_is_cut_to_eight_bytes_like_keepalived() {
        let i = parse(&format!("{BASE} --version 2 --auth-pass 0123456789")).unwrap();
        assert_eq!(i.auth_pass, Some(*b"01234567"));
    }

    #[test]
    fn v3_intervals_in_centiseconds() {
        for (arg, ms) in [
            ("10ms", 10),
            ("100ms", 100),
            ("0.01", 10),
            ("1.5s", 1500),
            ("40.95s", 40_950),
        ] {
            let i = parse(&format!("{BASE} --advert-int {arg}")).unwrap();
            assert_eq!(i.advert_interval, Duration::from_millis(ms), "{arg}");
        }
    }

    #[test]
    fn rejected_command_lines_say_what_to_do() {
        let cases = [
            (
                "--iface eth0 --vrid 0 --priority 100 --vip 198.51.100.100",
                "not in 1..=255",
            ),
            (
                "--iface eth0 --vrid 256 --priority 100 --vip 198.51.100.100",
                "not in 1..=255",
            ),
            (
                "--iface eth0 --vrid 1 --priority 0 --vip 198.51.100.100",
                "not in 1..=255",
            ),
            ("--iface eth0 --vrid 1 --priority 100", "--vip"),
            (
                &format!("{BASE} --version 2 --advert-int 100ms"),
                "whole seconds",
            ),
            (
                &format!("{BASE} --version 2 --advert-int 256s"),
                "whole seconds",
            ),
            (&format!("{BASE} --advert-int 5ms"), "10ms to 40.95s"),
            (&format!("{BASE} --advert-int 15ms"), "steps of 10ms"),
            (&format!("{BASE} --advert-int 41s"), "10ms to 40.95s"),
            (&format!("{BASE} --advert-int fast"), "write a duration"),
            (&format!("{BASE} --version 4"), "2 or 3"),
            (&format!("{BASE} --auth-pass x"), "needs --version 2"),
            (&format!("{BASE} --version 2 --auth-pass="), "empty"),
            (
                &format!("{BASE} --nopreempt --preempt-delay 5"),
                "one of them",
            ),
            (&format!("{BASE} --preempt-delay 1001"), "0 to 1000"),
            (&format!("{BASE} --vip 198.51.100.100/24"), "listed twice"),
            (
                "--iface eth0 --vrid 1 --priority 100 --vip 2001:db8::1",
                "IPv6",
            ),
            (
                "--iface eth0 --vrid 1 --priority 100 --vip 198.51.100.1/33",
                "1 to 32",
            ),
            (
                "--iface eth0 --vrid 1 --priority 100 --vip 198.51.100.256",
                "not an IPv4",
            ),
            (&format!("{BASE} --garp-count 0"), "at least one"),
            (
                "--iface eth0 --vrid 1 --priority 100 --vip 198.51.100.1/24,eth0:1",
                "1 to 32",
            ),
            (&format!("{BASE} --xdp maybe"), "native"),
        ];
        for (args, want) in cases {
            let err = parse(args).expect_err(args);
            assert!(err.contains(want), "{args}: {err}");
        }
    }
}
