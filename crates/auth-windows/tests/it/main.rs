//! Windows sign-in's tests, one binary: against the emulator's on-premises mode (NTLM
//! accepted by `sspi`'s acceptor there), and against hostile servers on loopback.

mod emulator;
mod hostile;
