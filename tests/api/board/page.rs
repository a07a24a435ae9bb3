//! What the board's tests know of the page: a server and a chromedriver per test, a user's
//! row as the page shows it, the editor, and the texts the page's words come from.

use std::path::PathBuf;
use std::time::Duration;

use presence::clock::Clock;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::browser::{Browser, Driver};
use crate::helpers::*;

/// How long a page may take to load: the boards list a handful of users, but a fresh browser on
/// a machine busy with the other tests may take seconds to start drawing.
const PAGE_LOAD: Duration = Duration::from_secs(30);

/// A server with the test users (`tje0` the administrator, `anna`) and a chromedriver.
pub(super) struct Board {
    pub(super) app: TestApp,
    driver: Driver,
    test: &'static str,
}

impl Board {
    pub(super) async fn start(test: &'static str) -> Self {
        // The page's times are the browser's, which follows the system clock; so must the
        // server's, or an "until" would be judged against a clock the page does not know.
        let app = spawn_app_with(TestSettings {
            clock: Clock::System,
            ..TestSettings::default()
        })
        .await;
        Self {
            app,
            driver: Driver::start(),
            test,
        }
    }

    pub(super) fn base(&self) -> String {
        format!("http://{}/", self.app.address)
    }

    /// A new English browser; its screenshot is `<test>.png`, or `<test>-<role>.png` for a
    /// role (the test's second browser, say).
    pub(super) async fn browser(&self, role: &str) -> Browser {
        self.browser_in(role, "en-GB").await
    }

    pub(super) async fn browser_in(&self, role: &str, language: &str) -> Browser {
        let name = match role {
            "" => self.test.to_owned(),
            role => format!("{}-{role}", self.test),
        };
        let folder = match Backend::current() {
            Backend::Sqlite => screenshots(),
            Backend::Postgres { .. } => screenshots().join("postgres"),
        };
        self.driver
            .browser(language, folder.join(format!("{name}.png")), PAGE_LOAD)
            .await
    }

    /// A new English browser, signed in and showing the board.
    pub(super) async fn signed_in(&self, role: &str, (login, password): (&str, &str)) -> Browser {
        let browser = self.browser(role).await;
        browser.sign_in(&self.base(), login, password).await;
        browser
    }

    /// The presence as the presence API answers it.
    pub(super) async fn presence(&self, id: i32) -> Value {
        let response = self
            .app
            .send(Request::new("GET", &format!("/presence/v1/users/{id}")).basic(ADMIN))
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    pub(super) async fn absences(&self, id: i32) -> Vec<Value> {
        let response = self
            .app
            .send(Request::new("GET", &format!("/presence/v1/users/{id}/absences")).basic(ADMIN))
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()["items"].as_array().unwrap().clone()
    }
}

/// `target/browser-screenshots`, found from the test binary's place in `target/`.
fn screenshots() -> PathBuf {
    let binary = std::env::current_exe().expect("the test binary's path");
    let target = binary
        .ancestors()
        .find(|folder| folder.join("CACHEDIR.TAG").is_file())
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
            PathBuf::from,
        );
    target.join("browser-screenshots")
}

/// Saves each browser's screenshot and ends its session.
pub(super) async fn finish(browsers: impl IntoIterator<Item = Browser>) {
    for browser in browsers {
        browser.screenshot().await;
        browser.quit().await;
    }
}

/// A user's row as the page shows it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Row {
    pub(super) status: Option<String>,
    pub(super) available: Option<String>,
    pub(super) changed: bool,
    pub(super) status_text: Option<String>,
    pub(super) message: Option<String>,
    pub(super) until: Option<String>,
    pub(super) absence: Option<String>,
    /// Whether the signed-in user is offered to change it.
    pub(super) editable: bool,
}

impl Row {
    pub(super) fn is(&self, status: &str) -> bool {
        self.status.as_deref() == Some(status)
    }

    pub(super) fn text(cell: &Option<String>) -> &str {
        cell.as_deref().unwrap_or_default()
    }
}

const ROW: &str = r#"
    const row = document.querySelector(`#users tbody tr[data-associate-id="${arguments[0]}"]`);
    if (!row) return null;
    const cell = name => {
        const found = row.querySelector(`td.${name}`);
        return found ? found.textContent.trim() : null;
    };
    return {
        status: row.dataset.status ?? null,
        available: row.dataset.available ?? null,
        changed: row.classList.contains("changed"),
        statusText: cell("status"),
        message: cell("message"),
        until: cell("until"),
        absence: cell("absence"),
        editable: row.querySelector("td.actions button.edit") !== null,
    };
