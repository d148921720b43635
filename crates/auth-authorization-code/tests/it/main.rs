//! The browser sign-in's tests, one binary: the whole flow against a fake identity
//! provider and a scripted browser, the listener against stray and hostile requests,
//! configuration, and the no-secrets sweep.

mod flow;
mod listener;
mod no_secrets;
mod registration;
mod support;
