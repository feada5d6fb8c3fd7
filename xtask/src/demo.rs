//! `cargo xtask demo`: two agents in network namespaces (the end-to-end tests' topology), a client
//! pinging the VIP every 10 ms, and the three events operators care about — master link cut,
//! master back (failback), master stopped (SIGTERM) — each with the state lines as they happen and
//! the outage the client saw, and `vrrp-agent status` of both routers after each. Touches only
//! its own namespaces; removes them when done.
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use vrrp_lab::{wait_until, Proc, Topology};

const VIP: &str = "198.51.100.100";
const ADVERT_INT: &str = "100ms";
const ADVERT_INT_MS: f64 = 100.0;
/// r2's priority: its Skew_Time and Master_Down_Interval set the failover times.
const BACKUP_PRIORITY: f64 = 100.0;

pub fn run() -> Result<()> {
    if !crate::is_root() {
        bail!("the demo creates network namespaces and needs root: run `sudo -E cargo xtask demo`");
    }
    crate::setup::run()?;
    crate::status(crate::cargo(&["build", "--release", "-p", "vrrp-agent"]))?;
    let bin = crate::root_dir().join("target/release/vrrp-agent");
    let topo = Topology::new("demo")?;
    println!(
        "\nTopology: bridge + r1 (198.51.100.1) + r2 (198.51.100.2) + client (198.51.100.10), \
         each in its own network namespace.\nVIP {VIP}/24, VRID 51, VRRPv3 adverts every \
         {ADVERT_INT}; r1 priority 200, r2 priority 100.\n"
    );
    let agent = |role: &str, priority: &str| {
        topo.ns(role).spawn(
            bin.to_str().expect("UTF-8 path"),
            [
                "--iface",
                "eth0",
                "--vrid",
                "51",
                "--priority",
                priority,
                "--vip",
                "198.51.100.100/24",
                "--advert-int",
                ADVERT_INT,
            ],
        )
    };
    let mut r1 = agent("r1", "200");
    let r2 = agent("r2", &BACKUP_PRIORITY.to_string());
    let mut logs = Logs::new(
        &[("r1", &r1), ("r2", &r2)],
        bin.to_str().expect("UTF-8 path"),
    );

    step("Election");
    expect_holder(&topo, &mut logs, "r1")?;
    let answered = topo.ping("client", VIP, 3, Duration::from_secs(3));
    println!(
        "client: ping {VIP}: {}",
        if answered { "answered" } else { "NO ANSWER" }
    );

    let cut = outage(
        &topo,
        &mut logs,
        "Master link cut (r1's cable pulled)",
        "r2",
        || {
            topo.cut_link("r1");
            Ok(())
        },
    )?;
    let back = outage(
        &topo,
        &mut logs,
        "Master link back: r1 preempts",
        "r1",
        || {
            topo.restore_link("r1");
            Ok(())
        },
    )?;
    let term = outage(
        &topo,
        &mut logs,
        "Master stopped (SIGTERM: priority-0 advert)",
        "r2",
        || r1.term(),
    )?;

    // RFC 9568 §6.1, for the backup's priority.
    let skew = (256.0 - BACKUP_PRIORITY) * ADVERT_INT_MS / 256.0;
    let master_down = 3.0 * ADVERT_INT_MS + skew;
    step("Summary: longest gap between the client's ping replies (10 ms probes)");
    println!(
        "  master link cut  {:>7.1} ms   (Master_Down_Interval {master_down:.1} ms, counted from \
         r1's last advert)",
        ms(cut)
    );
    println!("  failback         {:>7.1} ms", ms(back));
    println!(
        "  master SIGTERM   {:>7.1} ms   (Skew_Time {skew:.1} ms)",
        ms(term)
    );
    println!("\nRemoving the namespaces.");
    Ok(())
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Waits until `holder` has the VIP and the other router does not, printing the agents' log
/// lines meanwhile.
fn expect_holder(topo: &Topology, logs: &mut Logs, holder: &str) -> Result<()> {
    let other = if holder == "r1" { "r2" } else { "r1" };
    let ok = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        logs.print();
        topo.has_addr(holder, "eth0", VIP) && !topo.has_addr(other, "eth0", VIP)
    });
    logs.print();
    if !ok {
        bail!("{holder} did not take the VIP within 10 s");
    }
    println!("ip addr: {VIP} is on {holder}");
    logs.status(topo);
    Ok(())
}

