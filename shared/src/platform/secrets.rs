//! Secrets at cold start: a variable such as `DATABASE_URL` is read from the environment when set
//! (local runs, tests), otherwise from the Secrets Manager secret whose ARN is in `DATABASE_URL_SECRET_ARN`
//! (deployments: the function's configuration then holds no secret, only where to find it). Values are
//! kept for the environment's life, and a secret is read again when the credential it holds stops
//! working (a rotation): see [`RotatingSecret`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;

use crate::env::Env;

/// A cold start, or a re-read after a rotation, waits at most this long for Secrets Manager.
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

/// The process environment with secrets filled in, and where each of them came from.
#[derive(Default)]
pub struct Environment {
    vars: HashMap<String, String>,
    sources: HashMap<&'static str, Source>,
}

/// A secret that was read from Secrets Manager.
#[derive(Clone)]
struct Source {
    client: Client,
    arn: String,
    value: String,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("variables", &self.vars.len())
            .field("from_secrets_manager", &self.sources.keys())
            .finish()
    }
}

impl Environment {
    /// The variables as settings are read (`Config::from_env`).
    pub fn vars(&self) -> Env<'_> {
        Env::new(|name| self.get(name))
    }

    /// A variable's value: the environment's own, or the secret read for it.
    pub fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    /// A handle to read `name`'s secret again, at most once per `min_interval`; `None` when `name` did
    /// not come from Secrets Manager (a plain variable wins and is never re-read).
    pub fn rotating(&self, name: &'static str, min_interval: Duration) -> Option<RotatingSecret> {
        let source = self.sources.get(name)?.clone();
        Some(RotatingSecret {
            inner: Arc::new(Rotating {
                client: source.client,
                name,
                arn: source.arn,
                min_interval,
                state: tokio::sync::Mutex::new(ReadState {
                    value: source.value,
                    version: 0,
                    last_fetch: None,
                }),
                fetches: AtomicU64::new(0),
            }),
        })
    }
}

/// The process environment, with each of `names` that is unset but has an ARN variable
/// ([`arn_variable`]) filled in from Secrets Manager. A function's `Config::from_env` reads it through [`Environment::vars`].
pub async fn environment(names: &[&'static str]) -> Result<Environment, SecretError> {
    let vars: HashMap<String, String> = std::env::vars().collect();
    if names.iter().all(|name| secret_arn(&vars, name).is_none()) {
        return Ok(Environment {
            vars,
            sources: HashMap::new(),
        });
    }
    let client = Client::new(&aws_config::load_from_env().await);
    environment_from(vars, names, &client).await
}

/// [`environment`] over given variables and client (tests).
pub async fn environment_from(
    mut vars: HashMap<String, String>,
    names: &[&'static str],
    client: &Client,
) -> Result<Environment, SecretError> {
    // Fetched at once: a cold start waits for one round trip to Secrets Manager, not one per secret.
    let wanted: Vec<(&'static str, String)> = names
        .iter()
        .filter_map(|&name| Some((name, secret_arn(&vars, name)?)))
        .collect();
    let values =
        futures::future::try_join_all(wanted.iter().map(|(name, arn)| fetch(client, name, arn))).await?;
    let mut sources = HashMap::new();
    for ((name, arn), value) in wanted.into_iter().zip(values) {
        vars.insert(name.to_owned(), value.clone());
        let client = client.clone();
        sources.insert(name, Source { client, arn, value });
    }
    Ok(Environment { vars, sources })
}

/// The variable that holds the ARN of `name`'s secret: `DATABASE_URL_SECRET_ARN`, and `JWT_SECRET_ARN`
/// (not `JWT_SECRET_SECRET_ARN`) for a name that already ends in `_SECRET`.
pub fn arn_variable(name: &str) -> String {
    if name.ends_with("_SECRET") {
        format!("{name}_ARN")
    } else {
        format!("{name}_SECRET_ARN")
    }
}

/// The ARN of `name`'s secret, unless `name` itself is set.
fn secret_arn(vars: &HashMap<String, String>, name: &str) -> Option<String> {
    if vars.get(name).is_some_and(|v| !v.is_empty()) {
        return None;
    }
    vars.get(&arn_variable(name)).filter(|a| !a.is_empty()).cloned()
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

/// A secret read at cold start that its user reads again when the credential stops working. Each value
/// has a version (0: the cold start's); a user remembers the version it applied and passes it to
/// [`RotatingSecret::reread`]. Cheap to clone: clones share the value and the rate limit.
#[derive(Clone)]
pub struct RotatingSecret {
    inner: Arc<Rotating>,
}

struct Rotating {
    client: Client,
    name: &'static str,
    arn: String,
    min_interval: Duration,
    /// Held across a fetch: concurrent callers wait for that one fetch instead of starting their own.
    state: tokio::sync::Mutex<ReadState>,
    fetches: AtomicU64,
}

struct ReadState {
    value: String,
    version: u64,
    last_fetch: Option<Instant>,
}

/// What [`RotatingSecret::reread`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reread {
    /// A value newer than the caller's: apply it and remember its version.
    Changed { value: String, version: u64 },
    /// Secrets Manager holds what the caller has: the credential fails for another reason.
    Unchanged,
    /// Read less than the minimum interval ago: nothing was asked of Secrets Manager.
    RateLimited,
}

impl std::fmt::Debug for RotatingSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingSecret")
            .field("name", &self.inner.name)
            .field("arn", &self.inner.arn)
            .field("min_interval", &self.inner.min_interval)
            .finish_non_exhaustive()
    }
}

impl RotatingSecret {
    /// The environment variable the secret is for.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// How many times the secret was read again (the cold start's read not included).
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The value newer than version `applied`: the one already held if another caller read it since,
    /// otherwise the secret is read again, unless that was done less than the minimum interval ago (a
    /// failed read counts too, so neither forged credentials nor an unreachable Secrets Manager make
    /// every request wait for a fetch). Concurrent callers share one fetch.
    pub async fn reread(&self, applied: u64) -> Result<Reread, SecretError> {
        let inner = Arc::clone(&self.inner);
        // In a task of its own: a caller that gives up (its request's deadline) does not cancel the
        // fetch, whose result is then there for the next caller.
        tokio::spawn(async move { inner.reread(applied).await })
            .await
            .map_err(|e| SecretError::Fetch {
                name: self.inner.name,
                arn: self.inner.arn.clone(),
                reason: format!("the re-read task ended early: {e}"),
            })?
    }
}

impl Rotating {
    async fn reread(&self, applied: u64) -> Result<Reread, SecretError> {
        let mut state = self.state.lock().await;
        if state.version != applied {
            return Ok(Reread::Changed {
                value: state.value.clone(),
                version: state.version,
            });
        }
        if state
            .last_fetch
            .is_some_and(|at| at.elapsed() < self.min_interval)
        {
            return Ok(Reread::RateLimited);
        }
        state.last_fetch = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let value = fetch(&self.client, self.name, &self.arn).await?;
        if value == state.value {
            return Ok(Reread::Unchanged);
        }
        state.value = value.clone();
        state.version += 1;
        tracing::info!(
            name = self.name,
            version = state.version,
            "secret changed in Secrets Manager"
        );
        Ok(Reread::Changed {
            value,
            version: state.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_variables_are_the_ones_the_template_sets() {
        assert_eq!(arn_variable("DATABASE_URL"), "DATABASE_URL_SECRET_ARN");
        assert_eq!(arn_variable("JWT_SECRET"), "JWT_SECRET_ARN");
    }
}
