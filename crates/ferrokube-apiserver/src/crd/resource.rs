//! The strategy of one served version of a custom resource (Kubernetes'
//! `registry/customresource`: `strategy.go`, `validator.go`,
//! `status_strategy.go`, and the `tableconvertor`): unknown fields pruned
//! and reported (so `fieldValidation` Strict/Warn/Ignore work as for
//! built-in kinds), the schema's defaults, metadata, schema, list-type and
//! CEL validation, the status split when `/status` is a subresource, a
//! generation bumped by any change outside metadata, the printer columns,
//! `/scale`, and selectable fields.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokube_api::jsonpath::CustomColumn;
use ferrokube_api::printers::{self, Column};
use ferrokube_api::registry::{intern, ResourceDef};
use ferrokube_api::status::{ApiError, FieldError};
use serde_json::{json, Value};

use super::conversion::Converter;
use super::schema::Schema;
use super::spec::{self, Parts};
use crate::authn::UserInfo;
use crate::strategy::{validate_metadata, ApplyShapes, Checked, ScalePaths, Strategy};

/// The rules of one version of a custom resource. See the module
/// documentation.
#[derive(Debug)]
pub(crate) struct CustomResourceStrategy {
    schema: Option<Arc<Schema>>,
    status: bool,
    scale: Option<ScalePaths>,
    /// The printer columns; `None` when one of their paths does not parse
    /// (Kubernetes then serves the default Table: name and creation time).
    columns: Option<Vec<CustomColumn>>,
    selectable: Vec<String>,
    /// The CRD's conversion between its versions.
    converter: Arc<Converter>,
    /// The CRD is being deleted: no new objects.
    terminating: bool,
}

/// `.spec.replicas` as a JSON pointer (`/spec/replicas`).
fn pointer(json_path: &str) -> String {
    json_path.replace('.', "/")
}

impl CustomResourceStrategy {
    /// The strategy of version `version` of `crd`, converting as
    /// `converter` (the CRD's, shared by its versions).
    pub(crate) fn new(
        crd: &Value,
        version: &str,
        converter: Arc<Converter>,
    ) -> CustomResourceStrategy {
        let parts = Parts::of(crd);
        let first = spec::versions(crd).first();
        let own = spec::version(crd, version);
        let part = |hoisted: bool, key: &str| {
            if hoisted { first } else { own }
                .and_then(|v| v.get(key))
                .filter(|x| !x.is_null())
        };
        let schema = converter.schema(version);
        let subs = part(parts.subresources, "subresources");
        let scale = subs.and_then(|s| s.get("scale")).map(|s| {
            let p = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or_default();
            ScalePaths {
                spec_replicas: pointer(p("specReplicasPath")),
                status_replicas: pointer(p("statusReplicasPath")),
                label_selector: Some(p("labelSelectorPath"))
                    .filter(|l| !l.is_empty())
                    .map(pointer),
            }
        });
        CustomResourceStrategy {
            schema,
            status: subs.is_some_and(|s| s.get("status").is_some_and(|x| !x.is_null())),
            scale,
            columns: printer_columns(part(parts.columns, "additionalPrinterColumns")),
            selectable: own
                .and_then(|v| v.get("selectableFields"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                        .map(|p| p.trim_start_matches('.').to_string())
                        .collect()
                })
                .unwrap_or_default(),
            converter,
            terminating: crd.pointer("/metadata/deletionTimestamp").is_some()
                || super::conditions::is_true(crd, "Terminating"),
        }
    }

    /// Schema, list-type and CEL errors of `obj` (`old` on update), and the
    /// `/scale` replicas' checks.
    fn content_errors(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Some(schema) = &self.schema {
            errs.extend(schema.validate(obj, old));
        }
        if let Some(scale) = &self.scale {
            errs.extend(replicas_errors(obj, &scale.spec_replicas));
            errs.extend(replicas_errors(obj, &scale.status_replicas));
        }
        errs
    }
}

/// `ValidateScaleSpec`/`ValidateScaleStatus`: the replicas, where set, are
/// a non-negative 32-bit integer.
fn replicas_errors(obj: &Value, at: &str) -> Vec<FieldError> {
    let field = at.trim_start_matches('/').replace('/', ".");
    match obj.pointer(at) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(r) if r < 0 => vec![FieldError::invalid(
                field,
                r,
                "should be a non-negative integer",
            )],
            Some(r) if r > i64::from(i32::MAX) => vec![FieldError::invalid(
                field,
                r,
                format!("should be less than or equal to {}", i32::MAX),
            )],
            Some(_) => Vec::new(),
            None => vec![FieldError::invalid(
                field,
                n.clone(),
                format!(
                    ".{} accessor error: {n} is of the type float64, expected int64",
                    at.trim_start_matches('/').replace('/', ".")
                ),
            )],
        },
        Some(other) => vec![FieldError::invalid(
            field.clone(),
            Value::Null,
            format!(
                ".{field} accessor error: {other} is of the type {}, expected int64",
                go_type(other)
            ),
        )],
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        _ => "float64",
    }
}

