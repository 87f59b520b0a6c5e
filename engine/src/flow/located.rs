//! A config value that remembers where it was written, for checks that run after decoding (resource
//! files, scripts, environment variables) and still need to point at the right line.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use super::de::{LOCATED, LOCATED_FIELDS};
use super::diagnostic::Mark;

#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub mark: Mark,
    /// The dotted key path, e.g. `flow.tasks[1].script.code`.
    pub path: String,
    pub value: T,
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Located<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value in a flow file")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located<T>, A::Error> {
                let mut line = 0u64;
                let mut column = 0u64;
                let mut path = String::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "$__line" => line = map.next_value()?,
                        "$__column" => column = map.next_value()?,
                        "$__path" => path = map.next_value()?,
                        _ => {
                            let value = map.next_value()?;
                            let mark = Mark { line: line as usize, column: column as usize };
                            return Ok(Located { mark, path, value });
                        }
                    }
                }
                Err(de::Error::custom("a located value must be read from a flow file"))
            }
        }
        deserializer.deserialize_struct(LOCATED, LOCATED_FIELDS, V(PhantomData))
    }
}
