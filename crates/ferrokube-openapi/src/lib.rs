//! OpenAPI documents for ferrokube's API server, generated from the
//! `k8s-openapi` types: the `/openapi/v3` root discovery document, one
//! OpenAPI 3.0 document per group version, and a Swagger 2.0 document for
//! `/openapi/v2` (as JSON and as protobuf). Documents are built once by [`OpenApi::build`] and served
//! from memory as JSON bytes with a content hash (for `?hash=` and ETags).
//!
//! What kubectl 1.29+ reads (checked with the real binaries in
//! `tests/kubectl.rs`): `explain` and `apply` fetch `/openapi/v3`, then the
//! group version's `serverRelativeURL`. `apply` looks for a PATCH operation
//! tagged with the kind's `x-kubernetes-group-version-kind` whose parameters
//! include `fieldValidation` (then the server validates: it sends
//! `fieldValidation=Strict`), and computes strategic merge patches from the
//! schema tagged with that kind, using the list fields' patch merge keys.
//! kubectl falls back to `/openapi/v2` only when v3 is missing, and then asks
//! for protobuf only (a JSON answer fails with "proto: cannot parse invalid
//! wire-format data"); kubectl 1.27 and 1.28 always use that protobuf v2,
//! which [`OpenApi::v2_protobuf`] provides.

mod custom;
mod hash;
mod kinds;
mod paths;
mod resource;
mod schemas;
mod v2_proto;

pub use custom::CustomSchema;
pub use resource::ResourceDesc;
pub use schemas::{ListPatch, PatchMetaFn};

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One generated document: the value, its JSON bytes and their hash.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document serialised as JSON (what is served; only the bytes are kept:
    /// the `Value` tree they come from is several times their size).
    pub json: Vec<u8>,
    /// Upper-case hex content hash of `json`, used in `?hash=` URLs and ETags.
    pub hash: String,
}

impl Document {
    fn new(value: &Value) -> Self {
        let json = serde_json::to_vec(value).unwrap_or_default();
        let hash = hash::content_hash(&json);
        Self { json, hash }
    }
}

/// All OpenAPI documents for a set of resources, generated once.
#[derive(Debug, Clone)]
pub struct OpenApi {
    root: Document,
    group_versions: BTreeMap<String, Document>,
    v2: Document,
    v2_protobuf: (Vec<u8>, String),
}

/// The Kubernetes version the documents' `info.version` reports.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

impl OpenApi {
    /// Builds every document for `resources`. Resources whose kind has no
    /// schema here still get paths, with an untyped object schema.
    pub fn build(resources: &[ResourceDesc]) -> Self {
        Self::build_with_patch_meta(resources, None)
    }

    /// Like [`OpenApi::build`], and marks list fields with the patch strategy,
    /// merge key and list type `patch_meta` reports for them (k8s-openapi's
    /// schemas do not carry these), so `kubectl apply` computes strategic
    /// merge patches from the served schema as it does against Kubernetes.
    pub fn build_with_patch_meta(
        resources: &[ResourceDesc],
        patch_meta: Option<PatchMetaFn>,
    ) -> Self {
        Self::build_with_custom(resources, patch_meta, &[])
    }

    /// Like [`OpenApi::build_with_patch_meta`], with custom resources' schemas:
    /// each [`CustomSchema`] is published as Kubernetes publishes a
    /// CustomResourceDefinition's version (its kind and list kind under
    /// `<reversed group>.<version>.<Kind>`), and the resources of `resources`
    /// of that group, version and kind get paths referring to them. Without
    /// custom schemas the documents are exactly [`OpenApi::build_with_patch_meta`]'s.
    pub fn build_with_custom(
        resources: &[ResourceDesc],
        patch_meta: Option<PatchMetaFn>,
        custom: &[CustomSchema],
    ) -> Self {
        let all = schemas::Schemas::generate(resources, patch_meta, custom);
        let mut group_versions = BTreeMap::new();
        let mut gvs: Vec<(&str, &str)> = resources.iter().map(|r| (r.group, r.version)).collect();
        gvs.sort();
        gvs.dedup();
        for (group, version) in gvs {
            let members: Vec<&ResourceDesc> = resources
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .collect();
            let paths = paths::group_version_paths(&members, &all, paths::Flavor::V3);
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
                "paths": paths,
                "components": {"schemas": all.closure_v3(&paths)},
            });
            group_versions.insert(resource::gv_path(group, version), Document::new(&doc));
        }
        let mut root_paths = Map::new();
        for (path, doc) in &group_versions {
            root_paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}),
            );
        }
        let root = Document::new(&json!({"paths": root_paths}));
        let all_refs: Vec<&ResourceDesc> = resources.iter().collect();
        let v2_paths = paths::group_version_paths(&all_refs, &all, paths::Flavor::V2);
        let v2_value = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": v2_paths,
            "definitions": all.all_v2(),
            "securityDefinitions": {"BearerToken": {
                "type": "apiKey", "name": "authorization", "in": "header",
                "description": "Bearer token authentication"
            }},
            "security": [{"BearerToken": []}],
        });
        let v2 = Document::new(&v2_value);
        let pb = v2_proto::encode(&v2_value);
        drop(v2_value);
        let pb_hash = hash::content_hash(&pb);
        Self {
            root,
            group_versions,
            v2,
            v2_protobuf: (pb, pb_hash),
        }
    }

    /// `/openapi/v3`: `{"paths": {"apis/apps/v1": {"serverRelativeURL": ...}}}`.
    pub fn v3_root(&self) -> Value {
        serde_json::from_slice(&self.root.json).unwrap_or_default()
    }

    /// `/openapi/v3` as a served document (JSON bytes and hash).
    pub fn v3_root_document(&self) -> &Document {
        &self.root
    }

    /// The document for `api/v1` or `apis/<group>/<version>` (without the
    /// `/openapi/v3/` prefix or a query): its JSON bytes and hash.
    pub fn v3_group_version(&self, path: &str) -> Option<(&[u8], &str)> {
        self.v3_group_version_document(path)
            .map(|d| (d.json.as_slice(), d.hash.as_str()))
    }

    /// The whole document for a group version path.
    pub fn v3_group_version_document(&self, path: &str) -> Option<&Document> {
        self.group_versions.get(path.trim_matches('/'))
    }

    /// Every group version path served under `/openapi/v3/`.
    pub fn v3_paths(&self) -> impl Iterator<Item = &str> {
        self.group_versions.keys().map(String::as_str)
    }

    /// `/openapi/v2` as JSON (Swagger 2.0 with `definitions` and `paths`).
    pub fn v2(&self) -> &Document {
        &self.v2
    }

    /// `/openapi/v2` as protobuf (`openapi.v2.Document`), for
    /// `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`,
    /// and its hash.
    pub fn v2_protobuf(&self) -> (&[u8], &str) {
        (&self.v2_protobuf.0, &self.v2_protobuf.1)
    }
}
