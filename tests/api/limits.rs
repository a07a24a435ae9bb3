//! Clients that do not behave: connections that trickle, idle or never end their requests,
//! too many connections or requests at once, requests answered before their body was read,
//! and the smaller wire defects such clients probe for.

use std::time::Duration;

use presence::config::{HttpSettings, Limits};

use crate::helpers::*;

both_backends!(
    a_head_that_never_ends_is_closed_after_the_header_read_timeout,
    a_kept_alive_connection_is_closed_after_the_keep_alive_timeout_not_before,
    a_body_that_never_ends_is_a_408_and_the_connection_closes,
    shutdown_closes_a_half_sent_request_at_the_deadline,
    past_the_connection_limit_the_server_waits_and_serves_the_ones_it_has,
    past_the_request_limit_a_request_is_a_503_in_the_callers_format,
    a_body_sent_slowly_takes_no_place_among_the_requests_answered,
    past_the_set_queue_a_set_is_a_503_and_nothing_is_stored,
    an_early_401_leaves_a_kept_alive_connection_open_for_the_next_request,
    a_body_over_the_limit_is_a_413_that_closes_the_connection,
    transfer_codings_other_than_chunked_are_501,
    an_error_echoes_a_long_path_cut_short,
    form_and_json_bodies_that_are_not_utf8_are_400_and_store_nothing,
    the_sign_in_page_may_run_only_its_own_script_and_be_framed_by_no_one,
    a_cookie_request_from_the_same_host_over_another_scheme_is_refused,
);

/// A test server with `limits` changed from the defaults.
async fn spawn_with_limits(limits: Limits) -> TestApp {
    spawn_app_with(TestSettings {
        http: HttpSettings {
            limits,
            ..HttpSettings::default()
        },
        ..TestSettings::default()
    })
    .await
}

const SHORT: Duration = Duration::from_millis(300);

