//! `pods/<name>/binding`: a Pod's own storage for its assignment to a node
//! (Kubernetes' `BindingREST` in `pkg/registry/core/pod/storage`), once,
//! with the `PodScheduled` condition; it leaves field ownership alone, so the
//! pod's managedFields stay text (see [`crate::lean`]).

use ferrokube_api::registry::ResourceDef;
use ferrokube_api::status::{ApiError, FieldError};
use ferrokube_store::StoreError;
use serde_json::{json, Value};

use crate::objectmeta::{self, meta_str};
use crate::options::WriteOptions;
use crate::rest::{store_error, ApiResult, Rest, UPDATE_ATTEMPTS};

impl Rest {
    /// POST `pods/<name>/binding`: assigns an unbound pod to a node, once.
    pub async fn bind_pod(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        binding: &Value,
        opts: &WriteOptions,
    ) -> ApiResult<()> {
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    "",
                    "Binding",
                    name,
                    &[FieldError::required("target.name", "")],
                )
            })?
            .to_string();
        if let Some(kind) = binding.pointer("/target/kind").and_then(Value::as_str) {
            if !kind.is_empty() && kind != "Node" {
                return Err(ApiError::invalid(
                    "",
                    "Binding",
                    name,
                    &[FieldError::not_supported("target.kind", kind, &["Node"])],
                ));
            }
        }
        for _ in 0..UPDATE_ATTEMPTS {
            // Binding leaves field ownership alone, so the pod's
            // managedFields stay text (see `crate::lean`).
            let kv = self.get_stored(def, ns, name).await?;
            let lean = crate::lean::decode(&kv.value).map_err(|e| {
                ApiError::internal(format!("stored object {} is not readable: {e}", kv.key))
            })?;
            let (old, managed) = (lean.object, lean.managed);
            if let Some(uid) = binding
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
            {
                if Some(uid) != meta_str(&old, "uid") {
                    return Err(ApiError::conflict(
                        def.group,
                        def.plural,
                        name,
                        "the UID in the binding does not match the pod",
                    ));
                }
            }
            if let Some(current) = old
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(ApiError::conflict(
                    def.group,
                    def.plural,
                    name,
                    &format!("pod {name} is already assigned to node {current:?}"),
                ));
            }
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(ApiError::conflict(
                    def.group,
                    def.plural,
                    name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                ));
            }
            let mut new = old;
            new["spec"]["nodeName"] = json!(node);
            // The PodScheduled condition, as Kubernetes' binding sets it.
            let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
                "lastTransitionTime": objectmeta::now_rfc3339()});
            let conds = new["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut conds: Vec<Value> = conds
                .into_iter()
                .filter(|c| c["type"] != "PodScheduled")
                .collect();
            conds.push(cond);
            new["status"]["conditions"] = Value::Array(conds);
            if opts.dry_run {
                return Ok(());
            }
            match self
                .put_keeping(&kv.key, &mut new, managed.as_deref(), |bytes| {
                    self.store.update(&kv.key, bytes, kv.mod_revision, None)
                })
                .await?
            {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(def, name, e)),
            }
        }
        Err(ApiError::stale(def.group, def.plural, name))
    }
}
