//! Micro-benchmarks of what every request pays for: body decoding, response encoding,
//! `$select`, `Accept` negotiation, the credential cache, the store's lookups (from memory), the
//! raw SQLite reads they replaced, and one whole Get without a socket, as `serve` answers it and
//! through the router.
//!
//! ```text
//! cargo bench --bench micro                 # everything
//! cargo bench --bench micro -- auth/        # one group (a substring of the names)
//! ```
//!
//! The target is a cached Basic check (`auth/cache_key_and_contains`) under 1 µs.

use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Request};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt as _;

use presence::app;
use presence::clock::Clock;
use presence::config::AuthSettings;
use presence::config::HttpSettings;
use presence::domain::{AssociateId, Message, UserPresenceStatus, UserStatus};
use presence::http::auth::cache::CredentialCache;
use presence::http::auth::{Authenticator, BasicAuthenticator};
use presence::http::body::{self, GetUserPresenceStatusRequest, SetUserPresenceStatusRequest};
use presence::http::encode::{self, PresenceView};
use presence::http::negotiate::ResponseFormat;
use presence::http::select::Select;
use presence::http::service::Service;
use presence::http::state::AppState;
use presence::password;
use presence::store::{NewServiceUser, Store};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

const JSON: Option<&[u8]> = Some(b"application/json");
const XML: Option<&[u8]> = Some(b"application/xml");
const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");

const GET_JSON: &[u8] = br#"{"AssociateId":963}"#;
/// What the official TypeScript client sends.
const GET_JSON_CAMEL: &[u8] = br#"{"associateId":963}"#;
const SET_JSON: &[u8] = br#"{"AssociateId":963,"UserPresenceStatus":{"Status":"StatusNotAvailable","Message":"Back at 14:00"}}"#;
const GET_XML: &[u8] =
    b"<GetUserPresenceStatus><AssociateId>963</AssociateId></GetUserPresenceStatus>";
const SET_XML: &[u8] = b"<SetUserPresenceStatus><AssociateId>963</AssociateId><UserPresenceStatus>\
<Status>StatusNotAvailable</Status><Message>Back at 14:00</Message></UserPresenceStatus></SetUserPresenceStatus>";
const GET_FORM: &[u8] = b"AssociateId=963";
const SET_FORM: &[u8] =
    b"AssociateId=963&UserPresenceStatus.Status=StatusNotAvailable&UserPresenceStatus.Message=Back%20at%2014%3A00";

/// The Get address as documented: what `serve` answers without the router.
const DOCUMENTED_GET: &str = "/api/v1/Agents/User/GetUserPresenceStatus";

/// The benchmark user's credentials, as the `Authorization` header carries them.
const LOGIN: &str = "bench";
const PASSWORD: &str = "bench-password";

