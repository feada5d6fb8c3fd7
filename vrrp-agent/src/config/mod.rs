//! The agent's configuration model, filled from the command line (`cli`) or from a keepalived.conf
//! (`keepalived`). Every value is validated once, when the model is built, with a message that says
//! what to write instead; the rest of the agent trusts it.
pub mod cli;
pub mod keepalived;

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use clap::ValueEnum;
use thiserror::Error;
use vrrp_common::{maps::MAX_ADDRS_V6, ChecksumForm, Version};

/// Everything one agent process runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub global: Global,
    pub instances: Vec<VrrpInstance>,
    /// Health checks, by name: keepalived's `vrrp_script` and our in-process checks.
    pub checks: Vec<Check>,
    pub sync_groups: Vec<SyncGroup>,
}

/// keepalived's `global_defs` (the VRRP part) and our own process-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    pub router_id: Option<String>,
    /// `vrrp_startup_delay`: wait this long before starting the instances (slow interfaces).
    pub startup_delay: Duration,
    /// `script_user USER [GROUP]`: who runs scripts without a `user` of their own.
    pub script_user: Option<ScriptUser>,
    /// `enable_script_security`: refuse scripts that a non-root user could change.
    pub script_security: bool,
    /// `vrrp_skip_check_adv_addr`: every instance's `skip_check_adv_addr`.
    pub skip_check_adv_addr: bool,
    /// Extension: how the XDP program is attached.
    pub xdp: XdpMode,
    /// `vrrp_rt_priority`: SCHED_RR priority of the agent's thread, 0 for normal scheduling.
    pub rt_priority: u8,
    /// Extension (`metrics_listen` in vrrp_agent, `--metrics-listen`): serve Prometheus
    /// metrics on this address.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Realtime by default, unlike keepalived: the election must run on time when other processes
/// saturate the CPUs. The lowest realtime priority is enough to come before all of them.
pub const DEFAULT_RT_PRIORITY: u8 = 1;

impl Default for Global {
    fn default() -> Self {
        Self {
            router_id: None,
            startup_delay: Duration::ZERO,
            script_user: None,
            script_security: false,
            skip_check_adv_addr: false,
            xdp: XdpMode::Auto,
            rt_priority: DEFAULT_RT_PRIORITY,
            metrics_listen: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

/// One VRRP instance on one interface (keepalived's `vrrp_instance`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpInstance {
    pub name: String,
    pub iface: String,
    pub vrid: u8,
    pub priority: u8,
    pub vips: Vec<Vip>,
    /// `virtual_ipaddress_excluded`: installed with the others but not listed in adverts.
    pub excluded_vips: Vec<Vip>,
    pub version: Version,
    pub advert_interval: Duration,
    /// VRRPv2 `auth_type PASS`: the password as sent, zero-padded to 8 bytes.
    pub auth_pass: Option<[u8; 8]>,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// `accept` / `no_accept`: whether a non-owner master accepts packets for the VIPs.
    pub accept: bool,
    pub checksum: ChecksumForm,
    pub garp: Garp,
    pub track_checks: Vec<Tracked>,
    pub track_interfaces: Vec<Tracked>,
    /// `dont_track_primary` unset: the instance's own interface going down means FAULT.
    pub track_primary: bool,
    /// `skip_check_adv_addr`: as backup, compare the address list only of adverts from a new
    /// master (keepalived's meaning), not of every advert.
    pub skip_check_adv_addr: bool,
    /// `mcast_src_ip` / `unicast_src_ip`: advert source instead of the interface's primary
    /// address (IPv4) or its link-local address (IPv6).
    pub src_ip: Option<IpAddr>,
    /// `unicast_peer`: adverts go to (and are only accepted from) these instead of 224.0.0.18
    /// or ff02::12.
    pub unicast_peers: Vec<IpAddr>,
    pub notify: Notify,
    /// Extension: probe the master between adverts, to take over within a millisecond.
    pub liveness: Option<Liveness>,
    /// Extension (`max_adopted_interval` in vrrp_agent): the longest VRRPv3 master interval a
    /// backup adopts (RFC 9568 §6.4.2); a longer one is adopted as this, logged and counted.
    pub max_adopted_interval: Duration,
}

/// Unset, a backup adopts at most ten times its own interval: room for a master being moved to
/// a slower interval one router at a time, while one spoofed advert with the longest interval
/// (40.95 s) can no longer leave the VIP unowned for two minutes (3 × 10 × 100 ms + skew at the
/// default v3 setups here).
pub const ADOPTED_INTERVAL_FACTOR: u32 = 10;

/// The liveness channel (`--liveness-interval`, `liveness_interval`): as backup, probe the
/// master every `interval` through its kernel program; silence for `multiplier` intervals means
/// it is gone. As master, reflect the backups' probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    pub interval: Duration,
    pub multiplier: u8,
}

impl Liveness {
    /// Silence must outlast the delays a probe meets on a busy host that the agent cannot see:
    /// on a VM with a backlog-overflowing flood 3 × 500 µs moved the VIP now and then until a
    /// silence waited for the frames queued in the backlog; since, no wrong takeover in 26
    /// windows of 60 s under the bench's loads that the channel caused (1.5–1.9 ms from a cut
    /// to the GARP where it decides).
    pub const DEFAULT_MULTIPLIER: u8 = 3;
    /// Each probe wakes a thread of the backup: below this its CPU cost outgrows the gain.
    pub const MIN_INTERVAL: Duration = Duration::from_micros(100);
    pub const MAX_INTERVAL: Duration = Duration::from_secs(1);

