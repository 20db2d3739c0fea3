//! Patches over JSON objects, one module per patch type:
//! [`json_patch`] (RFC 6902), [`merge_patch`] (RFC 7386) and [`strategic`]
//! (Kubernetes' strategic merge patch, driven by the table in [`schema`]).
//!
//! Every function takes the current object and the patch and returns a new
//! object, leaving its inputs untouched; a patch that cannot be applied is a
//! [`PatchError`] and changes nothing.

pub mod json_patch;
pub mod merge_patch;
pub mod schema;
pub mod strategic;

pub use json_patch::json_patch;
pub use merge_patch::merge_patch;
pub use strategic::strategic_merge_patch;

/// Whether a patch was unreadable or could not be applied; the API maps the
/// first to 400 BadRequest and the second to 422 Invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchErrorKind {
    /// The patch document itself is malformed (not an array of operations,
    /// an operation without `op` or `path`, an unknown operation, ...).
    BadRequest,
    /// The patch is well formed but cannot be applied to this object (a
    /// missing path, a failed `test`, a list element without its merge key).
    Invalid,
}

/// A patch that cannot be applied. The message (field `.0`) says why, in
/// words a user can act on; the kind says which HTTP status it becomes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(pub String, pub PatchErrorKind);

impl PatchError {
    /// An unreadable patch (400).
    pub fn bad_request(msg: impl Into<String>) -> Self {
        PatchError(msg.into(), PatchErrorKind::BadRequest)
    }

    /// A patch that does not apply to the object (422).
    pub fn invalid(msg: impl Into<String>) -> Self {
        PatchError(msg.into(), PatchErrorKind::Invalid)
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }

    /// Which status the error becomes.
    pub fn kind(&self) -> PatchErrorKind {
        self.1
    }

    /// The HTTP status code Kubernetes answers with: 400 or 422.
    pub fn code(&self) -> u16 {
        match self.1 {
            PatchErrorKind::BadRequest => 400,
            PatchErrorKind::Invalid => 422,
        }
    }
}
