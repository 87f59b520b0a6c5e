//! `resource:` references: files under the resources folder (SOQL, schemas), so a query can change
//! without touching its flow.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// `{resource: salesforce/query_account.soql}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    pub resource: String,
}

impl ResourceRef {
    /// The file this names under `resources_dir`. Absolute paths and `..` are refused, so a flow can
    /// only read what the resources folder holds.
    pub fn path_in(&self, resources_dir: &Path) -> Result<PathBuf, String> {
        let rel = Path::new(&self.resource);
        if self.resource.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(format!(
                "resource `{}` must be a relative path inside the resources folder (no `/` at the start, no `..`)",
                self.resource
            ));
        }
        Ok(resources_dir.join(rel))
    }
}

/// A value that is either written inline or read from a resource file (the seed's `query:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceOrInline {
    Resource(ResourceRef),
    Inline(String),
}

impl<'de> Deserialize<'de> for ResourceOrInline {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ResourceOrInline;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, or a map with `resource: PATH`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ResourceOrInline::Inline(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ResourceRef::deserialize(de::value::MapAccessDeserializer::new(map)).map(ResourceOrInline::Resource)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_stay_inside_their_folder() {
        let r = |p: &str| ResourceRef { resource: p.into() }.path_in(Path::new("/res"));
        assert_eq!(r("salesforce/a.soql").unwrap(), PathBuf::from("/res/salesforce/a.soql"));
        assert!(r("/etc/passwd").is_err());
        assert!(r("../secret").is_err());
        assert!(r("").is_err());
    }
}
