//! Expectations: what a controller has just created or deleted and not yet
//! seen in its cache, so that a reconcile running before the watch catches
//! up does not create (or delete) the same pods again.
//!
//! Unlike a plain counter, the pods are remembered by name (creations) and
//! uid (deletions), and a reconcile also checks the cache itself: a pod
//! created and removed before the watch ever showed it does not block its
//! owner. As in Kubernetes, expectations older than five minutes are treated
//! as met, so a lost event never wedges an owner.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::watchqueue::Key;

/// How long unmet expectations hold an owner back.
pub(crate) const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Default)]
struct Pending {
    /// Names of pods created and not yet observed.
    adds: HashSet<String>,
    /// Creations asked for whose names are not known yet.
    unnamed_adds: usize,
    /// Uids of pods deleted and still observed.
    dels: HashSet<String>,
    since: Option<Instant>,
}

/// Expectations of every owner of one controller.
#[derive(Default)]
pub(crate) struct Expectations {
    by_owner: Mutex<HashMap<Key, Pending>>,
}

impl Expectations {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Pending>> {
        self.by_owner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// About to ask for `n` creations.
    pub(crate) fn expect_creations(&self, owner: &Key, n: usize) {
        let mut m = self.lock();
        let p = m.entry(owner.clone()).or_default();
        p.unnamed_adds += n;
        p.since = Some(Instant::now());
    }

    /// One asked-for creation answered: `Some(name)` made, `None` failed.
    pub(crate) fn creation_answered(&self, owner: &Key, name: Option<String>) {
        let mut m = self.lock();
        if let Some(p) = m.get_mut(owner) {
            p.unnamed_adds = p.unnamed_adds.saturating_sub(1);
            if let Some(n) = name {
                p.adds.insert(n);
            }
        }
    }

    /// About to delete pods with these uids.
    pub(crate) fn expect_deletions(&self, owner: &Key, uids: impl IntoIterator<Item = String>) {
        let mut m = self.lock();
        let p = m.entry(owner.clone()).or_default();
        p.dels.extend(uids);
        p.since = Some(Instant::now());
    }

    /// A deletion failed (it will not be observed).
    pub(crate) fn deletion_failed(&self, owner: &Key, uid: &str) {
        if let Some(p) = self.lock().get_mut(owner) {
            p.dels.remove(uid);
        }
    }

    /// The informer saw pod `name`/`uid` of namespace `ns` (alive, or gone
    /// when `gone`).
    pub(crate) fn observe(&self, ns: &str, name: &str, uid: &str, gone: bool) {
        let mut m = self.lock();
        for ((ons, _), p) in m.iter_mut() {
            if ons != ns {
                continue;
            }
            p.adds.remove(name);
            if gone {
                p.dels.remove(uid);
            }
        }
    }

    /// Forgets an owner (it is gone).
    pub(crate) fn forget(&self, owner: &Key) {
        self.lock().remove(owner);
    }

    /// Whether `owner` may act: nothing it did is still unseen. `present`
    /// tells whether a pod name is in the cache, `alive` whether a uid still
    /// is (and not terminating).
    pub(crate) fn satisfied(
        &self,
        owner: &Key,
        present: impl Fn(&str) -> bool,
        alive: impl Fn(&str) -> bool,
    ) -> bool {
        let mut m = self.lock();
        let Some(p) = m.get_mut(owner) else {
            return true;
        };
        p.adds.retain(|n| !present(n));
        p.dels.retain(|u| alive(u));
        let met = p.adds.is_empty() && p.dels.is_empty() && p.unnamed_adds == 0;
        let expired = p.since.is_none_or(|s| s.elapsed() > EXPECTATIONS_TIMEOUT);
        if met || expired {
            m.remove(owner);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_block_until_seen() {
        let e = Expectations::new();
        let k: Key = ("ns".into(), "rs".into());
        e.expect_creations(&k, 2);
        e.creation_answered(&k, Some("a".into()));
        assert!(!e.satisfied(&k, |_| false, |_| false));
        e.creation_answered(&k, None);
        assert!(!e.satisfied(&k, |n| n == "b", |_| false));
        e.observe("ns", "a", "u1", false);
        assert!(e.satisfied(&k, |_| false, |_| false));
    }

    #[test]
    fn deletions_block_while_alive() {
        let e = Expectations::new();
        let k: Key = ("ns".into(), "rs".into());
        e.expect_deletions(&k, ["u1".to_string()]);
        assert!(!e.satisfied(&k, |_| true, |u| u == "u1"));
        assert!(e.satisfied(&k, |_| true, |_| false));
    }
}
