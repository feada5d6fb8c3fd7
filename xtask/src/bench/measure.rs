//! The figures, computed from what the client saw on the wire (one clock for every router) and
//! the trigger times (the same clock, taken right before each trigger's action).
use std::{fmt, net::IpAddr, str::FromStr};

use anyhow::{bail, Result};

use super::pcap::{Frame, Kind, Nanos};

pub const VRID: u8 = 51;

/// An advert interval; VRRPv3 counts it in centiseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub ms: u32,
}

impl Interval {
    pub fn ms_f64(self) -> f64 {
        f64::from(self.ms)
    }

    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ms.into())
    }

    /// RFC 9568 §6.1: Skew_Time of a backup with priority `prio`, in ms.
    pub fn skew_ms(self, prio: u8) -> f64 {
        f64::from(256 - u16::from(prio)) * self.ms_f64() / 256.0
    }

    /// RFC 9568 §6.1: Master_Down_Interval of a backup with priority `prio`, in ms.
    pub fn master_down_ms(self, prio: u8) -> f64 {
        3.0 * self.ms_f64() + self.skew_ms(prio)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ms.is_multiple_of(1000) {
            write!(f, "{} s", self.ms / 1000)
        } else {
            write!(f, "{} ms", self.ms)
        }
    }
}

impl FromStr for Interval {
    type Err = anyhow::Error;

    /// "10ms", "100ms", "1s", "2.5s".
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let ms = if let Some(v) = s.strip_suffix("ms") {
            v.trim().parse::<f64>()?
        } else if let Some(v) = s.strip_suffix('s') {
            v.trim().parse::<f64>()? * 1000.0
        } else {
            bail!("{s:?}: want a duration such as 10ms or 1s");
        };
        // VRRPv3: 10 ms to 40.95 s, in centiseconds.
        if !(10.0..=40_950.0).contains(&ms) || ms % 10.0 != 0.0 {
            bail!("{s:?}: VRRPv3 adverts are 10 ms to 40.95 s in steps of 10 ms");
        }
        Ok(Interval { ms: ms as u32 })
    }
}

/// One handover: who the client should see take over, from whom.
pub struct Handover {
    pub vip: IpAddr,
    /// The new and the old master's advert sources (IPv6: link-local).
    pub new_ip: IpAddr,
    pub new_mac: [u8; 6],
    pub new_prio: u8,
    pub old_ip: IpAddr,
    /// Whether the RFC fixes when the new master must speak (Master_Down_Interval or Skew_Time
    /// after the old master's last advert); on failback that is the implementation's choice.
    pub precision: bool,
}

/// Milliseconds from the trigger; None when the client never saw it before the next trigger.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Failover {
    /// → first gratuitous ARP (IPv6: Neighbor Advertisement) from the new master.
    pub garp_ms: Option<f64>,
    /// → first echo reply from the VIP sent by the new master.
    pub reply_ms: Option<f64>,
    /// (new master's first advert) − (old master's last advert) − the RFC's wait for it.
    pub precision_ms: Option<f64>,
    /// → the new master's decision, from its log (vrrp-agent's lines carry microseconds).
    pub detect_ms: Option<f64>,
}

/// The figures of the handover triggered at `trigger`, from frames before `until`.
pub fn failover(
    frames: &[Frame],
    trigger: Nanos,
    until: Nanos,
    h: &Handover,
    iv: Interval,
) -> Failover {
    let window = || frames.iter().filter(|f| f.t >= trigger && f.t < until);
    let ms = |f: &Frame| (f.t - trigger) as f64 / 1e6;
    let garp = window().find(|f| {
        f.src_mac == h.new_mac && matches!(f.kind, Kind::Announce { vip } if vip == h.vip)
    });
    let reply = window().find(|f| {
        f.src_mac == h.new_mac && matches!(f.kind, Kind::EchoReply { src } if src == h.vip)
    });
    Failover {
        garp_ms: garp.map(ms),
        reply_ms: reply.map(ms),
        precision_ms: if h.precision {
            precision(frames, window(), h, iv)
        } else {
            None
        },
        detect_ms: None,
    }
}

