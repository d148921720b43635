//! [`ClientCredentials`] and its builder: which authority, which client, which credential,
//! validated before the first request.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use d365_auth_core::grant::{
    ClientCredential, ClientKind, ClientSettings, TokenEndpointClient, TokenForm, client_setters,
    credential_fingerprint,
};
use d365_auth_core::{
    AccessToken, AuthError, ConfigError, Grant, Tenant, TokenEndpoint, TokenProvider, TokenRequest,
    async_trait,
};
use secrecy::{ExposeSecret, SecretString};

use crate::certificate::{AssertionAlgorithm, Certificate};
use crate::external::{ExternalAssertion, FederatedTokenFile, looks_like_jwt};

/// The grant on the wire (RFC 6749 §4.4).
const GRANT_TYPE: &str = "client_credentials";

/// Lifetime of the assertions we sign: Entra rejects much longer ones in some tenants,
/// and MSAL and azure-identity use 5 to 10 minutes.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// How a client secret travels to the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretMethod {
    /// `client_secret_post`: in the form body. Entra's usual form, and the default.
    #[default]
    Post,
    /// `client_secret_basic`: in an HTTP Basic header, each part form-encoded (RFC 6749 §2.3.1).
    Basic,
}

#[derive(Clone)]
enum Credential {
    Secret(SecretString, SecretMethod),
    Certificate {
        certificate: Certificate,
        algorithm: AssertionAlgorithm,
        include_chain: bool,
    },
    External(ExternalAssertion),
}

impl Credential {
    /// A one-way fingerprint of the credential: the secret's digest, the certificate's
    /// SHA-256 thumbprint, the federated token file's path. Tokens got with another
    /// credential (a rotated or wrong secret) then never match this provider's cache key.
    fn fingerprint(&self) -> String {
        match self {
            Self::Secret(secret, _) => {
                credential_fingerprint("client_secret", secret.expose_secret().as_bytes())
            }
            Self::Certificate { certificate, .. } => {
                credential_fingerprint("certificate", certificate.thumbprint_sha256().as_bytes())
            }
            Self::External(external) => external.fingerprint(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_, method) => f
                .debug_tuple("Secret")
                .field(&"[redacted]")
                .field(method)
                .finish(),
            Self::Certificate {
                certificate,
                algorithm,
                include_chain,
            } => f
                .debug_struct("Certificate")
                .field("certificate", certificate)
                .field("algorithm", algorithm)
                .field("include_chain", include_chain)
                .finish(),
            Self::External(source) => source.fmt(f),
        }
    }
}

/// The OAuth 2.0 client credentials grant: the application gets a token as itself.
///
/// Every request sends a fresh credential: the secret, a newly signed assertion, or the
/// current external assertion. It does not cache; put it in a
/// [`TokenCache`](d365_auth_core::TokenCache).
///
/// # Examples
///
/// ```no_run
/// use d365_auth_client_credentials::ClientCredentials;
/// use d365_auth_core::{TokenCache, TokenRequest};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let grant = ClientCredentials::builder()
///     .tenant("contoso.onmicrosoft.com")
///     .client_id("00000000-0000-0000-0000-000000000001")
///     .client_secret(std::env::var("CLIENT_SECRET")?.into())
///     .build()?;
/// let cache = TokenCache::new(grant);
/// let token = cache.get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientCredentials {
    endpoint: TokenEndpoint,
    client_id: String,
    credential: Credential,
    /// Which credential this is, one-way, for the cache key.
    fingerprint: String,
    http: TokenEndpointClient,
}

impl ClientCredentials {
    /// Configures the grant.
    pub fn builder() -> ClientCredentialsBuilder {
        ClientCredentialsBuilder::default()
    }

