//! The MySQL password from AWS Secrets Manager (RDS-managed JSON) and from SSM Parameter
//! Store (SecureString), for a real MariaDB user created for the test and dropped after.

use peakload_stack::Stack;
use peakload_stack_aws::secrets::{resolve_mysql_url, PasswordSource};
use peakload_test_support::mysql::{admin_sql, admin_sql_blocking, mysql_base_url, FreshDatabase};
use peakload_test_support::{require_moto, unique};
use reqwest::StatusCode;

use crate::common::{serve, test_config, DbGuard};

#[derive(Clone, Copy)]
enum Store {
    SecretsManager,
    Parameter,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_password_from_secrets_manager() {
    password_from(Store::SecretsManager).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_password_from_ssm_parameter() {
    password_from(Store::Parameter).await;
}

/// Drops the test's MariaDB user when the test ends, passing or not.
struct UserGuard(String);

impl Drop for UserGuard {
    fn drop(&mut self) {
        admin_sql_blocking(
            ["%", "localhost", "127.0.0.1"]
                .iter()
                .map(|host| format!("DROP USER IF EXISTS '{}'@'{host}'", self.0))
                .collect(),
        );
    }
}

async fn password_from(store: Store) {
    let moto = require_moto();
    let tag = unique("");
    let user = format!("pl_{tag}");
    // Characters that must be percent-encoded in a URL.
    let password = format!("S3cr:t@/{tag}?#");
    let database = FreshDatabase::create("stackaws").await;
    let mut statements = vec![];
    for host in ["%", "localhost", "127.0.0.1"] {
        statements.push(format!(
            "CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'"
        ));
        statements.push(format!(
            "GRANT ALL PRIVILEGES ON `{}`.* TO '{user}'@'{host}'",
            database.name()
        ));
    }
    admin_sql(&statements).await;
    let _user = UserGuard(user.clone());

    let mut url = url::Url::parse(&mysql_base_url()).unwrap();
    url.set_password(None).unwrap();
    url.set_path(&format!("/{}", database.name()));
    url.set_username(&user).unwrap();
    let without_password: String = url.clone().into();
    let db = DbGuard::MariaDb(database);
    let config = peakload_stack_aws::sdk_config(Some(&moto)).await;
    let source = match store {
        Store::SecretsManager => {
            // RDS-managed form; the URL has no user, so the secret's is used.
            url.set_username("").unwrap();
            let name = format!("peakload/test/{tag}");
            aws_sdk_secretsmanager::Client::new(&config)
                .create_secret()
                .name(&name)
                .secret_string(
                    serde_json::json!({"username": user, "password": password}).to_string(),
                )
                .send()
                .await
                .expect("CreateSecret in moto");
            PasswordSource::SecretsManager(name)
        }
        Store::Parameter => {
            let name = format!("/peakload/test/{tag}/mysql-password");
            aws_sdk_ssm::Client::new(&config)
                .put_parameter()
                .name(&name)
                .value(&password)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .expect("PutParameter in moto");
            PasswordSource::Parameter(name)
        }
    };
    let bare: String = url.into();

    // Without the password the database refuses the stack.
    let refused = Stack::open(test_config(peakload_stack::BackendConfig::MySql {
        url: without_password,
    }))
    .await;
    assert!(
        refused.is_err(),
        "MariaDB accepted a user without its password"
    );

    let resolved = resolve_mysql_url(&bare, &source, Some(&moto))
        .await
        .expect("the password is read");
    assert!(!format!("{resolved:?}").contains(&password));
    let stack = Stack::open(test_config(peakload_stack::BackendConfig::MySql {
        url: resolved.expose().to_owned(),
    }))
    .await
    .expect("the stack opens MariaDB with the stored password");
    let s = serve(stack, Default::default(), db).await;
    assert_eq!(s.get("/readyz", None).await.status, StatusCode::OK);
    s.login(2).await;
    s.stop().await;

    // A missing secret is a clear start-up error, not a panic.
    let missing = match store {
        Store::SecretsManager => PasswordSource::SecretsManager(format!("missing/{tag}")),
        Store::Parameter => PasswordSource::Parameter(format!("/missing/{tag}")),
    };
    let err = resolve_mysql_url(&bare, &missing, Some(&moto))
        .await
        .expect_err("a missing secret fails");
    assert!(err.to_string().contains("missing"), "{err}");
}
