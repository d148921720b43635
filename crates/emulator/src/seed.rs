//! The default identities every emulator starts with, and their public description.
//!
//! Ids, secrets and passwords are fixed so that docs, scripts and connection strings can name
//! them; only key material is generated (once per process).

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::dataverse::org::{NewUser, ids as org_ids};
use crate::directory::{App, ClientCertificate, ClientSecret, ManagedIdentity, Tenant, User};
use crate::error::EmulatorError;
use crate::keys::CertificateMaterial;

/// Fixed ids and credentials of the seeded identities (see `docs/emulator.md`).
pub(crate) mod ids {
    pub(crate) const TENANT_ID: &str = "d3650000-e0e0-4000-8000-000000000001";
    pub(crate) const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
    /// The seeded tenant's demo organization: tokens are issued for it (the Web API served
    /// is the emulator's own organization, at its base URL).
    pub(crate) const ORGANIZATION_URL: &str = "https://contoso.crm.dynamics.com";
    pub(crate) const CONFIDENTIAL_APP_ID: &str = "d3650000-a990-4000-8000-000000000001";
    pub(crate) const CONFIDENTIAL_APP_SECRET: &str = "d365-emulator-secret~1";
    pub(crate) const CONFIDENTIAL_APP_SECRET_ID: &str = "d3650000-5ec0-4000-8000-000000000001";
    pub(crate) const EXPIRED_SECRET: &str = "d365-emulator-expired-secret~0";
    pub(crate) const EXPIRED_SECRET_ID: &str = "d3650000-5ec0-4000-8000-000000000000";
    pub(crate) const CERTIFICATE_APP_ID: &str = "d3650000-a990-4000-8000-000000000002";
    pub(crate) const PUBLIC_APP_ID: &str = "d3650000-a990-4000-8000-000000000003";
    /// The public client's redirect URI, normalized: path-less `http://localhost`.
    pub(crate) const PUBLIC_APP_REDIRECT_URI: &str = "http://localhost/";
    pub(crate) const USER_UPN: &str = "alice@contoso.onmicrosoft.com";
    pub(crate) const USER_OBJECT_ID: &str = "d3650000-0005-4000-8000-000000000001";
    pub(crate) const MFA_USER_UPN: &str = "bob@contoso.onmicrosoft.com";
    pub(crate) const MFA_USER_OBJECT_ID: &str = "d3650000-0005-4000-8000-000000000002";
    pub(crate) const USER_PASSWORD: &str = "Emulator-Passw0rd!";
    pub(crate) const NO_USER_APP_ID: &str = "d3650000-a990-4000-8000-000000000004";
    pub(crate) const NO_USER_APP_SECRET: &str = "d365-emulator-secret~4";
    pub(crate) const READER_APP_ID: &str = "d3650000-a990-4000-8000-000000000005";
    pub(crate) const READER_APP_SECRET: &str = "d365-emulator-secret~5";
    pub(crate) const CONFIDENTIAL_APP_USER_ID: &str = "d3650000-5050-4000-8000-000000000001";
    pub(crate) const CERTIFICATE_APP_USER_ID: &str = "d3650000-5050-4000-8000-000000000002";
    pub(crate) const USER_SYSTEMUSER_ID: &str = "d3650000-5050-4000-8000-000000000003";
    pub(crate) const MFA_USER_SYSTEMUSER_ID: &str = "d3650000-5050-4000-8000-000000000004";
    pub(crate) const READER_APP_USER_ID: &str = "d3650000-5050-4000-8000-000000000005";
    pub(crate) const SYSTEM_IDENTITY_CLIENT_ID: &str = "d3650000-a990-4000-8000-000000000006";
    pub(crate) const SYSTEM_IDENTITY_OBJECT_ID: &str = "d3650000-5e90-4000-8000-000000000006";
    pub(crate) const SYSTEM_IDENTITY_RESOURCE_ID: &str = "/subscriptions/d3650000-5b50-4000-8000-000000000001/resourceGroups/d365-emulator/providers/Microsoft.Compute/virtualMachines/d365-emulator-vm";
    pub(crate) const SYSTEM_IDENTITY_USER_ID: &str = "d3650000-5050-4000-8000-000000000006";
    pub(crate) const USER_IDENTITY_CLIENT_ID: &str = "d3650000-a990-4000-8000-000000000007";
    pub(crate) const USER_IDENTITY_OBJECT_ID: &str = "d3650000-5e90-4000-8000-000000000007";
    pub(crate) const USER_IDENTITY_RESOURCE_ID: &str = "/subscriptions/d3650000-5b50-4000-8000-000000000001/resourceGroups/d365-emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/d365-emulator-identity";
    pub(crate) const USER_IDENTITY_USER_ID: &str = "d3650000-5050-4000-8000-000000000007";
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
    /// A confidential app that gets tokens but has no application user in the organization:
    /// the Web API answers 403 `0x80072560`.
    pub no_user_app: SeededSecretApp,
    /// A confidential app whose application user has only the read-only role: writes answer
    /// 403 `0x80040220`.
    pub reader_app: SeededSecretApp,
    /// The Dataverse organization and the system users of the identities above.
    pub organization: SeededOrganization,
    /// The emulated Azure host's system-assigned managed identity (asked for with no id).
    pub system_assigned_identity: SeededManagedIdentity,
    /// A user-assigned managed identity attached to the same host.
    pub user_assigned_identity: SeededManagedIdentity,
}

