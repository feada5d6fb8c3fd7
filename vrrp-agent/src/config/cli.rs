//! The command line: a keepalived.conf to run or check, or one instance described by flags.
use std::{net::IpAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::{Args, Parser, Subcommand};
use vrrp_common::{ChecksumForm, Version};

use super::{
    checksum_form, password, Config, ConfigError, Garp, Liveness, Notify, Vip, VrrpInstance,
    XdpMode, ADOPTED_INTERVAL_FACTOR,
};

/// keepalived's own: what runs when neither `-f` nor the one-instance flags are given.
pub const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

/// `vrrp-agent` command line: a keepalived.conf (`-f`, else keepalived's default file), or one
/// instance described by flags with keepalived's settings by their usual names.
#[derive(Debug, Parser)]
// `-v`, `-V` and `--version` print the build (`version_line`); clap's own flag would not say
// whether the kernel program is built in.
#[command(
    name = "vrrp-agent",
    about,
    disable_version_flag = true,
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// keepalived.conf to run [default: /etc/keepalived/keepalived.conf unless the one-instance
    /// flags are given] (keepalived's `-f`).
    #[arg(short = 'f', long = "use-file", value_name = "FILE", global = true)]
    pub file: Option<PathBuf>,
    /// Check the configuration and exit: 0 when it is good, 2 when not (keepalived's `-t`).
    #[arg(short = 't', long = "config-test")]
    pub config_test: bool,
    /// Log format: `auto` is journald under systemd, else text.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    pub log_format: crate::logging::LogFormat,
    /// PID file, locked while the agent runs: a second agent with the same file waits up to 5 s
    /// for the first to finish handing over, then refuses to start
    /// [default: /run/vrrp-agent.pid; in another network namespace than the host's,
    /// /run/vrrp-agent/netns-INODE.pid] (keepalived's `-p`).
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Serve Prometheus metrics (keepalived-exporter's names) on ADDR:PORT, e.g.
    /// 127.0.0.1:9650 [default: off, or the file's `vrrp_agent` block]; overrides the file.
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Control socket, where `vrrp-agent status` asks the running agent [default:
    /// /run/vrrp-agent/control.sock; in another network namespace than the host's,
    /// /run/vrrp-agent/control-netns-INODE.sock].
    #[arg(long, value_name = "PATH", global = true)]
    pub control_socket: Option<PathBuf>,
    /// Print the version, the git commit and whether the kernel program is built in.
    #[arg(short = 'v', long = "version", visible_short_alias = 'V')]
    pub print_version: bool,
    /// XDP attach mode for the kernel fast path [default: auto, or the file's `vrrp_agent`
    /// block]; overrides the file when given.
    #[arg(long, value_enum, global = true)]
    pub xdp: Option<XdpMode>,
    /// SCHED_RR priority (1-99) so the election runs on time on saturated CPUs; 0 for normal
    /// scheduling [default: 1, or the file's vrrp_rt_priority]; overrides the file when given.
    #[arg(long, value_name = "0-99", global = true, value_parser = clap::value_parser!(u8).range(0..=99))]
    pub rt_priority: Option<u8>,
    #[command(flatten)]
    pub keepalived: KeepalivedFlags,
    #[command(flatten)]
    pub instance: InstanceArgs,
}

const AFTER_HELP: &str = "\
Examples:
  vrrp-agent                               run /etc/keepalived/keepalived.conf
  vrrp-agent --iface eth0 --vrid 51 --priority 150 --vip 203.0.113.10/24 --advert-int 100ms

Signals: HUP reloads the file, USR1 logs one status line per instance, TERM and INT hand over
(priority-0 advert, VIPs removed) and exit.

Exit status: 0 after a clean stop or a good check, 1 after a fatal error (VIPs handed over
first), 2 for a command line, configuration or PID file that does not let it run.";

impl Cli {
    pub fn control_socket(&self) -> PathBuf {
        self.control_socket
            .clone()
            .unwrap_or_else(crate::control::default_path)
    }

    /// The keepalived.conf to read: `-f`, or keepalived's default when no one-instance flag is
    /// given; `None` for one instance from flags.
    pub fn config_file(&self) -> Option<PathBuf> {
        match (&self.file, self.instance.given()) {
            (Some(f), _) => Some(f.clone()),
            (None, false) => Some(PathBuf::from(DEFAULT_CONFIG)),
            (None, true) => None,
        }
    }
}

/// The line `--version` prints and the agent logs at start.
pub fn version_line() -> String {
    let built_in = if crate::dataplane::BUILT_IN {
        "yes"
    } else {
        "no"
    };
    format!(
        "vrrp-agent {} (git {}, XDP program built in: {built_in})",
        env!("CARGO_PKG_VERSION"),
        env!("VRRP_GIT_COMMIT")
    )
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration (-f, or the default file) and exit: 0 when it is good.
    CheckConfig,
    /// Write the man page (vrrp-agent.8) and the bash, zsh and fish completions into DIR, for
    /// packaging (`cargo xtask deb`).
    #[command(hide = true)]
    GenerateAssets { dir: PathBuf },
    /// Ask the running agent (over --control-socket) how its instances are: one line each, or
    /// the JSON document (schema version 1, README "Status").
    Status {
        /// The whole document as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 0 when this instance is MASTER, 1 when not (for scripts).
        #[arg(long, value_name = "INSTANCE")]
        check_master: Option<String>,
        /// Only this instance.
        instance: Option<String>,
    },
}

/// The man page and the shell completions, from this command line's own definition.
pub fn generate_assets(dir: &std::path::Path) -> std::io::Result<()> {
    use clap::CommandFactory as _;
    use clap_complete::Shell;
    std::fs::create_dir_all(dir)?;
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .section("8")
        .render(&mut page)?;
    std::fs::write(dir.join("vrrp-agent.8"), page)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut Cli::command(), "vrrp-agent", dir)?;
    }
    Ok(())
}

