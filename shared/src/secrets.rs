//! Secrets at cold start: a variable such as `DATABASE_URL` is read from the environment when set
//! (local runs, tests), otherwise from the Secrets Manager secret whose ARN is in `DATABASE_URL_SECRET_ARN`
//! (deployments: the function's configuration then holds no secret, only where to find it). Values are
//! read once per environment and kept for its life.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;

/// A cold start waits at most this long for Secrets Manager.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret {arn} (for {name}): {reason}")]
    Fetch {
        name: &'static str,
        arn: String,
        reason: String,
    },
    #[error("secret {arn} (for {name}) has no string value")]
    NotAString { name: &'static str, arn: String },
}

/// The process environment, with each of `names` that is unset but has a `<name>_SECRET_ARN` filled in
/// from Secrets Manager. Use it as the lookup of a function's `Config::from_lookup`.
pub async fn environment(names: &[&'static str]) -> Result<HashMap<String, String>, SecretError> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    let mut client = None;
    for &name in names {
        if env.get(name).is_some_and(|v| !v.is_empty()) {
            continue;
        }
        let Some(arn) = env
            .get(&format!("{name}_SECRET_ARN"))
            .filter(|a| !a.is_empty())
            .cloned()
        else {
            continue;
        };
        if client.is_none() {
            client = Some(Client::new(&aws_config::load_from_env().await));
        }
        if let Some(client) = &client {
            let value = fetch(client, name, &arn).await?;
            env.insert(name.to_owned(), value);
        }
    }
    Ok(env)
}

async fn fetch(client: &Client, name: &'static str, arn: &str) -> Result<String, SecretError> {
    let fetch_error = |reason: String| SecretError::Fetch {
        name,
        arn: arn.to_owned(),
        reason,
    };
    let request = client.get_secret_value().secret_id(arn).send();
    let output = tokio::time::timeout(FETCH_TIMEOUT, request)
        .await
        .map_err(|_| fetch_error(format!("no answer within {FETCH_TIMEOUT:?}")))?
        .map_err(|e| fetch_error(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string()))?;
    output
        .secret_string()
        .map(|s| s.trim().to_owned())
        .ok_or(SecretError::NotAString {
            name,
            arn: arn.to_owned(),
        })
}
