//! The typed view of objects, from the `k8s-openapi` types: every write is
//! decoded into its kind's type and encoded back, which checks field types,
//! finds unknown fields (`fieldValidation=Strict` refuses them; otherwise
//! they are dropped, as Kubernetes drops them), and yields exactly the
//! schema Kubernetes stores. The same types give the OpenAPI schemas
//! (`kubectl explain`).

use k8s_openapi::api;
use schemars::SchemaGenerator;
use serde_json::Value;

macro_rules! kinds {
    ($( ($group:literal, $version:literal, $kind:literal, $ty:ty) ),* $(,)?) => {
        /// Decodes `v` as the type of (group, version, kind) and encodes
        /// it back. `None` if the kind has no type here.
        fn round_trip_typed(group: &str, version: &str, kind: &str, v: &Value) -> Option<Result<Value, serde_json::Error>> {
            match (group, version, kind) {
                $(
                    ($group, $version, $kind) => Some(
                        <$ty as serde::Deserialize>::deserialize(v)
                            .and_then(|t| serde_json::to_value(&t)),
                    ),
                )*
                _ => None,
            }
        }

        /// A request body of kind (group, version, kind) decoded straight into its
        /// type and encoded back: the object [`check`] would give, made
        /// without building the body's JSON tree first. `None` if the kind
        /// has no type here, the body does not decode as the type, or the
        /// type passed over any field of it: decoding the JSON and
        /// [`check`] then say what is wrong or unknown.
        pub(crate) fn decode_known(group: &str, version: &str, kind: &str, body: &[u8]) -> Option<Value> {
            match (group, version, kind) {
                $(
                    ($group, $version, $kind) => {
                        let mut passed_over = false;
                        let mut de = serde_json::Deserializer::from_slice(body);
                        let typed: $ty =
                            serde_ignored::deserialize(&mut de, |_| passed_over = true).ok()?;
                        de.end().ok()?;
                        if passed_over {
                            return None;
                        }
                        serde_json::to_value(&typed).ok()
                    }
                )*
                _ => None,
            }
        }

        /// Adds the schema of every kind of one group version to `generator`;
        /// returns (kind, schema name) of each.
        pub(crate) fn schemas_for(generator: &mut SchemaGenerator, group: &str, version: &str) -> Vec<(&'static str, String)> {
            let mut out = Vec::new();
            $(
                if $group == group && $version == version {
                    let _ = generator.subschema_for::<$ty>();
                    out.push(($kind, <$ty as schemars::JsonSchema>::schema_name().into_owned()));
                }
            )*
            out
        }
    };
}

