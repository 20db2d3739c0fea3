//! The `paths` of a document: for each resource its collection, item, watch
//! and subresource paths, with operations carrying `operationId`,
//! `x-kubernetes-action`, `x-kubernetes-group-version-kind`, the query
//! parameters Kubernetes accepts (`fieldValidation`, `dryRun`,
//! `fieldManager` on writes), request bodies and responses, in OpenAPI v3
//! or Swagger 2.0 shape.

use crate::schemas::{subresource_kind, Schemas};
use crate::ResourceDesc;
use serde_json::{json, Map, Value};

/// Which OpenAPI dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    V2,
    V3,
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// What a custom resource's PATCH takes: no strategic merge patch (so
/// kubectl's client-side apply sends a JSON merge patch, as to Kubernetes).
const CUSTOM_PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

fn reference(flavor: Flavor, name: &str) -> Value {
    match flavor {
        Flavor::V3 => json!({"$ref": format!("#/components/schemas/{name}")}),
        Flavor::V2 => json!({"$ref": format!("#/definitions/{name}")}),
    }
}

fn param(flavor: Flavor, name: &str, location: &str, ty: &str, description: &str) -> Value {
    let mut p = json!({"name": name, "in": location, "description": description});
    if location == "path" {
        p["required"] = json!(true);
    } else {
        p["uniqueItems"] = json!(true);
    }
    match flavor {
        Flavor::V3 => p["schema"] = json!({"type": ty, "uniqueItems": true}),
        Flavor::V2 => p["type"] = json!(ty),
    }
    p
}

fn list_params(f: Flavor) -> Vec<Value> {
    vec![
        param(
            f,
            "allowWatchBookmarks",
            "query",
            "boolean",
            "Ask for BOOKMARK events on a watch.",
        ),
        param(
            f,
            "continue",
            "query",
            "string",
            "The continue token of the previous page of a paged list.",
        ),
        param(
            f,
            "fieldSelector",
            "query",
            "string",
            "Only objects whose fields match this selector.",
        ),
        param(
            f,
            "labelSelector",
            "query",
            "string",
            "Only objects whose labels match this selector.",
        ),
        param(
            f,
            "limit",
            "query",
            "integer",
            "The most objects to return in one page.",
        ),
        param(
            f,
            "resourceVersion",
            "query",
            "string",
            "Which resource version the list or watch starts from.",
        ),
        param(
            f,
            "resourceVersionMatch",
            "query",
            "string",
            "How resourceVersion is matched: Exact or NotOlderThan.",
        ),
        param(
            f,
            "sendInitialEvents",
            "query",
            "boolean",
            "Start a watch with the current objects as ADDED events, ended by a bookmark.",
        ),
        param(
            f,
            "timeoutSeconds",
            "query",
            "integer",
            "Stop the list or watch after this many seconds.",
        ),
        param(
            f,
            "watch",
            "query",
            "boolean",
            "Stream changes instead of listing.",
        ),
    ]
}

fn write_params(f: Flavor) -> Vec<Value> {
    vec![
        param(
            f,
            "dryRun",
            "query",
            "string",
            "With All, the request is validated and admitted but not persisted.",
        ),
        param(
            f,
            "fieldManager",
            "query",
            "string",
            "The name of the actor making the change, for managed fields.",
        ),
        param(
            f,
            "fieldValidation",
            "query",
            "string",
            "What to do with unknown or duplicate fields in the body: Ignore, Warn or Strict.",
        ),
    ]
}

fn delete_params(f: Flavor) -> Vec<Value> {
    vec![
        param(
            f,
            "dryRun",
            "query",
            "string",
            "With All, the deletion is validated but not persisted.",
        ),
        param(
            f,
            "gracePeriodSeconds",
            "query",
            "integer",
            "Seconds before the object is deleted; zero deletes at once.",
        ),
        param(
            f,
            "orphanDependents",
            "query",
            "boolean",
            "Deprecated: use propagationPolicy.",
        ),
        param(
            f,
            "propagationPolicy",
            "query",
            "string",
            "How dependents are collected: Orphan, Background or Foreground.",
        ),
    ]
}

