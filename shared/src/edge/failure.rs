//! What a caller sees when a request fails: a status, a stable snake_case code and a sentence
//! for people, as `{"error": {"code", "message"}}`. Every error that reaches a caller becomes
//! one here, in one place, so operations can use `?`.

use serde_json::{Value, json};

use crate::adapters::secrets::SecretError;
use crate::domain::identity::IdentityError;
use crate::domain::ports::{ProfileError, TrackingError, Undelivered};
use crate::edge::auth::Refusal;
use crate::edge::fields::FieldError;
use crate::edge::invocation::{BodyError, InvocationError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Failure {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl ToString) -> Self {
        Self::new(400, code, message.to_string())
    }

    /// The function cannot work as configured; what is wrong is in its logs, not here.
    pub fn configuration(function: &str) -> Self {
        Self::new(
            500,
            "configuration_error",
            format!("{function} is not configured correctly; its logs say why"),
        )
    }

    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl From<InvocationError> for Failure {
    fn from(error: InvocationError) -> Self {
        match error {
            InvocationError::BodyTooLarge { .. } => {
                Self::new(413, "body_too_large", error.to_string())
            }
            _ => Self::bad_request("invalid_request", error),
        }
    }
}

impl From<BodyError> for Failure {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::ObjectTooLarge { .. } => Self::new(413, "body_too_large", error.to_string()),
            error => Self::bad_request("invalid_body", error),
        }
    }
}

impl From<FieldError> for Failure {
    fn from(error: FieldError) -> Self {
        Self::bad_request("invalid_field", error)
    }
}

impl From<IdentityError> for Failure {
    fn from(error: IdentityError) -> Self {
        Self::bad_request("invalid_identifier", error)
    }
}

/// A secret that could not be fetched is worth a retry by the caller (503: Studio takes its
/// `failed` branch, Event Streams redelivers); one that was fetched but cannot be used needs
/// its owner (500, like any configuration error).
impl From<SecretError> for Failure {
    fn from(error: SecretError) -> Self {
        match error {
            SecretError::Unavailable { name, .. } => Self::new(
                503,
                "secrets_unavailable",
                format!("{name} could not be read yet; try again"),
            ),
            SecretError::Unusable { name, .. } => Self::new(
                500,
                "configuration_error",
                format!("{name} is not configured correctly; the function's logs say why"),
            ),
        }
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unauthorized => {
                Self::new(401, "unauthorized", "the request is not authenticated")
            }
            Refusal::SecretUnavailable(error) => error.into(),
        }
    }
}

/// profile-lookup's answers when Segment gave none: Studio takes its `failed` branch.
impl From<ProfileError> for Failure {
    fn from(error: ProfileError) -> Self {
        let code = match &error {
            ProfileError::Token(secret) => return secret.clone().into(),
            ProfileError::Timeout(_) => {
                return Self::new(504, "upstream_timeout", error.to_string());
            }
            ProfileError::RateLimited { .. } | ProfileError::Paced { .. } => "rate_limited",
            ProfileError::Unauthorized(_) => "upstream_auth",
            ProfileError::Status(_)
            | ProfileError::Network(_)
            | ProfileError::InvalidResponse(_)
            | ProfileError::Client(_) => "upstream_error",
        };
        Self::new(502, code, error.to_string())
    }
}

/// wrap-up-ingest's answer when Segment did not accept everything: a 5xx, so the sender
/// redelivers (deduplication by messageId makes that safe).
impl From<TrackingError> for Failure {
    fn from(error: TrackingError) -> Self {
        match error {
            TrackingError::WriteKey(secret) => secret.into(),
            error => Self::new(
                502,
                "delivery_failed",
                format!("{error}; nothing was acknowledged, redeliver the event"),
            ),
        }
    }
}

impl From<Undelivered> for Failure {
    fn from(undelivered: Undelivered) -> Self {
        undelivered.error.into()
    }
}
