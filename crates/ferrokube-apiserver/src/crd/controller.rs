//! The controllers Kubernetes' apiextensions-apiserver runs for CRDs, as one
//! background task of the API server over its watch cache. Each pass, for
//! every CRD:
//!
//! - a CRD being deleted with the cleanup finalizer: `Terminating`, its
//!   objects deleted, the finalizer removed (the store then deletes the
//!   CRD) and its kind no longer served (`CRDFinalizer`);
//! - names: `status.acceptedNames` and `NamesAccepted`
//!   (`NamingConditionController`);
//! - serving: once the names are accepted, its served versions are added
//!   to the runtime registry, then `Established` is set
//!   (`EstablishingController`: a client that sees `Established` can use
//!   the kind); a changed CRD is served anew;
//! - a CRD gone from the store stops being served.
//!
//! The pass runs on every change of a CRD (debounced) and every 30 s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::ApiError;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::conditions::{self, Condition};
use super::naming::{self, Taken};
use super::{serve, CLEANUP_FINALIZER};
use crate::options::{DeleteOptions, WriteOptions};
use crate::rest::Rest;
use crate::served::Kind;

/// How often a pass runs without any change.
const RESYNC: Duration = Duration::from_secs(30);
/// How long a deleted CRD waits for its objects to go.
const INSTANCES_TIMEOUT: Duration = Duration::from_secs(60);

/// What the task serves: CRD name to what was served (uid, generation,
/// accepted names) and its versions, so a change is served anew.
type Served = BTreeMap<String, (String, Vec<String>)>;

/// Starts the controllers over the REST storage `rest` finds in `owner`
/// (the API server's state); they stop when `cancel` fires.
pub(crate) fn start<A: Send + Sync + 'static>(
    owner: Arc<A>,
    rest: fn(&A) -> &Rest,
    cancel: CancellationToken,
) {
    tokio::spawn(async move { run(rest(&owner), cancel).await });
}

fn crd_def(rest: &Rest) -> Option<ResourceDef> {
    rest.kinds
        .get(super::GROUP, "v1", "customresourcedefinitions")
}

async fn run(rest: &Rest, cancel: CancellationToken) {
    let Some(def) = crd_def(rest) else {
        return;
    };
    let Some(cache) = rest.cache.resource(def.storage_prefix) else {
        return;
    };
    let mut served = Served::new();
    loop {
        let mut watch = cache.watch_from(rest.cache.revision()).ok();
        let crds: Vec<Value> = cache
            .list(def.storage_prefix)
            .iter()
            .filter_map(|o| serde_json::from_slice(&o.json).ok())
            .collect();
        pass(rest, &def, &crds, &mut served).await;
        if !crate::watchcache::next_pass(watch.as_mut(), RESYNC, &cancel).await {
            return;
        }
    }
}

/// One pass over every CRD.
async fn pass(rest: &Rest, def: &ResourceDef, crds: &[Value], served: &mut Served) {
    for crd in crds {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let result = if crd.pointer("/metadata/deletionTimestamp").is_some() {
            finalize(rest, def, crd, served).await
        } else {
            reconcile(rest, def, crd, crds, served).await
        };
        if let Err(e) = result {
            tracing::debug!(crd = name, error = %e, "CRD controller pass");
        }
    }
    let live: Vec<&str> = crds
        .iter()
        .filter_map(|c| c.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    let gone: Vec<String> = served
        .keys()
        .filter(|k| !live.contains(&k.as_str()))
        .cloned()
        .collect();
    for name in gone {
        served.remove(&name);
        if let Some((plural, group)) = name.split_once('.') {
            unserve(rest, group, plural).await;
        }
    }
}

/// Names, serving and `Established` for a live CRD.
async fn reconcile(
    rest: &Rest,
    def: &ResourceDef,
    crd: &Value,
    all: &[Value],
    served: &mut Served,
) -> Result<(), ApiError> {
    let mut crd = crd.clone();
    let now = conditions::now();
    if !naming::settled(&crd) {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let taken = Taken::in_group(&group, all, &ferrokube_api::registry::builtin());
        let out = naming::calculate(&crd, &taken);
        let unchanged = crd.pointer("/status/acceptedNames") == Some(&out.accepted)
            && out.names.same_as(conditions::find(&crd, "NamesAccepted"));
        if !unchanged {
            crd["status"]["acceptedNames"] = out.accepted;
            conditions::set(&mut crd, &out.names, &now);
            conditions::set(&mut crd, &out.established, &now);
            crd = write_status(rest, def, crd).await?;
        }
    }
    if !conditions::is_true(&crd, "NamesAccepted") {
        return Ok(());
    }
    let fingerprint = format!(
        "{}/{}/{}",
        crd.pointer("/metadata/uid").unwrap_or(&Value::Null),
        crd.pointer("/metadata/generation").unwrap_or(&Value::Null),
        crd.pointer("/status/acceptedNames").unwrap_or(&Value::Null),
    );
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if served.get(&name).map(|s| &s.0) != Some(&fingerprint) {
        let before = served.get(&name).map(|s| s.1.clone()).unwrap_or_default();
        let versions = serve_crd(rest, &crd, &before).await?;
        served.insert(name, (fingerprint, versions));
    }
    if !conditions::is_true(&crd, "Established") {
        let cond = Condition::new(
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        );
        conditions::set(&mut crd, &cond, &now);
        write_status(rest, def, crd).await?;
    }
    Ok(())
}

/// A deleted CRD: its objects go, then the finalizer (`CRDFinalizer`).
async fn finalize(
    rest: &Rest,
    def: &ResourceDef,
    crd: &Value,
    served: &mut Served,
) -> Result<(), ApiError> {
    let has_finalizer = crd
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == CLEANUP_FINALIZER));
    if !has_finalizer {
        return Ok(());
    }
    let mut crd = crd.clone();
    let now = conditions::now();
    let deleting = Condition::new(
        "Terminating",
        "True",
        "InstanceDeletionInProgress",
        "CustomResource deletion is in progress",
    );
    if !deleting.same_as(conditions::find(&crd, "Terminating")) {
        conditions::set(&mut crd, &deleting, &now);
        crd = write_status(rest, def, crd).await?;
    }
    // Served again as terminating: creates are refused from now on.
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let terminating = format!(
        "{}/terminating",
        crd.pointer("/metadata/uid").unwrap_or(&Value::Null)
    );
    if conditions::is_true(&crd, "Established")
        && served.get(&name).map(|s| &s.0) != Some(&terminating)
    {
        let before = served.get(&name).map(|s| s.1.clone()).unwrap_or_default();
        let versions = serve_crd(rest, &crd, &before).await?;
        served.insert(name, (terminating, versions));
    }
    let cond = if conditions::is_true(&crd, "Established") {
        delete_instances(rest, &crd).await
    } else {
        Condition::new(
            "Terminating",
            "False",
            "NeverEstablished",
            "resource was never established",
        )
    };
    let done = cond.status == "False";
    conditions::set(&mut crd, &cond, &conditions::now());
    crd = write_status(rest, def, crd).await?;
    if !done {
        return Ok(());
    }
    let (group, plural) = super::spec::group_plural(&crd);
    let (group, plural) = (group.to_string(), plural.to_string());
    if let Some(fins) = crd
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    {
        fins.retain(|f| f != CLEANUP_FINALIZER);
    }
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    rest.update(def, "", &name, crd, "", &write_options())
        .await?;
    served.remove(&name);
    unserve(rest, &group, &plural).await;
    Ok(())
}

