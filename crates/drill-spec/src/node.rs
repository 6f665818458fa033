//! A YAML document as a tree of nodes that remember where they came from.
//!
//! serde-saphyr parses the text (with budgets against YAML bombs, duplicate-key and tab
//! errors); each node keeps its [`Loc`] so that every later error, even one found after
//! `${VAR}` interpolation or drill-parameter substitution, points at the right line and column.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diag::{Diag, Loc};

/// The largest document drill reads. Playbooks are a page or two; anything near this is a mistake
/// or an attack, and is refused before the parser sees it.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// The deepest nesting accepted. Real playbooks nest less than 10 levels.
pub const MAX_DEPTH: usize = 64;
/// Nodes per file, aliases included: bounds billion-laughs expansion.
pub const MAX_NODES: usize = 100_000;

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub loc: Loc,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order; keys are nodes too, so they keep their positions.
    Map(Vec<(Node, Node)>),
}

impl Kind {
    /// How a user would name this kind of value in an error message.
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Null => "nothing (null)",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

impl Node {
    pub fn new(kind: Kind, loc: Loc) -> Self {
        Self { kind, loc }
    }

    /// The value under `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value node under `key` when this node is a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.kind {
            Kind::Map(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar as text, as a user wrote it (numbers and booleans printed back).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Visits every node, depth first, with mutable access.
    pub fn walk_mut(&mut self, f: &mut dyn FnMut(&mut Node)) {
        f(self);
        match &mut self.kind {
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.walk_mut(f)),
            Kind::Map(entries) => entries.iter_mut().for_each(|(_, v)| v.walk_mut(f)),
            _ => {}
        }
    }

    /// Sets the source file of this node and of every node and key below it.
    pub fn set_src(&mut self, src: u16) {
        self.loc.src = src;
        match &mut self.kind {
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.set_src(src)),
            Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.set_src(src);
                v.set_src(src);
            }),
            _ => {}
        }
    }

    /// Converts to JSON, for values that drill passes through untyped (request bodies).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parses YAML text into one node tree per document.
///
/// Refuses, with a located diagnostic and before doing any work in proportion to them:
/// inputs over [`MAX_INPUT_BYTES`], nesting deeper than [`MAX_DEPTH`], more than
/// [`MAX_NODES`] nodes (alias expansion counted), duplicate keys, tabs used as indentation.
pub fn parse_yaml(text: &str, src: u16) -> Result<Vec<Node>, Diag> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(Diag::error(
            Loc::new(src, 1, 1),
            format!(
                "document is {:.1} MiB, more than the {} MiB drill reads",
                text.len() as f64 / (1024.0 * 1024.0),
                MAX_INPUT_BYTES / (1024 * 1024)
            ),
        )
        .with_hint("split it, or move large data into the traffic dataset file"));
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_events: MAX_NODES * 4,
            max_aliases: 10_000,
            max_total_scalar_bytes: MAX_INPUT_BYTES,
            max_documents: 64,
        },
    };
    let docs: Vec<Option<Node>> = serde_saphyr::from_str_multiple_with_options(text, options)
        .map_err(|e| yaml_error(&e, src))?;
    Ok(docs.into_iter().flatten().collect())
}

fn yaml_error(e: &serde_saphyr::Error, src: u16) -> Diag {
    let loc = e.location().map_or(Loc::new(src, 1, 1), |l| {
        Loc::new(
            src,
            u32::try_from(l.line()).unwrap_or(u32::MAX).max(1),
            u32::try_from(l.column()).unwrap_or(u32::MAX).max(1),
        )
    });
    let raw = e.without_snippet().to_string();
    // serde-saphyr appends " at line L column C"; the location is printed in front already.
    let msg = strip_location_suffix(&raw);
    let lower = msg.to_lowercase();
    if lower.contains("budget breached") {
        let (what, hint) = if lower.contains("depth") {
            (
                format!("is nested deeper than {MAX_DEPTH} levels"),
                "flatten it; playbooks nest less than 10 levels",
            )
        } else if lower.contains("alias") {
            (
                "uses too many aliases".to_string(),
                "anchors that multiply (a \"billion laughs\") are refused",
            )
        } else if lower.contains("node") || lower.contains("event") {
            (
                format!("holds more than {MAX_NODES} nodes once aliases are expanded"),
                "anchors that multiply (a \"billion laughs\") are refused",
            )
        } else {
            (
                "is larger than drill accepts".to_string(),
                "drill documents are a page or two",
            )
        };
        return Diag::error(loc, format!("invalid YAML: the document {what}")).with_hint(hint);
    }
    let mut d = Diag::error(loc, format!("invalid YAML: {msg}"));
    if lower.contains("duplicate") {
        d = d.with_hint("each key may appear once in a mapping; remove or rename one");
    } else if lower.contains("tabs") {
        d = d.with_hint("indent with spaces; YAML does not allow tabs for indentation");
    } else if lower.contains("recursion") || lower.contains("depth") || lower.contains("nesting") {
        d = d.with_hint(format!(
            "drill accepts at most {MAX_DEPTH} levels of nesting"
        ));
    }
    d
}

fn strip_location_suffix(msg: &str) -> String {
    let mut m = msg
        .trim()
        .replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    if let Some(i) = m.rfind(" at line ")
        && m[i..].contains("column")
    {
        m.truncate(i);
    }
    m
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Kind>::deserialize(d)?;
        let line = u32::try_from(s.referenced.line()).unwrap_or(u32::MAX);
        let col = u32::try_from(s.referenced.column()).unwrap_or(u32::MAX);
        Ok(Node {
            kind: s.value,
            loc: Loc::new(0, line, col),
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Kind, E> {
        Ok(Kind::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let v = map.next_value::<Node>()?;
            entries.push((k, v));
        }
        Ok(Kind::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_their_line_and_column() {
        let docs = parse_yaml("a: 1\nb:\n  - x\n  - {c: true}\n", 0).expect("valid");
        let root = &docs[0];
        let b = root.get("b").expect("b");
        let Kind::Seq(items) = &b.kind else {
            panic!("seq")
        };
        assert_eq!((items[0].loc.line, items[0].loc.col), (3, 5));
        let c = items[1].get("c").expect("c");
        assert_eq!((c.loc.line, c.loc.col), (4, 9));
        assert_eq!(c.kind, Kind::Bool(true));
        let (k, _) = root.entry("b").expect("b");
        assert_eq!((k.loc.line, k.loc.col), (2, 1));
    }

    #[test]
    fn duplicate_keys_are_rejected_with_their_location() {
        let e = parse_yaml("a: 1\nb: 2\na: 3\n", 0).expect_err("dup");
        assert_eq!((e.loc.line, e.loc.col), (3, 1), "{e:?}");
        assert!(e.message.contains("duplicate"), "{e:?}");
    }
}
