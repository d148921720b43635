//! [`Client`] and its builder: the organization URL, the token provider behind a
//! [`TokenCache`], the HTTP client, and the retry settings. Cheap to clone; clones share
//! the cache and the connection pool.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use d365_auth_core::ConnectionAuthenticator;
use d365_auth_core::store::TokenStore;
use d365_auth_core::{Resource, TokenCache, TokenProvider, TokenRequest};
use url::Url;

use crate::error::WebApiError;
use crate::origin::{self, OrgUrl};

const DEFAULT_API_VERSION: &str = "v9.2";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The .NET ServiceClient's defaults: 10 retries, 5 s base pause.
const DEFAULT_MAX_RETRIES: u32 = 10;
const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(5);
const DEFAULT_RETRY_CAP: Duration = Duration::from_secs(60);
/// Long enough for Dataverse's longest ordinary `Retry-After` waits and a slow request, short
/// enough that nothing hangs for good.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);
/// How long an organization that cannot be connected to is retried: a wrong host name, a
/// firewall or an outage must fail fast, not after the whole retry budget.
const DEFAULT_UNREACHABLE_AFTER: Duration = Duration::from_secs(20);
/// Pages `query_all` and `fetch_xml_all` follow at most: 50 million rows at 5,000 a page.
pub(crate) const DEFAULT_MAX_PAGES: u32 = 10_000;
/// The largest answer read: far above a 5,000-row page of wide records.
const DEFAULT_MAX_RESPONSE_SIZE: usize = 256 * 1024 * 1024;
/// Parallelism before the first `x-ms-dop-hint` arrives.
const DEFAULT_PARALLELISM: usize = 4;

/// A Dataverse Web API client.
///
/// Every request carries `Accept`, `OData-MaxVersion`, `OData-Version`, a fresh
/// `x-ms-client-request-id` and a token from the cache; throttling and transient failures
/// are retried as [`RetrySettings`] says; a 401 invalidates the token and is retried once.
///
/// # Examples
///
/// ```no_run
/// # async fn run(provider: impl d365_auth_core::TokenProvider + 'static) -> Result<(), Box<dyn std::error::Error>> {
/// use d365_webapi::Client;
///
/// let client = Client::builder("https://contoso.crm.dynamics.com", provider).build()?;
/// let me = client.who_am_i().await?;
/// println!("{}", me.user_id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    /// `{org}/api/data/v9.2/`, ending in a slash so relative URLs join under it.
    pub(crate) api_root: Url,
    pub(crate) org: Resource,
    pub(crate) tokens: TokenCache<Arc<dyn TokenProvider>>,
    pub(crate) token_request: TokenRequest,
    /// Set for a credential proven on the connection (Windows sign-in): it sends every
    /// request, and `tokens` is never asked.
    pub(crate) connection_auth: Option<Arc<dyn ConnectionAuthenticator>>,
    pub(crate) retry: RetrySettings,
    pub(crate) timeout: Duration,
    pub(crate) dop_hint: AtomicUsize,
    pub(crate) max_parallelism: usize,
    pub(crate) max_pages: u32,
    pub(crate) max_response_size: usize,
    /// The Web API version (`v9.2`), and whether the caller chose it.
    pub(crate) api_version: String,
    pub(crate) version_chosen: bool,
    /// Table definitions by entity set, for bulk operations' `@odata.type`.
    pub(crate) tables: crate::metadata::TableCache,
}

/// `v9.2` as `(9, 2)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.strip_prefix('v')?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |minor| minor.parse().ok())?;
    Some((major, minor))
}

/// Whether `origin` is Dataverse online, where the Web API is `v9.2`.
fn is_online_host(origin: &str) -> bool {
    let host = origin.split("://").nth(1).unwrap_or(origin);
    let host = host.split(':').next().unwrap_or(host);
    [
        ".dynamics.com",
        ".microsoftdynamics.us",
        ".appsplatform.us",
        ".dynamics.cn",
    ]
    .iter()
    .any(|suffix| host.ends_with(suffix))
}

