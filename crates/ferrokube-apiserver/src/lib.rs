//! The ferrokube API server: Kubernetes' REST API over the ferrokube store.

pub mod watchcache;