/// Milliseconds from `trigger` to the first "-> MASTER" line of a vrrp-agent log stamped in
/// [trigger, until): when the router decided to take over.
pub fn decision(log: &str, trigger: Nanos, until: Nanos) -> Option<f64> {
    log.lines()
        .filter(|l| l.contains("-> MASTER"))
        .filter_map(|l| utc_ns(l.split_whitespace().next()?))
        .find(|&t| t >= trigger && t < until)
        .map(|t| (t - trigger) as f64 / 1e6)
}

/// "2026-11-29T17:00:21.664414Z" (tracing's UTC time stamps) in ns since the Unix epoch.
fn utc_ns(stamp: &str) -> Option<Nanos> {
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    let nanos: i64 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3_600 + min * 60 + sec;
    Some(secs * 1_000_000_000 + nanos)
}

fn precision<'a>(
    frames: &[Frame],
    mut window: impl Iterator<Item = &'a Frame>,
    h: &Handover,
    iv: Interval,
) -> Option<f64> {
    let first = window.find(|f| advert(f, h.new_ip).is_some_and(|p| p > 0))?;
    let (last, prio) = frames
        .iter()
        .rev()
        .filter(|f| f.t < first.t)
        .find_map(|f| Some((f, advert(f, h.old_ip)?)))?;
    // Priority 0 (the old master resigned): the backup waits Skew_Time, else Master_Down_Interval.
    let wait = if prio == 0 {
        iv.skew_ms(h.new_prio)
    } else {
        iv.master_down_ms(h.new_prio)
    };
    Some((first.t - last.t) as f64 / 1e6 - wait)
}

/// The priority of an advert of our VRID sent by `src`.
fn advert(f: &Frame, src: IpAddr) -> Option<u8> {
    match f.kind {
        Kind::Advert {
            src: s,
            vrid: VRID,
            prio,
        } if s == src => Some(prio),
        _ => None,
    }
}

/// When `src` became master in [from, to] (its first advert of each mastership): a master
/// advertises every interval, so a silence longer than `gap_ms` ends a mastership. A backup that
/// went back to BACKUP needs at least Master_Down_Interval of silence from the master before it
/// speaks again, so `gap_ms` = Master_Down_Interval separates two wrong transitions.
pub fn masterships(
    frames: &[Frame],
    src: IpAddr,
    from: Nanos,
    to: Nanos,
    gap_ms: f64,
) -> Vec<Nanos> {
    let gap = (gap_ms * 1e6) as Nanos;
    let mut prev: Option<Nanos> = None;
    let mut starts = Vec::new();
    for t in adverts(frames, src, Nanos::MIN, Nanos::MAX) {
        if prev.is_none_or(|p| t - p > gap) && (from..=to).contains(&t) {
            starts.push(t);
        }
        prev = Some(t);
    }
    starts
}

