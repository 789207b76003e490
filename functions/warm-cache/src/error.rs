//! Why an invocation failed, and whether Lambda's retry can help: the error's type (`errorType` in
//! Lambda's response, the dead-letter record and the log) says which.

use lambda_runtime::Diagnostic;
use shared::env::chain;
use uuid::Uuid;

use crate::input::InputError;

#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    /// The event is not one this function understands: every retry fails the same way, so after
    /// Lambda's retries it lands in the dead-letter queue for a person to read.
    #[error("rejected event: {0}")]
    Rejected(#[from] InputError),
    /// Postgres could not be asked to start, resume or compact: a retry may find it back.
    #[error("Postgres unavailable: {}", chain(.0))]
    DatabaseUnavailable(#[source] sqlx::Error),
    /// The run started but warmed nothing (Postgres or Redis down for every tenant): retried.
    #[error("warm run {run_id} warmed nothing: {errors}")]
    NothingWarmed { run_id: Uuid, errors: String },
    #[error("the summary could not be serialized")]
    Serialize(#[from] serde_json::Error),
}

impl WarmError {
    /// Whether Lambda's retry of the same event can succeed.
    pub fn retryable(&self) -> bool {
        !matches!(self, Self::Rejected(_) | Self::Serialize(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Rejected(_) => "RejectedEvent",
            Self::DatabaseUnavailable(_) => "DatabaseUnavailable",
            Self::NothingWarmed { .. } => "NothingWarmed",
            Self::Serialize(_) => "SummaryNotSerializable",
        }
    }
}

impl From<WarmError> for Diagnostic {
    fn from(error: WarmError) -> Diagnostic {
        let retry = if error.retryable() {
            "Retryable"
        } else {
            "NotRetryable"
        };
        Diagnostic {
            error_type: format!("{retry}.{}", error.kind()),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_type_says_whether_a_retry_can_help() {
        let rejected = Diagnostic::from(WarmError::Rejected(InputError::UnknownShape));
        assert_eq!(rejected.error_type, "NotRetryable.RejectedEvent");
        let down = Diagnostic::from(WarmError::DatabaseUnavailable(sqlx::Error::PoolTimedOut));
        assert_eq!(down.error_type, "Retryable.DatabaseUnavailable");
        assert!(
            down.error_message.contains("Postgres unavailable"),
            "{}",
            down.error_message
        );
    }
}
