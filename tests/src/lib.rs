//! Shared helpers for the workspace-level end-to-end tests in `tests/tests/`.