struct Op<'a> {
    action: &'a str,
    id: String,
    gvk: Value,
    params: Vec<Value>,
    body: Option<Value>,
    /// The patch types of a PATCH's body; `None` for other operations.
    patch_types: Option<&'static [&'static str]>,
    response: Value,
    tag: &'a str,
}

fn operation(f: Flavor, op: Op) -> Value {
    let mut o = Map::new();
    o.insert("description".into(), json!(describe(op.action)));
    o.insert("operationId".into(), json!(op.id));
    o.insert("tags".into(), json!([op.tag]));
    let mut params = op.params;
    let ok = match f {
        Flavor::V3 => json!({"description": "OK", "content": {
            "application/json": {"schema": op.response},
            "application/yaml": {"schema": op.response},
            "application/vnd.kubernetes.protobuf": {"schema": op.response},
        }}),
        Flavor::V2 => json!({"description": "OK", "schema": op.response}),
    };
    let mut responses = Map::new();
    responses.insert("200".into(), ok.clone());
    if matches!(op.action, "post" | "put" | "patch") {
        let mut created = ok.clone();
        created["description"] = json!("Created");
        responses.insert("201".into(), created);
    }
    if matches!(op.action, "post" | "delete") {
        let mut accepted = ok;
        accepted["description"] = json!("Accepted");
        responses.insert("202".into(), accepted);
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    let body_types: Vec<&str> = if let Some(types) = op.patch_types {
        types.to_vec()
    } else {
        vec![
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
        ]
    };
    if let Some(schema) = op.body {
        match f {
            Flavor::V3 => {
                let content: Map<String, Value> = body_types
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": schema})))
                    .collect();
                o.insert(
                    "requestBody".into(),
                    json!({"required": op.action != "delete" && op.action != "deletecollection", "content": content}),
                );
            }
            Flavor::V2 => {
                params.insert(0, json!({"name": "body", "in": "body", "required": op.action != "delete" && op.action != "deletecollection", "schema": schema}));
                o.insert("consumes".into(), json!(body_types));
            }
        }
    }
    if f == Flavor::V2 {
        o.insert(
            "produces".into(),
            json!([
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf"
            ]),
        );
        o.insert("schemes".into(), json!(["https"]));
    }
    o.insert("parameters".into(), json!(params));
    o.insert("responses".into(), Value::Object(responses));
    o.insert("x-kubernetes-action".into(), json!(op.action));
    o.insert("x-kubernetes-group-version-kind".into(), op.gvk);
    Value::Object(o)
}

fn describe(action: &str) -> &'static str {
    match action {
        "get" => "read the specified object",
        "list" => "list or watch objects",
        "watch" => "watch changes to an object (deprecated: use list with watch=true)",
        "watchlist" => "watch changes to a list of objects (deprecated: use list with watch=true)",
        "post" => "create an object",
        "put" => "replace the specified object",
        "patch" => "partially update the specified object",
        "delete" => "delete the specified object",
        "deletecollection" => "delete a collection of objects",
        _ => "connect to the specified object",
    }
}

/// `apps` → `Apps`, `rbac.authorization.k8s.io` → `RbacAuthorization`,
/// `cert-manager.io` → `CertManagerIo`, core → `Core`.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    operation_id_part(group.trim_end_matches(".k8s.io"), true)
}