/// When the client saw `src`'s adverts (priority above 0) in [from, to].
pub fn adverts(frames: &[Frame], src: IpAddr, from: Nanos, to: Nanos) -> Vec<Nanos> {
    (frames.iter())
        .filter(|f| (from..=to).contains(&f.t) && advert(f, src).is_some_and(|p| p > 0))
        .map(|f| f.t)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::pcap::{
        parse,
        tests::{advert, garp, pcap, reply, R1_MAC, R2_MAC},
    };
    use super::*;

    const R1: [u8; 4] = [198, 51, 100, 1];
    const R2: [u8; 4] = [198, 51, 100, 2];
    const VIP: [u8; 4] = [198, 51, 100, 100];
    const MS: Nanos = 1_000_000;
    const IV: Interval = Interval { ms: 10 };

    fn handover(precision: bool) -> Handover {
        Handover {
            vip: VIP.into(),
            new_ip: R2.into(),
            new_mac: R2_MAC,
            new_prio: 100,
            old_ip: R1.into(),
            precision,
        }
    }

    #[test]
    fn rfc_timers() {
        assert!((IV.skew_ms(100) - 6.09375).abs() < 1e-9);
        assert!((IV.master_down_ms(100) - 36.09375).abs() < 1e-9);
        let s: Interval = "1s".parse().unwrap();
        assert_eq!(s.to_string(), "1 s");
        assert_eq!("100ms".parse::<Interval>().unwrap().to_string(), "100 ms");
        assert!("5ms".parse::<Interval>().is_err());
        assert!("15ms".parse::<Interval>().is_err());
        assert!("10".parse::<Interval>().is_err());
    }

    #[test]
    fn link_cut_figures() {
        let t0 = 1_000 * 1_000 * MS;
        let frames = parse(&pcap(&[
            (t0 - 20 * MS, advert(R1_MAC, R1, VRID, 200)),
            (t0 - 10 * MS, advert(R1_MAC, R1, VRID, 200)),
            (t0 - 5 * MS, reply(R1_MAC, VIP)),
            // Another group's advert is not ours.
            (t0 + 10 * MS, advert(R1_MAC, R2, 7, 100)),
            (t0 + 26 * MS + 500_000, advert(R2_MAC, R2, VRID, 100)),
            (t0 + 26 * MS + 600_000, garp(R2_MAC, VIP)),
            (t0 + 27 * MS, reply(R2_MAC, VIP)),
        ]))
        .unwrap();
        let f = failover(&frames, t0, t0 + 1000 * MS, &handover(true), IV);
        assert_eq!(f.garp_ms, Some(26.6));
        assert_eq!(f.reply_ms, Some(27.0));
        // 36.5 ms after r1's last advert, 36.09375 expected.
        assert!((f.precision_ms.unwrap() - 0.40625).abs() < 1e-6, "{f:?}");
        let no_precision = failover(&frames, t0, t0 + 1000 * MS, &handover(false), IV);
        assert_eq!(no_precision.precision_ms, None);
        // Nothing before the next trigger.
        assert_eq!(
            failover(&frames, t0, t0 + 20 * MS, &handover(true), IV),
            Failover::default()
        );
    }

    #[test]
    fn resignation_waits_skew_time() {
        let t0 = 5_000 * MS;
        let frames = parse(&pcap(&[
            (t0 - 10 * MS, advert(R1_MAC, R1, VRID, 200)),
            (t0 + MS, advert(R1_MAC, R1, VRID, 0)),
            (t0 + 8 * MS, advert(R2_MAC, R2, VRID, 100)),
        ]))
        .unwrap();
        let f = failover(&frames, t0, t0 + 100 * MS, &handover(true), IV);
        assert!((f.precision_ms.unwrap() - (7.0 - 6.09375)).abs() < 1e-6);
        assert_eq!(f.garp_ms, None);
    }

    #[test]
    fn the_decision_is_read_from_the_log() {
        let log =
            "2026-11-29T17:00:21.500000Z  INFO vrrp_agent::instance: INIT -> BACKUP: startup\n\
                   2026-11-29T17:00:22.000500Z  INFO vrrp_agent::instance: BACKUP -> MASTER: x\n\
                   2026-11-29T17:00:25.000000Z  INFO vrrp_agent::instance: BACKUP -> MASTER: y\n";
        assert_eq!(utc_ns("1970-01-02T00:00:01Z"), Some(86_401_000_000_000));
        let t = utc_ns("2026-11-29T17:00:22Z").unwrap();
        assert_eq!(t, 1_795_971_622_000_000_000);
        assert_eq!(decision(log, t, t + 1_000_000_000), Some(0.5));
        assert_eq!(decision(log, t + MS, t + 2 * MS), None);
        assert_eq!(decision(log, t + MS, Nanos::MAX), Some(2_999.0));
    }

    #[test]
    fn counts_masterships_not_adverts() {
        let at = |ms: i64| (ms * MS, advert(R2_MAC, R2, VRID, 100));
        let frames = parse(&pcap(&[
            at(100), // before the window: not counted, but its mastership goes on
            at(110),
            at(120),
            at(500), // a new one
            at(510),
            at(900),
            (950 * MS, advert(R2_MAC, R2, VRID, 0)),
            at(2000), // after the window
        ]))
        .unwrap();
        assert_eq!(
            masterships(&frames, R2.into(), 115 * MS, 1000 * MS, 36.1),
            [500 * MS, 900 * MS]
        );
        assert_eq!(masterships(&frames, R2.into(), 0, 3000 * MS, 36.1).len(), 4);
        assert_eq!(
            adverts(&frames, R2.into(), 115 * MS, 1000 * MS),
            [120 * MS, 500 * MS, 510 * MS, 900 * MS],
            "in the window, priority 0 left out"
        );
    }
}
