//! What clients send as JSON objects read from objects and nothing else.
//! serde's derive also reads a struct's fields from an array, by
//! position, so without this `[[["echo", "Team A"]]]` would pass for
//! `{"agents": [{"component": "echo", "name": "Team A"}]}`, and a message
//! part for its members in order. A body or a member meant as an object
//! is read through [`Object`] (or the field readers below), in one pass,
//! with no intermediate copy of its content (a part's `data` can be
//! megabytes of small objects).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// A `T` read from a JSON object only.
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Fields(PhantomData)).map(Object)
    }
}

/// Reads a field that must be an object, for a field marked
/// `#[serde(deserialize_with = "json_object::object")]`.
pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Object::deserialize(d).map(|o| o.0)
}

/// As [`object`], for an optional field (`null` is unset).
pub fn optional_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Object<T>>::deserialize(d).map(|o| o.map(|o| o.0))
}

/// Reads an optional list of objects, for a field marked
/// `#[serde(default, deserialize_with = "json_object::list")]`.
pub fn list<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let objects = Option::<Vec<Object<T>>>::deserialize(d)?;
    Ok(objects.map(|list| list.into_iter().map(|o| o.0).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Slot {
        component: String,
        #[serde(default)]
        name: Option<String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default, deserialize_with = "list")]
        agents: Option<Vec<Slot>>,
    }

    fn read(text: &str) -> Result<Body, String> {
        serde_json::from_str::<Object<Body>>(text)
            .map(|o| o.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn objects_are_read_and_arrays_in_their_place_refused() {
        let body = read(r#"{"agents": [{"component": "echo", "name": "A"}]}"#).unwrap();
        assert_eq!(
            body.agents,
            Some(vec![Slot {
                component: "echo".into(),
                name: Some("A".into())
            }])
        );
        assert_eq!(read("{}").unwrap().agents, None);
        assert_eq!(read(r#"{"agents": null}"#).unwrap().agents, None);
        // By position, these would be read as the body above.
        for positional in [r#"[[["echo", "A"]]]"#, r#"{"agents": [["echo", "A"]]}"#] {
            let e = read(positional).unwrap_err();
            assert!(
                e.contains("invalid type: sequence, expected an object"),
                "{positional}: {e}"
            );
        }
        let e = read(r#"{"agents": ["echo"]}"#).unwrap_err();
        assert!(e.contains("expected an object"), "{e}");
        // What the fields' own rules refuse still is, with its place.
        let e = read(r#"{"agents": [{"component": "echo", "x": 1}]}"#).unwrap_err();
        assert!(
            e.contains("unknown field `x`") && e.contains("column"),
            "{e}"
        );
    }
}
