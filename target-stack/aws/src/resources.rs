//! Creates the tables and queues the options name when they are missing — for the local
//! emulator and laptops (`--aws-create-resources`). In AWS, Terraform owns them
//! (`deploy/terraform`), with the same keys, TTL attribute and redrive policy as here.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::error::{service_error, AwsError};
use crate::{AwsOptions, Clients, DynamoTables, SqsQueues};

/// Creates what is missing; returns the options with the queues' URLs as SQS names them.
pub async fn ensure(
    clients: &Clients,
    options: &AwsOptions,
    max_receive_count: u32,
) -> Result<AwsOptions, AwsError> {
    let mut ensured = options.clone();
    if let Some(tables) = &options.dynamodb {
        ensure_tables(&clients.dynamodb, tables).await?;
    }
    if let Some(queues) = &options.sqs {
        ensured.sqs = Some(ensure_queues(&clients.sqs, queues, max_receive_count).await?);
    }
    Ok(ensured)
}

async fn ensure_tables(
    client: &aws_sdk_dynamodb::Client,
    tables: &DynamoTables,
) -> Result<(), AwsError> {
    let specs = [
        (&tables.carts, true, false),
        (&tables.sessions, false, true),
        (&tables.timestamps, true, false),
        (&tables.notifications, true, true),
    ];
    for (name, has_sort_key, ttl) in specs {
        let exists = match client.describe_table().table_name(name).send().await {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                false
            }
            Err(e) => return Err(service_error("dynamodb", "DescribeTable", e)),
        };
        if exists {
            continue;
        }
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("name and type are set")
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set")
        };
        let mut create = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash))
            .attribute_definitions(attribute("pk"));
        if has_sort_key {
            create = create
                .key_schema(key("sk", KeyType::Range))
                .attribute_definitions(attribute("sk"));
        }
        create
            .send()
            .await
            .map_err(|e| service_error("dynamodb", "CreateTable", e))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let out = client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(|e| service_error("dynamodb", "DescribeTable", e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(AwsError::Config(format!(
                    "table {name} is not active after 60 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if ttl {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name("expires_at")
                        .enabled(true)
                        .build()
                        .expect("name and flag are set"),
                )
                .send()
                .await
                .map_err(|e| service_error("dynamodb", "UpdateTimeToLive", e))?;
        }
        tracing::info!(table = name.as_str(), "created DynamoDB table");
    }
    Ok(())
}

fn queue_name(url: &str) -> Result<&str, AwsError> {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AwsError::Config(format!("no queue name in {url}")))
}

async fn queue_url(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<String, AwsError> {
    match client.get_queue_url().queue_name(name).send().await {
        Ok(out) => return Ok(out.queue_url().unwrap_or_default().to_owned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist()) => {}
        Err(e) => return Err(service_error("sqs", "GetQueueUrl", e)),
    }
    let mut create = client.create_queue().queue_name(name);
    for (k, v) in attributes {
        create = create.attributes(k.clone(), v);
    }
    let out = create
        .send()
        .await
        .map_err(|e| service_error("sqs", "CreateQueue", e))?;
    tracing::info!(queue = name, "created SQS queue");
    Ok(out.queue_url().unwrap_or_default().to_owned())
}

async fn ensure_queues(
    client: &aws_sdk_sqs::Client,
    queues: &SqsQueues,
    max_receive_count: u32,
) -> Result<SqsQueues, AwsError> {
    let dlq = queue_url(client, queue_name(&queues.dlq)?, &[]).await?;
    let arn = client
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| service_error("sqs", "GetQueueAttributes", e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| AwsError::Config("the DLQ has no ARN".into()))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": arn,
        "maxReceiveCount": max_receive_count.max(1),
    })
    .to_string();
    let attributes = [(QueueAttributeName::RedrivePolicy, redrive)];
    Ok(SqsQueues {
        notifications: queue_url(client, queue_name(&queues.notifications)?, &attributes).await?,
        multivac: queue_url(client, queue_name(&queues.multivac)?, &attributes).await?,
        dlq,
    })
}
