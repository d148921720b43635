//! [`ManagedIdentityBuilder`]: where the endpoint is (found in the environment, or named),
//! which identity, how requests are timed and retried — checked by `build` before any
//! request.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use d365_auth_core::ConfigError;
use d365_auth_core::grant::TokenEndpointClient;
use http::{HeaderName, HeaderValue};
use secrecy::SecretString;

use crate::identity::{ManagedIdentityId, Spelling};
use crate::provider::{Inner, ManagedIdentity};
use crate::retry::RetryPolicy;
use crate::source::{
    self, Detected, IMDS_TOKEN_PATH, ManagedIdentitySource, check_endpoint, endpoint_url,
    header_value, shown_text_url,
};

/// IMDS's version with `client_id`, `object_id` and `msi_res_id`, which Microsoft's
/// documentation and azure-identity use.
const IMDS_API_VERSION: &str = "2018-02-01";
/// App Service's version with `X-IDENTITY-HEADER`, `client_id`, `principal_id` and
/// `mi_res_id`.
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
/// The header App Service checks.
const APP_SERVICE_HEADER: &str = "x-identity-header";
/// How long the IMDS probe waits for any answer (azure-identity's probe: 1 second).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a request waits for its answer once the endpoint is known to be there.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may take once the endpoint is known to be there (azure-identity:
/// 2 seconds): the endpoint is on the host.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the builder takes the source from; the last call wins.
enum Choice {
    Given(ManagedIdentitySource),
    Imds(String),
    AppService(String, SecretString),
    Detected(Result<Detected, ConfigError>),
}

/// Configures [`ManagedIdentity`]; see [`ManagedIdentity::builder`]. Every mistake is
/// reported by [`build`](Self::build), before any request.
///
/// Nothing is required. The source is the instance metadata endpoint at
/// `http://169.254.169.254` (VMs, scale sets, AKS) unless you call
/// [`from_environment`](Self::from_environment) — which finds App Service and Functions as
/// azure-identity does, and is what a program that may run in either should call — or name
/// one ([`imds_endpoint`](Self::imds_endpoint), [`app_service`](Self::app_service),
/// [`source`](Self::source)). The identity is the system-assigned one unless you name a
/// user-assigned one. Requests wait 30 seconds for an answer, the IMDS probe 1 second; the
/// retry policy is [`RetryPolicy::imds`] or [`RetryPolicy::app_service`].
///
/// # Examples
///
/// A user-assigned identity, by client id, on a VM:
///
/// ```
/// use d365_auth_managed_identity::ManagedIdentity;
///
/// let grant = ManagedIdentity::builder()
///     .client_id("00000000-0000-0000-0000-0000000000c1")
///     .build()?;
/// assert_eq!(
///     grant.token_endpoint().as_str(),
///     "http://169.254.169.254/metadata/identity/oauth2/token",
/// );
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
///
/// A local endpoint, for tests:
///
/// ```
/// use std::time::Duration;
/// use d365_auth_managed_identity::{ManagedIdentity, RetryPolicy};
///
/// let grant = ManagedIdentity::builder()
///     .imds_endpoint("http://127.0.0.1:50342")
///     .retry_policy(RetryPolicy::imds().initial_delay(Duration::from_millis(5)).jitter(false))
///     .probe_timeout(Duration::from_millis(300))
///     .build()?;
/// assert_eq!(grant.probe_timeout(), Some(Duration::from_millis(300)));
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[must_use]
#[derive(Default)]
pub struct ManagedIdentityBuilder {
    source: Option<Choice>,
    identity: ManagedIdentityId,
    retry: Option<RetryPolicy>,
    timeout: Option<Duration>,
    probe: Option<bool>,
    probe_timeout: Option<Duration>,
    http: Option<reqwest::Client>,
}

impl ManagedIdentityBuilder {
    /// Finds the endpoint where the program runs, from the process environment, as
    /// azure-identity does: `IDENTITY_ENDPOINT` with `IDENTITY_HEADER` (App Service,
    /// Functions, Container Apps), else `AZURE_POD_IDENTITY_AUTHORITY_HOST` (IMDS at that
    /// host, not probed), else IMDS at `http://169.254.169.254`. See
    /// [`from_variables`](Self::from_variables).
    pub fn from_environment(self) -> Self {
        self.from_variables(|name| std::env::var(name).ok())
    }

