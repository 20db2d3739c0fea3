//! Label selectors (pods, namespaces) and node selector terms (node
//! affinity), compiled once and matched against label maps.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};

use ferrokube_api::labels::Requirement;
/// Label selectors of pods and namespaces: the API machinery's one.
pub(crate) use ferrokube_api::labels::Selector;

/// An object's labels (a node's, a pod's, a namespace's).
pub(crate) type Labels = BTreeMap<String, String>;

/// A node selector requirement as a label requirement (`Gt`/`Lt` take one
/// integer); `None` for an unknown operator or a malformed value, which
/// makes its term match no node.
fn node_req(r: &NodeSelectorRequirement) -> Option<Requirement> {
    let values: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
    let one_int = || {
        if values.len() == 1 {
            values.iter().next().and_then(|v| v.parse::<i64>().ok())
        } else {
            None
        }
    };
    let key = r.key.clone();
    Some(match r.operator.as_str() {
        "In" => Requirement::In(key, values.into_iter().collect()),
        "NotIn" => Requirement::NotIn(key, values.into_iter().collect()),
        "Exists" => Requirement::Exists(key),
        "DoesNotExist" => Requirement::DoesNotExist(key),
        "Gt" => Requirement::Gt(key, one_int()?),
        "Lt" => Requirement::Lt(key, one_int()?),
        _ => return None,
    })
}

/// One node selector term: label expressions and `metadata.name` fields,
/// all of which must hold. A term with neither, or with a requirement that
/// cannot be read, matches no node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeTerm {
    /// `matchExpressions`, matched against the node's labels.
    pub labels: Vec<Requirement>,
    /// `matchFields`; `metadata.name` is the only field a node has.
    pub fields: Vec<Requirement>,
    /// Some requirement has an unknown operator or a malformed value.
    malformed: bool,
}

impl NodeTerm {
    /// Compiles a `NodeSelectorTerm`.
    pub fn from_term(t: &NodeSelectorTerm) -> NodeTerm {
        let labels: Vec<Option<Requirement>> =
            t.match_expressions.iter().flatten().map(node_req).collect();
        let fields: Vec<Option<Requirement>> =
            t.match_fields.iter().flatten().map(node_req).collect();
        let malformed = labels.iter().chain(&fields).any(Option::is_none);
        NodeTerm {
            labels: labels.into_iter().flatten().collect(),
            fields: fields.into_iter().flatten().collect(),
            malformed,
        }
    }

    /// Whether the node named `name` with `labels` meets the term.
    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        if self.malformed || (self.labels.is_empty() && self.fields.is_empty()) {
            return false;
        }
        if !self.labels.iter().all(|r| r.matches(labels)) {
            return false;
        }
        self.fields.iter().all(|r| {
            if r.key() != "metadata.name" {
                return false;
            }
            let mut f = Labels::new();
            f.insert("metadata.name".into(), name.into());
            r.matches(&f)
        })
    }
}

/// A required node selector: any one term must match.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSelectorTerms(pub Vec<NodeTerm>);

impl NodeSelectorTerms {
    /// Compiles a `NodeSelector` (required node affinity, a volume's node
    /// affinity).
    pub fn from_selector(s: &NodeSelector) -> NodeSelectorTerms {
        NodeSelectorTerms(
            s.node_selector_terms
                .iter()
                .map(NodeTerm::from_term)
                .collect(),
        )
    }

    /// Whether the node named `name` with `labels` meets some term.
    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        self.0.iter().any(|t| t.matches(name, labels))
    }
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn node_terms_with_gt_and_fields() {
        let t = NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: "cores".into(),
                operator: "Gt".into(),
                values: Some(vec!["4".into()]),
            }]),
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec!["n1".into()]),
            }]),
        };
        let t = NodeTerm::from_term(&t);
        assert!(t.matches("n1", &labels(&[("cores", "8")])));
        assert!(!t.matches("n2", &labels(&[("cores", "8")])));
        assert!(!t.matches("n1", &labels(&[("cores", "2")])));
        assert!(!NodeTerm::from_term(&NodeSelectorTerm::default()).matches("n1", &labels(&[])));
    }
}
