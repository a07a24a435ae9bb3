//! The presence board in a real browser: headless Chromium, driven through chromedriver, against
//! the real server on 127.0.0.1 with the system's clock. Each test saves a screenshot of what
//! its browsers show at the end (or when it fails) under `target/browser-screenshots/`.
//!
//! Built without chromium and chromedriver (build.rs), the tests are ignored: the test runner
//! counts them as skipped.

mod page;

use std::time::{Duration, Instant};

use presence::clock::Clock;
use serde_json::{Map, Value, json};

use crate::browser::WAIT;
use crate::helpers::*;
use page::*;

/// Defines `sqlite::NAME` and `postgres::NAME` for each `async fn NAME(test: &'static str)` as
/// `both_backends!` does, ignored unless a browser was found when the tests were built. The
/// test gets its own name, for its screenshots.
macro_rules! browser_tests {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                #[cfg_attr(not(browser_tests), ignore = "built without chromium and chromedriver on PATH")]
                fn $test() {
                    crate::helpers::run_on(
                        crate::helpers::Backend::Sqlite,
                        super::$test(stringify!($test)),
                    );
                }
            )+
        }

        mod postgres {
            $(
                #[test]
                #[cfg_attr(
                    not(all(postgres_tests, browser_tests)),
                    ignore = "built without PRESENCE_TEST_POSTGRES_URL, or without chromium and chromedriver on PATH"
                )]
                fn $test() {
                    crate::helpers::run_on(
                        crate::helpers::Backend::postgres(),
                        super::$test(stringify!($test)),
                    );
                }
            )+
        }
    };
}

browser_tests!(
    a_user_sets_themself_not_present_with_a_message_and_an_end,
    an_administrator_sees_the_change_live_and_sets_the_user_back,
    a_change_made_elsewhere_shows_within_a_second,
    a_wrong_password_is_shown_in_words,
    signing_out_ends_the_session,
    a_save_over_a_change_made_meanwhile_is_a_conflict_in_words,
    a_norwegian_browser_gets_norwegian_texts,
    a_user_plans_and_cancels_an_absence,
    searching_and_filtering_narrow_the_list,
    after_the_server_is_gone_and_back_the_page_resumes_with_nothing_missed,
);

async fn a_user_sets_themself_not_present_with_a_message_and_an_end(test: &'static str) {
    let board = Board::start(test).await;
    let anna = board.signed_in("", USER).await;
    let before = row(&anna, USER_ID).await;
    assert!(before.is("StatusNormal"), "{before:?}");
    assert_eq!(before.available.as_deref(), Some("true"));
    assert!(before.editable, "a user may change their own row");
    assert!(
        !row(&anna, ADMIN_ID).await.editable,
        "a user may not change another's row"
    );
    let available = summary_available(&anna).await;

    open_editor(&anna, "button#change-mine").await;
    choose_status(&anna, "StatusNotAvailable").await;
    anna.type_into("input#editor-message", "At the dentist")
        .await;
    let (until, until_instant) = two_hours_past_the_next_full_hour(&anna).await;
    anna.set_value("input#editor-until", &until).await;
    save(&anna).await;

    let after = wait_row(&anna, USER_ID, "the own row to change", WAIT, |row| {
        row.is("StatusNotAvailable")
    })
    .await;
    assert_eq!(after.available.as_deref(), Some("false"));
    assert_eq!(Row::text(&after.message), "At the dentist");
    let until_shown = Row::text(&after.until);
    assert!(
        until_shown.contains("until") && until_shown.contains(&until),
        "{until_shown:?} is not until {until}"
    );
    let words = Row::text(&after.status_text);
    assert!(
        !words.is_empty() && words != Row::text(&before.status_text) && !words.contains("Status"),
        "the status in words: {words:?} (before: {:?})",
        before.status_text
    );
    assert_eq!(
        without_symbol(words),
        texts("en")["statusNotPresent"],
        "the status in words"
    );
    assert_ne!(without_symbol(words), words, "and with a symbol");
    assert_eq!(summary_available(&anna).await, available - 1);

    // Stored as typed, in the browser's zone.
    let stored = board.presence(USER_ID).await;
    assert_eq!(stored["status"], "StatusNotAvailable");
    assert_eq!(stored["message"], "At the dentist");
    assert_eq!(stored["until"], json!(until_instant));
    finish([anna]).await;
}

