//! [`ManagedIdentity`]: a managed identity as a [`TokenProvider`] — one source, one
//! identity, one HTTP client that never uses a proxy, and whether the endpoint has answered
//! yet.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use d365_auth_core::grant::TokenEndpointClient;
use d365_auth_core::{AccessToken, AuthError, Grant, TokenProvider, TokenRequest, async_trait};
use http::{HeaderName, HeaderValue};
use url::Url;

use crate::builder::ManagedIdentityBuilder;
use crate::fetch;
use crate::identity::{ManagedIdentityId, Spelling};
use crate::retry::RetryPolicy;
use crate::source::ManagedIdentitySource;

/// The grant's name: not a `grant_type` (nothing is posted to Entra ID), but what logs and
/// comparisons call it.
pub(crate) const GRANT: &str = "managed_identity";

/// Tokens for a program running in Azure, from the managed identity of the VM, scale set,
/// AKS node pool, App Service or Functions app it runs on: no secret to keep, rotate or
/// leak.
///
/// [`request_token`](TokenProvider::request_token) asks the identity endpoint of the host
/// ([`ManagedIdentitySource`]) for a token for the organization (its v1 `resource`,
/// `https://contoso.crm.dynamics.com/`):
///
/// - **IMDS** (VMs, scale sets, AKS): `GET {host}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
///   with `Metadata: true`. Before the first request the endpoint is probed once, with a
///   1-second timeout: an address where nothing answers fails at once with
///   [`ErrorKind::CredentialUnavailable`](d365_auth_core::ErrorKind::CredentialUnavailable)
///   instead of waiting for a timeout. `404`, `410`, `429` and `5xx` answers are retried
///   with back-off ([`RetryPolicy`]); `410` (IMDS is updating) for at least 70 seconds.
/// - **App Service / Functions**: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…`
///   with `X-IDENTITY-HEADER`; `429` and `5xx` are retried a few times.
///
/// A user-assigned identity is named by [`ManagedIdentityId`]. An endpoint that never
/// answers, or a `400` saying the identity is not assigned to the resource, is
/// [`AuthError::Unavailable`]: a chain of credentials goes on to the next one.
///
/// Requests never go through a proxy (the endpoints are on the host) and never follow a
/// redirect. The tokens are app-only: Dataverse sees the identity's application user.
/// Cloning is cheap; clones share the HTTP client and what the probe learnt. `Debug`
/// never shows the App Service header.
///
/// # Examples
///
/// ```no_run
/// use d365_auth_core::{TokenCache, TokenRequest};
/// use d365_auth_managed_identity::ManagedIdentity;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let grant = ManagedIdentity::builder().from_environment().build()?;
/// let cache = TokenCache::new(grant);
/// let token = cache.get(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ManagedIdentity {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) source: ManagedIdentitySource,
    pub(crate) identity: ManagedIdentityId,
    /// The token endpoint, without the query each request adds.
    pub(crate) token_url: Url,
    /// `Metadata: true`, or `X-IDENTITY-HEADER` marked sensitive.
    pub(crate) header: (HeaderName, HeaderValue),
    pub(crate) api_version: &'static str,
    pub(crate) spelling: Spelling,
    /// Requests after the probe, with the normal timeout.
    pub(crate) client: TokenEndpointClient,
    /// The probe's client (short timeout), for IMDS unless the probe is off.
    pub(crate) probe: Option<TokenEndpointClient>,
    pub(crate) retry: RetryPolicy,
    /// Whether the endpoint has answered anything yet: until it has, a request that gets no
    /// answer means there is no managed identity here.
    pub(crate) answered: AtomicBool,
}

impl Inner {
    /// The URL of a token request for `request`: the api-version, the v1 resource, and the
    /// identity's parameter unless it is the system-assigned one.
    pub(crate) fn url_for(&self, request: &TokenRequest) -> Url {
        let mut url = self.token_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("api-version", self.api_version);
            query.append_pair("resource", &request.resource().v1_resource());
            if let Some((name, value)) = self.identity.parameter(self.spelling) {
                query.append_pair(name, value);
            }
        }
        url
    }

    /// Whether the endpoint has answered.
    pub(crate) fn has_answered(&self) -> bool {
        self.answered.load(Ordering::Acquire)
    }

    /// Remembers that the endpoint answered.
    pub(crate) fn mark_answered(&self) {
        self.answered.store(true, Ordering::Release);
    }

    /// The endpoint, as errors name it.
    pub(crate) fn endpoint_name(&self) -> String {
        match self.source {
            ManagedIdentitySource::AppService { .. } => {
                format!("the App Service identity endpoint {}", self.token_url)
            }
            ManagedIdentitySource::Imds { .. } => {
                format!("the instance metadata endpoint {}", self.token_url)
            }
        }
    }
}

impl ManagedIdentity {
    /// Configures a managed identity: [`ManagedIdentityBuilder`].
    pub fn builder() -> ManagedIdentityBuilder {
        ManagedIdentityBuilder::default()
    }

    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Where tokens come from.
    #[must_use]
    pub fn source(&self) -> &ManagedIdentitySource {
        &self.inner.source
    }

    /// Which identity tokens are for.
    #[must_use]
    pub fn identity(&self) -> &ManagedIdentityId {
        &self.inner.identity
    }

    /// The token endpoint requests go to (each adds its query): App Service's endpoint, or
    /// `{host}/metadata/identity/oauth2/token`.
    #[must_use]
    pub fn token_endpoint(&self) -> &Url {
        &self.inner.token_url
    }

    /// Whether the IMDS endpoint is probed before the first token request (with its
    /// timeout), which is the case for IMDS unless turned off.
    #[must_use]
    pub fn probe_timeout(&self) -> Option<Duration> {
        self.inner.probe.as_ref().map(TokenEndpointClient::timeout)
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }
}

#[async_trait]
impl TokenProvider for ManagedIdentity {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        fetch::token(&self.inner, request).await
    }

    fn grant(&self) -> Grant {
        Grant::new(GRANT)
    }

    /// `managed_identity|{imds or app-service}|{endpoint}|{identity}`: tokens of another
    /// endpoint or identity are never served; the App Service header, a rotating secret
    /// that says nothing about whose tokens these are, is not in it.
    fn cache_key(&self) -> String {
        format!(
            "{GRANT}|{}|{}|{}",
            self.inner.source.kind(),
            self.inner.token_url,
            self.inner.identity
        )
    }
}

impl fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentity")
            .field("source", &self.inner.source)
            .field("token_endpoint", &self.inner.token_url.as_str())
            .field("identity", &self.inner.identity)
            .field("probe_timeout", &self.probe_timeout())
            .field("timeout", &self.inner.client.timeout())
            .field("retry", &self.inner.retry)
            .field("answered", &self.inner.has_answered())
            .finish_non_exhaustive()
    }
}
