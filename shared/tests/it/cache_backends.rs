//! The cache client against every kind of Redis it must work with: standalone, a 3-node cluster (as
//! ElastiCache Serverless speaks it) and TLS with a CA of the test's own.

use std::time::Duration;

use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::store::keys::Keys;
use shared::store::RedisConfig;
use shared::store::{Entry, RedisCache as Cache};
use test_support::{self as testing, OwnRedis, TestEnv};
use uuid::Uuid;

fn backends() -> Vec<(&'static str, RedisConfig)> {
    vec![
        ("standalone", TestEnv::new().redis()),
        ("cluster", testing::cluster_config()),
        ("tls", testing::tls_config()),
    ]
}

fn prefix() -> String {
    format!("test:{}:", Uuid::new_v4().simple())
}

#[tokio::test]
async fn values_round_trip_with_their_ttl_on_every_backend() {
    for (name, config) in backends() {
        let cache = Cache::new(&config).unwrap();
        let key = format!("{}k", prefix());
        cache
            .set(&key, b"value", Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(
            cache.get(&key).await.unwrap().as_deref(),
            Some(&b"value"[..]),
            "{name}"
        );
        let ttl = cache.expires_in(&key).await.unwrap().unwrap();
        assert!(ttl > Duration::from_secs(55), "{name}: {ttl:?}");
        assert_eq!(
            cache.unlink(std::slice::from_ref(&key)).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(cache.get(&key).await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn namespace_clear_reaches_every_node_and_spares_other_keys() {
    for (name, config) in backends() {
        let cache = Cache::new(&config).unwrap();
        let keys = Keys::new(prefix());
        let bundles: Vec<String> = (0..1_500)
            .map(|_| keys.bundle(BundleId::new(Scope::Tenant(Uuid::new_v4()), true)))
            .collect();
        let others: Vec<String> = (0..50)
            .map(|i| {
                format!(
                    "{}other:{i}",
                    keys.bundle_scan_pattern().trim_end_matches("dashboard:bundle:*")
                )
            })
            .collect();
        for key in bundles.iter().chain(&others) {
            cache.set(key, b"x", Duration::from_secs(60)).await.unwrap();
        }
        if name == "cluster" {
            for port in [7000, 7001, 7002] {
                assert!(
                    node_holds_some(port, &keys.bundle_scan_pattern()).await,
                    "node {port} holds none"
                );
            }
        }
        assert_eq!(
            cache.unlink_matching(&keys.bundle_scan_pattern()).await.unwrap(),
            1_500,
            "{name}"
        );
        for key in bundles.iter().step_by(97) {
            assert_eq!(cache.get(key).await.unwrap(), None, "{name}: {key}");
        }
        assert_eq!(
            cache.unlink(&others).await.unwrap(),
            50,
            "{name}: other keys survived"
        );
    }
}

/// A recompute lease and the bundle key it guards (one cluster slot).
fn lease_and_bundle() -> (String, String) {
    let keys = Keys::new(prefix());
    let id = BundleId::new(Scope::Tenant(Uuid::new_v4()), true);
    (keys.recompute_lease(id), keys.bundle(id))
}

fn entry(data_version: i64) -> Entry {
    Entry {
        generated_at_ms: 1,
        validated_at_ms: 1,
        data_version,
        day_ends_at_ms: 4,
        json: "{}".to_owned(),
    }
}

#[tokio::test]
async fn a_lease_is_exclusive_and_released_only_by_its_holder() {
    for (name, config) in backends() {
        let cache = Cache::new(&config).unwrap();
        let (lease, bundle) = lease_and_bundle();
        let take = |lifetime| {
            let (cache, lease, bundle) = (&cache, &lease, &bundle);
            async move {
                cache
                    .acquire_lease_reading(lease, lifetime, bundle)
                    .await
                    .unwrap()
                    .0
            }
        };
        let token = take(Duration::from_secs(5)).await.expect(name);
        assert_eq!(take(Duration::from_secs(5)).await, None, "{name}");
        cache.release_lease(&lease, "someone-else").await.unwrap();
        assert_eq!(take(Duration::from_secs(5)).await, None, "{name}");
        cache.release_lease(&lease, &token).await.unwrap();
        assert!(take(Duration::from_millis(50)).await.is_some(), "{name}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(take(Duration::from_secs(1)).await.is_some(), "{name}: expired");
        cache.unlink(&[lease]).await.unwrap();
    }
}

#[tokio::test]
async fn the_lease_reads_the_bundle_and_the_holders_store_releases_it() {
    for (name, config) in backends() {
        let cache = Cache::new(&config).unwrap();
        let (lease, bundle) = lease_and_bundle();
        cache
            .set(&bundle, &entry(3).encode(), Duration::from_secs(60))
            .await
            .unwrap();

        let (token, found) = cache
            .acquire_lease_reading(&lease, Duration::from_secs(5), &bundle)
            .await
            .unwrap();
        let token = token.expect(name);
        // Another caller's token neither stores over a newer entry's lease nor releases it.
        let older = cache
            .store_entry_releasing(
                &bundle,
                &entry(2),
                Duration::from_secs(60),
                &lease,
                "someone-else",
            )
            .await
            .unwrap();
        let still_held = cache
            .acquire_lease_reading(&lease, Duration::from_secs(5), &bundle)
            .await
            .unwrap()
            .0;
        let stored = cache
            .store_entry_releasing(&bundle, &entry(4), Duration::from_secs(60), &lease, &token)
            .await
            .unwrap();
        let (after, now) = cache
            .acquire_lease_reading(&lease, Duration::from_secs(5), &bundle)
            .await
            .unwrap();

        assert_eq!(
            found.as_deref().and_then(Entry::decode).map(|e| e.data_version),
            Some(3),
            "{name}"
        );
        assert!(!older, "{name}: an older entry replaced a newer one");
        assert_eq!(still_held, None, "{name}: released by another's token");
        assert!(stored, "{name}");
        assert!(after.is_some(), "{name}: the holder's store released the lease");
        assert_eq!(
            now.as_deref().and_then(Entry::decode).map(|e| e.data_version),
            Some(4),
            "{name}"
        );
        cache.unlink(&[lease, bundle]).await.unwrap();
    }
}

#[tokio::test]
async fn revalidation_marks_only_the_entry_it_compared_and_keeps_the_expiry() {
    for (name, config) in backends() {
        let cache = Cache::new(&config).unwrap();
        let key = format!("{}entry", prefix());
        let entry = Entry {
            generated_at_ms: 1,
            validated_at_ms: 2,
            data_version: 3,
            day_ends_at_ms: 4,
            json: "{}".to_owned(),
        };
        cache
            .set(&key, &entry.encode(), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(cache.mark_validated(&key, 3, 77).await.unwrap(), "{name}");
        let stored = Entry::decode(&cache.get(&key).await.unwrap().unwrap()).unwrap();
        assert_eq!((stored.validated_at_ms, stored.data_version), (77, 3), "{name}");
        assert!(
            cache.expires_in(&key).await.unwrap().is_some(),
            "{name}: expiry kept"
        );

        // Another caller stored an entry of another version meanwhile: it is not marked.
        assert!(!cache.mark_validated(&key, 4, 88).await.unwrap(), "{name}");
        let stored = Entry::decode(&cache.get(&key).await.unwrap().unwrap()).unwrap();
        assert_eq!(stored.validated_at_ms, 77, "{name}");

        cache.unlink(std::slice::from_ref(&key)).await.unwrap();
        // An entry that expired before its revalidation stamp is written must stay gone.
        assert!(!cache.mark_validated(&key, 3, 78).await.unwrap(), "{name}");
        assert_eq!(
            cache.get(&key).await.unwrap(),
            None,
            "{name}: the revalidation recreated an expired key"
        );
    }
}

#[tokio::test]
async fn tls_server_with_an_unknown_ca_is_refused() {
    let mut config = testing::tls_config();
    config.ca_file = None;
    let cache = Cache::new(&config).unwrap();
    assert!(
        cache.ping().await.is_err(),
        "a certificate from an unknown CA must not be accepted"
    );
}

#[tokio::test]
async fn a_connection_killed_by_the_server_is_replaced_without_an_error() {
    let redis = OwnRedis::start();
    let cache = Cache::new(&RedisConfig {
        url: redis.url().into(),
        ..TestEnv::new().redis()
    })
    .unwrap();
    cache.set("k", b"1", Duration::from_secs(60)).await.unwrap();
    redis.kill_clients().await;
    assert_eq!(
        cache.get("k").await.unwrap().as_deref(),
        Some(&b"1"[..]),
        "first request after the kill"
    );
    redis.kill_clients().await;
    cache.set("k", b"2", Duration::from_secs(60)).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"2"[..]));
}

/// Whether the cluster node on `port` itself holds a key matching `pattern`.
async fn node_holds_some(port: u16, pattern: &str) -> bool {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut node = client.get_multiplexed_async_connection().await.unwrap();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut node)
            .await
            .unwrap();
        if !keys.is_empty() {
            return true;
        }
        if next == 0 {
            return false;
        }
        cursor = next;
    }
}

#[tokio::test]
async fn a_read_is_recorded_beside_its_get_and_histories_are_read_back_on_every_backend() {
    for (name, config) in backends() {
        let cache = Cache::new(&config).unwrap();
        let keys = Keys::new(prefix());
        let bundle = keys.bundle(BundleId::new(Scope::Global, true));
        cache
            .set(&bundle, b"bytes", Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        // Hashes of several tenants, so that a cluster spreads them over its nodes.
        let tenants: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
        let hashes: Vec<String> = tenants.iter().map(|t| keys.tenant_reads(*t)).collect();
        for (i, hash) in hashes.iter().enumerate() {
            let field = (1000 + i).to_string();
            let recording = shared::store::Recording {
                hash,
                fields: &[&field],
                keep_for: Duration::from_secs(600),
            };
            let got = cache
                .get_recording(&bundle, &recording)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(got, (Some(b"bytes".to_vec()), true), "{name}");
        }
        let fields = cache
            .hash_fields(&hashes)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let expected: Vec<Vec<String>> = (0..8).map(|i| vec![(1000 + i).to_string()]).collect();
        assert_eq!(fields, expected, "{name}");
        cache.hash_delete(&hashes[0], &fields[0]).await.unwrap();
        assert_eq!(
            cache.hash_fields(&hashes[..1]).await.unwrap(),
            [Vec::<String>::new()],
            "{name}"
        );
        let mut all = hashes.clone();
        all.push(bundle);
        cache.unlink(&all).await.unwrap();
    }
}

#[tokio::test]
async fn a_store_never_replaces_a_newer_entry_on_every_backend() {
    let entry = |data_version, generated_at_ms, json: &str| Entry {
        generated_at_ms,
        validated_at_ms: generated_at_ms,
        data_version,
        day_ends_at_ms: i64::MAX,
        json: json.to_owned(),
    };
    let ttl = Duration::from_secs(60);
    for (name, config) in backends() {
        let cache = Cache::new(&config).unwrap();
        let key = format!("{}entry", prefix());

        assert!(
            cache
                .store_entry(&key, &entry(5, 1_000, "v5"), ttl)
                .await
                .unwrap(),
            "{name}: empty key"
        );
        assert!(
            !cache
                .store_entry(&key, &entry(4, 9_000, "v4 later"), ttl)
                .await
                .unwrap(),
            "{name}: an older version computed later"
        );
        assert!(
            !cache
                .store_entry(&key, &entry(5, 999, "v5 earlier"), ttl)
                .await
                .unwrap(),
            "{name}: the same version computed earlier"
        );
        assert_eq!(stored_json(&cache, &key).await, "v5", "{name}");

        // The same pair again (a retried store) and anything newer replace it; the expiry is set anew.
        assert!(
            cache
                .store_entry(&key, &entry(5, 1_000, "v5 again"), ttl)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            cache
                .store_entry(&key, &entry(5, 1_001, "v5 later"), ttl)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            cache.store_entry(&key, &entry(6, 0, "v6"), ttl).await.unwrap(),
            "{name}"
        );
        assert_eq!(stored_json(&cache, &key).await, "v6", "{name}");
        assert!(
            cache.expires_in(&key).await.unwrap().is_some(),
            "{name}: expiry set"
        );

        // Versions and times compare as whole signed 64-bit numbers, not as doubles or by one byte.
        assert!(
            cache
                .store_entry(&key, &entry(1 << 53, 0, "2^53"), ttl)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !cache
                .store_entry(&key, &entry((1 << 53) - 1, i64::MAX, "2^53 - 1"), ttl)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            cache
                .store_entry(&key, &entry((1 << 53) + 1, -1, "2^53 + 1"), ttl)
                .await
                .unwrap(),
            "{name}"
        );
        assert_eq!(stored_json(&cache, &key).await, "2^53 + 1", "{name}");
        assert!(
            cache
                .store_entry(&key, &entry(i64::MAX, 0, "max"), ttl)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !cache
                .store_entry(&key, &entry(i64::MAX, -1, "max, before 1970"), ttl)
                .await
                .unwrap(),
            "{name}: a negative time is less, not greater"
        );

        // Bytes of another format (an older deployment's) are replaced.
        cache.set(&key, b"DBC1 an older format", ttl).await.unwrap();
        assert!(
            cache.store_entry(&key, &entry(0, 0, "v0"), ttl).await.unwrap(),
            "{name}"
        );
        assert_eq!(stored_json(&cache, &key).await, "v0", "{name}");
        cache.unlink(std::slice::from_ref(&key)).await.unwrap();
    }
}

async fn stored_json(cache: &Cache, key: &str) -> String {
    Entry::decode(&cache.get(key).await.unwrap().unwrap())
        .unwrap()
        .json
}
