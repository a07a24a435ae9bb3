//! Every authentication scheme over real HTTP, the browser flow, the online rules, the scheme
//! switches, and the lockout against password guessing.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use presence::clock::Clock;
use presence::config::{AuthSettings, Installation, JwksSource, JwtSettings, Secret};
use presence::domain::AssociateId;
use presence::secret::{self, SecretHash};
use presence::store::{Application, LoginKey, TokenKind};
use presence::tickets;
use serde_json::json;

use crate::helpers::*;

both_backends!(
    tickets_authenticate_in_any_scheme_casing,
    wrong_malformed_expired_and_revoked_tickets_are_401,
    a_ticket_carries_its_users_rights,
    access_tokens_live_their_lifetime,
    jwts_from_the_identity_provider_authenticate,
    an_unknown_key_id_refreshes_the_key_set_at_most_once_a_minute,
    jwks_from_a_file_and_a_custom_claim,
    the_browser_flow_signs_in_calls_and_signs_out,
    a_session_is_a_ticket_with_its_lifetime_and_revocation,
    sign_in_refuses_bad_passwords_and_foreign_pages,
    online_needs_an_application_and_closes_the_user_agent_to_partners,
    onsite_does_not_need_application_tokens,
    switched_off_schemes_are_refused_and_not_offered,
    five_failures_lock_a_login_for_the_window,
    lockout_looks_the_same_for_unknown_logins,
    a_signed_in_user_is_not_locked_out_by_a_guesser,
    long_basic_credentials_authenticate,
    jwts_need_an_issuer_and_an_audience_and_may_expire_at_a_fraction,
    guesses_sent_at_once_are_checked_at_most_five_times,
    a_client_signing_in_on_many_connections_at_once_is_let_in_on_each,
    a_check_that_cannot_be_recorded_is_a_503_and_never_made,
    a_login_too_long_to_be_one_is_refused_before_anything_is_stored,
    a_flood_of_guesses_beyond_what_argon2_can_take_is_refused_as_busy,
);

pub(crate) const BODY: &str = r#"{"AssociateId":963}"#;

pub(crate) fn get_with(authorization: &str) -> Request {
    Request::post(GET)
        .header("Authorization", authorization)
        .json(BODY)
}

pub(crate) async fn ticket_for(app: &TestApp, associate_id: i32) -> String {
    tickets::issue_ticket(&app.store, &app.clock, AssociateId::new(associate_id))
        .await
        .unwrap()
}

// --- SOTicket -------------------------------------------------------------------------------

async fn tickets_authenticate_in_any_scheme_casing() {
    let app = spawn_app().await;
    let ticket = ticket_for(&app, USER_ID).await;
    for scheme in ["SOTicket", "soticket", "SOTICKET", "SoTicket"] {
        let response = app.send(get_with(&format!("{scheme} {ticket}"))).await;
        assert_eq!(response.status, 200, "{scheme}");
    }
    // SuperOffice also takes the bare ticket in place of Basic credentials.
    assert_eq!(
        app.send(get_with(&format!("Basic {ticket}"))).await.status,
        200
    );
}

async fn wrong_malformed_expired_and_revoked_tickets_are_401() {
    let app = spawn_app().await;
    let ticket = ticket_for(&app, USER_ID).await;
    for bad in [
        "SOTicket 7T:nope",
        "SOTicket",
        "SOTicket   ",
        &format!("SOTicket {ticket}x"),
    ] {
        assert_eq!(app.send(get_with(bad)).await.status, 401, "{bad}");
    }
    // Sliding: each use moves the expiry six hours on.
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(5 * 3600));
        assert_eq!(
            app.send(get_with(&format!("SOTicket {ticket}")))
                .await
                .status,
            200
        );
    }
    app.clock.advance(Duration::from_secs(6 * 3600 + 60));
    assert_eq!(
        app.send(get_with(&format!("SOTicket {ticket}")))
            .await
            .status,
        401
    );

    let second = ticket_for(&app, USER_ID).await;
    let third = ticket_for(&app, USER_ID).await;
    assert!(
        app.store
            .revoke_token(
                TokenKind::Ticket,
                AssociateId::new(USER_ID),
                SecretHash::of(&second)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        app.send(get_with(&format!("SOTicket {second}")))
            .await
            .status,
        401
    );
    assert_eq!(
        app.send(get_with(&format!("SOTicket {third}")))
            .await
            .status,
        200
    );
    app.store
        .revoke_tokens(TokenKind::Ticket, AssociateId::new(USER_ID))
        .await
        .unwrap();
    assert_eq!(
        app.send(get_with(&format!("SOTicket {third}")))
            .await
            .status,
        401
    );
}

