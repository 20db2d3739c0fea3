//! ControllerRevisions: the history of a workload's pod template, shared by
//! the DaemonSet and StatefulSet controllers, as Kubernetes'
//! `pkg/controller/history` (and `controller.ComputeHash`) keep it.
//!
//! A revision is an immutable snapshot (`data`, a patch that restores the
//! owner's template) with a number (`revision`) that grows with every new
//! template; the owner's pods carry the revision they were made from in the
//! [`REVISION_LABEL`] label, which is how a rolling update tells old pods
//! from new ones and how `kubectl rollout history|undo` finds the templates.
//!
//! How the two controllers use it:
//! - **DaemonSet** names a revision `<ds>-<hash>` with the *template* hash
//!   ([`template_hash`], FNV-1a over the template and the collision count)
//!   and labels the revision and its pods `controller-revision-hash=<hash>`.
//!   It claims its revisions ([`History::claim`]), finds the one equal to
//!   the current template (by data), renumbers it to the newest if an old
//!   template came back ([`History::update_revision`]), or creates one; a
//!   name taken by a different revision bumps `status.collisionCount` (the
//!   controller does that itself, as Kubernetes' `snapshot` does). Old
//!   revisions no pod uses are dropped beyond `revisionHistoryLimit`
//!   ([`truncate`]).
//! - **StatefulSet** builds revisions with [`new_revision`] (named
//!   `<sts>-<hash>` from the *data* hash, [`hash_revision`], FNV-1 with the
//!   collision count as a decimal probe, and labelled
//!   [`HASH_LABEL`]`=<hash>`), creates them with [`History::create`], which
//!   retries under a new name while the collision count grows, and labels
//!   its pods `controller-revision-hash=<revision name>`. It too renumbers
//!   with [`History::update_revision`] and truncates with [`truncate`],
//!   keeping the current and update revisions and every one a pod uses.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::Resource;
use serde_json::{json, Value};

use crate::podutil::{self, Selector};

/// The label on a ControllerRevision made by [`new_revision`] holding the
/// hash of its data (Kubernetes' `ControllerRevisionHashLabel`).
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The label on a DaemonSet's or StatefulSet's pods (and on a DaemonSet's
/// revisions) naming the revision they were made from
/// (`apps.DefaultDaemonSetUniqueLabelKey`, `apps.StatefulSetRevisionLabel`).
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// How many times [`History::create`] tries new names before giving up.
const MAX_COLLISIONS: i32 = 100;

const FNV_OFFSET: u32 = 2_166_136_261;
const FNV_PRIME: u32 = 16_777_619;

/// 32-bit FNV-1 (Go's `fnv.New32`).
pub fn fnv32(parts: &[&[u8]]) -> u32 {
    let mut h = FNV_OFFSET;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h = h.wrapping_mul(FNV_PRIME);
        h ^= u32::from(*b);
    }
    h
}

/// 32-bit FNV-1a (Go's `fnv.New32a`).
pub fn fnv32a(parts: &[&[u8]]) -> u32 {
    let mut h = FNV_OFFSET;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Kubernetes' `rand.SafeEncodeString`: every character mapped into an
/// alphabet without vowels (no words spelt by accident) or look-alikes.
pub fn safe_encode(s: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.chars()
        .map(|c| ALPHABET[(c as usize) % ALPHABET.len()] as char)
        .collect()
}

/// The hash of a revision's data (Kubernetes' `HashControllerRevision`):
/// FNV-1 over the data's JSON and, if given, the collision count written
/// in decimal.
pub fn hash_revision(data: Option<&Value>, probe: Option<i32>) -> String {
    let bytes = data
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::to_vec(v).ok())
        .unwrap_or_default();
    let probe = probe.map(|p| p.to_string()).unwrap_or_default();
    safe_encode(&fnv32(&[&bytes, probe.as_bytes()]).to_string())
}

/// The hash of a pod template (Kubernetes' `controller.ComputeHash`, used
/// by the DaemonSet controller to name revisions and label pods): FNV-1a
/// over the template and, if given, the collision count as eight
/// little-endian bytes. (Kubernetes hashes Go's printed form of the
/// template; this hashes its JSON, so the values differ from Kubernetes'
/// but are as stable.)
pub fn template_hash(t: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(t).unwrap_or_default();
    let count = collision_count.map(|c| {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&(c as u32).to_le_bytes());
        b
    });
    let h = match &count {
        Some(c) => fnv32a(&[&bytes, c]),
        None => fnv32a(&[&bytes]),
    };
    safe_encode(&h.to_string())
}

/// A revision's name: `<prefix>-<hash>`, the prefix cut to 223 bytes so the
/// name fits in 253.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut end = prefix.len().min(223);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{hash}", &prefix[..end])
}

