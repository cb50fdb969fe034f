//! Prometheus metrics of the service: requests by route and status, a
//! latency histogram, the model version, reloads. Plain atomics and one
//! small mutex; rendered as Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
pub struct Metrics {
    /// Route → status → count. Keyed by the route's text (the router's
    /// matched path), looked up by `&str` so a request allocates only the
    /// first time its route and status are seen.
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
    latency_count: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    pub shed: AtomicU64,
    /// The lag monitor's last reading, in microseconds.
    lag_micros: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            match m.get_mut(route) {
                Some(by_status) => *by_status.entry(status).or_insert(0) += 1,
                None => {
                    m.insert(route.to_string(), BTreeMap::from([(status, 1)]));
                }
            }
        }
        let b = BUCKETS
            .iter()
            .position(|&ub| seconds <= ub)
            .unwrap_or(BUCKETS.len());
        self.buckets[b].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how late the lag monitor was woken.
    pub fn set_lag(&self, late: std::time::Duration) {
        self.lag_micros.store(
            late.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    pub fn render(&self, version: &str, fingerprint: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP recsys_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(s, "# TYPE recsys_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for (route, by_status) in m.iter() {
                for (status, n) in by_status {
                    let _ = writeln!(
                        s,
                        "recsys_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        let _ = writeln!(s, "# HELP recsys_request_duration_seconds Request latency.");
        let _ = writeln!(s, "# TYPE recsys_request_duration_seconds histogram");
        let mut cum = 0;
        for (i, ub) in BUCKETS.iter().enumerate() {
            cum += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                s,
                "recsys_request_duration_seconds_bucket{{le=\"{ub}\"}} {cum}"
            );
        }
        cum += self.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "recsys_request_duration_seconds_bucket{{le=\"+Inf\"}} {cum}"
        );
        let _ = writeln!(
            s,
            "recsys_request_duration_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "recsys_request_duration_seconds_count {}",
            self.latency_count.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP recsys_scheduler_lag_seconds How late a task due at a time last ran: the wait of a ready request for a worker.\n# TYPE recsys_scheduler_lag_seconds gauge\nrecsys_scheduler_lag_seconds {}",
            self.lag_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "# HELP recsys_model_info The model being served.");
        let _ = writeln!(s, "# TYPE recsys_model_info gauge");
        let _ = writeln!(
            s,
            "recsys_model_info{{version=\"{version}\",fingerprint=\"{fingerprint}\"}} 1"
        );
        for (name, help, v) in [
            (
                "recsys_model_reloads_total",
                "Models swapped in.",
                &self.reloads,
            ),
            (
                "recsys_model_reload_failures_total",
                "Models refused at reload.",
                &self.reload_failures,
            ),
            (
                "recsys_requests_shed_total",
                "Requests answered 503 by the concurrency limit.",
                &self.shed,
            ),
        ] {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        s
    }
}