/// kube-openapi's `ToValidOperationID`: letters and `_` kept (digits too,
/// but not first), anything else dropped and the next letter upper-cased;
/// the first letter upper-cased when `capitalize_first`.
fn operation_id_part(s: &str, capitalize_first: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_numeric()) {
            if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        } else {
            upper = true;
        }
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn path_param_list(f: Flavor, namespaced: bool, named: bool) -> Vec<Value> {
    let mut v = Vec::new();
    if named {
        v.push(param(f, "name", "path", "string", "name of the object"));
    }
    if namespaced {
        v.push(param(
            f,
            "namespace",
            "path",
            "string",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    v.push(param(
        f,
        "pretty",
        "query",
        "string",
        "If 'true', the output is pretty printed.",
    ));
    v
}

/// Paths of `resources`, keyed by absolute path (`/apis/apps/v1/...`).
pub(crate) fn group_version_paths(
    resources: &[&ResourceDesc],
    schemas: &Schemas,
    f: Flavor,
) -> Value {
    let mut paths = Map::new();
    for r in resources {
        resource_paths(r, schemas, f, &mut paths);
    }
    Value::Object(paths)
}

/// What every path of one resource shares: its names, the prefix and
/// scope of its paths, and the schema references of its operations.
struct ResourcePaths<'a> {
    r: &'a ResourceDesc,
    f: Flavor,
    /// `/api/v1` or `/apis/<group>/<version>`.
    prefix: String,
    /// `/namespaces/{namespace}` for a namespaced resource, else empty.
    scope: &'static str,
    /// The collection's path.
    collection: String,
    /// The named object's path.
    item: String,
    /// The group and version in operation ids (`CoreV1`, `AppsV1`).
    gv: String,
    /// The operations' tag (`core_v1`, `apps_v1`).
    tag: String,
    /// `Namespaced` in operation ids of a namespaced resource, else empty.
    ns: &'static str,
    /// What its PATCH operations take.
    patch_types: &'static [&'static str],
    kind: &'a str,
    /// The `x-kubernetes-group-version-kind` of the resource's operations.
    gvk: Value,
    /// References to the object's and its list's schemas.
    obj: Value,
    list: Value,
    /// References to meta/v1 Status, DeleteOptions, WatchEvent and Patch.
    status: Value,
    delete_options: Value,
    watch_event: Value,
    patch: Value,
}

fn resource_paths(r: &ResourceDesc, schemas: &Schemas, f: Flavor, paths: &mut Map<String, Value>) {
    let rp = ResourcePaths::new(r, schemas, f);
    let custom = schemas.is_custom(r.group, r.version, r.kind);
    let mut own = Map::new();
    rp.collection_paths(&mut own);
    rp.item_paths(&mut own);
    rp.cross_namespace_paths(&mut own);
    // A CRD's paths are those of Kubernetes' CRD OpenAPI builder, which
    // has no `/watch/` routes (a watch is a list with `watch=true`).
    if !custom {
        rp.watch_paths(&mut own);
    }
    for sub in r.subresources {
        rp.subresource_paths(sub, &mut own);
    }
    if custom {
        describe_custom(&mut own, r.kind);
    }
    paths.extend(own);
}

/// The operations' descriptions as Kubernetes' CRD builder words them
/// (`descriptionFor`): "list objects of kind CronTab", "create a CronTab",
/// "read status of the specified CronTab", "delete collection of CronTab".
fn describe_custom(paths: &mut Map<String, Value>, kind: &str) {
    let article = match kind.chars().next().map(|c| c.to_ascii_lowercase()) {
        _ if kind.ends_with('s') && !kind.ends_with("ss") => " ",
        Some('a' | 'e' | 'i' | 'o' | 'u') => " an ",
        _ => " a ",
    };
    for (path, item) in paths.iter_mut() {
        let sub = path
            .rsplit_once("{name}/")
            .map(|(_, s)| format!(" {s} of"))
            .unwrap_or_default();
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(action) = op.get("x-kubernetes-action").and_then(Value::as_str) else {
                continue;
            };
            let text = match action {
                "list" => format!("list{sub} objects of kind {kind}"),
                "post" => format!("create{sub}{article}{kind}"),
                "delete" => format!("delete{sub}{article}{kind}"),
                "deletecollection" => format!("delete collection of{sub} {kind}"),
                "get" => format!("read{sub} the specified {kind}"),
                "put" => format!("replace{sub} the specified {kind}"),
                "patch" => format!("partially update{sub} the specified {kind}"),
                _ => continue,
            };
            op["description"] = json!(text);
        }
    }
}

