//! Prometheus metrics (`--metrics-listen ADDR:PORT`, opt-in): `GET /metrics` in the text
//! format, built from the event loop's [`Snapshot`] at each scrape. The names, labels and values
//! are those of mehdy/keepalived-exporter for VRRP, so dashboards and alerts made for keepalived
//! keep working when the scrape target changes; `vrrp_agent_*` is what only this agent knows.
//! HTTP is the least a scraper needs: one request per connection, GET only.
use std::{
    io,
    net::SocketAddr,
    sync::{atomic::AtomicU64, Arc},
    time::Duration,
};

use prometheus_client::{
    encoding::{text::encode, EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, MetricType},
    registry::Registry,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{oneshot, Semaphore},
};

use crate::{
    agent::{Input, Inputs},
    control::Snapshot,
    instance::Status,
    task::Stop,
};

type Labels = Vec<(&'static str, String)>;

/// keepalived's state numbers, as the exporter reports them.
fn state_number(state: &str) -> i64 {
    match state {
        "BACKUP" => 1,
        "MASTER" => 2,
        "FAULT" => 3,
        _ => 0,
    }
}

/// The exporter's per-instance counters: name without `_total`, and help; their values come
/// from [`counter_values`], in this order.
const COUNTERS: [(&str, &str); 14] = [
    (
        "keepalived_advertisements_received",
        "Advertisements received",
    ),
    ("keepalived_advertisements_sent", "Advertisements sent"),
    ("keepalived_become_master", "Became master"),
    ("keepalived_release_master", "Released master"),
    (
        "keepalived_priority_zero_received",
        "Priority zero received",
    ),
    ("keepalived_priority_zero_sent", "Priority zero sent"),
    ("keepalived_packet_length_errors", "Packet length errors"),
    (
        "keepalived_advertisements_interval_errors",
        "Advertisement interval errors",
    ),
    ("keepalived_ip_ttl_errors", "TTL errors"),
    ("keepalived_invalid_type_received", "Invalid type errors"),
    ("keepalived_address_list_errors", "Address list errors"),
    (
        "keepalived_authentication_invalid",
        "Authentication invalid",
    ),
    (
        "keepalived_authentication_mismatch",
        "Authentication mismatch",
    ),
    (
        "keepalived_authentication_failure",
        "Authentication failure",
    ),
];

/// The values of [`COUNTERS`] for instance `i`; the error counters from our reject reasons.
fn counter_values(i: &Status) -> [u64; 14] {
    let c = &i.counters;
    let by =
        |reasons: &[&str]| -> u64 { reasons.iter().filter_map(|r| c.rejected_by.get(r)).sum() };
    // On the kernel path the kernel counts every valid advert; the agent sees the urgent ones.
    let received = i.kernel.as_ref().map_or(c.adverts_received, |k| k.adverts);
    [
        received,
        c.adverts_sent,
        c.became_master,
        c.released_master,
        c.priority_zero_received,
        c.priority_zero_sent,
        by(&["length", "truncated"]),
        by(&["interval mismatch"]),
        by(&["TTL"]),
        by(&["VRRP type"]),
        by(&["address list"]),
        by(&["auth AH"]),
        by(&["auth type"]),
        by(&["password"]),
    ]
}

/// One instance's histogram: its labels, the sum and count of the gaps, (bound, count) buckets.
type GapHistogram = (Labels, f64, u64, Vec<(f64, u64)>);

/// `vrrp_agent_advert_gap_seconds`: the kernel's buckets of each instance, as histograms.
#[derive(Debug)]
struct GapHistograms(Vec<GapHistogram>);

impl EncodeMetric for GapHistograms {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        for (labels, sum, count, buckets) in &self.0 {
            encoder
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The text a scrape gets.
pub fn encode_snapshot(s: &Snapshot) -> String {
    let mut registry = Registry::default();
    let up = Gauge::<i64>::default();
    up.set(1);
    registry.register("keepalived_up", "Status", up);

    let labels = |i: &Status| -> Labels {
        vec![
            ("iname", i.name.clone()),
            ("intf", i.iface.clone()),
            ("vrid", i.vrid.to_string()),
        ]
    };
    let state = Family::<Labels, Gauge>::default();
    let excluded = Family::<Labels, Gauge>::default();
    let rejected = Family::<Labels, Counter>::default();
    let priority = Family::<Labels, Gauge>::default();
    let path = Family::<Labels, Gauge>::default();
    let kernel_rejected = Family::<Labels, Counter>::default();
    let capped = Family::<Labels, Counter>::default();
    let garps = Family::<Labels, Counter>::default();
    let mut gaps = Vec::new();
    let exporter: Vec<Family<Labels, Counter>> =
        COUNTERS.iter().map(|_| Family::default()).collect();
    for i in &s.instances {
        let l = labels(i);
        let n = state_number(&i.state);
        for (vips, family) in [(&i.vips, &state), (&i.excluded_vips, &excluded)] {
            for v in vips {
                let mut l = l.clone();
                l[1].1 = v.iface.clone();
                l.push(("ip_address", v.addr.to_string()));
                family.get_or_create(&l).set(n);
            }
        }
        for (family, value) in exporter.iter().zip(counter_values(i)) {
            family.get_or_create(&l).inc_by(value);
        }
        for (reason, count) in &i.counters.rejected_by {
            let mut l = l.clone();
            l.push(("reason", (*reason).to_owned()));
            rejected.get_or_create(&l).inc_by(*count);
        }
        priority.get_or_create(&l).set(i64::from(i.priority));
        let mut lp = l.clone();
        lp.push(("path", i.receive_path.to_owned()));
        path.get_or_create(&lp).set(1);
        if let Some(k) = &i.kernel {
            kernel_rejected.get_or_create(&l).inc_by(k.rejected);
            let buckets: Vec<(f64, u64)> = (k.advert_gaps.iter())
                .map(|b| (b.le_secs.unwrap_or(f64::MAX), b.count))
                .collect();
            let count = buckets.iter().map(|(_, n)| n).sum();
            gaps.push((l.clone(), k.advert_gap_sum_secs, count, buckets));
        }
        capped.get_or_create(&l).inc_by(i.counters.intervals_capped);
        garps.get_or_create(&l).inc_by(i.counters.garps_sent);
    }
    registry.register("keepalived_vrrp_state", "State of vrrp", state);
    registry.register(
        "keepalived_vrrp_excluded_state",
        "State of vrrp with excluded VIP",
        excluded,
    );
    for ((name, help), family) in COUNTERS.into_iter().zip(exporter) {
        registry.register(name, help, family);
    }
    let scripts = Family::<Labels, Gauge>::default();
    let runs = Family::<Labels, Counter>::default();
    let failures = Family::<Labels, Counter>::default();
    let took = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for c in &s.checks {
        let l = vec![("name", c.name.clone())];
        // The exporter's BAD 0, GOOD 1; a check without a result yet is not GOOD.
        scripts.get_or_create(&l).set(i64::from(c.up == Some(true)));
        runs.get_or_create(&l).inc_by(c.runs);
        for (kind, n) in &c.failures {
            let mut l = l.clone();
            l.push(("kind", (*kind).to_owned()));
            failures.get_or_create(&l).inc_by(*n);
        }
        if let Some(ms) = c.last_run_ms {
            took.get_or_create(&l).set(ms / 1000.0);
        }
    }
    registry.register("keepalived_script_status", "Tracker Script Status", scripts);
    registry.register("vrrp_agent_check_runs", "Runs of each check", runs);
    registry.register(
        "vrrp_agent_check_failures",
        "Failed runs of each check, by kind (exit status, signal, timeout, cannot run, no \
         process, connection, HTTP status, not HTTP)",
        failures,
    );
    registry.register(
        "vrrp_agent_check_duration_seconds",
        "How long the last run of each check took",
        took,
    );
    registry.register(
        "vrrp_agent_rejected",
        "Adverts the agent rejected, by the check that failed",
        rejected,
    );
    registry.register(
        "vrrp_agent_kernel_rejected",
        "Adverts the kernel program rejected (every one; the agent sees one a second)",
        kernel_rejected,
    );
    registry.register(
        "vrrp_agent_priority",
        "Priority in force (tracked checks and interfaces applied)",
        priority,
    );
    registry.register(
        "vrrp_agent_receive_path",
        "1 for the receive path in use: kernel (XDP or TC ingress) or raw socket",
        path,
    );
    registry.register(
        "vrrp_agent_gratuitous_arps_sent",
        "Gratuitous ARPs sent (each VIP once per repeat)",
        garps,
    );
    registry.register(
        "vrrp_agent_intervals_capped",
        "VRRPv3 master intervals above max_adopted_interval, adopted as that maximum",
        capped,
    );
    registry.register(
        "vrrp_agent_advert_gap_seconds",
        "Gaps between the master's consecutive adverts, timed by the kernel (kernel path)",
        GapHistograms(gaps),
    );
    let build = Family::<Labels, Gauge>::default();
    let built_in = if crate::dataplane::BUILT_IN {
        "yes"
    } else {
        "no"
    };
    build
        .get_or_create(&vec![
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("commit", env!("VRRP_GIT_COMMIT").to_owned()),
            ("xdp_program", built_in.to_owned()),
        ])
        .set(1);
    registry.register("vrrp_agent_build_info", "The running build", build);
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &registry);
    text
}

/// Connections served at once; more are closed at once (a scraper needs one).
const CONNECTIONS: usize = 16;
/// A kept-alive connection with no request for this long is closed (Prometheus scrapes every
/// 15 s to 1 min by default and reconnects when it must).
const IDLE: Duration = Duration::from_secs(120);

/// Serves `GET /metrics` on `addr`. A port that is taken is an error at start.
pub async fn serve(addr: SocketAddr, inputs: &Inputs) -> io::Result<Stop> {
    let listener = TcpListener::bind(addr).await?;
    let inputs = inputs.clone();
    let slots = Arc::new(Semaphore::new(CONNECTIONS));
    Ok(Stop::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, say: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let inputs = inputs.clone();
            tokio::spawn(async move {
                serve_connection(stream, inputs).await;
                drop(slot);
            });
        }
    }))
}

