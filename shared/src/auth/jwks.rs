//! The IdP's public keys: fetched (through OIDC discovery when only the issuer is known), parsed into
//! verifying keys, cached per environment, and re-fetched only when a token names an unknown `kid`
//! (rate-limited) or the keys grew old. A failed fetch keeps the keys already held.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use lambda_http::http::{header, Request, StatusCode, Uri};
use serde::Deserialize;

use super::config::{discovery_url, parse_key_url, JwksSource};
use super::AuthError;
use crate::env::chain;

/// A JWKS or discovery document larger than this is not one.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// Without keys, a failing IdP is retried at most this often (capped by the re-fetch interval).
const NO_KEYS_RETRY: Duration = Duration::from_secs(5);

/// One public key of the set, usable for signatures.
pub(crate) struct VerifyingKey {
    kid: Option<String>,
    /// The key's own `alg`, when it states one.
    alg: Option<Algorithm>,
    kind: KeyKind,
    pub(crate) key: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// Whether a key of this type can verify `alg` (RFC 7518 section 3.1, RFC 8037).
    fn verifies(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Self::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Self::P256 => alg == ES256,
            Self::P384 => alg == ES384,
            Self::Ed25519 => alg == EdDSA,
        }
    }
}

impl VerifyingKey {
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let common = &jwk.common;
        if common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return None;
        }
        if let Some(ops) = &common.key_operations {
            if !ops.contains(&KeyOperations::Verify) {
                return None;
            }
        }
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyKind::Rsa,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => KeyKind::P256,
                EllipticCurve::P384 => KeyKind::P384,
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => KeyKind::Ed25519,
            // Symmetric (`oct`) keys in a public document, and everything else, are never used.
            _ => return None,
        };
        let alg = match common.key_algorithm {
            None => None,
            // A stated `alg` this crate cannot use (RSA-OAEP, ...) makes the key unusable, not "any".
            Some(alg) => Some(Algorithm::try_from(alg).ok()?),
        };
        if alg.is_some_and(|alg| !kind.verifies(alg)) {
            return None;
        }
        Some(Self {
            kid: common.key_id.clone(),
            alg,
            kind,
            key: DecodingKey::from_jwk(jwk).ok()?,
        })
    }

    /// The key's `kty`/`crv` and, when stated, its `alg` must agree with the token's `alg`.
    fn accepts(&self, alg: Algorithm) -> bool {
        self.kind.verifies(alg) && self.alg.is_none_or(|own| own == alg)
    }
}