    /// As [`from_environment`](Self::from_environment), reading the variables through
    /// `lookup` (a name → its value; empty values count as unset): from a map, a file or a
    /// test, without touching the process environment. The variables are read now; a
    /// mistake in them is reported by [`build`](Self::build), naming the variable.
    pub fn from_variables(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        self.source = Some(Choice::Detected(source::detect(&lookup)));
        self
    }

    /// The instance metadata endpoint at `url` instead of `http://169.254.169.254`: the
    /// host, such as `http://127.0.0.1:50342` (the token path is added). Plain `http` is
    /// accepted for addresses on this host or its network only.
    pub fn imds_endpoint(mut self, url: impl Into<String>) -> Self {
        self.source = Some(Choice::Imds(url.into()));
        self
    }

    /// App Service's (or Functions', Container Apps') token endpoint and the header it
    /// expects: what the platform puts in `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`.
    pub fn app_service(mut self, endpoint: impl Into<String>, header: SecretString) -> Self {
        self.source = Some(Choice::AppService(endpoint.into(), header));
        self
    }

    /// This source.
    pub fn source(mut self, source: ManagedIdentitySource) -> Self {
        self.source = Some(Choice::Given(source));
        self
    }

    /// This identity ([`ManagedIdentityId::System`] by default).
    pub fn identity(mut self, identity: ManagedIdentityId) -> Self {
        self.identity = identity;
        self
    }

    /// The system-assigned identity (the default).
    pub fn system_assigned(self) -> Self {
        self.identity(ManagedIdentityId::System)
    }

    /// The user-assigned identity with this client (application) id.
    pub fn client_id(self, id: impl Into<String>) -> Self {
        self.identity(ManagedIdentityId::ClientId(id.into()))
    }

    /// The user-assigned identity with this object (principal) id.
    pub fn object_id(self, id: impl Into<String>) -> Self {
        self.identity(ManagedIdentityId::ObjectId(id.into()))
    }

    /// The user-assigned identity with this Azure resource id
    /// (`/subscriptions/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/…`).
    pub fn resource_id(self, id: impl Into<String>) -> Self {
        self.identity(ManagedIdentityId::ResourceId(id.into()))
    }

    /// How requests are retried ([`RetryPolicy::imds`] or [`RetryPolicy::app_service`] by
    /// default, by source).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// How long a request waits for its answer once the endpoint is known to be there
    /// (default 30 seconds); the retry policy's deadline bounds the whole.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether the instance metadata endpoint is probed before the first token request (on
    /// by default, off when `AZURE_POD_IDENTITY_AUTHORITY_HOST` named the endpoint, as in
    /// azure-identity). App Service is never probed: its variables say it is there.
    pub fn probe(mut self, probe: bool) -> Self {
        self.probe = Some(probe);
        self
    }

