//! Which operations the end-to-end tests saw answer with a validated 2xx:
//! the tests append `operationId status` lines to the file named by
//! [`SEEN_FILE_VAR`]; the stack runner then lists the operations missing.

use std::collections::BTreeSet;
use std::io::Write;

use super::Spec;

/// The variable naming the file of validated responses (unset: not recorded).
pub const SEEN_FILE_VAR: &str = "E2E_OPENAPI_SEEN";

/// Appends `operation_id status` to the file named by [`SEEN_FILE_VAR`], if set.
pub fn record_seen(operation_id: &str, status: u16) {
    let Ok(path) = std::env::var(SEEN_FILE_VAR) else {
        return;
    };
    let line = format!("{operation_id} {status}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("cannot record a validated response in {path}: {e}");
    }
}

/// The operations of `spec` with no 2xx line in `seen` (the recorded
/// file's text), as `operationId (METHOD path)`.
pub fn missing_operations(spec: &Spec, seen: &str) -> Vec<String> {
    let ok: BTreeSet<&str> = seen
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, status)| status.starts_with('2'))
        .map(|(id, _)| id)
        .collect();
    spec.operations()
        .into_iter()
        .filter(|op| !ok.contains(op.operation_id.as_str()))
        .map(|op| format!("{} ({} {})", op.operation_id, op.method, op.path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_lines_count() {
        let spec = super::super::spec();
        let all = missing_operations(spec, "");
        assert_eq!(all.len(), spec.operations().len());
        assert!(
            all.iter().any(|m| m.starts_with("getHealth (GET /health)")),
            "{all:?}"
        );
        let seen = "getHealth 200\nlistModels 500\n";
        let missing = missing_operations(spec, seen);
        assert_eq!(missing.len(), all.len() - 1);
        assert!(missing.iter().any(|m| m.starts_with("listModels ")));
    }
}