/// A seeded managed identity; both have an application user (System Administrator).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeededManagedIdentity {
    /// Client (application) id: `client_id` of IMDS and App Service requests, `appid` of
    /// its tokens.
    pub client_id: String,
    /// Object (principal) id: `object_id` / `principal_id`, `oid` of its tokens.
    pub object_id: String,
    /// Azure resource id: `msi_res_id` / `mi_res_id`.
    pub resource_id: String,
}

/// The seeded Dataverse organization: fixed ids of the organization, its business unit, its
/// two security roles and the system user of each seeded identity.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeededOrganization {
    /// `OrganizationId` (WhoAmI).
    pub organization_id: String,
    /// The root business unit (`BusinessUnitId` in WhoAmI).
    pub business_unit_id: String,
    /// The "System Administrator" role (all privileges on every table).
    pub system_administrator_role_id: String,
    /// The "Emulator Read Only" role (read on every table).
    pub read_only_role_id: String,
    /// System user of the confidential app (System Administrator).
    pub confidential_app_user_id: String,
    /// System user of the certificate app (System Administrator).
    pub certificate_app_user_id: String,
    /// System user of the password user alice (System Administrator).
    pub user_id: String,
    /// System user of the MFA user bob (System Administrator).
    pub mfa_user_id: String,
    /// System user of the read-only app.
    pub reader_app_user_id: String,
    /// System user of the system-assigned managed identity (System Administrator).
    pub system_assigned_identity_user_id: String,
    /// System user of the user-assigned managed identity (System Administrator).
    pub user_assigned_identity_user_id: String,
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
        redirect_uris: Vec::new(),
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
    let mut public = app(
        ids::PUBLIC_APP_ID,
        "d365 emulator public client",
        "d3650000-5e90-4000-8000-000000000003",
        true,
    );
    // Any loopback port: Entra ignores the port of localhost redirect URIs.
    public.redirect_uris = vec![ids::PUBLIC_APP_REDIRECT_URI.to_owned()];
    let with_secrets = |id: &str, name: &str, sp: &str, value: &str, n: u8| {
        let mut registered = app(id, name, sp, false);
        registered.secrets = vec![
            ClientSecret {
                id: format!("d3650000-5ec0-4000-8000-00000000000{n}"),
                value: secret(value),
                expires_at: far_future,
            },
            ClientSecret {
                id: format!("d3650000-5ec0-4000-8000-0000000000{n}0"),
                value: secret(&format!("d365-emulator-expired-secret~{n}")),
                expires_at: expired,
            },
        ];
        registered
    };
    let no_user = with_secrets(
        ids::NO_USER_APP_ID,
        "d365 emulator app without an application user",
        "d3650000-5e90-4000-8000-000000000004",
        ids::NO_USER_APP_SECRET,
        4,
    );
    let reader = with_secrets(
        ids::READER_APP_ID,
        "d365 emulator read-only app",
        "d3650000-5e90-4000-8000-000000000005",
        ids::READER_APP_SECRET,
        5,
    );
    tenant.apps = vec![confidential, with_certificate, public, no_user, reader];

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

    let identity = |client_id: &str, object_id: &str, resource_id: &str, name: &str, user: &str| {
        ManagedIdentity {
            client_id: client_id.to_owned(),
            object_id: object_id.to_owned(),
            resource_id: resource_id.to_owned(),
            display_name: name.to_owned(),
            system_assigned: client_id == ids::SYSTEM_IDENTITY_CLIENT_ID,
            roles: Vec::new(),
            application_user_id: Some(user.to_owned()),
        }
    };
    tenant.managed_identities = vec![
        identity(
            ids::SYSTEM_IDENTITY_CLIENT_ID,
            ids::SYSTEM_IDENTITY_OBJECT_ID,
            ids::SYSTEM_IDENTITY_RESOURCE_ID,
            "d365-emulator-vm",
            ids::SYSTEM_IDENTITY_USER_ID,
        ),
        identity(
            ids::USER_IDENTITY_CLIENT_ID,
            ids::USER_IDENTITY_OBJECT_ID,
            ids::USER_IDENTITY_RESOURCE_ID,
            "d365-emulator-identity",
            ids::USER_IDENTITY_USER_ID,
        ),
    ];
    let seeded_identity =
        |client_id: &str, object_id: &str, resource_id: &str| SeededManagedIdentity {
            client_id: client_id.to_owned(),
            object_id: object_id.to_owned(),
            resource_id: resource_id.to_owned(),
        };

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
        no_user_app: SeededSecretApp {
            client_id: ids::NO_USER_APP_ID.to_owned(),
            secret: secret(ids::NO_USER_APP_SECRET),
            expired_secret: secret("d365-emulator-expired-secret~4"),
        },
        reader_app: SeededSecretApp {
            client_id: ids::READER_APP_ID.to_owned(),
            secret: secret(ids::READER_APP_SECRET),
            expired_secret: secret("d365-emulator-expired-secret~5"),
        },
        organization: SeededOrganization {
            organization_id: org_ids::ORGANIZATION_ID.to_owned(),
            business_unit_id: org_ids::BUSINESS_UNIT_ID.to_owned(),
            system_administrator_role_id: org_ids::SYSTEM_ADMINISTRATOR_ROLE_ID.to_owned(),
            read_only_role_id: org_ids::READ_ONLY_ROLE_ID.to_owned(),
            confidential_app_user_id: ids::CONFIDENTIAL_APP_USER_ID.to_owned(),
            certificate_app_user_id: ids::CERTIFICATE_APP_USER_ID.to_owned(),
            user_id: ids::USER_SYSTEMUSER_ID.to_owned(),
            mfa_user_id: ids::MFA_USER_SYSTEMUSER_ID.to_owned(),
            reader_app_user_id: ids::READER_APP_USER_ID.to_owned(),
            system_assigned_identity_user_id: ids::SYSTEM_IDENTITY_USER_ID.to_owned(),
            user_assigned_identity_user_id: ids::USER_IDENTITY_USER_ID.to_owned(),
        },
        system_assigned_identity: seeded_identity(
            ids::SYSTEM_IDENTITY_CLIENT_ID,
            ids::SYSTEM_IDENTITY_OBJECT_ID,
            ids::SYSTEM_IDENTITY_RESOURCE_ID,
        ),
        user_assigned_identity: seeded_identity(
            ids::USER_IDENTITY_CLIENT_ID,
            ids::USER_IDENTITY_OBJECT_ID,
            ids::USER_IDENTITY_RESOURCE_ID,
        ),
    };
    Ok((tenant, identities))
}

