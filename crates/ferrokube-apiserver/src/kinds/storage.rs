//! `storage.k8s.io/v1`: StorageClass, CSIDriver, CSINode, VolumeAttachment
//! and CSIStorageCapacity with Kubernetes' defaults and validation
//! messages (what may never change once created among them), and the
//! DefaultStorageClass admission of claims: a PersistentVolumeClaim naming
//! no class gets the one annotated
//! `storageclass.kubernetes.io/is-default-class: "true"` (the newest, when
//! several are).

use ferrokube_api::printers::{is_default_class, BETA_CLASS_ANNOTATION};
use ferrokube_api::quantity::parse_milli;
use ferrokube_api::status::{ApiError, FieldError};
use ferrokube_api::validation::{is_dns1123_subdomain, is_qualified_name};
use serde_json::{json, Value};

use super::meta::{array, immutable, label_selector, text};
use crate::rest::Rest;

const RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];

fn default_to(obj: &mut Value, key: &str, v: Value) {
    if let Some(o) = obj.as_object_mut() {
        if o.get(key).is_none_or(Value::is_null) {
            o.insert(key.to_string(), v);
        }
    }
}

/// `SetDefaults_StorageClass`: reclaim policy Delete, binding Immediate.
pub(crate) fn default_storage_class(obj: &mut Value) {
    default_to(obj, "reclaimPolicy", json!("Delete"));
    default_to(obj, "volumeBindingMode", json!("Immediate"));
}

/// `SetDefaults_CSIDriver` (with Kubernetes 1.33's default feature gates).
pub(crate) fn default_csi_driver(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec") else {
        return;
    };
    default_to(spec, "attachRequired", json!(true));
    default_to(spec, "podInfoOnMount", json!(false));
    default_to(spec, "storageCapacity", json!(false));
    default_to(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
    default_to(spec, "requiresRepublish", json!(false));
    default_to(spec, "seLinuxMount", json!(false));
    if array(spec, "/volumeLifecycleModes").is_empty() {
        if let Some(o) = spec.as_object_mut() {
            o.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
        }
    }
}

pub(crate) fn validate_storage_class(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let provisioner = text(obj, "/provisioner");
    if provisioner.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    } else {
        for msg in is_qualified_name(&provisioner.to_ascii_lowercase()) {
            errs.push(FieldError::invalid("provisioner", provisioner, msg));
        }
    }
    if let Some(params) = obj.get("parameters").and_then(Value::as_object) {
        if params.len() > 512 {
            errs.push(FieldError::too_long("parameters", 512));
        }
        if params.keys().any(String::is_empty) {
            errs.push(FieldError::invalid(
                "parameters",
                "",
                "field can not be empty.",
            ));
        }
    }
    let policy = text(obj, "/reclaimPolicy");
    if !policy.is_empty() && !RECLAIM_POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            "reclaimPolicy",
            policy,
            RECLAIM_POLICIES,
        ));
    }
    match obj.get("volumeBindingMode").and_then(Value::as_str) {
        None => errs.push(FieldError::required("volumeBindingMode", "")),
        Some(m) if !BINDING_MODES.contains(&m) => errs.push(FieldError::not_supported(
            "volumeBindingMode",
            m,
            BINDING_MODES,
        )),
        Some(_) => {}
    }
    errs
}

/// `ValidateStorageClassUpdate`: parameters, provisioner, reclaim policy
/// and binding mode are fixed at creation.
pub(crate) fn validate_storage_class_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_storage_class(new);
    for field in ["parameters", "provisioner", "reclaimPolicy"] {
        let same = match field {
            // No parameters and empty parameters are the same map.
            "parameters" => {
                let params = |v: &Value| {
                    v.get("parameters")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default()
                };
                params(old) == params(new)
            }
            _ => old.get(field) == new.get(field),
        };
        if !same {
            errs.push(FieldError::forbidden(
                field,
                format!("updates to {field} are forbidden."),
            ));
        }
    }
    errs.extend(immutable(old, new, "volumeBindingMode"));
    errs
}

