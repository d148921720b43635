//! The default identities every emulator starts with, and their public description.
//!
//! Ids, secrets and passwords are fixed so that docs, scripts and connection strings can name
//! them; only key material is generated (once per process).

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::directory::{App, ClientCertificate, ClientSecret, Tenant, User};
use crate::error::EmulatorError;
use crate::keys::CertificateMaterial;

/// Fixed ids and credentials of the seeded identities (see `docs/emulator.md`).
pub(crate) mod ids {
    pub(crate) const TENANT_ID: &str = "d3650000-e0e0-4000-8000-000000000001";
    pub(crate) const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
    pub(crate) const CONFIDENTIAL_APP_ID: &str = "d3650000-a990-4000-8000-000000000001";
    pub(crate) const CONFIDENTIAL_APP_SECRET: &str = "d365-emulator-secret~1";
    pub(crate) const CONFIDENTIAL_APP_SECRET_ID: &str = "d3650000-5ec0-4000-8000-000000000001";
    pub(crate) const EXPIRED_SECRET: &str = "d365-emulator-expired-secret~0";
    pub(crate) const EXPIRED_SECRET_ID: &str = "d3650000-5ec0-4000-8000-000000000000";
    pub(crate) const CERTIFICATE_APP_ID: &str = "d3650000-a990-4000-8000-000000000002";
    pub(crate) const PUBLIC_APP_ID: &str = "d3650000-a990-4000-8000-000000000003";
    pub(crate) const USER_UPN: &str = "alice@contoso.onmicrosoft.com";
    pub(crate) const USER_OBJECT_ID: &str = "d3650000-0005-4000-8000-000000000001";
    pub(crate) const MFA_USER_UPN: &str = "bob@contoso.onmicrosoft.com";
    pub(crate) const MFA_USER_OBJECT_ID: &str = "d3650000-0005-4000-8000-000000000002";
    pub(crate) const USER_PASSWORD: &str = "Emulator-Passw0rd!";
}

/// The identities the emulator was seeded with: what a test needs to ask for a token.
///
/// `Debug` shows ids only; secrets, passwords and the private key are redacted.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeededIdentities {
    /// The tenant.
    pub tenant: SeededTenant,
    /// A confidential app with a client secret (and a second, expired one).
    pub confidential_app: SeededSecretApp,
    /// A confidential app with a certificate credential.
    pub certificate_app: SeededCertificateApp,
    /// A public client ("allow public client flows").
    pub public_app: SeededPublicApp,
    /// A user who can sign in with a password.
    pub user: SeededUser,
    /// A user for whom Conditional Access demands MFA (password grant → AADSTS50076).
    pub mfa_user: SeededUser,
}

/// The seeded tenant.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeededTenant {
    /// Tenant GUID.
    pub id: String,
    /// Verified domain.
    pub domain: String,
}

/// The seeded app with client secrets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeededSecretApp {
    /// Application (client) id.
    pub client_id: String,
    /// A valid client secret.
    pub secret: SecretString,
    /// A client secret that expired in 2020 (→ AADSTS7000222).
    pub expired_secret: SecretString,
}

/// The seeded app with a certificate credential.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeededCertificateApp {
    /// Application (client) id.
    pub client_id: String,
    /// The registered certificate, PEM.
    pub certificate_pem: String,
    /// Its PKCS#8 RSA private key, PEM.
    pub private_key_pem: SecretString,
    /// SHA-1 thumbprint, upper-case hex (as the portal shows it).
    pub thumbprint_sha1: String,
    /// The `x5t` header value (base64url SHA-1).
    pub x5t: String,
    /// The `x5t#S256` header value (base64url SHA-256).
    pub x5t_s256: String,
}

/// The seeded public client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeededPublicApp {
    /// Application (client) id.
    pub client_id: String,
}

/// A seeded user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeededUser {
    /// User principal name.
    pub upn: String,
    /// Password.
    pub password: SecretString,
    /// Object id (`oid` claim).
    pub object_id: String,
}

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

