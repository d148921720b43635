//! The OAuth 2.0 resource owner password credentials (ROPC) grant.
//!
//! This crate is being built: it will provide `UsernamePassword`, a
//! [`d365_auth_core::TokenProvider`] that exchanges a user's name and password for a
//! token and reuses refresh tokens. Until then it exports nothing.
