//! Windows sign-in to on-premises Dynamics 365 servers that take domain credentials
//! directly (IIS integrated authentication, no AD FS): NTLM, sent under the `NTLM` or
//! `Negotiate` scheme the server offers, with a user name, domain and password.
//!
//! [`WindowsSignIn`] is a [`ConnectionAuthenticator`](d365_auth_core::ConnectionAuthenticator),
//! not a token provider: NTLM proves one TCP connection, so the Web API client hands it each
//! request and it sends it on a connection it has authenticated (see `ARCHITECTURE.md`).
//! The NTLM messages come from [`sspi`], Devolutions' maintained pure-Rust implementation.
//!
//! Not supported: Kerberos (a ticket from `kinit`, SPNEGO). sspi's Kerberos client must
//! reach the domain's KDC itself (its network client brings a second HTTP stack) and does
//! not read the ticket cache `kinit` writes; and no test here could reach a KDC. A server
//! that offers `Negotiate` takes NTLM inside it, as Windows clients fall back to it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use d365_auth_windows::WindowsSignIn;
//!
//! let sign_in = WindowsSignIn::builder("https://crm.contoso.local/Contoso")
//!     .domain("CONTOSO")
//!     .username("alice")
//!     .password("correct horse".to_owned().into())
//!     .build()?;
//! let client = d365_webapi_client_for(Arc::new(sign_in));
//! # fn d365_webapi_client_for<T>(_: T) {}
//! # Ok(()) }
//! ```

mod authenticator;
mod builder;
mod challenge;
mod ntlm;
mod registration;

pub use authenticator::WindowsSignIn;
pub use builder::WindowsSignInBuilder;
pub use registration::{REGISTRATION, WindowsRegistration};