fn decoding(c: &mut Criterion) {
    let get = |ct, body| body::decode::<GetUserPresenceStatusRequest>(ct, body);
    let set = |ct, body| body::decode::<SetUserPresenceStatusRequest>(ct, body);
    // Each body must decode, or the figures would be those of an error path.
    for (ct, b) in [
        (JSON, GET_JSON),
        (JSON, GET_JSON_CAMEL),
        (XML, GET_XML),
        (FORM, GET_FORM),
    ] {
        assert_eq!(
            get(ct, b).expect("a valid Get body").associate_id,
            AssociateId::new(963)
        );
    }
    for (ct, b) in [(JSON, SET_JSON), (XML, SET_XML), (FORM, SET_FORM)] {
        let request = set(ct, b).expect("a valid Set body");
        assert_eq!(
            request.user_presence_status.status,
            UserStatus::StatusNotAvailable
        );
        assert_eq!(
            request.user_presence_status.message.as_deref(),
            Some("Back at 14:00")
        );
    }

    let mut group = c.benchmark_group("decode");
    group.bench_function("json/get", |b| {
        b.iter(|| get(black_box(JSON), black_box(GET_JSON)))
    });
    group.bench_function("json/get_camel_case", |b| {
        b.iter(|| get(black_box(JSON), black_box(GET_JSON_CAMEL)))
    });
    group.bench_function("json/set", |b| {
        b.iter(|| set(black_box(JSON), black_box(SET_JSON)))
    });
    group.bench_function("xml/get", |b| {
        b.iter(|| get(black_box(XML), black_box(GET_XML)))
    });
    group.bench_function("xml/set", |b| {
        b.iter(|| set(black_box(XML), black_box(SET_XML)))
    });
    group.bench_function("form/get", |b| {
        b.iter(|| get(black_box(FORM), black_box(GET_FORM)))
    });
    group.bench_function("form/set", |b| {
        b.iter(|| set(black_box(FORM), black_box(SET_FORM)))
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let normal = UserPresenceStatus {
        status: UserStatus::StatusNormal,
        message: Message::none(),
    };
    let away = UserPresenceStatus {
        status: UserStatus::StatusNotAvailable,
        message: Message::new(Some("Back at 14:00".into())).expect("a short message"),
    };
    let json = ResponseFormat::ApplicationJson;
    let xml = ResponseFormat::ApplicationXml;
    assert_eq!(
        encode::presence(json, Some(&Select::ALL.apply(&normal))),
        &br#"{"Status":"StatusNormal","Message":null}"#[..]
    );

    let mut group = c.benchmark_group("encode");
    let view = |p| -> PresenceView<'_> { Select::ALL.apply(p) };
    group.bench_function("json/normal", |b| {
        b.iter(|| encode::presence(black_box(json), Some(&view(black_box(&normal)))))
    });
    group.bench_function("json/message", |b| {
        b.iter(|| encode::presence(black_box(json), Some(&view(black_box(&away)))))
    });
    group.bench_function("json/null", |b| {
        b.iter(|| encode::presence(black_box(json), None))
    });
    group.bench_function("xml/message", |b| {
        b.iter(|| encode::presence(black_box(xml), Some(&view(black_box(&away)))))
    });
    group.finish();
}

fn selecting(c: &mut Criterion) {
    let mut group = c.benchmark_group("select");
    group.bench_function("absent", |b| b.iter(|| Select::from_query(black_box(None))));
    group.bench_function("status_message", |b| {
        b.iter(|| Select::from_query(black_box(Some("$select=Status,Message"))))
    });
    group.bench_function("encoded_path", |b| {
        b.iter(|| Select::from_query(black_box(Some("%24select=%20status/x%20,message&other=1"))))
    });
    group.finish();
}

fn negotiating(c: &mut Criterion) {
    let none = HeaderMap::new();
    let mut json = HeaderMap::new();
    json.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let mut browser = HeaderMap::new();
    browser.insert(
        ACCEPT,
        HeaderValue::from_static("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    );
    assert_eq!(
        ResponseFormat::from_headers(&browser),
        ResponseFormat::ApplicationXml
    );

    let mut group = c.benchmark_group("negotiate");
    group.bench_function("no_accept", |b| {
        b.iter(|| ResponseFormat::from_headers(black_box(&none)))
    });
    group.bench_function("application_json", |b| {
        b.iter(|| ResponseFormat::from_headers(black_box(&json)))
    });
    group.bench_function("browser", |b| {
        b.iter(|| ResponseFormat::from_headers(black_box(&browser)))
    });
    group.finish();
}

/// A database with the benchmark user (a real Argon2id hash) and `others` password-less users.
fn seeded_store(
    dir: &tempfile::TempDir,
    others: i32,
    runtime: &tokio::runtime::Runtime,
) -> (Store, PathBuf) {
    let path = dir.path().join("micro.db");
    let url = format!("sqlite://{}", path.display());
    runtime.block_on(async {
        let (store, _) = Store::open_and_migrate(&url)
            .await
            .expect("a fresh database");
        store
            .add_user(NewServiceUser {
                associate_id: AssociateId::new(1),
                login: LOGIN.into(),
                password_hash: Some(password::hash(PASSWORD).expect("a hash")),
                is_admin: true,
                presence: UserPresenceStatus {
                    status: UserStatus::StatusNormal,
                    message: Message::none(),
                },
            })
            .await
            .expect("the benchmark user");
        store
    });
    // The other rows go in with one transaction, as the load test's do.
    let mut connection = Connection::open(&path).expect("the database");
    let tx = connection.transaction().expect("a transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO service_user (associate_id, login, status, updated_at) \
                 VALUES (?1, 'u' || ?1, 1, 0)",
            )
            .expect("the insert");
        for id in 2..=others + 1 {
            insert.execute([id]).expect("a row");
        }
    }
    tx.commit().expect("the commit");
    connection
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("a checkpoint");
    (Store::open(&url).expect("the seeded database"), path)
}

/// Runs a future that never waits (the SQLite reads and the cached Basic check answer inline)
/// without a runtime's scheduling in the measurement.
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waited; this benchmark measures only inline work"),
    }
}

fn authentication(c: &mut Criterion) {
    let cache = CredentialCache::new();
    let credentials = format!("{LOGIN}:{PASSWORD}");
    let phc = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let id = AssociateId::new(1);
    cache.insert(cache.key(credentials.as_bytes()), id, phc);
    // A full cache, as on a large help desk, so lookups pay for a realistic table.
    for n in 0..49_999 {
        let other = format!("u{n}:password{n}");
        cache.insert(cache.key(other.as_bytes()), AssociateId::new(n + 2), phc);
    }

    let mut group = c.benchmark_group("auth");
    group.bench_function("cache_key", |b| {
        b.iter(|| cache.key(black_box(credentials.as_bytes())))
    });
    let key = cache.key(credentials.as_bytes());
    group.bench_function("cache_contains", |b| {
        b.iter(|| cache.contains(black_box(&key), black_box(id), black_box(phc)))
    });
    group.bench_function("cache_key_and_contains", |b| {
        b.iter(|| {
            let key = cache.key(black_box(credentials.as_bytes()));
            assert!(cache.contains(&key, black_box(id), black_box(phc)));
        })
    });

    // The whole cached check as a request pays for it: base64, the login's hash and status
    // from the store (in memory, after a look at SQLite's wal-index), then the cache.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (store, _) = seeded_store(&dir, 10_000, &runtime);
    let basic = BasicAuthenticator::new();
    let clock = Clock::System;
    let encoded = STANDARD.encode(&credentials);
    // The first check runs Argon2 and fills the cache.
    runtime
        .block_on(basic.authenticate(&store, &clock, &encoded))
        .expect("the benchmark user signs in");
    group.bench_function("basic_cached", |b| {
        b.iter(|| now(basic.authenticate(&store, &clock, black_box(&encoded))).expect("signed in"))
    });
    // And as the request extractor runs it: every scheme's dispatch, then Basic.
    let authenticator = runtime
        .block_on(Authenticator::new(AuthSettings::default(), Clock::System))
        .expect("an authenticator");
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::try_from(format!("Basic {encoded}")).expect("a header"),
    );
    runtime
        .block_on(authenticator.authenticate(&store, &headers))
        .expect("the benchmark user signs in");
    group.bench_function("authenticator_basic_cached", |b| {
        b.iter(|| now(authenticator.authenticate(&store, black_box(&headers))).expect("signed in"))
    });
    group.finish();

    let mut group = c.benchmark_group("store");
    let mut next = 0;
    group.bench_function("presence_10k", |b| {
        b.iter(|| {
            next = next % 10_000 + 1;
            now(store.presence(AssociateId::new(black_box(next))))
                .expect("a read")
                .expect("a Service user")
        })
    });
    group.finish();
}

