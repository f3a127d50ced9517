//! Reading FHIR JSON: [`At`], a cursor over a resource that knows its path for errors, and the
//! small writers every mapper shares (numbers that round-trip, resource skeletons).
//!
//! Absent keys and JSON `null` read as "not there"; a value of the wrong JSON type is an
//! [`Error::Fhir`] at its path, so the first malformed element is what the caller hears about.

use serde_json::{Map, Number, Value, json};

use phr_model::error::{Error, Result};

use crate::Fields;
use crate::date::*;

pub(crate) fn fhir_error(path: impl Into<String>, problem: impl Into<String>) -> Error {
    Error::Fhir {
        path: path.into(),
        problem: problem.into(),
    }
}

pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A place in the resource being read: the value there, if any, and its path for errors.
///
/// Absent keys and JSON `null` read as "not there"; a value of the wrong JSON type is an
/// error at its path, so the first malformed element is what the caller hears about.
#[derive(Clone, Debug)]
pub(crate) struct At<'a> {
    pub(crate) value: Option<&'a Value>,
    pub(crate) path: Path,
}

/// Where an element is: a chain of steps from a starting point, spelled out only when an
/// error names it (a bundle has tens of thousands of elements, and almost none are errors).
#[derive(Clone, Debug)]
pub(crate) struct Path(std::rc::Rc<Step>);

#[derive(Debug)]
pub(crate) enum Step {
    Start(String),
    Key(Path, &'static str),
    Index(Path, usize),
}

impl Path {
    pub(crate) fn new(start: impl Into<String>) -> Path {
        Path(std::rc::Rc::new(Step::Start(start.into())))
    }

    pub(crate) fn key(&self, key: &'static str) -> Path {
        Path(std::rc::Rc::new(Step::Key(self.clone(), key)))
    }

    pub(crate) fn index(&self, i: usize) -> Path {
        Path(std::rc::Rc::new(Step::Index(self.clone(), i)))
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Step::Start(s) => f.write_str(s),
            Step::Key(parent, key) if parent.is_empty() => f.write_str(key),
            Step::Key(parent, key) => write!(f, "{parent}.{key}"),
            Step::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

impl Path {
    pub(crate) fn is_empty(&self) -> bool {
        matches!(&*self.0, Step::Start(s) if s.is_empty())
    }
}

impl<'a> At<'a> {
    pub(crate) fn fail(&self, problem: impl Into<String>) -> Error {
        fhir_error(self.path.to_string(), problem)
    }

    pub(crate) fn present(&self) -> bool {
        self.value.is_some()
    }

    pub(crate) fn get(&self, key: &'static str) -> Result<At<'a>> {
        let path = self.path.key(key);
        match self.value {
            None => Ok(At { value: None, path }),
            Some(Value::Object(map)) => Ok(At {
                value: map.get(key).filter(|v| !v.is_null()),
                path,
            }),
            Some(other) => Err(self.fail(format!("must be an object, not {}", describe(other)))),
        }
    }

    pub(crate) fn items(&self) -> Result<Vec<At<'a>>> {
        match self.value {
            None => Ok(Vec::new()),
            Some(Value::Array(list)) => Ok(list
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_null())
                .map(|(i, v)| At {
                    value: Some(v),
                    path: self.path.index(i),
                })
                .collect()),
            Some(other) => Err(self.fail(format!("must be an array, not {}", describe(other)))),
        }
    }

    /// The items of an array here, or the one object here: for an element R4 defines as a
    /// single value (`Composition.identifier`) that other resources hold as an array.
    pub(crate) fn items_or_one(&self) -> Result<Vec<At<'a>>> {
        match self.value {
            Some(Value::Object(_)) => Ok(vec![self.clone()]),
            _ => self.items(),
        }
    }

