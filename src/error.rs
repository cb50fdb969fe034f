//! The library's error type. Every variant says what went wrong and where
//! (file, line, field, parameter), so the binary can print it as is.

use std::path::PathBuf;

/// Crate-wide result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no such file or directory")]
    NotFound { path: PathBuf },
    #[error("{pattern}: the pattern matched no files")]
    NoFiles { pattern: String },
    #[error("{path}:{line}: malformed row, field `{field}`: {reason} (value {value:?})")]
    MalformedRow {
        path: PathBuf,
        line: u64,
        field: String,
        value: String,
        reason: String,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: reading with polars: {source}")]
    Polars {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParam {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("{path}: not a valid recsys model: {reason}")]
    BadModel { path: PathBuf, reason: String },
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("unknown item {0:?}")]
    UnknownItem(String),
    #[error("{0}")]
    Other(String),
    /// An error with what was being done when it happened ("loading data
    /// u1.base"); displayed as one line, so every front shows the whole of it.
    #[error("{context}: {source}")]
    Context { context: String, source: Box<Error> },
}

impl Error {
    /// This error, saying what was being done.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The innermost error, under any [`Error::Context`].
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            e => e,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound { path }
        } else {
            Error::Io { path, source }
        }
    }

    pub(crate) fn param(
        name: &'static str,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidParam {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
