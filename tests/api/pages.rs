//! The presence board's pages and files over HTTP (the browser tests, `board.rs`, drive them
//! in Chromium): which page `/` serves to whom, the files' caching, the caller's own
//! description, and the challenges a page's script gets.

use presence::config::{AuthSettings, HttpSettings, Installation};

use crate::auth::Browser;
use crate::helpers::*;

both_backends!(
    the_root_serves_the_board_with_a_session_and_the_sign_in_page_without,
    me_describes_the_caller,
    every_file_a_page_names_is_served_and_cached_under_its_version,
    under_a_base_path_the_board_is_at_its_address_with_a_slash,
    a_server_that_signs_no_browser_in_says_how_to_reach_the_board,
    a_page_and_the_sign_in_get_no_basic_challenge_that_would_raise_a_password_dialog,
    the_texts_of_every_language_reach_the_page,
);

fn is_board(response: &Response) -> bool {
    response.text().contains("id=\"users\"")
}

fn is_sign_in(response: &Response) -> bool {
    response.text().contains("id=\"sign-in\"")
}

async fn the_root_serves_the_board_with_a_session_and_the_sign_in_page_without() {
    let app = spawn_app().await;
    let anonymous = app.send(Request::new("GET", "/")).await;
    assert_eq!(anonymous.status, 200);
    assert!(is_sign_in(&anonymous), "{}", anonymous.text());
    assert_eq!(
        anonymous.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(anonymous.header("cache-control"), Some("no-store"));
    let policy = anonymous.header("content-security-policy").unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));

    let mut browser = Browser::default();
    assert_eq!(browser.sign_in(&app, USER).await.status, 200);
    // A navigation carries the cookies but no XSRF header: the page shows nothing by itself.
    let board = app
        .send(browser.send_cookies(Request::new("GET", "/")))
        .await;
    assert_eq!(board.status, 200);
    assert!(is_board(&board), "{}", board.text());
    assert_eq!(board.header("cache-control"), Some("no-store"));

    let forged = app
        .send(Request::new("GET", "/").header("Cookie", "SO-Session=7T:forged"))
        .await;
    assert!(is_sign_in(&forged), "an unknown ticket is no session");

    let signed_out = app.send(browser.with_xsrf(Request::post("/logout"))).await;
    assert_eq!(signed_out.status, 204);
    let after = app
        .send(browser.send_cookies(Request::new("GET", "/")))
        .await;
    assert!(
        is_sign_in(&after),
        "a revoked session gets the sign-in page"
    );
}