    /// Silence that means the master is gone.
    pub fn detect(&self) -> Duration {
        self.interval * u32::from(self.multiplier)
    }
}

/// A virtual address (keepalived's `virtual_ipaddress` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    /// keepalived defaults to /32 (IPv4) and /128 (IPv6).
    pub prefix_len: u8,
    /// An alias label such as `eth0:1`; `None` means the interface name, as for `ip addr add`.
    pub label: Option<String>,
    /// `dev`: the interface the address goes on, when not the instance's.
    pub dev: Option<String>,
    /// `scope`: rtnetlink scope (0 global, 200 site, 253 link, 254 host).
    pub scope: u8,
    /// `brd`: explicit broadcast; `None` computes it as `ip addr add ... brd +` does. IPv4 only.
    pub broadcast: Option<Ipv4Addr>,
    /// `no_track`: when someone else deletes it while we are master, leave it deleted (the agent
    /// puts other VIPs back at once).
    pub no_track: bool,
}

impl Vip {
    /// A plain `ADDR/LEN` entry.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Self {
        Self {
            addr,
            prefix_len,
            label: None,
            dev: None,
            scope: 0,
            broadcast: None,
            no_track: false,
        }
    }
}

/// Gratuitous ARP on becoming master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Garp {
    /// `garp_master_repeat` (keepalived 5): requests per VIP at once.
    pub count: u8,
    /// `garp_master_delay` (keepalived 5 s): the burst again this long after becoming master.
    pub repeat_after: Option<Duration>,
    /// `garp_master_refresh` (keepalived off): a burst every this long while master.
    pub refresh: Option<Duration>,
    /// `vrrp_garp_interval`: pause between two gratuitous ARPs.
    pub interval: Duration,
    /// `vrrp_gna_interval`: pause between two Neighbor Advertisements (IPv6 VIPs).
    pub na_interval: Duration,
    /// `garp_lower_prio_repeat` (keepalived: `vrrp_garp_master_repeat`'s value, 5): requests per
    /// VIP when a master hears a lower-priority advert (another master: a split brain ending);
    /// 0 for none.
    pub lower_prio_count: u8,
    /// `garp_lower_prio_delay` (keepalived: `vrrp_garp_master_delay`'s value, 5 s): that burst
    /// again this long later.
    pub lower_prio_repeat_after: Option<Duration>,
}

