//! `recsys loadtest`: drives a recsys service over loopback and reports
//! throughput and latency percentiles.
//!
//! N connections (HTTP/1.1 keep-alive, a minimal client on tokio so the
//! generator itself stays cheap) send `GET /v1/users/{id}/recommendations`
//! for users drawn at random. Closed loop: each connection sends its next
//! request when the previous answer arrives (as wrk). Open loop: requests are
//! scheduled at a fixed total rate and latency is measured from each
//! request's *scheduled* start, so a stall shows up in the percentiles
//! instead of silently lowering the rate. Runs are bounded in time and count,
//! and only loopback addresses are accepted. It can also replace the model
//! pointer during the run to exercise hot reloads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub addr: SocketAddr,
    pub connections: usize,
    pub duration: Duration,
    /// Open loop at this many requests per second in total; `None`: closed loop.
    pub rate: Option<f64>,
    /// Stop after this many requests in total.
    pub max_requests: u64,
    /// User ids to draw from.
    pub users: Vec<String>,
    /// Query string appended to each request (`n=10&exclude_seen=true`).
    pub query: String,
    /// Every this often, atomically rewrite `reload_path` (same content) so
    /// the service reloads.
    pub reload_every: Option<Duration>,
    pub reload_path: Option<PathBuf>,
    pub seed: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadReport {
    pub requests: u64,
    pub ok: u64,
    pub non_2xx: u64,
    pub errors: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Percentiles of the 2xx responses only (under overload the 503s are fast).
    pub ok_p50_ms: f64,
    pub ok_p99_ms: f64,
    pub reloads_triggered: u64,
}

/// Reads one HTTP/1.1 response (status and body by Content-Length); returns the status.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    let mut tmp = [0u8; 16384];
    let header_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head =
        std::str::from_utf8(&buf[..header_end]).map_err(|_| std::io::Error::other("bad header"))?;
    let status: u16 = head
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
        })
        .ok_or_else(|| std::io::Error::other("no content-length"))?;
    while buf.len() < header_end + len {
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    Ok(status)
}

struct Shared {
    stop: AtomicBool,
    sent: AtomicU64,
    ok: AtomicU64,
    non_2xx: AtomicU64,
    errors: AtomicU64,
}

