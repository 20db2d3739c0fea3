//! Kubernetes API machinery shared by the ferrokube apiserver and its
//! clients: the resource registry, label and field selectors, and `Status`
//! errors.

pub mod fields;
pub mod labels;
pub mod patch;
pub mod registry;
pub mod status;
