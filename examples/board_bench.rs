//! The presence board's benchmark, against a running `presence` with many Service users, in
//! headless Chromium: how long the board takes to render, and how long a Set takes to show on
//! it. `benches/board.sh` makes the server and runs this beside it.
//!
//! ```text
//! cargo run --release --example board_bench -- ADDRESS LOGIN:PASSWORD USERS RUNS SETS
//! ```
//!
//! 1. Sets every third of the associates 2 to USERS not present with a message, so that the
//!    board shows a mix; signs in through the page as LOGIN.
//! 2. Render: loads the board RUNS times, and reads for each the time from navigation start to
//!    the whole board's first render that the page records (`presenceBoard.renderedMs`; if
//!    the page records none, the time it was seen ready, up to a poll later).
//! 3. Update: with the board open, makes SETS Sets of one user, one at a time, and times each
//!    from just before it was sent to the moment its row changed in the page (a
//!    MutationObserver in the page notes it, on the page's clock, which is mapped to this
//!    program's just before each Set), and to the next frame after that.
//!
//! Prints each figure's median and 95th percentile, the machine and the command. Traffic goes
//! to the address given (loopback in the script), bounded by USERS and SETS.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

// Shared with the browser tests, which use more of it.
#[allow(dead_code)]
#[path = "../tests/api/browser.rs"]
mod browser;

/// How long a board of many users may take to load and render.
const PAGE_LOAD: Duration = Duration::from_secs(120);

/// A Set's change must show within this, or the benchmark fails.
const SHOW_WITHIN: Duration = Duration::from_secs(10);

/// Between two Sets: each change is timed alone.
const BETWEEN_SETS: Duration = Duration::from_millis(300);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, address, credentials, users, runs, sets] = &args[..] else {
        eprintln!("usage: board_bench ADDRESS LOGIN:PASSWORD USERS RUNS SETS");
        std::process::exit(2);
    };
    let address: SocketAddr = address.parse().expect("an address");
    let (login, password) = credentials.split_once(':').expect("LOGIN:PASSWORD");
    let users: i32 = users.parse().expect("a number of users");
    let runs: usize = runs.parse().expect("a number of runs");
    let sets: usize = sets.parse().expect("a number of Sets");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
    runtime.block_on(async {
        let client = Client { address, basic };
        mix_statuses(&client, users).await;
        let driver = browser::Driver::start();
        let page = driver
            .browser(
                "en-US",
                std::path::PathBuf::from("target/browser-screenshots/board_bench.png"),
                PAGE_LOAD,
            )
            .await;
        let base = format!("http://{address}/");
        page.goto(&base).await;
        page.submit_sign_in(login, password).await;
        page.wait_until_ready(PAGE_LOAD).await;
        let version = page.driver().capabilities().get("browserVersion").cloned();
        let rows = page
            .eval(
                "return document.querySelectorAll('#users tbody tr').length",
                vec![],
            )
            .await;
        let total = page
            .eval(
                "return document.querySelector('#summary')?.dataset.total ?? null",
                vec![],
            )
            .await;
        println!(
            "board: {rows} rows in the table, {} users in the summary",
            total.as_str().unwrap_or("?")
        );

        let rendered = render(&page, &base, runs).await;
        let (dom, frame) = update(&page, &client, sets).await;
        page.quit().await;

        println!(
            "machine: {} cores ({}), Chromium {}",
            std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model(),
            version.as_ref().and_then(Value::as_str).unwrap_or("?")
        );
        let mut shown = args.clone();
        shown[2] = format!("{login}:...");
        println!("command: {}", shown.join(" "));
        report("render_ms (navigation start to the whole board)", &rendered);
        report("update_ms (Set sent to its row changed)", &dom);
        report("update_frame_ms (Set sent to the next frame)", &frame);
    });
}

/// The time to render the board, each of `runs` loads.
async fn render(page: &browser::Browser, base: &str, runs: usize) -> Vec<f64> {
    let mut times = Vec::with_capacity(runs);
    for run in 1..=runs {
        // From an empty page, as a board is opened: navigation start would otherwise include
        // tearing down the board loaded before, ten thousand rows of it.
        page.goto("about:blank").await;
        page.goto(base).await;
        page.wait_until_ready(PAGE_LOAD).await;
        let measured = page
            .eval(
                "return [window.presenceBoard?.renderedMs ?? null, performance.now()]",
                vec![],
            )
            .await;
        let ms = match measured[0].as_f64() {
            Some(ms) => ms,
            None => {
                eprintln!("the page records no presenceBoard.renderedMs: the time seen ready");
                measured[1].as_f64().expect("performance.now()")
            }
        };
        eprintln!("render {run}/{runs}: {ms:.1} ms");
        times.push(ms);
    }
    times
}