/// How failed requests are retried, and how long one operation may take in all.
///
/// Retried whatever the method, because Dataverse did not apply them: `429` and the
/// service protection codes (hex or decimal), `503`, and connections that could not be
/// opened. Retried only when a replay is harmless (reads, and creates with a client-chosen
/// id, where a replay is detected): `502`, `504`, timeouts and broken connections. Never
/// retried: a request that could not be built (a bad header value or URL).
/// The wait is `Retry-After` when Dataverse gives one (never less), else
/// `base + 2^attempt` seconds with ±20 % jitter, capped.
///
/// Every operation is bounded: it ends by its [`deadline`](Self::deadline) whatever
/// happens (token, attempts, waits); a `Retry-After` that would end past the deadline fails
/// at once with [`WebApiError::WaitTooLong`]; an organization that cannot be connected to
/// is given up after [`unreachable_after`](Self::unreachable_after).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use d365_webapi::RetrySettings;
///
/// let settings = RetrySettings::default()
///     .max_retries(3)
///     .deadline(Duration::from_secs(30));
/// assert_eq!(settings.max_retries, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrySettings {
    /// Retries after the first attempt (default 10, as the .NET ServiceClient).
    pub max_retries: u32,
    /// The base pause (default 5 s, as the .NET ServiceClient).
    pub base_delay: Duration,
    /// The longest pause without a `Retry-After` (default 60 s).
    pub max_delay: Duration,
    /// The most one operation may take, every attempt and wait included (default 5 min).
    pub deadline: Duration,
    /// How long connections that cannot be opened (refused, unresolvable, timed out while
    /// connecting) are retried before the operation fails (default 20 s).
    pub unreachable_after: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            base_delay: DEFAULT_RETRY_BASE,
            max_delay: DEFAULT_RETRY_CAP,
            deadline: DEFAULT_DEADLINE,
            unreachable_after: DEFAULT_UNREACHABLE_AFTER,
        }
    }
}

impl RetrySettings {
    /// Retries after the first attempt (0 turns retries off).
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The base pause of the backoff, and the longest pause without a `Retry-After`.
    #[must_use]
    pub fn delays(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max.max(base);
        self
    }

    /// The most one operation may take, every attempt and wait included.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How long an organization that cannot be connected to is retried.
    #[must_use]
    pub fn unreachable_after(mut self, window: Duration) -> Self {
        self.unreachable_after = window;
        self
    }
}

impl Client {
    /// Configures a client for the organization at `org_url` (any common form:
    /// `https://contoso.crm.dynamics.com`, with `/api/data/v9.2/`, ...) using `provider`.
    pub fn builder(
        org_url: impl Into<String>,
        provider: impl TokenProvider + 'static,
    ) -> ClientBuilder {
        Self::builder_shared(org_url, Arc::new(provider))
    }

    /// Configures a client whose requests `authenticator` proves on the connection
    /// (Windows sign-in to an on-premises server) instead of with a bearer token: it sends
    /// each request itself. [`Client::token_cache`] then holds no token and refuses to get
    /// one.
    pub fn builder_with_authenticator(
        org_url: impl Into<String>,
        authenticator: Arc<dyn ConnectionAuthenticator>,
    ) -> ClientBuilder {
        let no_token = Arc::new(NoBearerToken {
            scheme: authenticator.scheme(),
            identity: authenticator.identity(),
        });
        let mut builder = Self::builder_shared(org_url, no_token);
        builder.connection_auth = Some(authenticator);
        builder
    }

    /// As [`Client::builder`], for a provider already behind an `Arc`.
    pub fn builder_shared(
        org_url: impl Into<String>,
        provider: Arc<dyn TokenProvider>,
    ) -> ClientBuilder {
        ClientBuilder {
            org_url: org_url.into(),
            provider,
            connection_auth: None,
            api_version: DEFAULT_API_VERSION.to_owned(),
            version_chosen: false,
            timeout: DEFAULT_TIMEOUT,
            user_agent: None,
            retry: RetrySettings::default(),
            http: None,
            max_parallelism: 16,
            token_store: None,
            max_pages: DEFAULT_MAX_PAGES,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
        }
    }

    /// The organization's canonical URL.
    #[must_use]
    pub fn org(&self) -> &Resource {
        &self.inner.org
    }

    /// The connection authenticator this client signs in with (Windows sign-in), if it
    /// has one instead of a token provider.
    #[must_use]
    pub fn connection_authenticator(&self) -> Option<&Arc<dyn ConnectionAuthenticator>> {
        self.inner.connection_auth.as_ref()
    }

