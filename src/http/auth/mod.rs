//! Who is calling: one check that knows every authentication scheme,
//! [`Authenticator::authenticate`], turns a request's headers into a [`Caller`]; the
//! operations never learn which scheme produced it.
//!
//! The first credential present decides, and a bad one is a 401 even if another would have
//! passed: `Authorization` (Basic, SOTicket or Bearer) when the header is there, otherwise the
//! browser session cookie with its XSRF token.

mod basic;
pub mod cache;
mod jwt;
pub mod session;

use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use tracing::debug;

pub use basic::{BasicAuthenticator, LOCKOUT_WINDOW, MAX_FAILURES, MAX_LOGIN_BYTES, PasswordCheck};
pub use jwt::{JwtSetupError, JwtVerifier};

use super::error::ApiError;
use crate::clock::Clock;
use crate::config::{AuthSettings, Installation};
use crate::domain::{Actor, AssociateId, UserStatus, Via};
use crate::metrics;
use crate::secret::{ACCESS_TOKEN_PREFIX, SecretHash, TICKET_PREFIX};
use crate::store::{Application, Store, TokenOwner};
use crate::tickets;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub associate_id: AssociateId,
    pub is_admin: bool,
    /// The registered application the call came through, when it named one.
    pub application: Option<Application>,
    /// How the caller was identified.
    pub scheme: Scheme,
}

impl Caller {
    /// The caller as the author of a change the history records.
    pub fn actor(&self) -> Actor {
        Actor::user(
            self.associate_id,
            Via {
                scheme: self.scheme.name(),
                application: self.application.as_ref().map(|app| app.name.clone()),
            },
        )
    }

    /// Online, the User agent is closed to partner applications unless one was granted it.
    pub fn ensure_user_agent(&self, installation: Installation) -> Result<(), ApiError> {
        match &self.application {
            Some(app)
                if installation == Installation::Online
                    && app.is_partner
                    && !app.grants_user_agent =>
            {
                Err(ApiError::Forbidden(format!(
                    "The User agent is not available to the partner application '{}'",
                    app.name
                )))
            }
            _ => Ok(()),
        }
    }
}

/// The ways a caller can be identified: which one decides whether an application token is
/// needed online.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    Ticket,
    AccessToken,
    Jwt,
    Session,
}

impl Scheme {
    /// As the history names it (`via.scheme`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Ticket => "ticket",
            Self::AccessToken => "accessToken",
            Self::Jwt => "jwt",
            Self::Session => "session",
        }
    }
}

/// Every scheme, configured once at start-up.
pub struct Authenticator {
    settings: AuthSettings,
    clock: Clock,
    basic: BasicAuthenticator,
    jwt: Option<JwtVerifier>,
    /// The `WWW-Authenticate` headers of every 401: one per enabled scheme.
    challenges: Vec<HeaderValue>,
}