/// The parsed key set.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// Parses a JWKS document. Keys that cannot verify signatures (encryption keys, `oct`, unknown
    /// types or curves, malformed entries) are skipped, so one odd entry does not disable the rest.
    pub(crate) fn parse(document: &[u8]) -> Result<Self, FetchError> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let doc: Document = serde_json::from_slice(document).map_err(|_| FetchError::NotJwks)?;
        let keys = doc
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter_map(|jwk| VerifyingKey::from_jwk(&jwk))
            .collect();
        Ok(Self { keys })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn kids(&self) -> Vec<&str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref()).collect()
    }

    /// The key for a token's `kid` and `alg`. A token without `kid` is accepted only when the set holds
    /// exactly one key.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerifyingKey, AuthError> {
        let key = match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
        .ok_or(AuthError::UnknownKey)?;
        if key.accepts(alg) {
            Ok(key)
        } else {
            Err(AuthError::Algorithm)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("request failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("reading the body failed (or it is over {MAX_DOCUMENT_BYTES} bytes)")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("answered HTTP {0}")]
    Status(StatusCode),
    #[error("TLS setup failed")]
    Tls(#[source] rustls::Error),
    #[error("the document is not a JWKS")]
    NotJwks,
    #[error("the JWKS holds no usable signing key")]
    NoKeys,
    #[error("the discovery document is malformed or names another issuer")]
    Discovery,
    #[error("jwks_uri is not an https URL")]
    KeyUrl,
}

/// Fetches documents over https (or loopback http), bounded in size, never following redirects.
async fn get(uri: &Uri) -> Result<Bytes, FetchError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(provider)
        .map_err(FetchError::Tls)?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let request = Request::get(uri.clone())
        .header(header::ACCEPT, "application/json")
        .body(Empty::new())
        .map_err(|_| FetchError::KeyUrl)?;
    let response = client.request(request).await.map_err(FetchError::Request)?;
    if response.status() != StatusCode::OK {
        return Err(FetchError::Status(response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
        .collect()
        .await
        .map_err(FetchError::Body)?;
    Ok(body.to_bytes())
}

/// `jwks_uri` of the issuer's discovery document, which must name the same issuer (OIDC Discovery 4.3).
async fn discover(issuer: &str) -> Result<Uri, FetchError> {
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let url = parse_key_url("JWT_ISSUER", &discovery_url(issuer)).map_err(|_| FetchError::Discovery)?;
    let doc: Discovery = serde_json::from_slice(&get(&url).await?).map_err(|_| FetchError::Discovery)?;
    if doc.issuer != issuer {
        return Err(FetchError::Discovery);
    }
    parse_key_url("jwks_uri", &doc.jwks_uri).map_err(|_| FetchError::KeyUrl)
}

/// What the cache holds between requests.
#[derive(Default)]
struct Held {
    keys: Arc<KeySet>,
    /// When `keys` were fetched; `None` before the first success.
    fetched_at: Option<Instant>,
    /// When a fetch was last tried, successful or not: the rate limit.
    attempted_at: Option<Instant>,
    /// The resolved `jwks_uri` once discovery succeeded.
    jwks_uri: Option<Uri>,
}

/// The per-environment key cache.
pub(crate) struct KeyCache {
    source: JwksSource,
    fetch_timeout: Duration,
    refetch_interval: Duration,
    max_key_age: Duration,
    held: Mutex<Held>,
    /// One fetch at a time: concurrent callers wait for it instead of fetching too.
    fetching: tokio::sync::Mutex<()>,
}

/// Why keys were (re)fetched, for the rate limit and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    NoKeys,
    UnknownKid,
    Stale,
}

impl KeyCache {
    pub(crate) fn new(
        source: JwksSource,
        fetch_timeout: Duration,
        refetch_interval: Duration,
        max_key_age: Duration,
    ) -> Self {
        Self {
            source,
            fetch_timeout,
            refetch_interval,
            max_key_age,
            held: Mutex::new(Held::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> (Arc<KeySet>, Option<Instant>, Option<Instant>) {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        (held.keys.clone(), held.fetched_at, held.attempted_at)
    }

    /// The current key set for a token with `kid`, fetching first when there are no keys, when `kid`
    /// is unknown, or when the keys are older than `max_key_age`, each subject to the rate limit.
    /// `Err(KeysUnavailable)` only when no key was ever obtained.
    pub(crate) async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<KeySet>, AuthError> {
        let (keys, fetched_at, attempted_at) = self.snapshot();
        let reason = if fetched_at.is_none() {
            Some(Reason::NoKeys)
        } else if kid.is_some_and(|kid| !keys.kids().contains(&kid)) {
            Some(Reason::UnknownKid)
        } else if fetched_at.is_some_and(|at| at.elapsed() >= self.max_key_age) {
            Some(Reason::Stale)
        } else {
            None
        };
        let Some(reason) = reason else {
            return Ok(keys);
        };
        let wait = match reason {
            Reason::NoKeys => NO_KEYS_RETRY.min(self.refetch_interval),
            Reason::UnknownKid | Reason::Stale => self.refetch_interval,
        };
        if attempted_at.is_none_or(|at| at.elapsed() >= wait) {
            let _one = self.fetching.lock().await;
            // Another caller may have fetched while this one waited.
            if self.snapshot().2 == attempted_at {
                self.refresh(reason).await;
            }
        }
        let (keys, fetched_at, _) = self.snapshot();
        match fetched_at {
            Some(_) => Ok(keys),
            None => Err(AuthError::KeysUnavailable),
        }
    }

    async fn refresh(&self, reason: Reason) {
        let started = Instant::now();
        let result = tokio::time::timeout(self.fetch_timeout, self.fetch())
            .await
            .unwrap_or(Err(FetchError::Timeout(self.fetch_timeout)));
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.attempted_at = Some(Instant::now());
        match result {
            Ok((uri, keys)) => {
                tracing::info!(
                    ?reason,
                    url = %uri,
                    kids = ?keys.kids(),
                    duration_ms = started.elapsed().as_millis() as u64,
                    "fetched the IdP's signing keys"
                );
                held.keys = Arc::new(keys);
                held.fetched_at = held.attempted_at;
                held.jwks_uri = Some(uri);
            }
            Err(e) => tracing::warn!(
                ?reason,
                source = ?self.source,
                keeping = held.keys.keys.len(),
                error = %chain(&e),
                "fetching the IdP's signing keys failed"
            ),
        }
    }

    async fn fetch(&self) -> Result<(Uri, KeySet), FetchError> {
        let known = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .jwks_uri
            .clone();
        let uri = match (&self.source, known) {
            (JwksSource::Url(uri), _) => uri.clone(),
            (JwksSource::Discovery { .. }, Some(uri)) => uri,
            (JwksSource::Discovery { issuer }, None) => discover(issuer).await?,
        };
        let keys = KeySet::parse(&get(&uri).await?)?;
        if keys.is_empty() {
            return Err(FetchError::NoKeys);
        }
        Ok((uri, keys))
    }
}
