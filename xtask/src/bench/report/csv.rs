//! The raw runs as CSV: runs.csv (failover), spurious.csv, idle.csv.
use std::fmt::Write as _;

use super::Results;

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.3}"))
}

pub fn failover_csv(r: &Results) -> String {
    let mut s = "implementation,interval_ms,trigger,load,run,garp_ms,reply_ms,precision_ms,\
                 detect_ms,load_secs,sent_kpps,to_backup_kpps,drops_per_s,backlog_drops_per_s,\
                 cpu_busy_pct\n"
        .to_string();
    for x in &r.failover {
        let l = &x.load_stats;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{:.2},{:.1},{:.1},{:.0},{:.0},{:.1}",
            x.imp.short(),
            x.interval.ms,
            x.trigger.name(),
            x.load.name(),
            x.run,
            opt(x.fig.garp_ms),
            opt(x.fig.reply_ms),
            opt(x.fig.precision_ms),
            opt(x.fig.detect_ms),
            l.secs,
            l.sent_kpps,
            l.to_backup_kpps,
            l.drops_per_s,
            l.backlog_drops_per_s,
            l.cpu_busy_pct
        );
    }
    s
}

pub fn spurious_csv(r: &Results) -> String {
    let mut s = "implementation,load,window,secs,transitions,per_minute,sent_kpps,\
                 to_backup_kpps,drops_per_s,backlog_drops_per_s,cpu_busy_pct\n"
        .to_string();
    for x in &r.spurious {
        let l = &x.load_stats;
        let _ = writeln!(
            s,
            "{},{},{},{:.1},{},{:.2},{:.1},{:.1},{:.0},{:.0},{:.1}",
            x.imp.short(),
            x.load.name(),
            x.window + 1,
            x.secs,
            x.count,
            x.per_minute(),
            l.sent_kpps,
            l.to_backup_kpps,
            l.drops_per_s,
            l.backlog_drops_per_s,
            l.cpu_busy_pct
        );
    }
    s
}

pub fn idle_csv(r: &Results) -> String {
    let mut s = "implementation,interval_ms,role,cpu_pct,wakeups_per_s,rss_kb,sent_pps,sent_kbps,\
                 softirq_pct\n"
        .to_string();
    for x in &r.idle {
        let _ = writeln!(
            s,
            "{},{},{},{:.3},{:.1},{},{:.1},{:.1},{:.3}",
            x.imp.short(),
            x.interval.ms,
            x.role,
            x.cpu_pct,
            x.wakeups_per_s,
            x.rss_kb,
            x.sent_pps,
            x.sent_kbps,
            x.softirq_pct
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::tests::results;
    use super::*;

    #[test]
    fn failover_csv_has_a_row_per_run() {
        let csv = failover_csv(&results());
        assert_eq!(csv.lines().count(), 7);
        assert!(
            csv.contains("\nvrrp-agent,10,link cut,none,2,,37.000,0.250,"),
            "{csv}"
        );
    }
}
