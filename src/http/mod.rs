//! HTTP concerns shared by every route: the error envelope, request ids,
//! security and CORS headers (pure), and the glue that turns them into
//! Workers responses.

pub mod body;
pub mod body_reader;
pub mod body_writer;
pub mod context;
pub mod ctx;
pub mod error;
pub mod headers;
pub mod pagination;
pub mod request;
pub mod respond;

pub use error::{ApiError, FieldError};
