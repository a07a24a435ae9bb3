//! Headless Chromium on the presence board, driven through chromedriver (WebDriver): for the
//! board's tests (`board.rs`), its screenshot (`examples/board_screenshot.rs`) and its
//! benchmark (`examples/board_bench.rs`), which include this file. Nothing here knows the test
//! helpers, so that the examples can.
//!
//! Every wait is bounded, and a wait that runs out says what it waited for, what it saw last,
//! and where the page was, so that a broken page fails in seconds with a message rather than
//! hanging.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use thirtyfour::extensions::query::ElementPollerWithTimeout;
use thirtyfour::prelude::*;

/// How long a condition on a page may take before a wait gives up.
pub const WAIT: Duration = Duration::from_secs(5);

/// How often a wait looks again: often enough to time a change to within a few milliseconds,
/// rarely enough to leave the page's own script most of a core.
const POLL: Duration = Duration::from_millis(20);

/// The browsers' time zone. Not UTC, so that a page showing a time in UTC instead of the
/// browser's own zone shows the wrong hour and fails the tests.
pub const TIME_ZONE: &str = "Europe/Oslo";

/// A chromedriver of its own, with the browsers it starts. Dropped (with every browser
/// opened through it), it kills them all: even when a test panics, nothing is left running.
pub struct Driver {
    process: Arc<DriverProcess>,
    chromium: PathBuf,
}

struct DriverProcess {
    child: Child,
    port: u16,
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        // Killed, chromedriver leaves its browsers running; they share its process group,
        // which it leads, so the group goes whole.
        let group = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts chromedriver on a free loopback port. The executables are those found when the
    /// tests were built (build.rs), unless `PRESENCE_TEST_CHROMEDRIVER` and
    /// `PRESENCE_TEST_CHROMIUM` name others now.
    pub fn start() -> Self {
        let chromedriver = executable(
            "PRESENCE_TEST_CHROMEDRIVER",
            option_env!("PRESENCE_FOUND_CHROMEDRIVER"),
        );
        let chromium = executable(
            "PRESENCE_TEST_CHROMIUM",
            option_env!("PRESENCE_FOUND_CHROMIUM"),
        );
        let mut command = Command::new(&chromedriver);
        command
            .arg("--port=0")
            .env("TZ", TIME_ZONE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // The browsers' complaints (no GPU, no D-Bus) land here; nobody reads them.
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", chromedriver.display()));
        let stdout = child.stdout.take().expect("piped");
        let (port_sender, port) = std::sync::mpsc::channel();
        // Read on: chromedriver would block on a full pipe.
        std::thread::spawn(move || {
            let mut sender = Some(port_sender);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let announced = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok());
                if let Some(port) = announced
                    && let Some(sender) = sender.take()
                {
                    let _ = sender.send(port);
                }
            }
        });
        // Guarded before the wait, so that a driver which never announces a port is killed.
        let mut process = DriverProcess { child, port: 0 };
        process.port = port
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{} announced no port", chromedriver.display()));
        Self {
            process: Arc::new(process),
            chromium,
        }
    }

    /// A new headless browser whose language is `language` (`en-US`, `nb`), its screenshots
    /// written to `screenshot`, waiting up to `page_load` for a page to load. It has a profile
    /// of its own, so no two browsers share cookies.
    pub async fn browser(
        &self,
        language: &str,
        screenshot: PathBuf,
        page_load: Duration,
    ) -> Browser {
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut capabilities = DesiredCapabilities::chrome();
        let chromium = self.chromium.to_str().expect("a UTF-8 path to Chromium");
        capabilities.set_binary(chromium).expect("the binary");
        let mut arguments = vec![
            "--headless=new".to_owned(),
            // Chromium will not run as root with its sandbox, and CI runs as root.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--lang={language}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        // Nothing talks to the internet: no sync, no component updates, no first-run pages.
        arguments.extend(
            [
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ]
            .map(str::to_owned),
        );
        for argument in &arguments {
            capabilities.add_arg(argument).expect("an argument");
        }
        capabilities
            .add_experimental_option("prefs", json!({ "intl.accept_languages": language }))
            .expect("the language preference");
        let url = format!("http://127.0.0.1:{}", self.process.port);
        let driver = WebDriver::builder(url, capabilities)
            .request_timeout(page_load + Duration::from_secs(20))
            .poller(Arc::new(ElementPollerWithTimeout::new(WAIT, POLL)))
            .await
            .expect("a browser session");
        driver
            .set_page_load_timeout(page_load)
            .await
            .expect("a page load timeout");
        driver
            .set_script_timeout(WAIT)
            .await
            .expect("a script timeout");
        let session = driver.session_id().to_string();
        Browser {
            driver: Some(driver),
            screenshot,
            session,
            process: self.process.clone(),
            _profile: profile,
        }
    }
}

