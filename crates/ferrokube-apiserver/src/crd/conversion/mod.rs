//! Converting custom resources between the versions of their CRD, as
//! Kubernetes' apiextensions-apiserver does (`pkg/apiserver/conversion`):
//! one [`Converter`] per CRD, shared by the strategies of all its served
//! versions.
//!
//! - `None`: only `apiVersion` changes (`nopConverter`);
//! - `Webhook`: the objects not yet in the desired version go in one
//!   `ConversionReview` (`review`) over HTTPS to the CRD's
//!   `conversion.webhook.clientConfig` (its URL, or its Service through a
//!   ready endpoint; trusted by `caBundle` only; 30 s), through the
//!   admission webhooks' client (`crate::webhook::post_json`).
//!
//! Either way an object converted is then pruned by the schema of the
//! version it is now in (Kubernetes' `schemaCoercingConverter`), and a
//! version that is not one of the CRD's is refused. The generic REST path
//! asks a strategy for its converter ([`crate::strategy::Strategy::converter`]):
//! objects read are given in the version requested (`reads`), objects
//! written are stored in the storage version.
//!
//! A built-in kind served at several versions (HorizontalPodAutoscalers at
//! `autoscaling/v2` and `v1`) has a converter too, made by
//! [`Converter::builtin`] with Kubernetes' conversion functions for the
//! kind; built-in kinds served at one version have none.

mod reads;
mod review;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::status::ApiError;
use serde_json::Value;

use super::schema::Schema;
use super::spec::{self, Parts};
use crate::rest::Rest;

pub(crate) use reads::{cache_selects, convert_initial, convert_items, convert_watch_event};

/// How long Kubernetes waits for a conversion webhook.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Why objects could not be converted; the text is Kubernetes'.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConversionError {
    /// The desired version is not one of the CRD's.
    #[error("request to convert CR to an invalid group/version: {0}")]
    InvalidTarget(String),
    /// An object is in a group/version that is not the CRD's.
    #[error("request to convert CR from an invalid group/version: {0}")]
    InvalidSource(String),
    /// No `conversionReviewVersions` this server speaks.
    #[error("no supported conversion review versions")]
    NoReviewVersion,
    /// The webhook could not be called, or its answer is not a success.
    #[error("conversion webhook for {gvk} failed: {error}")]
    Failed {
        /// The first object's `group/version, Kind=kind`.
        gvk: String,
        /// What went wrong.
        error: String,
    },
    /// The webhook gave back another number of objects than it was sent.
    #[error("conversion webhook for {gvk} returned {got} objects, expected {want}")]
    Count {
        /// The first object's `group/version, Kind=kind`.
        gvk: String,
        got: usize,
        want: usize,
    },
    /// A converted object is not acceptable (its message whole).
    #[error("{0}")]
    Invalid(String),
}

impl From<ConversionError> for ApiError {
    /// Kubernetes answers a conversion failure as any error without a
    /// status of its own: 500 with no reason.
    fn from(e: ConversionError) -> ApiError {
        ApiError {
            code: 500,
            reason: "",
            message: e.to_string(),
            details: None,
        }
    }
}

/// A conversion webhook's settings.
#[derive(Debug)]
struct Webhook {
    client: crate::webhook::ClientConfig,
    review_versions: Vec<String>,
}

/// A built-in kind's conversion: the object (in one of the kind's
/// versions) in the version named.
pub(crate) type BuiltinConversion = fn(Value, &str) -> Result<Value, ConversionError>;

/// How objects change version.
#[derive(Debug)]
enum Method {
    /// A CRD's strategy `None`: only `apiVersion` changes.
    ApiVersion,
    /// A CRD's conversion webhook.
    Webhook(Webhook),
    /// A built-in kind's conversion functions.
    Builtin(BuiltinConversion),
}

/// How one CRD's (or built-in kind's) objects change version. See the
/// module documentation.
#[derive(Debug)]
pub(crate) struct Converter {
    group: String,
    /// Every version of `spec.versions` (Kubernetes' valid versions).
    versions: Vec<String>,
    storage: String,
    method: Method,
    /// The structural schema of each version that has one.
    schemas: HashMap<String, Arc<Schema>>,
}

