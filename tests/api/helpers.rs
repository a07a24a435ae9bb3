//! One way to start the real server (`spawn_app`), on 127.0.0.1:0 with a fresh database each,
//! on the backend the test runs on (`both_backends!`), and a small HTTP/1.1 client that shows
//! the bytes on the wire exactly.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use presence::app;
use presence::clock::Clock;
use presence::config::{AuthSettings, HttpSettings};
use presence::demo;
use presence::domain::{AssociateId, Message, UserPresenceStatus, UserStatus};
use presence::http::auth::Authenticator;
use presence::http::state::AppState;
use presence::password;
use presence::store::testing::{self, POSTGRES_URL_VARIABLE};
use presence::store::{NewServiceUser, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The reference page's administrator, seeded in every test database.
pub const ADMIN: (&str, &str) = (demo::ADMIN_LOGIN, demo::ADMIN_PASSWORD);
pub const ADMIN_ID: i32 = 1;
/// An ordinary Service user, seeded in every test database.
pub const USER: (&str, &str) = ("anna", "anna-secret");
pub const USER_ID: i32 = 2;
/// The reference page's sample associate: StatusDeleted with the message "ut".
pub const SAMPLE_ID: i32 = 963;

pub const GET: &str = "/api/v1/Agents/User/GetUserPresenceStatus";
pub const SET: &str = "/api/v1/Agents/User/SetUserPresenceStatus";

/// Defines `sqlite::NAME` and `postgres::NAME` tests for each named `async fn NAME()` of the
/// module, which run it with the database of `spawn_app` and `fresh_database` on that backend.
/// A test missing from the list does not run (and is reported as dead code).
macro_rules! both_backends {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $test() {
                    crate::helpers::run_on(crate::helpers::Backend::Sqlite, super::$test());
                }
            )+
        }

        mod postgres {
            $(
                #[test]
                #[cfg_attr(not(postgres_tests), ignore = "built without PRESENCE_TEST_POSTGRES_URL")]
                fn $test() {
                    crate::helpers::run_on(crate::helpers::Backend::postgres(), super::$test());
                }
            )+
        }
    };
}

/// The database behind a test's servers and commands.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A file in a temporary folder.
    Sqlite,
    /// A new database on this server, created through the one this URL names.
    Postgres { admin_url: String },
}

impl Backend {
    /// PostgreSQL, on the server [`POSTGRES_URL_VARIABLE`] names.
    pub fn postgres() -> Self {
        Self::Postgres {
            admin_url: testing::postgres_admin_url(),
        }
    }

    /// The one a test runs on: SQLite unless `both_backends!` says otherwise.
    pub fn current() -> Self {
        BACKEND.try_with(Backend::clone).unwrap_or(Backend::Sqlite)
    }
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// Runs a test with `backend` as the current one, as `#[tokio::test]` would run it.
pub fn run_on(backend: Backend, test: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // Both variants of a test reach the same inline snapshots, which insta takes for a loop
    // when they run in one process (`cargo test`) unless told otherwise. Each variant's value
    // is still compared with the snapshot.
    insta::allow_duplicates! {
        runtime.block_on(BACKEND.scope(backend, test))
    }
}

/// A fresh, empty database on the current backend. Nothing is created in it yet: the server or
/// command that opens it brings its schema up to date.
pub struct TestDatabase {
    pub url: String,
    /// The SQLite file's folder, removed when the test ends. PostgreSQL databases are left to
    /// the throwaway cluster.
    _dir: Option<tempfile::TempDir>,
}

pub async fn fresh_database() -> TestDatabase {
    match Backend::current() {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            TestDatabase {
                url: format!("sqlite://{}", dir.path().join("presence.db").display()),
                _dir: Some(dir),
            }
        }
        Backend::Postgres { admin_url } => TestDatabase {
            url: testing::fresh_postgres_database(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("no test database on {POSTGRES_URL_VARIABLE}: {e}")),
            _dir: None,
        },
    }
}

/// What a test can change about the server it starts.
#[derive(Clone, Debug)]
pub struct TestSettings {
    pub http: HttpSettings,
    pub auth: AuthSettings,
    /// A manual clock by default, so tests can let hours pass.
    pub clock: Clock,
    /// A database to reuse (another server's), instead of a fresh one.
    pub database_url: Option<String>,
    /// The address to listen on (another server's, stopped), instead of any free port.
    pub address: Option<SocketAddr>,
}