async fn me_describes_the_caller() {
    let app = spawn_app().await;
    let admin = app
        .send(Request::new("GET", "/presence/v1/me").basic(ADMIN))
        .await;
    assert_eq!(admin.status, 200);
    assert_eq!(
        admin.text(),
        format!(r#"{{"associateId":{ADMIN_ID},"login":"tje0","administrator":true}}"#)
    );
    let mut browser = Browser::default();
    browser.sign_in(&app, USER).await;
    let user = app
        .send(browser.with_xsrf(Request::new("GET", "/presence/v1/me")))
        .await;
    assert_eq!(user.status, 200);
    assert_eq!(
        user.text(),
        format!(r#"{{"associateId":{USER_ID},"login":"anna","administrator":false}}"#)
    );
    // Asked with the session, it renews the session's cookies (a board open all day asks
    // now and then); asked otherwise, it sets none.
    let renewed = user.header_all("set-cookie");
    assert_eq!(renewed.len(), 2, "{renewed:?}");
    let session = format!("SO-Session={}", browser.cookie("SO-Session").unwrap());
    assert!(
        renewed
            .iter()
            .any(|c| c.starts_with(&session) && c.contains("Max-Age="))
    );
    assert!(renewed.iter().any(|c| c.starts_with("XSRF-TOKEN=")));
    assert!(admin.header_all("set-cookie").is_empty());
    let nobody = app.send(Request::new("GET", "/presence/v1/me")).await;
    assert_eq!(nobody.status, 401);
    assert_eq!(
        nobody.header("content-type"),
        Some("application/problem+json")
    );
}

/// The `board/NAME?v=VERSION` addresses a page names.
fn files_named_by(page: &str) -> Vec<String> {
    page.split('"')
        .filter(|part| part.starts_with("board/"))
        .map(str::to_owned)
        .collect()
}

async fn every_file_a_page_names_is_served_and_cached_under_its_version() {
    let app = spawn_app().await;
    let sign_in = app.send(Request::new("GET", "/")).await;
    let mut browser = Browser::default();
    browser.sign_in(&app, USER).await;
    let board = app
        .send(browser.send_cookies(Request::new("GET", "/")))
        .await;
    let mut files = files_named_by(sign_in.text());
    files.extend(files_named_by(board.text()));
    files.sort();
    files.dedup();
    let names: Vec<&str> = files
        .iter()
        .map(|f| f["board/".len()..].split('?').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "board.css",
            "board.js",
            "favicon.svg",
            "sign-in.js",
            "texts.js"
        ]
    );
    for (file, name) in files.iter().zip(&names) {
        let versioned = app.send(Request::new("GET", &format!("/{file}"))).await;
        assert_eq!(versioned.status, 200, "{file}");
        let expected_type = match name.rsplit('.').next().unwrap() {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            _ => "image/svg+xml",
        };
        assert_eq!(versioned.header("content-type"), Some(expected_type));
        assert_eq!(
            versioned.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{file}"
        );
        let etag = versioned.header("etag").unwrap().to_owned();
        assert_eq!(etag, format!("\"{}\"", file.split("?v=").nth(1).unwrap()));

        let plain = app
            .send(Request::new("GET", &format!("/board/{name}")))
            .await;
        assert_eq!(plain.status, 200);
        assert_eq!(plain.header("cache-control"), Some("no-cache"));
        assert_eq!(plain.body, versioned.body);
        let again = app
            .send(Request::new("GET", &format!("/board/{name}")).header("If-None-Match", &etag))
            .await;
        assert_eq!(again.status, 304, "{file}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.as_str()));
    }
    let missing = app.send(Request::new("GET", "/board/nothing.js")).await;
    assert_eq!(missing.status, 404);
    let not_get = app.send(Request::post("/board/board.js")).await;
    assert_eq!(not_get.status, 405);
}

async fn under_a_base_path_the_board_is_at_its_address_with_a_slash() {
    let app = spawn_app_with(TestSettings {
        http: HttpSettings {
            base_path: "/cust12345".into(),
            ..HttpSettings::default()
        },
        ..TestSettings::default()
    })
    .await;
    // The page's addresses are relative: without the slash they would miss the base path.
    let bare = app.send(Request::new("GET", "/cust12345?x=1")).await;
    assert_eq!(bare.status, 308);
    assert_eq!(bare.header("location"), Some("/cust12345/?x=1"));
    // The session's cookies belong to the base path in lower case, and browsers compare
    // cookie paths case by case: the board has one address.
    for other in ["/Cust12345", "/Cust12345/"] {
        let moved = app.send(Request::new("GET", other)).await;
        assert_eq!(moved.status, 308, "{other}");
        assert_eq!(moved.header("location"), Some("/cust12345/"), "{other}");
    }
    let login = app.send(Request::new("GET", "/Cust12345/Login/")).await;
    assert_eq!(login.status, 308);
    assert_eq!(login.header("location"), Some("/cust12345/login"));
    assert!(is_sign_in(
        &app.send(Request::new("GET", "/cust12345/login")).await
    ));
    let page = app.send(Request::new("GET", "/cust12345/")).await;
    assert_eq!(page.status, 200);
    assert!(is_sign_in(&page));
    let file = files_named_by(page.text()).remove(0);
    let served = app
        .send(Request::new("GET", &format!("/cust12345/{file}")))
        .await;
    assert_eq!(served.status, 200);
    assert_eq!(app.send(Request::new("GET", "/")).await.status, 404);
}

async fn a_server_that_signs_no_browser_in_says_how_to_reach_the_board() {
    let online = spawn_app_with(TestSettings {
        auth: AuthSettings {
            installation: Installation::Online,
            ..AuthSettings::default()
        },
        ..TestSettings::default()
    })
    .await;
    let page = online.send(Request::new("GET", "/")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(!is_sign_in(&page) && !is_board(&page));
    assert!(
        page.text().contains("online installation"),
        "{}",
        page.text()
    );
    assert!(
        page.text().contains("onsite installation"),
        "{}",
        page.text()
    );
    let norwegian = online
        .send(Request::new("GET", "/").header("Accept-Language", "nb-NO, en;q=0.5"))
        .await;
    assert!(norwegian.text().contains("<html lang=\"nb\">"));
    assert!(
        norwegian.text().contains("online-installasjon"),
        "{}",
        norwegian.text()
    );

    let no_sessions = spawn_app_with(TestSettings {
        auth: AuthSettings {
            ticket: false,
            ..AuthSettings::default()
        },
        ..TestSettings::default()
    })
    .await;
    let page = no_sessions.send(Request::new("GET", "/")).await;
    assert!(page.text().contains("turned off"), "{}", page.text());
}

async fn a_page_and_the_sign_in_get_no_basic_challenge_that_would_raise_a_password_dialog() {
    let app = spawn_app().await;
    let challenges = |response: &Response| -> Vec<String> {
        response
            .header_all("www-authenticate")
            .iter()
            .map(|c| c.split(' ').next().unwrap().to_owned())
            .collect()
    };
    let wrong = app
        .send(Request::post("/login").body(
            "application/x-www-form-urlencoded",
            "login=anna&password=wrong",
        ))
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(challenges(&wrong), ["SOTicket", "Bearer"]);
    // A page's script whose session ended: the XSRF header, with or without its cookies.
    for request in [
        Request::new("GET", "/presence/v1/users").header("X-XSRF-TOKEN", ""),
        Request::new("GET", "/presence/v1/me").header("Cookie", "SO-Session=7T:gone"),
        Request::post(GET)
            .header("X-XSRF-TOKEN", "x")
            .json(r#"{"AssociateId":1}"#),
    ] {
        let refused = app.send(request).await;
        assert_eq!(refused.status, 401);
        assert_eq!(challenges(&refused), ["SOTicket", "Bearer"]);
    }
    // Every other client gets every scheme's challenge, as SuperOffice sends them: one that
    // sends `Authorization` too, whatever cookies it carries.
    for request in [
        Request::new("GET", "/presence/v1/users"),
        Request::post(GET).json(r#"{"AssociateId":1}"#),
        Request::post(GET)
            .basic(("anna", "wrong"))
            .header("Cookie", "SO-Session=7T:old")
            .json(r#"{"AssociateId":1}"#),
    ] {
        let refused = app.send(request).await;
        assert_eq!(challenges(&refused), ["Basic", "SOTicket", "Bearer"]);
    }
}

async fn the_texts_of_every_language_reach_the_page() {
    let app = spawn_app().await;
    let page = app.send(Request::new("GET", "/")).await;
    let file = files_named_by(page.text())
        .into_iter()
        .find(|f| f.starts_with("board/texts.js"))
        .unwrap();
    let script = app.send(Request::new("GET", &format!("/{file}"))).await;
    let text = script.text();
    assert!(!text.contains("/*TEXTS*/"), "the marker is replaced");
    assert!(text.contains("\"signInTitle\":\"Sign in to the presence board\""));
    assert!(text.contains("\"signInTitle\":\"Logg inn på tilstedeværelsestavlen\""));
    assert!(text.contains("\"no\":\"nb\""));
}
