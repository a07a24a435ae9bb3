//! Bearer JWTs from a configured identity provider: RS256 and ES256 with keys from a JWKS
//! file or URL, and HS256 with a shared secret.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::config::{JwksSource, JwtSettings};
use crate::domain::AssociateId;
use crate::http::error::ApiError;
use crate::secret::SecretHash;

/// An unknown key id fetches the key set again at most this often, so tokens with made-up
/// key ids cannot turn the server into a flood of requests to the identity provider.
const REFRESH_INTERVAL_MS: i64 = 60_000;
/// Verified tokens remembered at most; beyond it an arbitrary one is forgotten. An entry is a
/// hash, an associate and a time, a few dozen bytes whatever the token: this bounds the bytes
/// too.
const CACHE_CAPACITY: usize = 50_000;
/// Clock skew tolerated between the identity provider and this server.
const LEEWAY_SECONDS: i64 = 60;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    #[error("cannot read the JWKS file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("the JWKS is not a valid key set: {0}")]
    Invalid(String),
    #[error("an identity provider needs a JWKS file or URL, an HS256 secret, or both")]
    NoKeys,
}

pub struct JwtVerifier {
    settings: JwtSettings,
    clock: Clock,
    hs256: Option<DecodingKey>,
    keys: RwLock<JwkSet>,
    /// When the key set was last fetched (Unix milliseconds).
    fetched_at: Mutex<i64>,
    /// Verified tokens (by hash) with their associate and expiry (Unix seconds): checking a
    /// signature costs far more than a lookup.
    verified: RwLock<HashMap<SecretHash, (AssociateId, i64)>>,
}

impl JwtVerifier {
    pub async fn new(settings: JwtSettings, clock: Clock) -> Result<Self, JwtSetupError> {
        if settings.keys.is_none() && settings.hs256_secret.is_none() {
            return Err(JwtSetupError::NoKeys);
        }
        let keys = match &settings.keys {
            Some(JwksSource::File(path)) => load_file(path)?,
            Some(JwksSource::Url(url)) => match fetch(url.clone()).await {
                Ok(keys) => keys,
                Err(error) => {
                    // Start anyway: the provider may be down for a moment, and the first
                    // token with an unknown key id fetches again.
                    warn!(%url, %error, "cannot fetch the JWKS; will retry when a token needs it");
                    JwkSet { keys: Vec::new() }
                }
            },
            None => JwkSet { keys: Vec::new() },
        };
        let hs256 = settings
            .hs256_secret
            .as_ref()
            .map(|secret| DecodingKey::from_secret(secret.0.as_bytes()))
            .transpose()
            .map_err(|e| JwtSetupError::Invalid(format!("the HS256 secret: {e}")))?;
        Ok(Self {
            fetched_at: Mutex::new(clock.now_millis()),
            settings,
            clock,
            hs256,
            keys: RwLock::new(keys),
            verified: RwLock::new(HashMap::new()),
        })
    }

