//! `cargo xtask bench`: our agent and keepalived on the same topology in the same run, under the
//! same loads, measured from a client's point of view: how long a failover takes, how exactly
//! the backup keeps the RFC's timers, how often it takes over from a healthy master, what it
//! costs when idle. Writes target/bench/{results.md, failover.svg, *.csv}.
//!
//! Everything runs in network namespaces it creates (the end-to-end tests' topology plus two
//! flooder hosts), every load and capture is bounded in time, and all of it is removed at the
//! end, on error and on Ctrl-C.
mod loads;
mod measure;
mod pcap;
mod pinger;
mod procfs;
mod report;
mod routers;
mod scraper;

use std::{
    io::Write as _,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context as _, Result};
use clap::ValueEnum;
use vrrp_lab::{lab::Family, Topology};

use loads::{Load, Loads};
use measure::{Handover, Interval};
use pcap::Nanos;
use pinger::Pinger;
use procfs::{machine, rss_kb, sched, since};
use report::{FailoverRun, IdleRun, Results, SpuriousRun};
use routers::{Capture, PortSwitch, Router};
use scraper::Scraper;

pub const MASTER_PRIO: u8 = 200;
pub const BACKUP_PRIO: u8 = 100;
/// r2's IPv4 address, where the floods go whatever the family measured.
const R2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// Load before the first trigger: stress-ng and trafgen take a moment to reach full rate.
const WARMUP: Duration = Duration::from_secs(1);
/// A gap between the master's adverts this long means one missing or late by 6.8 ms at 10 ms
/// adverts: 2^24 ns, a bound of vrrp-agent's gap histogram, so client and backup count alike.
const GAP_LONG_NS: Nanos = 1 << 24;
/// What the client captures: all ARP, echo replies, adverts of the benchmarked VRID only (the
/// foreign-VRID floods stay in the kernel's filter); over IPv6 Neighbor Advertisements, echo
/// replies and the VRID's adverts (the VRID is the byte after the IPv6 header's first).
const FILTER_FAILOVER: &str =
    "arp or (icmp and icmp[icmptype] = icmp-echoreply) or (ip proto 112 and ip[21] = 51)";
const FILTER_ADVERTS: &str = "ip proto 112 and ip[21] = 51";
const FILTER_FAILOVER_V6: &str = "(icmp6 and (ip6[40] = 136 or ip6[40] = 129)) or \
                                  (ip6 proto 112 and ip6[41] = 51)";
const FILTER_ADVERTS_V6: &str = "ip6 proto 112 and ip6[41] = 51";
/// Idle vrrp-agent is measured a second time, scraped this often (a Prometheus scrape
/// interval is seconds; this is the worst case).
const SCRAPE_EVERY: Duration = Duration::from_millis(100);
pub const SCRAPED_MASTER: &str = "master, scraped 10/s";
pub const SCRAPED_BACKUP: &str = "backup, scraped 10/s";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Impl {
    /// vrrp-agent (this repository), its default receive path.
    Ours,
    /// vrrp-agent with the liveness channel on (--liveness-interval).
    Liveness,
    /// keepalived (Debian's), raw socket.
    Keepalived,
}

impl Impl {
    pub fn short(self) -> &'static str {
        match self {
            Impl::Ours => "vrrp-agent",
            Impl::Liveness => "vrrp-agent+liveness",
            Impl::Keepalived => "keepalived",
        }
    }

    /// vrrp-agent, with or without the liveness channel.
    pub fn is_agent(self) -> bool {
        self != Impl::Keepalived
    }
}

/// In the order one cycle runs them: the cut leaves r2 master, so failback can follow it; after
/// SIGTERM the master is started again for the kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Trigger {
    /// The master's cable is pulled (its bridge port goes down).
    Cut,
    /// The master's cable is back: it preempts the backup.
    Failback,
    /// The master gets SIGTERM: it resigns with a priority-0 advert.
    Term,
    /// The master's VRRP process is killed (kill -9): no goodbye, its host and link live on.
    Kill,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Cut => "link cut",
            Trigger::Failback => "failback",
            Trigger::Term => "SIGTERM",
            Trigger::Kill => "kill -9",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Trigger::Cut => "master link cut",
            Trigger::Failback => "master link back (failback)",
            Trigger::Term => "master SIGTERM (priority 0)",
            Trigger::Kill => "master process killed (kill -9)",
        }
    }
}

#[derive(clap::Args)]
pub struct Opts {
    /// Runs per (implementation, interval, load), each with every trigger at a random phase of
    /// the advert timer [default: 5, --quick: 1]
    #[arg(long)]
    runs: Option<usize>,
    /// The smallest matrix, a smoke run of a few minutes: 10 ms adverts, loads none and vrrp-max.
    #[arg(long)]
    quick: bool,
    /// Which implementations to measure [default: all three]
    #[arg(long = "impl", value_enum, value_delimiter = ',')]
    implementation: Vec<Impl>,
    /// The liveness channel's probe interval for vrrp-agent+liveness (its liveness_interval)
    #[arg(long, default_value = "500us")]
    liveness_interval: String,
    /// Silent intervals before vrrp-agent+liveness takes over (its liveness_multiplier)
    #[arg(long, default_value_t = 3)]
    liveness_multiplier: u8,
    /// Advert intervals, e.g. 10ms,100ms,1s [default: all three; 1 s only without load unless
    /// --load is given]
    #[arg(long, value_delimiter = ',')]
    interval: Vec<Interval>,
    /// Loads [default: all]
    #[arg(long, value_enum, value_delimiter = ',')]
    load: Vec<Load>,
    /// Triggers [default: all]
    #[arg(long, value_enum, value_delimiter = ',')]
    trigger: Vec<Trigger>,
    /// Seconds of healthy master (10 ms adverts) per window, implementation and load, counting
    /// the backup's wrong MASTER transitions; 0 skips [default: 60, --quick: 10]
    #[arg(long)]
    spurious_secs: Option<u64>,
    /// Spurious windows per implementation and load, taken in turns so a drift of the machine
    /// hits every one: rare events need repeated, long windows [default: 3, --quick: 1]
    #[arg(long)]
    spurious_windows: Option<usize>,
    /// vrrp-agent's receive path (its --xdp): auto, native, skb, tc or off [default: the agent's,
    /// auto]
    #[arg(long, value_parser = ["auto", "native", "skb", "tc", "off"])]
    xdp: Option<String>,
    /// Seconds of idle master and backup per implementation and interval for CPU and RSS; 0
    /// skips [default: 20, --quick: 5]
    #[arg(long)]
    idle_secs: Option<u64>,
    /// VRRP over IPv4 or IPv6 (VIPs fe80::1 and 2001:db8::100/64; the floods stay IPv4 traffic
    /// at r2; vrrp-agent+liveness is IPv4 only)
    #[arg(long, value_enum, default_value = "4")]
    family: IpFamily,
    /// Each router on a CPU of its own, as if on two hosts: r1's agent on CPU 1; r2's agent,
    /// every flood sender and (flood-rps) r2's receive work on CPU 0. Needs two CPUs or more;
    /// the floods then come from one CPU
    #[arg(long)]
    split_cpus: bool,
}