/// The system users of the seeded identities: every one a System Administrator except the
/// read-only app; the app without an application user is left out on purpose. (The managed
/// identities' application users come from the directory, see `builder.rs`.)
pub(crate) fn system_users() -> Vec<NewUser> {
    let app = |id: &str, app_id: &str, name: &str, role: &str| NewUser {
        id: id.to_owned(),
        full_name: name.to_owned(),
        application_id: Some(app_id.to_owned()),
        object_id: None,
        domain_name: None,
        roles: vec![role.to_owned()],
    };
    let user = |id: &str, oid: &str, upn: &str, name: &str| NewUser {
        id: id.to_owned(),
        full_name: name.to_owned(),
        application_id: None,
        object_id: Some(oid.to_owned()),
        domain_name: Some(upn.to_owned()),
        roles: vec![org_ids::SYSTEM_ADMINISTRATOR.to_owned()],
    };
    vec![
        app(
            ids::CONFIDENTIAL_APP_USER_ID,
            ids::CONFIDENTIAL_APP_ID,
            "# d365 emulator confidential app",
            org_ids::SYSTEM_ADMINISTRATOR,
        ),
        app(
            ids::CERTIFICATE_APP_USER_ID,
            ids::CERTIFICATE_APP_ID,
            "# d365 emulator certificate app",
            org_ids::SYSTEM_ADMINISTRATOR,
        ),
        app(
            ids::READER_APP_USER_ID,
            ids::READER_APP_ID,
            "# d365 emulator read-only app",
            org_ids::READ_ONLY,
        ),
        user(
            ids::USER_SYSTEMUSER_ID,
            ids::USER_OBJECT_ID,
            ids::USER_UPN,
            "Alice Emulator",
        ),
        user(
            ids::MFA_USER_SYSTEMUSER_ID,
            ids::MFA_USER_OBJECT_ID,
            ids::MFA_USER_UPN,
            "Bob Emulator",
        ),
    ]
}