pub(crate) fn validate_csi_driver(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    for (field, path) in [
        ("attachRequired", "spec.attachedRequired"),
        ("podInfoOnMount", "spec.podInfoOnMount"),
        ("storageCapacity", "spec.storageCapacity"),
    ] {
        if spec.get(field).and_then(Value::as_bool).is_none() {
            errs.push(FieldError::required(path, ""));
        }
    }
    let policies = ["File", "None", "ReadWriteOnceWithFSType"];
    if let Some(p) = spec.get("fsGroupPolicy").and_then(Value::as_str) {
        if !policies.contains(&p) {
            errs.push(FieldError::not_supported(
                "spec.fsGroupPolicy",
                p,
                &policies,
            ));
        }
    }
    let mut audiences = Vec::new();
    for (i, t) in array(spec, "/tokenRequests").iter().enumerate() {
        let audience = text(t, "/audience");
        if audiences.contains(&audience) {
            errs.push(FieldError::duplicate(
                format!("spec.tokenRequests[{i}].audience"),
                audience,
            ));
            continue;
        }
        audiences.push(audience);
        if let Some(secs) = t.get("expirationSeconds").and_then(Value::as_i64) {
            let at = format!("spec.tokenRequests[{i}].expirationSeconds");
            if secs < 600 {
                errs.push(FieldError::invalid(
                    at,
                    secs,
                    "may not specify a duration less than 10 minutes",
                ));
            } else if secs > 1 << 32 {
                errs.push(FieldError::invalid(
                    at,
                    secs,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
        }
    }
    for mode in array(spec, "/volumeLifecycleModes") {
        let m = mode.as_str().unwrap_or("");
        if !matches!(m, "Persistent" | "Ephemeral") {
            errs.push(FieldError::not_supported(
                "spec.volumeLifecycleModes",
                m,
                &["Persistent", "Ephemeral"],
            ));
        }
    }
    if let Some(p) = spec
        .get("nodeAllocatableUpdatePeriodSeconds")
        .and_then(Value::as_i64)
    {
        if p < 10 {
            errs.push(FieldError::invalid(
                "spec.nodeAllocatableUpdatePeriodSeconds",
                p,
                "must be greater than or equal to 10 seconds",
            ));
        }
    }
    errs
}

pub(crate) fn validate_csi_driver_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_csi_driver(new);
    for (field, path) in [
        ("/spec/attachRequired", "spec.attachedRequired"),
        ("/spec/volumeLifecycleModes", "spec.volumeLifecycleModes"),
    ] {
        if old.pointer(field) != new.pointer(field) {
            errs.push(FieldError::invalid(
                path,
                new.pointer(field).cloned().unwrap_or(Value::Null),
                "field is immutable",
            ));
        }
    }
    errs
}

pub(crate) fn validate_csi_node(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = Vec::new();
    for (i, d) in array(obj, "/spec/drivers").iter().enumerate() {
        let at = format!("spec.drivers[{i}]");
        let name = text(d, "/name");
        for msg in is_dns1123_subdomain(name) {
            errs.push(FieldError::invalid(format!("{at}.name"), name, msg));
        }
        let id = text(d, "/nodeID");
        if id.is_empty() {
            errs.push(FieldError::required(format!("{at}.nodeID"), ""));
        } else if id.len() > 192 {
            errs.push(FieldError::invalid(
                format!("{at}.nodeID"),
                id,
                "must be 192 characters or less",
            ));
        }
        if let Some(n) = d.pointer("/allocatable/count").and_then(Value::as_i64) {
            if n < 0 {
                errs.push(FieldError::invalid(
                    format!("{at}.allocatable.count"),
                    n,
                    "must be greater than or equal to 0",
                ));
            }
        }
        if names.contains(&name) {
            errs.push(FieldError::duplicate(format!("{at}.name"), name));
        }
        names.push(name);
        let mut keys = Vec::new();
        for key in array(d, "/topologyKeys").iter().filter_map(Value::as_str) {
            if key.is_empty() {
                errs.push(FieldError::required(at.clone(), ""));
            }
            if keys.contains(&key) {
                errs.push(FieldError::duplicate(at.clone(), key));
            }
            keys.push(key);
            for msg in is_qualified_name(key) {
                errs.push(FieldError::invalid(at.clone(), key, msg));
            }
        }
    }
    errs
}

/// A registered driver of a CSINode never changes (it is removed and added
/// again instead).
pub(crate) fn validate_csi_node_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_csi_node(new);
    for was in array(old, "/spec/drivers") {
        for now in array(new, "/spec/drivers") {
            if text(was, "/name") == text(now, "/name") && was != now {
                errs.push(FieldError::invalid(
                    "spec.drivers",
                    now.clone(),
                    "field is immutable",
                ));
            }
        }
    }
    errs
}

pub(crate) fn validate_volume_attachment(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let attacher = text(obj, "/spec/attacher");
    if attacher.is_empty() {
        errs.push(FieldError::required("spec.attacher", ""));
    }
    let source = obj.pointer("/spec/source").unwrap_or(&Value::Null);
    let pv = source.get("persistentVolumeName").filter(|v| !v.is_null());
    let inline = source.get("inlineVolumeSpec").filter(|v| !v.is_null());
    match (pv, inline) {
        (None, None) => errs.push(FieldError::required(
            "spec.source",
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        )),
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            "spec.source",
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        )),
        (Some(name), None) if name.as_str().unwrap_or("").is_empty() => {
            errs.push(FieldError::required(
                "spec.source.persistentVolumeName",
                "must specify non empty persistentVolumeName",
            ))
        }
        _ => {}
    }
    let node = text(obj, "/spec/nodeName");
    for msg in is_dns1123_subdomain(node) {
        errs.push(FieldError::invalid("spec.nodeName", node, msg));
    }
    if !attacher.is_empty() {
        for msg in is_dns1123_subdomain(attacher) {
            errs.push(FieldError::invalid("spec.attacher", attacher, msg));
        }
    }
    if let Some(name) = pv.and_then(Value::as_str).filter(|n| !n.is_empty()) {
        for msg in is_dns1123_subdomain(name) {
            errs.push(FieldError::invalid(
                "spec.source.persistentVolumeName",
                name,
                msg,
            ));
        }
    }
    errs
}

