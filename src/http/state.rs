//! What every request can reach: the store, the wire settings, and the authenticator.

use std::sync::Arc;

use axum::http::HeaderValue;

use crate::config::HttpSettings;
use crate::http::auth::Authenticator;
use crate::store::Store;

/// What every request can reach. Cheap to clone: one reference count.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: HttpSettings,
    auth: Authenticator,
}

impl AppState {
    pub fn new(store: Store, settings: HttpSettings, auth: Authenticator) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                settings,
                auth,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.inner.settings
    }

    pub fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// The `WWW-Authenticate` headers of every 401.
    pub fn challenges(&self) -> &[HeaderValue] {
        self.inner.auth.challenges()
    }
}
