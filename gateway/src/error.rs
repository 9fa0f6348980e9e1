//! Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with the HTTP
//! status a client library maps to its own exception (404 unknown model, 422 bad input...).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// One error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, when one is.
    pub param: Option<String>,
    /// Machine-readable code (`model_not_found`, `invalid_value`, ...).
    pub code: &'static str,
    /// The on-chain task the error is about (a committed failure), sent as `x-deepnode-task-id`
    /// so the caller can follow its refund.
    pub task_id: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            code,
            task_id: None,
        }
    }

    /// 422: a field of the request is missing or wrong.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.to_string()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", message)
        }
    }

    /// 404: no model by that name.
    pub fn unknown_model(model: &str) -> Self {
        Self {
            param: Some("model".into()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!(
                    "the model `{model}` does not exist on this network (GET /v1/models lists them)"
                ),
            )
        }
    }

    /// 404: the model is delisted and takes no task.
    pub fn delisted(model: &str) -> Self {
        Self {
            param: Some("model".into()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!("the model `{model}` is delisted and takes no task"),
            )
        }
    }

    /// 404: no task by that id.
    pub fn unknown_task(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "task_not_found",
            format!("no task {id}"),
        )
    }

    /// 402: the gateway's wallet cannot pay.
    pub fn payment(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYMENT_REQUIRED, "insufficient_funds", message)
    }

    /// 503: nobody can serve that model now.
    pub fn no_worker(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "no_worker", message)
    }

    /// 504: no answer before the deadline.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
    }

    /// 502: the worker answered with a failure of its own (the fee is refunded).
    pub fn worker_failed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "worker_failed", message)
    }

    /// 500: the gateway itself failed (RPC, chain).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// The OpenAI `type` of this status.
    pub fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => "invalid_request_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::PAYMENT_REQUIRED => "insufficient_quota",
            StatusCode::UNAUTHORIZED => "authentication_error",
            _ => "api_error",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind(),
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(v) = self
            .task_id
            .as_deref()
            .and_then(|t| axum::http::HeaderValue::from_str(t).ok())
        {
            r.headers_mut().insert("x-deepnode-task-id", v);
        }
        r
    }
}

/// A body axum could not take as JSON (syntax, wrong type, missing field, unknown field) as a
/// 422 naming the problem, instead of axum's plain-text rejection.
pub fn from_json_rejection(r: axum::extract::rejection::JsonRejection) -> ApiError {
    use axum::extract::rejection::JsonRejection as J;
    match r {
        J::MissingJsonContentType(_) => ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ..ApiError::invalid(
                "body",
                "send the body as JSON (Content-Type: application/json)",
            )
        },
        J::BytesRejection(e) => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            ..ApiError::invalid("body", format!("the body could not be read: {e}"))
        },
        other => {
            let text = other.body_text();
            let field = field_of(&text).unwrap_or("body").to_string();
            ApiError::invalid(&field, text)
        }
    }
}

/// The field a serde error message names (`unknown field `foo``, `missing field `model``).
fn field_of(text: &str) -> Option<&str> {
    for marker in ["unknown field `", "missing field `"] {
        if let Some(i) = text.find(marker) {
            let rest = &text[i + marker.len()..];
            return rest.split('`').next();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_openai_shape() {
        let e = ApiError::invalid("max_tokens", "must be at least 1");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let b = e.body();
        assert_eq!(b["error"]["param"], "max_tokens");
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert_eq!(b["error"]["code"], "invalid_value");
        let e = ApiError::unknown_model("gpt-4");
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert!(e.message.contains("gpt-4"));
        assert_eq!(e.body()["error"]["param"], "model");
    }

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            field_of("Failed to deserialize the JSON body into the target type: unknown field `tmperature`, expected one of ..."),
            Some("tmperature")
        );
        assert_eq!(field_of("missing field `model` at line 1"), Some("model"));
        assert_eq!(field_of("expected value at line 1 column 1"), None);
    }
}