    /// The token endpoint requests go to.
    #[must_use]
    pub fn token_endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    /// The application (client) id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    async fn assertion(&self) -> Result<Option<SecretString>, AuthError> {
        match &self.credential {
            Credential::Secret(..) => Ok(None),
            Credential::Certificate {
                certificate,
                algorithm,
                include_chain,
            } => certificate
                .sign_assertion(
                    &self.client_id,
                    self.endpoint.url().as_str(),
                    *algorithm,
                    *include_chain,
                    ASSERTION_LIFETIME,
                )
                .map(Some)
                .map_err(|error| {
                    AuthError::credential(
                        format!(
                            "the client assertion could not be signed with the certificate: {error}"
                        ),
                        Some(Box::new(error)),
                    )
                }),
            Credential::External(source) => {
                let assertion = source.assertion().await?;
                if !looks_like_jwt(&assertion) {
                    return Err(AuthError::credential(
                        "the external client assertion is not a JWT (three base64url parts separated by dots); check what the callback or token file provides",
                        None,
                    ));
                }
                Ok(Some(assertion))
            }
        }
    }
}

#[async_trait]
impl TokenProvider for ClientCredentials {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let assertion = self.assertion().await?;
        let credential = match (&self.credential, &assertion) {
            (Credential::Secret(secret, SecretMethod::Post), _) => {
                ClientCredential::SecretPost(secret)
            }
            (Credential::Secret(secret, SecretMethod::Basic), _) => {
                ClientCredential::SecretBasic(secret)
            }
            (_, Some(assertion)) => ClientCredential::Assertion(assertion),
            (_, None) => {
                unreachable!("certificates and external sources always produce an assertion")
            }
        };
        let form = TokenForm::new(GRANT_TYPE, &self.client_id)
            .credential(credential)
            .target(request, ClientKind::Confidential, &self.endpoint);
        self.http
            .send(&self.endpoint, &form)
            .await?
            .into_access_token(request)
    }

    fn grant(&self) -> Grant {
        Grant::new(GRANT_TYPE)
    }

    fn cache_key(&self) -> String {
        format!(
            "{GRANT_TYPE}|{}|{}|{}",
            self.endpoint.url(),
            self.client_id,
            self.fingerprint
        )
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("endpoint", &self.endpoint.url().as_str())
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

/// Configures [`ClientCredentials`]; see [`ClientCredentials::builder`]. Every mistake is
/// reported by [`build`](Self::build), before any request.
#[derive(Default)]
#[must_use]
pub struct ClientCredentialsBuilder {
    client: ClientSettings,
    secret: Option<SecretString>,
    secret_method: SecretMethod,
    certificate: Option<Result<Certificate, ConfigError>>,
    /// `None` until set: PS256, or RS256 for AD FS (which accepts nothing else).
    algorithm: Option<AssertionAlgorithm>,
    include_chain: bool,
    external: Option<ExternalAssertion>,
}

impl ClientCredentialsBuilder {
    // The tenant, cloud, authority host, AD FS, authority, token endpoint, endpoint
    // version, client id, HTTP client and timeout, as every grant takes them. Client
    // credentials need a specific tenant: `organizations`, `common` and `consumers` are
    // refused by `build`.
    client_setters!(client);

    /// Authenticate with a client secret (its value, not its id).
    pub fn client_secret(mut self, secret: SecretString) -> Self {
        self.secret = Some(secret);
        self
    }

    /// How the secret is sent (`client_secret_post` unless set).
    pub fn secret_method(mut self, method: SecretMethod) -> Self {
        self.secret_method = method;
        self
    }

    /// Authenticate with a certificate: a client assertion signed per request.
    pub fn certificate(mut self, certificate: Certificate) -> Self {
        self.certificate = Some(Ok(certificate));
        self
    }

    /// Authenticate with a PEM key and certificate read from files (one file holding both
    /// may be given twice). Problems are reported by `build`.
    pub fn certificate_pem_files(
        mut self,
        private_key: impl AsRef<Path>,
        certificate: impl AsRef<Path>,
    ) -> Self {
        self.certificate = Some(Certificate::from_pem_files(
            private_key.as_ref(),
            certificate.as_ref(),
        ));
        self
    }

    /// Authenticate with a PKCS#12 archive read from a file.
    pub fn certificate_pkcs12_file(
        mut self,
        path: impl AsRef<Path>,
        password: &SecretString,
    ) -> Self {
        self.certificate = Some(Certificate::from_pkcs12_file(path.as_ref(), password));
        self
    }

    /// The assertion's algorithm: PS256 with `x5t#S256` (the default for Entra ID) or
    /// RS256 with a SHA-1 `x5t` (the default for AD FS, which takes RS256 only, as MSAL
    /// sends it there).
    pub fn assertion_algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.algorithm = Some(algorithm);
        self
    }

    /// Send the certificate chain in the `x5c` header, for subject name and issuer trust.
    pub fn send_certificate_chain(mut self, send: bool) -> Self {
        self.include_chain = send;
        self
    }

    /// Authenticate with an assertion your code provides (called for every request).
    pub fn assertion_callback<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<SecretString, AuthError>> + Send + 'static,
    {
        self.external = Some(ExternalAssertion::callback(callback));
        self
    }

    /// Authenticate with the federated token in a file (workload identity), re-read when
    /// it changes.
    pub fn federated_token_file(mut self, path: impl AsRef<Path>) -> Self {
        self.external = Some(ExternalAssertion::File(Arc::new(FederatedTokenFile::new(
            path.as_ref(),
        ))));
        self
    }

    /// Checks the settings and builds the grant.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a missing or invalid client id, tenant or authority; no
    /// credential or more than one; an empty secret; a certificate that cannot be used.
    pub fn build(self) -> Result<ClientCredentials, ConfigError> {
        let client_id = self.client.require_client_id()?;
        let resolved = self.client.authority.resolve(refuse_tenant_keywords)?;
        let adfs = resolved
            .authority
            .as_ref()
            .is_some_and(d365_auth_core::Authority::is_adfs);
        let endpoint = resolved.endpoint;
        let algorithm = self.algorithm.unwrap_or(if adfs {
            AssertionAlgorithm::Rs256
        } else {
            AssertionAlgorithm::Ps256
        });
        let credential = match (self.secret, self.certificate, self.external) {
            (Some(secret), None, None) => {
                check_secret(&secret)?;
                Credential::Secret(secret, self.secret_method)
            }
            (None, Some(certificate), None) => Credential::Certificate {
                certificate: certificate?,
                algorithm,
                include_chain: self.include_chain,
            },
            (None, None, Some(external)) => Credential::External(external),
            (None, None, None) => {
                return Err(ConfigError::Missing {
                    setting: "client credential",
                    fix: "give a client secret, a certificate, or an external assertion".to_owned(),
                });
            }
            _ => {
                return Err(ConfigError::Invalid {
                    setting: "client credential",
                    problem: "more than one credential was given".to_owned(),
                    fix: "give exactly one of a client secret, a certificate, or an external assertion".to_owned(),
                });
            }
        };
        Ok(ClientCredentials {
            endpoint,
            client_id,
            fingerprint: credential.fingerprint(),
            credential,
            http: self.client.endpoint_client(),
        })
    }
}

