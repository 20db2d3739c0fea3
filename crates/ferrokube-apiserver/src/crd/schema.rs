//! The one place the CRD code meets `ferrokube-schema`: a version's
//! `openAPIV3Schema` parsed once, and what it does to objects.

use std::fmt;

use ferrokube_api::status::FieldError;
use serde_json::Value;

/// A version's structural schema.
pub(crate) struct Schema {
    inner: ferrokube_schema::Structural,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Parses `schema` (an `openAPIV3Schema`); errors are reported under
    /// `base_path` (`spec.validation.openAPIV3Schema`, or a version's).
    pub(crate) fn parse(schema: &Value, base_path: &str) -> Result<Schema, Vec<FieldError>> {
        ferrokube_schema::Structural::parse(schema, base_path).map(|inner| Schema { inner })
    }

    /// The errors of `obj` (`old`: the stored object, on update) as
    /// Kubernetes checks a custom resource's content: the schema (ratcheted
    /// on update), embedded resources, list types, then the
    /// `x-kubernetes-validations` rules.
    pub(crate) fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        self.inner.validate_all(obj, old)
    }

    /// Drops the fields the schema does not know; returns their paths.
    pub(crate) fn prune(&self, obj: &mut Value) -> Vec<String> {
        self.inner.prune(obj)
    }

    /// Fills in the schema's defaults.
    pub(crate) fn apply_defaults(&self, obj: &mut Value) {
        self.inner.apply_defaults(obj)
    }
}

impl crate::strategy::ApplyShapes for Schema {
    fn list_type(&self, path: &[&str]) -> Option<ferrokube_schema::ListType> {
        self.inner.list_type_at(path)
    }

    fn map_type(&self, path: &[&str]) -> Option<ferrokube_schema::MapType> {
        self.inner.map_type_at(path)
    }

    fn embedded(&self, path: &[&str]) -> bool {
        self.inner.embedded_at(path)
    }
}