"#;

pub(super) async fn row(browser: &Browser, id: i32) -> Row {
    let value = browser.eval(ROW, vec![json!(id)]).await;
    serde_json::from_value(value).unwrap_or_else(|e| panic!("no row for {id}: {e}"))
}

/// Waits up to `within` until the row of `id` exists and `done` holds for it.
pub(super) async fn wait_row(
    browser: &Browser,
    id: i32,
    what: &str,
    within: Duration,
    done: impl Fn(&Row) -> bool,
) -> Row {
    let value = browser
        .wait_until(what, ROW, vec![json!(id)], within, |value| {
            serde_json::from_value::<Row>(value.clone()).is_ok_and(|row| done(&row))
        })
        .await;
    serde_json::from_value(value).unwrap()
}

/// Marks the page, so that a later check can tell it was never reloaded.
pub(super) async fn mark_page(browser: &Browser) {
    browser
        .eval(
            "window.presenceTestMark = 'not reloaded'; return true",
            vec![],
        )
        .await;
}

pub(super) async fn assert_not_reloaded(browser: &Browser) {
    let mark = browser
        .eval("return window.presenceTestMark ?? null", vec![])
        .await;
    assert_eq!(mark, json!("not reloaded"), "the page was reloaded");
}

pub(super) async fn summary_available(browser: &Browser) -> i64 {
    let available = browser
        .eval(
            "return document.querySelector('#summary')?.dataset.available ?? null",
            vec![],
        )
        .await;
    available
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("#summary has no data-available: {available}"))
}

/// Opens the editor with `button` (`button#change-mine`, or a row's `button.edit`).
pub(super) async fn open_editor(browser: &Browser, button: &str) {
    browser.click(button).await;
    browser
        .wait_for(
            "the editor to open",
            "return document.querySelector('dialog#editor')?.open === true",
            vec![],
        )
        .await;
}

pub(super) fn edit_button(id: i32) -> String {
    format!(r#"#users tbody tr[data-associate-id="{id}"] td.actions button.edit"#)
}

pub(super) async fn choose_status(browser: &Browser, status: &str) {
    let radio = format!(r#"dialog#editor input[name="status"][value="{status}"]"#);
    browser.click(&radio).await;
    let checked = browser
        .eval(
            "return document.querySelector(arguments[0]).checked",
            vec![json!(radio)],
        )
        .await;
    assert_eq!(checked, json!(true), "{radio} is not checked");
}

/// Saves the editor and waits for it to close, as it does once the server has stored it.
pub(super) async fn save(browser: &Browser) {
    browser.click("button#editor-save").await;
    browser
        .wait_for(
            "the editor to close after saving",
            "return document.querySelector('dialog#editor')?.open === false",
            vec![],
        )
        .await;
}

/// The error the page shows in `#css` (a `role=alert`), once it shows one.
pub(super) async fn shown_error(browser: &Browser, css: &str) -> String {
    let script = r#"
        const alert = document.querySelector(arguments[0]);
        return alert && alert.getAttribute("role") === "alert" ? alert.textContent.trim() : null;
    "#;
    let text = browser
        .wait_for(
            &format!("an error in {css} (role=alert)"),
            script,
            vec![json!(css)],
        )
        .await;
    text.as_str().unwrap().to_owned()
}

/// A status cell's words, after its symbol.
pub(super) fn without_symbol(shown: &str) -> &str {
    shown.trim_start_matches(|c: char| !c.is_alphanumeric())
}

/// The page's texts in a language: `src/http/board/texts/<language>.json`.
pub(super) fn texts(language: &str) -> Map<String, Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/http/board/texts")
        .join(format!("{language}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the board's texts, {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The next full hour plus two, in the browser's zone: `HH:MM` as typed and the instant in
/// RFC 3339, as the presence API writes it.
pub(super) async fn two_hours_past_the_next_full_hour(browser: &Browser) -> (String, String) {
    let script = r#"
        const at = new Date();
        at.setMinutes(0, 0, 0);
        at.setHours(at.getHours() + 3);
        const two = n => String(n).padStart(2, "0");
        return [`${two(at.getHours())}:${two(at.getMinutes())}`, at.toISOString()];
    "#;
    let times = browser.eval(script, vec![]).await;
    (
        times[0].as_str().unwrap().to_owned(),
        times[1].as_str().unwrap().to_owned(),
    )
}
