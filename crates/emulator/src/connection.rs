//! Ready connection strings (ServiceClient style) for the seeded identities, so a person or a
//! CLI can paste one and connect: `AuthType=ClientSecret;Url={base};ClientId=…;
//! ClientSecret=…;TenantId=…;AuthorityHost={base}`. `AuthorityHost` names the authority
//! host (the emulator itself); `TenantId` the tenant.

use secrecy::{ExposeSecret as _, SecretString};

use crate::seed::SeededIdentities;

/// One connection string. It holds a secret, so `Debug` shows only which identity it is for.
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectionString {
    /// What it connects as, e.g. `confidential app (client secret)`.
    pub identity: String,
    /// The connection string itself.
    pub value: SecretString,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionString")
            .field("identity", &self.identity)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// The connection strings of the seeded identities for an emulator at `base_url` (no
/// trailing slash): the confidential app, the certificate app (by thumbprint), the password
/// user alice through the public client, the read-only app, the app without an
/// application user, and alice again by the browser sign-in and by a device code.
pub fn connection_strings(base_url: &str, seeded: &SeededIdentities) -> Vec<ConnectionString> {
    let tenant = &seeded.tenant.id;
    let common = format!("Url={base_url};TenantId={tenant};AuthorityHost={base_url}");
    let secret_app = |label: &str, app: &crate::SeededSecretApp| ConnectionString {
        identity: label.to_owned(),
        value: SecretString::from(format!(
            "AuthType=ClientSecret;{common};ClientId={};ClientSecret={}",
            app.client_id,
            app.secret.expose_secret()
        )),
    };
    vec![
        secret_app(
            "confidential app (client secret, System Administrator)",
            &seeded.confidential_app,
        ),
        ConnectionString {
            identity: "certificate app (certificate, System Administrator)".to_owned(),
            value: SecretString::from(format!(
                "AuthType=Certificate;{common};ClientId={};Thumbprint={}",
                seeded.certificate_app.client_id, seeded.certificate_app.thumbprint_sha1
            )),
        },
        ConnectionString {
            identity: format!("user {} (password, System Administrator)", seeded.user.upn),
            value: SecretString::from(format!(
                "AuthType=OAuth;{common};ClientId={};Username={};Password={};LoginPrompt=Never",
                seeded.public_app.client_id,
                seeded.user.upn,
                seeded.user.password.expose_secret()
            )),
        },
        secret_app(
            "read-only app (client secret, Emulator Read Only)",
            &seeded.reader_app,
        ),
        secret_app(
            "app without an application user (403 0x80072560)",
            &seeded.no_user_app,
        ),
        ConnectionString {
            identity: format!(
                "a person in the browser (sign in as {}; d365 login does this)",
                seeded.user.upn
            ),
            value: SecretString::from(format!(
                "AuthType=OAuth;{common};ClientId={};RedirectUri=http://localhost;LoginPrompt=Auto",
                seeded.public_app.client_id
            )),
        },
        ConnectionString {
            identity: format!("a person with a device code (approve it at {base_url}/devicelogin)"),
            value: SecretString::from(format!(
                "AuthType=OAuth;{common};ClientId={};Grant=device-code",
                seeded.public_app.client_id
            )),
        },
    ]
}

/// The connection string of the emulator's managed identity, App Service shape: the token
/// endpoint and its secret header, as `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` give them.
pub(crate) fn managed_identity_connection_string(
    base_url: &str,
    endpoint: &str,
    header: &SecretString,
) -> ConnectionString {
    ConnectionString {
        identity: "managed identity (App Service shape; IDENTITY_ENDPOINT and IDENTITY_HEADER)"
            .to_owned(),
        value: SecretString::from(format!(
            "Grant=managed-identity;Url={base_url};IdentityEndpoint={endpoint};IdentityHeader={}",
            header.expose_secret()
        )),
    }
}

/// The connection strings of the seeded identities for an on-premises emulator: the
/// organization URL alone (AD FS is found from the server's challenge), the users by
/// `DOMAIN\\user`, and CrmServiceClient's `IFD` form.
pub(crate) fn on_premises_connection_strings(
    organization_url: &str,
    on_premises: &crate::on_premises::OnPremises,
    seeded: &SeededIdentities,
) -> Vec<ConnectionString> {
    let user = seeded.user.upn.split('@').next().unwrap_or_default();
    let domain = on_premises.domain_name();
    let password = seeded.user.password.expose_secret();
    vec![
        ConnectionString {
            identity: "confidential AD FS client (client secret, System Administrator)".to_owned(),
            value: SecretString::from(format!(
                "AuthType=ClientSecret;Url={organization_url};ClientId={};ClientSecret={}",
                seeded.confidential_app.client_id,
                seeded.confidential_app.secret.expose_secret()
            )),
        },
        ConnectionString {
            identity: "certificate AD FS client (certificate, RS256, System Administrator)"
                .to_owned(),
            value: SecretString::from(format!(
                "AuthType=Certificate;Url={organization_url};ClientId={};Thumbprint={}",
                seeded.certificate_app.client_id, seeded.certificate_app.thumbprint_sha1
            )),
        },
        ConnectionString {
            identity: format!("user {domain}\\{user} (password, System Administrator)"),
            value: SecretString::from(format!(
                "AuthType=OAuth;Url={organization_url};ClientId={};Username={domain}\\{user};Password={password};LoginPrompt=Never",
                seeded.public_app.client_id,
            )),
        },
        ConnectionString {
            identity: format!("user {domain}\\{user} (Windows sign-in: NTLM, no AD FS)"),
            value: SecretString::from(format!(
                "AuthType=AD;Url={organization_url};Domain={domain};Username={user};Password={password}"
            )),
        },
        ConnectionString {
            identity: format!("user {user} of {domain} (CrmServiceClient's IFD form)"),
            value: SecretString::from(format!(
                "AuthType=IFD;Url={organization_url};ClientId={};Domain={domain};Username={user};Password={password}",
                seeded.public_app.client_id,
            )),
        },
    ]
}