async fn a_ticket_carries_its_users_rights() {
    let app = spawn_app().await;
    let ticket = ticket_for(&app, USER_ID).await;
    let other = Request::post(SET)
        .header("Authorization", &format!("SOTicket {ticket}"))
        .json(r#"{"AssociateId":1,"UserPresenceStatus":{"Status":"StatusNotAvailable"}}"#);
    assert_eq!(app.send(other).await.status, 403);
    let own = Request::post(SET)
        .header("Authorization", &format!("SOTicket {ticket}"))
        .json(r#"{"AssociateId":2,"UserPresenceStatus":{"Status":"StatusNotAvailable"}}"#);
    assert_eq!(app.send(own).await.status, 200);
}

// --- Bearer access tokens ----------------------------------------------------------------

async fn access_tokens_live_their_lifetime() {
    let app = spawn_app().await;
    let token = tickets::issue_access_token(
        &app.store,
        &app.clock,
        AssociateId::new(USER_ID),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    assert!(token.starts_with("8A:"));
    for scheme in ["Bearer", "bearer", "BEARER"] {
        assert_eq!(
            app.send(get_with(&format!("{scheme} {token}")))
                .await
                .status,
            200
        );
    }
    assert_eq!(app.send(get_with("Bearer 8A:wrong")).await.status, 401);
    assert_eq!(app.send(get_with("Bearer")).await.status, 401);
    // No sliding: ten minutes after issue it is over, however much it was used.
    app.clock.advance(Duration::from_secs(599));
    assert_eq!(
        app.send(get_with(&format!("Bearer {token}"))).await.status,
        200
    );
    app.clock.advance(Duration::from_secs(2));
    assert_eq!(
        app.send(get_with(&format!("Bearer {token}"))).await.status,
        401
    );

    let revoked = tickets::issue_access_token(
        &app.store,
        &app.clock,
        AssociateId::new(USER_ID),
        tickets::ACCESS_TOKEN_LIFETIME,
    )
    .await
    .unwrap();
    app.store
        .revoke_tokens(TokenKind::AccessToken, AssociateId::new(USER_ID))
        .await
        .unwrap();
    assert_eq!(
        app.send(get_with(&format!("Bearer {revoked}")))
            .await
            .status,
        401
    );
}

// --- Bearer JWTs -------------------------------------------------------------------------

/// A key pair made for the test by openssl, and its public half as a JWK.
struct TestKey {
    encoding: EncodingKey,
    jwk: Jwk,
    alg: Algorithm,
}

fn generate_key(alg: Algorithm, kid: &str) -> TestKey {
    let args: &[&str] = match alg {
        Algorithm::RS256 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        Algorithm::ES256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        other => panic!("no test keys for {other:?}"),
    };
    let output = std::process::Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let encoding = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&output.stdout),
        _ => EncodingKey::from_ec_pem(&output.stdout),
    }
    .unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    TestKey { encoding, jwk, alg }
}

impl TestKey {
    fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = self.jwk.common.key_id.clone();
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// A stand-in identity provider serving its JWKS, counting the fetches.
struct MockProvider {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

async fn mock_provider(keys: Vec<Jwk>) -> MockProvider {
    let keys = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (keys.clone(), fetches.clone());
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (served, counted) = (served.clone(), counted.clone());
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let set = JwkSet {
                    keys: served.lock().unwrap().clone(),
                };
                serde_json::to_string(&set).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    MockProvider { url, keys, fetches }
}

const ISSUER: &str = "https://idp.test/";
const AUDIENCE: &str = "presence-tests";
pub(crate) const HS256_SECRET: &str = "a shared secret of enough length for HS256";

pub(crate) fn jwt_settings(keys: Option<JwksSource>) -> AuthSettings {
    AuthSettings {
        jwt: Some(JwtSettings {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            associate_claim: JwtSettings::DEFAULT_ASSOCIATE_CLAIM.into(),
            keys,
            hs256_secret: Some(Secret(HS256_SECRET.into())),
        }),
        ..AuthSettings::default()
    }
}

pub(crate) fn claims(associate: serde_json::Value, expires_in: i64) -> serde_json::Value {
    let now = Clock::System.now_seconds();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + expires_in,
        JwtSettings::DEFAULT_ASSOCIATE_CLAIM: associate,
    })
}

async fn jwts_from_the_identity_provider_authenticate() {
    let rsa = generate_key(Algorithm::RS256, "rsa-1");
    let ec = generate_key(Algorithm::ES256, "ec-1");
    let provider = mock_provider(vec![rsa.jwk.clone(), ec.jwk.clone()]).await;
    let app = spawn_app_with(TestSettings {
        auth: jwt_settings(Some(JwksSource::Url(provider.url.clone()))),
        clock: Clock::System,
        ..TestSettings::default()
    })
    .await;
    let good = claims(json!(USER_ID), 600);
    for token in [rsa.sign(&good), ec.sign(&good)] {
        assert_eq!(
            app.send(get_with(&format!("Bearer {token}"))).await.status,
            200
        );
    }
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(json!(USER_ID.to_string()), 600),
        &EncodingKey::from_secret(HS256_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        app.send(get_with(&format!("Bearer {hs}"))).await.status,
        200
    );

    // The token's user's rights apply.
    let set_other = Request::post(SET)
        .header("Authorization", &format!("Bearer {}", rsa.sign(&good)))
        .json(r#"{"AssociateId":1,"UserPresenceStatus":{"Status":"StatusNotAvailable"}}"#);
    assert_eq!(app.send(set_other).await.status, 403);

    let mut wrong_issuer = good.clone();
    wrong_issuer["iss"] = json!("https://evil.test/");
    let mut wrong_audience = good.clone();
    wrong_audience["aud"] = json!("someone-else");
    let mut not_yet = good.clone();
    not_yet["nbf"] = json!(Clock::System.now_seconds() + 3600);
    let mut no_associate = good.clone();
    no_associate
        .as_object_mut()
        .unwrap()
        .remove(JwtSettings::DEFAULT_ASSOCIATE_CLAIM);
    let stranger = generate_key(Algorithm::ES256, "ec-1");
    let wrong_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"another secret entirely, also long").unwrap(),
    )
    .unwrap();
    let bad = [
        ("expired", rsa.sign(&claims(json!(USER_ID), -3600))),
        ("wrong issuer", rsa.sign(&wrong_issuer)),
        ("wrong audience", rsa.sign(&wrong_audience)),
        ("not yet valid", rsa.sign(&not_yet)),
        ("no associate", rsa.sign(&no_associate)),
        ("no Service user", rsa.sign(&claims(json!(777), 600))),
        (
            "signed by another key with a known id",
            stranger.sign(&good),
        ),
        ("wrong HS256 secret", wrong_secret),
        ("not a JWT", "abc.def.ghi".into()),
    ];
    for (case, token) in bad {
        assert_eq!(
            app.send(get_with(&format!("Bearer {token}"))).await.status,
            401,
            "{case}"
        );
    }
}

