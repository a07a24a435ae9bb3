//! The webhook commands: add one (printing its secret, shown this once), list them, remove
//! one, and show one's latest attempts. Delivery itself is the servers' (`crate::webhooks`):
//! whether a URL's addresses are allowed is decided there, by `--allow-private-webhooks`.

use clap::Subcommand;

use super::CliError;
use crate::clock::Clock;
use crate::store::{Store, WebhookAdded};
use crate::timestamp;
use crate::webhooks;

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Add a webhook: every change from now on is POSTed to URL (http or https), signed.
    /// Prints its id and its secret (whsec_...), which is shown this once.
    Add {
        url: String,
        /// Only these associates' changes (comma-separated ids); everyone's without it.
        #[arg(long, value_delimiter = ',', value_name = "IDS")]
        associates: Option<Vec<i64>>,
    },
    /// List the webhooks: id, the revision delivered through, since when the next change has
    /// failed, the associates it is for, and its URL.
    List,
    /// Remove a webhook; a delivery in flight may still arrive.
    Remove { id: i64 },
    /// Show a webhook's latest attempts, newest first (the last 100): when, the change's
    /// revision, the attempt's number, how it ended, the receiver's status and what went
    /// wrong.
    Deliveries { id: i64 },
}

pub(super) async fn webhook(store: &Store, command: WebhookCommand) -> Result<(), CliError> {
    match command {
        WebhookCommand::Add { url, associates } => {
            let (webhook, secret) =
                webhooks::new_webhook(&url, associates, Clock::System.now_millis())?;
            match store.add_webhook(webhook).await? {
                WebhookAdded::Added(added) => {
                    println!("id: {}", added.id);
                    println!("secret: {secret}");
                }
                WebhookAdded::TooMany => return Err(CliError::TooManyWebhooks),
            }
        }
        WebhookCommand::List => {
            println!(
                "{:>6}  {:>10}  {:<24}  {:<16}  URL",
                "ID", "DELIVERED", "FAILING SINCE", "ASSOCIATES"
            );
            for webhook in store.list_webhooks().await? {
                let associates = webhook.associates.map_or_else(
                    || "all".to_owned(),
                    |ids| {
                        ids.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    },
                );
                println!(
                    "{:>6}  {:>10}  {:<24}  {:<16}  {}",
                    webhook.id,
                    webhook.delivered_through,
                    webhook
                        .failing_since
                        .map_or_else(|| "-".to_owned(), timestamp::format),
                    associates,
                    webhook.url
                );
            }
        }
        WebhookCommand::Remove { id } => {
            if !store.remove_webhook(id).await? {
                return Err(CliError::UnknownWebhook(id));
            }
            println!("removed webhook {id}");
        }
        WebhookCommand::Deliveries { id } => {
            let deliveries = store
                .webhook_deliveries(id)
                .await?
                .ok_or(CliError::UnknownWebhook(id))?;
            println!(
                "{:<24}  {:>10}  {:>7}  {:<9}  {:>6}  ERROR",
                "AT", "REVISION", "ATTEMPT", "OUTCOME", "STATUS"
            );
            for delivery in deliveries {
                let row = format!(
                    "{:<24}  {:>10}  {:>7}  {:<9}  {:>6}  {}",
                    timestamp::format(delivery.at),
                    delivery.revision,
                    delivery.attempt,
                    delivery.outcome.name(),
                    delivery
                        .status
                        .map_or_else(|| "-".to_owned(), |s| s.to_string()),
                    delivery.error.as_deref().unwrap_or("")
                );
                println!("{}", row.trim_end());
            }
        }
    }
    Ok(())
}
