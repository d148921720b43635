//! `d365-connect`'s integration tests, one binary: connection strings (grammar, aliases,
//! errors, secrets, every grant end to end on the emulator), environment variables, grants
//! of one's own in a registry, and property tests of the parser.

mod chain;
mod connection_strings;
mod managed_identity;
mod proptest_parsers;