    /// The associate a valid token names.
    pub async fn verify(&self, token: &str) -> Result<AssociateId, ApiError> {
        let hash = SecretHash::of(token);
        let now = self.clock.now_seconds();
        if let Some(&(associate_id, expires)) = self
            .verified
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&hash)
            && now < expires + LEEWAY_SECONDS
        {
            return Ok(associate_id);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| reject(format_args!("not a JWT: {e}")))?;
        let key = match header.alg {
            Algorithm::HS256 => self
                .hs256
                .clone()
                .ok_or_else(|| reject("an HS256 token, and no HS256 secret is configured"))?,
            Algorithm::RS256 | Algorithm::ES256 => {
                self.public_key(header.alg, header.kid.as_deref()).await?
            }
            other => {
                return Err(reject(format_args!(
                    "the algorithm {other:?} is not accepted"
                )));
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        // The library checks `iss` and `aud` only when a token has them: required here, so a
        // token that lacks either is refused. Expiry and not-before are checked below against
        // the server's own clock.
        validation.set_required_spec_claims(&["iss", "aud"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<HashMap<String, Value>>(token, &key, &validation)
            .map_err(|e| reject(format_args!("{e}")))?
            .claims;
        let expires = claims
            .get("exp")
            .and_then(numeric_date)
            .ok_or_else(|| reject("no exp claim, or not a number of seconds"))?;
        if now >= expires + LEEWAY_SECONDS {
            return Err(reject("expired"));
        }
        match claims.get("nbf").map(numeric_date) {
            None => {}
            Some(None) => return Err(reject("nbf is not a number of seconds")),
            Some(Some(not_before)) if now + LEEWAY_SECONDS < not_before => {
                return Err(reject("not valid yet"));
            }
            Some(Some(_)) => {}
        }
        let associate_id = claims
            .get(&self.settings.associate_claim)
            .and_then(|value| match value {
                Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .map(AssociateId::new)
            .ok_or_else(|| {
                reject(format_args!(
                    "no associate in the claim {}",
                    self.settings.associate_claim
                ))
            })?;
        let mut verified = self
            .verified
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= CACHE_CAPACITY {
            // Expired tokens go, and others until an eighth of the room is free: one pass for
            // as many inserts.
            let mut room = verified.len() - (CACHE_CAPACITY - CACHE_CAPACITY / 8);
            verified.retain(|_, &mut (_, exp)| {
                let evict = now >= exp + LEEWAY_SECONDS || room > 0;
                room = room.saturating_sub(usize::from(evict));
                !evict
            });
        }
        verified.insert(hash, (associate_id, expires));
        Ok(associate_id)
    }

    /// The public key for a token: by key id when it has one, else the first key of the
    /// algorithm's type. An unknown key id refetches the key set, at most once a minute.
    async fn public_key(&self, alg: Algorithm, kid: Option<&str>) -> Result<DecodingKey, ApiError> {
        if let Some(key) = self.find_key(alg, kid) {
            return Ok(key);
        }
        if let Some(JwksSource::Url(url)) = &self.settings.keys {
            let due = {
                let mut fetched_at = self
                    .fetched_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let now = self.clock.now_millis();
                let due = now - *fetched_at >= REFRESH_INTERVAL_MS;
                if due {
                    *fetched_at = now;
                }
                due
            };
            if due {
                match fetch(url.clone()).await {
                    Ok(keys) => {
                        info!(%url, keys = keys.keys.len(), "fetched the JWKS again for an unknown key id");
                        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
                    }
                    Err(error) => warn!(%url, %error, "cannot fetch the JWKS"),
                }
                if let Some(key) = self.find_key(alg, kid) {
                    return Ok(key);
                }
            }
        }
        Err(reject(format_args!("no {alg:?} key with the id {kid:?}")))
    }

    fn find_key(&self, alg: Algorithm, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.keys
            .iter()
            .filter(|jwk| kid.is_none() || jwk.common.key_id.as_deref() == kid)
            .find(|jwk| match (&jwk.algorithm, alg) {
                (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
                (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
                    ec.curve == EllipticCurve::P256
                }
                _ => false,
            })
            .and_then(|jwk| DecodingKey::from_jwk(jwk).ok())
    }
}

/// A NumericDate (RFC 7519, section 2): seconds since the epoch, which may have a fraction; cut
/// to whole seconds, as the checks count whole seconds with a minute's leeway.
fn numeric_date(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|seconds| seconds.is_finite() && seconds.abs() < 1e15)
                .map(|seconds| seconds.floor() as i64)
        }),
        _ => None,
    }
}

fn reject(reason: impl std::fmt::Display) -> ApiError {
    debug!(%reason, "JWT refused");
    ApiError::Unauthorized
}

fn load_file(path: &std::path::Path) -> Result<JwkSet, JwtSetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| JwtSetupError::File {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| JwtSetupError::Invalid(e.to_string()))
}

/// Fetches a key set over HTTP or HTTPS, on a blocking thread with a bounded wait.
async fn fetch(url: String) -> Result<JwkSet, String> {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(FETCH_TIMEOUT))
            .build()
            .into();
        let mut response = agent.get(&url).call().map_err(|e| e.to_string())?;
        let text = response
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("not a key set: {e}"))
    })
    .await
    .map_err(|_| "the fetch task failed".to_owned())?
}
