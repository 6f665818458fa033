//! Decoding node trees into typed documents, collecting every error rather than the first.
//! (Long because it is one serde `Deserializer` over `Node`s: the trait needs every method.)
//!
//! serde stops at the first error inside a derived `Deserialize`. To report all of them, the
//! decoder runs again after each error with the offending node *poisoned*: a poisoned mapping
//! entry or list item is skipped, as if it were absent. A required field that goes missing
//! that way fails its parent silently, which is then poisoned in turn. Each pass removes at
//! least one node, so the loop ends; documents are small, so the passes are cheap.
//!
//! Every error carries the path and location of the innermost node being decoded when it
//! happened. The final pass also records where every decoded path sits in the file
//! ([`LocMap`]), so semantic validation can point at nodes too.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};

use crate::diag::{Diag, Loc, did_you_mean, one_of};
use crate::node::{Kind, Node};

/// One step in a path from the document root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a path as `traffic.requests[0].path`.
pub fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    s
}

/// Where each decoded path sits in its file.
#[derive(Debug, Clone, Default)]
pub struct LocMap {
    map: BTreeMap<String, Loc>,
    root: Loc,
}

impl LocMap {
    /// The location of `path`, or of its nearest ancestor that was written in the file
    /// (a defaulted field points at the mapping that would hold it).
    pub fn at(&self, path: &str) -> Loc {
        let mut p = path;
        loop {
            if let Some(l) = self.map.get(p) {
                return *l;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.root,
            }
        }
    }

    /// True when `path` itself was written in the file.
    pub fn has(&self, path: &str) -> bool {
        self.map.contains_key(path)
    }
}

/// The result of decoding one document.
#[derive(Debug)]
pub struct Decoded<T> {
    /// The value, when there was no error.
    pub value: Option<T>,
    pub diags: Vec<Diag>,
    pub locs: LocMap,
}

/// Decodes `node` into `T`, reporting every error found.
pub fn decode<T: DeserializeOwned>(node: &Node) -> Decoded<T> {
    decode_skipping(node, &[])
}

/// Decodes `node` into `T` as if the nodes at `skip` were absent. Used for drill documents
/// checked on their own, where required parameters have no value yet.
pub fn decode_skipping<T: DeserializeOwned>(node: &Node, skip: &[Vec<Seg>]) -> Decoded<T> {
    let mut poisoned: HashSet<Vec<Seg>> = skip.iter().cloned().collect();
    let mut diags: Vec<Diag> = Vec::new();
    // Each pass poisons one more node; a tree has finitely many, and this bounds it anyway.
    for _ in 0..10_000 {
        let cx = Cx {
            poisoned: &poisoned,
            locs: RefCell::new(BTreeMap::new()),
        };
        let result = T::deserialize(NodeDe::new(node, Vec::new(), &cx));
        let locs = LocMap {
            map: cx.locs.into_inner(),
            root: node.loc,
        };
        match result {
            Ok(v) => {
                let value = diags.is_empty().then_some(v);
                return Decoded { value, diags, locs };
            }
            Err(e) => {
                let (path, loc) = e.at.unwrap_or_else(|| (Vec::new(), node.loc));
                if !e.silent {
                    let mut d = Diag::error(loc, e.msg);
                    d.hint = e.hint;
                    if !diags.contains(&d) {
                        diags.push(d);
                    }
                }
                if path.is_empty() || !poisoned.insert(path) {
                    return Decoded {
                        value: None,
                        diags,
                        locs,
                    };
                }
            }
        }
    }
    Decoded {
        value: None,
        diags,
        locs: LocMap::default(),
    }
}

struct Cx<'p> {
    poisoned: &'p HashSet<Vec<Seg>>,
    locs: RefCell<BTreeMap<String, Loc>>,
}

/// A decoding error, located at the innermost node being decoded.
#[derive(Debug)]
pub struct DeError {
    msg: String,
    hint: Option<String>,
    at: Option<(Vec<Seg>, Loc)>,
    /// Already reported: a consequence of skipping a poisoned node.
    silent: bool,
    missing: bool,
}

