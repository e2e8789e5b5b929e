//! JSON text read the way the senders' own tools read it.
//!
//! Twilio's and Segment's senders, and the people who test with them, write JSON with Python
//! and JavaScript. Both read text that serde_json refuses: a lone UTF-16 surrogate escape
//! (`"\ud83d"`, what a name cut inside an emoji becomes), Python's `NaN`, `Infinity` and
//! `-Infinity`, a number too large for a float (`1e400`), nesting deeper than serde_json's 128
//! levels (Python's limit is its recursion limit, 1,000), and, for bytes, a UTF-8 byte order
//! mark. An event that holds one of these, even in a field nobody reads, must not be skipped
//! as unreadable. So: serde_json first (the fast path, and all well-formed text), and only when
//! it refuses, the text is repaired and read again: a lone surrogate becomes U+FFFD (as
//! browsers decode it), a non-finite number becomes `null` (it has no JSON value).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Python's default recursion limit, which bounds how deep its `json` module reads.
const PYTHON_DEPTH: usize = 1_000;
/// How deep serde_json reads by default.
const SERDE_DEPTH: usize = 128;
/// The stack of the thread that reads deeper text.
const DEEP_READER_STACK: usize = 64 * 1024 * 1024;

/// Reads `text` as JSON, as Python's `json.loads` would.
pub fn from_str<T: DeserializeOwned + Send>(text: &str) -> Result<T, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(error) => match Repair::of(text) {
            Some(repair) if repair.depth <= PYTHON_DEPTH => repair.read(text),
            _ => Err(error),
        },
    }
}

/// Reads `bytes` as JSON, as Python's `json.loads` reads bytes: UTF-8, with or without a BOM.
pub fn from_slice<T: DeserializeOwned + Send>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => from_str(text),
        // serde_json says where the bytes stop being UTF-8.
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// How deeply `value` nests (a scalar is 0, `[]` and `{}` are 1), measured without recursing.
/// Values read this way can nest up to Python's 1,000 levels; code that walks a value
/// recursively (into CEL, say) checks this first.
pub fn nesting(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 0_usize)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    deepest
}

/// `text` with what serde_json cannot read rewritten (lone surrogates, non-finite numbers),
/// when it holds any: for readers that keep the text, such as a list read item by item.
pub fn repaired(text: &str) -> Option<String> {
    Repair::of(text)?.text
}

/// What reading a text again takes: its repaired form, when it needs one, and how deeply it
/// nests.
struct Repair {
    text: Option<String>,
    depth: usize,
}

impl Repair {
    /// Walks the text once, outside and inside its strings; `None` when there is nothing a
    /// second reading could change (the text is simply not JSON).
    fn of(text: &str) -> Option<Self> {
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        let (mut depth, mut deepest) = (0_usize, 0_usize);
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            match c {
                '"' => {
                    let (string, changed_here, after) = string(rest)?;
                    out.push_str(&string);
                    changed |= changed_here;
                    rest = after;
                    continue;
                }
                '[' | '{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                'N' | 'I' | '-' | '0'..='9' => {
                    let (token, after) = split_token(rest);
                    if non_finite(token) {
                        out.push_str("null");
                        changed = true;
                    } else {
                        out.push_str(token);
                    }
                    rest = after;
                    continue;
                }
                _ => {}
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        (changed || deepest > SERDE_DEPTH).then(|| Self {
            text: changed.then_some(out),
            depth: deepest,
        })
    }

    fn read<T: DeserializeOwned + Send>(self, original: &str) -> Result<T, serde_json::Error> {
        let text = self.text.as_deref().unwrap_or(original);
        if self.depth <= SERDE_DEPTH {
            return serde_json::from_str(text);
        }
        // Deeper than serde_json reads by default, and at most PYTHON_DEPTH (checked by the
        // caller): read on a thread of its own whose stack holds that many levels in any
        // build (a debug build's take far more than a tokio worker's 2 MiB). Rare: only
        // text serde_json refused comes here.
        std::thread::scope(|scope| {
            let reader = std::thread::Builder::new()
                .stack_size(DEEP_READER_STACK)
                .spawn_scoped(scope, || {
                    let mut deserializer = serde_json::Deserializer::from_str(text);
                    deserializer.disable_recursion_limit();
                    let value = T::deserialize(&mut deserializer)?;
                    deserializer.end()?;
                    Ok(value)
                });
            match reader.map(|reader| reader.join()) {
                Ok(Ok(read)) => read,
                // No thread to be had, or it panicked: as unreadable as serde_json found it.
                _ => serde_json::from_str(text),
            }
        })
    }
}

