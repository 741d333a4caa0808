//! Every example of the document, validated against its schema.

use serde_json::Value;

use super::{escape, sse_frames, Spec};

/// What [`Spec::check_examples`] found.
#[derive(Debug, Default)]
pub struct ExampleReport {
    /// How many example values were validated.
    pub checked: usize,
    /// One line per example that does not validate.
    pub failures: Vec<String>,
}

impl Spec {
    /// Validates every example: a schema's `examples` array against that
    /// schema; a media type's or parameter's `example` and `examples.*.value`
    /// against its `schema` (for `text/event-stream`, each event: see
    /// [`Spec::validate_frame`]).
    pub fn check_examples(&self) -> ExampleReport {
        let mut report = ExampleReport::default();
        self.walk("", &self.doc, &mut report);
        report
    }

    fn walk(&self, at: &str, node: &Value, report: &mut ExampleReport) {
        match node {
            Value::Object(map) => {
                if let Some(Value::Array(items)) = map.get("examples") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(&format!("{at}/examples/{i}"), node, item, false, report);
                    }
                }
                if let Some(schema) = map.get("schema") {
                    let stream = at.ends_with("/text~1event-stream");
                    if let Some(value) = map.get("example") {
                        self.check(&format!("{at}/example"), schema, value, stream, report);
                    }
                    if let Some(Value::Object(named)) = map.get("examples") {
                        for (name, example) in named {
                            let here = format!("{at}/examples/{}", escape(name));
                            match example.get("value") {
                                Some(value) => self.check(&here, schema, value, stream, report),
                                None => report.failures.push(format!("{here}: no value")),
                            }
                        }
                    }
                }
                for (k, v) in map {
                    self.walk(&format!("{at}/{}", escape(k)), v, report);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.walk(&format!("{at}/{i}"), v, report);
                }
            }
            _ => {}
        }
    }

    fn check(
        &self,
        at: &str,
        schema: &Value,
        value: &Value,
        stream: bool,
        report: &mut ExampleReport,
    ) {
        let values: Vec<Result<Value, String>> = match (stream, value) {
            (true, Value::String(text)) => sse_frames(text).into_iter().map(Ok).collect(),
            (true, other) => vec![Err(format!(
                "an event-stream example must be text: {other}"
            ))],
            (false, v) => vec![Ok(v.clone())],
        };
        if values.is_empty() {
            report
                .failures
                .push(format!("{at}: no event in the example"));
        }
        for value in values {
            report.checked += 1;
            let checked = value.and_then(|v| match stream {
                true => self.validate_frame(schema, &v),
                false => self.validate(schema, &v),
            });
            if let Err(e) = checked {
                report.failures.push(format!("{at}: {e}"));
            }
        }
    }
}
