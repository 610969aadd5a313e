//! An event's payload, parsed only when a sink looks at it.
//!
//! A payload arrives as JSON text. Most sinks never look inside it, and building a tree only to
//! encode it again was about a third of an emit's time in the sink (issue 15). So [`Payload`]
//! keeps the text, and parses it the first time it is read through [`Deref`] (a `&Map`) or
//! changed through [`DerefMut`] (a `&mut Map`). When it is sealed, a payload nobody changed is
//! sealed from its text (`chainsink_format::json::write_object_text_within`: copied when
//! canonical, else encoded straight from it) and a changed one from its tree: the same bytes
//! either way, for the same object.

use core::ops::{Deref, DerefMut};
use std::cell::OnceCell;
use std::fmt;
use std::string::String;

use chainsink_format::json;
use chainsink_format::record::{self, RecordError};
use serde_json::{Map, Value};

/// An event's fields: one JSON object. Use it as a [`Map`]: `payload.get("k")`,
/// `payload.insert(..)`, `payload.remove("k")`, `for (k, v) in payload.iter()`.
///
/// The text that came with the event is parsed at first use. Text that is not a JSON object
/// (or holds NaN, a lone surrogate, …) reads as an empty object, and the event is refused when it
/// is sealed, whatever the sink did to it, with the parse error ([`Payload::error`]).
#[derive(Clone)]
pub struct Payload {
    /// The text as it came, while nothing has changed the object (a change drops it).
    text: Option<String>,
    /// The parsed object, made at first use; the payload itself once changed.
    tree: OnceCell<Map<String, Value>>,
    /// Why the text is not a payload, found when it was parsed.
    error: OnceCell<Option<String>>,
}

impl Payload {
    /// A payload from its JSON text (not parsed yet).
    pub fn from_text(text: String) -> Payload {
        Payload {
            text: Some(text),
            tree: OnceCell::new(),
            error: OnceCell::new(),
        }
    }

    /// The text as it came, while the object has not been changed.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// Why the text that came is not a payload the log can hold, if it is not: the
    /// `invalid-event` message the event is refused with. Parses the text if nothing has yet.
    pub fn error(&self) -> Option<&str> {
        self.parsed();
        self.error.get().and_then(|e| e.as_deref())
    }

    /// The payload in the form the format crate seals: the text if it was never changed, else
    /// the tree.
    pub fn as_record(&self) -> record::Payload<'_> {
        match &self.text {
            Some(text) => record::Payload::Text(text),
            None => record::Payload::Object(self.parsed()),
        }
    }

    /// The tree, parsing the text the first time.
    fn parsed(&self) -> &Map<String, Value> {
        self.tree.get_or_init(|| {
            let text = self.text.as_deref().unwrap_or("{}");
            match json::parse_object(text) {
                Ok(m) => {
                    let _ = self.error.set(None);
                    m
                }
                Err(e) => {
                    // The message sealing the text would give (`RecordError::Payload`).
                    let _ = self.error.set(Some(RecordError::from(e).to_string()));
                    Map::new()
                }
            }
        })
    }
}

impl Deref for Payload {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        self.parsed()
    }
}

impl DerefMut for Payload {
    /// Parses the text if nothing has yet; from now on the tree is the payload.
    fn deref_mut(&mut self) -> &mut Map<String, Value> {
        self.parsed();
        self.text = None;
        self.tree.get_mut().expect("parsed just above")
    }
}

impl From<Map<String, Value>> for Payload {
    fn from(m: Map<String, Value>) -> Payload {
        Payload {
            text: None,
            tree: OnceCell::from(m),
            error: OnceCell::from(None),
        }
    }
}

impl PartialEq for Payload {
    /// Equal when they hold the same object (and, for unparsable text, the same text).
    fn eq(&self, other: &Payload) -> bool {
        match (self.error(), other.error()) {
            (None, None) => **self == **other,
            _ => self.text == other.text,
        }
    }
}

impl fmt::Debug for Payload {
    /// The text while it is the payload, else the object.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.text {
            Some(text) => f.debug_tuple("Payload").field(text).finish(),
            None => self.parsed().fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainsink_format::record::Payload as Sealed;

    #[test]
    fn untouched_payloads_seal_from_their_text_and_changed_ones_from_the_tree() {
        let mut p = Payload::from_text(r#"{"b": 1, "a": 2}"#.into());
        assert!(matches!(p.as_record(), Sealed::Text(_)));
        // Reading parses, but keeps the text.
        assert_eq!(p.get("a"), Some(&Value::from(2)));
        assert_eq!(p.text(), Some(r#"{"b": 1, "a": 2}"#));
        assert!(matches!(p.as_record(), Sealed::Text(_)));
        // Changing drops it.
        p.insert("c".into(), Value::from(3));
        assert_eq!(p.text(), None);
        match p.as_record() {
            Sealed::Object(m) => assert_eq!(m.len(), 3),
            Sealed::Text(t) => panic!("sealed from stale text {t}"),
        }
        // A mutable borrow counts as a change even if nothing changed.
        let mut q = Payload::from_text("{}".into());
        let _ = &mut *q;
        assert!(matches!(q.as_record(), Sealed::Object(_)));
    }

    #[test]
    fn bad_text_reads_as_empty_and_keeps_its_error_after_a_change() {
        for text in [
            "[1]",
            "{\"a\": NaN}",
            "{\"a\": \"\\ud800\"}",
            "{",
            "{\"a\": 1e400}",
        ] {
            let mut p = Payload::from_text(text.into());
            let e = p
                .error()
                .unwrap_or_else(|| panic!("{text} refused"))
                .to_string();
            assert!(e.starts_with("payload cannot be stored: "), "{e}");
            assert!(p.is_empty());
            p.insert("k".into(), Value::Null);
            assert_eq!(
                p.error(),
                Some(e.as_str()),
                "{text}: a change does not clear it"
            );
        }
        assert_eq!(Payload::from_text(r#"{"a": 1}"#.into()).error(), None);
        assert_eq!(Payload::from(Map::new()).error(), None);
    }

    #[test]
    fn equality_is_by_object() {
        let a = Payload::from_text(r#"{"a": 1, "b": 2}"#.into());
        let b = Payload::from_text(r#"{"b":2,"a":1}"#.into());
        assert_eq!(a, b);
        assert_ne!(a, Payload::from_text(r#"{"a": 1}"#.into()));
        assert_ne!(
            Payload::from_text("[".into()),
            Payload::from_text("]".into())
        );
    }
}