async fn an_administrator_sees_the_change_live_and_sets_the_user_back(test: &'static str) {
    let board = Board::start(test).await;
    let anna = board.signed_in("", USER).await;
    let admin = board.signed_in("admin", ADMIN).await;
    assert!(
        row(&admin, USER_ID).await.editable,
        "an administrator may change every row"
    );
    for browser in [&anna, &admin] {
        mark_page(browser).await;
        let connection = browser
            .eval(
                "return document.querySelector('#connection')?.dataset.state ?? null",
                vec![],
            )
            .await;
        assert_eq!(connection, json!("live"));
    }

    open_editor(&anna, "button#change-mine").await;
    choose_status(&anna, "StatusNotAvailable").await;
    anna.type_into("input#editor-message", "Lunch").await;
    save(&anna).await;

    let seen = wait_row(
        &admin,
        USER_ID,
        "the change to reach the administrator",
        WAIT,
        |row| row.is("StatusNotAvailable") && Row::text(&row.message) == "Lunch",
    )
    .await;
    assert_eq!(seen.available.as_deref(), Some("false"));
    assert_not_reloaded(&admin).await;

    open_editor(&admin, &edit_button(USER_ID)).await;
    choose_status(&admin, "StatusNormal").await;
    admin.type_into("input#editor-message", "").await;
    save(&admin).await;

    let back = wait_row(
        &anna,
        USER_ID,
        "the user's own row to follow",
        WAIT,
        |row| row.is("StatusNormal"),
    )
    .await;
    assert_eq!(back.available.as_deref(), Some("true"));
    assert_eq!(Row::text(&back.message), "");
    assert_not_reloaded(&anna).await;
    let stored = board.presence(USER_ID).await;
    assert_eq!(stored["status"], "StatusNormal");
    assert!(
        stored["message"].is_null() || stored["message"] == "",
        "{stored}"
    );
    finish([anna, admin]).await;
}

async fn a_change_made_elsewhere_shows_within_a_second(test: &'static str) {
    let board = Board::start(test).await;
    let anna = board.signed_in("", USER).await;
    mark_page(&anna).await;

    let sent = Instant::now();
    let set = board
        .app
        .send(Request::post(SET).basic(ADMIN).json(
            r#"{"AssociateId":2,"UserPresenceStatus":{"Status":"StatusNotAvailable","Message":"Out sick"}}"#,
        ))
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
    // Waited for longer than the second allowed, so that a late change and a lost one fail
    // with different messages.
    let shown = wait_row(&anna, USER_ID, "the change made elsewhere", WAIT, |row| {
        row.is("StatusNotAvailable")
    })
    .await;
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the change took {took:?} to show"
    );
    assert_eq!(Row::text(&shown.message), "Out sick");
    assert!(shown.changed, "a changed row is marked: {shown:?}");
    assert_not_reloaded(&anna).await;
    finish([anna]).await;
}

async fn a_wrong_password_is_shown_in_words(test: &'static str) {
    let board = Board::start(test).await;
    let browser = board.browser("").await;
    browser.goto(&board.base()).await;
    let before = browser
        .eval(
            "return document.querySelector('#sign-in-error')?.textContent.trim() ?? null",
            vec![],
        )
        .await;
    assert_eq!(before, json!(""), "#sign-in-error is empty until a failure");

    browser.submit_sign_in(USER.0, "not-the-password").await;
    let error = shown_error(&browser, "#sign-in-error").await;
    assert_eq!(
        error,
        texts("en")["signInWrong"],
        "the wrong password in words"
    );
    let still = browser
        .eval(
            "return [document.querySelector('form#sign-in') !== null, document.querySelector('#users') === null]",
            vec![],
        )
        .await;
    assert_eq!(still, json!([true, true]), "the sign-in page stays");
    let cookies = browser.driver().get_all_cookies().await.unwrap();
    assert!(
        cookies.iter().all(|cookie| cookie.name != "SO-Session"),
        "no session: {cookies:?}"
    );
    finish([browser]).await;
}