async fn an_unknown_key_id_refreshes_the_key_set_at_most_once_a_minute() {
    let first = generate_key(Algorithm::ES256, "first");
    let provider = mock_provider(vec![first.jwk.clone()]).await;
    let app = spawn_app_with(TestSettings {
        auth: jwt_settings(Some(JwksSource::Url(provider.url.clone()))),
        ..TestSettings::default()
    })
    .await;
    assert_eq!(
        provider.fetches.load(Ordering::SeqCst),
        1,
        "fetched at start-up"
    );
    let good = claims(json!(USER_ID), 600);
    assert_eq!(
        app.send(get_with(&format!("Bearer {}", first.sign(&good))))
            .await
            .status,
        200
    );

    // The provider rotates in a new key: the first token signed with it fetches the set again.
    app.clock.advance(Duration::from_secs(61));
    let rotated = generate_key(Algorithm::ES256, "rotated");
    provider.keys.lock().unwrap().push(rotated.jwk.clone());
    assert_eq!(
        app.send(get_with(&format!("Bearer {}", rotated.sign(&good))))
            .await
            .status,
        200
    );
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);

    // Made-up key ids within the minute do not reach the provider.
    for n in 0..5 {
        let unknown = generate_key(Algorithm::ES256, &format!("made-up-{n}"));
        assert_eq!(
            app.send(get_with(&format!("Bearer {}", unknown.sign(&good))))
                .await
                .status,
            401
        );
    }
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);
    app.clock.advance(Duration::from_secs(61));
    let unknown = generate_key(Algorithm::ES256, "made-up-late");
    assert_eq!(
        app.send(get_with(&format!("Bearer {}", unknown.sign(&good))))
            .await
            .status,
        401
    );
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 3);
}