/// Builds the seeded tenant and its public description.
pub(crate) fn seed(
    certificate: &CertificateMaterial,
) -> Result<(Tenant, SeededIdentities), EmulatorError> {
    let invalid = |err: crate::directory::DirectoryError| EmulatorError::Crypto(err.to_string());
    let mut tenant =
        Tenant::new(Some(ids::TENANT_ID), ids::TENANT_DOMAIN, Some("Contoso")).map_err(invalid)?;
    let far_future = OffsetDateTime::now_utc() + time::Duration::days(3650);
    let expired = time::macros::datetime!(2020-01-01 00:00 UTC);

    let app = |id: &str, name: &str, sp: &str, public_client: bool| App {
        client_id: id.to_owned(),
        display_name: name.to_owned(),
        service_principal_id: sp.to_owned(),
        public_client,
        roles: Vec::new(),
        secrets: Vec::new(),
        certificates: Vec::new(),
    };
    let mut confidential = app(
        ids::CONFIDENTIAL_APP_ID,
        "d365 emulator confidential app",
        "d3650000-5e90-4000-8000-000000000001",
        false,
    );
    confidential.secrets = vec![
        ClientSecret {
            id: ids::CONFIDENTIAL_APP_SECRET_ID.to_owned(),
            value: secret(ids::CONFIDENTIAL_APP_SECRET),
            expires_at: far_future,
        },
        ClientSecret {
            id: ids::EXPIRED_SECRET_ID.to_owned(),
            value: secret(ids::EXPIRED_SECRET),
            expires_at: expired,
        },
    ];
    let mut with_certificate = app(
        ids::CERTIFICATE_APP_ID,
        "d365 emulator certificate app",
        "d3650000-5e90-4000-8000-000000000002",
        false,
    );
    with_certificate.certificates = vec![ClientCertificate {
        thumbprints: certificate.thumbprints.clone(),
        public_key: certificate.public_key.clone(),
    }];
    let public = app(
        ids::PUBLIC_APP_ID,
        "d365 emulator public client",
        "d3650000-5e90-4000-8000-000000000003",
        true,
    );
    tenant.apps = vec![confidential, with_certificate, public];

    let user = |upn: &str, oid: &str, name: &str, mfa_required: bool| User {
        upn: upn.to_owned(),
        password: secret(ids::USER_PASSWORD),
        object_id: oid.to_owned(),
        display_name: name.to_owned(),
        mfa_required,
        federated: false,
        disabled: false,
    };
    tenant.users = vec![
        user(ids::USER_UPN, ids::USER_OBJECT_ID, "Alice Emulator", false),
        user(
            ids::MFA_USER_UPN,
            ids::MFA_USER_OBJECT_ID,
            "Bob Emulator",
            true,
        ),
    ];

    let seeded_user = |upn: &str, oid: &str| SeededUser {
        upn: upn.to_owned(),
        password: secret(ids::USER_PASSWORD),
        object_id: oid.to_owned(),
    };
    let identities = SeededIdentities {
        tenant: SeededTenant {
            id: ids::TENANT_ID.to_owned(),
            domain: ids::TENANT_DOMAIN.to_owned(),
        },
        confidential_app: SeededSecretApp {
            client_id: ids::CONFIDENTIAL_APP_ID.to_owned(),
            secret: secret(ids::CONFIDENTIAL_APP_SECRET),
            expired_secret: secret(ids::EXPIRED_SECRET),
        },
        certificate_app: SeededCertificateApp {
            client_id: ids::CERTIFICATE_APP_ID.to_owned(),
            certificate_pem: certificate.certificate_pem.clone(),
            private_key_pem: certificate.private_key_pem.clone(),
            thumbprint_sha1: certificate.thumbprints.sha1_hex(),
            x5t: certificate.thumbprints.x5t(),
            x5t_s256: certificate.thumbprints.x5t_s256(),
        },
        public_app: SeededPublicApp {
            client_id: ids::PUBLIC_APP_ID.to_owned(),
        },
        user: seeded_user(ids::USER_UPN, ids::USER_OBJECT_ID),
        mfa_user: seeded_user(ids::MFA_USER_UPN, ids::MFA_USER_OBJECT_ID),
    };
    Ok((tenant, identities))
}
