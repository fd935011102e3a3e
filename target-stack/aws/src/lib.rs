//! The AWS backends of the reference stack, in a crate of their own so that the AWS SDK is
//! compiled once and changes elsewhere do not rebuild it.
//!
//! - [`dynamo`]: sessions, carts, `/app` timestamps and the notifications' status records in
//!   DynamoDB. Users, the catalogue, stock, orders, deliveries and MultiVAC's learnt state
//!   stay in the SQL database of the stack's [`peakload_stack::Config`] (SQLite or MySQL):
//!   checkout reads the DynamoDB cart under a conditional lock and places the order with
//!   [`peakload_stack::store::sql::SqlStore::place_order`], so stock still never oversells.
//! - [`sqs`]: the notification and MultiVAC queues in SQS with a dead-letter queue; leases
//!   are visibility timeouts, attempts are `ApproximateReceiveCount`.
//! - [`secrets`]: the MySQL password from the environment, Secrets Manager or SSM.
//! - [`resources`]: creates missing tables and queues (for emulators and local runs).
//! - [`cloudwatch`]: publishes the stack's metrics to CloudWatch and its logs to
//!   CloudWatch Logs, for peakload's diagnosis to read back.
//!
//! [`open`] builds a [`peakload_stack::Stack`] from a stack config plus an [`AwsOptions`]:
//! it opens the SQL store, replaces the stores the options cover, and hands the mix to
//! [`peakload_stack::Stack::with_stores`].

pub mod cloudwatch;
pub mod dynamo;
pub mod error;
pub mod resources;
pub mod secrets;
pub mod sqs;

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use peakload_stack::store::gate::DbGate;
use peakload_stack::store::Stores;
use peakload_stack::{Config, Faults, Stack, StackError};

pub use dynamo::DynamoTables;
pub use error::AwsError;
pub use sqs::SqsQueues;

/// Where the AWS APIs are: the standard chain (region, credentials, `AWS_ENDPOINT_URL…`)
/// unless an endpoint is given here.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// Every service (e.g. a local emulator).
    pub all: Option<String>,
    pub dynamodb: Option<String>,
    pub sqs: Option<String>,
}

/// Which AWS backends to use. `None` keeps the SQL store for that part.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub endpoints: Endpoints,
    pub dynamodb: Option<DynamoTables>,
    pub sqs: Option<SqsQueues>,
    /// Create missing tables and queues at start (emulators, local runs); off in production,
    /// where Terraform owns them.
    pub create_missing: bool,
}

impl AwsOptions {
    pub fn is_empty(&self) -> bool {
        self.dynamodb.is_none() && self.sqs.is_none()
    }

    /// A short description for logs: which backends, never an endpoint's credentials.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.dynamodb.is_some() {
            parts.push("dynamodb");
        }
        if self.sqs.is_some() {
            parts.push("sqs");
        }
        parts.join("+")
    }
}

/// The shared SDK configuration: region and credentials from the standard chain; `endpoint`
/// overrides every service's URL when given.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The clients of the services the stores use, each at its endpoint.
#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl Clients {
    pub async fn new(endpoints: &Endpoints) -> Clients {
        let shared = sdk_config(endpoints.all.as_deref()).await;
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&shared);
        if let Some(url) = &endpoints.dynamodb {
            dynamodb = dynamodb.endpoint_url(url);
        }
        let mut sqs = aws_sdk_sqs::config::Builder::from(&shared);
        if let Some(url) = &endpoints.sqs {
            sqs = sqs.endpoint_url(url);
        }
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
        }
    }
}

/// Opens a stack whose stores are SQL except for what `aws` covers.
pub async fn open(config: Config, aws: &AwsOptions) -> Result<Stack, AwsError> {
    if aws.sqs.is_some() && aws.dynamodb.is_none() {
        return Err(AwsError::Config(
            "the SQS queues need the DynamoDB tables too (notification status lives there): \
             set --dynamodb-table"
                .into(),
        ));
    }
    let faults = Faults::new(&config.faults).map_err(StackError::from)?;
    let gate = Arc::new(DbGate::new(faults.clone()));
    let sql = peakload_stack::open_sql(&config, gate.clone()).await?;
    let mut stores = Stores::from_sql(sql.clone());
    if !aws.is_empty() {
        let clients = Clients::new(&aws.endpoints).await;
        let ensured;
        let aws = if aws.create_missing {
            ensured = resources::ensure(&clients, aws, config.worker.max_attempts).await?;
            &ensured
        } else {
            aws
        };
        if let Some(tables) = &aws.dynamodb {
            let dynamo = Arc::new(dynamo::Dynamo::new(
                clients.dynamodb.clone(),
                tables.clone(),
                gate.clone(),
            ));
            stores.shop = Arc::new(dynamo::DynamoShop::new(dynamo.clone(), sql.clone()));
            stores.timestamps = dynamo.clone();
            if let Some(queues) = &aws.sqs {
                let sqs = Arc::new(sqs::SqsQueueStore::new(
                    clients.sqs.clone(),
                    queues.clone(),
                    dynamo.clone(),
                ));
                sqs.check_redrive(config.worker.max_attempts).await;
                stores.queues = sqs.clone();
                stores.health.push(sqs);
            }
            stores.health.push(dynamo);
        }
    }
    Ok(Stack::with_stores(config, stores, faults, gate).await?)
}
