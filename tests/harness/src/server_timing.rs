//! Reading the worker's `Server-Timing` header (`name;dur=N;desc="…"`
//! entries, possibly over several header lines), for the end-to-end tests
//! and the benchmarks.

use reqwest::header::HeaderMap;

/// One `Server-Timing` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its name, e.g. `ratelimit`.
    pub name: String,
    /// `dur`, in milliseconds.
    pub dur: Option<f64>,
    /// `desc`, unquoted.
    pub desc: Option<String>,
}

impl Entry {
    /// The number that starts `desc` (the worker's `"N counted"`).
    pub fn desc_count(&self) -> Option<u32> {
        self.desc.as_deref()?.split(' ').next()?.parse().ok()
    }
}

/// Every entry of every `Server-Timing` header, in order.
pub fn entries(headers: &HeaderMap) -> Vec<Entry> {
    headers
        .get_all("server-timing")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| {
            let mut parts = entry.trim().split(';').map(str::trim);
            let name = parts.next().filter(|n| !n.is_empty())?.to_string();
            let (mut dur, mut desc) = (None, None);
            for part in parts {
                if let Some(d) = part.strip_prefix("dur=") {
                    dur = d.parse().ok();
                } else if let Some(d) = part.strip_prefix("desc=") {
                    desc = Some(d.trim_matches('"').to_string());
                }
            }
            Some(Entry { name, dur, desc })
        })
        .collect()
}

/// The first entry called `name`.
pub fn find(headers: &HeaderMap, name: &str) -> Option<Entry> {
    entries(headers).into_iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn entries_over_several_lines() {
        let mut h = HeaderMap::new();
        h.append("server-timing", HeaderValue::from_static("ratelimit;dur=4"));
        h.append(
            "server-timing",
            HeaderValue::from_static("context;dur=12;desc=\"49 counted\", total;dur=30"),
        );
        let all = entries(&h);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].name, "ratelimit");
        assert_eq!(all[0].dur, Some(4.0));
        let context = find(&h, "context").unwrap();
        assert_eq!(context.desc.as_deref(), Some("49 counted"));
        assert_eq!(context.desc_count(), Some(49));
        assert_eq!(find(&h, "total").unwrap().dur, Some(30.0));
        assert_eq!(find(&h, "db"), None);
    }
}
