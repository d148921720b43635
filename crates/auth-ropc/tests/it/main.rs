//! The password grant's integration tests, as one test binary: what goes on the wire,
//! every error a person reads, the user realm check, refresh-token reuse, the emulator,
//! and the no-secrets check.

mod emulator;
mod errors;
mod no_secrets;
mod realm;
mod refresh;
mod wire;
