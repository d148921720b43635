//! A client for the Microsoft Dataverse / Dynamics 365 Web API (OData v4).
//!
//! This crate is being built: it will provide `Client`, which takes any
//! [`d365_auth_core::TokenProvider`]. Until then it exports nothing.