/// A VolumeAttachment's spec is read-only.
pub(crate) fn validate_volume_attachment_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_volume_attachment(new);
    errs.extend(immutable(old, new, "spec"));
    errs
}

pub(crate) fn validate_csi_storage_capacity(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(sel) = obj.get("nodeTopology") {
        label_selector(sel, "nodeTopology", &mut errs);
    }
    let class = text(obj, "/storageClassName");
    for msg in is_dns1123_subdomain(class) {
        errs.push(FieldError::invalid("storageClassName", class, msg));
    }
    if let Some(q) = obj.get("capacity").and_then(Value::as_str) {
        if parse_milli(q).is_some_and(|m| m < 0) {
            errs.push(FieldError::invalid(
                "capacity",
                q,
                "must be greater than or equal to 0",
            ));
        }
    }
    errs
}

pub(crate) fn validate_csi_storage_capacity_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_csi_storage_capacity(new);
    errs.extend(immutable(old, new, "nodeTopology"));
    errs.extend(immutable(old, new, "storageClassName"));
    errs
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// The access modes at `ptr`: at least one (`required`: Kubernetes' detail
/// when there is none), each a known one.
fn access_modes(obj: &Value, required: &str, errs: &mut Vec<FieldError>) {
    let modes = array(obj, "/spec/accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required("spec.accessModes", required));
    }
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            errs.push(FieldError::not_supported(
                "spec.accessModes",
                m,
                ACCESS_MODES,
            ));
        }
    }
}

/// The volume sources a PersistentVolume may have.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "local",
    "nfs",
    "csi",
    "iscsi",
    "fc",
    "rbd",
    "cephfs",
    "cinder",
    "flexVolume",
    "flocker",
    "glusterfs",
    "azureFile",
    "azureDisk",
    "vsphereVolume",
    "quobyte",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "awsElasticBlockStore",
    "gcePersistentDisk",
];

