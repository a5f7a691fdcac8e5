//! Observations from the two runs can only differ legitimately in server-generated values:
//! channel uuids, and the ids and signatures of events whose tags carry them. Every such
//! string is replaced by a stable placeholder (`<B.channel#1>`, `<ev#17>`, `<sig#17>`).
//!
//! Replacement is by whole token, a token being a maximal run of `[0-9a-f-]` — exactly the
//! alphabet of ids, signatures and uuids — so a value is never rewritten inside a longer one,
//! and every other byte of the server's text is kept as is.

use std::collections::HashMap;

#[derive(Default)]
pub struct Normalizer {
    map: HashMap<String, String>,
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-'
}

impl Normalizer {
    pub fn add(&mut self, from: impl Into<String>, to: impl Into<String>) {
        self.map.insert(from.into(), to.into());
    }

    pub fn apply(&self, s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < b.len() {
            // Token boundaries are ASCII bytes, so these slices are on char boundaries.
            let start = i;
            let token = is_token_byte(b[i]);
            while i < b.len() && is_token_byte(b[i]) == token {
                i += 1;
            }
            let piece = &s[start..i];
            out.push_str(if token { self.map.get(piece).map_or(piece, String::as_str) } else { piece });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n() -> Normalizer {
        let mut n = Normalizer::default();
        n.add("0b1c2d3e-0000-4000-8000-00000000abcd", "<B.channel#0>");
        n.add("ab".repeat(32), "<ev#3>");
        n
    }

    #[test]
    fn replaces_whole_tokens_in_json() {
        let id = "ab".repeat(32);
        let text = format!(r#"{{"id": "{id}", "tags": [["h", "0b1c2d3e-0000-4000-8000-00000000abcd"], ["e", "{id}"]]}}"#);
        assert_eq!(n().apply(&text), r#"{"id": "<ev#3>", "tags": [["h", "<B.channel#0>"], ["e", "<ev#3>"]]}"#);
    }

    #[test]
    fn leaves_everything_else_byte_for_byte() {
        let text = r#"{"content": "héllo ✓ deadbeef", "created_at": 1700000000, "kind": 1}"#;
        assert_eq!(n().apply(text), text);
        // A key embedded in a longer token is a different value: not replaced.
        let longer = format!("{}0", "ab".repeat(32));
        assert_eq!(n().apply(&longer), longer);
        // Coordinates split at ':' so ids inside them are still found.
        assert_eq!(n().apply(&format!("30023:{}:notes", "ab".repeat(32))), "30023:<ev#3>:notes");
        assert_eq!(n().apply(""), "");
    }
}