/// The executable a variable names now, else the one build.rs found.
fn executable(variable: &str, found: Option<&'static str>) -> PathBuf {
    std::env::var_os(variable)
        .filter(|named| !named.is_empty())
        .map(PathBuf::from)
        .or_else(|| found.map(PathBuf::from))
        .unwrap_or_else(|| {
            panic!("built without chromium and chromedriver on PATH, and {variable} is not set")
        })
}

/// One browser session. Dropped while a test panics, it first saves a screenshot of what the
/// page showed, then ends the session.
pub struct Browser {
    /// `None` once quit.
    driver: Option<WebDriver>,
    screenshot: PathBuf,
    session: String,
    /// Keeps chromedriver alive as long as the session.
    process: Arc<DriverProcess>,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn driver(&self) -> &WebDriver {
        self.driver.as_ref().expect("not quit")
    }

    pub async fn goto(&self, url: &str) {
        self.driver()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{}: {url} does not load: {e}", self.name()));
    }

    pub async fn refresh(&self) {
        self.driver()
            .refresh()
            .await
            .unwrap_or_else(|e| panic!("{}: the page does not reload: {e}", self.name()));
    }

    /// Runs a script (a function body: it `return`s its value) with `arguments`.
    pub async fn eval(&self, script: &str, arguments: Vec<Value>) -> Value {
        match self.driver().execute(script, arguments).await {
            Ok(answer) => answer.json().clone(),
            Err(e) => panic!("{}: the script failed: {e}\n{script}", self.name()),
        }
    }

    /// Waits until the script's value is truthy (not null, false, 0 or ""), and returns it.
    pub async fn wait_for(&self, what: &str, script: &str, arguments: Vec<Value>) -> Value {
        self.wait_until(what, script, arguments, WAIT, truthy).await
    }

    /// Waits up to `within` until `done` holds for the script's value, and returns it. A script
    /// that fails (the page is between two documents, say) counts as not done yet.
    pub async fn wait_until(
        &self,
        what: &str,
        script: &str,
        arguments: Vec<Value>,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        let arguments: Arc<[Value]> = arguments.into();
        let last = loop {
            let last = match self.driver().execute(script, arguments.clone()).await {
                Ok(answer) if done(answer.json()) => return answer.json().clone(),
                Ok(answer) => format!("the last value was {}", answer.json()),
                Err(e) => format!("the script last failed: {e}"),
            };
            if started.elapsed() >= within {
                break last;
            }
            tokio::time::sleep(POLL).await;
        };
        let page = self.where_it_is().await;
        panic!(
            "{}: waited {within:?} for {what}; {last}\n{page}",
            self.name()
        );
    }

    /// The page's address and the start of its text, for a failure's message.
    async fn where_it_is(&self) -> String {
        let script =
            "return [location.href, (document.body ? document.body.innerText : '').slice(0, 600)]";
        match self.driver().execute(script, Vec::new()).await {
            Ok(answer) => format!(
                "at {}, showing:\n{}",
                answer.json()[0].as_str().unwrap_or("?"),
                answer.json()[1].as_str().unwrap_or("")
            ),
            Err(e) => format!("and the page cannot be read: {e}"),
        }
    }

    /// The first element `css` selects, once there is one (waiting up to [`WAIT`]).
    pub async fn find(&self, css: &str) -> WebElement {
        match self.driver().query(By::Css(css)).first().await {
            Ok(element) => element,
            Err(e) => {
                let page = self.where_it_is().await;
                panic!("{}: no {css} within {WAIT:?}: {e}\n{page}", self.name())
            }
        }
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: {css} cannot be clicked: {e}", self.name()));
    }

