//! Tells the other nodes of this node's changes, and hears of theirs: `NOTIFY presence_change`
//! and `LISTEN presence_change`, on a connection of its own outside the pool (a listening
//! connection must stay with its listener).
//!
//! The notification is sent here, after the changes committed, and not by the writers'
//! transactions: a transaction that notifies takes a lock at commit that every other
//! notifying transaction in the cluster waits for, which would make Sets commit one at a time
//! across all nodes again. Sent at most every [`NOTIFY_GAP`], it costs one statement for any
//! number of Sets.

use std::future::poll_fn;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, NoTls, Socket};

use super::{PostgresStore, classify, tls};
use crate::store::StoreError;

/// The least time between two notifications this node sends.
const NOTIFY_GAP: Duration = Duration::from_millis(20);

impl PostgresStore {
    /// Calls `on_change` for each notification, and notifies the other nodes each time
    /// `changed_here` is signalled, until the connection fails or closes.
    pub(in crate::store) async fn listen_for_changes(
        &self,
        on_change: impl Fn() + Send + 'static,
        changed_here: &Notify,
    ) -> Result<(), StoreError> {
        match self.config.get_ssl_mode() {
            SslMode::Disable => listen(&self.config, NoTls, on_change, changed_here).await,
            _ => listen(&self.config, tls()?, on_change, changed_here).await,
        }
    }
}

async fn listen<T>(
    config: &tokio_postgres::Config,
    tls: T,
    on_change: impl Fn() + Send + 'static,
    changed_here: &Notify,
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
    let mut driver = std::pin::pin!(driver);
    client
        .batch_execute("LISTEN presence_change")
        .await
        .map_err(classify)?;
    loop {
        tokio::select! {
            ended = &mut driver => return ended.map_err(|_| StoreError::TaskFailed)?,
            () = changed_here.notified() => {
                client
                    .batch_execute("NOTIFY presence_change")
                    .await
                    .map_err(classify)?;
                // Changes meanwhile leave one permit: one notification for all of them.
                tokio::time::sleep(NOTIFY_GAP).await;
            }
        }
    }
}
