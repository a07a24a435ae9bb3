//! Webhooks: changes POSTed to a receiver on 127.0.0.1 (the servers run with
//! `--allow-private-webhooks`, or are shown refusing it without), signed, in order, once; tried
//! again after a failure with the same `webhook-id`; never following a redirect; resumed after
//! a restart, and after a stop that waited for the POST in flight; delivered once across two
//! nodes; leased by the database's clock. Added, listed and removed from the command line and
//! the wire.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use presence::config::HttpSettings;
use presence::store::{WebhookAdded, WebhookClaim, WebhookProgress};
use presence::webhooks::LEASE;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::*;

both_backends!(
    every_change_arrives_once_in_order_signed,
    a_failing_receiver_gets_the_change_again_and_later_ones_wait,
    a_change_failing_for_a_day_is_given_up_and_the_next_goes_on,
    redirects_are_not_followed,
    private_targets_are_refused_without_the_flag,
    a_restarted_server_resumes_where_delivery_stopped,
    a_stopping_server_ends_its_post_before_another_goes_on,
    progress_is_stored_only_while_the_lease_holds,
    webhooks_are_added_listed_and_removed_from_the_command_line,
    webhooks_are_for_administrators_on_the_wire,
);

/// The longest a test waits for deliveries.
const PATIENCE: Duration = Duration::from_secs(15);

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn revision(&self) -> i64 {
        self.json()["revision"].as_i64().unwrap()
    }

    /// Whether its signature is the one `secret` (`whsec_...`) makes, Standard Webhooks' way.
    fn signed_with(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(
            format!(
                "{}.{}.",
                self.header("webhook-id"),
                self.header("webhook-timestamp")
            )
            .as_bytes(),
        );
        mac.update(&self.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        self.header("webhook-signature")
            .split(' ')
            .any(|signature| signature == expected)
    }
}

/// What a receiver answers the `n`th request it gets (from 0): a status and headers.
type Answer = dyn Fn(usize, &Received) -> (u16, Vec<(String, String)>) + Send + Sync;

/// A small HTTP/1.1 server on 127.0.0.1 that records every request, on kept-alive
/// connections as ureq sends them.
#[derive(Clone)]
struct Receiver {
    address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    /// Whether a request came while another was still being answered.
    overlapped: Arc<AtomicBool>,
}

/// What the connections of one receiver share.
#[derive(Clone)]
struct Serving {
    received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Answer>,
    /// How long each answer takes.
    delay: Duration,
    answering: Arc<AtomicUsize>,
    overlapped: Arc<AtomicBool>,
}

impl Receiver {
    async fn start(
        answer: impl Fn(usize, &Received) -> (u16, Vec<(String, String)>) + Send + Sync + 'static,
    ) -> Self {
        Self::start_slow(Duration::ZERO, answer).await
    }

