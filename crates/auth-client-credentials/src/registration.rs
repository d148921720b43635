//! The client credentials grant as configuration knows it: `AuthType=ClientSecret` and
//! `AuthType=Certificate` connection strings, and azure-identity's variables
//! (`AZURE_CLIENT_SECRET`, `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_FEDERATED_TOKEN_FILE`).
//! `d365-connect` registers [`REGISTRATION`] with its `client-credentials` feature.

use std::path::Path;
use std::sync::Arc;

use d365_auth_core::grant::{CLIENT_SECRET, GrantConfig, GrantRegistration, SettingKey};
use d365_auth_core::{ConfigError, TokenProvider};
use secrecy::SecretString;

use crate::certificate::{AssertionAlgorithm, Certificate};
use crate::provider::ClientCredentials;

const THUMBPRINT: SettingKey = SettingKey::new(
    "Thumbprint",
    &["CertificateThumbprint", "Thumbprint", "CertThumbprint"],
);
const STORE_NAME: SettingKey = SettingKey::new("StoreName", &["CertificateStoreName", "StoreName"]);
const CERTIFICATE_PATH: SettingKey = SettingKey::new(
    "CertificatePath",
    &["CertificatePath", "Certificate Path", "CertificateFile"],
)
.environment("AZURE_CLIENT_CERTIFICATE_PATH");
const CERTIFICATE_KEY_PATH: SettingKey = SettingKey::new(
    "CertificateKeyPath",
    &["CertificateKeyPath", "CertificateKeyFile", "PrivateKeyPath"],
);
const CERTIFICATE_PASSWORD: SettingKey = SettingKey::new(
    "CertificatePassword",
    &["CertificatePassword", "Certificate Password"],
)
.secret()
.environment("AZURE_CLIENT_CERTIFICATE_PASSWORD");
const SEND_CERTIFICATE_CHAIN: SettingKey =
    SettingKey::new("SendCertificateChain", &["SendCertificateChain"])
        .environment("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN");
const ASSERTION_ALGORITHM: SettingKey = SettingKey::new(
    "AssertionAlgorithm",
    &["AssertionAlgorithm", "SigningAlgorithm"],
);
const FEDERATED_TOKEN_FILE: SettingKey = SettingKey::new(
    "FederatedTokenFile",
    &["FederatedTokenFile", "ClientAssertionFile"],
)
.environment("AZURE_FEDERATED_TOKEN_FILE");

const KEYS: &[SettingKey] = &[
    CLIENT_SECRET,
    THUMBPRINT,
    STORE_NAME,
    CERTIFICATE_PATH,
    CERTIFICATE_KEY_PATH,
    CERTIFICATE_PASSWORD,
    SEND_CERTIFICATE_CHAIN,
    ASSERTION_ALGORITHM,
    FEDERATED_TOKEN_FILE,
];

/// The client credentials grant, registered with configuration.
///
/// It takes `AuthType=ClientSecret` (`ClientId`, `ClientSecret`) and `AuthType=Certificate`
/// (`ClientId`, `CertificatePath` — a `.pfx`/`.p12` with `CertificatePassword`, or PEM with
/// `CertificateKeyPath` — and optionally `Thumbprint`, checked against the file, and
/// `SendCertificateChain`, true by default as in ServiceClient, and `AssertionAlgorithm`,
/// `RS256` or `PS256`, by default RS256 for AD FS and PS256 for Entra ID). Without an `AuthType`
/// (environment variables) it takes a client secret, a certificate, or a federated token
/// file, in azure-identity's order: a user name and password win over a federated token
/// file there.
///
/// # Examples
///
/// ```
/// use d365_auth_client_credentials::REGISTRATION;
/// use d365_auth_core::grant::{GrantConfig, GrantRegistration};
/// use d365_auth_core::{Authority, Tenant};
///
/// let mut config = GrantConfig::default();
/// config.auth_type = Some("ClientSecret".into());
/// config.client_id = Some("00000000-0000-0000-0000-000000000001".into());
/// config.set_secret("ClientSecret", "a-secret-value-of-forty-characters-ok-ok".into());
/// config.authority = Some(Authority::public_cloud(Tenant::parse("contoso.onmicrosoft.com")?));
/// assert!(REGISTRATION.accepts(&config));
/// let provider = REGISTRATION.build(&config)?;
/// assert_eq!(provider.grant().as_str(), "client_credentials");
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct ClientCredentialsRegistration;