impl<'a> ResourcePaths<'a> {
    fn new(r: &'a ResourceDesc, schemas: &Schemas, f: Flavor) -> Self {
        let prefix = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let scope = if r.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let collection = format!("{prefix}{scope}/{}", r.plural);
        let item = format!("{collection}/{{name}}");
        let gv = format!("{}{}", group_camel(r.group), capitalize(r.version));
        // The operations' tag, as the API server's `GetOperationIDAndTags`
        // makes it from the path: `core_v1`, `rbacAuthorization_v1`.
        let group = if r.group.is_empty() {
            "core"
        } else {
            r.group.trim_end_matches(".k8s.io")
        };
        let tag = format!(
            "{}_{}",
            operation_id_part(group, false),
            operation_id_part(r.version, false)
        );
        let ns = if r.namespaced { "Namespaced" } else { "" };
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let (obj, list) = match schemas.name_of(r.group, r.version, r.kind) {
            Some(name) => (reference(f, name), reference(f, &schemas.list_of(name))),
            None => (json!({"type": "object"}), json!({"type": "object"})),
        };
        let status = reference(f, &format!("{META}.Status"));
        let delete_options = reference(f, &format!("{META}.DeleteOptions"));
        let watch_event = reference(f, &format!("{META}.WatchEvent"));
        let patch = reference(f, &format!("{META}.Patch"));
        let kind = r.kind;
        let patch_types = if schemas.is_custom(r.group, r.version, r.kind) {
            CUSTOM_PATCH_TYPES
        } else {
            PATCH_TYPES
        };
        ResourcePaths {
            r,
            f,
            patch_types,
            prefix,
            scope,
            collection,
            item,
            gv,
            tag,
            ns,
            kind,
            gvk,
            obj,
            list,
            status,
            delete_options,
            watch_event,
            patch,
        }
    }

