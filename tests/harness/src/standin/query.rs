//! Minimal URL query-string reading (`a=b&c=d`, percent and `+` decoding).

/// The decoded value of the first `name=` parameter of `query`, if any.
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

/// Percent-decodes `text` (and turns `+` into a space); invalid escapes are
/// kept verbatim and invalid UTF-8 is replaced.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(decode("a%20b+c%2Fd"), "a b c/d");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%41"), "A");
    }

    #[test]
    fn finds_the_named_parameter() {
        let query = Some("alt=sse&contains=t%2D1+x&key=");
        assert_eq!(param(query, "contains").as_deref(), Some("t-1 x"));
        assert_eq!(param(query, "alt").as_deref(), Some("sse"));
        assert_eq!(param(query, "key").as_deref(), Some(""));
        assert_eq!(param(query, "missing"), None);
        assert_eq!(param(None, "alt"), None);
    }
}