/// The registration `d365-connect` lists.
pub static REGISTRATION: ClientCredentialsRegistration = ClientCredentialsRegistration;

/// Which credential a configuration gives.
enum Credential {
    Secret,
    Certificate,
    FederatedToken,
}

impl ClientCredentialsRegistration {
    /// The credential `config` describes, or why it describes none.
    fn credential(config: &GrantConfig) -> Result<Credential, ConfigError> {
        let secret = || Credential::Secret;
        if config.auth_type_is("ClientSecret") {
            return if config.has(CLIENT_SECRET.name) {
                Ok(secret())
            } else {
                Err(ConfigError::Missing {
                    setting: CLIENT_SECRET.name,
                    fix: "give the secret's Value from App registrations > Certificates & secrets (quote it if it contains ; or outer spaces: ClientSecret='a;b'); d365 never falls back to interactive sign-in".to_owned(),
                })
            };
        }
        if config.auth_type_is("Certificate") {
            return if config.has(CERTIFICATE_PATH.name) {
                Ok(Credential::Certificate)
            } else if let Some(thumbprint) = config.text(THUMBPRINT.name) {
                Err(ConfigError::Invalid {
                    setting: THUMBPRINT.name,
                    problem: format!(
                        "the certificate {thumbprint} is to be read from the Windows certificate store `{}`, and certificate stores are Windows-only",
                        config.text(STORE_NAME.name).unwrap_or("My")
                    ),
                    fix: "export the certificate with its private key and give CertificatePath=<file.pfx or file.pem> (with CertificatePassword for a protected .pfx); keep Thumbprint to have d365 check it is the right certificate".to_owned(),
                })
            } else {
                Err(ConfigError::Missing {
                    setting: CERTIFICATE_PATH.name,
                    fix: "give the certificate with its private key as a file: CertificatePath=<file.pfx, .p12 or .pem> (and CertificatePassword for a protected .pfx, CertificateKeyPath for a separate PEM key)".to_owned(),
                })
            };
        }
        if config.has(CLIENT_SECRET.name) {
            Ok(secret())
        } else if config.has(CERTIFICATE_PATH.name) {
            Ok(Credential::Certificate)
        } else if config.has(FEDERATED_TOKEN_FILE.name) {
            Ok(Credential::FederatedToken)
        } else {
            Err(ConfigError::Missing {
                setting: "client credential",
                fix: "give a client secret (AZURE_CLIENT_SECRET), a certificate (AZURE_CLIENT_CERTIFICATE_PATH) or a federated token file (AZURE_FEDERATED_TOKEN_FILE)".to_owned(),
            })
        }
    }
}

impl GrantRegistration for ClientCredentialsRegistration {
    fn name(&self) -> &'static str {
        "client-credentials"
    }

    fn description(&self) -> &'static str {
        "an application signs in as itself with a client secret, a certificate or a federated token: for daemons, jobs and services (app-only tokens, roles)"
    }

    fn keys(&self) -> &'static [SettingKey] {
        KEYS
    }

    fn accepts(&self, config: &GrantConfig) -> bool {
        if config.auth_type.is_some() {
            return config.auth_type_is("ClientSecret") || config.auth_type_is("Certificate");
        }
        let user_password = config.has("Username") && config.has("Password");
        config.has(CLIENT_SECRET.name)
            || config.has(CERTIFICATE_PATH.name)
            || (config.has(FEDERATED_TOKEN_FILE.name) && !user_password)
    }

    fn check(&self, config: &GrantConfig) -> Result<(), ConfigError> {
        if config
            .client_id
            .as_deref()
            .is_none_or(|id| id.trim().is_empty())
        {
            return Err(ConfigError::Missing {
                setting: "ClientId",
                fix: "give the application (client) id of the app registration; d365 never substitutes Microsoft's sample application for your own".to_owned(),
            });
        }
        if let Some(thumbprint) = config.text(THUMBPRINT.name) {
            normalize_thumbprint(thumbprint)?;
        }
        config.flag(SEND_CERTIFICATE_CHAIN.name)?;
        assertion_algorithm(config)?;
        Self::credential(config).map(|_| ())
    }

    fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError> {
        self.check(config)?;
        let mut builder =
            ClientCredentials::builder().client_id(config.client_id.clone().unwrap_or_default());
        if let Some(authority) = &config.authority {
            builder = builder.authority(authority.clone());
        }
        if let Some(http) = &config.http {
            builder = builder.http_client(http.clone());
        }
        builder = match Self::credential(config)? {
            Credential::Secret => builder.client_secret(
                config
                    .secret(CLIENT_SECRET.name)
                    .cloned()
                    .unwrap_or_else(|| SecretString::from(String::new())),
            ),
            Credential::Certificate => {
                // ServiceClient sends the chain; azure-identity only when asked.
                let default_chain = config.auth_type.is_some();
                let send_chain = config
                    .flag(SEND_CERTIFICATE_CHAIN.name)?
                    .unwrap_or(default_chain);
                let builder = builder
                    .certificate(load_certificate(config)?)
                    .send_certificate_chain(send_chain);
                match assertion_algorithm(config)? {
                    Some(algorithm) => builder.assertion_algorithm(algorithm),
                    None => builder,
                }
            }
            Credential::FederatedToken => builder
                .federated_token_file(config.text(FEDERATED_TOKEN_FILE.name).unwrap_or_default()),
        };
        Ok(Arc::new(builder.build()?))
    }
}

