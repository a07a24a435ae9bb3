//! Makes the README's picture of the presence board: starts the server in this process on a
//! temporary SQLite database with the demo users and a few more, present, not present with a
//! message, until a time, away on a planned absence, signs in as the demo administrator in
//! headless Chromium, and saves a screenshot of the board.
//!
//! ```text
//! cargo run --example board_screenshot -- docs/board.png
//! ```
//!
//! Needs chromium and chromedriver, as the browser tests do (README, on testing). The server
//! listens on 127.0.0.1 only, and stops with the program.

use std::path::PathBuf;
use std::time::Duration;

use presence::app;
use presence::clock::Clock;
use presence::config::{AuthSettings, HttpSettings};
use presence::demo;
use presence::domain::{Actor, AssociateId, Message, UserPresenceStatus, UserStatus};
use presence::http::auth::Authenticator;
use presence::http::state::AppState;
use presence::store::{NewAbsence, NewServiceUser, StatusChange, Store};
use tokio::net::TcpListener;

// Shared with the browser tests, which use more of it.
#[allow(dead_code)]
#[path = "../tests/api/browser.rs"]
mod browser;

const MINUTE: i64 = 60 * 1000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The users beside the demo's, and what each is doing.
enum Doing {
    Present,
    NotPresent(&'static str),
    /// Not present with a message, for this many whole hours past the next full hour.
    NotPresentFor(&'static str, i64),
    /// On a planned absence that began yesterday and ends in this many days.
    Away(&'static str, i64),
    /// Present, with an absence planned from this many days ahead.
    PlannedIn(&'static str, i64),
}

const USERS: &[(i32, &str, Doing)] = &[
    (2, "anna", Doing::Present),
    (3, "bjorn", Doing::NotPresentFor("In a meeting", 1)),
    (4, "carla", Doing::Present),
    (5, "david", Doing::Away("On holiday", 5)),
    (6, "eva", Doing::NotPresentFor("Lunch", 0)),
    (7, "fredrik", Doing::PlannedIn("Course", 7)),
    (
        8,
        "gunn",
        Doing::NotPresent("Working from home, on the phone"),
    ),
    (9, "hassan", Doing::Present),
    (10, "ingrid", Doing::Present),
];

#[tokio::main]
async fn main() {
    let target = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("docs/board.png"), PathBuf::from);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", folder.path().join("presence.db").display());
    let (store, _) = Store::open_and_migrate(&url).await.expect("a database");
    demo::seed(&store).await.expect("the demo users");
    add_users(&store).await;

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://{}/", listener.local_addr().expect("an address"));
    let auth = Authenticator::new(AuthSettings::default(), Clock::System)
        .await
        .expect("the authentication settings");
    let state = AppState::new(store, HttpSettings::default(), auth);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let driver = browser::Driver::start();
    // A failure's screenshot goes where the tests' do, never over the picture.
    let failure = PathBuf::from("target/browser-screenshots/board_screenshot.png");
    let page = driver
        .browser("en-GB", failure, Duration::from_secs(10))
        .await;
    page.sign_in(&base, demo::ADMIN_LOGIN, demo::ADMIN_PASSWORD)
        .await;
    if let Some(folder) = target.parent() {
        std::fs::create_dir_all(folder).expect("the picture's folder");
    }
    page.driver()
        .screenshot(&target)
        .await
        .expect("a screenshot");
    page.quit().await;
    drop(driver);
    let _ = stop.send(());
    server
        .await
        .expect("the server's task")
        .expect("the server");
    println!("{}", target.display());
}

async fn add_users(store: &Store) {
    let now = Clock::System.now_millis();
    let next_full_hour = (now / HOUR + 1) * HOUR;
    let message = |text: &str| Message::new(Some(text.to_owned())).expect("a short message");
    for (id, login, doing) in USERS {
        let associate = AssociateId::new(*id);
        store
            .add_user(NewServiceUser::present(associate, *login))
            .await
            .expect("a user");
        let not_present = |text: &str, until: Option<i64>| StatusChange {
            presence: UserPresenceStatus {
                status: UserStatus::StatusNotAvailable,
                message: message(text),
            },
            until,
            if_revision: None,
            at: now,
            actor: Actor::COMMAND_LINE,
        };
        let absence = |text: &str, from: i64, until: i64| NewAbsence {
            from,
            until,
            message: message(text),
            at: now,
            actor: Actor::COMMAND_LINE,
        };
        match doing {
            Doing::Present => continue,
            Doing::NotPresent(text) => {
                store
                    .set_status(associate, not_present(text, None))
                    .await
                    .expect("a status");
            }
            Doing::NotPresentFor(text, hours) => {
                let until = next_full_hour + hours * HOUR;
                store
                    .set_status(associate, not_present(text, Some(until)))
                    .await
                    .expect("a status");
            }
            Doing::Away(text, days) => {
                let today = now / DAY * DAY;
                store
                    .plan_absence(associate, absence(text, today - DAY, today + days * DAY))
                    .await
                    .expect("an absence");
            }
            Doing::PlannedIn(text, days) => {
                let from = now / DAY * DAY + days * DAY;
                store
                    .plan_absence(associate, absence(text, from, from + 2 * DAY))
                    .await
                    .expect("an absence");
            }
        }
    }
}