async fn signing_out_ends_the_session(test: &'static str) {
    let board = Board::start(test).await;
    let anna = board.signed_in("", USER).await;
    let cookies = anna.driver().get_all_cookies().await.unwrap();
    let cookie = |name: &str| {
        cookies
            .iter()
            .find(|cookie| cookie.name == name)
            .unwrap_or_else(|| panic!("no {name} cookie: {cookies:?}"))
            .value
            .clone()
    };
    let (session, xsrf) = (cookie("SO-Session"), cookie("XSRF-TOKEN"));
    let with_the_cookies = || {
        Request::new("GET", &format!("/presence/v1/users/{USER_ID}"))
            .header(
                "Cookie",
                &format!("SO-Session={session}; XSRF-TOKEN={xsrf}"),
            )
            .header("X-XSRF-TOKEN", &xsrf)
    };
    assert_eq!(board.app.send(with_the_cookies()).await.status, 200);

    anna.click("button#sign-out").await;
    anna.wait_for(
        "the sign-in page after signing out",
        "return document.querySelector('form#sign-in') !== null && document.querySelector('#users') === null",
        vec![],
    )
    .await;
    anna.goto(&board.base()).await;
    anna.refresh().await;
    anna.wait_for(
        "the sign-in page at / after signing out",
        "return document.querySelector('form#sign-in') !== null && document.querySelector('#users') === null",
        vec![],
    )
    .await;
    assert_eq!(
        board.app.send(with_the_cookies()).await.status,
        401,
        "the old session still works"
    );
    finish([anna]).await;
}

async fn a_save_over_a_change_made_meanwhile_is_a_conflict_in_words(test: &'static str) {
    let board = Board::start(test).await;
    let anna = board.signed_in("", USER).await;
    let admin = board.signed_in("admin", ADMIN).await;
    open_editor(&anna, "button#change-mine").await;
    open_editor(&admin, &edit_button(USER_ID)).await;

    choose_status(&anna, "StatusNotAvailable").await;
    anna.type_into("input#editor-message", "First").await;
    save(&anna).await;
    assert_eq!(board.presence(USER_ID).await["message"], "First");

    admin.type_into("input#editor-message", "Second").await;
    admin.click("button#editor-save").await;
    let error = shown_error(&admin, "#editor-error").await;
    assert_eq!(error, texts("en")["refused412"], "the conflict in words");
    let open = admin
        .eval(
            "return document.querySelector('dialog#editor').open",
            vec![],
        )
        .await;
    assert_eq!(open, json!(true), "the editor stays open on a conflict");
    let stored = board.presence(USER_ID).await;
    assert_eq!(stored["status"], "StatusNotAvailable");
    assert_eq!(stored["message"], "First");
    // Behind the editor, the row shows the change that won; saving again goes over it.
    let shown = wait_row(
        &admin,
        USER_ID,
        "the other change in the row",
        WAIT,
        |row| Row::text(&row.message) == "First",
    )
    .await;
    assert!(shown.is("StatusNotAvailable"), "{shown:?}");
    admin.click("button#editor-save").await;
    wait_row(&admin, USER_ID, "the second save", WAIT, |row| {
        Row::text(&row.message) == "Second"
    })
    .await;
    assert_eq!(board.presence(USER_ID).await["message"], "Second");
    finish([anna, admin]).await;
}

async fn a_norwegian_browser_gets_norwegian_texts(test: &'static str) {
    let board = Board::start(test).await;
    let (english, norwegian) = (texts("en"), texts("nb"));
    let title = |texts: &Map<String, Value>| {
        texts["signInTitle"]
            .as_str()
            .expect("signInTitle is a text")
            .to_owned()
    };
    let (english_title, norwegian_title) = (title(&english), title(&norwegian));
    assert_ne!(english_title, norwegian_title);

    let browser = board.browser_in("", "nb").await;
    browser.goto(&board.base()).await;
    let headings = r#"
        return [...document.querySelectorAll("h1, h2")].map(heading => heading.textContent.trim());
    "#;
    let shown = browser
        .wait_until(
            "the Norwegian sign-in heading",
            headings,
            vec![],
            WAIT,
            |shown| {
                shown
                    .as_array()
                    .is_some_and(|h| h.contains(&json!(norwegian_title)))
            },
        )
        .await;
    assert!(
        !shown.as_array().unwrap().contains(&json!(english_title)),
        "English beside Norwegian: {shown}"
    );

    browser.submit_sign_in(USER.0, USER.1).await;
    browser.wait_until_ready(WAIT).await;
    let summary = browser
        .eval(
            "return document.querySelector('#summary').textContent",
            vec![],
        )
        .await;
    let summary = summary.as_str().unwrap();
    assert!(
        !summary.contains("available now"),
        "the summary is English: {summary:?}"
    );
    let words = Row::text(&row(&browser, USER_ID).await.status_text).to_owned();
    assert_eq!(
        without_symbol(&words),
        norwegian["statusPresent"],
        "the status in Norwegian words"
    );
    finish([browser]).await;
}