    /// One operation of this resource.
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of one operation, named at each call"
    )]
    fn op(
        &self,
        action: &str,
        id: String,
        params: Vec<Value>,
        body: Option<Value>,
        patch_body: bool,
        response: Value,
        gvk: &Value,
    ) -> Value {
        operation(
            self.f,
            Op {
                action,
                id,
                gvk: gvk.clone(),
                params,
                body,
                patch_types: patch_body.then_some(self.patch_types),
                response,
                tag: &self.tag,
            },
        )
    }

    /// The collection: list, create, deletecollection.
    fn collection_paths(&self, paths: &mut Map<String, Value>) {
        let ResourcePaths {
            r,
            gv,
            ns,
            kind,
            obj,
            list,
            status,
            delete_options,
            gvk,
            collection,
            ..
        } = self;
        let f = self.f;
        let mut coll = Map::new();
        if r.has_verb("list") {
            coll.insert(
                "get".into(),
                self.op(
                    "list",
                    format!("list{gv}{ns}{kind}"),
                    list_params(f),
                    None,
                    false,
                    list.clone(),
                    gvk,
                ),
            );
        }
        if r.has_verb("create") {
            coll.insert(
                "post".into(),
                self.op(
                    "post",
                    format!("create{gv}{ns}{kind}"),
                    write_params(f),
                    Some(obj.clone()),
                    false,
                    obj.clone(),
                    gvk,
                ),
            );
        }
        if r.has_verb("deletecollection") {
            let mut p = delete_params(f);
            p.extend(list_params(f));
            p.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            p.dedup_by(|a, b| a["name"] == b["name"]);
            coll.insert(
                "delete".into(),
                self.op(
                    "deletecollection",
                    format!("deletecollection{gv}{ns}{kind}"),
                    p,
                    Some(delete_options.clone()),
                    false,
                    status.clone(),
                    gvk,
                ),
            );
        }
        if !coll.is_empty() {
            coll.insert(
                "parameters".into(),
                json!(path_param_list(f, r.namespaced, false)),
            );
            paths.insert(collection.clone(), Value::Object(coll));
        }
    }

    /// The named object: get, update, patch, delete.
    fn item_paths(&self, paths: &mut Map<String, Value>) {
        let ResourcePaths {
            r,
            gv,
            ns,
            kind,
            obj,
            status,
            delete_options,
            patch,
            gvk,
            item,
            ..
        } = self;
        let f = self.f;
        let mut one = Map::new();
        if r.has_verb("get") {
            one.insert(
                "get".into(),
                self.op(
                    "get",
                    format!("read{gv}{ns}{kind}"),
                    vec![],
                    None,
                    false,
                    obj.clone(),
                    gvk,
                ),
            );
        }
        if r.has_verb("update") {
            one.insert(
                "put".into(),
                self.op(
                    "put",
                    format!("replace{gv}{ns}{kind}"),
                    write_params(f),
                    Some(obj.clone()),
                    false,
                    obj.clone(),
                    gvk,
                ),
            );
        }
        if r.has_verb("patch") {
            let mut p = write_params(f);
            p.push(param(
                f,
                "force",
                "query",
                "boolean",
                "Take over fields owned by other managers on an apply request.",
            ));
            one.insert(
                "patch".into(),
                self.op(
                    "patch",
                    format!("patch{gv}{ns}{kind}"),
                    p,
                    Some(patch.clone()),
                    true,
                    obj.clone(),
                    gvk,
                ),
            );
        }
        if r.has_verb("delete") {
            one.insert(
                "delete".into(),
                self.op(
                    "delete",
                    format!("delete{gv}{ns}{kind}"),
                    delete_params(f),
                    Some(delete_options.clone()),
                    false,
                    status.clone(),
                    gvk,
                ),
            );
        }
        if !one.is_empty() {
            one.insert(
                "parameters".into(),
                json!(path_param_list(f, r.namespaced, true)),
            );
            paths.insert(item.clone(), Value::Object(one));
        }
    }

    /// The list across namespaces of a namespaced resource.
    fn cross_namespace_paths(&self, paths: &mut Map<String, Value>) {
        let ResourcePaths {
            r,
            gv,
            kind,
            list,
            gvk,
            prefix,
            ..
        } = self;
        let f = self.f;
        if r.has_verb("list") && r.namespaced {
            let mut all = Map::new();
            all.insert(
                "get".into(),
                self.op(
                    "list",
                    format!("list{gv}{kind}ForAllNamespaces"),
                    list_params(f),
                    None,
                    false,
                    list.clone(),
                    gvk,
                ),
            );
            all.insert("parameters".into(), json!(path_param_list(f, false, false)));
            paths.insert(format!("{prefix}/{}", r.plural), Value::Object(all));
        }
    }

    /// The deprecated `/watch/` paths.
    fn watch_paths(&self, paths: &mut Map<String, Value>) {
        let ResourcePaths {
            r,
            gv,
            ns,
            kind,
            watch_event,
            gvk,
            prefix,
            scope,
            ..
        } = self;
        let f = self.f;
        if r.has_verb("watch") {
            let mut watch_paths = vec![
                (
                    format!("{prefix}/watch{scope}/{}", r.plural),
                    "watchlist",
                    format!("watch{gv}{ns}{kind}List"),
                    r.namespaced,
                    false,
                ),
                (
                    format!("{prefix}/watch{scope}/{}/{{name}}", r.plural),
                    "watch",
                    format!("watch{gv}{ns}{kind}"),
                    r.namespaced,
                    true,
                ),
            ];
            if r.namespaced {
                watch_paths.push((
                    format!("{prefix}/watch/{}", r.plural),
                    "watchlist",
                    format!("watch{gv}{kind}ListForAllNamespaces"),
                    false,
                    false,
                ));
            }
            for (path, action, id, namespaced, named) in watch_paths {
                let mut w = Map::new();
                w.insert(
                    "get".into(),
                    self.op(
                        action,
                        id,
                        list_params(f),
                        None,
                        false,
                        watch_event.clone(),
                        gvk,
                    ),
                );
                w.insert(
                    "parameters".into(),
                    json!(path_param_list(f, namespaced, named)),
                );
                paths.insert(path, Value::Object(w));
            }
        }
    }

    /// One subresource's path.
    fn subresource_paths(&self, sub: &str, paths: &mut Map<String, Value>) {
        let ResourcePaths {
            r,
            gv,
            ns,
            kind,
            gvk,
            item,
            ..
        } = self;
        let f = self.f;
        let path = format!("{item}/{sub}");
        let mut s = Map::new();
        let sub_camel = capitalize(sub);
        match (sub, subresource_kind(sub)) {
            // `/approval` (CertificateSigningRequests) reads and writes the
            // whole object, as `/status` does.
            ("status" | "approval", _) => self.whole_object_subresource(&sub_camel, &mut s),
            ("scale", Some((name, g, v, k))) => self.scale_subresource((name, g, v, k), &mut s),
            (_, Some((name, g, v, k))) => {
                let sgvk = json!({"group": g, "version": v, "kind": k});
                let body = reference(f, name);
                s.insert(
                    "post".into(),
                    self.op(
                        "post",
                        format!("create{gv}{ns}{kind}{sub_camel}"),
                        write_params(f),
                        Some(body.clone()),
                        false,
                        body,
                        &sgvk,
                    ),
                );
            }
            ("log", None) => {
                let p = [
                    "container",
                    "follow",
                    "previous",
                    "sinceSeconds",
                    "tailLines",
                    "timestamps",
                    "limitBytes",
                ]
                .iter()
                .map(|n| {
                    let ty = match *n {
                        "follow" | "previous" | "timestamps" => "boolean",
                        "sinceSeconds" | "tailLines" | "limitBytes" => "integer",
                        _ => "string",
                    };
                    param(f, n, "query", ty, "log option")
                })
                .collect();
                s.insert(
                    "get".into(),
                    self.op(
                        "get",
                        format!("read{gv}{ns}{kind}Log"),
                        p,
                        None,
                        false,
                        json!({"type": "string"}),
                        gvk,
                    ),
                );
            }
            _ => {
                for method in ["get", "post"] {
                    let id = format!("connect{}{gv}{ns}{kind}{sub_camel}", capitalize(method));
                    s.insert(
                        method.into(),
                        self.op(
                            "connect",
                            id,
                            vec![],
                            None,
                            false,
                            json!({"type": "string"}),
                            gvk,
                        ),
                    );
                }
            }
        }
        s.insert(
            "parameters".into(),
            json!(path_param_list(f, r.namespaced, true)),
        );
        paths.insert(path, Value::Object(s));
    }

    /// A subresource that reads and writes the whole object (`/status`, `/approval`).
    fn whole_object_subresource(&self, sub_camel: &str, s: &mut Map<String, Value>) {
        let ResourcePaths {
            gv,
            ns,
            kind,
            obj,
            patch,
            gvk,
            ..
        } = self;
        let f = self.f;
        s.insert(
            "get".into(),
            self.op(
                "get",
                format!("read{gv}{ns}{kind}{sub_camel}"),
                vec![],
                None,
                false,
                obj.clone(),
                gvk,
            ),
        );
        s.insert(
            "put".into(),
            self.op(
                "put",
                format!("replace{gv}{ns}{kind}{sub_camel}"),
                write_params(f),
                Some(obj.clone()),
                false,
                obj.clone(),
                gvk,
            ),
        );
        let mut p = write_params(f);
        p.push(param(
            f,
            "force",
            "query",
            "boolean",
            "Take over fields owned by other managers on an apply request.",
        ));
        s.insert(
            "patch".into(),
            self.op(
                "patch",
                format!("patch{gv}{ns}{kind}{sub_camel}"),
                p,
                Some(patch.clone()),
                true,
                obj.clone(),
                gvk,
            ),
        );
    }

    /// `/scale`: the autoscaling Scale.
    fn scale_subresource(
        &self,
        (name, g, v, k): (&str, &str, &str, &str),
        s: &mut Map<String, Value>,
    ) {
        let ResourcePaths {
            gv,
            ns,
            kind,
            patch,
            ..
        } = self;
        let f = self.f;
        let sgvk = json!({"group": g, "version": v, "kind": k});
        let scale = reference(f, name);
        s.insert(
            "get".into(),
            self.op(
                "get",
                format!("read{gv}{ns}{kind}Scale"),
                vec![],
                None,
                false,
                scale.clone(),
                &sgvk,
            ),
        );
        s.insert(
            "put".into(),
            self.op(
                "put",
                format!("replace{gv}{ns}{kind}Scale"),
                write_params(f),
                Some(scale.clone()),
                false,
                scale.clone(),
                &sgvk,
            ),
        );
        let mut p = write_params(f);
        p.push(param(
            f,
            "force",
            "query",
            "boolean",
            "Take over fields owned by other managers on an apply request.",
        ));
        s.insert(
            "patch".into(),
            self.op(
                "patch",
                format!("patch{gv}{ns}{kind}Scale"),
                p,
                Some(patch.clone()),
                true,
                scale,
                &sgvk,
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_names_become_operation_id_parts() {
        assert_eq!(super::group_camel(""), "Core");
        assert_eq!(super::group_camel("apps"), "Apps");
        assert_eq!(
            super::group_camel("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(super::capitalize("v1"), "V1");
        assert_eq!(super::group_camel("cert-manager.io"), "CertManagerIo");
        assert_eq!(
            super::operation_id_part("stable.example.com", false),
            "stableExampleCom"
        );
        assert_eq!(super::operation_id_part("v1beta1", true), "V1beta1");
    }
}