/// A new revision owned by `owner` (Kubernetes' `NewControllerRevision`):
/// the template's labels plus [`HASH_LABEL`], named `<owner>-<hash>` from
/// the data hash and `collision_count`.
pub fn new_revision<K: Resource<DynamicType = ()>>(
    owner: &K,
    template_labels: Option<&BTreeMap<String, String>>,
    data: Value,
    revision: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let hash = hash_revision(Some(&data), collision_count);
    let mut labels = template_labels.cloned().unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(
                owner.meta().name.as_deref().unwrap_or(""),
                &hash,
            )),
            namespace: owner.meta().namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![podutil::owner_ref_to(owner)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

fn data_of(r: &ControllerRevision) -> Option<&Value> {
    r.data.as_ref().map(|d| &d.0).filter(|v| !v.is_null())
}

/// Whether two revisions hold the same data (Kubernetes' `EqualRevision`:
/// differing [`HASH_LABEL`]s settle it at once).
pub fn equal_revision(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    let hash = |r: &ControllerRevision| {
        r.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(HASH_LABEL))
            .cloned()
    };
    if let (Some(x), Some(y)) = (hash(a), hash(b)) {
        if x != y {
            return false;
        }
    }
    data_of(a) == data_of(b)
}

/// The revisions equal to `needle`, in their order.
pub fn find_equal<'a>(
    revisions: &'a [ControllerRevision],
    needle: &ControllerRevision,
) -> Vec<&'a ControllerRevision> {
    revisions
        .iter()
        .filter(|r| equal_revision(r, needle))
        .collect()
}

