//! What an operator watches: the metrics Prometheus scrapes, the request ids, and the access
//! log, which must tell every request and never a secret.
//!
//! The metrics are the process's, and the log capture is the process's subscriber: each test
//! here relies on running in a process of its own, as the test runner (nextest) runs them.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use presence::clock::Clock;
use presence::domain::AssociateId;
use presence::tickets;
use serde_json::json;

use crate::auth::{
    BODY, Browser, HS256_SECRET, claims, get_with, jwt_settings, register, ticket_for,
};
use crate::helpers::*;

both_backends!(
    metrics_count_requests_failures_lockouts_and_lookups,
    every_answer_carries_a_request_id,
    the_access_log_tells_every_request_and_no_secret,
);

fn basic(login: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{login}:{password}")))
}

/// The scrape, as text, after checking it is OpenMetrics.
async fn scrape(app: &TestApp) -> String {
    let response = app.send(Request::new("GET", "/metrics")).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = response.text().to_owned();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// The value of one sample (`name{labels}` exactly as exposed), zero when absent: a labelled
/// counter appears only once it has counted something.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().expect("a number"))
}

async fn metrics_count_requests_failures_lockouts_and_lookups() {
    let app = spawn_app().await;
    let before = scrape(&app).await;

    for _ in 0..3 {
        assert_eq!(
            app.send(Request::post(GET).basic(ADMIN).json(BODY))
                .await
                .status,
            200
        );
    }
    let set = Request::post(SET).basic(ADMIN).json(
        r#"{"AssociateId":963,"UserPresenceStatus":{"Status":"StatusNotAvailable","Message":"x"}}"#,
    );
    assert_eq!(app.send(set).await.status, 200);
    // Refusals, one scheme at a time.
    assert_eq!(
        app.send(get_with(&basic(USER.0, "wrong"))).await.status,
        401
    );
    assert_eq!(app.send(get_with("Bearer not-a-token")).await.status, 401);
    assert_eq!(
        app.send(get_with("SOTicket 7T:not-a-ticket")).await.status,
        401
    );
    assert_eq!(app.send(Request::post(GET).json(BODY)).await.status, 401);
    let stale_session = Request::post(GET)
        .header("Cookie", "SO-Session=7T:not-a-session")
        .json(BODY);
    assert_eq!(app.send(stale_session).await.status, 401);
    // Five failures lock the login; the sixth guess is refused without a check.
    for _ in 0..6 {
        assert_eq!(
            app.send(get_with(&basic("nobody", "guess"))).await.status,
            401
        );
    }
    assert_eq!(
        app.send(Request::new("GET", "/no/such/address"))
            .await
            .status,
        404
    );
    let mut browser = Browser::default();
    assert_eq!(browser.sign_in(&app, (USER.0, "wrong")).await.status, 401);

    let after = scrape(&app).await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    let requests = |operation: &str, status: u16| {
        format!(r#"presence_http_requests_total{{operation="{operation}",status="{status}"}}"#)
    };
    assert_eq!(moved(&requests("GetUserPresenceStatus", 200)), 3.0);
    assert_eq!(moved(&requests("SetUserPresenceStatus", 200)), 1.0);
    assert_eq!(moved(&requests("GetUserPresenceStatus", 401)), 11.0);
    assert_eq!(moved(&requests("SignIn", 401)), 1.0);
    assert_eq!(moved(&requests("Other", 404)), 1.0);
    // The first scrape is counted once answered, so the second one sees it.
    assert_eq!(moved(&requests("Metrics", 200)), 1.0);
    assert_eq!(
        moved(r#"presence_http_request_duration_seconds_count{operation="GetUserPresenceStatus"}"#),
        14.0
    );
    // Every Get took less than the top bucket's ten seconds.
    assert_eq!(
        moved(
            r#"presence_http_request_duration_seconds_bucket{le="10.0",operation="GetUserPresenceStatus"}"#
        ),
        14.0
    );
    let failures = |scheme: &str| {
        moved(&format!(
            r#"presence_authentication_failures_total{{scheme="{scheme}"}}"#
        ))
    };
    assert_eq!(failures("Basic"), 7.0);
    assert_eq!(failures("Bearer"), 1.0);
    assert_eq!(failures("SoTicket"), 1.0);
    assert_eq!(failures("Session"), 1.0);
    assert_eq!(failures("None"), 1.0);
    assert_eq!(failures("SignIn"), 1.0);
    assert_eq!(moved("presence_lockouts_total"), 1.0);
    // Each Get looks up a presence; once cached, from memory.
    assert!(moved("presence_user_cache_hits_total") >= 3.0, "{after}");
    assert!(
        sample(&after, "presence_user_cache_misses_total") >= 1.0,
        "{after}"
    );
    assert_eq!(sample(&after, "presence_sets_waiting"), 0.0);
    assert_eq!(sample(&after, "presence_db_connections_waiting"), 0.0);
    for gauge in [
        "presence_db_connections_in_use",
        "presence_db_connections_waiting",
        "presence_sets_waiting",
    ] {
        assert!(
            after.contains(&format!("# TYPE {gauge} gauge\n")),
            "{gauge}"
        );
    }
}

async fn every_answer_carries_a_request_id() {
    let app = spawn_app().await;
    let theirs = "3f1c2a4e-7b1d-4c55-9d7e-2b8f0c1a9e77";
    let echoed = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .header("X-Request-Id", theirs)
                .json(BODY),
        )
        .await;
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.header("x-request-id"), Some(theirs));

    // Errors, the router's addresses and ids not worth keeping get one of the server's own.
    let mut made = Vec::new();
    for request in [
        Request::post(GET).json(BODY),
        Request::new("GET", "/api/v1/Agents/User/GetUserPresenceStatus"),
        Request::new("GET", "/nowhere").header("X-Request-Id", "a b"),
        Request::new("GET", "/health/live").header("X-Request-Id", &"x".repeat(129)),
    ] {
        let response = app.send(request).await;
        let id = response.header("x-request-id").expect("an id").to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        made.push(id);
    }
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 4, "ids are not reused");
}

