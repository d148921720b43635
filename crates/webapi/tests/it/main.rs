//! The Web API client's integration tests, one binary: the request pipeline against canned
//! servers, the emulator end to end, faults and chaos, long runs, property tests of the
//! parsers, and the no-secrets harness.

mod chaos;
mod emulator;
mod faults;
mod long_run;
mod no_secrets;
mod pipeline;
mod proptest_parsers;
mod support;
