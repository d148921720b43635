//! The Web API client's integration tests, one binary: the request pipeline against canned
//! servers, the emulator end to end, a `$batch` split over the 1,000-operation limit,
//! table metadata, bulk operations, `$expand` and formatted values, faults and chaos, long runs, property tests of the parsers, and the no-secrets harness.

mod batch_split;
mod chaos;
mod emulator;
mod faults;
mod import;
mod long_run;
mod metadata_bulk;
mod no_secrets;
mod pipeline;
mod proptest_parsers;
mod support;