/// The `openAPIV3Schema` of version `v` of `crd` (the first version's when
/// all are the same, as the CRD's internal form holds it once).
pub(crate) fn version_schema<'a>(crd: &'a Value, v: &str) -> Option<&'a Value> {
    let own = if Parts::of(crd).schema {
        spec::versions(crd).first()
    } else {
        spec::version(crd, v)
    };
    own.and_then(|x| x.pointer("/schema/openAPIV3Schema"))
        .filter(|s| !s.is_null())
}

impl Converter {
    /// The converter of `crd`.
    pub(crate) fn new(crd: &Value) -> Converter {
        let versions: Vec<String> = spec::versions(crd)
            .iter()
            .filter_map(|v| v.get("name").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        let schemas = versions
            .iter()
            .filter_map(|v| {
                let s = version_schema(crd, v)?;
                Some((v.clone(), Arc::new(Schema::parse(s, "").ok()?)))
            })
            .collect();
        let conversion = crd.pointer("/spec/conversion").unwrap_or(&Value::Null);
        let webhook =
            (conversion.get("strategy").and_then(Value::as_str) == Some("Webhook")).then(|| {
                let hook = conversion.get("webhook").unwrap_or(&Value::Null);
                Webhook {
                    client: crate::webhook::ClientConfig::from_value(
                        hook.get("clientConfig").unwrap_or(&Value::Null),
                    ),
                    review_versions: hook
                        .get("conversionReviewVersions")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                }
            });
        Converter {
            group: crd
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            versions,
            storage: spec::storage_version(crd).unwrap_or_default().to_string(),
            method: webhook.map_or(Method::ApiVersion, Method::Webhook),
            schemas,
        }
    }

    /// The converter of a built-in kind of `group` served at `versions`
    /// and stored at `storage`, converted by `convert`.
    pub(crate) fn builtin(
        group: &str,
        versions: &[&str],
        storage: &str,
        convert: BuiltinConversion,
    ) -> Converter {
        Converter {
            group: group.to_string(),
            versions: versions.iter().map(|v| v.to_string()).collect(),
            storage: storage.to_string(),
            method: Method::Builtin(convert),
            schemas: HashMap::new(),
        }
    }

    /// The schema of `version`, if it has one.
    pub(crate) fn schema(&self, version: &str) -> Option<Arc<Schema>> {
        self.schemas.get(version).cloned()
    }

    /// The version objects are stored in.
    pub(crate) fn storage_version(&self) -> &str {
        &self.storage
    }

    /// `group/version`.
    fn api_version(&self, version: &str) -> String {
        format!("{}/{version}", self.group)
    }

    /// Whether the served JSON `json` is already in `version`: objects are
    /// written with sorted members, so `apiVersion` comes first.
    pub(crate) fn is_in(&self, json: &[u8], version: &str) -> bool {
        let rest = json
            .strip_prefix(b"{\"apiVersion\":\"".as_slice())
            .and_then(|r| r.strip_prefix(self.group.as_bytes()))
            .and_then(|r| r.strip_prefix(b"/".as_slice()))
            .and_then(|r| r.strip_prefix(version.as_bytes()));
        rest.is_some_and(|r| r.first() == Some(&b'"'))
    }

    /// Whether `obj` needs converting to `version`.
    pub(crate) fn needs(&self, obj: &Value, version: &str) -> bool {
        let here = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|a| a.strip_prefix(self.group.as_str()))
            .and_then(|a| a.strip_prefix('/'));
        here != Some(version)
    }

    /// `obj` in `version`.
    pub(crate) async fn convert_one(
        &self,
        rest: &Rest,
        obj: Value,
        version: &str,
    ) -> Result<Value, ConversionError> {
        let mut out = self.convert(rest, vec![obj], version).await?;
        out.pop()
            .ok_or_else(|| ConversionError::Invalid("conversion returned no object".into()))
    }