impl Default for TestSettings {
    fn default() -> Self {
        Self {
            http: HttpSettings::default(),
            auth: AuthSettings::default(),
            clock: Clock::manual(),
            database_url: None,
            address: None,
        }
    }
}

pub struct TestApp {
    pub address: SocketAddr,
    pub store: Store,
    pub database_url: String,
    pub clock: Clock,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _database: Option<TestDatabase>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestSettings::default()).await
}

pub async fn spawn_app_with(settings: TestSettings) -> TestApp {
    let (database_url, database) = match settings.database_url {
        Some(url) => (url, None),
        None => {
            let database = fresh_database().await;
            (database.url.clone(), Some(database))
        }
    };
    let fresh = database.is_some();
    let (store, _) = Store::open_and_migrate(&database_url)
        .await
        .expect("a database");
    if fresh {
        demo::seed(&store).await.expect("the demo users");
        add_user(&store, USER_ID, USER.0, USER.1, false).await;
    }
    let address = settings
        .address
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = TcpListener::bind(address).await.expect("a port");
    let address = listener.local_addr().expect("the bound address");
    let (shutdown, stopped) = oneshot::channel();
    let auth = Authenticator::new(settings.auth, settings.clock.clone())
        .await
        .expect("the authentication settings");
    let state = AppState::new(store.clone(), settings.http, auth);
    let server = tokio::spawn(app::serve(listener, state, async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        store,
        database_url,
        clock: settings.clock,
        shutdown: Some(shutdown),
        server: Some(server),
        _database: database,
    }
}

pub async fn add_user(
    store: &Store,
    associate_id: i32,
    login: &str,
    password: &str,
    is_admin: bool,
) {
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .unwrap()
        .unwrap();
    store
        .add_user(NewServiceUser {
            associate_id: AssociateId::new(associate_id),
            login: login.into(),
            password_hash: Some(hash),
            is_admin,
            presence: UserPresenceStatus {
                status: UserStatus::StatusNormal,
                message: Message::none(),
            },
        })
        .await
        .unwrap();
}

impl TestApp {
    pub async fn send(&self, request: Request) -> Response {
        send_to(self.address, request).await
    }

    /// The presence as stored (not as it is at any moment: see `Presence::at`).
    pub async fn presence(&self, associate_id: i32) -> Option<UserPresenceStatus> {
        self.store
            .presence(AssociateId::new(associate_id))
            .await
            .unwrap()
            .map(|p| p.stored.clone())
    }

    /// Stops the server the way SIGTERM does and waits for it.
    pub async fn stop(mut self) {
        self.stop_serving().await;
    }

    /// Stops the server as `stop` does, keeping its database for another to serve.
    pub async fn stop_serving(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// A request, written to the socket exactly as built: no header is added but `Host`,
/// `Content-Length` (when there is a body) and `Connection: close`.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn basic(self, (login, password): (&str, &str)) -> Self {
        let token = STANDARD.encode(format!("{login}:{password}"));
        self.header("Authorization", &format!("Basic {token}"))
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self.header("Content-Type", content_type)
    }

    pub fn json(self, body: &str) -> Self {
        self.body("application/json", body)
    }

    /// A body with no `Content-Type` header.
    pub fn raw_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn to_bytes(&self, address: SocketAddr) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {address}\r\n",
            self.method, self.path
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = &self.body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_deref().unwrap_or_default());
        bytes
    }
}

pub async fn send_to(address: SocketAddr, request: Request) -> Response {
    send_raw(address, &request.to_bytes(address)).await
}