impl Garp {
    /// The pause before announcing `vip` in a burst: keepalived paces gratuitous ARPs and
    /// Neighbor Advertisements each by its own interval.
    pub fn pause_before(&self, vip: IpAddr) -> Duration {
        match vip {
            IpAddr::V4(_) => self.interval,
            IpAddr::V6(_) => self.na_interval,
        }
    }
}

impl Default for Garp {
    fn default() -> Self {
        Self {
            count: 5,
            repeat_after: Some(Duration::from_secs(5)),
            refresh: None,
            interval: Duration::ZERO,
            na_interval: Duration::ZERO,
            lower_prio_count: 5,
            lower_prio_repeat_after: Some(Duration::from_secs(5)),
        }
    }
}

/// A `track_script` or `track_interface` entry; `weight` overrides the script's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked {
    pub name: String,
    pub weight: Option<i32>,
}

/// Scripts run on state changes, with keepalived's arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    /// `notify`: gets `INSTANCE|GROUP NAME STATE PRIORITY`.
    pub any: Option<String>,
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
}

/// A health check (keepalived's `vrrp_script`, or an in-process check of ours).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    /// Priority change: positive when the check succeeds, negative when it fails; 0 means a
    /// failing check puts the instances that track it in FAULT.
    pub weight: i32,
    /// `weight N reverse`: the change applies in the opposite state.
    pub reverse: bool,
    /// Consecutive successes before a failed check counts as up.
    pub rise: u32,
    /// Consecutive failures before a good check counts as down.
    pub fall: u32,
    /// `user USER [GROUP]` of this script.
    pub user: Option<ScriptUser>,
    /// `init_fail`: start in the failed state until the first success.
    pub init_fail: bool,
}

impl Check {
    /// keepalived's defaults: every second, timeout = interval, weight 0, rise 1, fall 1.
    pub fn new(name: &str, probe: Probe) -> Self {
        Self {
            name: name.to_owned(),
            probe,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            weight: 0,
            reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
        }
    }
}

/// What a health check does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `script "..."`: run it; exit status 0 is success.
    Exec(String),
    /// Extension: a process with this name is running (what `ps -C NAME` shows).
    Process(String),
    /// Extension: a TCP connection to this address succeeds.
    Tcp(std::net::SocketAddr),
    /// Extension: an HTTP GET of `path` on `addr` answers with `status`.
    Http {
        addr: std::net::SocketAddr,
        host: Option<String>,
        path: String,
        status: u16,
    },
}

/// `vrrp_sync_group`: instances that change state together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncGroup {
    pub name: String,
    pub members: Vec<String>,
    pub notify: Notify,
}

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum XdpMode {
    /// Driver mode, except on veth: TC ingress there (generic XDP copies nearly every veth frame
    /// to give itself headroom, and veth's driver mode queues frames in a 256-frame ring ahead of
    /// the program, which a flood overflows, adverts included). Falls back like `native`.
    Auto,
    /// Driver mode, falling back to SKB mode, then to the raw-socket receive path.
    Native,
    /// Generic (SKB) mode, falling back to the raw-socket receive path.
    Skb,
    /// The same program at TC ingress (tcx, Linux 6.6+), falling back to the raw-socket path.
    Tc,
    /// No XDP: adverts are read from a raw socket, as keepalived does.
    Off,
}

