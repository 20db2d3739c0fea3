//! The ferrokube API server: Kubernetes' REST API over the ferrokube store,
//! served over HTTPS to the real kubectl and client libraries.

mod admission;
mod aggregator;
pub mod allocator;
#[cfg(test)]
mod answers_tests;
mod apf;
pub mod authn;
pub mod authz;
mod binding;
mod cert_rotation;
mod compression;
mod continue_token;
mod crd;
mod dashboard;
mod defaults;
mod discovery;
mod encoding;
#[cfg(test)]
mod encodings_agree;
mod events;
mod eviction;
mod impersonation;
mod kind_storage;
mod kinds;
mod lean;
mod limitranger;
mod managed;
mod metrics;
mod nodepassword;
mod objectmeta;
mod oidc;
pub mod options;
pub mod pki;
mod pod_validation;
mod podsecurity;
mod policy;
mod protobuf;
#[cfg(test)]
mod protobuf_roundtrip;
mod proxy;
mod quota;
mod request_info;
mod resourcemetrics;
pub mod rest;
mod reviews;
mod satoken;
pub mod served;
pub mod server;
mod services;
mod spdy;
pub mod strategy;
mod streaming;
mod table;
mod typed;
mod validation;
pub mod watchcache;
mod webhook;
mod wsstream;

pub use server::{start, Local, RunningServer, ServerConfig};
