//! What every request can reach: the store, the wire settings, the authenticator, the
//! presence API's kept JSON, and the change feed.

use std::sync::Arc;

use axum::http::HeaderValue;

use crate::changes::feed::Feed;
use crate::config::HttpSettings;
use crate::http::auth::Authenticator;
use crate::http::presence::Renderings;
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
    renderings: Renderings,
    feed: Feed,
}

impl AppState {
    pub fn new(store: Store, settings: HttpSettings, auth: Authenticator) -> Self {
        let feed = Feed::new(store.clone(), crate::http::presence::change_json);
        Self {
            inner: Arc::new(Inner {
                store,
                settings,
                auth,
                renderings: Renderings::default(),
                feed,
            }),
        }
    }

    /// The change feed; `app::serve` runs its reader.
    pub fn feed(&self) -> &Feed {
        &self.inner.feed
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

    /// The JSON of presences that read the same at every moment, kept between batch reads.
    pub fn renderings(&self) -> &Renderings {
        &self.inner.renderings
    }

    /// The `WWW-Authenticate` headers of every 401.
    pub fn challenges(&self) -> &[HeaderValue] {
        self.inner.auth.challenges()
    }
}
