//! The local Secrets Manager (moto, which `make test-rust` starts on `TEST_AWS_ENDPOINT_URL`): a client
//! and the two calls tests make of it.

use aws_sdk_secretsmanager::config::Credentials;
use aws_sdk_secretsmanager::Client;
use uuid::Uuid;

/// A client of the local endpoint, with test credentials, built without touching the process's
/// environment (tests run in parallel in one binary).
pub async fn client() -> Client {
    let endpoint = std::env::var("TEST_AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5001".into());
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    Client::new(&config)
}

/// Creates a secret with a unique name holding `value`; returns its ARN.
pub async fn create(client: &Client, value: &str) -> String {
    client
        .create_secret()
        .name(format!("test-{}", Uuid::new_v4().simple()))
        .secret_string(value)
        .send()
        .await
        .expect("create secret")
        .arn()
        .expect("arn")
        .to_owned()
}

/// Stores a new version of the secret `arn`: what a rotation does.
pub async fn put(client: &Client, arn: &str, value: &str) {
    client
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value)
        .send()
        .await
        .expect("put secret value");
}
