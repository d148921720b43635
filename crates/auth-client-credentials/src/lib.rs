//! The OAuth 2.0 client credentials grant for Microsoft Entra ID and AD FS.
//!
//! This crate is being built: it will provide `ClientCredentials`, a
//! [`d365_auth_core::TokenProvider`] for client secrets, certificates and external
//! assertions. Until then it exports nothing.
