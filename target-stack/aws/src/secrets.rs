//! The MySQL password, from the environment, AWS Secrets Manager or SSM Parameter Store.
//!
//! A Secrets Manager secret string is either the password itself or RDS-managed JSON
//! `{"username": …, "password": …}`; an SSM parameter is a (Secure)String read with
//! decryption. The password replaces the one in the MySQL URL; a secret's username is used
//! only when the URL has none. Nothing here logs or formats a secret value: [`Secret`]'s
//! `Debug` is redacted.

use aws_config::SdkConfig;

use crate::error::{service_error, AwsError};

/// A value that must not be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where the MySQL password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A value given directly (`PEAKLOAD_STACK_MYSQL_PASSWORD`).
    Value(Secret),
    /// A Secrets Manager secret, by ARN or name.
    SecretsManager(String),
    /// An SSM parameter name.
    Parameter(String),
}

/// Credentials read from a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Secret,
}

/// A secret string: RDS-managed JSON with a `password` field, or the password itself.
pub fn parse_secret_string(text: &str) -> Credentials {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) {
        if let Some(serde_json::Value::String(password)) = map.get("password") {
            return Credentials {
                username: map
                    .get("username")
                    .and_then(|u| u.as_str())
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned),
                password: Secret::new(password.clone()),
            };
        }
    }
    Credentials {
        username: None,
        password: Secret::new(text.trim_end_matches(['\r', '\n'])),
    }
}

/// Reads the credentials from `source`; `endpoint` overrides the AWS endpoint.
pub async fn fetch(
    source: &PasswordSource,
    endpoint: Option<&str>,
) -> Result<Credentials, AwsError> {
    match source {
        PasswordSource::Value(password) => Ok(Credentials {
            username: None,
            password: password.clone(),
        }),
        PasswordSource::SecretsManager(id) => {
            let config = crate::sdk_config(endpoint).await;
            secrets_manager(&config, id).await
        }
        PasswordSource::Parameter(name) => {
            let config = crate::sdk_config(endpoint).await;
            parameter(&config, name).await
        }
    }
}

async fn secrets_manager(config: &SdkConfig, id: &str) -> Result<Credentials, AwsError> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| service_error("secretsmanager", &format!("GetSecretValue {id}"), e))?;
    let text = out.secret_string().ok_or_else(|| {
        AwsError::Config(format!(
            "secret {id} has no string value (binary secrets are not supported)"
        ))
    })?;
    Ok(parse_secret_string(text))
}

async fn parameter(config: &SdkConfig, name: &str) -> Result<Credentials, AwsError> {
    let client = aws_sdk_ssm::Client::new(config);
    let out = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| service_error("ssm", &format!("GetParameter {name}"), e))?;
    let value = out
        .parameter()
        .and_then(|p| p.value())
        .ok_or_else(|| AwsError::Config(format!("parameter {name} has no value")))?;
    Ok(Credentials {
        username: None,
        password: Secret::new(value),
    })
}

/// `url` with the password (percent-encoded) and, if the URL has none, the username.
pub fn mysql_url_with(url: &str, credentials: &Credentials) -> Result<Secret, AwsError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| AwsError::Config(format!("the MySQL URL does not parse: {e}")))?;
    if parsed.username().is_empty() {
        if let Some(user) = &credentials.username {
            parsed
                .set_username(user)
                .map_err(|()| AwsError::Config("the MySQL URL cannot take a username".into()))?;
        }
    }
    parsed
        .set_password(Some(credentials.password.expose()))
        .map_err(|()| AwsError::Config("the MySQL URL cannot take a password".into()))?;
    Ok(Secret::new(String::from(parsed)))
}

/// The MySQL URL with its password from `source`.
pub async fn resolve_mysql_url(
    url: &str,
    source: &PasswordSource,
    endpoint: Option<&str>,
) -> Result<Secret, AwsError> {
    let credentials = fetch(source, endpoint).await?;
    mysql_url_with(url, &credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_json_and_plain_strings() {
        let c = parse_secret_string(r#"{"username":"admin","password":"p@ss:w/rd"}"#);
        assert_eq!(c.username.as_deref(), Some("admin"));
        assert_eq!(c.password.expose(), "p@ss:w/rd");
        let c = parse_secret_string("plain secret\n");
        assert_eq!(c.username, None);
        assert_eq!(c.password.expose(), "plain secret");
        // JSON without a password is a plain password.
        assert_eq!(parse_secret_string("{}").password.expose(), "{}");
    }

    #[test]
    fn password_is_encoded_into_the_url_and_never_debug_printed() {
        let c = Credentials {
            username: Some("admin".into()),
            password: Secret::new("p@ss:w/rd"),
        };
        let url = mysql_url_with("mysql://db.example:3306/shop?ssl-mode=REQUIRED", &c).unwrap();
        assert_eq!(
            url.expose(),
            "mysql://admin:p%40ss%3Aw%2Frd@db.example:3306/shop?ssl-mode=REQUIRED"
        );
        let url = mysql_url_with("mysql://app:old@db:3306/shop", &c).unwrap();
        assert_eq!(url.expose(), "mysql://app:p%40ss%3Aw%2Frd@db:3306/shop");
        assert!(!format!("{url:?} {c:?}").contains("p@ss"));
    }
}
