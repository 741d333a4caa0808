//! The API's documentation, served by the worker: the OpenAPI 3.1 document
//! (read from the static assets) and the HTML pages that render it.

pub mod openapi;
pub mod pages;