/// `--family`: the lab's [`Family`] by its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum IpFamily {
    #[value(name = "4")]
    V4,
    #[value(name = "6")]
    V6,
}

/// The matrix one run of the bench goes through.
struct Plan {
    impls: Vec<Impl>,
    /// (interval, load) of the failover cycles.
    cases: Vec<(Interval, Load)>,
    triggers: Vec<Trigger>,
    runs: usize,
    spurious: Vec<Load>,
    spurious_secs: u64,
    spurious_windows: usize,
    idle: Vec<Interval>,
    idle_secs: u64,
    /// Extra arguments for vrrp-agent.
    agent_args: Vec<String>,
    /// vrrp-agent+liveness's `vrrp_agent` settings.
    liveness: String,
    family: Family,
    split_cpus: bool,
}

impl Plan {
    fn new(o: &Opts) -> Result<Plan> {
        let family = match o.family {
            IpFamily::V4 => Family::V4,
            IpFamily::V6 => Family::V6,
        };
        let all = Impl::value_variants().iter().copied();
        let usable = all.filter(|&i| family == Family::V4 || i != Impl::Liveness);
        let impls = chosen(&o.implementation, usable.collect());
        if family == Family::V6 && impls.contains(&Impl::Liveness) {
            bail!("--impl liveness: the liveness channel runs over IPv4 only; leave it out of --family 6");
        }
        let ms = |ms| Interval { ms };
        let intervals = chosen(
            &o.interval,
            if o.quick {
                vec![ms(10)]
            } else {
                vec![ms(10), ms(100), ms(1000)]
            },
        );
        let loads = chosen(
            &o.load,
            if o.quick {
                vec![Load::None, Load::VrrpMax]
            } else {
                Load::value_variants().to_vec()
            },
        );
        let triggers = chosen(&o.trigger, Trigger::value_variants().to_vec());
        // 1 s adverts make every cycle ~20 s long: by default only without load.
        let cases: Vec<_> = intervals
            .iter()
            .flat_map(|&iv| loads.iter().map(move |&l| (iv, l)))
            .filter(|&(iv, l)| iv.ms < 1000 || l == Load::None || !o.load.is_empty())
            .collect();
        let runs = o.runs.unwrap_or(if o.quick { 1 } else { 5 });
        let spurious_secs = o.spurious_secs.unwrap_or(if o.quick { 10 } else { 60 });
        let spurious_windows = o.spurious_windows.unwrap_or(if o.quick { 1 } else { 3 });
        let idle_secs = o.idle_secs.unwrap_or(if o.quick { 5 } else { 20 });
        if runs == 0 && spurious_secs * spurious_windows as u64 == 0 && idle_secs == 0 {
            bail!("nothing to measure: --runs, --spurious-secs and --idle-secs are all 0");
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if o.split_cpus && cpus < 2 {
            bail!("--split-cpus: needs two CPUs, this machine has {cpus}");
        }
        Ok(Plan {
            impls,
            cases: if runs == 0 { Vec::new() } else { cases },
            triggers,
            runs,
            spurious: if spurious_secs * spurious_windows as u64 == 0 {
                Vec::new()
            } else {
                loads
            },
            spurious_secs,
            spurious_windows,
            idle: if idle_secs == 0 {
                Vec::new()
            } else {
                intervals
            },
            idle_secs,
            agent_args: o
                .xdp
                .iter()
                .flat_map(|m| ["--xdp".to_string(), m.clone()])
                .collect(),
            liveness: format!(
                "liveness_interval {}\n    liveness_multiplier {}",
                o.liveness_interval, o.liveness_multiplier
            ),
            family,
            split_cpus: o.split_cpus,
        })
    }

    /// Whether `imp` runs at `iv`: the liveness channel's detection does not depend on the advert
    /// interval, so it runs at the fastest chosen one only, beside VRRP's best.
    fn runs_at(&self, imp: Impl, iv: Interval) -> bool {
        let mut chosen = self
            .cases
            .iter()
            .map(|&(i, _)| i)
            .chain(self.idle.iter().copied());
        imp != Impl::Liveness || chosen.all(|i| i >= iv)
    }

    fn steps(&self) -> usize {
        let spurious = self.spurious.len() * self.spurious_windows * self.impls.len();
        let at = |iv| {
            self.impls
                .iter()
                .filter(|&&imp| self.runs_at(imp, iv))
                .count()
        };
        let idle: usize = self.idle.iter().map(|&iv| at(iv)).sum();
        let cycles: usize = self.cases.iter().map(|&(iv, _)| at(iv) * self.runs).sum();
        idle + cycles + spurious
    }

    /// A rough duration, to say up front how long to wait.
    fn minutes(&self) -> f64 {
        let at = |iv| {
            self.impls
                .iter()
                .filter(|&&imp| self.runs_at(imp, iv))
                .count() as f64
        };
        // vrrp-agent idles a second time, scraped.
        let idle_at = |iv| at(iv) + f64::from(u8::from(self.impls.contains(&Impl::Ours)));
        let cycle: f64 = self
            .cases
            .iter()
            .map(|&(iv, _)| at(iv) * (11.0 + 9.0 * iv.ms_f64() / 1000.0))
            .sum();
        let idle: f64 = self
            .idle
            .iter()
            .map(|&iv| idle_at(iv) * (self.idle_secs as f64 + 4.0))
            .sum();
        let spurious = (self.spurious.len() * self.spurious_windows * self.impls.len()) as f64
            * (self.spurious_secs as f64 + 5.0);
        (cycle * self.runs as f64 + idle + spurious) / 60.0
    }

    fn describe(&self) -> String {
        let list = |v: Vec<String>| v.join(", ");
        let mut by_iv: Vec<(Interval, Vec<&str>)> = Vec::new();
        for &(iv, l) in &self.cases {
            match by_iv.iter_mut().find(|(i, _)| *i == iv) {
                Some((_, ls)) => ls.push(l.name()),
                None => by_iv.push((iv, vec![l.name()])),
            }
        }
        let over = match self.family {
            Family::V4 => "",
            Family::V6 => "VRRP over IPv6: ",
        };
        let split = match self.split_cpus {
            true => "; each router on a CPU of its own (r1 on CPU 1; r2 and the floods on CPU 0)",
            false => "",
        };
        format!(
            "{over}{}; failover: {} run{} × triggers [{}] × {}; spurious: {} × {} s per load [{}] \
             (10 ms adverts); idle: {} s per interval [{}]{split}",
            list(
                self.impls
                    .iter()
                    .map(|&i| {
                        let args = self.agent_args.join(" ");
                        match i {
                            Impl::Liveness => format!(
                                "{} {args} ({})",
                                i.short(),
                                self.liveness.replace("\n   ", ",")
                            ),
                            Impl::Ours if !args.is_empty() => format!("{} {args}", i.short()),
                            _ => i.short().into(),
                        }
                    })
                    .collect()
            ),
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            list(self.triggers.iter().map(|t| t.name().into()).collect()),
            list(
                by_iv
                    .iter()
                    .map(|(iv, ls)| format!("{iv} adverts [{}]", ls.join(", ")))
                    .collect()
            ),
            self.spurious_windows,
            self.spurious_secs,
            list(self.spurious.iter().map(|l| l.name().into()).collect()),
            self.idle_secs,
            list(self.idle.iter().map(|i| i.to_string()).collect()),
        )
    }
}

/// The values given on the command line, else `default`; sorted, without repeats.
fn chosen<T: Ord + Clone>(given: &[T], default: Vec<T>) -> Vec<T> {
    let mut v = if given.is_empty() {
        default
    } else {
        given.to_vec()
    };
    v.sort();
    v.dedup();
    v
}

pub fn run(opts: Opts) -> Result<()> {
    if !crate::is_root() {
        bail!(
            "the bench creates network namespaces and needs root: run `sudo -E cargo xtask bench`"
        );
    }
    let plan = Plan::new(&opts)?;
    crate::setup::run()?;
    crate::status(crate::cargo(&["build", "--release", "-p", "vrrp-agent"]))?;
    let bin = crate::root_dir().join("target/release/vrrp-agent");
    let out = crate::root_dir().join("target/bench");
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    catch_signals();
    println!(
        "\nbench: {}\nbench: {} steps, about {:.1} min; Ctrl-C stops it and still writes what \
         was measured.\n",
        plan.describe(),
        plan.steps(),
        plan.minutes()
    );
    let busy = loads::busy_pct(Duration::from_secs(2))?;
    if busy > 20.0 {
        eprintln!(
            "bench: warning: the CPUs are {busy:.0} % busy before the start; whatever runs \
             beside the bench blurs its figures"
        );
    }
    let mut results = Results::default();
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let mut saver = Saver {
        out: out.clone(),
        started: Instant::now(),
        header: report::Header {
            machine: machine(),
            date: date(),
            command: format!("cargo xtask {command}"),
            matrix: plan.describe(),
            minutes: 0.0,
            busy_before: busy,
            steps: (0, plan.steps()),
        },
    };
    let mut save = |results: &Results, done: usize| saver.save(results, done).map(drop);
    // The topology (and every process in it) is gone before the last report is written.
    let outcome = Bench::new(&bin, &plan).and_then(|mut b| b.run(&plan, &mut results, &mut save));
    let md = saver.save(&results, saver.header.steps.0)?;
    println!("\n{md}");
    println!(
        "bench: wrote {}/{{results.md, failover.svg, runs.csv, spurious.csv, idle.csv}}",
        out.display()
    );
    outcome
}

/// Writes the report of what was measured so far.
struct Saver {
    out: PathBuf,
    started: Instant,
    header: report::Header,
}

impl Saver {
    /// results.md (returned), the CSVs and the plot, all from `results` after `done` steps.
    fn save(&mut self, results: &Results, done: usize) -> Result<String> {
        self.header.minutes = self.started.elapsed().as_secs_f64() / 60.0;
        self.header.steps.0 = done;
        let out = &self.out;
        let md = report::markdown(&self.header, results);
        write(&out.join("results.md"), &md)?;
        write(&out.join("runs.csv"), &report::failover_csv(results))?;
        write(&out.join("spurious.csv"), &report::spurious_csv(results))?;
        write(&out.join("idle.csv"), &report::idle_csv(results))?;
        let svg = out.join("failover.svg");
        if results.failover.is_empty() {
            // Not an earlier run's plot next to this run's tables.
            let _ = std::fs::remove_file(&svg);
        } else {
            write(&svg, &report::svg(results))?;
        }
        Ok(md)
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| path.display().to_string())
}

fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C (or SIGTERM/SIGHUP) ends the bench between two steps of a wait, so the topology is
/// dropped and its namespaces and processes removed; killed outright it would leave them.
fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps, waking up every 20 ms to notice an interruption.
pub fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        interrupted()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

fn now_ns() -> Nanos {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as Nanos
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    vrrp_lab::frames::parse_mac(s).with_context(|| format!("not a MAC address: {s:?}"))
}

/// `role`'s link-local address on eth0, once done with duplicate address detection (its adverts'
/// source; keepalived cannot send from a tentative one).
fn link_local(topo: &Topology, role: &str) -> Result<IpAddr> {
    let ns = topo.ns(role);
    let mut found = None;
    vrrp_lab::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let out = ns.run(
            "ip",
            ["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        found = (!text.contains("tentative"))
            .then(|| {
                text.split_whitespace()
                    .find_map(|w| w.strip_suffix("/64")?.parse().ok())
            })
            .flatten();
        found.is_some()
    });
    found.with_context(|| format!("{role} has no usable link-local address"))
}

/// xorshift64: enough to spread trigger phases, no dependency.
struct Rng(u64);

impl Rng {
    /// Uniform in [0, d).
    fn below(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        d.mul_f64((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// Waits a random phase of the advert timer, notes the time, fires.
fn trigger(rng: &mut Rng, iv: Interval, fire: impl FnOnce() -> Result<()>) -> Result<Nanos> {
    sleep(rng.below(iv.duration()))?;
    let t = now_ns();
    fire()?;
    Ok(t)
}

/// How long to wait for a takeover before calling it missed.
fn takeover_timeout(iv: Interval) -> Duration {
    Duration::from_secs_f64((6.0 * iv.master_down_ms(BACKUP_PRIO) / 1e3).max(3.0))
}

/// After a takeover: time for the first replies and adverts to show, and for the loser to settle.
fn post(iv: Interval) -> Duration {
    Duration::from_millis(300) + 2 * iv.duration()
}

struct Bench {
    // Dropped first: its `ip` lives in the topology's bridge namespace.
    switch: PortSwitch,
    loads: Loads,
    topo: Topology,
    bin: PathBuf,
    agent_args: Vec<String>,
    liveness: String,
    split_cpus: bool,
    macs: [[u8; 6]; 2],
    family: Family,
    /// r1's and r2's advert sources (IPv6: their link-local addresses).
    sources: [IpAddr; 2],
    rng: Rng,
    step: usize,
    captures: usize,
}

impl Bench {
    fn new(bin: &Path, plan: &Plan) -> Result<Bench> {
        let mut topo = Topology::new("bench")?;
        for (role, addr) in loads::FLOODERS {
            topo.add_host(role, &format!("{}/24", Ipv4Addr::from(addr)))?;
        }
        let mac = |role: &str| topo.ns(role).mac("eth0").context("router MAC");
        let r2_mac = mac("r2")?;
        let macs = [parse_mac(&mac("r1")?)?, parse_mac(&r2_mac)?];
        // A silent backup's MAC would age out of the bridge, and the flood aimed at it would
        // then reach every port.
        let out = topo.ns(vrrp_lab::BRIDGE).run(
            "bridge",
            ["fdb", "replace", &r2_mac, "dev", "p-r2", "master", "static"],
        );
        if !out.status.success() {
            bail!("bridge fdb: {}", String::from_utf8_lossy(&out.stderr));
        }
        let loads = Loads::new(&topo, (macs[1], R2), plan.split_cpus)?;
        let switch = PortSwitch::new(topo.ns(vrrp_lab::BRIDGE).name())?;
        let sources = match plan.family {
            Family::V4 => [vrrp_lab::R1_ADDR.parse()?, vrrp_lab::R2_ADDR.parse()?],
            Family::V6 => [link_local(&topo, "r1")?, link_local(&topo, "r2")?],
        };
        Ok(Bench {
            switch,
            loads,
            topo,
            bin: bin.to_path_buf(),
            agent_args: plan.agent_args.clone(),
            liveness: plan.liveness.clone(),
            split_cpus: plan.split_cpus,
            macs,
            family: plan.family,
            sources,
            rng: Rng(now_ns() as u64 | 1),
            step: 0,
            captures: 0,
        })
    }

    /// Runs the plan into `results`; `save` after every step, so a run killed half way (a
    /// session's end, an SSH drop) leaves its report of what was measured.
    fn run(
        &mut self,
        plan: &Plan,
        results: &mut Results,
        save: &mut dyn FnMut(&Results, usize) -> Result<()>,
    ) -> Result<()> {
        let total = plan.steps();
        for &iv in &plan.idle {
            for &imp in plan.impls.iter().filter(|&&imp| plan.runs_at(imp, iv)) {
                self.progress(total);
                let mut runs = self.idle(imp, iv, plan.idle_secs, false)?;
                if imp == Impl::Ours {
                    runs.extend(self.idle(imp, iv, plan.idle_secs, true)?);
                }
                for r in &runs {
                    println!(
                        "  {} as {}: CPU {:.2} %, {:.0} wake-ups/s, RSS {:.1} MB",
                        imp.short(),
                        r.role,
                        r.cpu_pct,
                        r.wakeups_per_s,
                        r.rss_kb as f64 / 1024.0
                    );
                }
                results.idle.extend(runs);
                save(results, self.step)?;
            }
        }
        for &(iv, load) in &plan.cases {
            for run in 0..plan.runs {
                // The implementations back to back, so a drift of the machine hits all.
                for &imp in plan.impls.iter().filter(|&&imp| plan.runs_at(imp, iv)) {
                    self.progress(total);
                    let runs = self.cycle(imp, iv, load, run, &plan.triggers)?;
                    results.failover.extend(runs);
                    save(results, self.step)?;
                }
            }
        }
        for window in 0..plan.spurious_windows {
            for &load in &plan.spurious {
                for &imp in &plan.impls {
                    self.progress(total);
                    let run = self.spurious(imp, load, plan.spurious_secs, window)?;
                    results.spurious.push(run);
                    save(results, self.step)?;
                }
            }
        }
        Ok(())
    }

    fn progress(&mut self, total: usize) {
        self.step += 1;
        print!("[{:>3}/{total}] ", self.step);
    }

    fn vip(&self) -> IpAddr {
        self.family.vip().parse().expect("the lab's VIP")
    }

    fn has_vip(&self, role: &str) -> bool {
        let vip = self.vip();
        Command::new("ip")
            .args([
                "-n",
                self.topo.ns(role).name(),
                "-o",
                "addr",
                "show",
                "dev",
                "eth0",
            ])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {vip}/")))
    }

    /// Waits until `holder` alone has the VIP; false after `timeout`.
    fn wait_holder(&self, holder: &str, timeout: Duration) -> Result<bool> {
        let other = if holder == "r1" { "r2" } else { "r1" };
        // Each look is an `ip` process: often enough to move on promptly, rarely enough not
        // to load the CPUs being measured.
        let ok = vrrp_lab::wait_until(timeout, Duration::from_millis(50), || {
            INTERRUPTED.load(Ordering::Relaxed) || (self.has_vip(holder) && !self.has_vip(other))
        });
        interrupted()?;
        Ok(ok)
    }

    /// Starts both routers and waits until r1 is master and r2 has heard it a few times.
    fn elect(&mut self, imp: Impl, iv: Interval) -> Result<(Router, Router)> {
        self.topo.restore_link("r1");
        // What a killed router left: its VIPs (IPv6: the link-local one too).
        let vips: &[&str] = match self.family {
            Family::V4 => &["198.51.100.100/24"],
            Family::V6 => &["2001:db8::100/64", "fe80::1/128"],
        };
        for role in ["r1", "r2"] {
            if self.has_vip(role) {
                let ns = self.topo.ns(role);
                for vip in vips {
                    ns.run("ip", ["addr", "del", vip, "dev", "eth0"]);
                }
            }
        }
        self.topo
            .ns("client")
            .run_ok("ip", ["neigh", "flush", "all"]);
        let r1 = self.start(imp, "r1", MASTER_PRIO, iv)?;
        let r2 = self.start(imp, "r2", BACKUP_PRIO, iv)?;
        let timeout = Duration::from_secs(10) + 3 * iv.duration();
        if !self.wait_holder("r1", timeout)? {
            bail!(
                "{}: r1 did not become the only master within {timeout:?}\n--- r1:\n{}\n--- r2:\n{}",
                imp.short(),
                r1.log(),
                r2.log()
            );
        }
        sleep(Duration::from_millis(500) + 3 * iv.duration())?;
        Ok((r1, r2))
    }

    fn start(&self, imp: Impl, role: &str, prio: u8, iv: Interval) -> Result<Router> {
        let liveness = (imp == Impl::Liveness).then_some(self.liveness.as_str());
        let args = &self.agent_args;
        let family = self.family;
        let router = Router::start(
            imp, &self.topo, &self.bin, args, liveness, role, prio, iv, family,
        )?;
        if self.split_cpus {
            // A host each: r1 on CPU 1, r2 with the floods on CPU 0, whatever its role, and
            // however often it is started (failback starts r1 again).
            let cpu = if role == "r1" { "1" } else { "0" };
            for pid in router.pids() {
                let pid = pid.to_string();
                let out = Command::new("taskset")
                    .args(["--all-tasks", "--cpu-list", "--pid", cpu, &pid])
                    .output()?;
                if !out.status.success() {
                    bail!("taskset {pid}: {}", String::from_utf8_lossy(&out.stderr));
                }
            }
        }
        Ok(router)
    }

    /// Waits until `role` has the VIP, whoever else does; false after `timeout`.
    fn wait_vip(&self, role: &str, timeout: Duration) -> Result<bool> {
        let ok = vrrp_lab::wait_until(timeout, Duration::from_millis(50), || {
            INTERRUPTED.load(Ordering::Relaxed) || self.has_vip(role)
        });
        interrupted()?;
        Ok(ok)
    }

    fn capture(&mut self, filter: &str, bound: Duration) -> Result<Capture> {
        self.captures += 1;
        Capture::start(&self.topo, filter, bound, self.captures)
    }

    /// One election under `load`, then each trigger in turn; returns a run per wanted trigger.
    fn cycle(
        &mut self,
        imp: Impl,
        iv: Interval,
        load: Load,
        run: usize,
        want: &[Trigger],
    ) -> Result<Vec<FailoverRun>> {
        print!("{iv:>6} {:<10} {:<10} run {run}:", load.name(), imp.short());
        let _ = std::io::stdout().flush();
        let (mut r1, r2) = self.elect(imp, iv)?;
        let (hold, post) = (takeover_timeout(iv), post(iv));
        // Every wait below, added up, with room to spare: no load outlives the cycle by much.
        let bound = WARMUP + 4 * (2 * iv.duration() + hold + 2 * post) + Duration::from_secs(20);
        let filter = match self.family {
            Family::V4 => FILTER_FAILOVER,
            Family::V6 => FILTER_FAILOVER_V6,
        };
        let cap = self.capture(filter, bound)?;
        let ping = Pinger::start(
            self.topo.ns("client").name(),
            self.vip(),
            Duration::from_millis(1),
            bound,
        )?;
        let mut running = self.loads.start(&self.topo, load, bound)?;
        sleep(WARMUP)?;
        // (trigger, time, new master) in the order fired.
        let mut marks: Vec<(Trigger, Nanos, &str)> = Vec::new();
        let mut missed = None;
        let needs_cut = want.contains(&Trigger::Cut) || want.contains(&Trigger::Failback);
        if needs_cut {
            let t = trigger(&mut self.rng, iv, || self.switch.set("p-r1", false))?;
            marks.push((Trigger::Cut, t, "r2"));
            if self.wait_holder("r2", hold)? {
                sleep(post)?;
                running.check()?;
                let t = trigger(&mut self.rng, iv, || self.switch.set("p-r1", true))?;
                marks.push((Trigger::Failback, t, "r1"));
                if self.wait_holder("r1", hold)? {
                    sleep(post)?;
                } else {
                    missed = Some(Trigger::Failback);
                }
            } else {
                missed = Some(Trigger::Cut);
            }
        }
        if missed.is_none() && want.contains(&Trigger::Term) {
            // r2 must have heard the returned master for a while before it resigns.
            sleep(post + 2 * iv.duration())?;
            running.check()?;
            let t = trigger(&mut self.rng, iv, || r1.term())?;
            marks.push((Trigger::Term, t, "r2"));
            if self.wait_holder("r2", hold)? {
                sleep(post)?;
            } else {
                missed = Some(Trigger::Term);
            }
        }
        // The new master's account of each trigger: r1's (its first run's) on failback.
        let mut r1_log = String::new();
        if missed.is_none() && want.contains(&Trigger::Kill) {
            if marks.iter().any(|m| m.0 == Trigger::Term) {
                // r1 resigned: started again, it preempts r2.
                r1_log = r1.log();
                r1 = self.start(imp, "r1", MASTER_PRIO, iv)?;
                if !self.wait_holder("r1", Duration::from_secs(10) + hold)? {
                    missed = Some(Trigger::Kill);
                }
            }
            sleep(post + 2 * iv.duration())?;
            running.check()?;
            if missed.is_none() {
                let t = trigger(&mut self.rng, iv, || r1.kill9())?;
                marks.push((Trigger::Kill, t, "r2"));
                // The killed master keeps its VIP (nothing removes it): r2 holding it counts.
                if self.wait_vip("r2", hold)? {
                    sleep(post)?;
                } else {
                    missed = Some(Trigger::Kill);
                }
            }
        }
        if r1_log.is_empty() {
            r1_log = r1.log();
        }
        running.check()?;
        let load_stats = running.stop()?;
        drop(ping);
        let frames = cap.finish()?;
        let r2_log = r2.log();
        let logs = format!("--- r1:\n{r1_log}\n--- r2:\n{r2_log}");
        drop((r1, r2));
        self.topo.restore_link("r1");
        let mut runs = Vec::new();
        for (i, &(trigger, at, new)) in marks.iter().enumerate() {
            let until = marks.get(i + 1).map_or(Nanos::MAX, |m| m.1);
            let [r1, r2] = self.sources;
            let (new_ip, new_mac, new_prio, old_ip) = if new == "r2" {
                (r2, self.macs[1], BACKUP_PRIO, r1)
            } else {
                (r1, self.macs[0], MASTER_PRIO, r2)
            };
            let h = Handover {
                vip: self.vip(),
                new_ip,
                new_mac,
                new_prio,
                old_ip,
                precision: trigger != Trigger::Failback,
            };
            let mut fig = measure::failover(&frames, at, until, &h, iv);
            if imp.is_agent() {
                let log = if new == "r1" { &r1_log } else { &r2_log };
                fig.detect_ms = measure::decision(log, at, until);
            }
            let opt = |v: Option<f64>, f: fn(f64) -> String| v.map_or("—".into(), f);
            print!(
                " | {} GARP {} reply {}",
                trigger.name(),
                opt(fig.garp_ms, |v| format!("{v:.1}")),
                opt(fig.reply_ms, |v| format!("{v:.1}")),
            );
            if let Some(d) = fig.detect_ms {
                print!(" detect {d:.2}");
            }
            if let Some(p) = fig.precision_ms {
                print!(" prec {p:+.2}");
            }
            if want.contains(&trigger) {
                runs.push(FailoverRun {
                    imp,
                    interval: iv,
                    trigger,
                    load,
                    run,
                    fig,
                    load_stats,
                });
            }
        }
        println!(
            " | load: {:.0} kpps sent, CPU {:.0} %",
            load_stats.sent_kpps, load_stats.cpu_busy_pct
        );
        if let Some(t) = missed {
            println!(
                "  no takeover within {hold:?} after {}; the rest of this cycle is skipped\n{}",
                t.name(),
                tail(&logs, 30)
            );
        }
        Ok(runs)
    }

    /// A healthy master for `secs` under `load`: how often the backup takes over wrongly.
    fn spurious(&mut self, imp: Impl, load: Load, secs: u64, window: usize) -> Result<SpuriousRun> {
        let iv = Interval { ms: 10 };
        print!(
            "spurious {:<10} {:<10} window {} {secs} s:",
            load.name(),
            imp.short(),
            window + 1
        );
        let _ = std::io::stdout().flush();
        let (r1, r2) = self.elect(imp, iv)?;
        let length = Duration::from_secs(secs);
        let bound = WARMUP + length + Duration::from_secs(10);
        let filter = match self.family {
            Family::V4 => FILTER_ADVERTS,
            Family::V6 => FILTER_ADVERTS_V6,
        };
        let cap = self.capture(filter, bound)?;
        let mut running = self.loads.start(&self.topo, load, bound)?;
        sleep(WARMUP)?;
        let ours = matches!(imp, Impl::Ours | Impl::Liveness);
        let counts_before = ours.then(|| self.counts()).transpose()?;
        let (from, t0) = (now_ns(), Instant::now());
        sleep(length)?;
        let to = now_ns();
        let secs = t0.elapsed().as_secs_f64();
        let counts = ours.then(|| self.counts()).transpose()?;
        running.check()?;
        let load_stats = running.stop()?;
        let frames = cap.finish()?;
        let backup_log = r2.log();
        drop((r1, r2));
        let [r1, r2] = self.sources;
        let down_ms = iv.master_down_ms(BACKUP_PRIO);
        let wrong = measure::masterships(&frames, r2, from, to, down_ms);
        let count = wrong.len();
        let run = SpuriousRun {
            imp,
            load,
            window,
            secs,
            count,
            load_stats,
        };
        println!(
            " {count} wrong MASTER transitions ({:.1}/min) | load: {:.0} kpps sent, CPU {:.0} %",
            run.per_minute(),
            load_stats.sent_kpps,
            load_stats.cpu_busy_pct
        );
        // Where the master's adverts went missing: its own count of those it sent, the client
        // past the bridge, the backup's XDP program at the end of the way.
        let seen = measure::adverts(&frames, r1, from, to);
        let gaps: Vec<Nanos> = seen.windows(2).map(|w| w[1] - w[0]).collect();
        let long_at_client = gaps.iter().filter(|&&g| g >= GAP_LONG_NS).count();
        let longest = gaps.iter().max().copied().unwrap_or(0);
        let counts = counts_before.zip(counts);
        let sent = match counts {
            Some(([r1_0, _], [r1, _])) => format!(
                "{} sent ({} half an interval late or more), ",
                r1.adverts_sent - r1_0.adverts_sent,
                r1.adverts_late - r1_0.adverts_late
            ),
            None => String::new(),
        };
        print!(
            "    master's adverts: {sent}{} at the client; gaps >= {:.1} ms: {long_at_client} at the client (longest {:.1} ms)",
            seen.len(),
            GAP_LONG_NS as f64 / 1e6,
            longest as f64 / 1e6
        );
        match counts {
            Some(([_, b], [_, a])) => println!(
                ", {} at the backup's XDP\n    backup: Master_Down held for an advert in the backlog {} times; liveness silences not trusted {}",
                (a.long_gaps.zip(b.long_gaps)).map_or("?".into(), |(a, b)| (a - b).to_string()),
                a.held - b.held,
                a.distrusted - b.distrusted
            ),
            None => println!(),
        }
        for t in wrong {
            let before = measure::adverts(&frames, r1, t - 2 * (down_ms * 1e6) as Nanos, t);
            let ms: Vec<String> = (before.iter())
                .map(|a| format!("{:.1}", (a - t) as f64 / 1e6))
                .collect();
            println!(
                "    the master's adverts at the client before the backup's first (ms): {}",
                ms.join(" ")
            );
        }
        // The backup's own account of each one (vrrp-agent says how long the master was silent).
        if count > 0 {
            for line in backup_log.lines().filter(|l| l.contains("-> MASTER")) {
                println!("    backup: {}", line.trim());
            }
        }
        Ok(run)
    }

    /// CPU, wake-ups and RSS of an idle master (r1) and backup (r2); `scraped`: with
    /// `--metrics-listen`, each scraped every [`SCRAPE_EVERY`].
    fn idle(&mut self, imp: Impl, iv: Interval, secs: u64, scraped: bool) -> Result<Vec<IdleRun>> {
        let what = if scraped { ", scraped" } else { "" };
        println!("idle {iv:>6} {:<10} {secs} s{what}", imp.short());
        let plain = self.agent_args.clone();
        if scraped {
            let listen = ["--metrics-listen", "127.0.0.1:9650"].map(String::from);
            self.agent_args.extend(listen);
        }
        let elected = self.elect(imp, iv);
        self.agent_args = plain;
        let (r1, r2) = elected?;
        let roles = match scraped {
            false => ["master", "backup"],
            true => [SCRAPED_MASTER, SCRAPED_BACKUP],
        };
        let routers = [(roles[0], &r1), (roles[1], &r2)];
        let bound = Duration::from_secs(secs + 10);
        let scrapers: Vec<Scraper> = match scraped {
            false => Vec::new(),
            true => (["r1", "r2"].iter())
                .map(|r| {
                    let addr = ([127, 0, 0, 1], 9650).into();
                    Scraper::start(self.topo.ns(r).name(), addr, SCRAPE_EVERY, bound)
                })
                .collect(),
        };
        let before: Vec<_> = routers
            .iter()
            .map(|(_, r)| sched(&r.pids()))
            .collect::<Result<_>>()?;
        let (ports0, softirq0) = (self.sent(), softirq_jiffies());
        let t0 = Instant::now();
        sleep(Duration::from_secs(secs))?;
        let elapsed = t0.elapsed().as_secs_f64();
        let (ports1, softirq1) = (self.sent(), softirq_jiffies());
        // USER_HZ is 100: a jiffy is 1 % of one CPU for a second.
        let softirq_pct = softirq1?.saturating_sub(softirq0?) as f64 / elapsed;
        let (ports0, ports1) = (ports0?, ports1?);
        let mut runs = Vec::new();
        for (i, ((role, r), before)) in routers.into_iter().zip(before).enumerate() {
            let (ns, slices) = since(&before, &sched(&r.pids())?);
            let (frames, bytes) = (
                ports1[i].0.saturating_sub(ports0[i].0),
                ports1[i].1.saturating_sub(ports0[i].1),
            );
            runs.push(IdleRun {
                imp,
                interval: iv,
                role,
                cpu_pct: 100.0 * ns as f64 / 1e9 / elapsed,
                wakeups_per_s: slices as f64 / elapsed,
                rss_kb: rss_kb(&r.pids())?,
                sent_pps: frames as f64 / elapsed,
                sent_kbps: bytes as f64 * 8.0 / 1e3 / elapsed,
                softirq_pct,
            });
        }
        let expected = (elapsed / SCRAPE_EVERY.as_secs_f64()) as u64 / 2;
        for s in scrapers {
            let answered = s.stop()?;
            if answered < expected {
                bail!("only {answered} scrapes answered in {elapsed:.0} s");
            }
        }
        if !self.has_vip("r1") || self.has_vip("r2") {
            bail!("{}: the master changed while idle", imp.short());
        }
        Ok(runs)
    }
}

/// A vrrp-agent's counters so far, read in a spurious window.
#[derive(Clone, Copy)]
struct Counts {
    adverts_sent: u64,
    adverts_late: u64,
    /// Master_Down deadlines held while the master's advert waited in the backlog.
    held: u64,
    /// Liveness silences not trusted.
    distrusted: u64,
    /// Gaps of at least [`GAP_LONG_NS`] between the master's adverts, as its XDP program saw
    /// them; `None` without the kernel's record.
    long_gaps: Option<u64>,
}

impl Bench {
    /// r1's and r2's counters so far.
    fn counts(&self) -> Result<[Counts; 2]> {
        let read = |r: &str| -> Result<Counts> {
            let out = self.topo.ns(r).run(
                self.bin.to_str().context("UTF-8 path")?,
                ["status", "--json"],
            );
            let status: serde_json::Value = serde_json::from_slice(&out.stdout)
                .with_context(|| format!("vrrp-agent status --json at {r}"))?;
            let i = &status["instances"][0];
            let count = |name: &str| {
                let c = &i["counters"][name];
                c.as_u64().with_context(|| format!("{r}'s {name}"))
            };
            // Buckets are per range; a bucket counts as long when its lower bound is.
            let long_gaps = match i["kernel"]["advert_gaps"].as_array() {
                Some(buckets) => {
                    let mut lower = 0.0;
                    let mut long = 0;
                    for b in buckets {
                        if lower >= GAP_LONG_NS as f64 / 1e9 {
                            long += b["count"].as_u64().context("a gap bucket's count")?;
                        }
                        lower = b["le_secs"].as_f64().unwrap_or(f64::INFINITY);
                    }
                    Some(long)
                }
                None => None,
            };
            Ok(Counts {
                adverts_sent: count("adverts_sent")?,
                adverts_late: count("adverts_late")?,
                held: count("master_down_held")?,
                distrusted: count("liveness_distrusted")?,
                long_gaps,
            })
        };
        Ok([read("r1")?, read("r2")?])
    }

    /// (frames, bytes) r1 and r2 sent so far: their bridge ports' receive counters.
    fn sent(&self) -> Result<[(u64, u64); 2]> {
        let files = ["r1", "r2"].map(|r| {
            [
                format!("p-{r}/statistics/rx_packets"),
                format!("p-{r}/statistics/rx_bytes"),
            ]
        });
        let n = loads::port_counters(&self.topo, &files.concat())?;
        let [p1, b1, p2, b2] = n[..] else {
            bail!("port counters: {n:?}");
        };
        Ok([(p1, b1), (p2, b2)])
    }
}

/// The machine's softirq time so far, in jiffies (/proc/stat's 7th CPU column).
fn softirq_jiffies() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("/proc/stat")?;
    let v = line
        .split_whitespace()
        .nth(7)
        .context("/proc/stat softirq")?;
    Ok(v.parse()?)
}

fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: Opts,
    }

    fn plan(args: &[&str]) -> Plan {
        let cli =
            Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).unwrap();
        Plan::new(&cli.opts).unwrap()
    }