    /// The Web API version of [`api_root`](Self::api_root) (`v9.2`).
    #[must_use]
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    /// The API version as numbers, `(9, 2)`.
    fn version_numbers(&self) -> (u32, u32) {
        parse_version(&self.inner.api_version).unwrap_or((9, 2))
    }

    /// Fails with [`WebApiError::VersionTooOld`] when this client speaks a Web API version
    /// older than `(major, minor)`, which `feature` needs.
    pub(crate) fn require_version(
        &self,
        (major, minor): (u32, u32),
        feature: &'static str,
    ) -> Result<(), WebApiError> {
        if self.version_numbers() >= (major, minor) {
            Ok(())
        } else {
            Err(WebApiError::VersionTooOld {
                feature,
                needs: format!("v{major}.{minor}"),
                speaks: self.inner.api_version.clone(),
            })
        }
    }

    /// This client, speaking the Web API version the server speaks: unchanged online (where
    /// it is `v9.2`), on a loopback host without an organization path, or when [`ClientBuilder::api_version`] chose one; on an
    /// on-premises server, `RetrieveVersion()` is asked at `v9.0`, then at `v8.0` (every
    /// 8.x server answers there), and the client moves to the newest version the server's
    /// own (`9.1.0.14134` → `v9.1`, `8.2.x` → `v8.2`).
    ///
    /// # Errors
    ///
    /// [`WebApiError`] when neither version answers, or the first answer is an error
    /// other than "not found" (a refused token, say).
    pub async fn discover_api_version(self) -> Result<Self, WebApiError> {
        let online = is_online_host(self.inner.org.as_str());
        // Online is v9.2; so is a loopback organization without a path (the emulator's
        // online mode). A server with an organization path, or any other host, is asked.
        let plain_loopback = self.inner.org.is_loopback() && self.inner.org.path().is_empty();
        if self.inner.version_chosen || online || plain_loopback {
            return Ok(self);
        }
        let mut last = None;
        for probe in ["v9.0", "v8.0"] {
            let candidate = self.at_version(probe)?;
            match candidate.retrieve_version().await {
                Ok(version) => {
                    let (major, minor) =
                        parse_version(&format!("v{version}")).ok_or_else(|| {
                            WebApiError::InvalidInput(format!(
                                "the server's version `{version}` is not a version number"
                            ))
                        })?;
                    // The newest minor version the Web API has for the server's major one.
                    let chosen = format!("v{major}.{}", minor.min(2));
                    tracing::debug!(server = %version, api = %chosen, "Web API version discovered");
                    return candidate.at_version(&chosen);
                }
                Err(error) if error.kind() == crate::ErrorKind::NotFound => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last
            .unwrap_or_else(|| WebApiError::InvalidInput("no Web API version answered".to_owned())))
    }

    /// `RetrieveVersion()`: the server's version, such as `9.1.0.14134`.
    ///
    /// # Errors
    ///
    /// [`WebApiError`].
    pub async fn retrieve_version(&self) -> Result<String, WebApiError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "Version")]
            version: String,
        }
        let answer: Answer = serde_json::from_value(self.function("RetrieveVersion", &[]).await?)
            .map_err(|error| {
            WebApiError::Decode(format!(
                "RetrieveVersion answered without a Version ({error})"
            ))
        })?;
        Ok(answer.version)
    }

    /// `options`' headers on `request`, once the server's version allows them (a record
    /// returned from a write needs Web API 8.2).
    pub(crate) fn apply_options(
        &self,
        options: &crate::options::RequestOptions,
        request: crate::pipeline::Prepared,
        extra_prefer: &[String],
    ) -> Result<crate::pipeline::Prepared, WebApiError> {
        if options.returns_representation() {
            self.require_version(
                (8, 2),
                "returning the record from a write (Prefer: return=representation)",
            )?;
        }
        options.apply(request, extra_prefer)
    }

    /// A client like this one at another API version, sharing its HTTP client and tokens.
    fn at_version(&self, version: &str) -> Result<Self, WebApiError> {
        let inner = &*self.inner;
        let api_root = Url::parse(&format!("{}/api/data/{version}/", inner.org))
            .map_err(|error| WebApiError::InvalidInput(error.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http: inner.http.clone(),
                api_root,
                org: inner.org.clone(),
                tokens: inner.tokens.clone(),
                token_request: inner.token_request.clone(),
                connection_auth: inner.connection_auth.clone(),
                retry: inner.retry,
                timeout: inner.timeout,
                dop_hint: AtomicUsize::new(
                    inner.dop_hint.load(std::sync::atomic::Ordering::Relaxed),
                ),
                max_parallelism: inner.max_parallelism,
                max_pages: inner.max_pages,
                max_response_size: inner.max_response_size,
                api_version: version.to_owned(),
                version_chosen: true,
                tables: crate::metadata::TableCache::default(),
            }),
        })
    }

    /// The Web API root, such as `https://contoso.crm.dynamics.com/api/data/v9.2/`.
    #[must_use]
    pub fn api_root(&self) -> &Url {
        &self.inner.api_root
    }

    /// The token cache in front of the provider (for `invalidate`, or to share it).
    #[must_use]
    pub fn token_cache(&self) -> &TokenCache<Arc<dyn TokenProvider>> {
        &self.inner.tokens
    }

    /// How many requests to run at once: Dataverse's latest `x-ms-dop-hint`, capped by
    /// the builder's maximum.
    #[must_use]
    pub fn parallelism(&self) -> usize {
        self.inner
            .dop_hint
            .load(Ordering::Relaxed)
            .clamp(1, self.inner.max_parallelism)
    }

    /// Runs `work` on every item, at most [`Client::parallelism`] at a time (Dataverse's
    /// `x-ms-dop-hint`, read again before each item starts), and returns the outcomes in the
    /// items' order.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: d365_webapi::Client) {
    /// use d365_webapi::RequestOptions;
    /// use serde_json::json;
    ///
    /// let names = ["Contoso", "Fabrikam", "Northwind"];
    /// let created = client
    ///     .run_parallel(names, |client, name| async move {
    ///         client.create("accounts", &json!({ "name": name }), &RequestOptions::new()).await
    ///     })
    ///     .await;
    /// # let _ = created;
    /// # }
    /// ```
    pub async fn run_parallel<I, F, Fut, T>(&self, items: I, work: F) -> Vec<T>
    where
        I: IntoIterator,
        F: Fn(Client, I::Item) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        use futures_util::StreamExt as _;
        let mut pending = futures_util::stream::FuturesUnordered::new();
        let mut outcomes: Vec<Option<T>> = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            outcomes.push(None);
            while pending.len() >= self.parallelism() {
                if let Some((done, outcome)) = pending.next().await {
                    outcomes[done] = Some(outcome);
                }
            }
            let future = work(self.clone(), item);
            pending.push(async move { (index, future.await) });
        }
        while let Some((done, outcome)) = pending.next().await {
            outcomes[done] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.expect("every item ran"))
            .collect()
    }

    /// Resolves `reference` (an entity set path, a path from the organization's root, or
    /// an absolute URL such as an `@odata.nextLink`) against the API root, refusing any
    /// URL that is not on the organization: see [`crate::origin`].
    pub(crate) fn url(&self, reference: &str) -> Result<OrgUrl, WebApiError> {
        origin::resolve(&self.inner.api_root, reference)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_root", &self.inner.api_root.as_str())
            .field("retry", &self.inner.retry)
            .field("timeout", &self.inner.timeout)
            .field("tokens", &self.inner.tokens)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
#[must_use]
pub struct ClientBuilder {
    org_url: String,
    provider: Arc<dyn TokenProvider>,
    connection_auth: Option<Arc<dyn ConnectionAuthenticator>>,
    api_version: String,
    version_chosen: bool,
    timeout: Duration,
    user_agent: Option<String>,
    retry: RetrySettings,
    http: Option<reqwest::Client>,
    max_parallelism: usize,
    token_store: Option<Arc<dyn TokenStore>>,
    max_pages: u32,
    max_response_size: usize,
}

impl ClientBuilder {
    /// Keep tokens in `store` too (a file for a command line, Redis for a fleet), so they
    /// outlive the process and are shared.
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.token_store = Some(store);
        self
    }

    /// The Web API version: `v9.2` unless set, or the one
    /// [`Client::discover_api_version`] finds on an on-premises server (`v8.0` … `v9.1`).
    /// Setting it turns discovery off.
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self.version_chosen = true;
        self
    }

    /// The timeout of each attempt (120 s unless set); the whole operation is bounded by
    /// [`RetrySettings::deadline`] too.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` (`d365-webapi/{version}` unless set). Ignored when you give your own
    /// HTTP client: set it there.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Retries after the first attempt (10 unless set; 0 turns retries off).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    /// All retry settings at once.
    pub fn retry(mut self, retry: RetrySettings) -> Self {
        self.retry = retry;
        self
    }

    /// Your HTTP client (proxy, TLS roots, pool settings).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The most pages [`Client::query_all`] and [`Client::fetch_xml_all`] follow (10,000
    /// unless set: 50 million rows at 5,000 a page). Reaching it is an error,
    /// [`WebApiError::TooManyPages`], so a server that pages forever cannot keep a caller
    /// busy forever.
    pub fn max_pages(mut self, max: u32) -> Self {
        self.max_pages = max.max(1);
        self
    }

    /// The largest answer read, in bytes (256 MiB unless set); a larger one fails with
    /// [`WebApiError::ResponseTooLarge`] instead of filling memory.
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = bytes.max(1);
        self
    }

    /// The most requests [`Client::parallelism`] allows at once, whatever Dataverse hints (16).
    pub fn max_parallelism(mut self, max: usize) -> Self {
        self.max_parallelism = max.max(1);
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    ///
    /// [`WebApiError::InvalidInput`] for an organization URL that is not valid (plain http
    /// to a host that is not loopback, a query string, ...) or an API version that is not
    /// of the form `v9.2`.
    pub fn build(self) -> Result<Client, WebApiError> {
        let org = Resource::parse(&self.org_url)
            .map_err(|error| WebApiError::InvalidInput(error.to_string()))?;
        let version_ok = self.api_version.strip_prefix('v').is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .split('.')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        });
        if !version_ok {
            return Err(WebApiError::InvalidInput(format!(
                "the API version `{}` is not of the form v9.2",
                self.api_version
            )));
        }
        let api_root = Url::parse(&format!("{}/api/data/{}/", org, self.api_version))
            .map_err(|error| WebApiError::InvalidInput(error.to_string()))?;
        let http = match self.http {
            Some(http) => http,
            None => d365_auth_core::grant::http_client_builder()
                .user_agent(self.user_agent.unwrap_or_else(|| {
                    concat!("d365-webapi/", env!("CARGO_PKG_VERSION")).to_owned()
                }))
                .connect_timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(60))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|error| {
                    WebApiError::InvalidInput(format!(
                        "the HTTP client could not be built: {error}"
                    ))
                })?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                token_request: TokenRequest::new(org.clone()),
                connection_auth: self.connection_auth,
                tokens: match self.token_store {
                    Some(store) => TokenCache::builder(self.provider).store(store).build(),
                    None => TokenCache::new(self.provider),
                },
                api_root,
                org,
                retry: self.retry,
                timeout: self.timeout,
                dop_hint: AtomicUsize::new(DEFAULT_PARALLELISM),
                max_parallelism: self.max_parallelism,
                api_version: self.api_version.clone(),
                version_chosen: self.version_chosen,
                max_pages: self.max_pages,
                max_response_size: self.max_response_size,
                tables: crate::metadata::TableCache::default(),
            }),
        })
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("org_url", &self.org_url)
            .field("provider", &self.provider)
            .field("api_version", &self.api_version)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// The provider behind a client whose requests a connection authenticator proves: there
/// is no bearer token, and asking for one says so.
#[derive(Debug)]
struct NoBearerToken {
    scheme: &'static str,
    identity: String,
}

#[d365_auth_core::async_trait]
impl TokenProvider for NoBearerToken {
    async fn request_token(
        &self,
        _request: &TokenRequest,
    ) -> Result<d365_auth_core::AccessToken, d365_auth_core::AuthError> {
        Err(d365_auth_core::AuthError::unavailable(
            format!("a bearer token for {}", self.identity),
            format!(
                "this connection signs in with {} on each HTTP connection and has no token to give",
                self.scheme
            ),
            "call the Web API through the client; for a token, connect with OAuth (AD FS) instead",
        ))
    }

    fn grant(&self) -> d365_auth_core::Grant {
        d365_auth_core::Grant::new(self.scheme)
    }

    fn cache_key(&self) -> String {
        format!("{}|{}", self.scheme, self.identity)
    }
}
