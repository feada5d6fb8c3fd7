//! The loads. Each one is bounded in time (`timeout`, stress-ng's `--timeout`) and trafgen also in
//! packets (`--num`); all of them run inside the bench's namespaces (the flooders are hosts of
//! their own on the bridge), never on this host's interfaces. What they achieved is read from
//! counters: the bridge ports' packet counts, the kernel's backlog drops, /proc/stat.
use std::{net::Ipv4Addr, path::PathBuf, time::Duration, time::Instant};

use anyhow::{bail, Context as _, Result};
use vrrp_lab::{
    frames::{advert_frame, trafgen_config, udp_frame},
    Proc, Topology,
};

use super::measure::VRID;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Load {
    /// Nothing but the routers and the client's pings.
    None,
    /// Every CPU saturated by stress-ng at nice -10, a higher priority than the agents'.
    Cpu,
    /// Small UDP frames to the backup's MAC from two senders, as fast as they go.
    Flood,
    /// The same flood with the backup's receive processing pinned to one CPU (rps_cpus), so the
    /// kernel's backlog queue overflows.
    FloodRps,
    /// Valid VRRPv3 adverts for 50 other VRIDs on the segment (a shared L2 with many groups),
    /// one sender at ~25 kpps.
    #[value(name = "vrrp-25k")]
    Vrrp25k,
    /// The same adverts from two senders as fast as they go (an attack).
    VrrpMax,
    /// cpu and flood together.
    CpuFlood,
}

impl Load {
    pub fn name(self) -> &'static str {
        match self {
            Load::None => "none",
            Load::Cpu => "cpu",
            Load::Flood => "flood",
            Load::FloodRps => "flood-rps",
            Load::Vrrp25k => "vrrp-25k",
            Load::VrrpMax => "vrrp-max",
            Load::CpuFlood => "cpu-flood",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Load::None => "no load",
            Load::Cpu => "all CPUs busy with stress-ng at nice -10",
            Load::Flood => "UDP flood to the backup's MAC, two senders",
            Load::FloodRps => "the UDP flood, the backup's rps_cpus pinned to CPU 0",
            Load::Vrrp25k => "VRRP adverts for 50 other VRIDs, ~25 kpps",
            Load::VrrpMax => "VRRP adverts for 50 other VRIDs, unbounded, two senders",
            Load::CpuFlood => "cpu and flood together",
        }
    }

    fn cpu(self) -> bool {
        matches!(self, Load::Cpu | Load::CpuFlood)
    }
}

/// The flooder hosts: (role, address on the segment).
pub const FLOODERS: [(&str, [u8; 4]); 2] = [("f1", [198, 51, 100, 21]), ("f2", [198, 51, 100, 22])];
/// trafgen's gap for ~25 kpps from one sender: the sleep overshoots a 40 µs gap by about as
/// much again here, so the rate actually reached is reported, not assumed.
const SMOOTH_GAP: &str = "15us";
/// An upper bound of any sender's rate, for trafgen's `--num`.
const MAX_PPS: u64 = 2_000_000;

/// The trafgen configurations, written once per topology.
pub struct Loads {
    unicast: Vec<PathBuf>,
    vrrp: Vec<PathBuf>,
    vrrp_smooth: PathBuf,
    cpus: usize,
    /// Every sender on CPU 0 (`--split-cpus`).
    split: bool,
}

