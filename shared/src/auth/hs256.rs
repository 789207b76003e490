//! The HS256 secrets: `JWT_SECRET` and `JWT_SECRET_PREVIOUS` as configured, and, when `JWT_SECRET` came
//! from Secrets Manager, the new value after a rotation (read again when a token's signature fails,
//! rate-limited), with the value it replaced still accepted for an overlap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use secrecy::{ExposeSecret, SecretString};

use super::config::MIN_JWT_SECRET_BYTES;
use crate::env::chain;
use crate::platform::secrets::{Reread, RotatingSecret};

/// A token whose signature fails reads `JWT_SECRET`'s secret again at most this often, so forged
/// tokens cannot hammer Secrets Manager.
pub const SECRET_REREAD_INTERVAL: Duration = Duration::from_secs(60);

/// After a rotation, tokens signed with the replaced secret stay valid this long (what
/// `JWT_SECRET_PREVIOUS` does for a redeploy): about one access token's life.
pub const REPLACED_SECRET_OVERLAP: Duration = Duration::from_secs(3600);

pub(super) struct Secrets {
    keys: RwLock<Keys>,
    rotation: Option<Rotation>,
}

struct Keys {
    /// `JWT_SECRET` (or what a rotation made of it), then `JWT_SECRET_PREVIOUS`.
    current: Vec<DecodingKey>,
    /// The `JWT_SECRET` a rotation replaced, and until when it is accepted.
    replaced: Option<(DecodingKey, Instant)>,
}

struct Rotation {
    secret: RotatingSecret,
    /// The secret's version `current[0]` holds.
    applied: AtomicU64,
}

impl Secrets {
    pub(super) fn new(configured: &[SecretString], rotating: Option<RotatingSecret>) -> Self {
        let current = configured
            .iter()
            // An empty secret is no key at all (jsonwebtoken refuses it); configuration never passes one.
            .filter_map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes()).ok())
            .collect::<Vec<_>>();
        // Without a configured secret HS256 is never accepted, so there is nothing to rotate.
        let rotation = rotating.filter(|_| !current.is_empty()).map(|secret| Rotation {
            secret,
            applied: AtomicU64::new(0),
        });
        Self {
            keys: RwLock::new(Keys {
                current,
                replaced: None,
            }),
            rotation,
        }
    }

    /// The first result of `verify` with each accepted secret.
    pub(super) fn find_map<T>(&self, verify: impl Fn(&DecodingKey) -> Option<T>) -> Option<T> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let replaced = keys
            .replaced
            .as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(key, _)| key);
        keys.current.iter().chain(replaced).find_map(verify)
    }

    /// After a signature failed with every secret: whether `JWT_SECRET` changed in Secrets Manager (read
    /// at most once per [`SECRET_REREAD_INTERVAL`]), in which case the new value is now accepted.
    pub(super) async fn renew(&self) -> bool {
        let Some(rotation) = &self.rotation else {
            return false;
        };
        let applied = rotation.applied.load(Ordering::Acquire);
        let (value, version) = match rotation.secret.reread(applied).await {
            Ok(Reread::Changed { value, version }) => (value, version),
            Ok(_) => return false,
            Err(e) => {
                tracing::error!(error = %chain(&e), "re-reading JWT_SECRET failed");
                return false;
            }
        };
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        // Another caller may have applied it meanwhile.
        if rotation.applied.load(Ordering::Acquire) >= version {
            return true;
        }
        rotation.applied.store(version, Ordering::Release);
        if value.len() < MIN_JWT_SECRET_BYTES {
            tracing::error!(
                "JWT_SECRET in Secrets Manager is shorter than {MIN_JWT_SECRET_BYTES} bytes; keeping the old one"
            );
            return false;
        }
        let Ok(new) = DecodingKey::from_secret(value.as_bytes()) else {
            return false;
        };
        if let Some(old) = keys.current.first_mut() {
            let old = std::mem::replace(old, new);
            keys.replaced = Some((old, Instant::now() + REPLACED_SECRET_OVERLAP));
        }
        tracing::info!(version, "JWT_SECRET renewed from Secrets Manager");
        true
    }
}
