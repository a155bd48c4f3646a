//! Errors at the HTTP boundary. Each maps to a status code and a JSON body
//! `{"error": code, "message": text}`; internals are logged, never shown.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use charla_protocol::api::ApiError;
use charla_protocol::{MAX_NAME_CHARS, MAX_ROOM_CHARS, MAX_TEXT_CHARS};

/// Seconds a client refused for capacity or shutdown is asked to wait.
pub(crate) const RETRY_AFTER_SECS: u32 = 5;

/// Why an HTTP request was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("no such room: room names are 1 to {MAX_ROOM_CHARS} letters, digits, '-' or '_'")]
    InvalidRoom,
    #[error("{0}")]
    BadRequest(String),
    #[error("names are 1 to {MAX_NAME_CHARS} characters without control or invisible characters")]
    InvalidName,
    #[error("messages are 1 to {MAX_TEXT_CHARS} characters")]
    InvalidText,
    #[error("a valid `Authorization: Bearer <token>` header is required")]
    Unauthorized,
    #[error("posting is disabled: the server has no CHARLA_API_TOKEN")]
    PostingDisabled,
    #[error("this origin may not open a WebSocket here")]
    ForbiddenOrigin,
    #[error("the server is at its connection limit; retry later")]
    TooManyConnections,
    #[error("too many connections from your address; close some or retry later")]
    TooManyConnectionsFromAddress,
    #[error("the server is shutting down; retry later")]
    ShuttingDown,
    #[error("the server holds as many rooms as it may; retry later")]
    TooManyRooms,
    #[error("the message could not be stored and was not sent; retry later")]
    StoreUnavailable,
    #[error("history cannot be read right now; retry later")]
    HistoryUnavailable,
    #[error("no such message in this room")]
    UnknownMessage,
    #[error("no ban in force has this id")]
    UnknownBan,
    #[error(
        "the ban or kick cannot be stored right now (the database or Redis failed); retry later"
    )]
    BansUnavailable,
    #[error("internal error")]
    Internal,
}

impl HttpError {
    fn code(&self) -> &'static str {
        match self {
            HttpError::InvalidRoom => "invalid_room",
            HttpError::BadRequest(_) => "bad_request",
            HttpError::InvalidName => "invalid_name",
            HttpError::InvalidText => "invalid_text",
            HttpError::Unauthorized => "unauthorized",
            HttpError::TooManyConnectionsFromAddress => "rate_limited",
            HttpError::PostingDisabled | HttpError::ForbiddenOrigin => "forbidden",
            HttpError::TooManyConnections
            | HttpError::ShuttingDown
            | HttpError::TooManyRooms
            | HttpError::StoreUnavailable
            | HttpError::HistoryUnavailable
            | HttpError::BansUnavailable => "unavailable",
            HttpError::UnknownMessage => "unknown_message",
            HttpError::UnknownBan => "unknown_ban",
            HttpError::Internal => "internal",
        }
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            HttpError::InvalidRoom => StatusCode::NOT_FOUND,
            HttpError::BadRequest(_) | HttpError::InvalidName | HttpError::InvalidText => {
                StatusCode::BAD_REQUEST
            }
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED,
            HttpError::TooManyConnectionsFromAddress => StatusCode::TOO_MANY_REQUESTS,
            HttpError::PostingDisabled | HttpError::ForbiddenOrigin => StatusCode::FORBIDDEN,
            HttpError::TooManyConnections
            | HttpError::ShuttingDown
            | HttpError::TooManyRooms
            | HttpError::StoreUnavailable
            | HttpError::HistoryUnavailable
            | HttpError::BansUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::UnknownMessage | HttpError::UnknownBan => StatusCode::NOT_FOUND,
            HttpError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            HttpError::Unauthorized => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            HttpError::TooManyConnections
            | HttpError::TooManyConnectionsFromAddress
            | HttpError::ShuttingDown
            | HttpError::TooManyRooms
            | HttpError::StoreUnavailable
            | HttpError::HistoryUnavailable
            | HttpError::BansUnavailable => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
            }
            _ => {}
        }
        response.json(ApiError {
            error: self.code().to_owned(),
            message: self.to_string(),
        })
    }
}

impl From<actix::MailboxError> for HttpError {
    fn from(error: actix::MailboxError) -> Self {
        tracing::error!(error = %error, "the registry did not answer");
        HttpError::Internal
    }
}
