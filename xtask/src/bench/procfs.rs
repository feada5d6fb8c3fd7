//! What the bench reads from /proc: the machine it runs on, and the CPU time, wake-ups and RSS
//! of the routers' processes.
use std::collections::BTreeMap;

use anyhow::{Context as _, Result};

/// The machine the figures belong to: CPU model and count, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let vm = if cpuinfo.contains(" hypervisor") {
        " (virtual machine)"
    } else {
        ""
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = kb_field(&meminfo, "MemTotal:").unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cpus} CPUs{vm}, {:.0} GiB, Linux {}",
        mem_kb as f64 / (1024.0 * 1024.0),
        kernel.trim()
    )
}

/// Per thread of the processes: (CPU time in ns, times it was scheduled in), from
/// /proc/PID/task/TID/schedstat, exact where /proc/PID/stat counts in 10 ms ticks.
pub fn sched(pids: &[u32]) -> Result<BTreeMap<u32, (u64, u64)>> {
    let mut threads = BTreeMap::new();
    for pid in pids {
        let dir = format!("/proc/{pid}/task");
        for task in std::fs::read_dir(&dir).with_context(|| format!("process {pid} is gone"))? {
            let task = task?;
            let Ok(tid) = task.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            // A thread that ended meanwhile is skipped.
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            let f: Vec<u64> = text
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            if let [run_ns, _wait_ns, slices] = f[..] {
                threads.insert(tid, (run_ns, slices));
            }
        }
    }
    Ok(threads)
}

/// What the threads of `after` did since `before` (a thread started meanwhile: all of it; one
/// that ended meanwhile is not counted).
pub fn since(before: &BTreeMap<u32, (u64, u64)>, after: &BTreeMap<u32, (u64, u64)>) -> (u64, u64) {
    after.iter().fold((0, 0), |(ns, n), (tid, &(a_ns, a_n))| {
        let (b_ns, b_n) = before.get(tid).copied().unwrap_or_default();
        (ns + a_ns.saturating_sub(b_ns), n + a_n.saturating_sub(b_n))
    })
}

pub fn rss_kb(pids: &[u32]) -> Result<u64> {
    pids.iter()
        .map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .with_context(|| format!("process {pid} is gone"))?;
            kb_field(&status, "VmRSS:").context("no VmRSS")
        })
        .sum()
}

/// The value of a `<key> <n> kB` line of a /proc file (meminfo, status).
fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.strip_prefix(key)?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn parses_proc_files_of_this_process() {
        let me = [std::process::id()];
        assert!(rss_kb(&me).unwrap() > 0);
        let t0 = sched(&me).unwrap();
        assert!(t0.contains_key(&std::process::id()));
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(20) {}
        let (ns, _) = since(&t0, &sched(&me).unwrap());
        assert!(ns >= 10_000_000, "{ns}");
    }
}