/// Where the process's log lines go in this test.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    /// Every line of the process logged from now on, at every level, in JSON as
    /// `--log-format json` writes it.
    fn install() -> Self {
        let log = Self::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("this test's process has no other subscriber");
        log
    }

    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .expect("UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
            .collect()
    }
}

/// The whole API with every kind of credential, right and wrong; then the log, at its most
/// detailed, holds one access line for each request and none of what was sent as a secret.
async fn the_access_log_tells_every_request_and_no_secret() {
    let log = CapturedLog::install();
    let app = spawn_app_with(TestSettings {
        auth: jwt_settings(None),
        clock: Clock::System,
        ..TestSettings::default()
    })
    .await;
    let ticket = ticket_for(&app, USER_ID).await;
    let access_token = tickets::issue_access_token(
        &app.store,
        &app.clock,
        AssociateId::new(USER_ID),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    let jwt = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(json!(USER_ID), 600),
        &EncodingKey::from_secret(HS256_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let app_token = register(&app, "wallboard", false, true).await;
    let wrong_password = "not-anna-but-a-guess";

    let mut sent = 0;
    let mut expect = |response: Response, status: u16| {
        sent += 1;
        assert_eq!(response.status, status, "{}", response.text());
    };
    expect(app.send(get_with(&basic(USER.0, USER.1))).await, 200);
    expect(
        app.send(get_with(&basic(USER.0, wrong_password))).await,
        401,
    );
    expect(app.send(get_with(&format!("SOTicket {ticket}"))).await, 200);
    expect(app.send(get_with(&format!("Basic {ticket}"))).await, 200);
    expect(
        app.send(get_with(&format!("Bearer {access_token}"))).await,
        200,
    );
    expect(app.send(get_with(&format!("Bearer {jwt}"))).await, 200);
    expect(
        app.send(get_with(&format!("SOTicket {ticket}")).header("SO-AppToken", &app_token))
            .await,
        200,
    );
    expect(app.send(get_with(&format!("Bearer {jwt}x"))).await, 401);
    expect(
        app.send(get_with(&format!("SOTicket {ticket}x"))).await,
        401,
    );
    let mut browser = Browser::default();
    expect(browser.sign_in(&app, USER).await, 200);
    let session = browser.cookie("SO-Session").expect("a session").to_owned();
    let xsrf = browser
        .cookie("XSRF-TOKEN")
        .expect("an XSRF token")
        .to_owned();
    let set = Request::post(SET).json(&format!(
        r#"{{"AssociateId":{USER_ID},"UserPresenceStatus":{{"Status":"StatusNotAvailable","Message":"lunch"}}}}"#
    ));
    expect(app.send(browser.with_xsrf(set)).await, 200);
    expect(browser.sign_in(&app, (USER.0, wrong_password)).await, 401);

    let lines = log.lines();
    let access: Vec<_> = lines
        .iter()
        .filter(|line| line["target"] == "access")
        .collect();
    assert_eq!(access.len(), sent, "one access line per request");
    for line in &access {
        let fields = &line["fields"];
        assert_eq!(line["level"], "INFO");
        assert!(
            fields["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
        );
        assert!(fields["operation"].is_string() && fields["duration_us"].is_u64());
        if fields["status"] == 200 {
            assert_eq!(fields["associate"], USER_ID, "{line}");
        }
    }

    let secrets = [
        USER.1.to_owned(),
        wrong_password.to_owned(),
        BASE64.encode(format!("{}:{}", USER.0, USER.1)),
        BASE64.encode(format!("{}:{wrong_password}", USER.0)),
        ticket,
        access_token,
        jwt,
        HS256_SECRET.to_owned(),
        app_token,
        session,
        xsrf,
    ];
    let text = serde_json::to_string(&lines).unwrap();
    assert!(lines.len() > sent, "the detailed lines were captured too");
    for secret in &secrets {
        // The tickets' and tokens' bodies, without the prefix that names their kind.
        let body = secret.split_once(':').map_or(secret.as_str(), |(_, b)| b);
        assert!(
            !text.contains(body),
            "the log holds a secret ({secret}):\n{}",
            lines
                .iter()
                .map(ToString::to_string)
                .filter(|line| line.contains(body))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
