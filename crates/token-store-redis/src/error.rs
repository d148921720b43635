//! [`RedisStoreError`]: what can be wrong with a [`RedisStore`](crate::RedisStore)'s
//! configuration. Failures while the store runs are `d365_auth_core::store::StoreError`s, which
//! the token cache logs.

/// A configuration the Redis store cannot use. Messages never quote the URL (it may hold a
/// password) or the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// The Redis URL cannot be used.
    #[error("invalid Redis URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid Redis store setting `{setting}`: {reason}")]
    InvalidSetting {
        /// The builder method.
        setting: &'static str,
        /// What is wrong with the value.
        reason: &'static str,
    },
}