kinds! {
    ("", "v1", "Namespace", api::core::v1::Namespace),
    ("", "v1", "Pod", api::core::v1::Pod),
    ("", "v1", "Binding", api::core::v1::Binding),
    ("authentication.k8s.io", "v1", "SelfSubjectReview", api::authentication::v1::SelfSubjectReview),
    ("authentication.k8s.io", "v1", "TokenReview", api::authentication::v1::TokenReview),
    ("authorization.k8s.io", "v1", "LocalSubjectAccessReview", api::authorization::v1::LocalSubjectAccessReview),
    ("authorization.k8s.io", "v1", "SelfSubjectAccessReview", api::authorization::v1::SelfSubjectAccessReview),
    ("authorization.k8s.io", "v1", "SelfSubjectRulesReview", api::authorization::v1::SelfSubjectRulesReview),
    ("authorization.k8s.io", "v1", "SubjectAccessReview", api::authorization::v1::SubjectAccessReview),
    ("", "v1", "Service", api::core::v1::Service),
    ("", "v1", "Endpoints", api::core::v1::Endpoints),
    ("", "v1", "ConfigMap", api::core::v1::ConfigMap),
    ("", "v1", "Secret", api::core::v1::Secret),
    ("", "v1", "ServiceAccount", api::core::v1::ServiceAccount),
    ("", "v1", "Node", api::core::v1::Node),
    ("", "v1", "Event", api::core::v1::Event),
    ("", "v1", "ReplicationController", api::core::v1::ReplicationController),
    ("", "v1", "LimitRange", api::core::v1::LimitRange),
    ("", "v1", "ResourceQuota", api::core::v1::ResourceQuota),
    ("", "v1", "PersistentVolume", api::core::v1::PersistentVolume),
    ("", "v1", "PersistentVolumeClaim", api::core::v1::PersistentVolumeClaim),
    ("apps", "v1", "Deployment", api::apps::v1::Deployment),
    ("apps", "v1", "ReplicaSet", api::apps::v1::ReplicaSet),
    ("apps", "v1", "StatefulSet", api::apps::v1::StatefulSet),
    ("apps", "v1", "DaemonSet", api::apps::v1::DaemonSet),
    ("apps", "v1", "ControllerRevision", api::apps::v1::ControllerRevision),
    ("batch", "v1", "Job", api::batch::v1::Job),
    ("batch", "v1", "CronJob", api::batch::v1::CronJob),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", api::autoscaling::v2::HorizontalPodAutoscaler),
    ("autoscaling", "v1", "HorizontalPodAutoscaler", api::autoscaling::v1::HorizontalPodAutoscaler),
    ("coordination.k8s.io", "v1", "Lease", api::coordination::v1::Lease),
    ("discovery.k8s.io", "v1", "EndpointSlice", api::discovery::v1::EndpointSlice),
    ("events.k8s.io", "v1", "Event", api::events::v1::Event),
    ("rbac.authorization.k8s.io", "v1", "Role", api::rbac::v1::Role),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", api::rbac::v1::RoleBinding),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", api::rbac::v1::ClusterRole),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", api::rbac::v1::ClusterRoleBinding),
    ("policy", "v1", "PodDisruptionBudget", api::policy::v1::PodDisruptionBudget),
    ("scheduling.k8s.io", "v1", "PriorityClass", api::scheduling::v1::PriorityClass),
    ("", "v1", "PodTemplate", api::core::v1::PodTemplate),
    ("networking.k8s.io", "v1", "NetworkPolicy", api::networking::v1::NetworkPolicy),
    ("networking.k8s.io", "v1", "Ingress", api::networking::v1::Ingress),
    ("networking.k8s.io", "v1", "IngressClass", api::networking::v1::IngressClass),
    ("node.k8s.io", "v1", "RuntimeClass", api::node::v1::RuntimeClass),
    ("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", api::flowcontrol::v1::FlowSchema),
    ("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration", api::flowcontrol::v1::PriorityLevelConfiguration),
    ("certificates.k8s.io", "v1", "CertificateSigningRequest", api::certificates::v1::CertificateSigningRequest),
    ("storage.k8s.io", "v1", "StorageClass", api::storage::v1::StorageClass),
    ("storage.k8s.io", "v1", "CSIDriver", api::storage::v1::CSIDriver),
    ("storage.k8s.io", "v1", "CSINode", api::storage::v1::CSINode),
    ("storage.k8s.io", "v1", "VolumeAttachment", api::storage::v1::VolumeAttachment),
    ("storage.k8s.io", "v1", "CSIStorageCapacity", api::storage::v1::CSIStorageCapacity),
    ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", api::admissionregistration::v1::MutatingWebhookConfiguration),
    ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", api::admissionregistration::v1::ValidatingWebhookConfiguration),
    ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", api::admissionregistration::v1::ValidatingAdmissionPolicy),
    ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding", api::admissionregistration::v1::ValidatingAdmissionPolicyBinding),
    ("apiregistration.k8s.io", "v1", "APIService", k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition),
}

