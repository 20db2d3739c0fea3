//! The ferrokube API server: Kubernetes' REST API over the ferrokube store.

pub mod request_info;
pub mod watchcache;