    /// One that takes `delay` to answer each request.
    async fn start_slow(
        delay: Duration,
        answer: impl Fn(usize, &Received) -> (u16, Vec<(String, String)>) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let serving = Serving {
            received: Arc::new(Mutex::new(Vec::new())),
            answer: Arc::new(answer),
            delay,
            answering: Arc::new(AtomicUsize::new(0)),
            overlapped: Arc::new(AtomicBool::new(false)),
        };
        let receiver = Self {
            address,
            received: serving.received.clone(),
            overlapped: serving.overlapped.clone(),
        };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, serving.clone()));
            }
        });
        receiver
    }

    /// One that answers 204 to everything.
    async fn accepting() -> Self {
        Self::start(|_, _| (204, Vec::new())).await
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until it has got `count` requests, and a moment more for any that should not
    /// come; fails after [`PATIENCE`].
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        while self.received.lock().unwrap().len() < count {
            assert!(
                Instant::now() < deadline,
                "got {} of {count} requests",
                self.received.lock().unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        self.received()
    }
}

async fn serve(mut stream: tokio::net::TcpStream, serving: Serving) {
    let mut buffer = Vec::new();
    loop {
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        let headers: Vec<(String, String)> = head
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        while buffer.len() < end + 4 + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        }
        let body = buffer[end + 4..end + 4 + length].to_vec();
        buffer.drain(..end + 4 + length);
        let request = Received { headers, body };
        if serving.answering.fetch_add(1, Ordering::SeqCst) > 0 {
            serving.overlapped.store(true, Ordering::SeqCst);
        }
        let (status, extra) = {
            let mut all = serving.received.lock().unwrap();
            let answered = (serving.answer)(all.len(), &request);
            all.push(request);
            answered
        };
        tokio::time::sleep(serving.delay).await;
        serving.answering.fetch_sub(1, Ordering::SeqCst);
        let mut response = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n");
        for (name, value) in extra {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A server of the test's backend that may deliver to 127.0.0.1.
async fn spawn_allowing_private() -> TestApp {
    spawn_app_with(TestSettings {
        http: HttpSettings {
            allow_private_webhooks: true,
            ..HttpSettings::default()
        },
        ..TestSettings::default()
    })
    .await
}

/// Adds a webhook as the administrator; its id and secret.
async fn add_webhook(app: &TestApp, body: Value) -> (i64, String) {
    let response = app
        .send(
            Request::post("/presence/v1/webhooks")
                .basic(ADMIN)
                .json(&body.to_string()),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    let json = response.json();
    (
        json["id"].as_i64().unwrap(),
        json["secret"].as_str().unwrap().to_owned(),
    )
}

async fn set_status(app: &TestApp, id: i32, message: &str) {
    let response = app
        .send(
            Request::new("PUT", &format!("/presence/v1/users/{id}/status"))
                .basic(ADMIN)
                .json(&json!({"status": "StatusNotAvailable", "message": message}).to_string()),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
}

async fn deliveries(app: &TestApp, id: i64) -> Vec<Value> {
    let response = app
        .send(Request::new("GET", &format!("/presence/v1/webhooks/{id}/deliveries")).basic(ADMIN))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["items"].as_array().unwrap().clone()
}

/// Waits until the webhook's newest attempt satisfies `done`.
async fn wait_for_delivery(app: &TestApp, id: i64, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let all = deliveries(app, id).await;
        if all.first().is_some_and(&done) {
            return all;
        }
        assert!(Instant::now() < deadline, "no such attempt among {all:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn every_change_arrives_once_in_order_signed() {
    let app = spawn_allowing_private().await;
    let everyone = Receiver::accepting().await;
    let anna_only = Receiver::accepting().await;
    let (id, secret) = add_webhook(&app, json!({"url": everyone.url()})).await;
    let (filtered, filtered_secret) = add_webhook(
        &app,
        json!({"url": anna_only.url(), "associates": [USER_ID]}),
    )
    .await;
    for round in 0..6 {
        let who = if round % 2 == 0 { USER_ID } else { ADMIN_ID };
        set_status(&app, who, &format!("round {round}")).await;
    }
    let got = everyone.wait_for(6).await;
    assert_eq!(got.len(), 6, "each change once");
    let revisions: Vec<i64> = got.iter().map(Received::revision).collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    for (n, request) in got.iter().enumerate() {
        assert!(request.signed_with(&secret), "{:?}", request.headers);
        assert_eq!(
            request.header("webhook-id"),
            format!("{id}-{}", request.revision())
        );
        assert_eq!(request.header("content-type"), "application/json");
        let change = request.json();
        assert_eq!(change["kind"], "status");
        assert_eq!(change["to"]["message"], format!("round {n}"));
    }
    // The change's JSON is the history's, byte for byte.
    let history = app
        .send(
            Request::new(
                "GET",
                &format!("/presence/v1/changes?after={}", revisions[0] - 1),
            )
            .basic(ADMIN),
        )
        .await
        .json();
    assert_eq!(history["items"][0], got[0].json());

    let anna = anna_only.wait_for(3).await;
    assert_eq!(anna.len(), 3);
    assert!(anna.iter().all(|r| r.json()["associateId"] == USER_ID));
    assert!(anna.iter().all(|r| r.signed_with(&filtered_secret)));
    assert!(
        !anna[0].signed_with(&secret),
        "each webhook has its own secret"
    );

    let attempts = deliveries(&app, id).await;
    assert_eq!(attempts.len(), 6);
    assert!(
        attempts
            .iter()
            .all(|a| a["outcome"] == "delivered" && a["status"] == 204)
    );
    assert_eq!(attempts[0]["revision"], revisions[5], "newest first");
    let listed = app
        .send(Request::new("GET", "/presence/v1/webhooks").basic(ADMIN))
        .await
        .json();
    assert_eq!(
        listed["items"][0]["deliveredThrough"].as_i64(),
        revisions.last().copied()
    );
    assert_eq!(listed["items"][1]["id"], filtered);
    assert!(
        listed["items"][0].get("secret").is_none(),
        "shown only when added"
    );
}

async fn a_failing_receiver_gets_the_change_again_and_later_ones_wait() {
    let app = spawn_allowing_private().await;
    let receiver = Receiver::start(|n, _| (if n < 3 { 500 } else { 200 }, Vec::new())).await;
    let (id, secret) = add_webhook(&app, json!({"url": receiver.url()})).await;
    set_status(&app, USER_ID, "first").await;
    set_status(&app, USER_ID, "second").await;
    // The waits between attempts (0.5 s, 1 s, 2 s) pass on the server's clock.
    let deadline = Instant::now() + PATIENCE;
    while receiver.received().len() < 5 {
        assert!(Instant::now() < deadline, "{:?}", receiver.received().len());
        app.clock.advance(Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = receiver.wait_for(5).await;
    assert_eq!(got.len(), 5);
    let messages: Vec<Value> = got
        .iter()
        .map(|r| r.json()["to"]["message"].clone())
        .collect();
    assert_eq!(messages, ["first", "first", "first", "first", "second"]);
    let first_id = got[0].header("webhook-id");
    assert!(got[..4].iter().all(|r| r.header("webhook-id") == first_id));
    assert!(got[..4].iter().all(|r| r.body == got[0].body));
    assert_ne!(got[4].header("webhook-id"), first_id);
    assert!(got.iter().all(|r| r.signed_with(&secret)));

    let attempts = deliveries(&app, id).await;
    let summary: Vec<(String, i64, i64)> = attempts
        .iter()
        .rev()
        .map(|a| {
            (
                a["outcome"].as_str().unwrap().to_owned(),
                a["attempt"].as_i64().unwrap(),
                a["status"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("failed".into(), 1, 500),
            ("failed".into(), 2, 500),
            ("failed".into(), 3, 500),
            ("delivered".into(), 4, 200),
            ("delivered".into(), 1, 200),
        ]
    );
}

async fn a_change_failing_for_a_day_is_given_up_and_the_next_goes_on() {
    let app = spawn_allowing_private().await;
    let receiver = Receiver::start(|_, request| {
        let refused = request.json()["to"]["message"] == "refused";
        (if refused { 503 } else { 200 }, Vec::new())
    })
    .await;
    let (id, _) = add_webhook(&app, json!({"url": receiver.url()})).await;
    set_status(&app, USER_ID, "refused").await;
    set_status(&app, USER_ID, "accepted").await;
    wait_for_delivery(&app, id, |a| a["outcome"] == "failed").await;
    // A day after its first failure, its next failure gives it up.
    app.clock.advance(Duration::from_secs(25 * 3600));
    let attempts = wait_for_delivery(&app, id, |a| a["outcome"] == "delivered").await;
    assert_eq!(attempts[1]["outcome"], "gaveUp");
    assert_eq!(attempts[1]["status"], 503);
    let got = receiver.received();
    assert_eq!(got.last().unwrap().json()["to"]["message"], "accepted");
    assert_eq!(got.len(), 3, "two attempts at the first, one at the second");
}

async fn redirects_are_not_followed() {
    let app = spawn_allowing_private().await;
    let elsewhere = Receiver::accepting().await;
    let to = elsewhere.url();
    let redirecting =
        Receiver::start(move |_, _| (307, vec![("Location".into(), to.clone())])).await;
    let (id, _) = add_webhook(&app, json!({"url": redirecting.url()})).await;
    set_status(&app, USER_ID, "moved").await;
    let attempts = wait_for_delivery(&app, id, |a| a["outcome"] == "failed").await;
    assert_eq!(attempts[0]["status"], 307);
    let error = attempts[0]["error"].as_str().unwrap();
    assert!(error.contains("redirects are not followed"), "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(elsewhere.received().is_empty());
    assert_eq!(redirecting.received().len(), 1);
}

async fn private_targets_are_refused_without_the_flag() {
    let app = spawn_app().await;
    let receiver = Receiver::accepting().await;
    // "localhost" and the address itself alike: what is checked is where the name leads.
    let by_name = format!("http://localhost:{}/hook", receiver.address.port());
    let (named, _) = add_webhook(&app, json!({"url": by_name})).await;
    let (numbered, _) = add_webhook(&app, json!({"url": receiver.url()})).await;
    set_status(&app, USER_ID, "inside").await;
    for id in [named, numbered] {
        let attempts = wait_for_delivery(&app, id, |a| a["outcome"] == "failed").await;
        let error = attempts[0]["error"].as_str().unwrap();
        assert!(error.contains("private address"), "{error}");
        assert!(error.contains("--allow-private-webhooks"), "{error}");
        assert!(attempts[0]["status"].is_null());
    }
    assert!(receiver.received().is_empty());
}

/// `presence webhook add URL` on a database: the id and the secret it printed.
fn add_from_command_line(database_url: &str, url: &str) -> (i64, String) {
    let printed = stdout(&run_presence(database_url, &["webhook", "add", url], ""));
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {printed}"))
            .trim()
            .to_owned()
    };
    (field("id:").parse().unwrap(), field("secret:"))
}

fn set_from_command_line(database_url: &str, message: &str) {
    stdout(&run_presence(
        database_url,
        &[
            "status",
            "set",
            "963",
            "StatusNotAvailable",
            "--message",
            message,
        ],
        "",
    ));
}

async fn a_restarted_server_resumes_where_delivery_stopped() {
    let database = fresh_database().await;
    let receiver = Receiver::accepting().await;
    let serve = |url: &str| ServerProcess::start_with(url, &[], &["--allow-private-webhooks"]);
    let mut server = serve(&database.url);
    let (_, secret) = add_from_command_line(&database.url, &receiver.url());
    set_from_command_line(&database.url, "before");
    receiver.wait_for(1).await;
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(server.child.wait().unwrap().success());

    for message in ["while stopped 1", "while stopped 2", "while stopped 3"] {
        set_from_command_line(&database.url, message);
    }
    let _restarted = serve(&database.url);
    let got = receiver.wait_for(4).await;
    let messages: Vec<Value> = got
        .iter()
        .map(|r| r.json()["to"]["message"].clone())
        .collect();
    assert_eq!(
        messages,
        [
            "before",
            "while stopped 1",
            "while stopped 2",
            "while stopped 3"
        ]
    );
    assert!(got.iter().all(|r| r.signed_with(&secret)));
}

/// A server stopping while a receiver is slow to answer waits for that POST, starts no other,
/// and only then gives up its lease: a server started next on the database goes on at once,
/// after that change, and the receiver never has two at a time nor one twice.
async fn a_stopping_server_ends_its_post_before_another_goes_on() {
    // The database outlives the first server.
    let database = fresh_database().await;
    let settings = || TestSettings {
        http: HttpSettings {
            allow_private_webhooks: true,
            ..HttpSettings::default()
        },
        database_url: Some(database.url.clone()),
        ..TestSettings::default()
    };
    let first = spawn_app_with(settings()).await;
    presence::demo::seed(&first.store).await.unwrap();
    add_user(&first.store, USER_ID, USER.0, USER.1, false).await;
    let receiver = Receiver::start_slow(Duration::from_secs(1), |_, _| (204, Vec::new())).await;
    add_webhook(&first, json!({"url": receiver.url()})).await;
    for message in ["one", "two", "three"] {
        set_status(&first, USER_ID, message).await;
    }
    let deadline = Instant::now() + PATIENCE;
    while receiver.received().is_empty() {
        assert!(Instant::now() < deadline, "nothing was sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.stop().await;
    assert_eq!(
        receiver.received().len(),
        1,
        "no POST started after the stop"
    );

    // Within the test's patience, well before the lease would have ended by itself.
    let _second = spawn_app_with(settings()).await;
    let got = receiver.wait_for(3).await;
    let messages: Vec<Value> = got
        .iter()
        .map(|r| r.json()["to"]["message"].clone())
        .collect();
    assert_eq!(messages, ["one", "two", "three"]);
    assert!(!receiver.overlapped.load(Ordering::SeqCst));
}

/// The store's side of the leases: held by one node, renewed only while held and not ended;
/// on PostgreSQL by the database's clock, so a node whose clock runs an hour ahead takes no
/// lease another holds.
async fn progress_is_stored_only_while_the_lease_holds() {
    let app = spawn_app().await;
    let store = &app.store;
    let on_postgres = app.database_url.starts_with("postgres");
    let (new, _) = presence::webhooks::new_webhook("https://example.com/hook", None, 0).unwrap();
    let WebhookAdded::Added(webhook) = store.add_webhook(new).await.unwrap() else {
        panic!("not added");
    };
    let now = app.clock.now_millis();
    let due = |owner: &str, now: i64, busy: Vec<i64>| store.webhooks_due(owner.into(), now, busy);
    assert!(!due("a", now, vec![]).await.unwrap(), "nothing to send yet");
    set_status(&app, USER_ID, "changed").await;
    assert!(due("a", now, vec![]).await.unwrap());
    assert!(!due("a", now, vec![webhook.id]).await.unwrap(), "busy");

    let latest = store.latest_revision().await.unwrap();
    let claim = |owner: &str, now: i64, lease: Duration| WebhookClaim {
        owner: owner.into(),
        now,
        lease,
        latest,
        busy: Vec::new(),
        limit: 10,
    };
    let progress = |owner: &str, now: i64, lease: Duration| WebhookProgress {
        id: webhook.id,
        owner: owner.into(),
        delivered_through: webhook.delivered_through,
        attempts: 0,
        failing_since: None,
        next_attempt_at: 0,
        now,
        lease,
        deliveries: Vec::new(),
    };
    let claimed = store.claim_webhooks(claim("a", now, LEASE)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    // SQLite's leases go by the one machine's clock.
    let ahead = if on_postgres { now + 3_600_000 } else { now };
    assert!(!due("b", ahead, vec![]).await.unwrap());
    assert!(
        store
            .claim_webhooks(claim("b", ahead, LEASE))
            .await
            .unwrap()
            .is_empty(),
        "held by another"
    );
    assert!(
        !store
            .store_webhook_progress(progress("b", ahead, LEASE))
            .await
            .unwrap()
    );
    // Renewed for a moment only, then let end.
    let short = Duration::from_millis(1);
    assert!(
        store
            .store_webhook_progress(progress("a", now, short))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let later = now + 50;
    assert!(
        !store
            .store_webhook_progress(progress("a", later, LEASE))
            .await
            .unwrap(),
        "an ended lease is not renewed"
    );
    assert_eq!(
        store
            .claim_webhooks(claim("b", later, LEASE))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        !store
            .store_webhook_progress(progress("a", later, LEASE))
            .await
            .unwrap(),
        "a lease taken over stores nothing"
    );
    assert!(
        store
            .store_webhook_progress(progress("b", later, LEASE))
            .await
            .unwrap()
    );
}

async fn webhooks_are_added_listed_and_removed_from_the_command_line() {
    let database = fresh_database().await;
    let url = database.url.clone();
    let (id, secret) = add_from_command_line(&url, "https://hooks.example.com/presence");
    assert!(secret.starts_with("whsec_"));
    assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 24);
    let filtered = stdout(&run_presence(
        &url,
        &[
            "webhook",
            "add",
            "http://hooks.example.com/",
            "--associates",
            "963,2,963",
        ],
        "",
    ));
    assert!(filtered.starts_with("id: "), "{filtered}");

    let listed = stdout(&run_presence(&url, &["webhook", "list"], ""));
    let rows: Vec<Vec<&str>> = listed
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!(rows[0][0], id.to_string());
    assert_eq!(rows[0][3], "all");
    assert_eq!(rows[0][4], "https://hooks.example.com/presence");
    assert_eq!(rows[1][3], "2,963");
    assert!(!listed.contains("whsec_"));

    let attempts = stdout(&run_presence(
        &url,
        &["webhook", "deliveries", &id.to_string()],
        "",
    ));
    assert_eq!(attempts.lines().count(), 1, "only the header: {attempts}");

    for (args, expected) in [
        (
            vec!["webhook", "add", "ftp://example.com/"],
            "http or https",
        ),
        (
            vec!["webhook", "add", "https://me:pw@example.com/"],
            "credentials",
        ),
        (
            vec![
                "webhook",
                "add",
                "https://example.com/",
                "--associates",
                "0",
            ],
            "positive",
        ),
        (vec!["webhook", "remove", "999"], "no webhook 999"),
        (vec!["webhook", "deliveries", "999"], "no webhook 999"),
    ] {
        let message = error(&run_presence(&url, &args, ""));
        assert!(message.contains(expected), "{args:?}: {message}");
    }

    assert_eq!(
        stdout(&run_presence(
            &url,
            &["webhook", "remove", &id.to_string()],
            ""
        ))
        .trim(),
        format!("removed webhook {id}")
    );
    let listed = stdout(&run_presence(&url, &["webhook", "list"], ""));
    assert_eq!(listed.lines().count(), 2, "{listed}");
}

async fn webhooks_are_for_administrators_on_the_wire() {
    let app = spawn_app().await;
    let as_user = |method: &str, path: &str| Request::new(method, path).basic(USER);
    for request in [
        as_user("GET", "/presence/v1/webhooks"),
        as_user("POST", "/presence/v1/webhooks").json(r#"{"url":"https://example.com/"}"#),
        as_user("DELETE", "/presence/v1/webhooks/1"),
        as_user("GET", "/presence/v1/webhooks/1/deliveries"),
    ] {
        let response = app.send(request).await;
        assert_eq!(response.status, 403);
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
    }
    let anonymous = app.send(Request::new("GET", "/presence/v1/webhooks")).await;
    assert_eq!(anonymous.status, 401);

    let post = |body: &str| {
        Request::post("/presence/v1/webhooks")
            .basic(ADMIN)
            .json(body)
    };
    for (body, member) in [
        (r#"{}"#, "url"),
        (r#"{"url":"mailto:me@example.com"}"#, "url"),
        (
            r#"{"url":"https://example.com/","associates":[]}"#,
            "associates",
        ),
        (
            r#"{"url":"https://example.com/","associates":["963"]}"#,
            "associates",
        ),
        (
            r#"{"url":"https://example.com/","associates":[-1]}"#,
            "associates",
        ),
    ] {
        let response = app.send(post(body)).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(response.json()["errors"][0]["member"], member, "{body}");
    }

    let added = app
        .send(post(
            r#"{"url":"https://example.com/hook","associates":[963,1]}"#,
        ))
        .await;
    assert_eq!(added.status, 201);
    let webhook = added.json();
    let id = webhook["id"].as_i64().unwrap();
    assert_eq!(
        added.header("location"),
        Some(format!("/presence/v1/webhooks/{id}").as_str())
    );
    assert_eq!(webhook["associates"], json!([1, 963]));
    assert_eq!(webhook["attempts"], 0);
    assert!(webhook["failingSince"].is_null());
    assert!(webhook["secret"].as_str().unwrap().starts_with("whsec_"));

    let listed = app
        .send(Request::new("GET", "/presence/v1/webhooks").basic(ADMIN))
        .await;
    assert_eq!(listed.json()["items"].as_array().unwrap().len(), 1);
    assert!(listed.json()["next"].is_null());
    assert_eq!(deliveries(&app, id).await, Vec::<Value>::new());

    let remove = || Request::new("DELETE", &format!("/presence/v1/webhooks/{id}")).basic(ADMIN);
    assert_eq!(app.send(remove()).await.status, 204);
    assert_eq!(app.send(remove()).await.status, 404);
    let gone = app
        .send(Request::new("GET", &format!("/presence/v1/webhooks/{id}/deliveries")).basic(ADMIN))
        .await;
    assert_eq!(gone.status, 404);
    let bad = app
        .send(Request::new("DELETE", "/presence/v1/webhooks/x").basic(ADMIN))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["errors"][0]["member"], "webhookId");
}

/// Two nodes on one PostgreSQL database deliver each change to one receiver once, in order.
#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "built without PRESENCE_TEST_POSTGRES_URL"
)]
async fn two_nodes_deliver_each_change_once_in_order() {
    let server = presence::store::testing::postgres_admin_url();
    let database_url = presence::store::testing::fresh_postgres_database(&server)
        .await
        .unwrap();
    let receiver = Receiver::accepting().await;
    let one = ServerProcess::start_with(&database_url, &[], &["--allow-private-webhooks"]);
    let two = ServerProcess::start_with(&database_url, &[], &["--allow-private-webhooks"]);
    let (id, secret) = add_from_command_line(&database_url, &receiver.url());
    let count = 40;
    for round in 0..count {
        let node = if round % 2 == 0 { &one } else { &two };
        let body = format!(
            r#"{{"AssociateId":963,"UserPresenceStatus":{{"Status":"StatusNotAvailable","Message":"round {round}"}}}}"#
        );
        assert_eq!(
            node.send(Request::post(SET).basic(ADMIN).json(&body))
                .await
                .status,
            200
        );
    }
    let got = receiver.wait_for(count).await;
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), count, "every change arrived");
    assert_eq!(ids.len(), count, "and once: {ids:?}");
    let messages: Vec<String> = got
        .iter()
        .map(|r| r.json()["to"]["message"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..count).map(|round| format!("round {round}")).collect();
    assert_eq!(messages, expected, "in order");
    assert!(got.iter().all(|r| r.signed_with(&secret)));
    assert!(ids.iter().all(|i| i.starts_with(&format!("{id}-"))));
}
