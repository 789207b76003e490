//! Secrets read at cold start from Secrets Manager (a local endpoint, moto, that `make test-rust`
//! starts), and plain variables winning over them for local runs.

use aws_sdk_secretsmanager::Client;
use shared::platform::secrets::environment;
use uuid::Uuid;

/// One test in this binary, so that setting process variables races with nothing.
#[tokio::test]
async fn secrets_come_from_secrets_manager_unless_the_variable_is_set() {
    let endpoint = std::env::var("TEST_AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5001".into());
    for (name, value) in [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ] {
        std::env::set_var(name, value);
    }
    let client = Client::new(&aws_config::load_from_env().await);
    let create = |name: String, value: &'static str| {
        let client = client.clone();
        async move {
            client
                .create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .expect("create secret")
                .arn()
                .expect("arn")
                .to_owned()
        }
    };
    let run = Uuid::new_v4().simple().to_string();
    let database_arn = create(
        format!("db-{run}"),
        "postgres://app:s3cret@db.internal:5432/crm\n",
    )
    .await;
    let jwt_arn = create(format!("jwt-{run}"), "from-secrets-manager-0123456789abcdef").await;

    let (db, jwt) = (format!("TEST_DB_{run}"), format!("TEST_JWT_{run}"));
    std::env::set_var(format!("{db}_SECRET_ARN"), &database_arn);
    std::env::set_var(&jwt, "plain-variable-wins");
    std::env::set_var(format!("{jwt}_SECRET_ARN"), &jwt_arn);
    let names: &'static [&'static str] = Box::leak(Box::new([
        &*Box::leak(db.clone().into_boxed_str()),
        &*Box::leak(jwt.clone().into_boxed_str()),
    ]));
    let env = environment(names).await.unwrap();
    assert_eq!(
        env.get(&db).as_deref(),
        Some("postgres://app:s3cret@db.internal:5432/crm")
    );
    assert_eq!(env.get(&jwt).as_deref(), Some("plain-variable-wins"));

    std::env::set_var(format!("{db}_SECRET_ARN"), format!("{database_arn}-missing"));
    let err = environment(names).await.unwrap_err().to_string();
    assert!(err.contains(&db) && !err.contains("s3cret"), "{err}");
}
