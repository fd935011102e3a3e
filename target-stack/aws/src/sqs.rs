//! SQS: the notification and MultiVAC queues, and the dead-letter queue.
//!
//! The stores' queue model maps onto SQS like this:
//!
//! - `enqueue`: a new random id (below 2^53), for notifications first a conditional status
//!   record in DynamoDB (which also makes the id unique), then `SendMessage` with the id as
//!   the message attribute `peakload-id`. A 202 is only answered once both are written.
//! - `claim`: `ReceiveMessage` (up to 10 per call, a short long-poll on the first) with the
//!   lease as the visibility timeout; attempts are `ApproximateReceiveCount`. The receipt
//!   handles stay in this process until the message is finished.
//! - `ack`: status `sent` (notifications), then `DeleteMessageBatch`.
//! - `retry_later`: `ChangeMessageVisibility` to the backoff delay (rounded up to seconds),
//!   so the retry is SQS redelivering the message.
//! - `dead_letter`: `SendMessage` to the DLQ, status `failed`, `DeleteMessage`. The queues'
//!   redrive policy (`maxReceiveCount`) is the backstop for a message that kills every
//!   worker before it can be dead-lettered; keep it ≥ `--max-attempts`.
//!
//! Exactly-once delivery as the recipient sees it rests on the deliveries store being
//! idempotent on the notification id, not on SQS (which delivers at least once).
//!
//! `stats`: depth is `ApproximateNumberOfMessages` + `…NotVisible` + `…Delayed`. SQS has no
//! API for the oldest message's age (CloudWatch's `ApproximateAgeOfOldestMessage` is
//! per-minute), so it is estimated: the age of the oldest message in this process's most
//! recent non-empty receive, growing while nothing is received (a paused or stuck worker);
//! with no such receive, the time since this process first saw the queue non-empty; zero
//! when the queue is empty.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use aws_sdk_sqs::Client;
use peakload_stack::store::health::{WriteHealth, WriteOp};
use peakload_stack::store::{
    now_ms, BackendHealth, LeasedMessage, MessageState, MessageStatus, PoolSnapshot, Queue,
    QueueStats, QueueStore, StoreError, StoreResult,
};

use crate::dynamo::{new_id, Dynamo};
use crate::error::store_error;

const BACKEND: &str = "sqs";
const ID_ATTRIBUTE: &str = "peakload-id";
const QUEUE_ATTRIBUTE: &str = "peakload-queue";
/// Long-poll time of a claim that finds nothing at once (the worker checks for shutdown
/// between claims, so this bounds how long a stop waits for a claim).
const RECEIVE_WAIT_SECS: i32 = 1;

/// The queue URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsQueues {
    pub notifications: String,
    pub multivac: String,
    pub dlq: String,
}

impl SqsQueues {
    pub fn url(&self, queue: Queue) -> &str {
        match queue {
            Queue::Notifications => &self.notifications,
            Queue::Multivac => &self.multivac,
        }
    }
}

/// A received message this process has not finished yet.
struct Lease {
    receipt: String,
    attempts: u32,
    payload: String,
}

/// What this process knows of a queue's head, for the oldest-age estimate.
#[derive(Default, Clone, Copy)]
struct Head {
    /// Sent time of the oldest message in the latest non-empty receive.
    oldest_sent_ms: Option<i64>,
    /// When this process first saw the queue non-empty (since it was last empty).
    nonempty_since_ms: Option<i64>,
}

pub struct SqsQueueStore {
    client: Client,
    queues: SqsQueues,
    dynamo: Arc<Dynamo>,
    leases: Mutex<HashMap<(Queue, i64), Lease>>,
    heads: Mutex<HashMap<Queue, Head>>,
    /// Outcomes of the writes, for readiness.
    writes: Arc<WriteHealth>,
}

fn other(message: impl Into<String>) -> StoreError {
    StoreError::Backend {
        backend: BACKEND,
        message: message.into(),
        unavailable: false,
    }
}

fn id_attribute(id: i64) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(id.to_string())
        .build()
        .expect("data type is set")
}

/// Whole seconds for a visibility timeout, rounded up, within SQS's 0..=12 h.
fn visibility_secs(d: Duration) -> i32 {
    (d.as_millis().div_ceil(1000)).min(43_200) as i32
}