/// A connection opened as the store opens its readers.
fn reader(path: &Path) -> Connection {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).expect("the database");
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .expect("a pragma");
    connection
}

const PRESENCE_BY_ID: &str = "SELECT status, message FROM service_user WHERE associate_id = ?1";
const CREDENTIALS_BY_LOGIN: &str =
    "SELECT associate_id, password_hash, is_admin, status FROM service_user WHERE login = ?1";

fn presence_by_id(connection: &Connection, id: i32) -> Option<(i64, Option<String>)> {
    connection
        .prepare_cached(PRESENCE_BY_ID)
        .expect("the query")
        .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .expect("a read")
}

fn credentials_by_login(
    connection: &Connection,
    login: &str,
) -> Option<(i32, Option<String>, bool, i64)> {
    connection
        .prepare_cached(CREDENTIALS_BY_LOGIN)
        .expect("the query")
        .query_row([login], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()
        .expect("a read")
}

/// What SQLite's WAL locking costs each read transaction: the same queries on connections
/// opened as the store opens them, each in its own transaction (as the store runs them), both
/// of a request's reads in one transaction, and with `locking_mode=EXCLUSIVE`, which keeps
/// the WAL index in the process's memory and takes no file lock per transaction (but shuts
/// every other process, the CLI included, out of the file).
fn sqlite_locking(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (_, path) = seeded_store(&dir, 10_000, &runtime);
    let exclusive_path = dir.path().join("exclusive.db");
    std::fs::copy(&path, &exclusive_path).expect("a copy of the database");
    let shared = reader(&path);
    let exclusive = reader(&exclusive_path);
    exclusive
        .pragma_update(None, "locking_mode", "EXCLUSIVE")
        .expect("exclusive locking");
    exclusive
        .pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    assert!(presence_by_id(&exclusive, 963).is_some());

    let mut group = c.benchmark_group("sqlite");
    let mut next = 0;
    let mut id = move || {
        next = next % 10_000 + 1;
        black_box(next)
    };
    group.bench_function("read_own_transaction", |b| {
        b.iter(|| presence_by_id(&shared, id()).expect("a row"))
    });
    group.bench_function("two_reads_own_transactions", |b| {
        b.iter(|| {
            let credentials = credentials_by_login(&shared, black_box(LOGIN)).expect("a row");
            (credentials, presence_by_id(&shared, id()).expect("a row"))
        })
    });
    group.bench_function("two_reads_one_transaction", |b| {
        b.iter(|| {
            shared
                .prepare_cached("BEGIN")
                .expect("BEGIN")
                .execute([])
                .expect("BEGIN");
            let credentials = credentials_by_login(&shared, black_box(LOGIN)).expect("a row");
            let presence = presence_by_id(&shared, id()).expect("a row");
            shared
                .prepare_cached("COMMIT")
                .expect("COMMIT")
                .execute([])
                .expect("COMMIT");
            (credentials, presence)
        })
    });
    group.bench_function("read_exclusive_locking", |b| {
        b.iter(|| presence_by_id(&exclusive, id()).expect("a row"))
    });
    group.finish();
}

/// Reads by random id from 1 000 000 associates (a 37 MB file): with SQLite's default page cache
/// (2 MB per connection) most reads miss it and fetch the page with a `pread`; with
/// `mmap_size` the page comes from the mapping.
fn sqlite_large(c: &mut Criterion) {
    const ASSOCIATES: i64 = 1_000_000;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("large.db");
    {
        let connection = Connection::open(&path).expect("the database");
        connection
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE service_user (
                     associate_id INTEGER PRIMARY KEY, login TEXT NOT NULL UNIQUE COLLATE NOCASE,
                     password_hash TEXT, is_admin INTEGER NOT NULL DEFAULT 0, status INTEGER NOT NULL,
                     message TEXT, updated_at INTEGER NOT NULL) STRICT;
                 WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < {ASSOCIATES})
                 INSERT INTO service_user (associate_id, login, status, updated_at)
                 SELECT id, 'u' || id, 1, 0 FROM n;
                 PRAGMA wal_checkpoint(TRUNCATE);"
            ))
            .expect("a million rows");
    }
    let default_cache = reader(&path);
    let mapped = reader(&path);
    mapped
        .pragma_update(None, "mmap_size", 256 * 1024 * 1024)
        .expect("mmap_size");
    // A fixed sequence of ids spread over the whole table.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut random_id = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        i32::try_from((state >> 33) % ASSOCIATES as u64 + 1).expect("an id")
    };
    let mut group = c.benchmark_group("sqlite_1m");
    group.bench_function("read_random_default_cache", |b| {
        b.iter(|| presence_by_id(&default_cache, random_id()).expect("a row"))
    });
    group.bench_function("read_random_mmap", |b| {
        b.iter(|| presence_by_id(&mapped, random_id()).expect("a row"))
    });
    group.finish();
}