impl Authenticator {
    pub async fn new(settings: AuthSettings, clock: Clock) -> Result<Self, JwtSetupError> {
        let jwt = match (&settings.jwt, settings.bearer) {
            (Some(jwt), true) => Some(JwtVerifier::new(jwt.clone(), clock.clone()).await?),
            _ => None,
        };
        let mut challenges = Vec::new();
        if settings.basic && settings.installation == Installation::Onsite {
            challenges.push(HeaderValue::from_static(
                r#"Basic realm="SuperOffice", charset="UTF-8""#,
            ));
        }
        if settings.ticket {
            challenges.push(HeaderValue::from_static(r#"SOTicket realm="SuperOffice""#));
        }
        if settings.bearer {
            challenges.push(HeaderValue::from_static(r#"Bearer realm="SuperOffice""#));
        }
        Ok(Self {
            settings,
            clock,
            basic: BasicAuthenticator::new(),
            jwt,
            challenges,
        })
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn basic(&self) -> &BasicAuthenticator {
        &self.basic
    }

    pub fn challenges(&self) -> &[HeaderValue] {
        &self.challenges
    }

    /// Whether passwords are accepted at all: Basic and the sign-in page share this.
    pub fn accepts_passwords(&self) -> bool {
        self.settings.basic && self.settings.installation == Installation::Onsite
    }

    // At debug level the span costs nothing unless someone is looking at debug output.
    //
    // Every scheme but Basic with a known password is boxed where it is awaited: their
    // futures are large and rare, and unboxed every request's future would carry their
    // size, and be moved with it.
    /// The caller the request's credentials name; a refusal is counted in the metrics by the
    /// scheme the request tried.
    pub async fn authenticate(
        &self,
        store: &Store,
        headers: &HeaderMap,
    ) -> Result<Caller, ApiError> {
        let caller = self.identify(store, headers).await;
        if caller == Err(ApiError::Unauthorized) {
            metrics::authentication_failure(scheme_tried(headers));
        }
        caller
    }

    #[tracing::instrument(name = "authenticate", level = "debug", skip_all)]
    async fn identify(&self, store: &Store, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let (scheme, owner) = match headers.get(AUTHORIZATION) {
            Some(header) => self.authorization(store, header).await?,
            None if self.settings.ticket => (
                Scheme::Session,
                Box::pin(session::authenticate(
                    store,
                    &self.clock,
                    headers,
                    self.settings.secure_cookies,
                ))
                .await?,
            ),
            None => {
                debug!("no Authorization header");
                return Err(ApiError::Unauthorized);
            }
        };
        let application = self.application(store, headers, scheme).await?;
        Ok(Caller {
            associate_id: owner.associate_id,
            is_admin: owner.is_admin,
            application,
            scheme,
        })
    }

    async fn authorization(
        &self,
        store: &Store,
        header: &HeaderValue,
    ) -> Result<(Scheme, Identity), ApiError> {
        let value = header.to_str().map_err(|_| {
            debug!("Authorization header is not ASCII");
            ApiError::Unauthorized
        })?;
        // A header value that is a `str` is visible ASCII, so ASCII trimming is all there is;
        // and the scheme is a short word, found faster by a plain scan than by `split_once`.
        let value = value.trim_ascii();
        let (scheme, credentials) = match value.bytes().position(|b| b == b' ') {
            Some(space) => (&value[..space], value[space + 1..].trim_ascii()),
            None => (value, ""),
        };
        if scheme.eq_ignore_ascii_case("SOTicket")
            // SuperOffice also takes a bare ticket where Basic credentials would be.
            || (scheme.eq_ignore_ascii_case("Basic") && credentials.starts_with(TICKET_PREFIX))
        {
            self.enabled(self.settings.ticket, "SOTicket")?;
            let owner = Box::pin(tickets::check_ticket(store, &self.clock, credentials)).await?;
            return Ok((
                Scheme::Ticket,
                found(owner, "unknown, expired or revoked ticket")?,
            ));
        }
        if scheme.eq_ignore_ascii_case("Basic") {
            self.enabled(self.accepts_passwords(), "Basic")?;
            let identity = self
                .basic
                .authenticate(store, &self.clock, credentials)
                .await?;
            return Ok((Scheme::Basic, identity));
        }
        if scheme.eq_ignore_ascii_case("Bearer") {
            self.enabled(self.settings.bearer, "Bearer")?;
            if credentials.starts_with(ACCESS_TOKEN_PREFIX) {
                let owner =
                    Box::pin(tickets::check_access_token(store, &self.clock, credentials)).await?;
                return Ok((
                    Scheme::AccessToken,
                    found(owner, "unknown, expired or revoked access token")?,
                ));
            }
            let Some(jwt) = &self.jwt else {
                debug!(
                    "a Bearer token that is no access token, and no identity provider is configured"
                );
                return Err(ApiError::Unauthorized);
            };
            let associate_id = Box::pin(jwt.verify(credentials)).await?;
            let user = Box::pin(store.credentials_of(associate_id)).await?;
            let Some(user) = user.filter(|u| u.status != UserStatus::StatusDeleted) else {
                debug!(%associate_id, "the JWT names no active Service user");
                return Err(ApiError::Unauthorized);
            };
            let identity = Identity {
                associate_id,
                is_admin: user.is_admin,
            };
            return Ok((Scheme::Jwt, identity));
        }
        debug!(scheme, "unsupported authentication scheme");
        Err(ApiError::Unauthorized)
    }

    fn enabled(&self, enabled: bool, scheme: &str) -> Result<(), ApiError> {
        if enabled {
            Ok(())
        } else {
            debug!(scheme, "the scheme is switched off");
            Err(ApiError::Unauthorized)
        }
    }

    /// The application named by `SO-AppToken`. Online it is required for everything but
    /// Basic (which online refuses anyway); onsite it is optional, and an unknown token is
    /// ignored as if it were absent.
    async fn application(
        &self,
        store: &Store,
        headers: &HeaderMap,
        scheme: Scheme,
    ) -> Result<Option<Application>, ApiError> {
        let token = headers
            .get("SO-AppToken")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let application = match token {
            Some(token) if !token.is_empty() => {
                Box::pin(store.find_application(SecretHash::of(token))).await?
            }
            _ => None,
        };
        if self.settings.installation == Installation::Online
            && scheme != Scheme::Basic
            && application.is_none()
        {
            debug!(?scheme, "online, a valid SO-AppToken is required");
            return Err(ApiError::Unauthorized);
        }
        Ok(application)
    }
}

/// The scheme a request's credentials are in, as the metrics count failures: by the
/// `Authorization` header's first word, or a session when there is none but a cookie.
fn scheme_tried(headers: &HeaderMap) -> metrics::Scheme {
    let Some(header) = headers.get(AUTHORIZATION) else {
        return if headers.contains_key(COOKIE) {
            metrics::Scheme::Session
        } else {
            metrics::Scheme::None
        };
    };
    let value = header.as_bytes().trim_ascii();
    let (scheme, credentials) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], value[space + 1..].trim_ascii()),
        None => (value, &[][..]),
    };
    if scheme.eq_ignore_ascii_case(b"SOTicket")
        || (scheme.eq_ignore_ascii_case(b"Basic")
            && credentials.starts_with(TICKET_PREFIX.as_bytes()))
    {
        metrics::Scheme::SoTicket
    } else if scheme.eq_ignore_ascii_case(b"Basic") {
        metrics::Scheme::Basic
    } else if scheme.eq_ignore_ascii_case(b"Bearer") {
        metrics::Scheme::Bearer
    } else {
        metrics::Scheme::None
    }
}

/// Who a credential identified, before the application rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub associate_id: AssociateId,
    pub is_admin: bool,
}

impl From<TokenOwner> for Identity {
    fn from(owner: TokenOwner) -> Self {
        Self {
            associate_id: owner.associate_id,
            is_admin: owner.is_admin,
        }
    }
}

fn found(owner: Option<TokenOwner>, failure: &'static str) -> Result<Identity, ApiError> {
    owner.map(Identity::from).ok_or_else(|| {
        debug!("{failure}");
        ApiError::Unauthorized
    })
}