impl SqsQueueStore {
    pub fn new(client: Client, queues: SqsQueues, dynamo: Arc<Dynamo>) -> Self {
        SqsQueueStore {
            client,
            queues,
            dynamo,
            leases: Mutex::new(HashMap::new()),
            heads: Mutex::new(HashMap::new()),
            writes: Arc::new(WriteHealth::default()),
        }
    }

    fn take_lease(&self, queue: Queue, id: i64) -> StoreResult<Lease> {
        self.leases
            .lock()
            .expect("leases lock")
            .remove(&(queue, id))
            .ok_or_else(|| other(format!("no lease held on {} message {id}", queue.as_str())))
    }

    /// Warns when a queue's redrive policy would move messages to the DLQ before the worker
    /// has made `max_attempts` attempts (their status would then stay `queued`).
    pub async fn check_redrive(&self, max_attempts: u32) {
        for queue in Queue::ALL {
            let out = self
                .client
                .get_queue_attributes()
                .queue_url(self.queues.url(queue))
                .attribute_names(QueueAttributeName::RedrivePolicy)
                .send()
                .await;
            let policy = match out {
                Ok(out) => out
                    .attributes()
                    .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
                    .cloned(),
                Err(e) => {
                    tracing::warn!(queue = queue.as_str(), error = %store_error(BACKEND, "GetQueueAttributes", e), "cannot read the redrive policy");
                    continue;
                }
            };
            let max_receive = policy
                .as_deref()
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                .and_then(|v| match &v["maxReceiveCount"] {
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(s) => s.parse().ok(),
                    _ => None,
                });
            match max_receive {
                None => tracing::warn!(
                    queue = queue.as_str(),
                    "no redrive policy: a message that crashes every worker is retried until it expires"
                ),
                Some(n) if n < u64::from(max_attempts) => tracing::warn!(
                    queue = queue.as_str(),
                    max_receive_count = n,
                    max_attempts,
                    "maxReceiveCount is below --max-attempts: SQS dead-letters first and the status stays queued"
                ),
                Some(_) => {}
            }
        }
    }

    async fn approximate_counts(&self, url: &str) -> StoreResult<u64> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "GetQueueAttributes", e))?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        Ok([
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .filter_map(|k| attrs.get(k).and_then(|v| v.parse::<u64>().ok()))
        .sum())
    }

    async fn delete(&self, queue: Queue, receipts: &[(i64, String)]) -> StoreResult<()> {
        for chunk in receipts.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (_, receipt))| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(self.queues.url(queue))
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| store_error(BACKEND, "DeleteMessageBatch", e))?;
            if let Some(failed) = out.failed().first() {
                return Err(other(format!(
                    "DeleteMessageBatch: {} of {} failed ({}: {})",
                    out.failed().len(),
                    chunk.len(),
                    failed.code(),
                    failed.message().unwrap_or("")
                )));
            }
        }
        Ok(())
    }
}

impl SqsQueueStore {
    async fn ack_leased(&self, queue: Queue, ids: &[i64]) -> StoreResult<()> {
        let mut receipts = Vec::with_capacity(ids.len());
        let mut missing = None;
        for &id in ids {
            match self.take_lease(queue, id) {
                Ok(lease) => {
                    if queue == Queue::Notifications {
                        self.dynamo
                            .set_status(id, MessageState::Sent, lease.attempts)
                            .await?;
                    }
                    receipts.push((id, lease.receipt));
                }
                Err(e) => missing = Some(e),
            }
        }
        self.delete(queue, &receipts).await?;
        missing.map_or(Ok(()), Err)
    }