/// One whole `GetUserPresenceStatus` through the router and middleware, without a socket or
/// HTTP parsing: what the service adds to what axum and hyper cost.
fn whole_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (store, _) = seeded_store(&dir, 10_000, &runtime);
    let auth = runtime
        .block_on(Authenticator::new(AuthSettings::default(), Clock::System))
        .expect("an authenticator");
    let state = AppState::new(store, HttpSettings::default(), auth);
    let router = app::router(state.clone());
    let service = Service::new(state.clone(), router.clone());
    let authorization = format!("Basic {}", STANDARD.encode(format!("{LOGIN}:{PASSWORD}")));
    let request = |path: &str, body: &'static [u8]| {
        Request::post(path)
            .header(AUTHORIZATION, &authorization)
            .header(CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("a request")
    };
    let first = runtime.block_on(
        service
            .clone()
            .answer(request(DOCUMENTED_GET, br#"{"AssociateId":2}"#)),
    );
    assert_eq!(first.status(), 200, "the benchmark user must sign in");

    let mut group = c.benchmark_group("request");
    // What `serve` runs for a POST to the documented address.
    group.bench_function("get_json_direct", |b| {
        b.iter(|| {
            let response = runtime.block_on(
                service
                    .clone()
                    .answer(request(DOCUMENTED_GET, br#"{"AssociateId":963}"#)),
            );
            assert_eq!(response.status(), 200);
            response
        })
    });
    // Any other spelling of the address: the router, its middleware, the same operation.
    group.bench_function("get_json_router", |b| {
        b.iter(|| {
            let response = runtime
                .block_on(router.clone().oneshot(request(
                    "/api/v1/agents/user/getuserpresencestatus",
                    br#"{"AssociateId":963}"#,
                )))
                .expect("a response");
            assert_eq!(response.status(), 200);
            response
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // Short runs: the machine has two cores and is shared; medians settle in a second or two.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = micro;
    config = config();
    targets = decoding, encoding, selecting, negotiating, authentication, sqlite_locking, sqlite_large, whole_request
}
criterion_main!(micro);
