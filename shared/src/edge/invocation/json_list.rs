//! A JSON list read one item at a time, each item borrowed from the text.

use serde_json::value::RawValue;

/// A JSON list kept as its text and read one item at a time, each item borrowed from the text:
/// a large list never becomes a tree of JSON, nor a copy of its items.
#[derive(Debug)]
pub struct JsonList {
    text: String,
    len: usize,
}

impl JsonList {
    /// A list of nothing.
    pub(super) fn empty() -> Self {
        Self {
            text: "[]".into(),
            len: 0,
        }
    }

    /// Checks that `text` is a JSON list, and counts its items. A list only Python or a
    /// browser would read (see [`crate::support::json_text`]) is kept as its repaired text.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        let mut len = 0;
        match each_item(&text, |_| len += 1) {
            Ok(()) => Ok(Self { text, len }),
            Err(error) => {
                let text = crate::support::json_text::repaired(&text).ok_or(error)?;
                len = 0;
                each_item(&text, |_| len += 1)?;
                Ok(Self { text, len })
            }
        }
    }

    /// How many items it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` with each item's text, in order.
    pub fn for_each<'a>(&'a self, f: impl FnMut(&'a RawValue)) {
        // Checked by `parse`: reading it again cannot fail.
        let _ = each_item(&self.text, f);
    }
}

fn each_item<'a>(text: &'a str, f: impl FnMut(&'a RawValue)) -> Result<(), serde_json::Error> {
    use serde::Deserializer as _;

    struct Items<F>(F);
    impl<'de, F: FnMut(&'de RawValue)> serde::de::Visitor<'de> for Items<F> {
        type Value = ();
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a JSON list")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            while let Some(item) = seq.next_element::<&'de RawValue>()? {
                (self.0)(item);
            }
            Ok(())
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    deserializer.deserialize_seq(Items(f))?;
    deserializer.end()
}