/// Runs `trigger` under a 10 ms ping from the client and returns the longest gap between replies.
fn outage(
    topo: &Topology,
    logs: &mut Logs,
    title: &str,
    new_holder: &str,
    trigger: impl FnOnce() -> Result<()>,
) -> Result<Duration> {
    step(title);
    // Bounded: 10 ms probes for at most 8 s.
    let mut ping = topo.ns("client").spawn(
        "ping",
        ["-n", "-D", "-i", "0.01", "-W", "1", "-w", "8", VIP],
    );
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    trigger()?;
    expect_holder(topo, logs, new_holder)?;
    println!("VIP moved {:.0} ms after the trigger", ms(start.elapsed()));
    std::thread::sleep(Duration::from_millis(700));
    ping.term()?;
    ping.wait_timeout(Duration::from_secs(2));
    let gap = longest_gap(&ping.log()).context("no ping replies")?;
    println!("client: longest gap between replies {:.1} ms", ms(gap));
    Ok(gap)
}

/// The longest time between two consecutive replies in `ping -D` output.
fn longest_gap(output: &str) -> Option<Duration> {
    let stamps: Vec<f64> = output
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    stamps
        .windows(2)
        .map(|w| Duration::from_secs_f64((w[1] - w[0]).max(0.0)))
        .max()
}

/// Follows the agents' log files and prints new lines with the router's name; asks the agents
/// for their status (`vrrp-agent status`, the binary at `bin`).
struct Logs {
    agents: Vec<(String, PathBuf, usize)>,
    bin: String,
}

impl Logs {
    fn new(agents: &[(&str, &Proc)], bin: &str) -> Self {
        Self {
            agents: agents
                .iter()
                .filter_map(|(name, p)| Some((name.to_string(), p.log_path()?.to_path_buf(), 0)))
                .collect(),
            bin: bin.to_owned(),
        }
    }

    /// Each router's `vrrp-agent status` line, as an operator would ask for it.
    fn status(&self, topo: &Topology) {
        for (name, ..) in &self.agents {
            let out = topo.ns(name).run(&self.bin, ["status"]);
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().next().unwrap_or("(no agent answers)");
            println!("  {name} $ vrrp-agent status: {line}");
        }
    }

    fn print(&mut self) {
        for (name, path, seen) in &mut self.agents {
            let Ok(text) = std::fs::read_to_string(&*path) else {
                continue;
            };
            let Some(new) = text.get(*seen..) else {
                continue;
            };
            // Only whole lines; a line being written is printed next time.
            let upto = new.rfind('\n').map_or(0, |i| i + 1);
            for line in new[..upto].lines() {
                println!("  {name} | {line}");
            }
            *seen += upto;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_gap_between_ping_replies() {
        let out = "PING 198.51.100.100 (198.51.100.100) 56(84) bytes of data.\n\
            [1000.000] 64 bytes from 198.51.100.100: icmp_seq=1 ttl=64 time=0.1 ms\n\
            [1000.010] 64 bytes from 198.51.100.100: icmp_seq=2 ttl=64 time=0.1 ms\n\
            [1000.350] 64 bytes from 198.51.100.100: icmp_seq=36 ttl=64 time=0.1 ms\n\
            [1000.360] 64 bytes from 198.51.100.100: icmp_seq=37 ttl=64 time=0.1 ms\n";
        let gap = longest_gap(out).unwrap();
        assert!((ms(gap) - 340.0).abs() < 0.01, "{gap:?}");
        assert_eq!(longest_gap("no replies"), None);
    }
}