impl DeError {
    fn new(msg: String) -> Self {
        Self {
            msg,
            hint: None,
            at: None,
            silent: false,
            missing: false,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        if let Some(h) = &self.hint {
            write!(f, ", {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new(format!(
            "expected {}, found {}",
            expected(exp),
            describe(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new(format!(
            "invalid value {}, expected {}",
            describe(&unexp),
            expected(exp)
        ))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::new(format!("unknown value \"{variant}\""));
        e.hint = Some(match did_you_mean(variant, expected.iter().copied()) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => format!("expected {}", one_of(expected)),
        });
        e
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::new(format!("unknown field \"{field}\""));
        e.hint = Some(match did_you_mean(field, expected.iter().copied()) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => format!("expected {}", one_of(expected)),
        });
        e
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = Self::new(format!("missing required field \"{field}\""));
        e.missing = true;
        e
    }
}

/// serde names primitive types the Rust way; users read YAML.
fn expected(exp: &dyn de::Expected) -> String {
    let s = exp.to_string();
    match s.as_str() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a sequence" => "a list".into(),
        _ if s.starts_with("struct ") || s.starts_with("a map") => "a mapping".into(),
        _ => s,
    }
}

fn describe(u: &Unexpected<'_>) -> String {
    match u {
        Unexpected::Str(s) => format!("the string \"{s}\""),
        Unexpected::Signed(i) => format!("the number {i}"),
        Unexpected::Unsigned(i) => format!("the number {i}"),
        Unexpected::Float(f) => format!("the number {f}"),
        Unexpected::Bool(b) => format!("the boolean {b}"),
        Unexpected::Unit => "nothing (null)".to_string(),
        Unexpected::Seq => "a list".to_string(),
        Unexpected::Map => "a mapping".to_string(),
        other => other.to_string(),
    }
}

fn unexpected(node: &Node) -> Unexpected<'_> {
    match &node.kind {
        Kind::Null => Unexpected::Unit,
        Kind::Bool(b) => Unexpected::Bool(*b),
        Kind::Int(i) => Unexpected::Signed(*i),
        Kind::Float(f) => Unexpected::Float(*f),
        Kind::Str(s) => Unexpected::Str(s),
        Kind::Seq(_) => Unexpected::Seq,
        Kind::Map(_) => Unexpected::Map,
    }
}

struct NodeDe<'a, 'p> {
    node: &'a Node,
    path: Vec<Seg>,
    cx: &'a Cx<'p>,
}

impl<'a, 'p> NodeDe<'a, 'p> {
    fn new(node: &'a Node, path: Vec<Seg>, cx: &'a Cx<'p>) -> Self {
        cx.locs.borrow_mut().insert(path_string(&path), node.loc);
        Self { node, path, cx }
    }

    fn here(&self, mut e: DeError) -> DeError {
        if e.at.is_none() {
            e.at = Some((self.path.clone(), self.node.loc));
        }
        e
    }

    fn wrong_type(&self, exp: &dyn de::Expected) -> DeError {
        self.here(de::Error::invalid_type(unexpected(self.node), exp))
    }

    fn int(&self) -> Option<i64> {
        match &self.node.kind {
            Kind::Int(i) => Some(*i),
            Kind::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            Kind::Str(s) => s.trim().replace('_', "").parse().ok(),
            _ => None,
        }
    }

    fn float(&self) -> Option<f64> {
        match &self.node.kind {
            Kind::Int(i) => Some(*i as f64),
            Kind::Float(f) => Some(*f),
            Kind::Str(s) => s.trim().replace('_', "").parse().ok(),
            _ => None,
        }
    }

    fn map_access(&self) -> Option<MapAcc<'a, 'p>> {
        match &self.node.kind {
            Kind::Map(entries) => Some(MapAcc {
                entries,
                idx: 0,
                path: self.path.clone(),
                cx: self.cx,
                value: None,
                skipped: Cell::new(false),
            }),
            _ => None,
        }
    }

    fn visit_map<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let Some(mut acc) = self.map_access() else {
            return Err(self.wrong_type(&visitor));
        };
        match visitor.visit_map(&mut acc) {
            Ok(v) => Ok(v),
            Err(mut e) => {
                if e.missing && acc.skipped.get() {
                    e.silent = true;
                }
                Err(self.here(e))
            }
        }
    }

    fn visit_seq<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let Kind::Seq(items) = &self.node.kind else {
            return Err(self.wrong_type(&visitor));
        };
        let mut acc = SeqAcc {
            items,
            idx: 0,
            path: self.path.clone(),
            cx: self.cx,
        };
        let r = visitor.visit_seq(&mut acc);
        r.map_err(|e| self.here(e))
    }
}

