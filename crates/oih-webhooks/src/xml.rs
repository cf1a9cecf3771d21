//! XML → JSON exactly as OIH's `express-xml-bodyparser` (xml2js) configuration produces it
//! (runtime.md §5.2): the root element is kept as the single key; attributes go under
//! `_attr`; an element with only text becomes that text, untrimmed; an element with attributes
//! or children keeps its text under `_` unless the text is whitespace only; a repeated child
//! becomes an array (`explicitArray: false`); an empty element is `""`; the first `:` of a
//! tag name becomes `-`.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde_json::{Map, Value};

/// xml2js' key for an element's own text next to attributes or children.
const TEXT_KEY: &str = "_";
/// OIH's `attrkey`.
const ATTR_KEY: &str = "_attr";

#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("{0}")]
    Syntax(String),
    #[error("the document has no root element")]
    NoRoot,
    #[error("the document has content after its root element")]
    TrailingContent,
}

/// An element being read: its name, attributes/children so far, and its text.
struct Open {
    name: String,
    fields: Map<String, Value>,
    text: String,
}

impl Open {
    fn new(start: &BytesStart<'_>) -> Result<Self, XmlError> {
        let mut fields = Map::new();
        let mut attrs = Map::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| XmlError::Syntax(e.to_string()))?;
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| XmlError::Syntax(e.to_string()))?;
            attrs.insert(
                attr.key.as_ref().to_owned(),
                Value::String(value.into_owned()),
            );
        }
        if !attrs.is_empty() {
            fields.insert(ATTR_KEY.into(), Value::Object(attrs));
        }
        Ok(Self {
            name: start.name().as_ref().replacen(':', "-", 1),
            fields,
            text: String::new(),
        })
    }

    /// The element's JSON value when it closes (xml2js' `onclosetag` with OIH's options).
    fn close(mut self) -> (String, Value) {
        let whitespace_only = self.text.chars().all(char::is_whitespace);
        let value = if self.fields.is_empty() {
            // Text only (or nothing): the text itself, whitespace included.
            Value::String(self.text)
        } else {
            if !whitespace_only {
                self.fields
                    .insert(TEXT_KEY.into(), Value::String(self.text));
            }
            Value::Object(self.fields)
        };
        (self.name, value)
    }

    /// Adds a child; a second child of the same name turns the entry into an array.
    fn add_child(&mut self, name: String, value: Value) {
        match self.fields.get_mut(&name) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                self.fields.insert(name, value);
            }
        }
    }
}

/// Parses `text` as an XML document into OIH's JSON form.
pub fn to_json(text: &str) -> Result<Value, XmlError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Value> = None;
    let syntax = |e: quick_xml::Error| XmlError::Syntax(e.to_string());
    loop {
        let event = reader.read_event().map_err(syntax)?;
        if root.is_some() && matches!(event, Event::Start(_) | Event::Empty(_)) {
            return Err(XmlError::TrailingContent);
        }
        match event {
            Event::Start(start) => stack.push(Open::new(&start)?),
            Event::Empty(start) => {
                let (name, value) = Open::new(&start)?.close();
                finish(&mut stack, &mut root, name, value);
            }
            Event::End(_) => {
                // quick-xml checks that end names match their start tags.
                let Some(open) = stack.pop() else {
                    return Err(XmlError::Syntax("unexpected closing tag".into()));
                };
                let (name, value) = open.close();
                finish(&mut stack, &mut root, name, value);
            }
            Event::Text(text) => match stack.last_mut() {
                Some(open) => open.text.push_str(&text.xml10_content()),
                None if text.xml10_content().trim().is_empty() => {}
                None => return Err(XmlError::Syntax("text outside the root element".into())),
            },
            Event::CData(data) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&data.into_inner());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(syntax)? {
                    Some(ch) => ch.to_string(),
                    None => {
                        let name = reference.into_inner();
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| XmlError::Syntax(format!("unknown entity &{name};")))?
                            .to_owned()
                    }
                };
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax("unclosed element".into()));
    }
    root.ok_or(XmlError::NoRoot)
}

fn finish(stack: &mut [Open], root: &mut Option<Value>, name: String, value: Value) {
    match stack.last_mut() {
        Some(parent) => parent.add_child(name, value),
        None => {
            let mut doc = Map::new();
            doc.insert(name, value);
            *root = Some(Value::Object(doc));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::to_json;

    #[test]
    fn oih_sample_document() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Subscription xmlns=\"http://x/xsi\">\n    <targetIdType>System</targetIdType>\n    <event> Advanced Call </event>\n    <applicationId>elastic.io</applicationId>\n</Subscription>";
        assert_eq!(
            to_json(xml).expect("parse"),
            json!({"Subscription": {"_attr": {"xmlns": "http://x/xsi"},
                "targetIdType": "System", "event": " Advanced Call ", "applicationId": "elastic.io"}})
        );
    }

    #[test]
    fn namespaces_repeats_empties_entities_and_mixed_text() {
        let xml = r#"<s:Env xmlns:s="u"><a>1</a><a>2</a><b/><c k="v">t &amp; &#65;</c><![CDATA[x]]></s:Env>"#;
        assert_eq!(
            to_json(xml).expect("parse"),
            json!({"s-Env": {"_attr": {"xmlns:s": "u"}, "a": ["1", "2"], "b": "",
                "c": {"_attr": {"k": "v"}, "_": "t & A"}, "_": "x"}})
        );
    }

    #[test]
    fn malformed_documents_are_errors() {
        for bad in [
            "<a><b></a>",
            "<a>",
            "",
            "just text",
            "<a/><b/>",
            "<a>&nope;</a>",
        ] {
            assert!(to_json(bad).is_err(), "{bad:?} should fail");
        }
    }
}
