//! The authorization modes of `--authorization-mode` (Kubernetes' names:
//! `AlwaysAllow`, `AlwaysDeny`, `Node`, `RBAC`) and the chain the server
//! runs: the group `system:masters` first, always allowed (Kubernetes'
//! privileged-group authorizer), then the modes in the order given.

use std::sync::Arc;

use super::node::Node;
use super::rbac::Rbac;
use super::{AlwaysAllow, Attributes, Authorizer, Chain, Decision, RulesInfo};
use crate::authn::UserInfo;

/// The group whose members may do anything (the admin and the API server
/// itself).
pub(crate) const MASTERS_GROUP: &str = "system:masters";

/// Why an `--authorization-mode` list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    /// A name that is not a mode.
    #[error("authorization-mode {name:?} is not a valid mode (one of {known})")]
    Unknown {
        /// The name given.
        name: String,
        /// The modes there are, comma-separated.
        known: String,
    },
    /// A mode listed twice.
    #[error("authorization-mode {0:?} has mode specified more than once")]
    Repeated(String),
    /// No mode at all.
    #[error("at least one authorization-mode must be passed")]
    Empty,
}

/// One authorization mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every request allowed (tests and benchmarks without authorization).
    AlwaysAllow,
    /// Every request refused (only `system:masters` gets through).
    AlwaysDeny,
    /// Kubernetes' Node authorizer: kubelets (`system:node:<name>`) reach
    /// only their node's objects and what its pods use.
    Node,
    /// Role-based access control from Roles, ClusterRoles and their
    /// bindings (`RBAC` on the command line).
    Rbac,
}

impl Mode {
    /// The mode's name on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::AlwaysAllow => "AlwaysAllow",
            Mode::AlwaysDeny => "AlwaysDeny",
            Mode::Node => "Node",
            Mode::Rbac => "RBAC",
        }
    }

    /// Every mode, for the flag's accepted values.
    pub(crate) const ALL: [Mode; 4] = [Mode::AlwaysAllow, Mode::AlwaysDeny, Mode::Node, Mode::Rbac];

    /// A mode by its name.
    pub(crate) fn parse(name: &str) -> Result<Mode, ModeError> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
                ModeError::Unknown {
                    name: name.to_string(),
                    known: known.join(", "),
                }
            })
    }

    /// A comma-separated list of modes (`Node,RBAC`), each at most once.
    pub fn parse_list(list: &str) -> Result<Vec<Mode>, ModeError> {
        let mut modes = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let m = Mode::parse(name)?;
            if modes.contains(&m) {
                return Err(ModeError::Repeated(name.to_string()));
            }
            modes.push(m);
        }
        if modes.is_empty() {
            return Err(ModeError::Empty);
        }
        Ok(modes)
    }
}

/// Allows the members of `system:masters`; no opinion on anyone else.
pub(crate) struct SystemMasters;

impl Authorizer for SystemMasters {
    fn authorize(&self, a: &Attributes) -> Decision {
        if a.user.groups.iter().any(|g| g == MASTERS_GROUP) {
            Decision::Allow(String::new())
        } else {
            Decision::NoOpinion(String::new())
        }
    }

    /// Lists nothing, as Kubernetes' (the masters' rules show through the
    /// `cluster-admin` binding RBAC holds).
    fn rules_for(&self, _: &UserInfo, _: &str) -> RulesInfo {
        RulesInfo::default()
    }
}

/// Refuses everything (`--authorization-mode AlwaysDeny`).
pub(crate) struct AlwaysDeny;

impl Authorizer for AlwaysDeny {
    fn authorize(&self, _: &Attributes) -> Decision {
        Decision::NoOpinion("Everything is forbidden.".into())
    }

    fn rules_for(&self, _: &UserInfo, _: &str) -> RulesInfo {
        RulesInfo::default()
    }
}

/// The server's chain: `system:masters`, then `modes` in order.
pub(crate) fn chain(modes: &[Mode], rbac: &Arc<Rbac>) -> Chain {
    let mut all: Vec<Arc<dyn Authorizer>> = vec![Arc::new(SystemMasters)];
    for m in modes {
        all.push(match m {
            Mode::AlwaysAllow => Arc::new(AlwaysAllow),
            Mode::AlwaysDeny => Arc::new(AlwaysDeny),
            Mode::Node => Arc::new(Node::new(rbac.clone())),
            Mode::Rbac => rbac.clone(),
        });
    }
    Chain(all)
}

/// The name a field selector requires (`metadata.name=x` or `==x` among
/// its terms), when it is a valid path segment: what Kubernetes'
/// request info takes as the name of a list or watch.
pub(crate) fn exact_name(selector: &str) -> Option<String> {
    let mut terms = Vec::new();
    let mut term = String::new();
    let mut chars = selector.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                term.push(c);
                if let Some(n) = chars.next() {
                    term.push(n);
                }
            }
            ',' => terms.push(std::mem::take(&mut term)),
            _ => term.push(c),
        }
    }
    terms.push(term);
    let name = terms.iter().find_map(|t| {
        if t.contains("!=") {
            return None;
        }
        let (key, value) = t.split_once("==").or_else(|| t.split_once('='))?;
        (key.trim() == "metadata.name").then(|| unescape(value.trim()))
    })?;
    let valid = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%']);
    valid.then_some(name)
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_selector_on_one_name_names_it() {
        assert_eq!(exact_name("metadata.name=n1").as_deref(), Some("n1"));
        assert_eq!(
            exact_name("spec.x=y,metadata.name==n1").as_deref(),
            Some("n1")
        );
        assert_eq!(exact_name("metadata.name!=n1"), None);
        assert_eq!(exact_name("spec.nodeName=n1"), None);
        assert_eq!(exact_name("metadata.name=a/b"), None);
        assert_eq!(exact_name("metadata.name=.."), None);
    }

    #[test]
    fn modes_parse_by_kubernetes_names() {
        assert_eq!(
            Mode::parse_list("Node,RBAC").unwrap(),
            vec![Mode::Node, Mode::Rbac]
        );
        assert_eq!(
            Mode::parse_list("AlwaysAllow").unwrap(),
            vec![Mode::AlwaysAllow]
        );
        assert!(Mode::parse_list("rbac").is_err());
        assert!(Mode::parse_list("RBAC,RBAC").is_err());
        assert!(Mode::parse_list("").is_err());
    }

    #[test]
    fn masters_are_allowed_and_always_deny_gives_kubernetes_reason() {
        let admin = Attributes {
            user: UserInfo::authenticated("a", [MASTERS_GROUP]),
            ..Default::default()
        };
        let jane = Attributes {
            user: UserInfo::authenticated("jane", Vec::<String>::new()),
            ..Default::default()
        };
        let chain = Chain(vec![Arc::new(SystemMasters), Arc::new(AlwaysDeny)]);
        assert_eq!(chain.authorize(&admin), Decision::Allow(String::new()));
        assert_eq!(
            chain.authorize(&jane),
            Decision::NoOpinion("Everything is forbidden.".into())
        );
    }
}