/// `AssertionAlgorithm`: `RS256` or `PS256` in any case; absent lets the authority decide.
fn assertion_algorithm(config: &GrantConfig) -> Result<Option<AssertionAlgorithm>, ConfigError> {
    let Some(value) = config.text(ASSERTION_ALGORITHM.name) else {
        return Ok(None);
    };
    if value.eq_ignore_ascii_case("RS256") {
        Ok(Some(AssertionAlgorithm::Rs256))
    } else if value.eq_ignore_ascii_case("PS256") {
        Ok(Some(AssertionAlgorithm::Ps256))
    } else {
        Err(ConfigError::Invalid {
            setting: ASSERTION_ALGORITHM.name,
            problem: format!("`{value}` is not an algorithm d365 signs assertions with"),
            fix: "write RS256 (AD FS, older servers) or PS256 (Entra ID), or leave it out: d365 picks RS256 for AD FS and PS256 for Entra ID".to_owned(),
        })
    }
}

/// Loads `CertificatePath` (PKCS#12 by its extension, PEM otherwise, with its key in
/// `CertificateKeyPath` or the same file) and checks `Thumbprint` against it.
fn load_certificate(config: &GrantConfig) -> Result<Certificate, ConfigError> {
    let path = Path::new(config.text(CERTIFICATE_PATH.name).unwrap_or_default());
    let is_pkcs12 = path
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("pfx") || ext.eq_ignore_ascii_case("p12"));
    let loaded = if is_pkcs12 {
        let empty = SecretString::from(String::new());
        let password = config.secret(CERTIFICATE_PASSWORD.name).unwrap_or(&empty);
        Certificate::from_pkcs12_file(path, password)
    } else {
        let key = config
            .text(CERTIFICATE_KEY_PATH.name)
            .map_or(path, Path::new);
        Certificate::from_pem_files(key, path)
    };
    // Configuration names the file by its key, so the error does too.
    let certificate = loaded.map_err(|error| match error {
        ConfigError::Invalid { problem, fix, .. } => ConfigError::Invalid {
            setting: CERTIFICATE_PATH.name,
            problem,
            fix,
        },
        other => other,
    })?;
    if let Some(expected) = config.text(THUMBPRINT.name) {
        let expected = normalize_thumbprint(expected)?;
        let found = certificate
            .thumbprint_sha1()
            .to_ascii_uppercase()
            .replace(':', "");
        if found != expected {
            return Err(ConfigError::Invalid {
                setting: THUMBPRINT.name,
                problem: format!(
                    "the certificate in CertificatePath has the SHA-1 thumbprint {found}, not {expected} as Thumbprint says"
                ),
                fix: "give the file of the certificate registered for the application, or correct Thumbprint".to_owned(),
            });
        }
    }
    Ok(certificate)
}

/// A SHA-1 thumbprint as the portal shows it, in any common spelling (lower case, with
/// spaces, colons or dashes, with the invisible mark Windows' certificate dialog copies),
/// as 40 upper-case hex digits.
fn normalize_thumbprint(value: &str) -> Result<String, ConfigError> {
    let hex: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-' && *c != '\u{200e}')
        .collect::<String>()
        .to_ascii_uppercase();
    if hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(ConfigError::Invalid {
            setting: THUMBPRINT.name,
            problem: format!(
                "a SHA-1 thumbprint is 40 hexadecimal digits, and this value has {} characters after removing separators",
                hex.chars().count()
            ),
            fix: "copy the thumbprint from the app registration's Certificates & secrets page"
                .to_owned(),
        })
    }
}