/// Notes, on the page's clock, when the wanted row's status turns into the wanted one, and the
/// next frame after; looks at every change to the page, as the board may replace a row
/// rather than change it.
const OBSERVE: &str = r#"
    window.benchWant = null;
    window.benchSeen = null;
    window.benchFrame = null;
    new MutationObserver(() => {
        const want = window.benchWant;
        if (want === null || window.benchSeen !== null) return;
        const row = document.querySelector(`#users tbody tr[data-associate-id="${want.id}"]`);
        if (row && row.dataset.status === want.status) {
            window.benchSeen = performance.now();
            requestAnimationFrame(() => { window.benchFrame = performance.now(); });
        }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
    return true;
"#;

/// The time for a Set to show on the open board, each of `sets` Sets: to the row's change, and
/// to the next frame.
async fn update(page: &browser::Browser, client: &Client, sets: usize) -> (Vec<f64>, Vec<f64>) {
    let middle = page
        .eval(
            r##"const rows = document.querySelectorAll("#users tbody tr[data-associate-id]");
               return rows.length ? Number(rows[Math.floor(rows.length / 2)].dataset.associateId) : null;"##,
            vec![],
        )
        .await;
    let id = middle.as_i64().expect("a row on the board");
    eprintln!("updating associate {id}");
    page.eval(OBSERVE, vec![]).await;
    let (mut dom, mut frame) = (Vec::with_capacity(sets), Vec::with_capacity(sets));
    for n in 0..sets {
        let status = if n % 2 == 0 {
            "StatusNotAvailable"
        } else {
            "StatusNormal"
        };
        page.eval(
            "window.benchWant = { id: arguments[0], status: arguments[1] }; window.benchSeen = null; window.benchFrame = null; return true",
            vec![json!(id), json!(status)],
        )
        .await;
        // The page's clock against this program's: the page's reading is taken to be from
        // midway through the call, off by at most half the call's time.
        let before = Instant::now();
        let page_now = page.eval("return performance.now()", vec![]).await;
        let after = Instant::now();
        let midway = before + (after - before) / 2;
        let page_midway = page_now.as_f64().expect("performance.now()");

        let sent = Instant::now();
        client.set(id, status, &format!("bench {n}")).await;
        let page_sent = page_midway + (sent - midway).as_secs_f64() * 1000.0;
        let seen = page
            .wait_until(
                "the Set's change on the board",
                "return window.benchFrame === null ? null : [window.benchSeen, window.benchFrame]",
                vec![],
                SHOW_WITHIN,
                browser::truthy,
            )
            .await;
        let to_dom = seen[0].as_f64().expect("a time") - page_sent;
        let to_frame = seen[1].as_f64().expect("a time") - page_sent;
        eprintln!(
            "Set {}/{sets} ({status}): {to_dom:.1} ms to the row, {to_frame:.1} ms to the frame",
            n + 1
        );
        dom.push(to_dom);
        frame.push(to_frame);
        tokio::time::sleep(BETWEEN_SETS).await;
    }
    (dom, frame)
}

/// SuperOffice's Set over HTTP/1.1, one connection a request.
#[derive(Clone)]
struct Client {
    address: SocketAddr,
    basic: String,
}

impl Client {
    async fn set(&self, id: i64, status: &str, message: &str) {
        let body = json!({
            "AssociateId": id,
            "UserPresenceStatus": { "Status": status, "Message": message },
        })
        .to_string();
        let request = format!(
            "POST /api/v1/Agents/User/SetUserPresenceStatus HTTP/1.1\r\nHost: bench\r\nAuthorization: Basic {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.basic,
            body.len()
        );
        let mut stream = TcpStream::connect(self.address)
            .await
            .expect("the server accepts");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("the Set is sent");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("the answer");
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
}

/// Sets every third associate not present with a message, several at a time, as Sets wait
/// for their commit.
async fn mix_statuses(client: &Client, users: i32) {
    let started = Instant::now();
    let mut ids = (2..=users).step_by(3);
    let mut running = tokio::task::JoinSet::new();
    let mut count = 0;
    loop {
        while running.len() < 32 {
            let Some(id) = ids.next() else { break };
            let client = client.clone();
            running.spawn(async move {
                client
                    .set(i64::from(id), "StatusNotAvailable", "Away until Friday")
                    .await;
            });
            count += 1;
        }
        match running.join_next().await {
            Some(done) => done.expect("a Set"),
            None => break,
        }
    }
    eprintln!(
        "{count} users set not present in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn report(what: &str, values: &[f64]) {
    if values.is_empty() {
        println!("{what}: none");
        return;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at =
        |p: f64| sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1];
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    println!(
        "{what}: median {median:.1} p95 {:.1} min {:.1} max {:.1} (n={})",
        at(0.95),
        sorted[0],
        sorted[sorted.len() - 1],
        sorted.len()
    );
}