/// The VRRPv3 checksum form sent, by its name in `--checksum` and `vrrp_agent { checksum }`:
/// `pseudo` includes the IPv4 pseudo-header (what keepalived and FRR send), `message` covers the
/// VRRP message only, as RFC 9568 words it (keepalived's `v3_checksum_as_v2`). On receive both
/// forms are accepted.
pub fn checksum_form(word: &str) -> Result<ChecksumForm, String> {
    match word {
        "pseudo" => Ok(ChecksumForm::WithPseudoHeader),
        "message" => Ok(ChecksumForm::MessageOnly),
        _ => Err(format!("{word}: write pseudo or message")),
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("advert interval {0:?}: VRRPv2 sends whole seconds from 1s to 255s; use e.g. 1s, or --vrrp-version 3 for sub-second adverts")]
    V2Interval(Duration),
    #[error("advert interval {0:?}: VRRPv3 sends 10ms to 40.95s in steps of 10ms")]
    V3Interval(Duration),
    #[error(
        "authentication (auth_pass, --auth-pass) needs VRRP version 2: VRRPv3 (RFC 9568) has none"
    )]
    AuthNeedsV2,
    #[error("the password (auth_pass, --auth-pass) is empty; give the other routers' password, or leave it out")]
    EmptyPassword,
    #[error("preempt_delay has no effect with nopreempt; use one of them")]
    PreemptDelayWithNopreempt,
    #[error("preempt_delay {0:?}: keepalived's range is 0 to 1000 seconds")]
    PreemptDelayRange(Duration),
    #[error("VIP {0} is listed twice")]
    DuplicateVip(IpAddr),
    #[error("a VRRP instance needs at least one VIP (virtual_ipaddress, --vip)")]
    NoVips,
    #[error("garp_master_repeat 0: send at least one gratuitous ARP, or the neighbours keep the old MAC")]
    GarpCount,
    #[error("VIP {addr} label {label:?} must start with the interface name, as in \"{iface}:1\"")]
    LabelPrefix {
        addr: IpAddr,
        label: String,
        iface: String,
    },
    #[error("VIP {addr} label {label:?} is longer than the 15 bytes the kernel allows")]
    LabelLength { addr: IpAddr, label: String },
    #[error("{addr} is IPv{got}, the instance runs VRRP over IPv{want} (its first VIP); put the two families in two instances")]
    FamilyMismatch { addr: IpAddr, got: u8, want: u8 },
    #[error("IPv6 VIPs need VRRP version 3: VRRPv2 (RFC 3768) is IPv4 only")]
    V2Ipv6,
    #[error("{count} IPv6 VIPs: an advert carries at most {max} in a 1500-byte frame; list the rest in virtual_ipaddress_excluded")]
    TooManyIpv6Vips { count: usize, max: usize },
    #[error(
        "the liveness channel runs over IPv4 only; leave liveness_interval out of IPv6 instances"
    )]
    LivenessIpv6,
    #[error(
        "unicast peer {0} needs unicast_src_ip: without it IPv6 adverts go from the link-local \
         address, which peers that list this router by another address refuse; give the \
         address they list"
    )]
    Ipv6UnicastSource(IpAddr),
    #[error("liveness interval {0:?}: write 100us to 1s, e.g. 200us or 1ms")]
    LivenessInterval(Duration),
    #[error("liveness multiplier {0}: write 2 to 255 (one lost probe must not move the VIP)")]
    LivenessMultiplier(u8),
    #[error("liveness detection ({detect:?}) is not faster than VRRP's own ({vrrp:?}, three adverts): shorten liveness_interval or leave it out")]
    LivenessSlow { detect: Duration, vrrp: Duration },
    #[error("max_adopted_interval {max:?} is below the instance's own advert interval {own:?}: raise it, or leave it out (default: ten times the instance's interval)")]
    AdoptedIntervalBelowOwn { max: Duration, own: Duration },
}

impl VrrpInstance {
    /// Its interface and the other devices its VIPs name (`dev`): where it sends and adds.
    pub fn devices(&self) -> impl Iterator<Item = &str> {
        let vips = self.vips.iter().chain(&self.excluded_vips);
        let devs = vips.filter_map(|v| v.dev.as_deref());
        std::iter::once(self.iface.as_str()).chain(devs)
    }

    /// Whether it runs VRRP over IPv6: its first VIP says, as in keepalived.
    pub fn is_ipv6(&self) -> bool {
        self.vips.first().is_some_and(|v| v.addr.is_ipv6())
    }