/// keepalived's daemon flags, so its units and sysconfig files start this agent unchanged. Each
/// is a no-op here, said in one log line at start ([`KeepalivedFlags::notes`]).
#[derive(Debug, Args)]
#[command(next_help_heading = "keepalived's daemon flags (accepted, no effect)")]
pub struct KeepalivedFlags {
    /// Never forks anyway; run it as a Type=notify service or under a supervisor.
    #[arg(short = 'n', long = "dont-fork")]
    pub dont_fork: bool,
    /// Transitions and their reasons are always logged; RUST_LOG=debug for more.
    #[arg(short = 'D', long = "log-detail")]
    pub log_detail: bool,
    /// Logs always go to stderr (the journal under systemd).
    #[arg(short = 'l', long = "log-console")]
    pub log_console: bool,
    /// VRRP is all it runs.
    #[arg(short = 'P', long = "vrrp")]
    pub vrrp_only: bool,
    /// No syslog: logs go to stderr (the journal under systemd).
    #[arg(short = 'S', long = "log-facility", value_name = "0-7")]
    pub log_facility: Option<String>,
    /// No separate VRRP process, no PID file of its own.
    #[arg(short = 'r', long = "vrrp_pid", value_name = "FILE")]
    pub vrrp_pid: Option<PathBuf>,
    /// No health-checker process, no PID file of its own.
    #[arg(short = 'c', long = "checkers_pid", value_name = "FILE")]
    pub checkers_pid: Option<PathBuf>,
}

impl KeepalivedFlags {
    /// One note for each flag given, for the start-up log.
    pub fn notes(&self) -> Vec<&'static str> {
        [
            (self.dont_fork, "-n/--dont-fork: the agent never forks"),
            (
                self.log_detail,
                "-D/--log-detail: transitions are always logged with their reason",
            ),
            (self.log_console, "-l/--log-console: logs go to stderr"),
            (self.vrrp_only, "-P/--vrrp: VRRP is all the agent runs"),
            (
                self.log_facility.is_some(),
                "-S/--log-facility: logs go to stderr, not syslog",
            ),
            (
                self.vrrp_pid.is_some(),
                "-r/--vrrp_pid: no separate VRRP process",
            ),
            (
                self.checkers_pid.is_some(),
                "-c/--checkers_pid: no health-checker process",
            ),
        ]
        .into_iter()
        .filter_map(|(given, note)| given.then_some(note))
        .collect()
    }
}