async fn jwks_from_a_file_and_a_custom_claim() {
    let key = generate_key(Algorithm::RS256, "file-key");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(
        &path,
        serde_json::to_string(&JwkSet {
            keys: vec![key.jwk.clone()],
        })
        .unwrap(),
    )
    .unwrap();
    let mut auth = jwt_settings(Some(JwksSource::File(path)));
    auth.jwt.as_mut().unwrap().associate_claim = "associate".into();
    let app = spawn_app_with(TestSettings {
        auth,
        clock: Clock::System,
        ..TestSettings::default()
    })
    .await;
    let mut custom = claims(json!(null), 600);
    custom["associate"] = json!(USER_ID);
    assert_eq!(
        app.send(get_with(&format!("Bearer {}", key.sign(&custom))))
            .await
            .status,
        200
    );
    let default_claim = claims(json!(USER_ID), 600);
    assert_eq!(
        app.send(get_with(&format!("Bearer {}", key.sign(&default_claim))))
            .await
            .status,
        401
    );
}

// --- Browser sessions --------------------------------------------------------------------

/// A cookie jar as a browser keeps one, for one server.
#[derive(Default)]
pub(crate) struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn keep(&mut self, response: &Response) {
        for set_cookie in response.header_all("set-cookie") {
            let (pair, _) = set_cookie.split_once(';').unwrap_or((set_cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !set_cookie.contains("Max-Age=0") {
                self.cookies.push((name.into(), value.into()));
            }
        }
    }

    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn send_cookies(&self, request: Request) -> Request {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if jar.is_empty() {
            request
        } else {
            request.header("Cookie", &jar.join("; "))
        }
    }

    /// What a page script does: copy the XSRF-TOKEN cookie into the header.
    pub(crate) fn with_xsrf(&self, request: Request) -> Request {
        let token = self.cookie("XSRF-TOKEN").unwrap_or_default().to_owned();
        self.send_cookies(request).header("X-XSRF-TOKEN", &token)
    }

    pub(crate) async fn sign_in(
        &mut self,
        app: &TestApp,
        (login, password): (&str, &str),
    ) -> Response {
        let body = format!("login={login}&password={password}");
        let response = app
            .send(Request::post("/login").body("application/x-www-form-urlencoded", body))
            .await;
        self.keep(&response);
        response
    }
}

async fn the_browser_flow_signs_in_calls_and_signs_out() {
    let app = spawn_app().await;
    let page = app.send(Request::new("GET", "/login")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text().contains("<form"));

    let mut browser = Browser::default();
    let signed_in = browser.sign_in(&app, USER).await;
    assert_eq!(signed_in.status, 200);
    assert_eq!(signed_in.text(), r#"{"AssociateId":2}"#);
    let cookies = signed_in.header_all("set-cookie");
    let session = cookies
        .iter()
        .find(|c| c.starts_with("SO-Session=7T:"))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let xsrf = cookies
        .iter()
        .find(|c| c.starts_with("XSRF-TOKEN="))
        .unwrap();
    assert!(
        !xsrf.contains("HttpOnly") && xsrf.contains("SameSite=Strict"),
        "{xsrf}"
    );

    let call = || Request::post(GET).json(BODY);
    assert_eq!(app.send(browser.with_xsrf(call())).await.status, 200);
    let set = Request::post(SET)
        .json(r#"{"AssociateId":2,"UserPresenceStatus":{"Status":"StatusNotAvailable"}}"#);
    assert_eq!(app.send(browser.with_xsrf(set)).await.status, 200);

    // Refused: no XSRF header, a wrong one, a foreign origin, a bad Authorization alongside.
    assert_eq!(app.send(browser.send_cookies(call())).await.status, 401);
    assert_eq!(
        app.send(browser.send_cookies(call()).header("X-XSRF-TOKEN", "guess"))
            .await
            .status,
        401
    );
    assert_eq!(
        app.send(
            browser
                .with_xsrf(call())
                .header("Origin", "https://evil.example")
        )
        .await
        .status,
        401
    );
    let origin = format!("http://{}", app.address);
    assert_eq!(
        app.send(browser.with_xsrf(call()).header("Origin", &origin))
            .await
            .status,
        200
    );
    assert_eq!(
        app.send(
            browser
                .with_xsrf(call())
                .header("Authorization", "Basic bm9ib2R5Ong=")
        )
        .await
        .status,
        401
    );

    // Signing out needs the XSRF token too, and ends the session for good.
    let stale = browser.cookies.clone();
    assert_eq!(
        app.send(browser.send_cookies(Request::post("/logout")))
            .await
            .status,
        401
    );
    let signed_out = app.send(browser.with_xsrf(Request::post("/logout"))).await;
    assert_eq!(signed_out.status, 204);
    browser.keep(&signed_out);
    assert!(browser.cookies.is_empty());
    assert_eq!(app.send(browser.with_xsrf(call())).await.status, 401);
    let replay = Browser { cookies: stale };
    assert_eq!(app.send(replay.with_xsrf(call())).await.status, 401);
}

async fn a_session_is_a_ticket_with_its_lifetime_and_revocation() {
    let app = spawn_app().await;
    let mut browser = Browser::default();
    assert_eq!(browser.sign_in(&app, USER).await.status, 200);
    let call = || Request::post(GET).json(BODY);
    app.clock.advance(Duration::from_secs(6 * 3600 + 60));
    assert_eq!(
        app.send(browser.with_xsrf(call())).await.status,
        401,
        "expired"
    );

    assert_eq!(browser.sign_in(&app, USER).await.status, 200);
    assert_eq!(app.send(browser.with_xsrf(call())).await.status, 200);
    app.store
        .revoke_tokens(TokenKind::Ticket, AssociateId::new(USER_ID))
        .await
        .unwrap();
    assert_eq!(
        app.send(browser.with_xsrf(call())).await.status,
        401,
        "revoked"
    );
}

async fn sign_in_refuses_bad_passwords_and_foreign_pages() {
    let app = spawn_app().await;
    let mut browser = Browser::default();
    assert_eq!(browser.sign_in(&app, (USER.0, "wrong")).await.status, 401);
    assert!(browser.cookies.is_empty());
    let foreign = app
        .send(
            Request::post("/login")
                .header("Origin", "https://evil.example")
                .body(
                    "application/x-www-form-urlencoded",
                    format!("login={}&password={}", USER.0, USER.1),
                ),
        )
        .await;
    assert_eq!(foreign.status, 403);
    let json = app
        .send(Request::post("/login").json(&format!(
            r#"{{"Login":"{}","Password":"{}"}}"#,
            USER.0, USER.1
        )))
        .await;
    assert_eq!(json.status, 200);
    let missing = app
        .send(Request::post("/login").json(r#"{"login":"anna"}"#))
        .await;
    assert_eq!(missing.status, 400);
}

// --- Online installations and applications ----------------------------------------------

pub(crate) async fn register(
    app: &TestApp,
    name: &str,
    is_partner: bool,
    grants_user_agent: bool,
) -> String {
    let (token, hash) = secret::issue("");
    app.store
        .add_application(
            Application {
                name: name.into(),
                is_partner,
                grants_user_agent,
            },
            hash,
            0,
        )
        .await
        .unwrap();
    token
}

async fn online_needs_an_application_and_closes_the_user_agent_to_partners() {
    let app = spawn_app_with(TestSettings {
        auth: AuthSettings {
            installation: Installation::Online,
            ..AuthSettings::default()
        },
        ..TestSettings::default()
    })
    .await;
    let basic = app.send(Request::post(GET).basic(ADMIN).json(BODY)).await;
    assert_eq!(basic.status, 401);
    assert_eq!(
        basic.header_all("www-authenticate"),
        [
            r#"SOTicket realm="SuperOffice""#,
            r#"Bearer realm="SuperOffice""#
        ]
    );
    let mut browser = Browser::default();
    assert_eq!(
        browser.sign_in(&app, USER).await.status,
        403,
        "no passwords online"
    );

    let ticket = ticket_for(&app, USER_ID).await;
    let with_ticket = || get_with(&format!("SOTicket {ticket}"));
    assert_eq!(
        app.send(with_ticket()).await.status,
        401,
        "no application token"
    );
    assert_eq!(
        app.send(with_ticket().header("SO-AppToken", "unknown"))
            .await
            .status,
        401
    );

    let own = register(&app, "SuperOffice Service", false, false).await;
    let partner = register(&app, "Partner", true, false).await;
    let granted = register(&app, "Trusted partner", true, true).await;
    assert_eq!(
        app.send(with_ticket().header("SO-AppToken", &own))
            .await
            .status,
        200
    );
    let refused = app
        .send(with_ticket().header("SO-AppToken", &partner))
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["ErrorType"], "SoAccessDeniedException");
    assert_eq!(
        app.send(with_ticket().header("SO-AppToken", &granted))
            .await
            .status,
        200
    );

    let token = tickets::issue_access_token(
        &app.store,
        &app.clock,
        AssociateId::new(USER_ID),
        tickets::ACCESS_TOKEN_LIFETIME,
    )
    .await
    .unwrap();
    let bearer = || get_with(&format!("Bearer {token}"));
    assert_eq!(app.send(bearer()).await.status, 401);
    assert_eq!(
        app.send(bearer().header("SO-AppToken", &granted))
            .await
            .status,
        200
    );
    assert_eq!(
        app.send(bearer().header("SO-AppToken", &partner))
            .await
            .status,
        403
    );
}

async fn onsite_does_not_need_application_tokens() {
    let app = spawn_app().await;
    let partner = register(&app, "Partner", true, false).await;
    let ticket = ticket_for(&app, USER_ID).await;
    let request = get_with(&format!("SOTicket {ticket}"));
    assert_eq!(app.send(request.clone()).await.status, 200);
    assert_eq!(
        app.send(request.header("SO-AppToken", &partner))
            .await
            .status,
        200
    );
}

async fn switched_off_schemes_are_refused_and_not_offered() {
    let no_basic = spawn_app_with(TestSettings {
        auth: AuthSettings {
            basic: false,
            ..AuthSettings::default()
        },
        ..TestSettings::default()
    })
    .await;
    let response = no_basic
        .send(Request::post(GET).basic(ADMIN).json(BODY))
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header_all("www-authenticate"),
        [
            r#"SOTicket realm="SuperOffice""#,
            r#"Bearer realm="SuperOffice""#
        ]
    );
    let ticket = ticket_for(&no_basic, USER_ID).await;
    assert_eq!(
        no_basic
            .send(get_with(&format!("SOTicket {ticket}")))
            .await
            .status,
        200
    );

    let no_ticket = spawn_app_with(TestSettings {
        auth: AuthSettings {
            ticket: false,
            bearer: false,
            ..AuthSettings::default()
        },
        ..TestSettings::default()
    })
    .await;
    let ticket = ticket_for(&no_ticket, USER_ID).await;
    let response = no_ticket
        .send(get_with(&format!("SOTicket {ticket}")))
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header_all("www-authenticate"),
        [r#"Basic realm="SuperOffice", charset="UTF-8""#]
    );
    let mut browser = Browser::default();
    assert_eq!(
        browser.sign_in(&no_ticket, USER).await.status,
        403,
        "sessions are tickets"
    );
    assert_eq!(
        no_ticket
            .send(Request::post(GET).basic(ADMIN).json(BODY))
            .await
            .status,
        200
    );
}

// --- Password guessing ---------------------------------------------------------------------

async fn five_failures_lock_a_login_for_the_window() {
    let app = spawn_app().await;
    let right = || Request::post(GET).basic(USER).json(BODY);
    for _ in 0..5 {
        let wrong = Request::post(GET).basic((USER.0, "guess")).json(BODY);
        assert_eq!(app.send(wrong).await.status, 401);
    }
    assert_eq!(
        app.send(right()).await.status,
        401,
        "the sixth attempt, though right"
    );
    let mut browser = Browser::default();
    assert_eq!(
        browser.sign_in(&app, USER).await.status,
        401,
        "the sign-in page is locked too"
    );
    app.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(
        app.send(right()).await.status,
        401,
        "still inside the window"
    );

    // The counters are in the database: a server started afresh on it sees them.
    let restarted = spawn_app_with(TestSettings {
        clock: app.clock.clone(),
        database_url: Some(app.database_url.clone()),
        ..TestSettings::default()
    })
    .await;
    assert_eq!(restarted.send(right()).await.status, 401);

    app.clock.advance(Duration::from_secs(61));
    assert_eq!(app.send(right()).await.status, 200, "after the window");
    // Success forgets the failures: a fresh series of guesses starts from zero.
    for _ in 0..4 {
        let wrong = Request::post(GET).basic((USER.0, "guess")).json(BODY);
        assert_eq!(app.send(wrong).await.status, 401);
    }
    assert_eq!(restarted.send(right()).await.status, 200);
}

async fn lockout_looks_the_same_for_unknown_logins() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = app
            .send(Request::post(GET).basic(("nobody", "guess")).json(BODY))
            .await;
        statuses.push((response.status, response.text().to_owned()));
    }
    let known: Vec<_> = {
        let mut out = Vec::new();
        for _ in 0..6 {
            let response = app
                .send(Request::post(GET).basic((USER.0, "guess")).json(BODY))
                .await;
            out.push((response.status, response.text().to_owned()));
        }
        out
    };
    assert_eq!(statuses, known);
}

async fn a_signed_in_user_is_not_locked_out_by_a_guesser() {
    let app = spawn_app().await;
    let right = || Request::post(GET).basic(USER).json(BODY);
    assert_eq!(app.send(right()).await.status, 200);
    for _ in 0..6 {
        app.send(Request::post(GET).basic((USER.0, "guess")).json(BODY))
            .await;
    }
    assert_eq!(app.send(right()).await.status, 200);
}

async fn long_basic_credentials_authenticate() {
    let app = spawn_app().await;
    // Longer than the server decodes on the stack: read the other way, with the same outcome.
    let password = "p".repeat(300);
    add_user(&app.store, 4242, "long", &password, false).await;
    for _ in 0..2 {
        let response = app
            .send(Request::post(GET).basic(("long", &password)).json(BODY))
            .await;
        assert_eq!(response.status, 200);
    }
    let wrong = format!("{password}x");
    let response = app
        .send(Request::post(GET).basic(("long", &wrong)).json(BODY))
        .await;
    assert_eq!(response.status, 401);
}

async fn jwts_need_an_issuer_and_an_audience_and_may_expire_at_a_fraction() {
    let app = spawn_app_with(TestSettings {
        auth: jwt_settings(None),
        clock: Clock::System,
        ..TestSettings::default()
    })
    .await;
    let sign = |claims: &serde_json::Value| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(HS256_SECRET.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let good = claims(json!(USER_ID), 600);
    let status = |token: String| {
        let app = &app;
        async move { app.send(get_with(&format!("Bearer {token}"))).await.status }
    };
    assert_eq!(status(sign(&good)).await, 200);
    for missing in ["iss", "aud"] {
        let mut lacking = good.clone();
        lacking.as_object_mut().unwrap().remove(missing);
        assert_eq!(status(sign(&lacking)).await, 401, "without {missing}");
    }
    // RFC 7519's NumericDate may have a fraction.
    let now = Clock::System.now_seconds() as f64;
    let mut fractional = good.clone();
    fractional["exp"] = json!(now + 600.5);
    fractional["nbf"] = json!(now - 0.25);
    assert_eq!(status(sign(&fractional)).await, 200);
    let mut expired = good.clone();
    expired["exp"] = json!(now - 3600.5);
    assert_eq!(status(sign(&expired)).await, 401);
    let mut text = good.clone();
    text["exp"] = json!("tomorrow");
    assert_eq!(status(sign(&text)).await, 401);
}

/// A hundred wrong passwords for one login at once: each is recorded before it is checked, in
/// one step with the count, so only five are checked, and the right one after them is refused
/// as the login is locked.
async fn guesses_sent_at_once_are_checked_at_most_five_times() {
    let app = spawn_app().await;
    let guesses: Vec<_> = (0..100)
        .map(|i| {
            let address = app.address;
            tokio::spawn(async move {
                let guess = Request::post(GET)
                    .basic((USER.0, &format!("guess {i}")))
                    .json(BODY);
                send_to(address, guess).await.status
            })
        })
        .collect();
    for guess in guesses {
        assert_eq!(guess.await.unwrap(), 401);
    }
    let right = Request::post(GET).basic(USER).json(BODY);
    assert_eq!(app.send(right).await.status, 401, "locked, though right");
    // Exactly five checks recorded in the window: a sixth would pass a limit of six, not five.
    let since = app.clock.now_millis() - 60_000;
    let key = LoginKey::of(USER.0);
    let store = &app.store;
    assert!(!store.reserve_login_attempt(key, 0, since, 5).await.unwrap());
    assert!(store.reserve_login_attempt(key, 0, since, 6).await.unwrap());
}

/// The same right credentials on many connections at once, none remembered yet: checked once,
/// not once per connection, so the lockout's few checks are not spent on them.
async fn a_client_signing_in_on_many_connections_at_once_is_let_in_on_each() {
    let app = spawn_app().await;
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let address = app.address;
            tokio::spawn(async move {
                send_to(address, Request::post(GET).basic(USER).json(BODY))
                    .await
                    .status
            })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
}

/// When a check cannot be recorded (here a trigger refuses the insert, as a full disk or a lost
/// database would), the answer is a 503 and the password is not checked: neither a wrong one
/// nor the right one gets a verdict.
async fn a_check_that_cannot_be_recorded_is_a_503_and_never_made() {
    let app = spawn_app().await;
    let refuse_inserts = RefusedInserts::install(&app.database_url).await;
    for password in ["guess", USER.1] {
        let response = app
            .send(Request::post(GET).basic((USER.0, password)).json(BODY))
            .await;
        assert_eq!(response.status, 503, "{password}");
        assert_eq!(response.json()["ErrorType"], "ServiceUnavailableException");
        assert_eq!(response.header("retry-after"), Some("1"));
    }
    let mut browser = Browser::default();
    assert_eq!(browser.sign_in(&app, USER).await.status, 503);
    refuse_inserts.remove().await;
    assert_eq!(
        app.send(Request::post(GET).basic(USER).json(BODY))
            .await
            .status,
        200
    );
}

/// A trigger that makes every insert of a password check fail, as another program might.
struct RefusedInserts {
    database_url: String,
}

impl RefusedInserts {
    async fn install(database_url: &str) -> Self {
        run_sql(
            database_url,
            "CREATE TRIGGER refuse_checks BEFORE INSERT ON login_failure
             BEGIN SELECT RAISE(FAIL, 'no room'); END;",
            "CREATE FUNCTION refuse_checks() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'no room'; END $$;
             CREATE TRIGGER refuse_checks BEFORE INSERT ON login_failure
                 FOR EACH ROW EXECUTE FUNCTION refuse_checks();",
        )
        .await;
        Self {
            database_url: database_url.to_owned(),
        }
    }

    async fn remove(self) {
        run_sql(
            &self.database_url,
            "DROP TRIGGER refuse_checks;",
            "DROP TRIGGER refuse_checks ON login_failure;",
        )
        .await;
    }
}

/// Runs `sqlite` or `postgres`, whichever the database is, as another program would.
async fn run_sql(database_url: &str, sqlite: &str, postgres: &str) {
    match database_url.strip_prefix("sqlite://") {
        Some(path) => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sqlite)
            .unwrap(),
        None => {
            let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client.batch_execute(postgres).await.unwrap();
        }
    }
}

async fn a_login_too_long_to_be_one_is_refused_before_anything_is_stored() {
    let app = spawn_app().await;
    let login = "x".repeat(40 * 1024);
    let response = app
        .send(Request::post(GET).basic((&login, "guess")).json(BODY))
        .await;
    assert_eq!(response.status, 401);
    let mut browser = Browser::default();
    assert_eq!(browser.sign_in(&app, (&login, "guess")).await.status, 401);
    // Nothing was recorded for it: a limit of one still lets a check through.
    let since = app.clock.now_millis() - 60_000;
    assert!(
        app.store
            .reserve_login_attempt(LoginKey::of(&login), 0, since, 1)
            .await
            .unwrap()
    );
}

/// Far more guesses at once than the Argon2 threads can check in a second: those that wait
/// longer for their turn are refused as busy, unchecked and unrecorded, and a signed-in user
/// is answered all along.
async fn a_flood_of_guesses_beyond_what_argon2_can_take_is_refused_as_busy() {
    let app = spawn_app().await;
    let right = || Request::post(GET).basic(USER).json(BODY);
    assert_eq!(app.send(right()).await.status, 200);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let guesses: Vec<_> = (0..cores * 200)
        .map(|i| {
            let address = app.address;
            tokio::spawn(async move {
                let guess = Request::post(GET)
                    .basic((&format!("nobody-{i}"), "guess"))
                    .json(BODY);
                send_to(address, guess).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.send(right()).await.status,
        200,
        "remembered, not checked"
    );
    let mut busy = 0;
    for guess in guesses {
        let response = guess.await.unwrap();
        match response.status {
            401 => {}
            503 => {
                assert_eq!(response.header("retry-after"), Some("1"));
                busy += 1;
            }
            other => panic!("{other}: {}", response.text()),
        }
    }
    assert!(busy > 0, "every guess waited its turn");
}