async fn a_user_plans_and_cancels_an_absence(test: &'static str) {
    let board = Board::start(test).await;
    let anna = board.signed_in("", USER).await;
    open_editor(&anna, "button#change-mine").await;

    // From the start of this minute (the field's precision) for two hours: in force now.
    let script = r#"
        const from = new Date();
        from.setSeconds(0, 0);
        const until = new Date(from.getTime() + 2 * 3600 * 1000);
        const two = n => String(n).padStart(2, "0");
        const local = at => `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}T${two(at.getHours())}:${two(at.getMinutes())}`;
        return [local(from), local(until), from.toISOString(), until.toISOString()];
    "#;
    let times = anna.eval(script, vec![]).await;
    let time = |n: usize| times[n].as_str().unwrap().to_owned();
    anna.set_value("input#absence-from", &time(0)).await;
    anna.set_value("input#absence-until", &time(1)).await;
    anna.type_into("input#absence-message", "Course").await;
    anna.click("button#absence-add").await;

    let listed = r#"
        return [...document.querySelectorAll("ul#absences li[data-absence-id]")]
            .map(item => item.textContent);
    "#;
    anna.wait_until("the absence to be listed", listed, vec![], WAIT, |items| {
        items.as_array().is_some_and(|items| {
            items.len() == 1 && items[0].as_str().unwrap_or("").contains("Course")
        })
    })
    .await;
    let planned = board.absences(USER_ID).await;
    assert_eq!(planned.len(), 1, "{planned:?}");
    assert_eq!(planned[0]["from"], json!(time(2)));
    assert_eq!(planned[0]["until"], json!(time(3)));
    assert_eq!(planned[0]["message"], "Course");
    let away = wait_row(
        &anna,
        USER_ID,
        "the absence in force on the row",
        WAIT,
        |row| row.available.as_deref() == Some("false"),
    )
    .await;
    assert!(!Row::text(&away.absence).is_empty(), "{away:?}");

    // In the same dialog, a status saved while the absence is in force is no conflict (the
    // planning was a change of the user the dialog has seen), and is kept for after it.
    choose_status(&anna, "StatusNotAvailable").await;
    anna.type_into("input#editor-message", "After the course")
        .await;
    save(&anna).await;
    let stored = board.app.presence(USER_ID).await.expect("anna");
    assert_eq!(stored.message.as_deref(), Some("After the course"));
    // Opened again during the absence, the editor says the absence is in force, and does not
    // offer the absence's message as the status's own.
    open_editor(&anna, "button#change-mine").await;
    let form = anna
        .eval(
            "return [document.querySelector('#editor-note').textContent, document.querySelector('#editor-message').value]",
            vec![],
        )
        .await;
    assert!(!form[0].as_str().unwrap().is_empty(), "{form:?}");
    assert_eq!(form[1], json!(""), "{form:?}");

    anna.click("ul#absences li[data-absence-id] button.cancel-absence")
        .await;
    anna.wait_until(
        "the absence to be cancelled",
        listed,
        vec![],
        WAIT,
        |items| items.as_array().is_some_and(Vec::is_empty),
    )
    .await;
    assert_eq!(board.absences(USER_ID).await, Vec::<Value>::new());
    // Without the absence, the status saved during it shows.
    let back = wait_row(&anna, USER_ID, "the row without the absence", WAIT, |row| {
        Row::text(&row.absence).is_empty()
    })
    .await;
    assert_eq!(Row::text(&back.message), "After the course");
    finish([anna]).await;
}

/// The rows shown (not hidden by the search or the filter): id, login, message, available.
const SHOWN: &str = r##"
    return [...document.querySelectorAll("#users tbody tr[data-associate-id]")]
        .filter(row => row.getClientRects().length > 0)
        .map(row => [
            Number(row.dataset.associateId),
            row.querySelector("td.login")?.textContent.trim() ?? "",
            row.querySelector("td.message")?.textContent.trim() ?? "",
            row.dataset.available,
        ]);
"##;