/// Paths of fields present (and not null) in `input` but gone from `typed`.
/// `path` holds the keys (and `[i]` indexes) down to here; a dotted path is
/// only made for a field that is reported.
fn unknown_fields<'a>(
    input: &'a Value,
    typed: &Value,
    path: &mut Vec<PathPart<'a>>,
    out: &mut Vec<String>,
) {
    match (input, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(tv) => {
                        path.push(PathPart::Key(k));
                        unknown_fields(v, tv, path, out);
                        path.pop();
                    }
                    None if v.is_null() => {}
                    // Empty objects and lists are dropped by the types too.
                    None if v.as_object().is_some_and(|o| o.is_empty()) => {}
                    None if v.as_array().is_some_and(|a| a.is_empty()) => {}
                    None => {
                        path.push(PathPart::Key(k));
                        out.push(dotted(path));
                        path.pop();
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                path.push(PathPart::Index(i));
                unknown_fields(x, y, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// One step of a field path.
enum PathPart<'a> {
    Key(&'a str),
    Index(usize),
}

/// `a.b[0].c`.
fn dotted(path: &[PathPart<'_>]) -> String {
    let mut s = String::new();
    for p in path {
        match p {
            PathPart::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathPart::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// What the typed check found.
pub(crate) struct Checked {
    /// The object as its type sees it (unknown fields dropped).
    pub value: Value,
    /// Unknown fields, as dotted paths.
    pub unknown: Vec<String>,
}

/// Checks `v` against its kind's type. `Err` is the decoding error for a
/// 400: a field of the wrong type. Kinds without a type pass unchanged.
pub(crate) fn check(
    group: &str,
    version: &str,
    kind: &str,
    v: &Value,
) -> Result<Checked, serde_json::Error> {
    match round_trip_typed(group, version, kind, v) {
        None => Ok(Checked {
            value: v.clone(),
            unknown: Vec::new(),
        }),
        Some(Err(e)) => Err(e),
        Some(Ok(typed)) => {
            let mut unknown = Vec::new();
            unknown_fields(v, &typed, &mut Vec::new(), &mut unknown);
            Ok(Checked {
                value: typed,
                unknown,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_and_dropped() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "bogus": 1},
            "data": {"k": "v"}, "extra": {"x": 1}, "nothing": null});
        let c = check("", "v1", "ConfigMap", &cm).unwrap();
        assert_eq!(
            c.unknown,
            vec!["extra".to_string(), "metadata.bogus".to_string()]
        );
        assert!(c.value.get("extra").is_none());
        assert_eq!(c.value["data"]["k"], "v");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x"}]}});
        assert_eq!(
            check("", "v1", "Pod", &pod).unwrap().unknown,
            vec!["spec.containers[0].imagePolicy".to_string()]
        );
    }

    #[test]
    fn bodies_of_known_fields_decode_as_the_general_path_checks_them() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": null},
            "spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": "100m"}}}], "nodeName": null}});
        let body = serde_json::to_vec(&pod).unwrap();
        let fast = decode_known("", "v1", "Pod", &body).expect("every field is known");
        assert_eq!(fast, check("", "v1", "Pod", &pod).unwrap().value);
        assert!(fast["metadata"].get("annotations").is_none());
        // Anything the type would pass over, or cannot take, goes the
        // general way, which names it.
        for odd in [
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "extra": null}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": 7}}),
            json!({"apiVersion": "v2", "kind": "Pod", "metadata": {"name": "p"}}),
        ] {
            assert_eq!(
                decode_known("", "v1", "Pod", &serde_json::to_vec(&odd).unwrap()),
                None,
                "{odd}"
            );
        }
        assert_eq!(
            decode_known(
                "",
                "v1",
                "Pod",
                b"{\"apiVersion\": \"v1\", \"kind\": \"Pod\"} x"
            ),
            None
        );
        assert_eq!(decode_known("example.com", "v1", "Widget", b"{}"), None);
    }

    #[test]
    fn wrong_types_are_errors() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": "three", "selector": {}, "template": {}}});
        assert!(check("apps", "v1", "Deployment", &d).is_err());
        let fine = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 3, "selector": {}, "template": {}}});
        let c = check("apps", "v1", "Deployment", &fine).unwrap();
        assert!(c.unknown.is_empty());
        assert_eq!(c.value["spec"]["replicas"], 3);
    }

    #[test]
    fn schemas_are_named_like_kubernetes() {
        let mut g = schemars::generate::SchemaSettings::openapi3().into_generator();
        let kinds = schemas_for(&mut g, "apps", "v1");
        assert!(kinds.contains(&("Deployment", "io.k8s.api.apps.v1.Deployment".to_string())));
        let defs = g.take_definitions(true);
        assert!(defs.contains_key("io.k8s.api.apps.v1.DeploymentSpec"));
        assert!(defs.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    }
}
