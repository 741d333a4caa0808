//! A conversation named in a path, as its owner sees it: anything but a
//! UUID, a missing conversation and someone else's all answer the same 404.

use tokio_postgres::Client;
use uuid::Uuid;

use super::repo::{self, Conversation};
use crate::auth::Principal;
use crate::http::ApiError;

/// The 404 of a conversation that does not exist for this caller.
pub fn not_found() -> ApiError {
    ApiError::NotFound("conversation not found".into())
}

/// Parses a path id; anything but a UUID is simply not found.
pub fn conversation_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| not_found())
}

/// The caller's conversation, or 404 (also when it is someone else's).
pub async fn owned(c: &Client, p: &Principal, id: Uuid) -> Result<Conversation, ApiError> {
    repo::get(c, p.user_id, id).await?.ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_uuids_are_not_found() {
        for raw in [
            "",
            "42",
            "not-a-uuid",
            "00000000-0000-0000-0000-00000000000g",
        ] {
            assert_eq!(conversation_id(raw).unwrap_err().status(), 404, "{raw}");
        }
        let id = Uuid::new_v4();
        assert_eq!(conversation_id(&id.to_string()).unwrap(), id);
    }
}