macro_rules! ints {
    ($($m:ident)*) => {$(
        fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.int() {
                Some(i) => visitor.visit_i64(i).map_err(|e| self.here(e)),
                None => Err(self.wrong_type(&visitor)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Bool(b) => visitor.visit_bool(*b),
            Kind::Int(i) => visitor.visit_i64(*i),
            Kind::Float(f) => visitor.visit_f64(*f),
            Kind::Str(s) => visitor.visit_str(s),
            Kind::Seq(_) => return self.visit_seq(visitor),
            Kind::Map(_) => return self.visit_map(visitor),
        };
        r.map_err(|e| self.here(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = match &self.node.kind {
            Kind::Bool(b) => *b,
            Kind::Str(s) if s == "true" => true,
            Kind::Str(s) if s == "false" => false,
            _ => return Err(self.wrong_type(&visitor)),
        };
        visitor.visit_bool(b).map_err(|e| self.here(e))
    }

    ints!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_u8
          deserialize_u16 deserialize_u32 deserialize_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.float() {
            Some(f) => visitor.visit_f64(f).map_err(|e| self.here(e)),
            None => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Str(s) => visitor.visit_str(s),
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => {
                visitor.visit_string(self.node.scalar_text().unwrap_or_default())
            }
            _ => return Err(self.wrong_type(&visitor)),
        };
        r.map_err(|e| self.here(e))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            Kind::Null => visitor.visit_none().map_err(|e| self.here(e)),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            Kind::Null => visitor.visit_unit().map_err(|e| self.here(e)),
            _ => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.visit_seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.visit_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.visit_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.visit_map(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.visit_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let acc = match &self.node.kind {
            Kind::Str(s) => EnumAcc {
                variant: s.clone(),
                key_loc: self.node.loc,
                value: None,
                de: &self,
            },
            Kind::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                let Some(name) = k.scalar_text() else {
                    return Err(self.here(DeError::new("expected a name as the key".into())));
                };
                EnumAcc {
                    variant: name,
                    key_loc: k.loc,
                    value: Some(v),
                    de: &self,
                }
            }
            _ => {
                let mut e = DeError::new(format!(
                    "expected exactly one of {}, found {}",
                    one_of(variants),
                    describe_shape(self.node)
                ));
                e.hint = Some("write it as `name` or `name: {options}`".into());
                return Err(self.here(e));
            }
        };
        let r = visitor.visit_enum(acc);
        r.map_err(|e| self.here(e))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

fn describe_shape(node: &Node) -> String {
    match &node.kind {
        Kind::Map(entries) if entries.is_empty() => "an empty mapping".into(),
        Kind::Map(entries) => {
            let keys: Vec<String> = entries
                .iter()
                .filter_map(|(k, _)| k.scalar_text())
                .collect();
            format!("{} keys ({})", entries.len(), keys.join(", "))
        }
        k => k.describe().into(),
    }
}

struct MapAcc<'a, 'p> {
    entries: &'a [(Node, Node)],
    idx: usize,
    path: Vec<Seg>,
    cx: &'a Cx<'p>,
    value: Option<(&'a Node, Vec<Seg>)>,
    skipped: Cell<bool>,
}

impl<'de> de::MapAccess<'de> for MapAcc<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        while let Some((k, v)) = self.entries.get(self.idx) {
            self.idx += 1;
            let Some(name) = k.scalar_text() else {
                let mut at = self.path.clone();
                at.push(Seg::Index(self.idx - 1));
                let mut e = DeError::new(format!(
                    "a key must be a plain name, found {}",
                    k.kind.describe()
                ));
                e.at = Some((at, k.loc));
                return Err(e);
            };
            let mut path = self.path.clone();
            path.push(Seg::Key(name.clone()));
            if self.cx.poisoned.contains(&path) {
                self.skipped.set(true);
                continue;
            }
            let key = seed
                .deserialize(name.into_deserializer())
                .map_err(|mut e: DeError| {
                    e.at = Some((path.clone(), k.loc));
                    e
                })?;
            self.value = Some((v, path));
            return Ok(Some(key));
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        let Some((node, path)) = self.value.take() else {
            return Err(DeError::new("internal: value requested before key".into()));
        };
        seed.deserialize(NodeDe::new(node, path, self.cx))
    }
}

struct SeqAcc<'a, 'p> {
    items: &'a [Node],
    idx: usize,
    path: Vec<Seg>,
    cx: &'a Cx<'p>,
}

impl<'de> de::SeqAccess<'de> for SeqAcc<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        while let Some(item) = self.items.get(self.idx) {
            let mut path = self.path.clone();
            path.push(Seg::Index(self.idx));
            self.idx += 1;
            if self.cx.poisoned.contains(&path) {
                continue;
            }
            return seed.deserialize(NodeDe::new(item, path, self.cx)).map(Some);
        }
        Ok(None)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len().saturating_sub(self.idx))
    }
}

struct EnumAcc<'a, 'b, 'p> {
    variant: String,
    key_loc: Loc,
    value: Option<&'a Node>,
    de: &'b NodeDe<'a, 'p>,
}

impl<'de, 'a, 'b, 'p> de::EnumAccess<'de> for EnumAcc<'a, 'b, 'p> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let v = seed
            .deserialize(self.variant.clone().into_deserializer())
            .map_err(|mut e: DeError| {
                e.at = Some((self.de.path.clone(), self.key_loc));
                e
            })?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumAcc<'_, '_, '_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            None => Ok(()),
            Some(n) if n.kind == Kind::Null => Ok(()),
            Some(n) => {
                let mut e = DeError::new(format!(
                    "\"{}\" takes no options, found {}",
                    self.variant,
                    n.kind.describe()
                ));
                e.at = Some((self.de.path.clone(), n.loc));
                Err(e)
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let node = self.value_node()?;
        seed.deserialize(NodeDe::new(node, self.child_path(), self.de.cx))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        let node = self.value_node()?;
        de::Deserializer::deserialize_seq(NodeDe::new(node, self.child_path(), self.de.cx), visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let node = self.value_node()?;
        de::Deserializer::deserialize_struct(
            NodeDe::new(node, self.child_path(), self.de.cx),
            "",
            fields,
            visitor,
        )
    }
}

impl<'a> EnumAcc<'a, '_, '_> {
    fn value_node(&self) -> Result<&'a Node, DeError> {
        self.value.ok_or_else(|| {
            let mut e = DeError::new(format!("\"{}\" needs options", self.variant));
            e.hint = Some(format!("write `{}: {{...}}`", self.variant));
            e.at = Some((self.de.path.clone(), self.key_loc));
            e
        })
    }

    fn child_path(&self) -> Vec<Seg> {
        let mut p = self.de.path.clone();
        p.push(Seg::Key(self.variant.clone()));
        p
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::node::parse_yaml;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        ramp_to: u32,
        over: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        stages: Vec<Inner>,
        count: u32,
    }

    #[test]
    fn every_error_is_reported_with_its_location() {
        let yaml = "name: x\nstages:\n  - {ramp_too: 3}\n  - {ramp_to: nope}\n  - {ramp_to: 4, over: 1m}\ncount: -1\n";
        let node = &parse_yaml(yaml, 0).expect("yaml")[0];
        let d = decode::<Outer>(node);
        assert!(d.value.is_none());
        let got: Vec<String> = d.diags.iter().map(|d| format!("{}", d)).collect();
        assert_eq!(
            got,
            vec![
                "3:6: unknown field \"ramp_too\", did you mean \"ramp_to\"?",
                "4:15: expected a whole number (0 or more), found the string \"nope\"",
                "6:8: invalid value the number -1, expected a whole number (0 or more)",
            ]
        );
    }

    #[test]
    fn locations_of_decoded_paths_are_kept() {
        let node = &parse_yaml("name: x\nstages:\n  - ramp_to: 3\ncount: 2\n", 0).expect("yaml")[0];
        let d = decode::<Outer>(node);
        assert!(d.value.is_some(), "{:?}", d.diags);
        assert_eq!(d.locs.at("stages[0].ramp_to"), Loc::new(0, 3, 14));
        assert_eq!(d.locs.at("stages[0].over"), Loc::new(0, 3, 5));
    }
}
