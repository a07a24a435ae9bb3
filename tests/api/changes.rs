//! The history and the change feed over HTTP: `GET /presence/v1/changes` and the Server-Sent
//! Events of `GET /presence/v1/changes/stream`, on both backends; across two nodes on
//! PostgreSQL.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

both_backends!(
    the_history_pages_every_change_with_who_made_it,
    a_cursor_older_than_the_history_is_gone,
    a_stream_sends_each_change_once_in_order_and_resumes_after_its_last_id,
    a_stream_from_now_tells_where_it_starts_so_a_client_lost_before_any_change_resumes_there,
    a_stream_filters_by_associate_and_tells_of_timers,
    a_stream_behind_the_history_is_told_to_reset,
    an_idle_stream_sends_a_comment_every_fifteen_seconds,
    streams_past_the_limit_are_refused_until_one_closes,
    a_stream_resumed_after_the_server_was_killed_misses_nothing,
    a_timer_due_while_no_server_ran_is_recorded_with_its_time_at_the_next_start,
);

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq)]
struct Event {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// A change stream read by hand: the response's chunks decoded, then split into events.
struct Stream {
    socket: TcpStream,
    raw: Vec<u8>,
    /// The body decoded so far, not yet split into events.
    body: String,
    comments: usize,
    /// The position a stream from now started at: its first block, an `id:` alone.
    position: Option<String>,
    /// Whether the server may end the stream (it is being killed) without failing the test.
    may_end: bool,
}

impl Stream {
    async fn open(address: SocketAddr, query: &str, last_event_id: Option<&str>) -> Self {
        Self::open_as(address, USER, query, last_event_id).await
    }