    async fn retry_leased(&self, queue: Queue, id: i64, delay: Duration) -> StoreResult<()> {
        let lease = self.take_lease(queue, id)?;
        if queue == Queue::Notifications {
            self.dynamo
                .set_status(id, MessageState::Queued, lease.attempts)
                .await?;
        }
        self.client
            .change_message_visibility()
            .queue_url(self.queues.url(queue))
            .receipt_handle(&lease.receipt)
            .visibility_timeout(visibility_secs(delay))
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "ChangeMessageVisibility", e))?;
        Ok(())
    }

    async fn dead_letter_leased(&self, queue: Queue, id: i64) -> StoreResult<()> {
        let lease = self.take_lease(queue, id)?;
        self.client
            .send_message()
            .queue_url(&self.queues.dlq)
            .message_body(&lease.payload)
            .message_attributes(ID_ATTRIBUTE, id_attribute(id))
            .message_attributes(
                QUEUE_ATTRIBUTE,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(queue.as_str())
                    .build()
                    .expect("data type is set"),
            )
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "SendMessage to the DLQ", e))?;
        if queue == Queue::Notifications {
            self.dynamo
                .set_status(id, MessageState::Failed, lease.attempts)
                .await?;
        }
        self.client
            .delete_message()
            .queue_url(self.queues.url(queue))
            .receipt_handle(&lease.receipt)
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "DeleteMessage", e))?;
        Ok(())
    }
}

/// A new message on `url`: for notifications, its status record first (which also makes
/// the id unique), then `SendMessage`; if the send fails, the status record is removed.
async fn send_new(
    client: &Client,
    url: &str,
    dynamo: &Dynamo,
    queue: Queue,
    payload: &str,
) -> StoreResult<i64> {
    let mut id = new_id();
    if queue == Queue::Notifications {
        let mut tries = 0;
        while !dynamo.create_status(id).await? {
            tries += 1;
            if tries > 5 {
                return Err(other("no free notification id after 6 tries"));
            }
            id = new_id();
        }
    }
    let sent = client
        .send_message()
        .queue_url(url)
        .message_body(payload)
        .message_attributes(ID_ATTRIBUTE, id_attribute(id))
        .send()
        .await;
    if let Err(e) = sent {
        if queue == Queue::Notifications {
            // Not queued: no 202, and no status record claiming otherwise.
            let _ = dynamo.delete_status(id).await;
        }
        return Err(store_error(BACKEND, "SendMessage", e));
    }
    Ok(id)
}

#[async_trait]
impl QueueStore for SqsQueueStore {
    /// The status record and the message go together, on a task of its own: a caller that
    /// gives up between them would leave a status record of a message never sent.
    async fn enqueue(&self, queue: Queue, payload: &str) -> StoreResult<i64> {
        let client = self.client.clone();
        let url = self.queues.url(queue).to_owned();
        let dynamo = self.dynamo.clone();
        let writes = self.writes.clone();
        let payload = payload.to_owned();
        let task = tokio::spawn(async move {
            let sent = send_new(&client, &url, &dynamo, queue, &payload).await;
            writes.record(WriteOp::Enqueue, &sent);
            sent
        });
        task.await
            .unwrap_or_else(|e| Err(StoreError::Lost(e.to_string())))
    }

