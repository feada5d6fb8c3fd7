//! The command line: a keepalived.conf to run or check, or one instance described by flags.
use std::{net::Ipv4Addr, path::PathBuf, str::FromStr, time::Duration};

use clap::{Args, Parser, Subcommand};
use vrrp_common::{ChecksumForm, Version};

use super::{
    checksum_form, password, Config, ConfigError, Garp, Global, Liveness, Notify, Vip,
    VrrpInstance, XdpMode, ADOPTED_INTERVAL_FACTOR, DEFAULT_RT_PRIORITY,
};

/// `vrrp-agent` command line: a keepalived.conf (`-f`), or one instance described by flags with
/// keepalived's settings by their usual names.
#[derive(Debug, Parser)]
// `--version` is the VRRP version, as the issue and keepalived users expect, so clap's own goes.
// `check-config -f FILE` needs none of the instance flags.
#[command(
    name = "vrrp-agent",
    version,
    about,
    disable_version_flag = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// keepalived.conf to run (keepalived's `-f`).
    #[arg(short = 'f', long = "use-file", value_name = "FILE", global = true)]
    pub file: Option<PathBuf>,
    /// Check the configuration and exit: 0 when it is good (keepalived's `-t`).
    #[arg(short = 't', long = "config-test")]
    pub config_test: bool,
    #[command(flatten)]
    pub instance: InstanceArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration given with -f and exit: 0 when it is good.
    CheckConfig,
}

/// One instance from flags, when no keepalived.conf is given.
#[derive(Debug, Args)]
pub struct InstanceArgs {
    /// Interface the instance runs on (adverts, VIPs, XDP program).
    #[arg(long, value_name = "IF", required_unless_present = "file")]
    pub iface: Option<String>,
    /// Virtual router ID, shared by every router of the group.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=255), required_unless_present = "file")]
    pub vrid: Option<u8>,
    /// Priority: the highest live one holds the VIPs; 255 means address owner.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u8).range(1..=255), required_unless_present = "file")]
    pub priority: Option<u8>,
    /// Virtual IPv4 address, repeatable; /32 unless a prefix length is given; an alias label as
    /// in keepalived.conf: "198.51.100.100/24 label eth0:1".
    #[arg(
        long = "vip",
        value_name = "ADDR[/LEN] [label LABEL]",
        required_unless_present = "file"
    )]
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
    #[arg(long, value_name = "pseudo|message", default_value = "pseudo", value_parser = checksum_form)]
    pub checksum: ChecksumForm,
    /// Gratuitous ARPs sent at once on becoming master.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub garp_count: u8,
    /// Send the gratuitous ARPs again this long after becoming master; 0 to not repeat.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub garp_delay: Duration,
    /// Liveness channel between vrrp-agents: as backup, probe the master this often (e.g.
    /// 500us) and take over once it is silent for --liveness-multiplier intervals; as master,
    /// reflect the probes. Off when not given.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub liveness_interval: Option<Duration>,
    /// Probes lost in a row that mean the master is gone.
    #[arg(long, value_name = "N", default_value_t = Liveness::DEFAULT_MULTIPLIER, requires = "liveness_interval")]
    pub liveness_multiplier: u8,
    /// The longest VRRPv3 master interval a backup adopts; a longer one (a misconfigured or
    /// spoofed master) is adopted as this [default: 10 × --advert-int].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_adopted_interval: Option<Duration>,
    /// XDP attach mode for the kernel fast path [default: auto, or the file's `vrrp_agent`
    /// block]; overrides the file when given.
    #[arg(long, value_enum, global = true)]
    pub xdp: Option<XdpMode>,
    /// SCHED_RR priority (1-99) so the election runs on time on saturated CPUs; 0 for normal
    /// scheduling [default: 1, or the file's vrrp_rt_priority]; overrides the file when given.
    #[arg(long, value_name = "0-99", global = true, value_parser = clap::value_parser!(u8).range(0..=99))]
    pub rt_priority: Option<u8>,
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
            label,
            ..Vip::new(addr, prefix_len)
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

/// `200us`, `10ms`, `100ms`, `1s`, `1.5s`, or bare seconds like keepalived's `advert_int 1`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s}: write a duration like 10ms, 100ms, 1s or 1.5s");
    let (num, unit) = if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1.0)
    };
    let value: f64 = num.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    // Round to whole microseconds: "0.01" must be exactly 10 ms, not 9.999… ms.
    Ok(Duration::from_micros((value * unit * 1e6).round() as u64))
}