    async fn open_as(
        address: SocketAddr,
        (login, password): (&str, &str),
        query: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        let mut socket = TcpStream::connect(address).await.unwrap();
        let basic = base64_of(&format!("{login}:{password}"));
        let mut request = format!(
            "GET /presence/v1/changes/stream{query} HTTP/1.1\r\nHost: test\r\nAuthorization: Basic {basic}\r\nAccept: text/event-stream\r\n"
        );
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        request.push_str("\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut stream = Self {
            socket,
            raw: Vec::new(),
            body: String::new(),
            comments: 0,
            position: None,
            may_end: false,
        };
        // The head.
        loop {
            if let Some(end) = stream.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&stream.raw[..end]).to_lowercase();
                assert!(head.starts_with("http/1.1 200"), "{head}");
                assert!(head.contains("content-type: text/event-stream"), "{head}");
                assert!(head.contains("transfer-encoding: chunked"), "{head}");
                stream.raw.drain(..end + 4);
                return stream;
            }
            stream.read_more(Duration::from_secs(5)).await;
        }
    }

    async fn read_more(&mut self, within: Duration) -> bool {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(within, self.socket.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                assert!(self.may_end, "the stream ended");
                false
            }
            Ok(Ok(read)) => {
                self.raw.extend_from_slice(&chunk[..read]);
                true
            }
            Err(_) => false,
        }
    }

    /// Moves whole chunks from `raw` into `body`.
    fn decode(&mut self) {
        while let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size_text = String::from_utf8_lossy(&self.raw[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.trim(), 16).unwrap();
            if self.raw.len() < line_end + 2 + size + 2 {
                return;
            }
            let data = &self.raw[line_end + 2..line_end + 2 + size];
            self.body.push_str(std::str::from_utf8(data).unwrap());
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }

    /// The next event, or `None` if none comes within `within`.
    async fn next(&mut self, within: Duration) -> Option<Event> {
        let deadline = Instant::now() + within;
        loop {
            self.decode();
            while let Some(end) = self.body.find("\n\n") {
                let block: String = self.body.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                let mut comment = false;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id: ") {
                        event.id = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("event: ") {
                        event.event = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        event.data.push_str(value);
                    } else if line.starts_with(':') {
                        comment = true;
                    }
                }
                if comment {
                    self.comments += 1;
                    continue;
                }
                // A block without data is no event: a stream from now starts with its
                // position, an `id:` alone.
                if event.data.is_empty() && event.event.is_none() {
                    self.position = event.id;
                    continue;
                }
                return Some(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_more(left).await {
                return None;
            }
        }
    }

    async fn change(&mut self) -> Event {
        let event = self
            .next(Duration::from_secs(5))
            .await
            .expect("a change within 5 s");
        assert_eq!(event.event.as_deref(), Some("change"));
        event
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn superoffice_set(app: &TestApp, who: (&str, &str), id: i32, status: &str, message: &str) {
    let response = app
        .send(Request::post(SET).basic(who).json(&format!(
            r#"{{"AssociateId":{id},"UserPresenceStatus":{{"Status":"{status}","Message":"{message}"}}}}"#
        )))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
}

async fn changes(app: &TestApp, query: &str) -> (u16, Value) {
    let response = app
        .send(Request::new("GET", &format!("/presence/v1/changes{query}")).basic(USER))
        .await;
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    )
}

async fn the_history_pages_every_change_with_who_made_it() {
    let app = spawn_app().await;
    let (status, start) = changes(&app, "").await;
    assert_eq!(status, 200);
    let before = start["items"].as_array().unwrap().len();
    superoffice_set(&app, USER, USER_ID, "StatusNotAvailable", "Lunch").await;
    superoffice_set(&app, ADMIN, USER_ID, "StatusNormal", "").await;

    let (_, page) = changes(&app, &format!("?after={}", start["next"])).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    let lunch = &items[0];
    assert_eq!(lunch["associateId"], USER_ID);
    assert_eq!(lunch["kind"], "status");
    assert_eq!(
        lunch["from"],
        json!({"status": "StatusNormal", "message": null, "until": null})
    );
    assert_eq!(
        lunch["to"],
        json!({"status": "StatusNotAvailable", "message": "Lunch", "until": null})
    );
    assert_eq!(lunch["by"], json!({"kind": "user", "associateId": USER_ID}));
    assert_eq!(
        lunch["via"],
        json!({"scheme": "basic", "application": null})
    );
    assert_eq!(lunch["absence"], Value::Null);
    assert!(lunch["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        items[1]["by"],
        json!({"kind": "user", "associateId": ADMIN_ID})
    );
    assert!(items[0]["revision"].as_i64() < items[1]["revision"].as_i64());
    assert_eq!(page["next"], items[1]["revision"]);

    // Paged one at a time, and by associate.
    let (_, one) = changes(&app, &format!("?after={}&limit=1", start["next"])).await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(one["next"], lunch["revision"]);
    let (_, nobody) = changes(&app, "?associate=999").await;
    assert_eq!(nobody["items"], json!([]));
    let (_, all) = changes(&app, "").await;
    assert_eq!(all["items"].as_array().unwrap().len(), before + 2);
    // The furthest cursor there is: nothing after it, yet.
    let (status, far) = changes(&app, &format!("?after={}&associate=1&limit=1", i64::MAX)).await;
    assert_eq!((status, &far["items"]), (200, &json!([])), "{far}");

    for bad in [
        "?after=-1",
        "?after=x",
        "?associate=0",
        "?limit=0",
        "?ids=1",
    ] {
        let (status, problem) = changes(&app, bad).await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    let anonymous = app.send(Request::new("GET", "/presence/v1/changes")).await;
    assert_eq!(anonymous.status, 401);
}

async fn a_cursor_older_than_the_history_is_gone() {
    let app = spawn_app().await;
    superoffice_set(&app, USER, USER_ID, "StatusNotAvailable", "Out").await;
    superoffice_set(&app, USER, USER_ID, "StatusNormal", "").await;
    app.store.trim_history(i64::MAX).await.unwrap();
    let (status, problem) = changes(&app, "?after=0").await;
    assert_eq!(status, 410, "{problem}");
    assert_eq!(problem["status"], 410);
    // Without a cursor, the history starts at what it keeps.
    let (status, page) = changes(&app, "").await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

/// The value of a metric, from `GET /metrics`.
async fn metric(app: &TestApp, series: &str) -> String {
    let scrape = app.send(Request::new("GET", "/metrics")).await;
    scrape
        .text()
        .lines()
        .find_map(|line| Some(line.strip_prefix(series)?.strip_prefix(' ')?.to_owned()))
        .unwrap_or_default()
}

async fn a_stream_sends_each_change_once_in_order_and_resumes_after_its_last_id() {
    let app = spawn_app().await;
    assert_eq!(metric(&app, "presence_change_streams").await, "0");
    let mut stream = Stream::open(app.address, "", None).await;
    assert_eq!(metric(&app, "presence_change_streams").await, "1");
    superoffice_set(&app, USER, USER_ID, "StatusNotAvailable", "one").await;
    superoffice_set(&app, USER, USER_ID, "StatusNormal", "two").await;
    let first = stream.change().await;
    let second = stream.change().await;
    assert_eq!(first.json()["to"]["message"], "one");
    assert_eq!(second.json()["to"]["message"], "two");
    assert_eq!(first.id, Some(first.json()["revision"].to_string()));
    let (first_id, second_id): (i64, i64) = (
        first.id.clone().unwrap().parse().unwrap(),
        second.id.clone().unwrap().parse().unwrap(),
    );
    assert!(first_id < second_id);
    drop(stream);
    // The server notices the client left when it next writes: a change does.
    superoffice_set(&app, USER, USER_ID, "StatusNotAvailable", "three").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&app, "presence_change_streams").await != "0" {
        assert!(Instant::now() < deadline, "the stream's task ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Changes while the client is away, then a reconnection after the first event.
    let mut resumed = Stream::open(app.address, "", first.id.as_deref()).await;
    superoffice_set(&app, USER, USER_ID, "StatusNormal", "four").await;
    let messages: Vec<Value> = [
        resumed.change().await,
        resumed.change().await,
        resumed.change().await,
    ]
    .iter()
    .map(|e| e.json()["to"]["message"].clone())
    .collect();
    assert_eq!(messages, ["two", "three", "four"]);
    assert_eq!(
        resumed.next(Duration::from_millis(700)).await,
        None,
        "nothing repeated"
    );
    // `?after=` does the same.
    let mut again = Stream::open(app.address, &format!("?after={second_id}"), None).await;
    assert_eq!(again.change().await.json()["to"]["message"], "three");
}

async fn a_stream_from_now_tells_where_it_starts_so_a_client_lost_before_any_change_resumes_there()
{
    let app = spawn_app().await;
    superoffice_set(&app, USER, USER_ID, "StatusNotAvailable", "before").await;
    let start = latest(app.address).await;
    let mut stream = Stream::open(app.address, "", None).await;
    assert_eq!(stream.next(Duration::from_millis(300)).await, None);
    assert_eq!(stream.position, Some(start.to_string()));
    drop(stream);
    // Lost before any change: what was set meanwhile comes after the position, and nothing
    // from before it.
    superoffice_set(&app, USER, USER_ID, "StatusNormal", "meanwhile").await;
    let mut resumed = Stream::open(app.address, "", Some(&start.to_string())).await;
    assert_eq!(resumed.change().await.json()["to"]["message"], "meanwhile");
    assert_eq!(
        resumed.position, None,
        "a resumed stream knows its position"
    );
    // A resumed stream sends no position: its client knows it.
    assert_eq!(resumed.next(Duration::from_millis(300)).await, None);
}

async fn a_stream_filters_by_associate_and_tells_of_timers() {
    let app = spawn_app().await;
    let mut mine = Stream::open(app.address, &format!("?associate={USER_ID}"), None).await;
    let mut others = Stream::open(app.address, &format!("?associate={ADMIN_ID},963"), None).await;
    let until = presence::timestamp::format(app.clock.now_millis() + 60_000);
    let response = app
        .send(
            Request::new("PUT", &format!("/presence/v1/users/{USER_ID}/status"))
                .basic(USER)
                .json(
                    &json!({"status": "StatusNotAvailable", "message": "Call", "until": until})
                        .to_string(),
                ),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    superoffice_set(&app, ADMIN, ADMIN_ID, "StatusNotAvailable", "admin").await;
    let timed = mine.change().await.json();
    assert_eq!(timed["to"]["until"], until);
    assert_eq!(others.change().await.json()["associateId"], ADMIN_ID);
    // The minute passes: the timer records the end within a second.
    app.clock.advance(Duration::from_secs(61));
    let ended = mine
        .next(Duration::from_secs(1))
        .await
        .expect("the timer's change within a second")
        .json();
    assert_eq!(ended["by"], json!({"kind": "timer"}));
    assert_eq!(ended["at"], until);
    assert_eq!(ended["to"]["status"], "StatusNormal");
    assert_eq!(others.next(Duration::from_millis(700)).await, None);
}

async fn a_stream_behind_the_history_is_told_to_reset() {
    let app = spawn_app().await;
    superoffice_set(&app, USER, USER_ID, "StatusNotAvailable", "old").await;
    superoffice_set(&app, USER, USER_ID, "StatusNormal", "newest").await;
    app.store.trim_history(i64::MAX).await.unwrap();
    let mut stream = Stream::open(app.address, "", Some("1")).await;
    let reset = stream.next(Duration::from_secs(5)).await.expect("a reset");
    assert_eq!(reset.event.as_deref(), Some("reset"), "{reset:?}");
    // It goes on from the newest change, and sends what follows.
    superoffice_set(&app, USER, USER_ID, "StatusNotAvailable", "after").await;
    assert_eq!(stream.change().await.json()["to"]["message"], "after");
}

async fn an_idle_stream_sends_a_comment_every_fifteen_seconds() {
    let app = spawn_app().await;
    let mut stream = Stream::open(app.address, "", None).await;
    assert_eq!(stream.next(Duration::from_secs(16)).await, None);
    assert_eq!(stream.comments, 1, "one keep-alive comment in 16 s");
}

async fn set_on(address: SocketAddr, id: i32, message: &str) -> bool {
    let status = if message.ends_with(['0', '2', '4', '6', '8']) {
        "StatusNotAvailable"
    } else {
        "StatusNormal"
    };
    let request = Request::post(SET).basic(ADMIN).json(&format!(
        r#"{{"AssociateId":{id},"UserPresenceStatus":{{"Status":"{status}","Message":"{message}"}}}}"#
    ));
    // A server being killed may drop the request: the history says whether it was stored.
    let sent = async {
        let mut socket = TcpStream::connect(address).await.ok()?;
        socket.write_all(&request.to_bytes(address)).await.ok()?;
        let mut received = Vec::new();
        socket.read_to_end(&mut received).await.ok()?;
        Some(received.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), sent).await,
        Ok(Some(true))
    )
}

/// Every change after `after`, from the history of the server at `address`.
async fn history_after(address: SocketAddr, after: i64) -> Vec<i64> {
    let mut revisions = Vec::new();
    let mut cursor = after;
    loop {
        let response = send_to(
            address,
            Request::new(
                "GET",
                &format!("/presence/v1/changes?after={cursor}&limit=1000"),
            )
            .basic(ADMIN),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.text());
        let page: Value = serde_json::from_slice(&response.body).unwrap();
        let items = page["items"].as_array().unwrap();
        revisions.extend(items.iter().map(|c| c["revision"].as_i64().unwrap()));
        cursor = page["next"].as_i64().unwrap();
        if items.len() < 1000 {
            return revisions;
        }
    }
}

async fn latest(address: SocketAddr) -> i64 {
    let response = send_to(
        address,
        Request::new("GET", "/presence/v1/changes?limit=1&after=0").basic(ADMIN),
    )
    .await;
    let page: Value = serde_json::from_slice(&response.body).unwrap();
    let mut cursor = page["next"].as_i64().unwrap();
    for revision in history_after(address, cursor).await {
        cursor = revision;
    }
    cursor
}

/// Reads changes from `stream` until it has `until` (a revision), or the stream ends.
async fn read_until(stream: &mut Stream, seen: &mut Vec<i64>, until: i64) {
    while seen.last().is_none_or(|&last| last < until) {
        match stream.next(Duration::from_secs(5)).await {
            Some(event) if event.event.as_deref() == Some("change") => {
                seen.push(event.id.unwrap().parse().unwrap());
            }
            Some(other) => panic!("{other:?}"),
            None => return,
        }
    }
}

async fn a_stream_resumed_after_the_server_was_killed_misses_nothing() {
    {
        let database = fresh_database().await;
        let mut server = ServerProcess::start(&database.url, &[]);
        let start = latest(server.address).await;
        let mut stream =
            Stream::open_as(server.address, ADMIN, &format!("?after={start}"), None).await;
        stream.may_end = true;
        let mut seen = Vec::new();
        for n in 0..20 {
            set_on(server.address, 963, &format!("before {n}")).await;
        }
        let killed_at = latest(server.address).await;
        read_until(&mut stream, &mut seen, killed_at).await;
        // Killed while Sets are under way: some are answered, some cut off.
        let address = server.address;
        let sets = tokio::spawn(async move {
            for n in 0..20 {
                set_on(address, 963, &format!("during {n}")).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        sets.await.unwrap();
        read_until(&mut stream, &mut seen, i64::MAX).await;

        let server = ServerProcess::start(&database.url, &[]);
        let last = seen.last().copied().unwrap_or(start).to_string();
        let mut resumed = Stream::open_as(server.address, ADMIN, "", Some(&last)).await;
        for n in 0..10 {
            set_on(server.address, 963, &format!("after {n}")).await;
        }
        let end = latest(server.address).await;
        read_until(&mut resumed, &mut seen, end).await;
        assert_eq!(seen, history_after(server.address, start).await);
        assert!(seen.len() >= 30, "{} changes", seen.len());
    }
}

#[test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "built without PRESENCE_TEST_POSTGRES_URL"
)]
fn two_nodes_stream_every_change_of_either_and_a_node_stopping_loses_none() {
    run_on(Backend::postgres(), async {
        let database = fresh_database().await;
        let mut one = ServerProcess::start(&database.url, &[]);
        let two = ServerProcess::start(&database.url, &[]);
        let start = latest(one.address).await;
        let after = format!("?after={start}");
        let mut on_one = Stream::open_as(one.address, ADMIN, &after, None).await;
        let mut on_two = Stream::open_as(two.address, ADMIN, &after, None).await;
        on_one.may_end = true;
        // A change on one node reaches a stream on the other within a second.
        for n in 0..5 {
            let sent = Instant::now();
            assert!(set_on(one.address, 963, &format!("one {n}")).await);
            let event = on_two
                .next(Duration::from_secs(1))
                .await
                .expect("within a second");
            assert_eq!(event.json()["to"]["message"], format!("one {n}"));
            assert!(sent.elapsed() < Duration::from_secs(1));
        }
        // Sets on both; node one stops half-way, its stream goes on at node two.
        let (mut seen_one, mut seen_two) = (Vec::new(), Vec::new());
        for n in 0..30 {
            if n == 15 {
                read_until(&mut on_one, &mut seen_one, latest(two.address).await).await;
                one.child.kill().unwrap();
                one.child.wait().unwrap();
                let last = seen_one.last().copied().unwrap_or(start).to_string();
                on_one = Stream::open_as(two.address, ADMIN, "", Some(&last)).await;
            }
            let node = if n % 2 == 0 && n < 15 {
                one.address
            } else {
                two.address
            };
            let associate = if n % 3 == 0 { ADMIN_ID } else { 963 };
            set_on(node, associate, &format!("both {n}")).await;
        }
        let end = latest(two.address).await;
        read_until(&mut on_one, &mut seen_one, end).await;
        read_until(&mut on_two, &mut seen_two, end).await;
        let history = history_after(two.address, start).await;
        assert_eq!(seen_two, history[5..]);
        assert_eq!(seen_one, history);
    });
}

/// `presence history` as JSON lines.
fn history_cli(database_url: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["history", "--json"];
    all.extend_from_slice(args);
    let output = run_presence(database_url, &all, "");
    assert!(output.status.success(), "{}", error(&output));
    stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn a_timer_due_while_no_server_ran_is_recorded_with_its_time_at_the_next_start() {
    let database = fresh_database().await;
    let url = database.url.as_str();
    for args in [
        &["migrate"][..],
        &[
            "user",
            "add",
            "bob",
            "--associate-id",
            "5",
            "--password-stdin",
        ],
        &[
            "status",
            "set",
            "5",
            "StatusNotAvailable",
            "--message",
            "Brb",
            "--until",
            "1s",
        ],
    ] {
        let output = run_presence(url, args, "bob-secret\n");
        assert!(output.status.success(), "{args:?}: {}", error(&output));
    }
    let set = history_cli(url, &["--associate", "5"]);
    assert_eq!(set.len(), 2, "{set:?}");
    assert_eq!(set[0]["kind"], "userAdded");
    assert_eq!(set[1]["by"], json!({"kind": "commandLine"}));
    let until = set[1]["to"]["until"].clone();
    // Due while nothing runs; recorded by the first server to start, with the time it was due.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let _server = ServerProcess::start(url, &[]);
    let deadline = Instant::now() + Duration::from_secs(3);
    let ended = loop {
        let found = history_cli(url, &["--associate", "5"]);
        if found.len() == 3 {
            break found[2].clone();
        }
        assert!(Instant::now() < deadline, "no timer change: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ended["by"], json!({"kind": "timer"}));
    assert_eq!(ended["at"], until);
    assert_eq!(ended["to"]["status"], "StatusNormal");
    // Filters: none since a time after it, and columns name who made each change.
    assert!(history_cli(url, &["--since", "2999-01-01T00:00:00Z"]).is_empty());
    let output = run_presence(url, &["history", "--associate", "5"], "");
    let text = stdout(&output);
    assert!(
        text.contains("userAdded") && text.contains("commandLine") && text.contains("timer"),
        "{text}"
    );
}

async fn streams_past_the_limit_are_refused_until_one_closes() {
    let mut settings = TestSettings::default();
    settings.http.limits.max_streams = 2;
    let app = spawn_app_with(settings).await;
    let first = Stream::open(app.address, "", None).await;
    let _second = Stream::open(app.address, "", None).await;
    let refused = app
        .send(Request::new("GET", "/presence/v1/changes/stream").basic(USER))
        .await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    drop(first);
    // The server notices the client left when it next writes: a change does.
    superoffice_set(&app, USER, USER_ID, "StatusNotAvailable", "out").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&app, "presence_change_streams").await != "1" {
        assert!(
            Instant::now() < deadline,
            "the closed stream is counted still"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _third = Stream::open(app.address, "", None).await;
}
