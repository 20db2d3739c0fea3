//! API Priority and Fairness, enforced as Kubernetes enforces it: every
//! request (long-running non-watch ones aside) is classified by the
//! FlowSchemas and waits for a seat of its PriorityLevelConfiguration,
//! whose share of the server's concurrency (`--max-requests-inflight` +
//! `--max-mutating-requests-inflight`) it takes by nominalConcurrencyShares;
//! beyond it, requests queue fairly or are rejected with a 429.
//!
//! - [`classify`]: which FlowSchema a request matches, and its flow;
//! - [`config`]: the schemas and levels digested from the watch cache,
//!   followed live;
//! - [`shufflesharding`]: Kubernetes' dealer of queues to flows;
//! - [`queueset`]: one level's seats and fair queues;
//! - [`filter`]: the step in the request path, its headers and its 429;
//! - [`debug`]: the debug tables and the metrics;
//! - [`bootstrap`]: the mandatory and suggested objects made at start.

pub(crate) mod bootstrap;
pub(crate) mod classify;
pub(crate) mod config;
pub(crate) mod debug;
pub(crate) mod filter;
pub(crate) mod queueset;
pub(crate) mod shufflesharding;

pub(crate) use bootstrap::ensure_configuration_objects;
pub(crate) use filter::Apf;