async fn searching_and_filtering_narrow_the_list(test: &'static str) {
    let board = Board::start(test).await;
    let set = board
        .app
        .send(Request::post(SET).basic(ADMIN).json(
            r#"{"AssociateId":1,"UserPresenceStatus":{"Status":"StatusNotAvailable","Message":"Visiting Annaberg"}}"#,
        ))
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
    let anna = board.signed_in("", USER).await;
    let everyone = anna.eval(SHOWN, vec![]).await;
    assert_eq!(
        everyone.as_array().map(Vec::len),
        Some(3),
        "tje0, anna and 963: {everyone}"
    );

    anna.type_into("input#search", "anna").await;
    let found = anna
        .wait_until(
            "the search to narrow the list",
            SHOWN,
            vec![],
            WAIT,
            |shown| shown.as_array().is_some_and(|rows| rows.len() == 2),
        )
        .await;
    for row in found.as_array().unwrap() {
        let (login, message) = (row[1].as_str().unwrap(), row[2].as_str().unwrap());
        assert!(
            login.to_lowercase().contains("anna") || message.to_lowercase().contains("anna"),
            "{row} does not match"
        );
    }

    anna.type_into("input#search", "").await;
    for (filter, available) in [("available", "true"), ("notAvailable", "false")] {
        anna.click(&format!(r#"select#status-filter option[value="{filter}"]"#))
            .await;
        let shown = anna
            .wait_until(
                &format!("the filter {filter}"),
                SHOWN,
                vec![],
                WAIT,
                |shown| {
                    shown.as_array().is_some_and(|rows| {
                        !rows.is_empty() && rows.iter().all(|row| row[3] == available)
                    })
                },
            )
            .await;
        let ids: Vec<i64> = shown
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row[0].as_i64().unwrap())
            .collect();
        match available {
            "true" => assert_eq!(ids, [i64::from(USER_ID)], "{shown}"),
            _ => assert!(
                ids.contains(&i64::from(ADMIN_ID)) && !ids.contains(&i64::from(USER_ID)),
                "{shown}"
            ),
        }
    }
    anna.click(r#"select#status-filter option[value=""]"#).await;
    anna.wait_until("everyone again", SHOWN, vec![], WAIT, |shown| {
        shown.as_array().is_some_and(|rows| rows.len() == 3)
    })
    .await;
    finish([anna]).await;
}

async fn after_the_server_is_gone_and_back_the_page_resumes_with_nothing_missed(
    test: &'static str,
) {
    let mut board = Board::start(test).await;
    let anna = board.signed_in("", USER).await;
    mark_page(&anna).await;

    // The server goes, and a change is made while the page cannot hear of it.
    board.app.stop_serving().await;
    anna.wait_for(
        "the page to say it is reconnecting",
        "return document.querySelector('#connection').dataset.state === 'reconnecting'",
        vec![],
    )
    .await;
    let set = run_presence(
        &board.app.database_url,
        &[
            "status",
            "set",
            "2",
            "StatusNotAvailable",
            "--message",
            "While you were away",
        ],
        "",
    );
    assert!(set.status.success(), "{}", error(&set));

    // A server comes back at the same address on the same database: the page resumes after
    // the last change it saw, without a reload. Its retries wait longer each time, up to 10 s.
    let back = spawn_app_with(TestSettings {
        clock: Clock::System,
        database_url: Some(board.app.database_url.clone()),
        address: Some(board.app.address),
        ..TestSettings::default()
    })
    .await;
    let shown = wait_row(
        &anna,
        USER_ID,
        "the change made while the server was gone",
        Duration::from_secs(15),
        |row| row.is("StatusNotAvailable"),
    )
    .await;
    assert_eq!(Row::text(&shown.message), "While you were away");
    anna.wait_for(
        "the page to say it is live again",
        "return document.querySelector('#connection').dataset.state === 'live'",
        vec![],
    )
    .await;
    assert_not_reloaded(&anna).await;

    // And it follows changes again.
    let again = back
        .send(Request::post(SET).basic(ADMIN).json(
            r#"{"AssociateId":2,"UserPresenceStatus":{"Status":"StatusNormal","Message":"Back"}}"#,
        ))
        .await;
    assert_eq!(again.status, 200);
    wait_row(&anna, USER_ID, "the next change", WAIT, |row| {
        row.is("StatusNormal")
    })
    .await;
    finish([anna]).await;
}
