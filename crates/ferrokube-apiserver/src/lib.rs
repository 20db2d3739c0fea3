//! The ferrokube API server: Kubernetes' REST API over the ferrokube store.

pub mod continue_token;
pub mod encoding;
pub mod objectmeta;
pub mod options;
pub mod request_info;
pub mod watchcache;