/// Kubernetes' order of revisions: by number, then older first, then name.
pub fn by_revision(a: &ControllerRevision, b: &ControllerRevision) -> Ordering {
    a.revision
        .cmp(&b.revision)
        .then_with(|| {
            let t = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
            t(a).cmp(&t(b))
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Sorts revisions oldest first ([`by_revision`]).
pub fn sort(revisions: &mut [ControllerRevision]) {
    revisions.sort_by(by_revision);
}

/// The highest revision number (0 if none).
pub fn max_revision(revisions: &[ControllerRevision]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0)
}

/// The number the next new revision gets.
pub fn next_revision(revisions: &[ControllerRevision]) -> i64 {
    max_revision(revisions) + 1
}

/// The revisions in `owner`'s namespace that match `selector` and are owned
/// by `owner` or by no controller (Kubernetes' `ListControllerRevisions`),
/// from a cache.
pub fn list<K: Resource<DynamicType = ()>>(
    store: &Store<ControllerRevision>,
    owner: &K,
    selector: &Selector,
) -> Vec<Arc<ControllerRevision>> {
    let ns = owner.meta().namespace.as_deref();
    let uid = owner.meta().uid.as_deref().unwrap_or("");
    store
        .state()
        .into_iter()
        .filter(|r| r.metadata.namespace.as_deref() == ns)
        .filter(|r| selector.matches(r.metadata.labels.as_ref()))
        .filter(|r| podutil::controller_ref(&r.metadata).is_none_or(|c| c.uid == uid))
        .collect()
}

/// Writes revisions through the API.
#[derive(Clone)]
pub struct History {
    client: kube::Client,
}

impl History {
    /// History helpers writing with `client`.
    pub fn new(client: kube::Client) -> Self {
        History { client }
    }

    fn api(&self, ns: &str) -> Api<ControllerRevision> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Creates `revision` as `owner`'s (Kubernetes'
    /// `CreateControllerRevision`): named from its data hash and
    /// `collision_count`; when the name is taken by a revision with other
    /// data, the count grows and the next name is tried. A revision with
    /// the same data already there is returned as is.
    pub async fn create<K: Resource<DynamicType = ()>>(
        &self,
        owner: &K,
        revision: &ControllerRevision,
        collision_count: &mut i32,
    ) -> kube::Result<ControllerRevision> {
        let ns = owner.meta().namespace.clone().unwrap_or_default();
        let api = self.api(&ns);
        let prefix = owner.meta().name.clone().unwrap_or_default();
        let mut tries = 0;
        loop {
            let hash = hash_revision(data_of(revision), Some(*collision_count));
            let mut r = revision.clone();
            r.metadata.name = Some(revision_name(&prefix, &hash));
            r.metadata.namespace = Some(ns.clone());
            r.metadata.resource_version = None;
            r.metadata.uid = None;
            match api.create(&PostParams::default(), &r).await {
                Err(kube::Error::Api(s)) if s.code == 409 && tries < MAX_COLLISIONS => {
                    let name = r.metadata.name.clone().unwrap_or_default();
                    let exists = api.get(&name).await?;
                    if data_of(&exists) == data_of(&r) {
                        return Ok(exists);
                    }
                    *collision_count = collision_count.saturating_add(1);
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Sets a revision's number (Kubernetes' `UpdateControllerRevision`),
    /// retrying on conflicts with a fresh read.
    pub async fn update_revision(
        &self,
        revision: &ControllerRevision,
        new_revision: i64,
    ) -> kube::Result<ControllerRevision> {
        let ns = revision.metadata.namespace.clone().unwrap_or_default();
        let name = revision.metadata.name.clone().unwrap_or_default();
        let api = self.api(&ns);
        let mut current = revision.clone();
        let mut attempt = 0;
        loop {
            if current.revision == new_revision {
                return Ok(current);
            }
            current.revision = new_revision;
            match api.replace(&name, &PostParams::default(), &current).await {
                Ok(r) => return Ok(r),
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
                    current = api.get(&name).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes a revision (gone already is fine).
    pub async fn delete(&self, revision: &ControllerRevision) -> kube::Result<()> {
        let ns = revision.metadata.namespace.clone().unwrap_or_default();
        let name = revision.metadata.name.clone().unwrap_or_default();
        let mut dp = DeleteParams::default();
        if let Some(uid) = revision.metadata.uid.clone() {
            dp = crate::util::delete_uid(&uid, None);
        }
        match self.api(&ns).delete(&name, &dp).await {
            Ok(_) => Ok(()),
            Err(e) if crate::util::gone(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes `owner` the controller of an orphaned revision (Kubernetes'
    /// `AdoptControllerRevision`); the patch fails if the revision changed.
    pub async fn adopt<K: Resource<DynamicType = ()>>(
        &self,
        owner: &K,
        revision: &ControllerRevision,
    ) -> kube::Result<ControllerRevision> {
        let mut refs = revision
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default();
        refs.push(podutil::owner_ref_to(owner));
        let patch = json!({"metadata": {
            "ownerReferences": refs,
            "uid": revision.metadata.uid,
            "resourceVersion": revision.metadata.resource_version,
        }});
        self.patch(revision, &patch).await
    }

    /// Drops `owner` from a revision's owners (Kubernetes'
    /// `ReleaseControllerRevision`); a revision gone is fine.
    pub async fn release<K: Resource<DynamicType = ()>>(
        &self,
        owner: &K,
        revision: &ControllerRevision,
    ) -> kube::Result<()> {
        let uid = owner.meta().uid.as_deref().unwrap_or("");
        let refs: Vec<_> = revision
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|r| r.uid != uid)
            .cloned()
            .collect();
        let refs = if refs.is_empty() {
            Value::Null
        } else {
            json!(refs)
        };
        let patch = json!({"metadata": {
            "ownerReferences": refs,
            "uid": revision.metadata.uid,
        }});
        match self.patch(revision, &patch).await {
            Ok(_) => Ok(()),
            Err(e) if crate::util::not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn patch(
        &self,
        revision: &ControllerRevision,
        patch: &Value,
    ) -> kube::Result<ControllerRevision> {
        let ns = revision.metadata.namespace.clone().unwrap_or_default();
        let name = revision.metadata.name.clone().unwrap_or_default();
        self.api(&ns)
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
    }

    /// The revisions `owner` controls, claiming what the selector says
    /// (Kubernetes' `ClaimControllerRevisions`): orphans that match are
    /// adopted (unless the owner is being deleted), owned ones that no
    /// longer match are released. Revisions of other controllers are left
    /// alone.
    pub async fn claim<K: Resource<DynamicType = ()>>(
        &self,
        store: &Store<ControllerRevision>,
        owner: &K,
        selector: &Selector,
    ) -> kube::Result<Vec<ControllerRevision>> {
        let ns = owner.meta().namespace.as_deref();
        let uid = owner.meta().uid.as_deref().unwrap_or("");
        let deleting = owner.meta().deletion_timestamp.is_some();
        let mut claimed = Vec::new();
        for r in store.state() {
            if r.metadata.namespace.as_deref() != ns {
                continue;
            }
            let matches = selector.matches(r.metadata.labels.as_ref());
            match podutil::controller_ref(&r.metadata) {
                Some(c) if c.uid == uid => {
                    if matches {
                        claimed.push(r.as_ref().clone());
                    } else if !deleting {
                        self.release(owner, &r).await?;
                    }
                }
                Some(_) => {}
                None if matches && !deleting && r.metadata.deletion_timestamp.is_none() => {
                    match self.adopt(owner, &r).await {
                        Ok(a) => claimed.push(a),
                        // Changed or gone meanwhile: the next pass sees it.
                        Err(e) if crate::util::gone(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                None => {}
            }
        }
        Ok(claimed)
    }
}

/// Deletes the oldest revisions not `live` (live: used by a pod, or the
/// current or update revision) beyond `limit` (the owner's
/// `revisionHistoryLimit`); returns how many it deleted.
pub async fn truncate(
    history: &History,
    revisions: &[ControllerRevision],
    live: impl Fn(&ControllerRevision) -> bool,
    limit: i32,
) -> kube::Result<usize> {
    let mut old: Vec<&ControllerRevision> = revisions.iter().filter(|r| !live(r)).collect();
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    if old.len() <= limit {
        return Ok(0);
    }
    old.sort_by(|a, b| by_revision(a, b));
    let excess = old.len() - limit;
    for r in &old[..excess] {
        history.delete(r).await?;
    }
    Ok(excess)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSet;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv32(&[b""]), 0x811c9dc5);
        assert_eq!(fnv32(&[b"a"]), 0x050c5d7e);
        assert_eq!(fnv32(&[b"foobar"]), 0x31f0b262);
        assert_eq!(fnv32a(&[b"a"]), 0xe40c292c);
        assert_eq!(fnv32a(&[b"foobar"]), 0xbf9cf968);
        assert_eq!(fnv32a(&[b"foo", b"bar"]), fnv32a(&[b"foobar"]));
    }

    #[test]
    fn safe_encoding_maps_digits_like_kubernetes() {
        // '0' is 48: 48 % 27 = 21 -> '4'; '9' is 57: 57 % 27 = 3 -> 'f'.
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    fn ds(name: &str) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some("u-1".into()),
                ..ObjectMeta::default()
            },
            ..DaemonSet::default()
        }
    }

    #[test]
    fn new_revisions_are_named_and_labelled_by_their_data() {
        let labels = BTreeMap::from([("app".to_string(), "x".to_string())]);
        let data = json!({"spec": {"template": {"$patch": "replace"}}});
        let r = new_revision(&ds("web"), Some(&labels), data.clone(), 3, None);
        let hash = hash_revision(Some(&data), None);
        assert_eq!(r.metadata.name.as_deref(), Some(&*format!("web-{hash}")));
        let l = r.metadata.labels.clone().unwrap_or_default();
        assert_eq!(l.get(HASH_LABEL), Some(&hash));
        assert_eq!(l.get("app").map(String::as_str), Some("x"));
        assert_eq!(r.revision, 3);
        let owner = r.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owner.len(), 1);
        assert_eq!(owner[0].kind, "DaemonSet");
        assert_eq!(owner[0].controller, Some(true));
        // The collision count changes the name; the same data does not.
        let again = new_revision(&ds("web"), Some(&labels), data.clone(), 4, None);
        assert_eq!(again.metadata.name, r.metadata.name);
        let bumped = new_revision(&ds("web"), Some(&labels), data, 3, Some(1));
        assert_ne!(bumped.metadata.name, r.metadata.name);
        assert!(hash
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn template_hash_depends_on_template_and_collisions() {
        let mut t = PodTemplateSpec::default();
        let a = template_hash(&t, None);
        assert_eq!(a, template_hash(&t, None));
        assert_ne!(a, template_hash(&t, Some(0)));
        assert_ne!(template_hash(&t, Some(0)), template_hash(&t, Some(1)));
        t.metadata = Some(ObjectMeta {
            labels: Some(BTreeMap::from([("a".into(), "b".into())])),
            ..ObjectMeta::default()
        });
        assert_ne!(a, template_hash(&t, None));
    }

    #[test]
    fn long_prefixes_are_cut() {
        let long = "a".repeat(300);
        let n = revision_name(&long, "xyz");
        assert_eq!(n.len(), 223 + 4);
        assert_eq!(revision_name("ds", "h"), "ds-h");
    }

    fn rev(name: &str, n: i64, data: Value) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(data)),
            revision: n,
        }
    }

    #[test]
    fn equality_ordering_and_numbers() {
        let a = rev("a", 2, json!({"x": 1}));
        let b = rev("b", 1, json!({"x": 1}));
        let c = rev("c", 3, json!({"x": 2}));
        assert!(equal_revision(&a, &b));
        assert!(!equal_revision(&a, &c));
        let mut labelled = a.clone();
        labelled.metadata.labels = Some(BTreeMap::from([(HASH_LABEL.into(), "p".into())]));
        let mut other = b.clone();
        other.metadata.labels = Some(BTreeMap::from([(HASH_LABEL.into(), "q".into())]));
        assert!(!equal_revision(&labelled, &other));
        let mut all = vec![a.clone(), b.clone(), c.clone()];
        sort(&mut all);
        let names: Vec<_> = all.iter().filter_map(|r| r.metadata.name.clone()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        assert_eq!(find_equal(&all, &a).len(), 2);
        assert_eq!(max_revision(&all), 3);
        assert_eq!(next_revision(&all), 4);
        assert_eq!(next_revision(&[]), 1);
    }
}
