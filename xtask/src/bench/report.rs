//! What the bench writes under target/bench/: results.md (markdown tables), failover.svg (a dot
//! plot on a log scale), and the raw runs as CSV.
use std::fmt::Write as _;

use super::{
    loads::{Load, LoadStats},
    measure::{Failover, Interval, VRID},
    Impl, Trigger, BACKUP_PRIO, MASTER_PRIO,
};

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
        Trigger::Failback => None,
    }
}

fn ms(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn signed(v: f64) -> String {
    format!("{v:+.2}")
}

/// A [`Results::figure`] as the `pick`ed statistics joined by " / ", plus how many runs never
/// showed it.
fn cell<const N: usize>(
    (s, missed): (Option<Summary>, usize),
    pick: fn(&Summary) -> [f64; N],
    fmt: fn(f64) -> String,
) -> String {
    let mut c = s.map_or("—".into(), |s| pick(&s).map(fmt).join(" / "));
    if missed > 0 {
        c += &format!(" ({missed} not seen)");
    }
    c
}

fn median_p99(s: &Summary) -> [f64; 2] {
    [s.median, s.p99]
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

    fn figure(
        &self,
        imp: Impl,
        iv: Interval,
        t: Trigger,
        load: Load,
        f: fn(&Failover) -> Option<f64>,
    ) -> (Option<Summary>, usize) {
        let runs: Vec<_> = self.runs(imp, iv, t, load).collect();
        let vals: Vec<f64> = runs.iter().filter_map(|r| f(&r.fig)).collect();
        (summary(vals.iter().copied()), runs.len() - vals.len())
    }

    /// (interval, trigger, load) triples measured, in matrix order.
    fn cases(&self) -> Vec<(Interval, Trigger, Load)> {
        distinct(&self.failover, |r| (r.interval, r.trigger, r.load))
    }
}

pub fn markdown(h: &Header, r: &Results) -> String {
    let mut s = String::new();
    let impls = distinct(&r.failover, |x| x.imp);
    let has_ours = r
        .failover
        .iter()
        .map(|x| x.imp)
        .chain(r.spurious.iter().map(|x| x.imp))
        .chain(r.idle.iter().map(|x| x.imp))
        .any(|i| i == Impl::Ours);
    let _ = writeln!(s, "# Failover benchmark: vrrp-agent and keepalived\n");
    let _ = writeln!(
        s,
        "- Machine: {}\n- Date: {}\n- Command: `{}` ({:.0} min; CPUs {:.0} % busy before the \
         start)\n- Matrix: {}\n- Topology: \
         bridge namespace, r1 (priority {MASTER_PRIO}, master) and r2 (priority {BACKUP_PRIO}, \
         backup), a client pinging the VIP every 1 ms and capturing adverts, ARP and replies \
         (kernel time stamps); VRRPv3, VRID {VRID}, both implementations run the same \
         keepalived.conf.\n",
        h.machine, h.date, h.command, h.minutes, h.busy_before, h.matrix
    );
    if has_ours {
        s += &targets(r);
    }
    if !r.failover.is_empty() {
        s += &failover_table(r, &impls);
    }
    if !r.spurious.is_empty() {
        s += &spurious_table(r);
    }
    if !r.idle.is_empty() {
        s += &idle_table(r);
    }
    if !r.failover.is_empty() {
        s += &loads_table(r);
        s += &details_table(r);
    }
    s
}

fn header_row(s: &mut String, cols: &[impl AsRef<str>]) {
    row(s, cols);
    let _ = writeln!(s, "|{}", "---|".repeat(cols.len()));
}

fn row(s: &mut String, cols: &[impl AsRef<str>]) {
    let cols: Vec<&str> = cols.iter().map(AsRef::as_ref).collect();
    let _ = writeln!(s, "| {} |", cols.join(" | "));
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn targets(r: &Results) -> String {
    let mut s = "## Targets for vrrp-agent (shown, not asserted)\n\n".to_string();
    header_row(&mut s, &["target", "measured (worst case)", ""]);
    let ours = Impl::Ours;
    // Precision: the worst p99 over every case with an RFC deadline.
    let worst = r
        .cases()
        .into_iter()
        .filter(|&(iv, t, _)| rfc_wait(iv, t).is_some())
        .filter_map(|(iv, t, l)| {
            let (sum, _) = r.figure(ours, iv, t, l, |f| f.precision_ms);
            Some((sum?.p99, iv, t, l))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((p99, iv, t, l)) = worst {
        row(
            &mut s,
            &[
                "Master_Down precision ≤ 1 ms at p99, every load".into(),
                format!(
                    "{} ms ({iv} adverts, {}, {})",
                    signed(p99),
                    t.name(),
                    l.name()
                ),
                mark(p99 <= 1.0).into(),
            ],
        );
    }
    let spurious: Vec<_> = r.spurious.iter().filter(|x| x.imp == ours).collect();
    if !spurious.is_empty() {
        let total: usize = spurious.iter().map(|x| x.count).sum();
        let worst = spurious.iter().max_by_key(|x| x.count).expect("not empty");
        row(
            &mut s,
            &[
                "no spurious failover under any load".into(),
                format!(
                    "{total} in {:.0} s of {} loads{}",
                    spurious.iter().map(|x| x.secs).sum::<f64>(),
                    spurious.len(),
                    if total > 0 {
                        format!(" (most: {} under {})", worst.count, worst.load.name())
                    } else {
                        String::new()
                    }
                ),
                mark(total == 0).into(),
            ],
        );
    }
    // SIGTERM: the new master's first GARP at most Skew_Time + 1 ms after the signal.
    let worst = r
        .cases()
        .into_iter()
        .filter(|&(_, t, _)| t == Trigger::Term)
        .filter_map(|(iv, t, l)| {
            let (sum, missed) = r.figure(ours, iv, t, l, |f| f.garp_ms);
            let late = if missed > 0 {
                f64::INFINITY
            } else {
                sum?.p99 - iv.skew_ms(BACKUP_PRIO)
            };
            Some((late, iv, l))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((late, iv, l)) = worst {
        row(
            &mut s,
            &[
                "SIGTERM handover (→ first GARP) ≤ Skew_Time + 1 ms, p99".into(),
                if late.is_finite() {
                    format!("Skew_Time {} ms ({iv} adverts, {})", signed(late), l.name())
                } else {
                    format!("no takeover seen in a run ({iv} adverts, {})", l.name())
                },
                mark(late <= 1.0).into(),
            ],
        );
    }
    let pairs: Vec<_> = r
        .idle
        .iter()
        .filter(|o| o.imp == ours)
        .filter_map(|o| {
            let k = r.idle.iter().find(|k| {
                k.imp == Impl::Keepalived && k.interval == o.interval && k.role == o.role
            })?;
            Some((o, k))
        })
        .collect();
    if !pairs.is_empty() {
        let (o, k) = pairs
            .iter()
            .max_by(|a, b| (a.0.cpu_pct - a.1.cpu_pct).total_cmp(&(b.0.cpu_pct - b.1.cpu_pct)))
            .expect("not empty");
        row(
            &mut s,
            &[
                "idle CPU ≤ keepalived's (master and backup)".into(),
                format!(
                    "{:.2} % vs {:.2} % ({} adverts, {})",
                    o.cpu_pct, k.cpu_pct, o.interval, o.role
                ),
                mark(pairs.iter().all(|(o, k)| o.cpu_pct <= k.cpu_pct)).into(),
            ],
        );
    }
    if let Some(o) = r
        .idle
        .iter()
        .filter(|o| o.imp == ours)
        .max_by_key(|o| o.rss_kb)
    {
        row(
            &mut s,
            &[
                "RSS ≤ 10 MB".into(),
                format!(
                    "{:.1} MB ({} adverts, {})",
                    mb(o.rss_kb),
                    o.interval,
                    o.role
                ),
                mark(o.rss_kb <= 10 * 1024).into(),
            ],
        );
    }
    s + "\n"
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn failover_table(r: &Results, impls: &[Impl]) -> String {
    let runs = distinct(&r.failover, |x| x.run).len();
    let mut s = format!(
        "## Failover (ms, median / p99 of {runs} run{} with the trigger at a random phase of \
         the advert timer)\n\n\
         - GARP: trigger → first gratuitous ARP from the new master seen by the client.\n\
         - reply: trigger → first echo reply through the new master.\n\
         - precision: (new master's first advert) − (old master's last advert) − the RFC's wait \
         for the backup (priority {BACKUP_PRIO}): Master_Down_Interval after a link cut, \
         Skew_Time after SIGTERM (priority-0 advert). On failback the returning master's timing \
         is the implementation's choice. Negative: the backup was already taking over wrongly \
         when the trigger came (see the spurious failovers).\n\
         - p99 is the nearest rank: with fewer than 100 runs, the slowest run.\n\n",
        if runs == 1 { "" } else { "s" }
    );
    let mut cols = vec![
        "adverts".to_string(),
        "trigger".into(),
        "RFC wait".into(),
        "load".into(),
    ];
    for fig in ["GARP", "reply", "precision"] {
        for imp in impls {
            cols.push(format!("{fig} {}", imp.short()));
        }
    }
    header_row(&mut s, &cols);
    for (iv, t, l) in r.cases() {
        let mut c = vec![
            iv.to_string(),
            t.name().into(),
            rfc_wait(iv, t).map_or("—".into(), ms),
            l.name().into(),
        ];
        for imp in impls {
            c.push(cell(
                r.figure(*imp, iv, t, l, |f| f.garp_ms),
                median_p99,
                ms,
            ));
        }
        for imp in impls {
            c.push(cell(
                r.figure(*imp, iv, t, l, |f| f.reply_ms),
                median_p99,
                ms,
            ));
        }
        for imp in impls {
            c.push(if rfc_wait(iv, t).is_some() {
                cell(
                    r.figure(*imp, iv, t, l, |f| f.precision_ms),
                    median_p99,
                    signed,
                )
            } else {
                "—".into()
            });
        }
        row(&mut s, &c);
    }
    s + "\n"
}

fn spurious_table(r: &Results) -> String {
    let impls = distinct(&r.spurious, |x| x.imp);
    let secs = r.spurious.iter().map(|x| x.secs).fold(0.0, f64::max);
    let mut s = format!(
        "## Spurious failovers (wrong MASTER transitions of the backup per minute, healthy \
         master, 10 ms adverts, {secs:.0} s per load)\n\n"
    );
    let mut cols = vec!["load".to_string()];
    for imp in &impls {
        cols.push(format!("{} /min", imp.short()));
        cols.push(format!("{} load achieved", imp.short()));
    }
    header_row(&mut s, &cols);
    for load in distinct(&r.spurious, |x| x.load) {
        let mut c = vec![format!("{} ({})", load.name(), load.describe())];
        for imp in &impls {
            match r.spurious.iter().find(|x| x.imp == *imp && x.load == load) {
                Some(x) => {
                    c.push(format!(
                        "{:.1} ({} in {:.0} s)",
                        x.per_minute(),
                        x.count,
                        x.secs
                    ));
                    c.push(achieved(&x.load_stats));
                }
                None => c.extend(["—".into(), "—".into()]),
            }
        }
        row(&mut s, &c);
    }
    s + "\n"
}

fn achieved(l: &LoadStats) -> String {
    let mut parts = vec![format!("CPU {:.0} %", l.cpu_busy_pct)];
    if l.sent_kpps >= 1.0 {
        parts.push(format!("{:.0} kpps sent", l.sent_kpps));
        parts.push(format!("{:.0} kpps to backup", l.to_backup_kpps));
    }
    if l.drops_per_s >= 1.0 {
        parts.push(format!(
            "{:.0} dropped/s at the backup's link",
            l.drops_per_s
        ));
    }
    parts.join(", ")
}

fn idle_table(r: &Results) -> String {
    let impls = distinct(&r.idle, |x| x.imp);
    let mut s = "## Idle cost (no load; CPU = share of one CPU over the window, wake-ups = times \
                 its threads were scheduled in; keepalived = main process + VRRP child)\n\n"
        .to_string();
    type Figure = fn(&IdleRun) -> String;
    let figures: [(&str, Figure); 3] = [
        ("CPU %", |x| format!("{:.2}", x.cpu_pct)),
        ("wake-ups/s", |x| format!("{:.0}", x.wakeups_per_s)),
        ("RSS MB", |x| format!("{:.1}", mb(x.rss_kb))),
    ];
    let mut cols = vec!["adverts".to_string(), "role".into()];
    for (name, _) in figures {
        cols.extend(impls.iter().map(|imp| format!("{} {name}", imp.short())));
    }
    header_row(&mut s, &cols);
    let cases = distinct(&r.idle, |x| x.interval)
        .into_iter()
        .flat_map(|iv| ["master", "backup"].map(|role| (iv, role)));
    for (iv, role) in cases {
        let find = |imp: Impl| {
            r.idle
                .iter()
                .find(|x| x.imp == imp && x.interval == iv && x.role == role)
        };
        let mut c = vec![iv.to_string(), role.into()];
        for (_, fig) in figures {
            c.extend(impls.iter().map(|&imp| find(imp).map_or("—".into(), fig)));
        }
        row(&mut s, &c);
    }
    s + "\n"
}

fn loads_table(r: &Results) -> String {
    let mut s = "## Loads during the failover runs (mean over runs)\n\n".to_string();
    header_row(
        &mut s,
        &[
            "load",
            "implementation",
            "sent kpps",
            "to backup kpps",
            "backup link drops/s",
            "backlog drops/s",
            "CPU busy %",
        ],
    );
    for (load, imp) in distinct(&r.failover, |x| (x.load, x.imp)) {
        // Each trigger of a cycle repeats the cycle's load figures, which leaves the mean as is.
        let st: Vec<&LoadStats> = r
            .failover
            .iter()
            .filter(|x| x.load == load && x.imp == imp)
            .map(|x| &x.load_stats)
            .collect();
        let mean =
            |f: fn(&LoadStats) -> f64| st.iter().map(|x| f(x)).sum::<f64>() / st.len() as f64;
        row(
            &mut s,
            &[
                format!("{} ({})", load.name(), load.describe()),
                imp.short().into(),
                format!("{:.0}", mean(|x| x.sent_kpps)),
                format!("{:.0}", mean(|x| x.to_backup_kpps)),
                format!("{:.0}", mean(|x| x.drops_per_s)),
                format!("{:.0}", mean(|x| x.backlog_drops_per_s)),
                format!("{:.0}", mean(|x| x.cpu_busy_pct)),
            ],
        );
    }
    s + "\n"
}

fn details_table(r: &Results) -> String {
    let mut s = "## All failover figures (ms: min / median / p99 / max)\n\n".to_string();
    header_row(
        &mut s,
        &[
            "implementation",
            "adverts",
            "trigger",
            "load",
            "runs",
            "GARP",
            "reply",
            "precision",
        ],
    );
    let four = |fig, fmt| cell(fig, |s| [s.min, s.median, s.p99, s.max], fmt);
    for (iv, t, l) in r.cases() {
        for imp in distinct(&r.failover, |x| x.imp) {
            let n = r.runs(imp, iv, t, l).count();
            if n == 0 {
                continue;
            }
            row(
                &mut s,
                &[
                    imp.short().into(),
                    iv.to_string(),
                    t.name().into(),
                    l.name().into(),
                    n.to_string(),
                    four(r.figure(imp, iv, t, l, |f| f.garp_ms), ms),
                    four(r.figure(imp, iv, t, l, |f| f.reply_ms), ms),
                    if rfc_wait(iv, t).is_some() {
                        four(r.figure(imp, iv, t, l, |f| f.precision_ms), signed)
                    } else {
                        "—".into()
                    },
                ],
            );
        }
    }
    s + "\n"
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.3}"))
}

pub fn failover_csv(r: &Results) -> String {
    let mut s = "implementation,interval_ms,trigger,load,run,garp_ms,reply_ms,precision_ms,\
                 load_secs,sent_kpps,to_backup_kpps,drops_per_s,backlog_drops_per_s,cpu_busy_pct\n"
        .to_string();
    for x in &r.failover {
        let l = &x.load_stats;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{:.2},{:.1},{:.1},{:.0},{:.0},{:.1}",
            x.imp.short(),
            x.interval.ms,
            x.trigger.name(),
            x.load.name(),
            x.run,
            opt(x.fig.garp_ms),
            opt(x.fig.reply_ms),
            opt(x.fig.precision_ms),
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
    let mut s = "implementation,load,secs,transitions,per_minute,sent_kpps,to_backup_kpps,\
                 drops_per_s,backlog_drops_per_s,cpu_busy_pct\n"
        .to_string();
    for x in &r.spurious {
        let l = &x.load_stats;
        let _ = writeln!(
            s,
            "{},{},{:.1},{},{:.2},{:.1},{:.1},{:.0},{:.0},{:.1}",
            x.imp.short(),
            x.load.name(),
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
    let mut s = "implementation,interval_ms,role,cpu_pct,wakeups_per_s,rss_kb\n".to_string();
    for x in &r.idle {
        let _ = writeln!(
            s,
            "{},{},{},{:.3},{:.1},{}",
            x.imp.short(),
            x.interval.ms,
            x.role,
            x.cpu_pct,
            x.wakeups_per_s,
            x.rss_kb
        );
    }
    s
}

fn color(imp: Impl) -> &'static str {
    match imp {
        Impl::Ours => "#1f77b4",
        Impl::Keepalived => "#e6550d",
    }
}

const LABEL_W: f64 = 90.0;
const PANEL_W: f64 = 330.0;
const PANEL_GAP: f64 = 40.0;
const LANE_H: f64 = 11.0;
const BLOCK_GAP: f64 = 7.0;
const TOP: f64 = 58.0;
const ROW_HEAD: f64 = 34.0;
const AXIS_H: f64 = 30.0;

/// Trigger → first GARP from the new master, one dot per run, a bar at the median; one row of
/// panels per advert interval (log scale in ms, shared by the row), one panel per trigger, one
/// band per load with a lane per implementation. The dashed line is the RFC's wait.
pub fn svg(r: &Results) -> String {
    let intervals = distinct(&r.failover, |x| x.interval);
    let triggers = distinct(&r.failover, |x| x.trigger);
    let impls = distinct(&r.failover, |x| x.imp);
    let width = LABEL_W + triggers.len() as f64 * (PANEL_W + PANEL_GAP) + 10.0;
    let mut body = String::new();
    let mut y = TOP;
    for &iv in &intervals {
        let loads: Vec<Load> = distinct(&r.failover, |x| x.load)
            .into_iter()
            .filter(|&l| r.failover.iter().any(|x| x.interval == iv && x.load == l))
            .collect();
        let band = impls.len() as f64 * LANE_H + BLOCK_GAP;
        let plot_h = loads.len() as f64 * band;
        let vals: Vec<f64> = r
            .failover
            .iter()
            .filter(|x| x.interval == iv)
            .filter_map(|x| x.fig.garp_ms)
            .chain(triggers.iter().filter_map(|&t| rfc_wait(iv, t)))
            .filter(|v| *v > 0.0)
            .collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min).max(0.01);
        let hi = vals.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
        let (lo, hi) = (lo.log10().floor(), hi.log10().ceil());
        let _ = writeln!(
            body,
            r#"<text x="10" y="{:.1}" font-size="14" font-weight="bold">{iv} adverts</text>"#,
            y + 16.0
        );
        let top = y + ROW_HEAD;
        for (i, load) in loads.iter().enumerate() {
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#,
                LABEL_W - 6.0,
                top + i as f64 * band + band / 2.0,
                load.name()
            );
        }
        for (p, &t) in triggers.iter().enumerate() {
            let x0 = LABEL_W + p as f64 * (PANEL_W + PANEL_GAP);
            let x = |v: f64| x0 + (v.max(1e-9).log10() - lo) / (hi - lo) * PANEL_W;
            let _ = writeln!(
                body,
                r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>
<rect x="{x0:.1}" y="{top:.1}" width="{PANEL_W}" height="{plot_h:.1}" fill="#fafafa" stroke="#999"/>"##,
                x0 + PANEL_W / 2.0,
                top - 6.0,
                t.title()
            );
            // Grid and labels at 1, 2, 5 × 10^k ms.
            for e in lo as i32..hi as i32 + 1 {
                for m in [1.0, 2.0, 5.0] {
                    let v = m * 10f64.powi(e);
                    if v.log10() > hi + 1e-9 {
                        continue;
                    }
                    let gx = x(v);
                    let _ = writeln!(
                        body,
                        r##"<line x1="{gx:.1}" y1="{top:.1}" x2="{gx:.1}" y2="{:.1}" stroke="{}"/>
<text x="{gx:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"##,
                        top + plot_h,
                        if m == 1.0 { "#ccc" } else { "#eee" },
                        top + plot_h + 13.0,
                        tick(v)
                    );
                }
            }
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">ms (log scale)</text>"#,
                x0 + PANEL_W / 2.0,
                top + plot_h + 25.0
            );
            if let Some(w) = rfc_wait(iv, t) {
                let wx = x(w);
                let _ = writeln!(
                    body,
                    r##"<line x1="{wx:.1}" y1="{top:.1}" x2="{wx:.1}" y2="{:.1}" stroke="#555" stroke-dasharray="4 3"/>"##,
                    top + plot_h
                );
            }
            for (i, &load) in loads.iter().enumerate() {
                for (k, &imp) in impls.iter().enumerate() {
                    let ly = top + i as f64 * band + BLOCK_GAP / 2.0 + (k as f64 + 0.5) * LANE_H;
                    let color = color(imp);
                    let runs: Vec<_> = r.runs(imp, iv, t, load).collect();
                    for v in runs.iter().filter_map(|x| x.fig.garp_ms) {
                        let _ = writeln!(
                            body,
                            r#"<circle cx="{:.1}" cy="{ly:.1}" r="2.6" fill="{color}" fill-opacity="0.55"/>"#,
                            x(v)
                        );
                    }
                    if let Some(s) = summary(runs.iter().filter_map(|x| x.fig.garp_ms)) {
                        let mx = x(s.median);
                        let _ = writeln!(
                            body,
                            r#"<line x1="{mx:.1}" y1="{:.1}" x2="{mx:.1}" y2="{:.1}" stroke="{color}" stroke-width="2.5"/>"#,
                            ly - 4.5,
                            ly + 4.5
                        );
                    }
                    let missed = runs.iter().filter(|x| x.fig.garp_ms.is_none()).count();
                    if missed > 0 {
                        let _ = writeln!(
                            body,
                            r#"<text x="{:.1}" y="{:.1}" font-size="10" fill="{color}" text-anchor="end">{missed}× none</text>"#,
                            x0 + PANEL_W - 3.0,
                            ly + 3.5
                        );
                    }
                }
            }
        }
        y = top + plot_h + AXIS_H + 10.0;
    }
    let mut legend = String::new();
    for (k, &imp) in impls.iter().enumerate() {
        let color = color(imp);
        let lx = LABEL_W + k as f64 * 170.0;
        let _ = writeln!(
            legend,
            r#"<circle cx="{lx:.1}" cy="38" r="4" fill="{color}"/><text x="{:.1}" y="42" font-size="12">{}</text>"#,
            lx + 8.0,
            imp.short()
        );
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{:.0}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="15" font-weight="bold">Trigger → first gratuitous ARP from the new master (dots: runs, bar: median, dashed: RFC wait for priority {BACKUP_PRIO})</text>
{legend}{body}</svg>
"##,
        y + 10.0
    )
}

fn tick(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}s", v / 1000.0)
    } else {
        format!("{v}")
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

    fn results() -> Results {
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
                    },
                    load_stats: LoadStats::default(),
                });
            }
            r.spurious.push(SpuriousRun {
                imp,
                load: Load::VrrpMax,
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
                });
            }
        }
        r
    }

    #[test]
    fn markdown_has_every_table_and_the_targets() {
        let h = Header {
            machine: "test box".into(),
            date: "today".into(),
            command: "cargo xtask bench".into(),
            matrix: "m".into(),
            minutes: 1.0,
            busy_before: 3.0,
        };
        let md = markdown(&h, &results());
        for needle in [
            "- Machine: test box",
            "| Master_Down precision ≤ 1 ms at p99, every load | +0.25 ms (10 ms adverts, link cut, none) | met |",
            "| no spurious failover under any load | 0 in 30 s of 1 loads | met |",
            "| RSS ≤ 10 MB | 4.0 MB (10 ms adverts, backup) | met |",
            "| 10 ms | link cut | 36.1 | none | 37.0 / 37.5 (1 not seen) | 37.0 / 37.5 (1 not seen) |",
            "| vrrp-max (VRRP adverts for 50 other VRIDs, unbounded, two senders) | 0.0 (0 in 30 s) |",
            "| 10 ms | backup | 0.50 | 1.00 | 100 | 100 | 4.0 | 4.0 |",
        ] {
            assert!(md.contains(needle), "{needle}\n---\n{md}");
        }
        let csv = failover_csv(&results());
        assert_eq!(csv.lines().count(), 7);
        assert!(
            csv.contains("\nvrrp-agent,10,link cut,none,2,,37.000,0.250,"),
            "{csv}"
        );
    }

    #[test]
    fn svg_is_well_formed_enough() {
        let svg = svg(&results());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 4 + 2);
        assert!(svg.contains("1× none"));
    }
}
