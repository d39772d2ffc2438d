//! JSON read with object keys in the order the client wrote them. `serde_json::Value` sorts
//! keys, but the QueryBuilder dialect gives meaning to their order (`order_by` entries, the
//! `project` tags), as Python dicts do.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The key serde_json uses to pass a number's text through a map when `arbitrary_precision`
/// is on.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";
/// Objects with this many keys look up repeated keys in a hash map.
const INDEX_FROM: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum OValue {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<OValue>),
    /// Keys in document order; a repeated key keeps its last value (at its first position),
    /// as Python's `json.loads` does.
    Object(Vec<(String, OValue)>),
}

impl OValue {
    pub fn parse(bytes: &[u8]) -> Result<OValue, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The JSON type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            OValue::Null => "null",
            OValue::Bool(_) => "a boolean",
            OValue::Number(_) => "a number",
            OValue::String(_) => "a string",
            OValue::Array(_) => "a list",
            OValue::Object(_) => "an object",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            OValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(String, OValue)]> {
        match self {
            OValue::Object(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, OValue::Null)
    }

    /// The same value with sorted keys, for places where the order does not matter.
    pub fn to_value(&self) -> Value {
        match self {
            OValue::Null => Value::Null,
            OValue::Bool(b) => Value::Bool(*b),
            OValue::Number(n) => Value::Number(n.clone()),
            OValue::String(s) => Value::String(s.clone()),
            OValue::Array(items) => Value::Array(items.iter().map(OValue::to_value).collect()),
            OValue::Object(entries) => {
                Value::Object(entries.iter().map(|(k, v)| (k.clone(), v.to_value())).collect::<Map<_, _>>())
            }
        }
    }

    /// Short text of the value for error messages.
    pub fn show(&self) -> String {
        let text = self.to_value().to_string();
        if text.chars().count() > 80 { format!("{}...", text.chars().take(77).collect::<String>()) } else { text }
    }
}

impl<'de> Deserialize<'de> for OValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OValueVisitor)
    }
}

struct OValueVisitor;

impl<'de> Visitor<'de> for OValueVisitor {
    type Value = OValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<OValue, E> {
        Ok(OValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<OValue, E> {
        Ok(OValue::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<OValue, E> {
        Ok(OValue::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OValue, E> {
        Number::from_f64(v).map(OValue::Number).ok_or_else(|| E::custom("not a finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<OValue, E> {
        Ok(OValue::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<OValue, E> {
        Ok(OValue::String(v))
    }
    fn visit_unit<E>(self) -> Result<OValue, E> {
        Ok(OValue::Null)
    }
    fn visit_none<E>(self) -> Result<OValue, E> {
        Ok(OValue::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(OValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OValue, A::Error> {
        let mut entries: Vec<(String, OValue)> = Vec::new();
        // Positions by key, for objects too large to search for a repeated key one by one
        // (a 4 MiB body can hold hundreds of thousands of keys).
        let mut index: Option<HashMap<String, usize>> = None;
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if first && key == NUMBER_TOKEN {
                let text: String = map.next_value()?;
                let number = text.parse::<Number>().map_err(de::Error::custom)?;
                return Ok(OValue::Number(number));
            }
            first = false;
            let value: OValue = map.next_value()?;
            if index.is_none() && entries.len() >= INDEX_FROM {
                index = Some(entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
            }
            let existing = match &index {
                Some(index) => index.get(&key).copied(),
                None => entries.iter().position(|(k, _)| *k == key),
            };
            match existing {
                Some(i) => entries[i].1 = value,
                None => {
                    if let Some(index) = &mut index {
                        index.insert(key.clone(), entries.len());
                    }
                    entries.push((key, value));
                }
            }
        }
        Ok(OValue::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_numbers() {
        let v = OValue::parse(br#"{"b": 1, "a": [1.5, 100000000000000000000, null, true], "b": "x"}"#).unwrap();
        let OValue::Object(entries) = &v else { panic!() };
        assert_eq!(entries[0], ("b".into(), OValue::String("x".into())));
        assert_eq!(entries[1].0, "a");
        assert_eq!(v.to_value().to_string(), r#"{"a":[1.5,100000000000000000000,null,true],"b":"x"}"#);
    }

    #[test]
    fn repeated_keys_in_large_objects() {
        let mut text = String::from("{");
        for i in 0..100 {
            text.push_str(&format!("\"k{i}\": {i}, "));
        }
        text.push_str("\"k3\": \"again\", \"k99\": \"last\", \"new\": 0}");
        let OValue::Object(entries) = OValue::parse(text.as_bytes()).unwrap() else { panic!() };
        assert_eq!(entries.len(), 101);
        assert_eq!(entries[3], ("k3".into(), OValue::String("again".into())));
        assert_eq!(entries[99], ("k99".into(), OValue::String("last".into())));
        assert_eq!(entries[100].0, "new");
    }

    #[test]
    fn rejects_bad_json() {
        assert!(OValue::parse(b"not-json").is_err());
        assert!(OValue::parse(b"{\"a\": }").is_err());
    }
}
