//! Listens for PostgreSQL's `NOTIFY presence_change` (sent by the trigger of migration 0007
//! when a transaction that logged a change commits), on a connection of its own outside the
//! pool: a listening connection must stay with its listener.

use std::future::poll_fn;

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, NoTls, Socket};

use super::{PostgresStore, classify, tls};
use crate::store::StoreError;

impl PostgresStore {
    /// Calls `on_change` for each notification until the connection fails or closes.
    pub(in crate::store) async fn listen_for_changes(
        &self,
        on_change: impl Fn() + Send + 'static,
    ) -> Result<(), StoreError> {
        match self.config.get_ssl_mode() {
            SslMode::Disable => listen(&self.config, NoTls, on_change).await,
            _ => listen(&self.config, tls()?, on_change).await,
        }
    }
}

async fn listen<T>(
    config: &tokio_postgres::Config,
    tls: T,
    on_change: impl Fn() + Send + 'static,
) -> Result<(), StoreError>
where
    T: MakeTlsConnect<Socket> + Send,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await.map_err(classify)?;
    // The connection makes progress only while polled, the LISTEN below included: a task of
    // its own polls it and hands each notification on.
    let driver = tokio::spawn(async move {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(_)) => on_change(),
                Ok(_) => {}
                Err(error) => return Err(classify(error)),
            }
        }
        Ok(())
    });
    client
        .batch_execute("LISTEN presence_change")
        .await
        .map_err(classify)?;
    let ended = driver.await.map_err(|_| StoreError::TaskFailed)?;
    drop(client);
    ended
}