    /// `objects` in `version`, in their order: those in another version are
    /// converted together (one review for a webhook), then pruned by the
    /// schema of `version`.
    pub(crate) async fn convert(
        &self,
        rest: &Rest,
        mut objects: Vec<Value>,
        version: &str,
    ) -> Result<Vec<Value>, ConversionError> {
        let desired = self.api_version(version);
        if !self.versions.iter().any(|v| v == version) {
            return Err(ConversionError::InvalidTarget(desired));
        }
        let mut todo = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            let from = o.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            if from == desired {
                continue;
            }
            let valid = from
                .split_once('/')
                .is_some_and(|(g, v)| g == self.group && self.versions.iter().any(|x| x == v));
            if !valid {
                return Err(ConversionError::InvalidSource(from.to_string()));
            }
            todo.push(i);
        }
        if todo.is_empty() {
            return Ok(objects);
        }
        match &self.method {
            Method::ApiVersion => {
                for &i in &todo {
                    objects[i]["apiVersion"] = Value::String(desired.clone());
                }
            }
            Method::Builtin(convert) => {
                for &i in &todo {
                    let o = std::mem::take(&mut objects[i]);
                    objects[i] = convert(o, version)?;
                }
            }
            Method::Webhook(hook) => {
                let sent: Vec<&Value> = todo.iter().map(|&i| &objects[i]).collect();
                let converted = self.call(rest, hook, &sent, &desired).await?;
                for (&i, c) in todo.iter().zip(converted) {
                    objects[i] = c;
                }
            }
        }
        if let Some(schema) = self.schemas.get(version) {
            for &i in &todo {
                schema.prune(&mut objects[i]);
            }
        }
        Ok(objects)
    }

    /// One review of `sent` to `desired`; the converted objects, checked.
    async fn call(
        &self,
        rest: &Rest,
        hook: &Webhook,
        sent: &[&Value],
        desired: &str,
    ) -> Result<Vec<Value>, ConversionError> {
        let gvk = sent.first().map(|o| review::gvk_of(o)).unwrap_or_default();
        let version =
            review::pick_version(&hook.review_versions).ok_or(ConversionError::NoReviewVersion)?;
        let uid = uuid::Uuid::new_v4().to_string();
        let body = review::request_body(version, &uid, desired, sent);
        let failed = |error: String| ConversionError::Failed {
            gvk: gvk.clone(),
            error,
        };
        let answer = crate::webhook::post_json(
            rest,
            &hook.client,
            ferrokube_api::gojson::to_vec(&body),
            WEBHOOK_TIMEOUT,
        )
        .await
        .map_err(failed)?;
        let converted = review::converted_objects(version, &uid, &answer).map_err(failed)?;
        if converted.len() != sent.len() {
            return Err(ConversionError::Count {
                gvk,
                got: converted.len(),
                want: sent.len(),
            });
        }
        let single = sent.len() == 1;
        sent.iter()
            .zip(converted)
            .enumerate()
            .map(|(i, (original, c))| check_converted(original, c, desired, &gvk, i, single))
            .collect()
    }
}

/// Kubernetes' checks of one converted object (`at`: its index among
/// those sent; `single`: the review held one object, whose messages are
/// worded apart), then its metadata restored but for labels and
/// annotations.
fn check_converted(
    original: &Value,
    mut converted: Value,
    desired: &str,
    gvk: &str,
    at: usize,
    single: bool,
) -> Result<Value, ConversionError> {
    // Kubernetes names the list index after counting the object.
    let (what, index) = if single {
        ("invalid object", 0)
    } else {
        ("invalid converted object", at + 1)
    };
    let invalid = |why: String| {
        ConversionError::Invalid(format!(
            "conversion webhook for {gvk} returned {what} at index {index}: {why}"
        ))
    };
    let text = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let got_version = text(&converted, "apiVersion");
    if got_version != desired {
        return Err(invalid(format!(
            "invalid groupVersion (expected {desired}, received {got_version})"
        )));
    }
    let (want_kind, got_kind) = (text(original, "kind"), text(&converted, "kind"));
    if want_kind != got_kind {
        return Err(invalid(format!(
            "invalid kind (expected {want_kind}, received {got_kind})"
        )));
    }
    review::same_identity(original, &converted).map_err(|e| {
        ConversionError::Invalid(if single {
            format!("conversion webhook for {gvk} returned invalid object: {e}")
        } else {
            format!("conversion webhook for {gvk} returned invalid converted object at index {index}: {e}")
        })
    })?;
    review::restore_metadata(original, &mut converted).map_err(|e| {
        ConversionError::Invalid(if single {
            format!("conversion webhook for {gvk} returned invalid metadata: {e}")
        } else {
            format!("conversion webhook for {gvk} returned invalid metadata in object at index {index}: {e}")
        })
    })?;
    Ok(converted)
}

#[cfg(test)]
mod tests;