/// A JSON Get as the administrator (`tje0`), its body sent in these chunks
/// (`Transfer-Encoding: chunked`, so without a Content-Length), then the connection closed.
pub fn chunked_get(chunks: &[&str]) -> String {
    let mut request = format!(
        "POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dGplMDpUamUw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in chunks {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    request
}

/// Sends bytes as they are and reads the response until the server closes the connection.
pub async fn send_raw(address: SocketAddr, bytes: &[u8]) -> Response {
    let mut stream = TcpStream::connect(address)
        .await
        .expect("the server accepts");
    stream.write_all(bytes).await.expect("the request is sent");
    let mut received = Vec::new();
    stream
        .read_to_end(&mut received)
        .await
        .expect("the response is read");
    Response::parse(&received)
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A kept-alive connection, written to and read from by hand: for what a client that keeps
/// its connection, or sends slowly, sees.
pub struct RawConnection {
    stream: TcpStream,
    received: Vec<u8>,
}

impl RawConnection {
    pub async fn open(address: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(address)
                .await
                .expect("the server accepts"),
            received: Vec::new(),
        }
    }

    /// Writes bytes; false if the server has closed the connection.
    pub async fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// The next response, whole (its body by `Content-Length`), or `None` if the connection
    /// ends first.
    pub async fn response(&mut self) -> Option<Response> {
        loop {
            if let Some(end) = self.received.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = Response::parse(&self.received[..end + 4]);
                let length: usize = head
                    .header("content-length")
                    .map_or(0, |length| length.parse().unwrap());
                if self.received.len() >= end + 4 + length {
                    let whole: Vec<u8> = self.received.drain(..end + 4 + length).collect();
                    return Some(Response::parse(&whole));
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(read) => self.received.extend_from_slice(&chunk[..read]),
            }
        }
    }

    /// Waits until the server closes the connection, reading and dropping what it sends.
    pub async fn closed(&mut self) {
        let mut chunk = [0u8; 4096];
        while let Ok(read) = self.stream.read(&mut chunk).await {
            if read == 0 {
                return;
            }
        }
    }
}

impl Response {
    fn parse(bytes: &[u8]) -> Self {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
        let head = std::str::from_utf8(&bytes[..split]).expect("an ASCII head");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Self {
            status,
            headers,
            body: bytes[split + 4..].to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The response as on the wire, for snapshots: the status line, the headers in the order
    /// sent but for `date` and `x-request-id` (which change) and `connection` (which answers
    /// this client's `Connection: close`), a blank line, and the body.
    pub fn wire(&self) -> String {
        let mut out = format!("HTTP/1.1 {}\n", self.status);
        for (name, value) in &self.headers {
            if name != "date" && name != "connection" && name != "x-request-id" {
                out.push_str(&format!("{name}: {value}\n"));
            }
        }
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(&self.body));
        out
    }
}

/// The `presence` binary that cargo built for these tests.
pub fn presence_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_presence"))
}

/// Runs `presence ARGS...` on `database_url` with `stdin` on its standard input, logging
/// warnings only, and waits for it.
pub fn run_presence(database_url: &str, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(presence_binary())
        .env("PRESENCE_DATABASE_URL", database_url)
        .env("PRESENCE_LOG", "warn")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The standard output of a command that succeeded.
pub fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The one-line error of a failed command.
pub fn error(output: &std::process::Output) -> String {
    assert!(
        !output.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// A `presence serve` process on 127.0.0.1:0, with the address it announced in its log. It is
/// killed when dropped, if it still runs.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub address: SocketAddr,
    /// Every line the server has logged so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `presence --database URL [GLOBAL_ARGS...] serve --listen 127.0.0.1:0 --demo`.
    pub fn start(database_url: &str, global_args: &[&str]) -> Self {
        Self::start_with(database_url, global_args, &[])
    }

    /// The same, with `SERVE_ARGS` after `serve`.
    pub fn start_with(database_url: &str, global_args: &[&str], serve_args: &[&str]) -> Self {
        Self::start_under(&[], database_url, global_args, serve_args)
    }

    /// The same, run by `WRAPPER` (a command that runs the one after it, as `prlimit` does).
    pub fn start_under(
        wrapper: &[&str],
        database_url: &str,
        global_args: &[&str],
        serve_args: &[&str],
    ) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let binary = presence_binary();
        let mut command = match wrapper.split_first() {
            Some((program, arguments)) => {
                let mut command = Command::new(program);
                command.args(arguments).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        let mut child = command
            .args(["--database", database_url])
            .args(global_args)
            .args(["serve", "--listen", "127.0.0.1:0", "--demo"])
            .args(serve_args)
            .env("PRESENCE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        let mut starting = Vec::new();
        let address = loop {
            let line = lines
                .next()
                .expect("the server announces its address")
                .expect("a log line");
            let announced = line
                .split("listening on http://")
                .nth(1)
                .map(|rest| rest.split('/').next().expect("an address").to_owned());
            starting.push(line);
            if let Some(address) = announced {
                break address.parse().expect("a socket address");
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let log = std::sync::Arc::new(std::sync::Mutex::new(starting));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            address,
            log,
        }
    }

    /// How many lines logged so far contain `text`.
    pub fn log_lines_with(&self, text: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(text))
            .count()
    }

    /// The server's resident memory at its peak so far, in KiB (`VmHWM`).
    pub fn peak_memory_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in the status")
    }

    pub async fn send(&self, request: Request) -> Response {
        send_to(self.address, request).await
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
