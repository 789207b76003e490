//! Secrets read at cold start from Secrets Manager (the local endpoint, moto, that `make test-rust`
//! starts), and plain variables winning over them for local runs.

use std::collections::HashMap;

use shared::platform::secrets::environment_from;
use test_support::secrets_manager;

#[tokio::test]
async fn secrets_come_from_secrets_manager_unless_the_variable_is_set() {
    let sm = secrets_manager::client().await;
    let database_arn = secrets_manager::create(&sm, "postgres://app:s3cret@db.internal:5432/crm\n").await;
    let jwt_arn = secrets_manager::create(&sm, "from-secrets-manager-0123456789abcdef").await;
    let vars = |database_arn: &str| {
        HashMap::from([
            ("DATABASE_URL_SECRET_ARN".to_owned(), database_arn.to_owned()),
            ("JWT_SECRET".to_owned(), "plain-variable-wins".to_owned()),
            ("JWT_SECRET_ARN".to_owned(), jwt_arn.clone()),
        ])
    };
    let names = &["DATABASE_URL", "JWT_SECRET"];

    let env = environment_from(vars(&database_arn), names, &sm).await.unwrap();
    assert_eq!(
        env.get("DATABASE_URL").as_deref(),
        Some("postgres://app:s3cret@db.internal:5432/crm")
    );
    assert_eq!(env.get("JWT_SECRET").as_deref(), Some("plain-variable-wins"));

    let missing = format!("{database_arn}-missing");
    let err = environment_from(vars(&missing), names, &sm)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("DATABASE_URL") && !err.contains("s3cret"), "{err}");
}
