//! failover.svg: trigger → first GARP, one dot per run, on a log scale.
use std::fmt::Write as _;

use super::{distinct, rfc_wait, summary, Results};
use crate::bench::{loads::Load, Impl, BACKUP_PRIO};

fn color(imp: Impl) -> &'static str {
    match imp {
        Impl::Ours => "#1f77b4",
        Impl::Liveness => "#2ca02c",
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
    use super::super::tests::results;
    use super::*;

    #[test]
    fn svg_is_well_formed_enough() {
        let svg = svg(&results());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 4 + 2);
        assert!(svg.contains("1× none"));
    }
}
