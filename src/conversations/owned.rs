//! A conversation named in a path, as its owner sees it: anything but a
//! UUID, a missing conversation and someone else's all answer the same 404
//! (the database API answers `not_found` for the last two).

use uuid::Uuid;

use crate::http::ApiError;

/// The 404 of a conversation that does not exist for this caller.
pub fn not_found() -> ApiError {
    ApiError::NotFound("conversation not found".into())
}

/// Parses a path id; anything but a UUID is simply not found.
pub fn conversation_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| not_found())
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
