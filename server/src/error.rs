//! Errors as HTTP answers: nudge's mapping ([`nudge::error`]: a status and a JSON body
//! `{"error": {"code", "message"}}`), with the refusals of accounts added.

pub use nudge::error::*;

use actix_web::http::StatusCode;

use crate::store::accounts::AccountError;

/// Refusals of the accounts backend are the client's business; its failures are the store's.
impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        let (status, code, message) = match error {
            AccountError::Store(e) => return Self::Store(e),
            AccountError::NameTaken => (
                StatusCode::CONFLICT,
                "name_taken",
                "that name is already registered",
            ),
            AccountError::NoSuchUser => (
                StatusCode::NOT_FOUND,
                "user_not_found",
                "no user is registered under that name",
            ),
            AccountError::NoSuchRoom => (
                StatusCode::NOT_FOUND,
                "room_not_found",
                "there is no room with that name",
            ),
            AccountError::RoomExists => (
                StatusCode::CONFLICT,
                "room_exists",
                "a room with that name already exists",
            ),
            AccountError::RoomIsPublic => (
                StatusCode::CONFLICT,
                "room_is_public",
                "a public room has no members to change",
            ),
            AccountError::NotAMember => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "only members of this room may do that",
            ),
        };
        Self::client(status, code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use nudge::StoreError;

    #[test]
    fn refusals_are_4xx_and_failures_500() {
        let taken = ApiError::from(AccountError::NameTaken);
        assert_eq!(taken.status_code(), StatusCode::CONFLICT);
        let failed = ApiError::from(AccountError::Store(StoreError::Closed));
        assert_eq!(failed.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