/// One instance from flags, instead of a keepalived.conf. `--iface`, `--vrid`, `--priority`
/// and `--vip` go together; the rest need them.
#[derive(Debug, Args)]
#[command(next_help_heading = "One instance without a keepalived.conf")]
#[group(id = "instance", multiple = true, conflicts_with = "file")]
pub struct InstanceArgs {
    /// Interface the instance runs on (adverts, VIPs, XDP program).
    #[arg(long, value_name = "IF", requires_all = ["vrid", "priority", "vips"])]
    pub iface: Option<String>,
    /// Virtual router ID, shared by every router of the group.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=255), requires = "iface")]
    pub vrid: Option<u8>,
    /// Priority: the highest live one holds the VIPs; 255 means address owner.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u8).range(1..=255), requires = "iface")]
    pub priority: Option<u8>,
    /// Virtual IPv4 address, repeatable; /32 unless a prefix length is given; an alias label as
    /// in keepalived.conf: "198.51.100.100/24 label eth0:1".
    #[arg(
        long = "vip",
        value_name = "ADDR[/LEN] [label LABEL]",
        requires = "iface"
    )]
    pub vips: Vec<VipArg>,
    /// Advert interval: whole seconds for v2 (1s), 10ms to 40.95s for v3 (100ms, 10ms).
    #[arg(long, requires = "iface", value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub advert_int: Duration,
    /// VRRP version (keepalived's `vrrp_version`).
    #[arg(long, requires = "iface", value_name = "2|3", default_value = "3", value_parser = parse_version)]
    pub vrrp_version: Version,
    /// VRRPv2 `auth_type PASS` password (8 characters at most are sent, as keepalived does).
    #[arg(long, requires = "iface", value_name = "X")]
    pub auth_pass: Option<String>,
    /// Do not take over from a lower-priority master (keepalived's `nopreempt`).
    #[arg(long, requires = "iface")]
    pub nopreempt: bool,
    /// Seconds to accept a lower-priority master before preempting it.
    #[arg(long, requires = "iface", value_name = "SECS", default_value_t = 0)]
    pub preempt_delay: u64,
    /// VRRPv3 checksum to send; both forms are accepted on receive.
    #[arg(long, requires = "iface", value_name = "pseudo|message", default_value = "pseudo", value_parser = checksum_form)]
    pub checksum: ChecksumForm,
    /// Gratuitous ARPs sent at once on becoming master.
    #[arg(long, requires = "iface", value_name = "N", default_value_t = 5)]
    pub garp_count: u8,
    /// Send the gratuitous ARPs again this long after becoming master; 0 to not repeat.
    #[arg(long, requires = "iface", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub garp_delay: Duration,
    /// Liveness channel between vrrp-agents: as backup, probe the master this often (e.g.
    /// 500us) and take over once it is silent for --liveness-multiplier intervals; as master,
    /// reflect the probes. Off when not given.
    #[arg(long, requires = "iface", value_name = "DURATION", value_parser = parse_duration)]
    pub liveness_interval: Option<Duration>,
    /// Probes lost in a row that mean the master is gone.
    #[arg(long, value_name = "N", default_value_t = Liveness::DEFAULT_MULTIPLIER, requires = "liveness_interval")]
    pub liveness_multiplier: u8,
    /// The longest VRRPv3 master interval a backup adopts; a longer one (a misconfigured or
    /// spoofed master) is adopted as this [default: 10 × --advert-int].
    #[arg(long, requires = "iface", value_name = "DURATION", value_parser = parse_duration)]
    pub max_adopted_interval: Option<Duration>,
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
        let (addr, len) = match cidr.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (cidr, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr} is not an IPv4 or IPv6 address"))?;
        // keepalived's defaults: a host address.
        let max = if addr.is_ipv6() { 128 } else { 32 };
        let len = len.unwrap_or(if addr.is_ipv6() { "128" } else { "32" });
        let prefix_len = len
            .parse()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| format!("prefix length {len}: use 1 to {max}"))?;
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
    /// Whether the one-instance flags are given (clap makes `--iface` come with `--vrid`,
    /// `--priority` and `--vip`, and each of the others with `--iface`).
    pub fn given(&self) -> bool {
        self.iface.is_some()
    }

    /// The validated one-instance configuration these flags describe (given: see
    /// [`InstanceArgs::given`]).
    pub fn config(&self) -> Result<Config, ConfigError> {
        let iface = self.iface.clone().unwrap_or_default();
        let instance = VrrpInstance {
            name: format!("VI_{}", self.vrid.unwrap_or_default()),
            iface,
            vrid: self.vrid.unwrap_or_default(),
            priority: self.priority.unwrap_or_default(),
            vips: self.vips.iter().map(|v| v.0.clone()).collect(),
            excluded_vips: Vec::new(),
            version: self.vrrp_version,
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
            instances: vec![instance],
            ..Config::default()
        })
    }
}