/// `ValidatePersistentVolume`'s spec rules users meet most.
pub(crate) fn validate_persistent_volume(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    access_modes(obj, "", &mut errs);
    if obj
        .pointer("/spec/capacity")
        .and_then(Value::as_object)
        .is_none_or(|c| c.is_empty())
    {
        errs.push(FieldError::required("spec.capacity", ""));
    }
    let sources = VOLUME_SOURCES
        .iter()
        .filter(|k| {
            obj.pointer(&format!("/spec/{k}"))
                .is_some_and(|v| !v.is_null())
        })
        .count();
    if sources == 0 {
        errs.push(FieldError::required("spec", "must specify a volume type"));
    }
    let policy = text(obj, "/spec/persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !matches!(policy, "Delete" | "Recycle" | "Retain") {
        errs.push(FieldError::not_supported(
            "spec.persistentVolumeReclaimPolicy",
            policy,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    errs
}

/// `ValidatePersistentVolumeClaim`'s spec rules users meet most.
pub(crate) fn validate_claim(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    access_modes(obj, "at least 1 access mode is required", &mut errs);
    if obj.pointer("/spec/resources/requests/storage").is_none() {
        errs.push(FieldError::required("spec.resources[storage]", ""));
    }
    errs
}

/// `ValidatePersistentVolumeClaimUpdate`: a claim's spec is fixed once
/// made, but for its volumeName and class (each set once, by the binder
/// and the default class) and, bound, its requested storage and
/// volumeAttributesClassName.
pub(crate) fn validate_claim_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = validate_claim(new);
    let spec = |v: &Value| v.get("spec").cloned().unwrap_or(Value::Null);
    let (mut was, mut now) = (spec(old), spec(new));
    let bound = text(old, "/status/phase") == "Bound";
    for (key, settable) in [
        ("volumeName", text(&was, "/volumeName").is_empty()),
        (
            "storageClassName",
            was.get("storageClassName").is_none_or(Value::is_null),
        ),
        ("volumeAttributesClassName", bound),
    ] {
        if settable {
            for v in [&mut was, &mut now] {
                if let Some(o) = v.as_object_mut() {
                    o.remove(key);
                }
            }
        }
    }
    if bound {
        for v in [&mut was, &mut now] {
            if let Some(r) = v
                .pointer_mut("/resources/requests")
                .and_then(Value::as_object_mut)
            {
                r.remove("storage");
            }
        }
    }
    if was != now {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    errs
}

/// The DefaultStorageClass admission of a new claim: one that names no
/// class (neither `spec.storageClassName`, not even `""`, nor the beta
/// annotation) gets the default class, if there is one.
pub(super) async fn admit_claim(rest: &Rest, obj: &mut Value) -> Result<(), ApiError> {
    if obj
        .pointer("/spec/storageClassName")
        .is_some_and(|c| !c.is_null())
        || obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
            .is_some()
    {
        return Ok(());
    }
    let Some(def) = rest.kinds.get("storage.k8s.io", "v1", "storageclasses") else {
        return Ok(());
    };
    let Some(cache) = rest.cache.resource(def.storage_prefix) else {
        return Ok(());
    };
    let classes: Vec<Value> = cache
        .list(&def.list_prefix(""))
        .into_iter()
        .filter_map(|o| serde_json::from_slice::<Value>(&o.json).ok())
        .collect();
    if let Some(name) = default_class(&classes) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("storageClassName".into(), json!(name));
        }
    }
    Ok(())
}

/// The default among `classes`: of those annotated default, the newest;
/// among equally new ones, the first by name (`GetDefaultClass`).
pub(crate) fn default_class(classes: &[Value]) -> Option<String> {
    let mut defaults: Vec<&Value> = classes.iter().filter(|c| is_default_class(c)).collect();
    defaults.sort_by(|a, b| {
        let created = |v: &Value| text(v, "/metadata/creationTimestamp").to_string();
        created(b)
            .cmp(&created(a))
            .then_with(|| text(a, "/metadata/name").cmp(text(b, "/metadata/name")))
    });
    defaults
        .first()
        .map(|c| text(c, "/metadata/name").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn storage_classes_default_and_keep_their_provisioner() {
        let mut sc = json!({"metadata": {"name": "fast"}, "provisioner": "example.com/disk"});
        default_storage_class(&mut sc);
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
        assert!(validate_storage_class(&sc).is_empty());

        let mut bad = json!({"provisioner": "", "reclaimPolicy": "Recycle"});
        default_storage_class(&mut bad);
        assert_eq!(
            messages(&validate_storage_class(&bad)),
            [
                "provisioner: Required value",
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\""
            ]
        );

        let mut changed = sc.clone();
        changed["provisioner"] = json!("example.com/other");
        changed["parameters"] = json!({"type": "ssd"});
        changed["volumeBindingMode"] = json!("WaitForFirstConsumer");
        assert_eq!(
            messages(&validate_storage_class_update(&sc, &changed)),
            [
                "parameters: Forbidden: updates to parameters are forbidden.",
                "provisioner: Forbidden: updates to provisioner are forbidden.",
                "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable"
            ]
        );
        let mut labelled = sc.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        assert!(validate_storage_class_update(&sc, &labelled).is_empty());
    }

    #[test]
    fn csi_drivers_default_and_fix_attach_required() {
        let mut d = json!({"metadata": {"name": "x.csi.k8s.io"}, "spec": {}});
        default_csi_driver(&mut d);
        assert_eq!(
            d["spec"],
            json!({"attachRequired": true, "podInfoOnMount": false, "storageCapacity": false,
                "fsGroupPolicy": "ReadWriteOnceWithFSType", "requiresRepublish": false,
                "seLinuxMount": false, "volumeLifecycleModes": ["Persistent"]})
        );
        assert!(validate_csi_driver(&d).is_empty());
        let mut changed = d.clone();
        changed["spec"]["attachRequired"] = json!(false);
        changed["spec"]["podInfoOnMount"] = json!(true);
        assert_eq!(
            messages(&validate_csi_driver_update(&d, &changed)),
            ["spec.attachedRequired: Invalid value: false: field is immutable"]
        );
    }

    #[test]
    fn attachments_capacities_and_nodes() {
        let va = json!({"spec": {"attacher": "x.csi.k8s.io", "nodeName": "n1",
            "source": {"persistentVolumeName": "pv1"}}});
        assert!(validate_volume_attachment(&va).is_empty());
        let none = json!({"spec": {"attacher": "x.csi.k8s.io", "nodeName": "n1", "source": {}}});
        assert_eq!(
            messages(&validate_volume_attachment(&none)),
            ["spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName"]
        );
        let mut moved = va.clone();
        moved["spec"]["nodeName"] = json!("n2");
        assert_eq!(validate_volume_attachment_update(&va, &moved).len(), 1);

        let cap = json!({"storageClassName": "local-path", "capacity": "10Gi"});
        assert!(validate_csi_storage_capacity(&cap).is_empty());
        let mut other = cap.clone();
        other["storageClassName"] = json!("fast");
        assert_eq!(
            messages(&validate_csi_storage_capacity_update(&cap, &other)),
            ["storageClassName: Invalid value: \"fast\": field is immutable"]
        );

        let node = json!({"spec": {"drivers": [{"name": "x.csi.k8s.io", "nodeID": "n1"},
            {"name": "x.csi.k8s.io", "nodeID": ""}]}});
        assert_eq!(
            messages(&validate_csi_node(&node)),
            [
                "spec.drivers[1].nodeID: Required value",
                "spec.drivers[1].name: Duplicate value: \"x.csi.k8s.io\""
            ]
        );
    }

    #[test]
    fn claims_and_volumes_say_what_they_lack_and_keep_their_spec() {
        assert_eq!(
            messages(&validate_claim(&json!({"spec": {}}))),
            [
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value"
            ]
        );
        assert_eq!(
            messages(&validate_persistent_volume(
                &json!({"spec": {"accessModes": ["ReadWriteOnce"]}})
            )),
            [
                "spec.capacity: Required value",
                "spec: Required value: must specify a volume type"
            ]
        );
        let claim = json!({"spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}});
        // The binder names the volume, the default class may be set once.
        let mut bound = claim.clone();
        bound["spec"]["volumeName"] = json!("pv1");
        bound["spec"]["storageClassName"] = json!("local-path");
        assert!(validate_claim_update(&claim, &bound).is_empty());
        let mut changed = bound.clone();
        changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(
            messages(&validate_claim_update(&bound, &changed)),
            ["spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"]
        );
        let mut other_volume = bound.clone();
        other_volume["spec"]["volumeName"] = json!("pv2");
        assert_eq!(validate_claim_update(&bound, &other_volume).len(), 1);
        // A bound claim may ask for more.
        let mut grown_from = bound.clone();
        grown_from["status"]["phase"] = json!("Bound");
        let mut grown = grown_from.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(validate_claim_update(&grown_from, &grown).is_empty());
    }

    #[test]
    fn the_newest_default_class_wins() {
        let class = |name: &str, created: &str, default: bool| {
            json!({"metadata": {"name": name, "creationTimestamp": created,
                "annotations": {"storageclass.kubernetes.io/is-default-class": default.to_string()}}})
        };
        let classes = [
            class("old", "2024-01-01T00:00:00Z", true),
            class("new", "2025-01-01T00:00:00Z", true),
            class("newest-not-default", "2026-01-01T00:00:00Z", false),
        ];
        assert_eq!(default_class(&classes).as_deref(), Some("new"));
        assert_eq!(default_class(&classes[2..]), None);
    }
}
