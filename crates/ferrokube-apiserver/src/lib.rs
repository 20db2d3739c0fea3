//! The ferrokube API server: Kubernetes' REST API over the ferrokube store,
//! served over HTTPS to the real kubectl and client libraries.

pub mod admission;
pub mod allocator;
pub mod authn;
pub mod authz;
pub mod cert_rotation;
pub mod continue_token;
pub mod defaults;
pub mod discovery;
pub mod encoding;
#[cfg(test)]
mod encodings_agree;
pub mod events;
pub mod eviction;
pub mod impersonation;
pub mod kinds;
pub mod lean;
pub mod limitranger;
pub mod managed;
pub mod metrics;
pub mod objectmeta;
pub mod oidc;
pub mod options;
pub mod pki;
pub mod pod_validation;
pub mod podsecurity;
pub mod protobuf;
#[cfg(test)]
mod protobuf_roundtrip;
pub mod proxy;
pub mod quota;
pub mod request_info;
pub mod rest;
pub mod reviews;
pub mod satoken;
pub mod server;
pub mod services;
pub mod spdy;
pub mod streaming;
pub mod table;
pub mod typed;
pub mod validation;
pub mod watchcache;
pub mod wsstream;

pub use server::{start, Local, RunningServer, ServerConfig};
