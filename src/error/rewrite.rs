//! Why a rewrite step could not do its part. Defined here, with the error model, so that
//! the model depends on no other module; `rewrite` re-exports it.

/// Why a step could not rewrite a request or an answer.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The request asks for something the step cannot do safely: DynamoDB's
    /// `ValidationException`, saying why.
    #[error("{0}")]
    Refused(String),
    /// An answer holds an item of another namespace: never shown to the client.
    #[error("table {table}: the answer holds an item outside this sidecar's key prefix")]
    ForeignItem { table: String },
    /// A page stopped on an item of another namespace and its position could not be sealed
    /// (the system's random source failed): shown in clear, it would reveal that item's key.
    #[error("table {table}: {reason}")]
    Unsealable { table: String, reason: String },
}
