//! A conversation's event log in its object's SQLite storage: append (ids
//! from `AUTOINCREMENT`, so they never repeat), replay after an id,
//! compaction of a finished answer's deltas, and retention.
//!
//! `floor` (in `meta`) is the highest id dropped by retention: an id below
//! it (or above the latest) cannot be replayed exactly, and the client is
//! told to reload instead. Compaction does not raise it: the
//! `message.completed` that follows the compacted deltas carries their text.

use worker::{Result, SqlStorage, SqlStorageValue};

use super::frame;

/// Most events kept per conversation, whatever their age.
pub const MAX_EVENTS: i64 = 1_000;

/// The log of one conversation.
pub struct Log {
    sql: SqlStorage,
}

fn int(v: Option<&SqlStorageValue>) -> i64 {
    match v {
        Some(SqlStorageValue::Integer(n)) => *n,
        Some(SqlStorageValue::Float(f)) => *f as i64,
        _ => 0,
    }
}

fn text(v: Option<&SqlStorageValue>) -> &str {
    match v {
        Some(SqlStorageValue::String(s)) => s,
        _ => "",
    }
}

impl Log {
    /// The log in `sql`, its tables created if need be.
    pub fn open(sql: SqlStorage) -> Result<Log> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT,
               at INTEGER NOT NULL, name TEXT NOT NULL, message TEXT, data TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
            None,
        )?;
        Ok(Log { sql })
    }

    /// The first row of a query, as raw values.
    fn row(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<Vec<SqlStorageValue>> {
        Ok(self
            .sql
            .exec(query, args)?
            .raw()
            .next()
            .transpose()?
            .unwrap_or_default())
    }

    fn set_meta(&self, key: &str, value: i64, keep_larger: bool) -> Result<()> {
        let query = if keep_larger {
            "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = max(v, excluded.v)"
        } else {
            "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
        };
        self.sql.exec(query, vec![key.into(), value.into()])?;
        Ok(())
    }

    /// Remembers how long events are kept (for the alarm).
    pub fn set_retention_ms(&self, ms: i64) -> Result<()> {
        self.set_meta("retention_ms", ms, false)
    }

    /// How long events are kept, in ms (`default` until told).
    pub fn retention_ms(&self, default: i64) -> Result<i64> {
        let row = self.row(
            "SELECT ifnull((SELECT v FROM meta WHERE k = 'retention_ms'), ?)",
            vec![default.into()],
        )?;
        Ok(int(row.first()))
    }

    /// Appends one event at time `at` (ms) and returns its frame. A
    /// `message.completed` drops the deltas of its message; the oldest
    /// events beyond [`MAX_EVENTS`] go.
    pub fn append(&self, at: i64, name: &str, message: Option<&str>, data: &str) -> Result<String> {
        let row = self.row(
            "INSERT INTO events (at, name, message, data) VALUES (?, ?, ?, ?) RETURNING id",
            vec![at.into(), name.into(), message.into(), data.into()],
        )?;
        let id = int(row.first());
        if let (Some(message), "message.completed") = (message, name) {
            self.sql.exec(
                "DELETE FROM events WHERE message = ? AND name = 'message.delta'",
                vec![message.into()],
            )?;
        }
        if id > MAX_EVENTS {
            self.drop_through(id - MAX_EVENTS)?;
        }
        Ok(frame::frame(id, name, data))
    }

    fn drop_through(&self, id: i64) -> Result<()> {
        self.sql
            .exec("DELETE FROM events WHERE id <= ?", vec![id.into()])?;
        self.set_meta("floor", id, true)
    }

    /// `(latest id ever given, floor)`.
    fn bounds(&self) -> Result<(i64, i64)> {
        let row = self.row(
            "SELECT ifnull((SELECT max(id) FROM events), 0),
                    ifnull((SELECT v FROM meta WHERE k = 'floor'), 0)",
            Vec::new(),
        )?;
        let (latest, floor) = (int(row.first()), int(row.get(1)));
        Ok((latest.max(floor), floor))
    }

    /// The frames after event `after`, oldest first, as one text; or the
    /// reload notice when `after` is below the floor or beyond the latest.
    pub fn replay(&self, after: i64) -> Result<String> {
        let (latest, floor) = self.bounds()?;
        if after < floor || after > latest {
            return Ok(frame::reload(latest, after));
        }
        let mut out = String::new();
        let rows = self.sql.exec(
            "SELECT id, name, data FROM events WHERE id > ? ORDER BY id",
            vec![after.into()],
        )?;
        for row in rows.raw() {
            let row = row?;
            out.push_str(&frame::frame(
                int(row.first()),
                text(row.get(1)),
                text(row.get(2)),
            ));
        }
        Ok(out)
    }

    /// Drops the events older than `before` (ms); returns the time of the
    /// oldest left, if any.
    pub fn expire(&self, before: i64) -> Result<Option<i64>> {
        let row = self.row(
            "SELECT max(id) FROM events WHERE at < ?",
            vec![before.into()],
        )?;
        if let Some(SqlStorageValue::Integer(_) | SqlStorageValue::Float(_)) = row.first() {
            self.drop_through(int(row.first()))?;
        }
        let row = self.row("SELECT min(at) FROM events", Vec::new())?;
        Ok(match row.first() {
            Some(SqlStorageValue::Integer(_) | SqlStorageValue::Float(_)) => Some(int(row.first())),
            _ => None,
        })
    }
}