/// Deletes every object of `crd` and waits until none is left.
async fn delete_instances(rest: &Rest, crd: &Value) -> Condition {
    // Through the storage version, as Kubernetes' finalizer deletes: no
    // conversion needed.
    let rows = serve::served(crd);
    let storage = super::spec::storage_version(crd).unwrap_or_default();
    let pick = rows
        .iter()
        .position(|k| k.def.version == storage)
        .unwrap_or(0);
    let Some(kind) = rows.into_iter().nth(pick) else {
        return Condition::new(
            "Terminating",
            "False",
            "InstanceDeletionCompleted",
            "removed all instances",
        );
    };
    let def = kind.def;
    let started = tokio::time::Instant::now();
    loop {
        let left = match rest.cache.resource(def.storage_prefix) {
            Some(c) => c.list(def.storage_prefix),
            None => Vec::new(),
        };
        if left.is_empty() {
            return Condition::new(
                "Terminating",
                "False",
                "InstanceDeletionCompleted",
                "removed all instances",
            );
        }
        if started.elapsed() > INSTANCES_TIMEOUT {
            return Condition::new(
                "Terminating",
                "True",
                "InstanceDeletionCheck",
                "could not confirm zero CustomResources remaining: timed out waiting for the condition",
            );
        }
        for o in &left {
            let opts = DeleteOptions::default();
            if let Err(e) = rest.delete(&def, &o.namespace, &o.name, &opts).await {
                if e.code != 404 {
                    return Condition::new(
                        "Terminating",
                        "True",
                        "InstanceDeletionFailed",
                        format!("could not issue all deletes: {}", e.message),
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn write_options() -> WriteOptions {
    WriteOptions {
        manager: "kube-apiserver".into(),
        ..WriteOptions::default()
    }
}

/// Writes `crd`'s status; returns the stored object.
async fn write_status(rest: &Rest, def: &ResourceDef, crd: Value) -> Result<Value, ApiError> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    rest.update(def, "", &name, crd, "status", &write_options())
        .await
}

/// Serves `crd`'s versions, replacing what was served for it (`before`:
/// the versions served until now); returns the versions served.
async fn serve_crd(rest: &Rest, crd: &Value, before: &[String]) -> Result<Vec<String>, ApiError> {
    let kinds: Vec<Kind> = serve::served(crd)
        .into_iter()
        .map(|s| Kind {
            def: s.def,
            strategy: s.strategy,
            schema: Some(s.schema),
        })
        .collect();
    let versions: Vec<String> = kinds.iter().map(|k| k.def.version.to_string()).collect();
    if before.iter().any(|v| !versions.contains(v)) || kinds.is_empty() {
        let (group, plural) = super::spec::group_plural(crd);
        rest.kinds.remove(group, plural).await;
    }
    if !kinds.is_empty() {
        rest.kinds.add(kinds).await?;
    }
    Ok(versions)
}

/// Stops serving `group`/`plural`.
async fn unserve(rest: &Rest, group: &str, plural: &str) {
    rest.kinds.remove(group, plural).await;
}