impl fmt::Debug for ClientCredentialsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsBuilder")
            .field("authority", &self.client.authority)
            .field("client_id", &self.client.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field(
                "certificate",
                &self.certificate.as_ref().map(|c| c.as_ref().ok()),
            )
            .field("external", &self.external)
            .finish_non_exhaustive()
    }
}

/// An application acts as itself in its own tenant: a keyword names none.
fn refuse_tenant_keywords(tenant: &Tenant) -> Result<(), ConfigError> {
    if !tenant.is_specific() {
        return Err(ConfigError::Invalid {
            setting: "tenant",
            problem: format!(
                "`{tenant}` names no tenant, and an application can only act as itself in its own"
            ),
            fix: "give the directory (tenant) id or a verified domain".to_owned(),
        });
    }
    Ok(())
}

/// Catches the secret mistakes people make before Entra does.
fn check_secret(secret: &SecretString) -> Result<(), ConfigError> {
    let value = secret.expose_secret();
    if value.trim().is_empty() {
        return Err(ConfigError::Missing {
            setting: "client secret",
            fix: "give the secret's Value from App registrations > Certificates & secrets"
                .to_owned(),
        });
    }
    if Tenant::parse(value).is_ok_and(|tenant| matches!(tenant, Tenant::Id(_))) {
        tracing::warn!(
            "the client secret looks like a GUID: that is usually the secret's ID, not its Value; Entra will answer AADSTS7000215"
        );
    }
    if value.trim() != value {
        tracing::warn!(
            "the client secret has leading or trailing whitespace, which is probably a copy-paste mistake"
        );
    }
    Ok(())
}