impl Loads {
    /// Writes the frames: unicast UDP to `target` (MAC, address), and foreign-VRID adverts;
    /// `split`: every sender on CPU 0.
    pub fn new(topo: &Topology, target: ([u8; 6], Ipv4Addr), split: bool) -> Result<Loads> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut loads = Loads {
            unicast: Vec::new(),
            vrrp: Vec::new(),
            vrrp_smooth: topo.workdir().join("trafgen-vrrp-smooth.cfg"),
            cpus,
            split,
        };
        for (i, (role, addr)) in FLOODERS.into_iter().enumerate() {
            let mac = super::parse_mac(&topo.ns(role).mac("eth0").context("flooder MAC")?)?;
            // One sender per CPU: trafgen runs a packet only on the CPU named in the config.
            let cpu = Some(if split { 0 } else { i % cpus });
            let udp = [udp_frame(target, (mac, addr.into()))];
            let adverts: Vec<_> = (1..=50)
                .map(|v| foreign_advert((mac, addr.into()), v))
                .collect();
            let path = |kind: &str| topo.workdir().join(format!("trafgen-{kind}-{role}.cfg"));
            loads.unicast.push(write(path("udp"), &udp, cpu)?);
            loads.vrrp.push(write(path("vrrp"), &adverts, cpu)?);
            if i == 0 {
                write(loads.vrrp_smooth.clone(), &adverts, None)?;
            }
        }
        Ok(loads)
    }

    /// Starts `load` for at most `bound`.
    pub fn start<'t>(
        &self,
        topo: &'t Topology,
        load: Load,
        bound: Duration,
    ) -> Result<Running<'t>> {
        let before = Counters::read(topo)?;
        let mut run = Running {
            topo,
            procs: Vec::new(),
            rps: false,
            before,
            since: Instant::now(),
        };
        let secs = bound.as_secs().max(1);
        if load.cpu() {
            let p = topo.ns(FLOODERS[0].0).spawn(
                "nice",
                [
                    "-n",
                    "-10",
                    "stress-ng",
                    "--cpu",
                    &self.cpus.to_string(),
                    "--timeout",
                    &format!("{secs}s"),
                    "--quiet",
                ],
            );
            run.procs.push(p);
        }
        if load == Load::FloodRps {
            set_rps(topo, "1")?;
            run.rps = true;
        }
        let senders: Vec<(&PathBuf, Option<&str>)> = match load {
            Load::Flood | Load::FloodRps | Load::CpuFlood => {
                self.unicast.iter().map(|c| (c, None)).collect()
            }
            Load::VrrpMax => self.vrrp.iter().map(|c| (c, None)).collect(),
            Load::Vrrp25k => vec![(&self.vrrp_smooth, Some(SMOOTH_GAP))],
            Load::None | Load::Cpu => Vec::new(),
        };
        for (i, (conf, gap)) in senders.into_iter().enumerate() {
            let forks = if gap.is_some() || self.split {
                1
            } else {
                i % self.cpus + 1
            };
            // trafgen gives up when its socket's send buffer is full (EAGAIN flushing its TX
            // ring: the receivers' queues hold its frames); `timeout` bounds the restarts.
            let mut args = vec![
                secs.to_string(),
                "sh".into(),
                "-c".into(),
                r#"while :; do "$@"; sleep 0.01; done"#.into(),
                "sh".into(),
                "trafgen".into(),
                "--dev".into(),
                "eth0".into(),
                "--conf".into(),
                conf.to_str().context("UTF-8 path")?.into(),
                "--cpus".into(),
                forks.to_string(),
                "--num".into(),
                (secs * MAX_PPS).to_string(),
                // Leave this host's socket memory sysctls and IRQ affinities alone.
                "--no-sock-mem".into(),
                "--notouch-irq".into(),
                "--no-cpu-stats".into(),
            ];
            if let Some(gap) = gap {
                args.extend(["--gap".into(), gap.into()]);
            }
            run.procs
                .push(topo.ns(FLOODERS[i].0).spawn("timeout", &args));
        }
        super::sleep(Duration::from_millis(200))?;
        run.check()?;
        Ok(run)
    }
}

fn set_rps(topo: &Topology, mask: &str) -> Result<()> {
    // `ip netns exec` mounts the namespace's own /sys, so this is the backup's eth0.
    let out = topo.ns("r2").sh(&format!(
        "echo {mask} > /sys/class/net/eth0/queues/rx-0/rps_cpus"
    ));
    if !out.status.success() {
        bail!("setting rps_cpus: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// What a load achieved over its window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadStats {
    pub secs: f64,
    /// Frames the flooders put on the bridge.
    pub sent_kpps: f64,
    /// Frames the bridge handed to the backup's link.
    pub to_backup_kpps: f64,
    /// Frames for the backup that never reached its stack: dropped at its link, where the veth
    /// counts both its XDP ring (native XDP) and the kernel's backlog (otherwise) being full.
    pub drops_per_s: f64,
    /// Of all interfaces: frames dropped because a CPU's backlog queue was full.
    pub backlog_drops_per_s: f64,
    /// Both CPUs, everything included.
    pub cpu_busy_pct: f64,
}

impl LoadStats {
    /// Each figure's mean over `all`.
    pub fn mean<'a>(all: impl Iterator<Item = &'a LoadStats>) -> LoadStats {
        let all: Vec<&LoadStats> = all.collect();
        let n = all.len().max(1) as f64;
        let mean = |f: fn(&LoadStats) -> f64| all.iter().map(|x| f(x)).sum::<f64>() / n;
        LoadStats {
            secs: mean(|x| x.secs),
            sent_kpps: mean(|x| x.sent_kpps),
            to_backup_kpps: mean(|x| x.to_backup_kpps),
            drops_per_s: mean(|x| x.drops_per_s),
            backlog_drops_per_s: mean(|x| x.backlog_drops_per_s),
            cpu_busy_pct: mean(|x| x.cpu_busy_pct),
        }
    }
}

/// A load running; [`Running::stop`] ends it and says what it achieved.
pub struct Running<'t> {
    topo: &'t Topology,
    procs: Vec<Proc>,
    rps: bool,
    before: Counters,
    since: Instant,
}