async fn connection(
    o: Arc<LoadOptions>,
    sh: Arc<Shared>,
    conn: usize,
    ready: Arc<tokio::sync::Barrier>,
    start: Arc<std::sync::OnceLock<Instant>>,
) -> Vec<u32> {
    let mut lat = Vec::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        o.seed ^ (conn as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    // Connect before the clock starts (as wrk does): connection setup is not
    // request latency.
    let mut stream: Option<TcpStream> =
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(o.addr))
            .await
            .ok()
            .and_then(|r| r.ok());
    if let Some(s) = &stream {
        let _ = s.set_nodelay(true);
    }
    ready.wait().await;
    let start = *start.get_or_init(Instant::now);
    let mut buf = Vec::with_capacity(16384);
    // Open loop: this connection's share of the rate.
    let interval = o
        .rate
        .map(|r| Duration::from_secs_f64(o.connections as f64 / r.max(1e-9)));
    let mut k: u64 = 0;
    while !sh.stop.load(Ordering::Relaxed) {
        let scheduled = match interval {
            Some(iv) => {
                let at =
                    start + iv.mul_f64(k as f64) + iv.mul_f64(conn as f64 / o.connections as f64);
                k += 1;
                tokio::time::sleep_until(at.into()).await;
                at
            }
            None => Instant::now(),
        };
        if sh.stop.load(Ordering::Relaxed)
            || sh.sent.fetch_add(1, Ordering::Relaxed) >= o.max_requests
        {
            break;
        }
        if stream.is_none() {
            match TcpStream::connect(o.addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(_) => {
                    sh.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let user = &o.users[rng.gen_range(0..o.users.len())];
        let req = format!(
            "GET /v1/users/{user}/recommendations?{} HTTP/1.1\r\nHost: {}\r\n\r\n",
            o.query, o.addr
        );
        let s = stream.as_mut().expect("connected above");
        let res = async {
            s.write_all(req.as_bytes()).await?;
            read_response(s, &mut buf).await
        }
        .await;
        match res {
            Ok(status) => {
                // The top bit marks a non-2xx answer.
                let us = scheduled.elapsed().as_micros().min((u32::MAX >> 1) as u128) as u32;
                lat.push(if (200..300).contains(&status) {
                    us
                } else {
                    us | 1 << 31
                });
                if (200..300).contains(&status) {
                    sh.ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    sh.non_2xx.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                sh.errors.fetch_add(1, Ordering::Relaxed);
                stream = None;
            }
        }
    }
    lat
}

fn touch_pointer(path: &std::path::Path) -> Result<()> {
    let content = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    crate::util::atomic_write(path, |w| {
        std::io::Write::write_all(w, &content).map_err(|e| Error::io(path, e))
    })
}

/// Runs the load test (on the caller's tokio runtime).
pub async fn run(o: LoadOptions) -> Result<LoadReport> {
    if !o.addr.ip().is_loopback() {
        return Err(Error::Other(format!(
            "{}: the load generator only targets loopback addresses",
            o.addr
        )));
    }
    if o.connections == 0 || o.connections > 20_000 {
        return Err(Error::param(
            "connections",
            o.connections,
            "must be in 1..=20000",
        ));
    }
    if o.duration.is_zero() || o.duration > Duration::from_secs(3600) {
        return Err(Error::param(
            "duration",
            format!("{:?}", o.duration),
            "must be in (0, 1h]",
        ));
    }
    if o.users.is_empty() {
        return Err(Error::Other("no user ids to request".into()));
    }
    if o.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(Error::param("rate", o.rate.unwrap_or(0.0), "must be > 0"));
    }
    let o = Arc::new(o);
    let sh = Arc::new(Shared {
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        non_2xx: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let ready = Arc::new(tokio::sync::Barrier::new(o.connections + 1));
    let start_at = Arc::new(std::sync::OnceLock::new());
    let tasks: Vec<_> = (0..o.connections)
        .map(|c| {
            tokio::spawn(connection(
                Arc::clone(&o),
                Arc::clone(&sh),
                c,
                Arc::clone(&ready),
                Arc::clone(&start_at),
            ))
        })
        .collect();
    ready.wait().await;
    let start = *start_at.get_or_init(Instant::now);
    let mut reloads = 0;
    let deadline = start + o.duration;
    let mut next_reload = o.reload_every.map(|d| start + d);
    while Instant::now() < deadline && sh.sent.load(Ordering::Relaxed) < o.max_requests {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let (Some(at), Some(path)) = (next_reload, &o.reload_path) {
            if Instant::now() >= at {
                touch_pointer(path)?;
                reloads += 1;
                next_reload = o.reload_every.map(|d| at + d);
            }
        }
    }
    sh.stop.store(true, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    let mut lat: Vec<u32> = Vec::new();
    for t in tasks {
        // A connection stuck on a dead server must not hang the report.
        if let Ok(Ok(l)) = tokio::time::timeout(Duration::from_secs(5), t).await {
            lat.extend(l);
        }
    }
    let mut ok_lat: Vec<u32> = lat.iter().copied().filter(|l| l >> 31 == 0).collect();
    let mut lat: Vec<u32> = lat.into_iter().map(|l| l & !(1 << 31)).collect();
    lat.sort_unstable();
    ok_lat.sort_unstable();
    let at = |v: &[u32], p: f64| {
        if v.is_empty() {
            0.0
        } else {
            v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        }
    };
    let pct = |p: f64| at(&lat, p);
    let (ok, non_2xx, errors) = (
        sh.ok.load(Ordering::Relaxed),
        sh.non_2xx.load(Ordering::Relaxed),
        sh.errors.load(Ordering::Relaxed),
    );
    Ok(LoadReport {
        requests: ok + non_2xx,
        ok,
        non_2xx,
        errors,
        seconds,
        requests_per_second: (ok + non_2xx) as f64 / seconds,
        p50_ms: pct(0.5),
        p90_ms: pct(0.9),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        ok_p50_ms: at(&ok_lat, 0.5),
        ok_p99_ms: at(&ok_lat, 0.99),
        reloads_triggered: reloads,
    })
}