/// The printer columns, or Kubernetes' one default: `Age`; `None` if a
/// path does not parse.
fn printer_columns(cols: Option<&Value>) -> Option<Vec<CustomColumn>> {
    let defs = cols
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .cloned()
        .unwrap_or_else(|| {
            vec![json!({"name": "Age", "type": "date",
                "jsonPath": ".metadata.creationTimestamp"})]
        });
    defs.iter()
        .map(|d| CustomColumn::from_definition(d).ok())
        .collect()
}

/// The value at a selectable field's simple path (`spec.color`).
fn find<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(obj, |cur, key| cur.get(key))
}

impl Strategy for CustomResourceStrategy {
    fn default(&self, _def: &ResourceDef, obj: &mut Value) {
        if let Some(schema) = &self.schema {
            schema.apply_defaults(obj);
        }
    }

    fn check_fields(&self, _def: &ResourceDef, mut obj: Value) -> Result<Checked, String> {
        let unknown = match &self.schema {
            Some(schema) => schema.prune(&mut obj),
            None => Vec::new(),
        };
        Ok(Checked {
            value: obj,
            unknown,
        })
    }

    fn prepare_for_create(&self, _def: &ResourceDef, obj: &mut Value, _user: Option<&UserInfo>) {
        if self.status {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        obj["metadata"]["generation"] = json!(1);
    }

    fn prepare_for_update(&self, _def: &ResourceDef, old: &Value, new: &mut Value, sub: &str) {
        if sub == "status" {
            let status = new.get("status").cloned();
            let managed = new.pointer("/metadata/managedFields").cloned();
            *new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            match managed {
                Some(m) => new["metadata"]["managedFields"] = m,
                None => {
                    if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("managedFields");
                    }
                }
            }
            return;
        }
        if self.status {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        let content = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("metadata");
            }
            v
        };
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let bumped = if content(old) != content(new) {
            generation + 1
        } else {
            generation
        };
        new["metadata"]["generation"] = json!(bumped);
    }

    fn validate_create(&self, def: &ResourceDef, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, obj);
        errs.extend(self.content_errors(obj, None));
        errs
    }

    fn validate_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: &Value,
        _sub: &str,
    ) -> Vec<FieldError> {
        let mut errs = validate_metadata(def, new);
        errs.extend(self.content_errors(new, Some(old)));
        errs
    }

    fn has_generation(&self, _def: &ResourceDef) -> bool {
        true
    }

    fn table_columns(&self, def: &ResourceDef) -> Vec<Column> {
        let Some(columns) = &self.columns else {
            return printers::columns(def.group, def.kind);
        };
        let mut cols = vec![Column {
            name: "Name",
            ty: "string",
            format: "name",
            priority: 0,
        }];
        cols.extend(columns.iter().map(|c| Column {
            name: intern(&c.name),
            ty: intern(&c.ty),
            format: intern(&c.format),
            priority: c.priority,
        }));
        cols
    }

    fn table_cells(&self, def: &ResourceDef, obj: &Value, now: i64) -> Vec<Value> {
        let Some(columns) = &self.columns else {
            return printers::cells(def.group, def.kind, obj, now);
        };
        let name = obj
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null);
        let mut cells = vec![name];
        cells.extend(columns.iter().map(|c| c.cell(obj, now)));
        cells
    }

    fn selectable_fields(&self, def: &ResourceDef, obj: &Value) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default();
        out.insert("metadata.name".into(), s("/metadata/name").to_string());
        if def.namespaced {
            out.insert(
                "metadata.namespace".into(),
                s("/metadata/namespace").to_string(),
            );
        }
        for f in &self.selectable {
            let v = match find(obj, f) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            out.insert(f.clone(), v);
        }
        out
    }

    fn scale_paths(&self, _def: &ResourceDef) -> Option<ScalePaths> {
        self.scale.clone()
    }

    fn patch_types(&self) -> &'static [&'static str] {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
    }

    fn apply_shapes(&self, _def: &ResourceDef) -> Option<Arc<dyn ApplyShapes>> {
        self.schema.clone().map(|s| s as Arc<dyn ApplyShapes>)
    }

    fn converter(&self) -> Option<&Arc<Converter>> {
        Some(&self.converter)
    }

    /// Kubernetes' CRD handler: no create while the CRD is terminating.
    fn create_refused(&self, def: &ResourceDef) -> Option<ApiError> {
        self.terminating.then(|| {
            let mut e = ApiError::method_not_supported(def.group, def.plural, "create");
            e.message = "create not allowed while custom resource definition is terminating".into();
            e
        })
    }
}

#[cfg(test)]
mod tests;
