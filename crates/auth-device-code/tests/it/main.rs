//! The device code grant's integration tests, as one test binary: what goes on the wire
//! and every polling answer, sign-ins against the emulator (approve, decline, expire,
//! slow down, cancel), and the no-secrets check.

mod emulator;
mod no_secrets;
mod wire;
