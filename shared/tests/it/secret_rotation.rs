//! Reading a secret again after a rotation (against the local Secrets Manager, moto): rate-limited,
//! and concurrent callers share one read.

use aws_sdk_secretsmanager::Client;
use shared::platform::secrets::{environment_from, Reread, RotatingSecret};
use std::collections::HashMap;
use std::time::Duration;
use test_support::secrets_manager;

/// A secret holding "first", read as `TOKEN` at cold start, then changed to "second".
async fn rotated_secret(sm: &Client, min_interval: Duration) -> RotatingSecret {
    let arn = secrets_manager::create(sm, "first").await;
    let vars = HashMap::from([("TOKEN_SECRET_ARN".to_owned(), arn.clone())]);
    let env = environment_from(vars, &["TOKEN"], sm)
        .await
        .expect("cold start read");
    assert_eq!(env.get("TOKEN").as_deref(), Some("first"));
    secrets_manager::put(sm, &arn, "second").await;
    env.rotating("TOKEN", min_interval)
        .expect("read from Secrets Manager")
}

#[tokio::test]
async fn concurrent_failures_share_one_read_and_the_next_waits_for_the_interval() {
    let sm = secrets_manager::client().await;
    let secret = rotated_secret(&sm, Duration::from_secs(60)).await;

    let reads = futures::future::join_all((0..8).map(|_| secret.reread(0))).await;
    let second = Reread::Changed {
        value: "second".into(),
        version: 1,
    };
    for read in reads {
        assert_eq!(read.expect("re-read"), second);
    }
    assert_eq!(secret.fetches(), 1);

    // The new value failing too (the version applied is 1) asks nothing of Secrets Manager for a minute.
    assert_eq!(secret.reread(1).await.expect("re-read"), Reread::RateLimited);
    // A user still on the cold start's value gets the new one without a fetch.
    assert_eq!(secret.reread(0).await.expect("re-read"), second);
    assert_eq!(secret.fetches(), 1);
}

#[tokio::test]
async fn an_unchanged_secret_is_reported_unchanged_once_the_interval_passed() {
    let sm = secrets_manager::client().await;
    let secret = rotated_secret(&sm, Duration::ZERO).await;
    assert!(matches!(
        secret.reread(0).await,
        Ok(Reread::Changed { version: 1, .. })
    ));
    assert_eq!(secret.reread(1).await.expect("re-read"), Reread::Unchanged);
    assert_eq!(secret.fetches(), 2);
}