    /// The checks every source of configuration goes through.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_interval(self.version, self.advert_interval)?;
        if self.auth_pass.is_some() && self.version == Version::V3 {
            return Err(ConfigError::AuthNeedsV2);
        }
        if !self.preempt && !self.preempt_delay.is_zero() {
            return Err(ConfigError::PreemptDelayWithNopreempt);
        }
        if self.preempt_delay > Duration::from_secs(1000) {
            return Err(ConfigError::PreemptDelayRange(self.preempt_delay));
        }
        if self.vips.is_empty() {
            return Err(ConfigError::NoVips);
        }
        let all: Vec<&Vip> = self.vips.iter().chain(&self.excluded_vips).collect();
        for (i, v) in all.iter().enumerate() {
            if all[..i].iter().any(|w| w.addr == v.addr) {
                return Err(ConfigError::DuplicateVip(v.addr));
            }
            check_label(v, v.dev.as_deref().unwrap_or(&self.iface))?;
        }
        self.check_family()?;
        if self.garp.count == 0 {
            return Err(ConfigError::GarpCount);
        }
        if self.max_adopted_interval < self.advert_interval {
            return Err(ConfigError::AdoptedIntervalBelowOwn {
                max: self.max_adopted_interval,
                own: self.advert_interval,
            });
        }
        if let Some(l) = self.liveness {
            if !(Liveness::MIN_INTERVAL..=Liveness::MAX_INTERVAL).contains(&l.interval) {
                return Err(ConfigError::LivenessInterval(l.interval));
            }
            if l.multiplier < 2 {
                return Err(ConfigError::LivenessMultiplier(l.multiplier));
            }
            let vrrp = 3 * self.advert_interval;
            if l.detect() >= vrrp {
                return Err(ConfigError::LivenessSlow {
                    detect: l.detect(),
                    vrrp,
                });
            }
        }
        Ok(())
    }
}

impl VrrpInstance {
    /// One family per instance (RFC 9568 §5.2.9): the advertised VIPs, the source and the
    /// unicast peers; IPv6 only over VRRPv3, within one frame, without the liveness channel.
    /// Excluded VIPs may mix families, as in keepalived.
    fn check_family(&self) -> Result<(), ConfigError> {
        let v6 = self.is_ipv6();
        let number = |v6: bool| if v6 { 6 } else { 4 };
        let addrs = self.vips.iter().map(|v| v.addr);
        let others = self.src_ip.iter().chain(&self.unicast_peers).copied();
        if let Some(addr) = addrs.chain(others).find(|a| a.is_ipv6() != v6) {
            return Err(ConfigError::FamilyMismatch {
                addr,
                got: number(addr.is_ipv6()),
                want: number(v6),
            });
        }
        if !v6 {
            return Ok(());
        }
        if self.version == Version::V2 {
            return Err(ConfigError::V2Ipv6);
        }
        if self.vips.len() > MAX_ADDRS_V6 {
            return Err(ConfigError::TooManyIpv6Vips {
                count: self.vips.len(),
                max: MAX_ADDRS_V6,
            });
        }
        if self.liveness.is_some() {
            return Err(ConfigError::LivenessIpv6);
        }
        let link_local = |a: &IpAddr| matches!(a, IpAddr::V6(a) if a.is_unicast_link_local());
        match self.unicast_peers.iter().find(|p| !link_local(p)) {
            Some(peer) if self.src_ip.is_none() => Err(ConfigError::Ipv6UnicastSource(*peer)),
            _ => Ok(()),
        }
    }
}

/// keepalived's `auth_pass`: the bytes sent, zero-padded, cut to 8 as keepalived does.
pub fn password(pass: &str) -> Result<[u8; 8], ConfigError> {
    if pass.is_empty() {
        return Err(ConfigError::EmptyPassword);
    }
    let mut out = [0; 8];
    let n = pass.len().min(8);
    out[..n].copy_from_slice(&pass.as_bytes()[..n]);
    Ok(out)
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
