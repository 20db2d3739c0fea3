//! Label selectors (pods, namespaces) and node selector terms (node
//! affinity), compiled once and matched against label maps.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
    /// An operator we do not know, or a malformed value: matches nothing.
    Never,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
}

impl Requirement {
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.key);
        match &self.op {
            Op::In(set) => v.is_some_and(|v| set.contains(v)),
            Op::NotIn(set) => v.is_none_or(|v| !set.contains(v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::Gt(n) => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Op::Lt(n) => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
            Op::Never => false,
        }
    }
}

/// A compiled label selector. `nothing` is a nil selector where Kubernetes
/// reads it as "matches no object" (affinity terms, spread constraints).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector {
    pub reqs: Vec<Requirement>,
    pub nothing: bool,
}

impl Selector {
    pub fn nothing() -> Selector {
        Selector {
            reqs: vec![],
            nothing: true,
        }
    }

    pub fn everything() -> Selector {
        Selector::default()
    }

    /// From a metav1.LabelSelector; `None` is "nothing".
    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Selector {
        let Some(sel) = sel else {
            return Selector::nothing();
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::In([v.clone()].into()),
            });
        }
        for e in sel.match_expressions.iter().flatten() {
            let values: BTreeSet<String> = e.values.iter().flatten().cloned().collect();
            let op = match e.operator.as_str() {
                "In" => Op::In(values),
                "NotIn" => Op::NotIn(values),
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                _ => Op::Never,
            };
            reqs.push(Requirement {
                key: e.key.clone(),
                op,
            });
        }
        Selector {
            reqs,
            nothing: false,
        }
    }

    /// Adds `key in (pod's value)` (matchLabelKeys) or `key notin (...)`
    /// (mismatchLabelKeys) for keys the pod has.
    pub fn add_label_keys(&mut self, keys: &[String], pod_labels: &Labels, mismatch: bool) {
        if self.nothing {
            return;
        }
        for k in keys {
            if let Some(v) = pod_labels.get(k) {
                let set: BTreeSet<String> = [v.clone()].into();
                self.reqs.push(Requirement {
                    key: k.clone(),
                    op: if mismatch {
                        Op::NotIn(set)
                    } else {
                        Op::In(set)
                    },
                });
            }
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing && self.reqs.iter().all(|r| r.matches(labels))
    }

    pub fn is_everything(&self) -> bool {
        !self.nothing && self.reqs.is_empty()
    }
}

fn node_req(r: &NodeSelectorRequirement) -> Requirement {
    let values: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
    let one_int = || {
        if values.len() == 1 {
            values.iter().next().and_then(|v| v.parse::<i64>().ok())
        } else {
            None
        }
    };
    let op = match r.operator.as_str() {
        "In" => Op::In(values.clone()),
        "NotIn" => Op::NotIn(values.clone()),
        "Exists" => Op::Exists,
        "DoesNotExist" => Op::DoesNotExist,
        "Gt" => one_int().map(Op::Gt).unwrap_or(Op::Never),
        "Lt" => one_int().map(Op::Lt).unwrap_or(Op::Never),
        _ => Op::Never,
    };
    Requirement {
        key: r.key.clone(),
        op,
    }
}

/// One node selector term: label expressions and `metadata.name` fields,
/// all of which must hold. A term with neither matches no node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeTerm {
    pub labels: Vec<Requirement>,
    pub fields: Vec<Requirement>,
}

impl NodeTerm {
    pub fn from_term(t: &NodeSelectorTerm) -> NodeTerm {
        NodeTerm {
            labels: t.match_expressions.iter().flatten().map(node_req).collect(),
            fields: t.match_fields.iter().flatten().map(node_req).collect(),
        }
    }

    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        if self.labels.is_empty() && self.fields.is_empty() {
            return false;
        }
        if !self.labels.iter().all(|r| r.matches(labels)) {
            return false;
        }
        self.fields.iter().all(|r| {
            if r.key != "metadata.name" {
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
    pub fn from_selector(s: &NodeSelector) -> NodeSelectorTerms {
        NodeSelectorTerms(
            s.node_selector_terms
                .iter()
                .map(NodeTerm::from_term)
                .collect(),
        )
    }

    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        self.0.iter().any(|t| t.matches(name, labels))
    }
}

pub fn node_labels(node: &Node) -> &Labels {
    static EMPTY: Labels = BTreeMap::new();
    node.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

#[cfg(test)]
#[allow(clippy::option_map_unit_fn)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_semantics() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(
            !Selector::from_label_selector(None).matches(&l),
            "nil matches nothing"
        );
        assert!(Selector::from_label_selector(Some(&LabelSelector::default())).matches(&l));
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["back".into()]),
            }]),
        };
        let s = Selector::from_label_selector(Some(&sel));
        assert!(s.matches(&l));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "back")])));
        assert!(!s.matches(&labels(&[("app", "db")])));
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
