//! The policy file: loading, parsing, and per-tenant rules.
//!
//! Parsing reads the text more than once. First only the shape (sections,
//! tables and keys, with their byte spans) to find unknown sections and
//! rules and bad tenant names and say on which line. The second deserializes the typed
//! [`Rules`]; its errors carry a span, which the first pass's spans turn
//! into the rule and table it belongs to.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use crate::model::{RULE_NAMES, Rules};
use crate::tenant::validate_tenant;

/// A policy that cannot be used, in one line:
/// `policy /etc/atoll/policy.toml line 7: unknown rule "privilaged" in [tenants.acme]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {source_name}{}: {message}", .line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct PolicyError {
    pub source_name: String,
    /// 1-based line the problem is on, when known.
    pub line: Option<usize>,
    pub message: String,
}

/// Tenant policy: rules for every tenant, and tables that override them
/// for named tenants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    source: String,
    defaults: Rules,
    tenants: BTreeMap<String, Rules>,
}

/// First pass: the file's shape, every key and value with its span.
type KeySpans = BTreeMap<Spanned<String>, Spanned<Shape>>;

/// A value's shape: a list keeps its elements and their spans, so an
/// error about one element can point at that element's line.
enum Shape {
    List(Vec<Spanned<toml::Value>>),
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Shape, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Shape::List(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Shape, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shape::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The span of the first element of `rule`'s list that is invalid on its
/// own: serde reports a bad element at the whole list.
fn bad_element(rule: &str, items: &[Spanned<toml::Value>]) -> Option<Range<usize>> {
    items.iter().find_map(|item| {
        let mut t = toml::Table::new();
        t.insert(
            rule.to_string(),
            toml::Value::Array(vec![item.get_ref().clone()]),
        );
        toml::Value::Table(t)
            .try_into::<Rules>()
            .is_err()
            .then(|| item.span())
    })
}

#[derive(Deserialize)]
struct Outline {
    defaults: Option<KeySpans>,
    tenants: Option<BTreeMap<Spanned<String>, KeySpans>>,
}

/// Second pass: the typed rules.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    defaults: Rules,
    #[serde(default)]
    tenants: BTreeMap<String, Rules>,
}

impl Policy {
    /// Reads and parses a policy file.
    pub fn load(path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            source_name: source.clone(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Policy::parse(&text, &source)
    }

    /// Parses policy text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
        let err = |span: Option<Range<usize>>, message: String| PolicyError {
            source_name: source_name.to_string(),
            line: span.map(|s| line_of(text, s.start)),
            message,
        };

        let toml_err = |e: toml::de::Error| err(e.span(), one_line(e.message()));
        let top: BTreeMap<Spanned<String>, IgnoredAny> = toml::from_str(text).map_err(toml_err)?;
        if let Some(k) = top
            .keys()
            .filter(|k| !["defaults", "tenants"].contains(&k.get_ref().as_str()))
            .min_by_key(|k| k.span().start)
        {
            let message = format!(
                "unknown section {:?} (expected [defaults] or [tenants.<name>])",
                k.get_ref()
            );
            return Err(err(Some(k.span()), message));
        }
        let outline: Outline = toml::from_str(text).map_err(toml_err)?;
        let mut tables: Vec<(String, &KeySpans)> = Vec::new();
        let mut problems: Vec<(Range<usize>, String)> = Vec::new();
        if let Some(d) = &outline.defaults {
            tables.push(("[defaults]".to_string(), d));
        }
        for (name, keys) in outline.tenants.iter().flatten() {
            if let Err(e) = validate_tenant(name.get_ref()) {
                problems.push((name.span(), e.to_string()));
            }
            tables.push((format!("[tenants.{}]", name.get_ref()), keys));
        }
        for (table, keys) in &tables {
            for key in keys.keys() {
                let k = key.get_ref();
                if !RULE_NAMES.contains(&k.as_str()) {
                    problems.push((key.span(), unknown_rule(k, table)));
                }
            }
        }
        if let Some((span, message)) = problems.into_iter().min_by_key(|(s, _)| s.start) {
            return Err(err(Some(span), message));
        }

        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let message = one_line(e.message());
            let mut span = e.span();
            let place = span.clone().and_then(|span| {
                tables.iter().find_map(|(table, keys)| {
                    keys.iter()
                        .find(|(k, v)| contains(&k.span(), &span) || contains(&v.span(), &span))
                        .map(|(k, v)| (k.get_ref(), table, v.get_ref()))
                })
            });
            let message = match place {
                Some((rule, table, shape)) => {
                    if let Shape::List(items) = shape {
                        span = bad_element(rule, items).or(span);
                    }
                    format!("invalid value for rule {rule} in {table}: {message}")
                }
                None => message,
            };
            err(span, message)
        })?;
        Ok(Policy {
            source: source_name.to_string(),
            defaults: file.defaults,
            tenants: file.tenants,
        })
    }

    /// Where the policy came from (a path, or the name given to `parse`).
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn defaults(&self) -> &Rules {
        &self.defaults
    }

    /// The tenant's own table, without the defaults.
    pub fn tenant_table(&self, tenant: &str) -> Option<&Rules> {
        self.tenants.get(tenant)
    }

    /// Tenants that have a table, in name order.
    pub fn tenants(&self) -> impl Iterator<Item = &str> {
        self.tenants.keys().map(String::as_str)
    }

    /// The rules that apply to a tenant: its table over the defaults.
    pub fn rules_for(&self, tenant: &str) -> Rules {
        match self.tenants.get(tenant) {
            Some(own) => self.defaults.overlay(own),
            None => self.defaults.clone(),
        }
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.start < outer.end.max(outer.start + 1)
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn unknown_rule(name: &str, table: &str) -> String {
    let mut m = format!("unknown rule {name:?} in {table}");
    let nearest = RULE_NAMES
        .iter()
        .map(|r| (edit_distance(name, r), *r))
        .min();
    if let Some((d, r)) = nearest
        && d <= 2.max(name.len() / 4)
    {
        m.push_str(&format!(" (did you mean {r:?}?)"));
    }
    m
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