impl Cli {
    /// The agent-wide flags given, over what `config` says.
    pub fn override_global(&self, config: &mut Config) {
        if let Some(xdp) = self.xdp {
            config.global.xdp = xdp;
        }
        if let Some(priority) = self.rt_priority {
            config.global.rt_priority = priority;
        }
        if let Some(addr) = self.metrics_listen {
            config.global.metrics_listen = Some(addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Global, DEFAULT_RT_PRIORITY};

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
        cli.override_global(&mut config);
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
        assert_eq!(
            i.vips,
            vec![Vip::new(
                std::net::Ipv4Addr::new(198, 51, 100, 100).into(),
                32
            )]
        );
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
            "{BASE} --vip 198.51.100.101/24 --vrrp-version 2 --advert-int 2 --auth-pass s3cr3t \
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
            multiplier: 3,
        };
        assert_eq!(i.liveness, Some(want));
        assert_eq!(want.detect(), Duration::from_micros(600));
        let i = parse(&format!(
            "{BASE} --liveness-interval 1ms --liveness-multiplier 5"
        ))
        .unwrap();
        assert_eq!(i.liveness.unwrap().multiplier, 5);
    }

    #[test]
    fn long_password_is_cut_to_eight_bytes_like_keepalived() {
        let i = parse(&format!("{BASE} --vrrp-version 2 --auth-pass 0123456789")).unwrap();
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
    fn ipv6_vips_make_an_ipv6_instance() {
        let i = parse("--iface eth0 --vrid 1 --priority 100 --vip fe80::1 --vip 2001:db8::50/64")
            .unwrap();
        assert!(i.is_ipv6());
        assert_eq!(
            i.vips,
            [
                Vip::new("fe80::1".parse().unwrap(), 128),
                Vip::new("2001:db8::50".parse().unwrap(), 64)
            ]
        );
        assert_eq!(i.version, Version::V3);
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
                &format!("{BASE} --vrrp-version 2 --advert-int 100ms"),
                "whole seconds",
            ),
            (
                &format!("{BASE} --vrrp-version 2 --advert-int 256s"),
                "whole seconds",
            ),
            (&format!("{BASE} --advert-int 5ms"), "10ms to 40.95s"),
            (&format!("{BASE} --advert-int 15ms"), "steps of 10ms"),
            (&format!("{BASE} --advert-int 41s"), "10ms to 40.95s"),
            (&format!("{BASE} --advert-int fast"), "write a duration"),
            (&format!("{BASE} --vrrp-version 4"), "2 or 3"),
            (&format!("{BASE} --auth-pass x"), "needs VRRP version 2"),
            (&format!("{BASE} --vrrp-version 2 --auth-pass="), "empty"),
            (
                &format!("{BASE} --nopreempt --preempt-delay 5"),
                "one of them",
            ),
            (&format!("{BASE} --preempt-delay 1001"), "0 to 1000"),
            (&format!("{BASE} --vip 198.51.100.100/24"), "listed twice"),
            (
                "--iface eth0 --vrid 1 --priority 100 --vip 2001:db8::1 --vrrp-version 2",
                "IPv6 VIPs need VRRP version 3",
            ),
            (
                "--iface eth0 --vrid 1 --priority 100 --vip 2001:db8::1 --vip 198.51.100.1",
                "198.51.100.1 is IPv4, the instance runs VRRP over IPv6",
            ),
            (
                "--iface eth0 --vrid 1 --priority 100 --vip 2001:db8::1/129",
                "1 to 128",
            ),
            (
                "--iface eth0 --vrid 1 --priority 100 --vip 2001:db8::1 --liveness-interval 1ms",
                "liveness channel runs over IPv4 only",
            ),
            (
                "--iface eth0 --vrid 1 --priority 100 --vip 2001:db8:::1",
                "not an IPv4 or IPv6 address",
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

    fn cli(args: &str) -> Result<Cli, String> {
        let argv = std::iter::once("vrrp-agent").chain(args.split_whitespace());
        Cli::try_parse_from(argv).map_err(|e| e.to_string())
    }

    /// keepalived's habits: no file and no instance flags read keepalived's default file, also
    /// for `-t` alone; `-f` with instance flags is an error, not flags silently ignored; an
    /// instance flag without the instance is an error, not the default file silently read.
    #[test]
    fn which_configuration_runs() {
        let default = Some(PathBuf::from(DEFAULT_CONFIG));
        assert_eq!(cli("").unwrap().config_file(), default);
        assert_eq!(cli("-t").unwrap().config_file(), default);
        assert_eq!(cli("check-config").unwrap().config_file(), default);
        let given = Some(PathBuf::from("/etc/x.conf"));
        assert_eq!(
            cli("-f /etc/x.conf --xdp off").unwrap().config_file(),
            given
        );
        assert_eq!(cli(BASE).unwrap().config_file(), None);
        let err = cli(&format!("-f /etc/x.conf {BASE}")).unwrap_err();
        assert!(err.contains("cannot be used with"), "{err}");
        for lone in ["--nopreempt", "--advert-int 1s", "--vrid 5", "--iface eth0"] {
            let err = cli(lone).unwrap_err();
            assert!(err.contains("required arguments"), "{lone}: {err}");
        }
    }

    /// `-v`, `-V` and `--version` print the build; the VRRP version is `--vrrp-version`.
    #[test]
    fn version_flags_print_the_build() {
        for flag in ["-v", "-V", "--version"] {
            assert!(cli(flag).unwrap().print_version, "{flag}");
        }
        assert!(
            version_line().starts_with("vrrp-agent 0."),
            "{}",
            version_line()
        );
        assert!(version_line().contains("XDP program built in: "));
        let i = parse(&format!("{BASE} --vrrp-version 2 --advert-int 1s")).unwrap();
        assert_eq!(i.version, Version::V2);
    }

    /// Debian's unit runs `keepalived --dont-fork $DAEMON_ARGS`, RHEL's sysconfig passes `-D`:
    /// accepted, each with a note for the log.
    #[test]
    fn keepalived_daemon_flags_are_accepted() {
        let c = cli("--dont-fork -D -l -P -S 0 -r /run/v.pid -c /run/c.pid").unwrap();
        assert_eq!(c.keepalived.notes().len(), 7);
        assert_eq!(c.config_file(), Some(PathBuf::from(DEFAULT_CONFIG)));
        assert!(cli("-n").unwrap().keepalived.notes()[0].contains("never forks"));
    }
}