    /// Empties a field, then types into it key by key, as a user does.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("{}: {css} cannot be cleared: {e}", self.name()));
        if !text.is_empty() {
            field
                .send_keys(text)
                .await
                .unwrap_or_else(|e| panic!("{}: {css} takes no keys: {e}", self.name()));
        }
    }

    /// Sets a field's value by script, with the events typing would send: for `time` and
    /// `datetime-local` fields, whose keystrokes depend on the browser's locale.
    pub async fn set_value(&self, css: &str, value: &str) {
        self.find(css).await;
        let script = r#"
            const field = document.querySelector(arguments[0]);
            field.value = arguments[1];
            field.dispatchEvent(new Event("input", { bubbles: true }));
            field.dispatchEvent(new Event("change", { bubbles: true }));
            return field.value;
        "#;
        let set = self.eval(script, vec![json!(css), json!(value)]).await;
        assert_eq!(
            set,
            json!(value),
            "{}: {css} refused {value:?}",
            self.name()
        );
    }

    /// Signs in through the sign-in page at `base` and waits for the board.
    pub async fn sign_in(&self, base: &str, login: &str, password: &str) {
        self.goto(base).await;
        self.submit_sign_in(login, password).await;
        self.wait_until_ready(WAIT).await;
    }

    /// Fills in and sends the sign-in form on the page shown.
    pub async fn submit_sign_in(&self, login: &str, password: &str) {
        self.find("form#sign-in").await;
        self.type_into("input#login", login).await;
        self.type_into("input#password", password).await;
        self.click("button#sign-in-submit").await;
    }

    /// Waits until the board lists every user and follows the change stream.
    pub async fn wait_until_ready(&self, within: Duration) {
        self.wait_until(
            "the board to be ready (body[data-ready=true])",
            "return document.body !== null && document.body.dataset.ready === 'true'",
            Vec::new(),
            within,
            truthy,
        )
        .await;
    }

    /// Saves a PNG of the window to the browser's screenshot file.
    pub async fn screenshot(&self) {
        if let Some(folder) = self.screenshot.parent() {
            std::fs::create_dir_all(folder).expect("the screenshots' folder");
        }
        self.driver()
            .screenshot(&self.screenshot)
            .await
            .unwrap_or_else(|e| panic!("{}: no screenshot: {e}", self.name()));
    }

    /// Ends the session (and closes the browser).
    pub async fn quit(mut self) {
        if let Some(driver) = self.driver.take() {
            driver
                .quit()
                .await
                .unwrap_or_else(|e| panic!("the browser does not quit: {e}"));
        }
    }

    /// The name of the browser in messages: its screenshot's.
    fn name(&self) -> String {
        self.screenshot
            .file_stem()
            .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let Some(driver) = self.driver.take() else {
            return;
        };
        // The test's runtime may be unwinding, so the browser is reached over plain blocking
        // sockets rather than through the async client.
        if std::thread::panicking() {
            match self.screenshot_now() {
                Ok(()) => eprintln!("the failure's screenshot: {}", self.screenshot.display()),
                Err(e) => eprintln!("{}: no screenshot of the failure: {e}", self.name()),
            }
        }
        // WebDriver's own ending of a session never quit takes half a minute; this one is
        // immediate, and chromedriver's end kills the browser anyway if it fails.
        let _ = self.command("DELETE", "");
        let _ = driver.leak();
    }
}

impl Browser {
    fn screenshot_now(&self) -> std::io::Result<()> {
        let answer = self.command("GET", "/screenshot")?;
        let png = answer["value"]
            .as_str()
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            })
            .ok_or_else(|| std::io::Error::other("no image in the answer"))?;
        if let Some(folder) = self.screenshot.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(&self.screenshot, png)
    }

    /// One WebDriver command on this session (`/session/{id}{path}`), answered as JSON.
    fn command(&self, method: &str, path: &str) -> std::io::Result<Value> {
        let port = self.process.port;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} /session/{}{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n",
            self.session
        )?;
        // chromedriver keeps the connection open whatever it answers, so the body is read by
        // its length.
        let mut answer = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(start) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..start]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|length| length.trim().parse().ok())
                    .ok_or_else(|| std::io::Error::other("no Content-Length"))?;
                if answer.len() >= start + 4 + length {
                    let body = &answer[start + 4..start + 4 + length];
                    return serde_json::from_slice(body)
                        .map_err(|e| std::io::Error::other(format!("no JSON in the answer: {e}")));
                }
            }
            match stream.read(&mut chunk)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                read => answer.extend_from_slice(&chunk[..read]),
            }
        }
    }
}

/// JavaScript's truthiness, for a script's value.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}