impl Running<'_> {
    /// Fails when a load process has ended before its time: the figures would not be under load.
    pub fn check(&mut self) -> Result<()> {
        for p in &mut self.procs {
            if !p.is_running() {
                bail!("load process ended early:\n{}", p.log());
            }
        }
        Ok(())
    }

    pub fn stop(mut self) -> Result<LoadStats> {
        let after = Counters::read(self.topo)?;
        let secs = self.since.elapsed().as_secs_f64();
        for p in &mut self.procs {
            p.stop(Duration::from_secs(5));
        }
        let b = &self.before;
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        Ok(LoadStats {
            secs,
            sent_kpps: rate(after.sent, b.sent) / 1e3,
            to_backup_kpps: rate(after.to_backup, b.to_backup) / 1e3,
            drops_per_s: rate(after.to_backup_dropped, b.to_backup_dropped),
            backlog_drops_per_s: rate(after.backlog_drops, b.backlog_drops),
            cpu_busy_pct: 100.0 * rate(after.cpu_busy, b.cpu_busy)
                / rate(after.cpu_total, b.cpu_total).max(1.0),
        })
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.rps {
            if let Err(e) = set_rps(self.topo, "0") {
                eprintln!("bench: {e:#}");
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    cpu_busy: u64,
    cpu_total: u64,
    backlog_drops: u64,
    sent: u64,
    to_backup: u64,
    to_backup_dropped: u64,
}

impl Counters {
    fn read(topo: &Topology) -> Result<Counters> {
        let (cpu_busy, cpu_total) = cpu_now()?;
        let softnet = std::fs::read_to_string("/proc/net/softnet_stat")?;
        // The bridge's ports: p-<host> receives what <host> sends and sends what it receives.
        let n = port_counters(
            topo,
            &[
                "p-f1/statistics/rx_packets",
                "p-f2/statistics/rx_packets",
                "p-r2/statistics/tx_packets",
                "p-r2/statistics/tx_dropped",
            ],
        )?;
        let [f1, f2, to_backup, to_backup_dropped] = n[..] else {
            bail!("port counters: {n:?}");
        };
        Ok(Counters {
            cpu_busy,
            cpu_total,
            backlog_drops: vrrp_common::liveness::backlog_drops(&softnet)
                .context("unexpected /proc/net/softnet_stat")?,
            sent: f1 + f2,
            to_backup,
            to_backup_dropped,
        })
    }
}

/// Counters of the bridge's ports, `files` under /sys/class/net, in order.
pub fn port_counters(topo: &Topology, files: &[impl AsRef<str>]) -> Result<Vec<u64>> {
    let files = files
        .iter()
        .map(|f| format!("/sys/class/net/{}", f.as_ref()));
    let out = topo.ns(vrrp_lab::BRIDGE).run("cat", files);
    if !out.status.success() {
        bail!("port counters: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?)
}

/// How busy the CPUs are over `window`, in percent: anything else running blurs the figures.
pub fn busy_pct(window: Duration) -> Result<f64> {
    let (b0, t0) = cpu_now()?;
    super::sleep(window)?;
    let (b1, t1) = cpu_now()?;
    Ok(100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64)
}

fn cpu_now() -> Result<(u64, u64)> {
    cpu_times(&std::fs::read_to_string("/proc/stat")?).context("/proc/stat")
}

/// (busy, total) jiffies of all CPUs from /proc/stat; idle and iowait are not busy.
fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = v.iter().sum();
    Some((total - v.get(3)? - v.get(4)?, total))
}

fn write(path: PathBuf, frames: &[Vec<u8>], cpu: Option<usize>) -> Result<PathBuf> {
    let conf = trafgen_config(frames, cpu);
    std::fs::write(&path, conf).with_context(|| path.display().to_string())?;
    Ok(path)
}

/// A valid VRRPv3 advert (10 ms, priority 100) for `vrid` with one address, 203.0.113.<vrid>.
fn foreign_advert(src: ([u8; 6], Ipv4Addr), vrid: u8) -> Vec<u8> {
    assert_ne!(
        vrid, VRID,
        "the flood must not speak for the benchmarked group"
    );
    advert_frame(src, vrid, 100, 1, &[Ipv4Addr::new(203, 0, 113, vrid)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kernel_counters() {
        let stat = "cpu  10 1 5 80 4 0 0 0 0 0\ncpu0 1 1 1 1 1 1 1 1 1 1\n";
        assert_eq!(cpu_times(stat), Some((16, 100)));
    }
}