/// Answers the requests of one connection, kept alive as HTTP/1.1 wants: a scraper such as
/// Prometheus reuses it, which saves a handshake, an accept and a close per scrape.
async fn serve_connection(mut stream: TcpStream, inputs: Inputs) {
    let mut pending = Vec::new();
    loop {
        let Some(head) = next_head(&mut stream, &mut pending).await else {
            return;
        };
        let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
        let close = line.ends_with(b"HTTP/1.0")
            || String::from_utf8_lossy(&head)
                .to_ascii_lowercase()
                .contains("\r\nconnection: close");
        let (status, body) = if line.starts_with(b"GET /metrics ") {
            let (tx, rx) = oneshot::channel();
            if inputs.send(Input::Status(tx)).await.is_err() {
                return;
            }
            match rx.await {
                Ok(snapshot) => ("200 OK", encode_snapshot(&snapshot)),
                Err(_) => return,
            }
        } else {
            ("404 Not Found", "GET /metrics\n".to_owned())
        };
        let connection = if close { "close" } else { "keep-alive" };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; \
             charset=utf-8\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

/// The next request's head (up to its blank line); what follows stays in `pending`. `None` at
/// the end of the connection, after [`IDLE`], or when a head takes more than 8 KiB or 5 s.
async fn next_head(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = |p: &[u8]| p.windows(4).position(|w| w == b"\r\n\r\n");
    let mut buf = [0u8; 1024];
    let mut limit = IDLE;
    loop {
        if let Some(at) = end(pending) {
            let rest = pending.split_off(at + 4);
            return Some(std::mem::replace(pending, rest));
        }
        if pending.len() > 8192 {
            return None;
        }
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => pending.extend_from_slice(&buf[..n]),
            _ => return None,
        }
        // A request begun must end soon.
        limit = Duration::from_secs(5);
    }
}
