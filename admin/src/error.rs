//! The admin's error type and its one mapping to HTTP: `{"error": {"code", "message", "problems"?}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cleave_core::Problems;
use serde_json::json;

pub type Result<T, E = AdminError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 400: the request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or wrong API token.
    #[error("missing or unknown bearer token (Authorization: Bearer <a token from CLEAVE_ADMIN_TOKENS or CLEAVE_ADMIN_API_TOKEN>)")]
    Unauthorized,
    /// 403: the token is valid but its role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such entity.
    #[error("{0}")]
    NotFound(String),
    /// 409: the change conflicts with the current state (lifecycle, uniqueness).
    #[error("{0}")]
    Conflict(String),
    /// 409: the publish would move already-enrolled units between variants; the plan says
    /// which experiments and how many units. Confirm, or rotate the salt (a new phase).
    #[error("publishing would move already-enrolled units between variants in {}; review the plan, then publish with confirm, or give those experiments a new salt", .0.needs_confirmation.join(", "))]
    Unconfirmed(Box<cleave_core::plan::Plan>),
    /// 422: the definition is invalid; every problem is listed.
    #[error("invalid definition: {0}")]
    Invalid(Problems),
    /// 502: a sink refused the upload; the pointer was left where it was.
    #[error("{0}")]
    Upload(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl AdminError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::Unconfirmed(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Upload(_) => StatusCode::BAD_GATEWAY,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unconfirmed(_) => "confirmation_required",
            Self::Invalid(_) => "invalid_definition",
            Self::Upload(_) => "upload_failed",
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    /// Process exit code for the CLI: distinct per class so scripts can branch on it.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::BadRequest(_) | Self::Unauthorized | Self::Forbidden(_) => 2,
            Self::NotFound(_) => 3,
            Self::Conflict(_) | Self::Unconfirmed(_) => 4,
            Self::Invalid(_) => 5,
            Self::Upload(_) => 6,
            Self::Database(_) | Self::Internal(_) => 1,
        }
    }

    /// Maps a unique-constraint violation to a 409 with `message`.
    pub fn on_unique(err: sqlx::Error, message: impl Into<String>) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(message.into()),
            _ => Self::Database(err),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            // Internals are logged, not returned.
            Self::Database(_) | Self::Internal(_) => {
                tracing::error!(error = %self, "request failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut error = json!({"code": self.code(), "message": message});
        if let Self::Invalid(problems) = &self {
            error["problems"] = json!(problems);
        }
        if let Self::Unconfirmed(plan) = &self {
            error["plan"] = json!(plan);
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}
