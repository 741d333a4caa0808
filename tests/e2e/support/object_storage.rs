//! What a conversation's events object keeps on disk: the local runtime
//! stores each Durable Object as one SQLite file in the worker's state
//! directory (`E2E_WORKER_STATE`), with the object's name beside its
//! tables. Read with Python's `sqlite3` (read-only), as the API cannot
//! show it.

use std::path::PathBuf;
use std::process::Command;

/// Prints `PATH EVENTS META` for the object named argv[2] in argv[1], or
/// `PATH EVENTS META` for the file argv[2] when argv[3] is `file`.
const PROBE: &str = r#"
import glob, os, sqlite3, sys
def counts(path):
    c = sqlite3.connect('file:' + path + '?mode=ro', uri=True)
    tables = {r[0] for r in c.execute("select name from sqlite_master where type='table'")}
    n = lambda t: c.execute(f'select count(*) from "{t}"').fetchone()[0] if t in tables else 0
    named = c.execute('select name from __miniflare_do_name').fetchone()[0] if '__miniflare_do_name' in tables else None
    return named, n('events'), n('meta')
if len(sys.argv) > 3:
    print(sys.argv[2], *counts(sys.argv[2])[1:])
else:
    for path in glob.glob(os.path.join(sys.argv[1], '*.sqlite')):
        if os.path.basename(path) == 'metadata.sqlite':
            continue
        named, events, meta = counts(path)
        if named == sys.argv[2]:
            print(path, events, meta)
"#;

/// Rows kept by one events object: its event log and its metadata.
#[derive(Debug, PartialEq, Eq)]
pub struct ObjectRows {
    /// The object's SQLite file.
    pub file: String,
    /// Rows of its `events` table.
    pub events: u64,
    /// Rows of its `meta` table.
    pub meta: u64,
}

/// `SCRIPT-ConversationEvents` (the script is named per wrangler environment).
fn objects_dir() -> PathBuf {
    let state = std::env::var("E2E_WORKER_STATE").unwrap_or_default();
    assert!(!state.is_empty(), "E2E_WORKER_STATE is not set");
    let objects = PathBuf::from(state).join("v3/do");
    std::fs::read_dir(&objects)
        .expect("the worker's objects directory")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.to_string_lossy().ends_with("-ConversationEvents"))
        .expect("a ConversationEvents directory")
}

fn probe(args: &[&str]) -> Option<ObjectRows> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(PROBE)
        .arg(objects_dir())
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let file = parts.next()?.to_string();
    let mut n = || parts.next().and_then(|v| v.parse().ok()).expect("a count");
    let (events, meta) = (n(), n());
    Some(ObjectRows { file, events, meta })
}

/// The events object of `conversation`, found by its name (`None` before
/// anything was published to it).
pub fn events_object(conversation: &str) -> Option<ObjectRows> {
    probe(&[conversation])
}

/// The rows the object file `file` holds now.
pub fn object_file_rows(file: &str) -> ObjectRows {
    probe(&[file, "file"]).expect("the object's file is readable")
}
