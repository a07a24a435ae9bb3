//! The change streams' load test: opens many `GET /presence/v1/changes/stream` connections to
//! a running `presence`, then makes Sets one at a time and measures, for every stream, how
//! long each Set's change took to reach it (from just before the Set was sent to the moment
//! its event was read). Prints the latencies' percentiles over every stream and Set.
//! `benches/load/streams.sh` runs it beside a fresh server and measures the server's memory.
//!
//! ```text
//! cargo run --release --example streams -- ADDRESS LOGIN:PASSWORD STREAMS SETS ASSOCIATE
//! ```
//!
//! Traffic goes to the address given (loopback in the script), bounded by STREAMS and SETS.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// When each stream read each change, by revision: filled by the streams' tasks.
type Arrivals = Arc<Mutex<Vec<(i64, Instant)>>>;

/// A stream quiet this long after the Sets is done: its task hands over what it saw.
const SETTLE: Duration = Duration::from_secs(3);

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, address, credentials, streams, sets, associate] = &args[..] else {
        eprintln!("usage: streams ADDRESS LOGIN:PASSWORD STREAMS SETS ASSOCIATE");
        std::process::exit(2);
    };
    let address: SocketAddr = address.parse().expect("an address");
    let streams: usize = streams.parse().expect("a number of streams");
    let sets: usize = sets.parse().expect("a number of Sets");
    let associate: i32 = associate.parse().expect("an associate id");
    let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(address, basic, streams, sets, associate))
}

async fn run(
    address: SocketAddr,
    basic: String,
    streams: usize,
    sets: usize,
    associate: i32,
) -> std::io::Result<()> {
    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::with_capacity(streams * sets)));
    let opened = Arc::new(Barrier::new(streams + 1));
    let started = Instant::now();
    for _ in 0..streams {
        let (basic, arrivals, opened) = (basic.clone(), arrivals.clone(), opened.clone());
        tokio::spawn(async move {
            let stream = open(address, &basic).await;
            opened.wait().await;
            if let Ok(stream) = stream {
                read_events(stream, &arrivals).await;
            }
        });
        // Not all at once: the server's accept backlog is finite.
        tokio::task::yield_now().await;
    }
    opened.wait().await;
    eprintln!(
        "{streams} streams open in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("streams_open {streams}");
    // Let the server settle, and the script read its memory with every stream open.
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("ready");
    let mut sent = Vec::with_capacity(sets);
    for n in 0..sets {
        let status = if n % 2 == 0 {
            "StatusNotAvailable"
        } else {
            "StatusNormal"
        };
        let body = format!(
            r#"{{"AssociateId":{associate},"UserPresenceStatus":{{"Status":"{status}","Message":"set {n}"}}}}"#
        );
        let at = Instant::now();
        let revision = set(address, &basic, &body).await?;
        sent.push((revision, at));
        // Each Set's change is measured alone: the next waits until this one has spread.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The streams' tasks hand over what they saw once quiet for SETTLE (the keep-alive
    // comes only every 15 s).
    tokio::time::sleep(SETTLE + Duration::from_secs(2)).await;
    let arrivals = arrivals.lock().expect("not poisoned").clone();
    let mut latencies: Vec<f64> = Vec::with_capacity(arrivals.len());
    for (revision, at) in &arrivals {
        if let Some((_, sent_at)) = sent.iter().find(|(r, _)| r == revision) {
            latencies.push(at.duration_since(*sent_at).as_secs_f64() * 1000.0);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let expected = streams * sets;
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!("deliveries {} of {expected}", latencies.len());
    if !latencies.is_empty() {
        println!(
            "latency_ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
            percentile(0.50),
            percentile(0.90),
            percentile(0.99),
            latencies[latencies.len() - 1]
        );
    }
    Ok(())
}

/// Opens a stream and reads its response head.
async fn open(address: SocketAddr, basic: &str) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!(
        "GET /presence/v1/changes/stream HTTP/1.1\r\nHost: bench\r\nAuthorization: Basic {basic}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        eprintln!("{}", String::from_utf8_lossy(&head));
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    Ok(stream)
}

/// Notes when each change's event arrives (`id: N` lines; one read holds one chunk here), kept
/// by the task and handed over when the stream ends, so that reading costs no lock.
async fn read_events(mut stream: TcpStream, arrivals: &Arrivals) {
    let mut buffer = vec![0u8; 4096];
    let mut seen = Vec::new();
    loop {
        let read = match tokio::time::timeout(SETTLE, stream.read(&mut buffer)).await {
            Ok(Ok(read)) if read > 0 => read,
            // Ended, failed, or quiet for long enough: every Set has spread.
            _ => break,
        };
        let at = Instant::now();
        let mut rest = &buffer[..read];
        while let Some(start) = find(rest, b"id: ") {
            let digits = &rest[start + 4..];
            let end = digits
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(digits.len());
            if let Some(revision) = std::str::from_utf8(&digits[..end])
                .ok()
                .and_then(|d| d.parse().ok())
            {
                seen.push((revision, at));
            }
            rest = &digits[end..];
        }
    }
    arrivals.lock().expect("not poisoned").extend(seen);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One SuperOffice Set; the revision of its change, from the change stream's point of view:
/// read back from `GET /presence/v1/users/{id}` (its `revision`).
async fn set(address: SocketAddr, basic: &str, body: &str) -> std::io::Result<i64> {
    let request = format!(
        "POST /api/v1/Agents/User/SetUserPresenceStatus HTTP/1.1\r\nHost: bench\r\nAuthorization: Basic {basic}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(address, &request).await?;
    let associate = body
        .split("\"AssociateId\":")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("0");
    let read = format!(
        "GET /presence/v1/users/{associate} HTTP/1.1\r\nHost: bench\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n"
    );
    let answer = exchange(address, &read).await?;
    let revision = answer
        .split("\"revision\":")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(-1);
    Ok(revision)
}

async fn exchange(address: SocketAddr, request: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