fn get_head(content_length: usize) -> String {
    format!(
        "POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dGplMDpUamUw\r\n\
         Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

const GET_BODY: &str = r#"{"AssociateId":963}"#;

/// Runs `work`, failing the test if it takes longer than `bound`: a bound on a hang, far above
/// what the behaviour needs, not a measurement.
async fn within<T>(bound: Duration, work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(bound, work)
        .await
        .expect("done within the bound")
}

async fn a_head_that_never_ends_is_closed_after_the_header_read_timeout() {
    let app = spawn_with_limits(Limits {
        header_read_timeout: SHORT,
        ..Limits::default()
    })
    .await;
    let mut slow = RawConnection::open(app.address).await;
    let head = get_head(GET_BODY.len());
    // A byte every 50 ms: each arrives well within any gap, yet the head never ends in time.
    let trickle = async {
        for byte in head.as_bytes() {
            if !slow.write(std::slice::from_ref(byte)).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    within(Duration::from_secs(10), trickle).await;
    within(Duration::from_secs(10), slow.closed()).await;
    // The server goes on answering others.
    assert_eq!(
        app.send(Request::post(GET).basic(ADMIN).json(GET_BODY))
            .await
            .status,
        200
    );
}

async fn a_kept_alive_connection_is_closed_after_the_keep_alive_timeout_not_before() {
    let app = spawn_with_limits(Limits {
        header_read_timeout: SHORT,
        keep_alive_timeout: Duration::from_secs(2),
        ..Limits::default()
    })
    .await;
    let mut client = RawConnection::open(app.address).await;
    let request = format!("{}{GET_BODY}", get_head(GET_BODY.len()));
    assert!(client.write(request.as_bytes()).await);
    assert_eq!(client.response().await.unwrap().status, 200);
    // Idle for longer than the header-read timeout: that one does not count while idle.
    tokio::time::sleep(SHORT * 2).await;
    assert!(client.write(request.as_bytes()).await);
    assert_eq!(client.response().await.unwrap().status, 200);
    // Idle past the keep-alive timeout: closed by the server.
    within(Duration::from_secs(10), client.closed()).await;
}

async fn a_body_that_never_ends_is_a_408_and_the_connection_closes() {
    let app = spawn_with_limits(Limits {
        request_timeout: SHORT,
        ..Limits::default()
    })
    .await;
    let mut client = RawConnection::open(app.address).await;
    let head = format!(
        "POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dGplMDpUamUw\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{{\"A\r\n"
    );
    assert!(client.write(head.as_bytes()).await);
    // ...and no more chunks.
    let response = within(Duration::from_secs(10), client.response())
        .await
        .expect("an answer");
    assert_eq!(response.status, 408);
    assert_eq!(response.json()["ErrorType"], "RequestTimeoutException");
    assert_eq!(response.header("connection"), Some("close"));
    within(Duration::from_secs(10), client.closed()).await;
}

async fn shutdown_closes_a_half_sent_request_at_the_deadline() {
    let app = spawn_with_limits(Limits {
        shutdown_timeout: SHORT,
        ..Limits::default()
    })
    .await;
    let mut client = RawConnection::open(app.address).await;
    let head = get_head(GET_BODY.len());
    assert!(client.write(head.as_bytes()).await);
    assert!(client.write(&GET_BODY.as_bytes()[..5]).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The rest of the body never comes: the server stops at the deadline all the same.
    within(Duration::from_secs(10), app.stop()).await;
    within(Duration::from_secs(10), client.closed()).await;
}

async fn past_the_connection_limit_the_server_waits_and_serves_the_ones_it_has() {
    let app = spawn_with_limits(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let request = format!("{}{GET_BODY}", get_head(GET_BODY.len()));
    let mut first = RawConnection::open(app.address).await;
    let mut second = RawConnection::open(app.address).await;
    for client in [&mut first, &mut second] {
        assert!(client.write(request.as_bytes()).await);
        assert_eq!(client.response().await.unwrap().status, 200);
    }
    // A third connection waits in the kernel's queue, unanswered...
    let mut third = RawConnection::open(app.address).await;
    assert!(third.write(request.as_bytes()).await);
    let waited = tokio::time::timeout(Duration::from_millis(500), third.response()).await;
    assert!(waited.is_err(), "answered past the connection limit");
    // ...while the ones the server has are served on...
    assert!(first.write(request.as_bytes()).await);
    assert_eq!(first.response().await.unwrap().status, 200);
    // ...and it is served once one of them closes.
    drop(second);
    let response = within(Duration::from_secs(10), third.response()).await;
    assert_eq!(response.unwrap().status, 200);
}

async fn past_the_request_limit_a_request_is_a_503_in_the_callers_format() {
    let app = spawn_with_limits(Limits {
        max_requests: 1,
        ..Limits::default()
    })
    .await;
    let set = |id: i32, message: &str| {
        Request::post(SET).basic(ADMIN).json(&format!(
            r#"{{"AssociateId":{id},"UserPresenceStatus":{{"Status":"StatusNotAvailable","Message":"{message}"}}}}"#
        ))
    };
    // Signed in once, so that no check of the password needs the database below.
    assert_eq!(app.send(set(ADMIN_ID, "first")).await.status, 200);
    // One request being answered: a Set waiting for another program's write lock.
    let holder = hold_write_lock(&app.database_url).await;
    let address = app.address;
    let busy = tokio::spawn(async move { send_to(address, set(ADMIN_ID, "waited")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    // On a kept-alive connection, in XML.
    let mut client = RawConnection::open(app.address).await;
    let xml_get = format!(
        "POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dGplMDpUamUw\r\n\
         Accept: application/xml\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{GET_BODY}",
        GET_BODY.len()
    );
    assert!(client.write(xml_get.as_bytes()).await);
    let refused = client.response().await.expect("an answer");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        refused
            .text()
            .contains("<ErrorType>ServiceUnavailableException</ErrorType>")
            && refused.text().contains("more requests than it can take"),
        "{}",
        refused.text()
    );
    // The body was read before the refusal: the connection stays open for the next request.
    assert_eq!(refused.header("connection"), None);
    assert_eq!(app.send(set(SAMPLE_ID, "not stored")).await.status, 503);
    // Health checks and the metrics answer whatever the load.
    let live = app.send(Request::new("GET", "/health/live")).await;
    assert_eq!(live.status, 200);
    let metrics = app.send(Request::new("GET", "/metrics")).await;
    assert_eq!(metrics.status, 200);

    drop(holder);
    assert_eq!(busy.await.unwrap().status, 200);
    assert!(client.write(xml_get.as_bytes()).await);
    assert_eq!(client.response().await.expect("an answer").status, 200);
    assert_eq!(
        app.presence(SAMPLE_ID).await.unwrap().message.as_deref(),
        Some("ut"),
        "a refused Set stores nothing"
    );
    assert_eq!(
        app.send(Request::post(GET).basic(ADMIN).json(GET_BODY))
            .await
            .status,
        200
    );
}

/// A client that sends its body slowly waits on its own connection: it holds no place among
/// the requests answered at once, so a server answering one request at a time still answers
/// others meanwhile.
async fn a_body_sent_slowly_takes_no_place_among_the_requests_answered() {
    let app = spawn_with_limits(Limits {
        max_requests: 1,
        ..Limits::default()
    })
    .await;
    let mut slow = RawConnection::open(app.address).await;
    assert!(slow.write(get_head(GET_BODY.len()).as_bytes()).await);
    assert!(slow.write(&GET_BODY.as_bytes()[..5]).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let other = app
            .send(Request::post(GET).basic(ADMIN).json(GET_BODY))
            .await;
        assert_eq!(other.status, 200, "{}", other.text());
    }
    assert!(slow.write(&GET_BODY.as_bytes()[5..]).await);
    assert_eq!(slow.response().await.unwrap().status, 200);
}

async fn past_the_set_queue_a_set_is_a_503_and_nothing_is_stored() {
    let database = fresh_database().await;
    let database_url = database.url.clone();
    let server = ServerProcess::start(&database_url, &["--set-queue", "1"]);
    let set = |id: i32, message: &str| {
        Request::post(SET).basic(ADMIN).json(&format!(
            r#"{{"AssociateId":{id},"UserPresenceStatus":{{"Status":"StatusNotAvailable","Message":"{message}"}}}}"#
        ))
    };
    // Signed in once, so that no check of the password needs the database below.
    assert_eq!(server.send(set(1, "first")).await.status, 200);

    // Another program holds the write lock: the Sets that got in wait for their commit.
    let holder = hold_write_lock(&database_url).await;
    let address = server.address;
    let waiting: Vec<_> = (0..2)
        .map(|i| {
            tokio::spawn(async move { send_to(address, set(1, &format!("waited {i}"))).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = None;
    for attempt in 0..3 {
        let response = server.send(set(963, &format!("refused {attempt}"))).await;
        if response.status == 503 {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("a Set past the queue is refused");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["ErrorType"], "ServiceUnavailableException");
    // Refused as too many, at once: not after waiting for the lock as the database's own
    // timeout would have it.
    assert!(
        refused.text().contains("more requests than it can take"),
        "{}",
        refused.text()
    );

    drop(holder);
    for waiting in waiting {
        let response = waiting.await.unwrap();
        assert!(
            response.status == 200 || response.status == 503,
            "{}",
            response.text()
        );
    }
    let get = Request::post(GET)
        .basic(ADMIN)
        .json(r#"{"AssociateId":963}"#);
    let sample = server.send(get).await;
    assert_eq!(sample.json()["Message"], "ut", "no refused Set was stored");
}

/// Another program's write lock on the database, held until dropped.
async fn hold_write_lock(database_url: &str) -> Box<dyn std::any::Any + Send> {
    match database_url.strip_prefix("sqlite://") {
        Some(path) => {
            let connection = rusqlite::Connection::open(path).unwrap();
            connection.execute_batch("BEGIN IMMEDIATE").unwrap();
            Box::new(connection)
        }
        None => {
            let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute("BEGIN; LOCK TABLE service_user IN EXCLUSIVE MODE")
                .await
                .unwrap();
            Box::new(client)
        }
    }
}

async fn an_early_401_leaves_a_kept_alive_connection_open_for_the_next_request() {
    let app = spawn_app().await;
    let mut client = RawConnection::open(app.address).await;
    let wrong = format!(
        "POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic bm9ib2R5Om5vdGhpbmc=\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        GET_BODY.len()
    );
    let right = format!("{}{GET_BODY}", get_head(GET_BODY.len()));
    for _ in 0..3 {
        // The head first; the body after the server could already know the answer.
        assert!(client.write(wrong.as_bytes()).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(client.write(GET_BODY.as_bytes()).await);
        let refused = client.response().await.expect("the 401");
        assert_eq!(refused.status, 401);
        assert_eq!(refused.header("connection"), None);
        // The same connection carries the next request.
        assert!(client.write(right.as_bytes()).await);
        assert_eq!(
            client.response().await.expect("the next answer").status,
            200
        );
    }
}

async fn a_body_over_the_limit_is_a_413_that_closes_the_connection() {
    let app = spawn_app_with(TestSettings {
        http: HttpSettings {
            body_limit: 64,
            ..HttpSettings::default()
        },
        ..TestSettings::default()
    })
    .await;
    let large = format!("{GET_BODY}{}", " ".repeat(100));
    for (credentials, status) in [("dGplMDpUamUw", 413), ("bm9ib2R5Om5vdGhpbmc=", 401)] {
        // Kept alive, as far as the client is concerned.
        let mut client = RawConnection::open(app.address).await;
        let request = format!(
            "POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {credentials}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{large}",
            large.len()
        );
        assert!(client.write(request.as_bytes()).await);
        let response = client.response().await.expect("an answer");
        // Unauthenticated, the 401 comes first; either way the body was left unread.
        assert_eq!(response.status, status);
        assert_eq!(response.header("connection"), Some("close"));
        within(Duration::from_secs(10), client.closed()).await;
    }
}

async fn transfer_codings_other_than_chunked_are_501() {
    let app = spawn_app().await;
    for coding in ["gzip, chunked", "GZIP,chunked", "deflate, chunked"] {
        let request = format!(
            "POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dGplMDpUamUw\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: {coding}\r\nConnection: close\r\n\r\n\
             {:x}\r\n{GET_BODY}\r\n0\r\n\r\n",
            GET_BODY.len()
        );
        let response = send_raw(app.address, request.as_bytes()).await;
        assert_eq!(response.status, 501, "{coding}");
        assert_eq!(response.json()["ErrorType"], "NotImplementedException");
    }
    // Chunked alone is read as ever.
    let response = send_raw(app.address, chunked_get(&[GET_BODY]).as_bytes()).await;
    assert_eq!(response.status, 200);
}

async fn an_error_echoes_a_long_path_cut_short() {
    let app = spawn_app().await;
    let path = format!("/{}", "a".repeat(60_000));
    let response = app.send(Request::new("GET", &path)).await;
    assert_eq!(response.status, 404);
    let source = response.json()["ErrorSource"].as_str().unwrap().to_owned();
    assert!(source.len() <= 260, "{} bytes echoed", source.len());
    assert!(source.ends_with("..."));
    assert!(response.body.len() < 1024);
}

async fn form_and_json_bodies_that_are_not_utf8_are_400_and_store_nothing() {
    let app = spawn_app().await;
    let form = Request::post(SET).basic(ADMIN).body(
        "application/x-www-form-urlencoded",
        "AssociateId=963&UserPresenceStatus.Status=StatusNormal&UserPresenceStatus.Message=a%FF%FEb",
    );
    let response = app.send(form).await;
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(response.text().contains("UTF-8"), "{}", response.text());

    let mut json = br#"{"AssociateId":963,"Ignored":""#.to_vec();
    json.extend_from_slice(b"\xFF\xFE");
    json.extend_from_slice(br#"","UserPresenceStatus":{"Status":"StatusNormal","Message":"x"}}"#);
    let response = app
        .send(
            Request::post(SET)
                .basic(ADMIN)
                .body("application/json", json),
        )
        .await;
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(
        app.presence(SAMPLE_ID).await.unwrap().message.as_deref(),
        Some("ut")
    );
    // Percent-encoded UTF-8 is read as ever.
    let form = Request::post(SET).basic(ADMIN).body(
        "application/x-www-form-urlencoded",
        "AssociateId=963&UserPresenceStatus.Status=StatusNormal&UserPresenceStatus.Message=p%C3%A5+ferie",
    );
    assert_eq!(app.send(form).await.status, 200);
    assert_eq!(
        app.presence(SAMPLE_ID).await.unwrap().message.as_deref(),
        Some("på ferie")
    );
}

async fn the_sign_in_page_may_run_only_its_own_script_and_be_framed_by_no_one() {
    let app = spawn_app().await;
    let page = app.send(Request::new("GET", "/login")).await;
    assert_eq!(page.status, 200);
    let policy = page.header("content-security-policy").expect("a policy");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
}

async fn a_cookie_request_from_the_same_host_over_another_scheme_is_refused() {
    let app = spawn_app().await;
    let host = app.address.to_string();
    let sign_in = |origin: &str| {
        Request::post("/login").header("Origin", origin).body(
            "application/x-www-form-urlencoded",
            "login=tje0&password=Tje0",
        )
    };
    // The test server speaks plain HTTP, its cookies not Secure: its origin is http://HOST.
    let same = app.send(sign_in(&format!("http://{host}"))).await;
    assert_eq!(same.status, 200);
    let other_scheme = app.send(sign_in(&format!("https://{host}"))).await;
    assert_eq!(other_scheme.status, 403);
}
