//! Kubernetes API machinery shared by the ferrokube apiserver and its
//! clients: the resource registry, label and field selectors, `Status`
//! errors, name and metadata validation, patches, and kubectl tables.

pub mod cron;
pub mod fields;
pub mod gojson;
pub mod jsonpath;
pub mod labels;
pub mod patch;
pub mod printers;
pub mod quantity;
pub mod quota;
pub mod registry;
pub mod status;
pub mod sysctl;
pub mod validation;