/// A JSON string at the start of `text` (which starts with `"`): the string as it should be
/// read, whether it changed, and the text after it. `None` when it does not end.
fn string(text: &str) -> Option<(String, bool, &str)> {
    let bytes = text.as_bytes();
    let mut out = String::from('"');
    let mut changed = false;
    let mut i = 1;
    let mut copied = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                out.push_str(&text[copied..=i]);
                return Some((out, changed, &text[i + 1..]));
            }
            b'\\' if bytes.get(i + 1) == Some(&b'u') => {
                let unit = hex_unit(text, i + 2)?;
                let paired = (0xD800..0xDC00).contains(&unit)
                    && text.get(i + 6..i + 8) == Some("\\u")
                    && hex_unit(text, i + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low));
                if paired {
                    i += 12;
                } else if (0xD800..0xE000).contains(&unit) {
                    out.push_str(&text[copied..i]);
                    out.push_str("\\ufffd");
                    changed = true;
                    i += 6;
                    copied = i;
                } else {
                    i += 6;
                }
            }
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// The four hex digits at `at`, as a UTF-16 code unit.
fn hex_unit(text: &str, at: usize) -> Option<u32> {
    let digits = text.get(at..at + 4)?;
    digits
        .bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| u32::from_str_radix(digits, 16).ok())
        .flatten()
}

/// A bare token (a number or a name) at the start of `text`, and the text after it.
fn split_token(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Python's names for the non-finite floats, and numbers too large for one.
fn non_finite(token: &str) -> bool {
    matches!(token, "NaN" | "Infinity" | "-Infinity")
        || (token.bytes().any(|b| b.is_ascii_digit())
            && token.parse::<f64>().is_ok_and(|n| n.is_infinite()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(text: &str) -> Value {
        from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn well_formed_text_reads_as_serde_json_reads_it() {
        let text = r#"{"a": [1, 2.5, -3e2, "x\"y\\", "\ud83d\ude00", null, true]}"#;
        assert_eq!(read(text), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn a_lone_surrogate_becomes_the_replacement_character() {
        // GIVEN names cut inside an emoji, as Python's json.dumps writes them
        assert_eq!(
            read(r#"{"name": "Ana \ud83d"}"#),
            json!({"name": "Ana \u{fffd}"})
        );
        assert_eq!(read(r#"["\ude00x"]"#), json!(["\u{fffd}x"]));
        assert_eq!(
            read(r#"["\ud83d\ud83d\ude00"]"#),
            json!(["\u{fffd}\u{1f600}"])
        );
        // An escaped backslash before `ud83d` is no escape at all.
        assert_eq!(
            read(r#"["\\ud83d", "\ud83d"]"#),
            json!(["\\ud83d", "\u{fffd}"])
        );
    }

    #[test]
    fn pythons_non_finite_numbers_read_as_null() {
        assert_eq!(
            read(r#"{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e400, "e": "NaN"}"#),
            json!({"a": null, "b": null, "c": null, "d": null, "e": "NaN"})
        );
    }

    #[test]
    fn nesting_reads_as_deep_as_python_reads_it() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        // Read, and dropped here on a test thread's 2 MiB stack.
        let value: Value = from_str(&deep(990)).unwrap();
        assert!(value.is_array());
        drop(value);
        assert!(from_str::<Value>(&deep(5_000)).is_err());
    }

    #[test]
    fn nesting_is_measured_without_recursing() {
        assert_eq!(nesting(&json!(1)), 0);
        assert_eq!(nesting(&json!({"a": [1, {"b": []}]})), 4);
        let deep: Value = from_str(&format!("{}{}", "[".repeat(990), "]".repeat(990))).unwrap();
        assert_eq!(nesting(&deep), 990);
    }

    #[test]
    fn bytes_may_start_with_a_byte_order_mark() {
        assert_eq!(
            from_slice::<Value>(b"\xEF\xBB\xBF{\"a\": 1}").unwrap(),
            json!({"a": 1})
        );
    }

    #[test]
    fn text_that_is_not_json_stays_an_error() {
        for text in [
            "not json",
            r#"{"a": "\ud83"}"#,
            r#"{"a": Nan}"#,
            r#"{"a": 1"#,
            r#""open"#,
        ] {
            assert!(from_str::<Value>(text).is_err(), "{text}");
        }
    }
}
