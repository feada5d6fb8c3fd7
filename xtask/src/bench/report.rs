//! What the bench writes under target/bench/, one module per format: results.md (markdown
//! tables), failover.svg (a dot plot on a log scale), and the raw runs as CSV. Here: the results
//! they are written from, and what more than one of them computes.
mod csv;
mod markdown;
mod svg;

use super::{
    loads::{Load, LoadStats},
    measure::{Failover, Interval},
    Impl, Trigger, BACKUP_PRIO,
};

pub use csv::{failover_csv, idle_csv, spurious_csv};
pub use markdown::markdown;
pub use svg::svg;

pub struct FailoverRun {
    pub imp: Impl,
    pub interval: Interval,
    pub trigger: Trigger,
    pub load: Load,
    pub run: usize,
    pub fig: Failover,
    pub load_stats: LoadStats,
}

pub struct SpuriousRun {
    pub imp: Impl,
    pub load: Load,
    /// Which of the repeated windows (0-based).
    pub window: usize,
    pub secs: f64,
    /// The backup's wrong MASTER transitions.
    pub count: usize,
    pub load_stats: LoadStats,
}

impl SpuriousRun {
    pub fn per_minute(&self) -> f64 {
        self.count as f64 * 60.0 / self.secs
    }
}

pub struct IdleRun {
    pub imp: Impl,
    pub interval: Interval,
    pub role: &'static str,
    pub cpu_pct: f64,
    /// Times its threads were scheduled in, per second.
    pub wakeups_per_s: f64,
    pub rss_kb: u64,
    /// Frames it sent (its bridge port's receive counters), per second and kbit/s.
    pub sent_pps: f64,
    pub sent_kbps: f64,
    /// The machine's softirq time over the window, in % of one CPU (both routers' share).
    pub softirq_pct: f64,
}

#[derive(Default)]
pub struct Results {
    pub failover: Vec<FailoverRun>,
    pub spurious: Vec<SpuriousRun>,
    pub idle: Vec<IdleRun>,
}

/// Where and how the results were obtained.
pub struct Header {
    pub machine: String,
    pub date: String,
    pub command: String,
    pub matrix: String,
    pub minutes: f64,
    /// CPU busy (%) just before the bench started: the rest of the machine.
    pub busy_before: f64,
    /// (steps done, steps planned): a run stopped early says so.
    pub steps: (usize, usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

/// min / median / p99 (nearest rank) / max; None without values.
pub fn summary(values: impl IntoIterator<Item = f64>) -> Option<Summary> {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let p99 = v[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1];
    Some(Summary {
        n,
        min: v[0],
        median,
        p99,
        max: v[n - 1],
    })
}

/// The RFC's wait for the backup (priority 100) to take over after the trigger's last advert.
fn rfc_wait(iv: Interval, t: Trigger) -> Option<f64> {
    match t {
        Trigger::Cut => Some(iv.master_down_ms(BACKUP_PRIO)),
        Trigger::Term => Some(iv.skew_ms(BACKUP_PRIO)),
        Trigger::Kill => Some(iv.master_down_ms(BACKUP_PRIO)),
        Trigger::Failback => None,
    }
}

/// Distinct values of `key` over `items`, in order.
fn distinct<T, K: Ord + Copy>(items: &[T], key: impl Fn(&T) -> K) -> Vec<K> {
    let mut v: Vec<K> = items.iter().map(key).collect();
    v.sort();
    v.dedup();
    v
}

impl Results {
    fn runs(
        &self,
        imp: Impl,
        iv: Interval,
        t: Trigger,
        load: Load,
    ) -> impl Iterator<Item = &FailoverRun> {
        self.failover
            .iter()
            .filter(move |r| r.imp == imp && r.interval == iv && r.trigger == t && r.load == load)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_nearest_rank() {
        assert_eq!(summary(Vec::new()), None);
        let s = summary([3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!(
            (s.n, s.min, s.median, s.p99, s.max),
            (4, 1.0, 2.5, 10.0, 10.0)
        );
        let s = summary((1..=200).map(f64::from)).unwrap();
        assert_eq!((s.median, s.p99), (100.5, 198.0));
    }

    /// Three runs of each implementation, one without a GARP; a spurious and an idle run each.
    pub(super) fn results() -> Results {
        let iv = Interval { ms: 10 };
        let mut r = Results::default();
        for imp in [Impl::Ours, Impl::Keepalived] {
            for run in 0..3 {
                r.failover.push(FailoverRun {
                    imp,
                    interval: iv,
                    trigger: Trigger::Cut,
                    load: Load::None,
                    run,
                    fig: Failover {
                        garp_ms: (run < 2).then_some(36.5 + run as f64),
                        reply_ms: Some(37.0),
                        precision_ms: Some(0.25),
                        detect_ms: Some(36.0),
                    },
                    load_stats: LoadStats::default(),
                });
            }
            r.spurious.push(SpuriousRun {
                imp,
                load: Load::VrrpMax,
                window: 0,
                secs: 30.0,
                count: if imp == Impl::Ours { 0 } else { 200 },
                load_stats: LoadStats::default(),
            });
            for role in ["master", "backup"] {
                r.idle.push(IdleRun {
                    imp,
                    interval: iv,
                    role,
                    cpu_pct: if imp == Impl::Ours { 0.5 } else { 1.0 },
                    wakeups_per_s: 100.0,
                    rss_kb: 4096,
                    sent_pps: 100.0,
                    sent_kbps: 50.0,
                    softirq_pct: 0.1,
                });
            }
        }
        r
    }
}