    #[test]
    fn default_matrix_keeps_1s_adverts_to_no_load() {
        let p = plan(&[]);
        assert_eq!(p.impls, [Impl::Ours, Impl::Liveness, Impl::Keepalived]);
        assert_eq!(p.cases.len(), 7 + 7 + 1);
        assert!(p.cases.contains(&(Interval { ms: 1000 }, Load::None)));
        assert!(!p.cases.contains(&(Interval { ms: 1000 }, Load::Cpu)));
        assert_eq!((p.runs, p.spurious.len(), p.idle.len()), (5, 7, 3));
        assert_eq!((p.spurious_secs, p.spurious_windows), (60, 3));
        assert!(p.minutes() < 120.0, "{}", p.minutes());
        // The liveness channel beside VRRP's fastest interval only.
        let ms = |ms| Interval { ms };
        assert!(p.runs_at(Impl::Liveness, ms(10)) && !p.runs_at(Impl::Liveness, ms(100)));
        assert!(p.runs_at(Impl::Ours, ms(1000)));
        assert_eq!(p.steps(), 3 * (1 + 7 * 5 + 7 * 3) + 2 * (2 + 8 * 5));
    }

    #[test]
    fn quick_and_filters() {
        let p = plan(&["--quick"]);
        assert_eq!(
            p.cases,
            [
                (Interval { ms: 10 }, Load::None),
                (Interval { ms: 10 }, Load::VrrpMax)
            ]
        );
        assert_eq!(p.runs, 1);
        assert!(p.minutes() < 4.0, "{}", p.minutes());
        let p = plan(&[
            "--impl",
            "ours",
            "--interval",
            "1s",
            "--load",
            "cpu,vrrp-25k",
            "--trigger",
            "term",
            "--spurious-secs",
            "0",
        ]);
        assert_eq!(p.impls, [Impl::Ours]);
        assert_eq!(
            p.cases,
            [
                (Interval { ms: 1000 }, Load::Cpu),
                (Interval { ms: 1000 }, Load::Vrrp25k)
            ]
        );
        assert_eq!(p.triggers, [Trigger::Term]);
        assert!(p.spurious.is_empty());
    }

    /// The split is said in the report's matrix line, and only when chosen.
    #[test]
    fn split_cpus_is_said_in_the_matrix() {
        let split = "each router on a CPU of its own";
        assert!(plan(&["--quick", "--split-cpus"])
            .describe()
            .contains(split));
        assert!(!plan(&["--quick"]).describe().contains(split));
    }

    #[test]
    fn parses_macs() {
        assert_eq!(
            parse_mac("02:00:0a:FF:00:01").unwrap(),
            [2, 0, 10, 255, 0, 1]
        );
        assert!(parse_mac("02:00").is_err());
    }
}