    pub(crate) fn str(&self) -> Result<Option<&'a str>> {
        match self.value {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.fail(format!("must be a string, not {}", describe(other)))),
        }
    }

    /// The string here, trimmed; blank counts as absent (FHIR forbids empty strings anyway).
    pub(crate) fn text(&self) -> Result<Option<String>> {
        Ok(self.str()?.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string))
    }

    pub(crate) fn number(&self) -> Result<Option<&'a Number>> {
        match self.value {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n)),
            Some(other) => Err(self.fail(format!("must be a number, not {}", describe(other)))),
        }
    }

    pub(crate) fn float(&self) -> Result<Option<f64>> {
        match self.number()? {
            None => Ok(None),
            Some(n) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| self.fail(format!("`{n}` is not a usable number"))),
        }
    }

    pub(crate) fn boolean(&self) -> Result<Option<bool>> {
        match self.value {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.fail(format!("must be true or false, not {}", describe(other)))),
        }
    }
}

/// Check `resourceType` against the expected ones; the resource's root and its type.
pub(crate) fn resource<'a>(res: &'a Value, expected: &[&'static str]) -> Result<(At<'a>, &'static str)> {
    let want = expected.join(" or ");
    let Value::Object(map) = res else {
        return Err(fhir_error(
            "resourceType",
            format!("the body is {}, not a FHIR resource; expected {want}", describe(res)),
        ));
    };
    match map.get("resourceType") {
        None | Some(Value::Null) => Err(fhir_error("resourceType", format!("is missing; expected {want}"))),
        Some(Value::String(found)) => match expected.iter().find(|e| **e == found) {
            Some(ty) => Ok((
                At {
                    value: Some(res),
                    path: Path::new(*ty),
                },
                ty,
            )),
            None => Err(fhir_error("resourceType", format!("is `{found}`; expected {want}"))),
        },
        Some(other) => Err(fhir_error(
            "resourceType",
            format!("must be a string, not {}; expected {want}", describe(other)),
        )),
    }
}

/// A JSON number for `x`: whole values as integers, so `45.0` minutes goes out as `45`.
pub(crate) fn json_number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// A JSON number that prints back exactly as `s`, so a value round-trips as the same text.
pub(crate) fn exact_number(s: &str) -> Option<Number> {
    if let Ok(i) = s.parse::<i64>() {
        let n = Number::from(i);
        if n.to_string() == s {
            return Some(n);
        }
    }
    let n = Number::from_f64(s.parse().ok()?)?;
    (n.to_string() == s).then_some(n)
}

pub(crate) fn split_comparator(value: &str) -> (&str, &str) {
    for c in ["<=", ">=", "<", ">"] {
        if let Some(rest) = value.strip_prefix(c) {
            return (c, rest);
        }
    }
    ("", value)
}

pub(crate) fn fmt_number(x: f64) -> String {
    match json_number(x) {
        Value::Number(n) => n.to_string(),
        _ => x.to_string(),
    }
}

pub(crate) fn text_field<'a>(fields: &'a Fields, key: &str) -> Option<&'a str> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A resource skeleton: type, id, and `meta.lastUpdated` from the entry's `updated` stamp.
pub(crate) fn base(ty: &str, id: &str, fields: &Fields) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("resourceType".into(), ty.into());
    if !id.trim().is_empty() {
        r.insert("id".into(), id.trim().into());
    }
    // lastUpdated is an instant, which needs a time and a zone.
    if let Some(updated) =
        text_field(fields, "updated").filter(|u| parse_when(u).is_some_and(|w| w.time.is_some() && w.offset.is_some()))
    {
        r.insert("meta".into(), json!({ "lastUpdated": updated }));
    }
    r
}

pub(crate) fn put(fields: &mut Fields, key: &str, value: Option<String>) {
    if let Some(v) = value {
        fields.insert(key.into(), v.into());
    }
}

pub(crate) fn number_field(fields: &Fields, key: &str) -> Option<f64> {
    fields.get(key).and_then(Value::as_f64)
}