    async fn claim(
        &self,
        queue: Queue,
        max: u32,
        lease: Duration,
    ) -> StoreResult<Vec<LeasedMessage>> {
        let mut batch = Vec::new();
        let mut oldest_sent: Option<i64> = None;
        while (batch.len() as u32) < max.max(1) {
            let want = (max.max(1) - batch.len() as u32).min(10) as i32;
            let out = self
                .client
                .receive_message()
                .queue_url(self.queues.url(queue))
                .max_number_of_messages(want)
                .wait_time_seconds(if batch.is_empty() {
                    RECEIVE_WAIT_SECS
                } else {
                    0
                })
                .visibility_timeout(visibility_secs(lease).max(1))
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| store_error(BACKEND, "ReceiveMessage", e))?;
            let messages = out.messages();
            for m in messages {
                let (Some(receipt), Some(body)) = (m.receipt_handle(), m.body()) else {
                    continue;
                };
                let system = m.attributes();
                let system_attr = |k: MessageSystemAttributeName| {
                    system
                        .and_then(|a| a.get(&k))
                        .and_then(|v| v.parse::<i64>().ok())
                };
                let attempts = system_attr(MessageSystemAttributeName::ApproximateReceiveCount)
                    .unwrap_or(1)
                    .clamp(1, i64::from(u32::MAX)) as u32;
                if let Some(sent) = system_attr(MessageSystemAttributeName::SentTimestamp) {
                    oldest_sent = Some(oldest_sent.map_or(sent, |o| o.min(sent)));
                }
                let id = m
                    .message_attributes()
                    .and_then(|a| a.get(ID_ATTRIBUTE))
                    .and_then(|v| v.string_value())
                    .and_then(|v| v.parse::<i64>().ok())
                    // A message sent by someone else: a stable id from SQS's own.
                    .unwrap_or_else(|| {
                        let mut h: i64 = 0;
                        for b in m.message_id().unwrap_or("").bytes() {
                            h = h.wrapping_mul(31).wrapping_add(i64::from(b));
                        }
                        h.rem_euclid(1 << 53)
                    });
                self.leases.lock().expect("leases lock").insert(
                    (queue, id),
                    Lease {
                        receipt: receipt.to_owned(),
                        attempts,
                        payload: body.to_owned(),
                    },
                );
                batch.push(LeasedMessage {
                    id,
                    payload: body.to_owned(),
                    attempts,
                });
            }
            if (messages.len() as i32) < want {
                break;
            }
        }
        let mut heads = self.heads.lock().expect("heads lock");
        let head = heads.entry(queue).or_default();
        head.oldest_sent_ms = oldest_sent;
        Ok(batch)
    }

    async fn ack(&self, queue: Queue, ids: &[i64]) -> StoreResult<()> {
        let done = self.ack_leased(queue, ids).await;
        self.writes.record(WriteOp::Ack, &done);
        done
    }

    async fn retry_later(&self, queue: Queue, id: i64, delay: Duration) -> StoreResult<()> {
        let done = self.retry_leased(queue, id, delay).await;
        self.writes.record(WriteOp::RetryLater, &done);
        done
    }

    async fn dead_letter(&self, queue: Queue, id: i64) -> StoreResult<()> {
        let done = self.dead_letter_leased(queue, id).await;
        self.writes.record(WriteOp::DeadLetter, &done);
        done
    }

    async fn status(&self, queue: Queue, id: i64) -> StoreResult<Option<MessageStatus>> {
        match queue {
            Queue::Notifications => self.dynamo.status(id).await,
            // MultiVAC items have no status record.
            Queue::Multivac => Ok(None),
        }
    }

    async fn stats(&self, queue: Queue) -> StoreResult<QueueStats> {
        let depth = self.approximate_counts(self.queues.url(queue)).await?;
        // One DLQ serves both queues (as in deploy/terraform); only the e-mail worker
        // dead-letters, so its count is reported under notifications.
        let dead_lettered = match queue {
            Queue::Notifications => self.approximate_counts(&self.queues.dlq).await?,
            Queue::Multivac => 0,
        };
        let now = now_ms();
        let mut heads = self.heads.lock().expect("heads lock");
        let head = heads.entry(queue).or_default();
        let oldest_age = if depth == 0 {
            *head = Head::default();
            Duration::ZERO
        } else {
            let since = *head.nonempty_since_ms.get_or_insert(now);
            let sent = head.oldest_sent_ms.unwrap_or(since);
            Duration::from_millis(now.saturating_sub(sent).max(0) as u64)
        };
        Ok(QueueStats {
            depth,
            oldest_age: Some(oldest_age),
            dead_lettered,
        })
    }
}

#[async_trait]
impl BackendHealth for SqsQueueStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> StoreResult<()> {
        for url in [
            &self.queues.notifications,
            &self.queues.multivac,
            &self.queues.dlq,
        ] {
            self.client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| store_error(BACKEND, "GetQueueAttributes", e))?;
        }
        Ok(())
    }

    /// Not while a kind of write (enqueue, ack, retry, dead-letter) keeps failing.
    async fn writes_ok(&self) -> Result<(), String> {
        self.writes.trouble().map_or(Ok(()), Err)
    }

    fn pools(&self) -> Vec<PoolSnapshot> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_rounds_up_to_seconds_within_limits() {
        assert_eq!(visibility_secs(Duration::ZERO), 0);
        assert_eq!(visibility_secs(Duration::from_millis(20)), 1);
        assert_eq!(visibility_secs(Duration::from_millis(2000)), 2);
        assert_eq!(visibility_secs(Duration::from_secs(100_000)), 43_200);
    }
}
