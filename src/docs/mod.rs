//! The API's documentation, served by the worker: the OpenAPI 3.1 document
//! (embedded as a finished string) and the HTML pages that render it.

pub mod openapi;
pub mod pages;
