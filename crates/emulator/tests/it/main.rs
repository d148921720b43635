//! The emulator's integration tests, as one binary (one link instead of one per file): each
//! module drives a running emulator over real HTTP on an OS-assigned loopback port, or the
//! `d365-emulator` binary, and `common` holds the helpers they share. The interop modules
//! run scripts from `tests/interop/`.

mod common;

mod admin_api;
mod authorize;
mod binary;
mod dataverse_auth;
mod dataverse_batch;
mod dataverse_bulk;
mod dataverse_crud;
mod dataverse_expand;
mod dataverse_limits;
mod dataverse_metadata;
mod dataverse_query;
mod dataverse_stats;
mod dataverse_store;
mod device_code;
mod discovery;
mod errors;
mod identity_fidelity;
mod interop_dataverse_client;
mod interop_dynamics_web_api;
mod interop_python;
mod lifecycle;
mod managed_identity;
mod on_premises;
mod token_endpoint;
mod validation;