    /// How long the probe waits for any answer (default 1 second).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = Some(timeout);
        self
    }

    /// Sends the requests with your HTTP client instead of the grant's own. Build it with
    /// `.no_proxy()` and `redirect(reqwest::redirect::Policy::none())`: a managed identity
    /// endpoint is on the host, and a proxy would see (and could answer for) the token
    /// requests. The grant's own client does exactly that, with a 2-second connect timeout.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The grant.
    ///
    /// # Errors
    ///
    /// [`ConfigError`], naming the setting (or the environment variable): an endpoint that
    /// is not a usable URL (credentials, a query, plain `http` off this host and its
    /// network), an App Service header an HTTP header cannot carry, an environment this
    /// crate does not support (Service Fabric, Azure Arc), a client or object id that is
    /// not a GUID, a resource id that is not a user-assigned identity's; the HTTP client
    /// could not be built.
    pub fn build(self) -> Result<ManagedIdentity, ConfigError> {
        let (source, detected_probe) = match self.source {
            None => (ManagedIdentitySource::imds(), true),
            Some(Choice::Given(source)) => {
                check_endpoint(source.endpoint(), "managed identity endpoint")?;
                (source, true)
            }
            Some(Choice::Imds(url)) => (
                ManagedIdentitySource::Imds {
                    endpoint: endpoint_url(&url, "IMDS endpoint")?,
                },
                true,
            ),
            Some(Choice::AppService(endpoint, header)) => (
                ManagedIdentitySource::AppService {
                    endpoint: endpoint_url(&endpoint, "App Service identity endpoint")?,
                    header,
                },
                false,
            ),
            Some(Choice::Detected(detected)) => {
                let detected = detected?;
                (detected.source, detected.probe)
            }
        };
        let identity = self.identity.trimmed();
        identity.check(match identity {
            ManagedIdentityId::ObjectId(_) => "managed identity object id",
            ManagedIdentityId::ResourceId(_) => "managed identity resource id",
            _ => "managed identity client id",
        })?;
        let (token_url, header, api_version, spelling, policy) = match &source {
            ManagedIdentitySource::AppService { endpoint, header } => (
                endpoint.clone(),
                (
                    HeaderName::from_static(APP_SERVICE_HEADER),
                    header_value(header, "App Service identity header")?,
                ),
                APP_SERVICE_API_VERSION,
                Spelling::AppService,
                RetryPolicy::app_service(),
            ),
            ManagedIdentitySource::Imds { endpoint } => {
                let mut url = endpoint.clone();
                let path = format!("{}{IMDS_TOKEN_PATH}", endpoint.path().trim_end_matches('/'));
                url.set_path(&path);
                (
                    url,
                    (
                        HeaderName::from_static("metadata"),
                        HeaderValue::from_static("true"),
                    ),
                    IMDS_API_VERSION,
                    Spelling::Imds,
                    RetryPolicy::imds(),
                )
            }
        };
        let http = match self.http {
            Some(http) => http,
            None => http_client()?,
        };
        let client = TokenEndpointClient::builder()
            .http_client(http.clone())
            .timeout(self.timeout.unwrap_or(REQUEST_TIMEOUT))
            .build();
        let probe =
            (spelling == Spelling::Imds && self.probe.unwrap_or(detected_probe)).then(|| {
                TokenEndpointClient::builder()
                    .http_client(http)
                    .timeout(self.probe_timeout.unwrap_or(PROBE_TIMEOUT))
                    .build()
            });
        Ok(ManagedIdentity::from_inner(Inner {
            source,
            identity,
            token_url,
            header,
            api_version,
            spelling,
            client,
            probe,
            retry: self.retry.unwrap_or(policy),
            answered: AtomicBool::new(false),
        }))
    }
}

/// The grant's HTTP client: never a proxy (not even the system's: the endpoints are on the
/// host, and IMDS refuses requests that went through one), no redirects, a short connect
/// timeout, d365's user agent.
fn http_client() -> Result<reqwest::Client, ConfigError> {
    d365_auth_core::grant::http_client_builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("d365/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| ConfigError::Invalid {
            setting: "HTTP client",
            problem: format!("the managed identity's HTTP client could not be built: {error}"),
            fix: "pass your own reqwest::Client (without a proxy) with .http_client".to_owned(),
        })
}

impl fmt::Debug for ManagedIdentityBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            None => "imds (default)".to_owned(),
            Some(Choice::Given(source)) => format!("{source:?}"),
            Some(Choice::Imds(url)) => format!("Imds {{ endpoint: {:?} }}", shown_text_url(url)),
            Some(Choice::AppService(endpoint, _)) => format!(
                "AppService {{ endpoint: {:?}, header: \"[redacted]\" }}",
                shown_text_url(endpoint)
            ),
            Some(Choice::Detected(Ok(detected))) => format!("{:?}", detected.source),
            Some(Choice::Detected(Err(error))) => format!("invalid environment ({error})"),
        };
        f.debug_struct("ManagedIdentityBuilder")
            .field("source", &source)
            .field("identity", &self.identity)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("probe", &self.probe)
            .field("probe_timeout", &self.probe_timeout)
            .finish_non_exhaustive()
    }
}
