//! The Azure CLI grant's integration tests, as one test binary: a fake `az` (a `#!/bin/sh`
//! script in a private temporary directory, found through `search_path` or `program`, never
//! the real one) answers, fails, hangs and floods; the registration builds the grant from
//! configuration; and no token reaches a log line, a `Debug` or an error.

#![cfg(unix)]

mod failures;
mod fake_az;
mod no_secrets;
mod registration;
mod runs;