impl InstanceArgs {
    /// The validated one-instance configuration these flags describe (`iface`, `vrid`,
    /// `priority` and `vips` are present: clap requires them without `-f`).
    pub fn config(&self) -> Result<Config, ConfigError> {
        let iface = self.iface.clone().unwrap_or_default();
        let instance = VrrpInstance {
            name: format!("VI_{}", self.vrid.unwrap_or_default()),
            iface,
            vrid: self.vrid.unwrap_or_default(),
            priority: self.priority.unwrap_or_default(),
            vips: self.vips.iter().map(|v| v.0.clone()).collect(),
            excluded_vips: Vec::new(),
            version: self.version,
            advert_interval: self.advert_int,
            auth_pass: self.auth_pass.as_deref().map(password).transpose()?,
            preempt: !self.nopreempt,
            preempt_delay: Duration::from_secs(self.preempt_delay),
            accept: true,
            checksum: self.checksum,
            garp: Garp {
                count: self.garp_count,
                repeat_after: (!self.garp_delay.is_zero()).then_some(self.garp_delay),
                ..Garp::default()
            },
            track_checks: Vec::new(),
            track_interfaces: Vec::new(),
            track_primary: true,
            skip_check_adv_addr: false,
            src_ip: None,
            unicast_peers: Vec::new(),
            notify: Notify::default(),
            liveness: self.liveness_interval.map(|interval| Liveness {
                interval,
                multiplier: self.liveness_multiplier,
            }),
            max_adopted_interval: self
                .max_adopted_interval
                .unwrap_or(self.advert_int * ADOPTED_INTERVAL_FACTOR),
        };
        instance.validate()?;
        Ok(Config {
            global: Global {
                xdp: self.xdp.unwrap_or(XdpMode::Auto),
                rt_priority: self.rt_priority.unwrap_or(DEFAULT_RT_PRIORITY),
                ..Global::default()
            },
            instances: vec![instance],
            ..Config::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one instance and the global settings these flags describe, or the error text.
    fn parse_full(args: &str) -> Result<(VrrpInstance, Global), String> {
        let argv = std::iter::once("vrrp-agent").chain(args.split_whitespace());
        parse_argv(argv)
    }

    fn parse_argv<'a>(
        argv: impl IntoIterator<Item = &'a str>,
    ) -> Result<(VrrpInstance, Global), String> {
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let mut config = cli.instance.config().map_err(|e| e.to_string())?;
        Ok((config.instances.remove(0), config.global))
    }

    fn parse(args: &str) -> Result<VrrpInstance, String> {
        parse_full(args).map(|(i, _)| i)
    }

    const BASE: &str = "--iface eth0 --vrid 51 --priority 150 --vip 198.51.100.100";

    #[test]
    fn defaults_match_keepalived() {
        let i = parse(BASE).unwrap();
        assert_eq!(i.version, Version::V3);
        assert_eq!(i.advert_interval, Duration::from_secs(1));
        assert_eq!(i.vips, vec![Vip::new(Ipv4Addr::new(198, 51, 100, 100), 32)]);
        assert!(i.preempt && i.accept && i.track_primary);
        assert_eq!(i.checksum, ChecksumForm::WithPseudoHeader);
        assert_eq!(i.garp, Garp::default());
        let global = parse_full(BASE).unwrap().1;
        assert_eq!(global.xdp, XdpMode::Auto);
        assert_eq!(global.rt_priority, DEFAULT_RT_PRIORITY);
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
        assert_eq!(i.garp.repeat_after, None);
        let global = parse_full(&format!("{BASE} --xdp skb --rt-priority 0"))
            .unwrap()
            .1;
        assert_eq!((global.xdp, global.rt_priority), (XdpMode::Skb, 0));
    }

    #[test]
    fn vip_label_as_in_keepalived_conf() {
        let (instance, _) = parse_argv([
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
        let vip = &instance.vips[0];
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
            let err = parse_argv(argv).unwrap_err();
            assert!(err.contains(want), "{vip}: {err}");
        }
    }

    #[test]
    fn max_adopted_interval_defaults_to_ten_intervals() {
        let i = parse(&format!("{BASE} --advert-int 20ms")).unwrap();
        assert_eq!(i.max_adopted_interval, Duration::from_millis(200));
        let i = parse(&format!("{BASE} --max-adopted-interval 3s")).unwrap();
        assert_eq!(i.max_adopted_interval, Duration::from_secs(3));
        let err = parse(&format!("{BASE} --max-adopted-interval 10ms")).unwrap_err();
        assert!(err.contains("below the instance's own"), "{err}");
    }

    #[test]
    fn liveness_channel_off_unless_an_interval_is_given() {
        assert_eq!(parse(BASE).unwrap().liveness, None);
        let i = parse(&format!(
            "{BASE} --advert-int 10ms --liveness-interval 200us"
        ))
        .unwrap();
        let want = Liveness {
            interval: Duration::from_micros(200),
            multiplier: 4,
        };
        assert_eq!(i.liveness, Some(want));
        assert_eq!(want.detect(), Duration::from_micros(800));
        let i = parse(&format!(
            "{BASE} --liveness-interval 1ms --liveness-multiplier 5"
        ))
        .unwrap();
        assert_eq!(i.liveness.unwrap().multiplier, 5);
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
            (&format!("{BASE} --auth-pass x"), "needs VRRP version 2"),
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
            (
                &format!("{BASE} --advert-int 10ms --liveness-interval 50us"),
                "100us to 1s",
            ),
            (
                &format!(
                    "{BASE} --advert-int 10ms --liveness-interval 200us --liveness-multiplier 1"
                ),
                "2 to 255",
            ),
            (
                &format!("{BASE} --advert-int 10ms --liveness-interval 10ms"),
                "not faster than VRRP's own",
            ),
            (
                &format!("{BASE} --liveness-multiplier 5"),
                "--liveness-interval",
            ),
            (&format!("{BASE} --rt-priority 100"), "0..=99"),
        ];
        for (args, want) in cases {
            let err = parse(args).expect_err(args);
            assert!(err.contains(want), "{args}: {err}");
        }
    }
}
