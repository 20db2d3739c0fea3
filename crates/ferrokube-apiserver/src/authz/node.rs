//! The Node authorizer (`--authorization-mode Node`): a kubelet, the user
//! `system:node:<node>` in the group `system:nodes`, may do what the
//! ClusterRole `system:node` allows (the bootstrap policy keeps it with
//! Kubernetes' node rules; it is bound to no one, so only this authorizer
//! grants it). Anyone else gets no opinion.
//!
//! Not done yet: Kubernetes' Node authorizer also narrows reads of
//! secrets, configmaps, persistent volume claims, service-account tokens
//! and the like to the objects of the pods bound to the node (a graph of
//! pods, nodes and what they reference), and the NodeRestriction admission
//! plugin limits what a node may write. Both belong to the node-security
//! issue; here a node may use every rule of `system:node` on any object.

use std::sync::Arc;

use super::rbac::Rbac;
use super::{Attributes, Authorizer, Decision, RulesInfo};
use crate::authn::UserInfo;

/// The group of every node's user.
pub(crate) const NODES_GROUP: &str = "system:nodes";

/// The prefix of a node's user name.
pub(crate) const NODE_USER_PREFIX: &str = "system:node:";

/// The ClusterRole whose rules nodes get.
pub(crate) const NODE_ROLE: &str = "system:node";

/// The node a user is, as Kubernetes identifies one: `Some(name)` for a
/// `system:node:<name>` in `system:nodes` (the name may be empty).
pub(crate) fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    user.groups.iter().any(|g| g == NODES_GROUP).then_some(name)
}

/// Authorizes nodes with the rules of the ClusterRole `system:node`.
pub(crate) struct Node {
    rbac: Arc<Rbac>,
}

impl Node {
    /// Reads `system:node` through `rbac`'s index of the watch cache.
    pub(crate) fn new(rbac: Arc<Rbac>) -> Node {
        Node { rbac }
    }
}

impl Authorizer for Node {
    fn authorize(&self, a: &Attributes) -> Decision {
        let Some(node) = node_identity(&a.user) else {
            return Decision::NoOpinion(String::new());
        };
        if node.is_empty() {
            return Decision::NoOpinion(format!("unknown node for user {:?}", a.user.name));
        }
        let allowed = self
            .rbac
            .cluster_role_rules(NODE_ROLE)
            .is_some_and(|rules| rules.iter().any(|r| r.allows(a)));
        if allowed {
            Decision::Allow(String::new())
        } else {
            Decision::NoOpinion(String::new())
        }
    }

    fn rules_for(&self, user: &UserInfo, _namespace: &str) -> RulesInfo {
        if node_identity(user).is_some() {
            // As Kubernetes: a node's rights are not listed.
            RulesInfo {
                incomplete: true,
                evaluation_error: "node authorizer does not support user rule resolution".into(),
                ..Default::default()
            }
        } else {
            RulesInfo::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_named_users_in_the_nodes_group() {
        let node = UserInfo::authenticated("system:node:n1", [NODES_GROUP]);
        assert_eq!(node_identity(&node), Some("n1"));
        let unnamed = UserInfo::authenticated("system:node:", [NODES_GROUP]);
        assert_eq!(node_identity(&unnamed), Some(""));
        let no_group = UserInfo::authenticated("system:node:n1", Vec::<String>::new());
        assert_eq!(node_identity(&no_group), None);
        let agent = UserInfo::authenticated("system:node-agent", [NODES_GROUP]);
        assert_eq!(node_identity(&agent), None);
    }
}
