//! The REST API's error shape, `{"error": {"code", "message", "fields"?}}`, and the one place
//! service errors become HTTP statuses.
use axum::{
    Json,
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use domain::service::ServiceError;
use serde::{Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    /// With 429: when trying again can succeed (sent as `Retry-After`, whole seconds rounded up).
    pub retry_after: Option<std::time::Duration>,
}

/// An error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `validation_failed`, `bad_request`, `rate_limited`, `internal`.
    pub code: String,
    /// For humans.
    pub message: String,
    /// Per-field messages of a `validation_failed` error.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            retry_after: None,
        }
    }
    /// 429: the caller's key is over its rate limit or quota.
    pub fn too_many_requests(
        message: impl Into<String>,
        retry_after: Option<std::time::Duration>,
    ) -> ApiError {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        e.retry_after = retry_after;
        e
    }
    /// 503: the key has limits and they cannot be checked now (`--redis-failure closed` while
    /// Redis is unavailable).
    pub fn limits_unavailable() -> ApiError {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "limits_unavailable",
            "This key's rate limit and quota cannot be checked right now; retry shortly.",
        );
        e.retry_after = Some(std::time::Duration::from_secs(1));
        e
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such resource, or it is not yours.",
        )
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Some fields are invalid.",
        );
        e.fields.insert(field.to_owned(), message.into());
        e
    }
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side; it has been logged.",
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::Forbidden(m) => ApiError::forbidden(m),
            ServiceError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ServiceError::Invalid(errors) => {
                let mut e = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    errors
                        .0
                        .iter()
                        .map(|(f, m)| format!("{f}: {m}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                e.fields = errors.0.into_iter().collect();
                e
            }
            ServiceError::Domain(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code.to_owned(),
                    message: self.message,
                    fields: self.fields,
                },
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"keyport\""),
            );
        }
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: never tell a client to come back too early.
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}

/// A JSON body whose rejections answer in the API's error shape: 400 for a body that is not
/// JSON, 422 for JSON of the wrong shape (a missing, unknown or mistyped field).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => {
                let detail = e.body_text();
                let detail = detail
                    .split_once(": ")
                    .map_or(detail.as_str(), |(_, rest)| rest)
                    .to_owned();
                let field = detail
                    .split_once(':')
                    .map(|(path, _)| path.trim().to_owned())
                    .filter(|p| !p.contains(' '))
                    .unwrap_or_else(|| "body".into());
                Err(ApiError::invalid(&field, detail))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::bad_request(
                "Send the body as JSON with Content-Type: application/json.",
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "The request body is too large.",
                ))
            }
            Err(e) => Err(ApiError::bad_request(format!(
                "The body is not valid JSON: {}",
                e.body_text()
            ))),
        }
    }
}

/// A path segment that must parse as `T`, a typed id such as `KeyId`: anything else is answered
/// 404 like an id no one has, without a query.
pub struct ApiPath<T>(pub T);

impl<T: std::str::FromStr + Send, S: Send + Sync> axum::extract::FromRequestParts<S>
    for ApiPath<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found())?;
        text.parse().map(ApiPath).map_err(|_| ApiError::not_found())
    }
}

/// An optional JSON body: empty means the defaults.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_object(body)
}

/// A JSON body that must be an object: serde would also read a struct from an array of its
/// fields in order (`[]` for a struct whose fields are all optional), which no client means.
pub fn json_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde_json::Value>(body).is_ok()
    {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::invalid("body", e.to_string())
        } else {
            ApiError::bad_request(format!("The body is not valid JSON: {e}"))
        }
    })
}
