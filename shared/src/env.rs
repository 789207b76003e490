//! The leaf every other module builds on: reading settings from the environment ([`Env`]), the error of
//! a missing or malformed one ([`ConfigError`]), and how an error's causes are written into a log line
//! ([`chain`]). It imports nothing of this crate.
//!
//! The one idiom for configuration: every settings type has `from_env(&Env) -> Result<Self, ConfigError>`
//! next to what it configures, and each function composes its `Config` from them once per cold start.

use std::fmt;
use std::time::Duration;

/// A missing or malformed setting, named so that the cold start's error says which one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("invalid environment variable {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A source of settings: the process's environment with Secrets Manager's values merged in
/// (`platform::secrets::Environment::vars`), or a test's map.
pub struct Env<'a>(Box<Lookup<'a>>);

type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl<'a> Env<'a> {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self(Box::new(lookup))
    }

    /// A variable's value; unset and empty are the same.
    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn parsed<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: format!("{raw:?}: {e}"),
            }),
        }
    }

    pub fn millis(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.parsed(name, default).map(Duration::from_millis)
    }
}

/// Formats an error with its whole `source()` chain, for logs.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_unset_and_a_malformed_number_names_the_variable() {
        let env = Env::new(|name| match name {
            "EMPTY" => Some(String::new()),
            "N" => Some("five".to_owned()),
            _ => None,
        });
        assert_eq!(env.optional("EMPTY"), None);
        assert_eq!(
            env.required("MISSING").unwrap_err().to_string(),
            "missing environment variable MISSING"
        );
        let err = env.parsed::<u64>("N", 1).unwrap_err().to_string();
        assert!(err.contains("N") && err.contains("five"), "{err}");
        assert_eq!(env.millis("UNSET", 7).unwrap(), Duration::from_millis(7));
    }
}
