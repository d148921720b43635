//! The client credentials grant's integration tests, as one test binary: the builder's
//! checks, certificates and assertions, every credential against the emulator, the
//! registration with configuration, and the no-secrets check.

mod builder;
mod certificate;
mod emulator;
mod no_secrets;
mod registration;
