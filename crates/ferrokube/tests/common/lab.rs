//! The multi-node lab (`ferrokube-lab`) with this build's `ferrokube`, for
//! the tests that need several nodes.

use ferrokube_lab::{Lab, LabOptions};

/// A lab of `nodes` nodes whose agents also get `agent_args`; a lab that
/// does not come up fails the test with the reason.
pub(crate) fn up(nodes: usize, agent_args: &[&str]) -> Lab {
    let opts = LabOptions {
        nodes,
        agent_args: agent_args.iter().map(|s| s.to_string()).collect(),
        ferrokube: env!("CARGO_BIN_EXE_ferrokube").into(),
        ..Default::default()
    };
    Lab::up(opts).unwrap_or_else(|e| panic!("bringing the lab up: {e:#}"))
}
