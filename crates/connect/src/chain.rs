//! The default credential chain (`Grant=default`, `--grant default`): the credentials a
//! program finds where it runs, tried in azure-identity's order — the environment
//! (a secret, a certificate, a user), workload identity (a federated token file), a
//! managed identity, the Azure CLI, the remembered `d365 login` — stopping at the first
//! that can answer. A credential that does not exist here ([`AuthError::is_unavailable`])
//! passes to the next; any other failure stops the chain, since trying another identity
//! would hide it. When none answers, one error says why each could not. The chain then
//! keeps to the one that answered.

use std::fmt;
use std::sync::{Arc, Mutex};

use d365_auth_core::grant::{GrantConfig, GrantRegistration};
use d365_auth_core::store::TokenStore;
use d365_auth_core::{
    AccessToken, AuthError, ConfigError, Grant, TokenCache, TokenProvider, TokenRequest,
    async_trait,
};
use tokio::sync::OnceCell;

use crate::build::ConnectOptions;
use crate::credential::Credential;
use crate::environment::EnvironmentSettings;
use crate::registry::Registry;

/// The environment variables that make workload identity rather than the environment
/// credential: azure-identity's `WorkloadIdentityCredential` reads these alone.
const WORKLOAD_VARIABLES: &[&str] = &[
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "D365_URL",
];

/// The grants of the registry the chain asks after the environment, in order, when the
/// build enables them.
const CHAIN_GRANTS: &[(&str, &str)] = &[
    ("managed identity", "managed-identity"),
    ("the Azure CLI", "azure-cli"),
];

/// A remembered sign-in to add at the end of the chain: a person's grant (the browser or
/// device code sign-in of `d365 login`) and the store that keeps its tokens. It answers
/// only with what the store holds — renewing with the refresh token — and is unavailable
/// when nobody signed in, so the chain never opens a sign-in of its own.
///
/// Put one in the configuration's extensions (`ConnectOptions::extension`) to have
/// `Grant=default` end with it.
#[derive(Clone)]
pub struct RememberedSignIn {
    cache: Arc<TokenCache<Arc<dyn TokenProvider>>>,
}

impl RememberedSignIn {
    /// The sign-in `provider` made earlier, whose tokens `store` keeps.
    #[must_use]
    pub fn new(provider: Arc<dyn TokenProvider>, store: Arc<dyn TokenStore>) -> Self {
        Self {
            cache: Arc::new(TokenCache::builder(provider).store(store).build()),
        }
    }
}

impl fmt::Debug for RememberedSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RememberedSignIn")
            .field("grant", &self.cache.provider().grant())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenProvider for RememberedSignIn {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let stored = self.cache.stored(request).await.map_err(|error| {
            AuthError::unavailable(
                "the remembered d365 login",
                format!("its token store cannot be read ({error})"),
                "run `d365 login` again",
            )
        })?;
        if stored.is_none() {
            return Err(AuthError::unavailable(
                "the remembered d365 login",
                format!("nobody signed in to {} with d365 login", request.resource()),
                "run `d365 login` for this organization",
            ));
        }
        self.cache.get(request).await
    }

    fn grant(&self) -> Grant {
        self.cache.provider().grant()
    }

    fn cache_key(&self) -> String {
        format!("remembered|{}", self.cache.provider().cache_key())
    }
}

/// One link of the chain: its name for people, and how it becomes a provider (lazily: the
/// environment's may need to discover the authority, which takes a request).
struct Link {
    name: &'static str,
    source: Source,
    provider: OnceCell<Result<Arc<dyn TokenProvider>, AuthError>>,
}

enum Source {
    /// A credential from configuration, built with the chain's options when first asked.
    Credential(Box<Credential>),
    /// A provider ready to ask.
    Provider(Arc<dyn TokenProvider>),
    /// Why this link cannot answer here, found while the chain was built.
    Unavailable(AuthError),
}

impl Link {
    async fn provider(
        &self,
        options: &ConnectOptions,
    ) -> Result<Arc<dyn TokenProvider>, AuthError> {
        self.provider
            .get_or_init(|| async {
                match &self.source {
                    Source::Provider(provider) => Ok(Arc::clone(provider)),
                    Source::Unavailable(error) => Err(error.clone()),
                    Source::Credential(credential) => {
                        credential.provider(options).await.map_err(|error| {
                            AuthError::unavailable(
                                self.name,
                                error.to_string(),
                                "fix its settings, or leave them unset",
                            )
                        })
                    }
                }
            })
            .await
            .clone()
    }
}

/// The default credential chain as a [`TokenProvider`]. Build it with
/// [`DefaultChain::new`], or from configuration with `Grant=default`.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use d365_auth_core::{TokenProvider, TokenRequest};
/// use d365_connect::{ConnectOptions, DefaultChain};
///
/// let chain = DefaultChain::new(&d365_auth_core::grant::GrantConfig::default(), &ConnectOptions::new());
/// let token = chain
///     .request_token(&TokenRequest::for_url("https://contoso.crm.dynamics.com")?)
///     .await?;
/// # let _ = token;
/// # Ok(()) }
/// ```
pub struct DefaultChain {
    links: Vec<Link>,
    options: ConnectOptions,
    /// The link that answered first, kept to.
    chosen: Mutex<Option<usize>>,
}

impl DefaultChain {
    /// The chain for `config` (its organization, tenant and client id, which the links
    /// that take them use) and the process environment, with the grants of this build.
    #[must_use]
    pub fn new(config: &GrantConfig, options: &ConnectOptions) -> Self {
        Self::with_variables(config, options, &Registry::enabled(), |name| {
            std::env::var(name).ok()
        })
    }

    /// As [`new`](Self::new), reading variables through `lookup` and the grants of
    /// `registry`.
    #[must_use]
    pub fn with_variables(
        config: &GrantConfig,
        options: &ConnectOptions,
        registry: &Registry,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let url = config
            .organization
            .as_ref()
            .map(|url| url.as_str().to_owned());
        let lookup = |name: &str| -> Option<String> {
            match name {
                "D365_URL" => url.clone().or_else(|| lookup(name)),
                // The chain is the grant: a named one would loop.
                crate::GRANT_VARIABLE => None,
                _ => lookup(name),
            }
        };
        let mut links = vec![
            environment_link(
                "the environment",
                &|name| {
                    (name != "AZURE_FEDERATED_TOKEN_FILE")
                        .then(|| lookup(name))
                        .flatten()
                },
                registry,
            ),
            environment_link(
                "workload identity",
                &|name| {
                    WORKLOAD_VARIABLES
                        .contains(&name)
                        .then(|| lookup(name))
                        .flatten()
                },
                registry,
            ),
        ];
        for (name, grant) in CHAIN_GRANTS {
            let Some(registration) = registry.get(grant) else {
                continue;
            };
            links.push(grant_link(name, registration, config, &lookup));
        }
        if let Some(remembered) = options.extensions.get::<RememberedSignIn>() {
            links.push(Link {
                name: "the remembered d365 login",
                source: Source::Provider(Arc::new(remembered.clone())),
                provider: OnceCell::new(),
            });
        }
        Self {
            links,
            options: options.clone(),
            chosen: Mutex::new(None),
        }
    }

    /// The names of the links, in the order they are asked.
    pub fn links(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.links.iter().map(|link| link.name)
    }

    fn chosen(&self) -> Option<usize> {
        *self
            .chosen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The environment credential read through `lookup`: unavailable when the variables
/// describe none.
fn environment_link(
    name: &'static str,
    lookup: &dyn Fn(&str) -> Option<String>,
    registry: &Registry,
) -> Link {
    let source = match EnvironmentSettings::from_variables_with(lookup, registry) {
        Ok(settings) => Source::Credential(Box::new(settings.into_credential())),
        Err(error) => Source::Unavailable(AuthError::unavailable(
            name,
            error.to_string(),
            "set its variables, or leave them unset",
        )),
    };
    Link {
        name,
        source,
        provider: OnceCell::new(),
    }
}

/// A registered grant asked with the chain's organization, tenant and client id, and the
/// variables of its own keys read through `lookup` (a managed identity's endpoint), so the
/// chain never reads the process environment behind its caller's back.
fn grant_link(
    name: &'static str,
    registration: &'static dyn GrantRegistration,
    config: &GrantConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Link {
    let mut own = config.clone();
    own.grant = Some(registration.name().to_owned());
    own.auth_type = None;
    for key in registration.keys() {
        let Some(value) = key
            .variable
            .and_then(lookup)
            .filter(|value| !value.trim().is_empty())
        else {
            continue;
        };
        if own.has(key.name) {
            continue;
        }
        if key.is_secret {
            own.set_secret(key.name, value.into());
        } else {
            own.set_text(key.name, value);
        }
    }
    let source = match Credential::from_config(own, &Registry::enabled()) {
        Ok(credential) => Source::Credential(Box::new(credential)),
        Err(error) => Source::Unavailable(AuthError::unavailable(
            name,
            error.to_string(),
            "fix its settings",
        )),
    };
    Link {
        name,
        source,
        provider: OnceCell::new(),
    }
}

#[async_trait]
impl TokenProvider for DefaultChain {
    /// Asks each link in turn (or the one that answered before).
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        if let Some(index) = self.chosen() {
            let provider = self.links[index].provider(&self.options).await?;
            return provider.request_token(request).await;
        }
        let mut reasons = Vec::new();
        for (index, link) in self.links.iter().enumerate() {
            let outcome = match link.provider(&self.options).await {
                Ok(provider) => provider.request_token(request).await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(token) => {
                    tracing::debug!(link = link.name, "the default chain answered");
                    *self
                        .chosen
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(index);
                    return Ok(token);
                }
                Err(error) if error.is_unavailable() => {
                    tracing::debug!(link = link.name, %error, "not available here");
                    reasons.push(format!("{}: {error}", link.name));
                }
                Err(error) => return Err(error),
            }
        }
        Err(AuthError::unavailable(
            "the default credential chain",
            format!("no credential answered ({})", reasons.join("; ")),
            "set the AZURE_* variables, run in Azure with a managed identity, sign in with `az login`, or with `d365 login`",
        ))
    }

    /// Renews through the link that answered.
    async fn renew_token(
        &self,
        request: &TokenRequest,
        previous: &AccessToken,
    ) -> Result<AccessToken, AuthError> {
        match self.chosen() {
            Some(index) => {
                let provider = self.links[index].provider(&self.options).await?;
                provider.renew_token(request, previous).await
            }
            None => self.request_token(request).await,
        }
    }

    fn grant(&self) -> Grant {
        Grant::new("default")
    }

    /// The chain's links, by name: the same chain in another process shares tokens, a
    /// chain with other links does not.
    fn cache_key(&self) -> String {
        let names: Vec<&str> = self.links().collect();
        format!("default|{}", names.join(","))
    }
}

impl fmt::Debug for DefaultChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultChain")
            .field("links", &self.links().collect::<Vec<_>>())
            .field("chosen", &self.chosen().map(|index| self.links[index].name))
            .finish()
    }
}

/// `Grant=default` as configuration knows it.
#[derive(Debug)]
pub(crate) struct DefaultChainRegistration;

/// The registration every registry lists.
pub(crate) static DEFAULT_CHAIN: DefaultChainRegistration = DefaultChainRegistration;

impl GrantRegistration for DefaultChainRegistration {
    fn name(&self) -> &'static str {
        "default"
    }

    fn description(&self) -> &'static str {
        "whatever credential the program finds where it runs: the environment, workload identity, a managed identity, the Azure CLI, the remembered d365 login, in that order"
    }

    fn accepts(&self, _config: &GrantConfig) -> bool {
        // Used only when named: which identity answers must be a choice.
        false
    }

    fn needs_authority(&self) -> bool {
        // Each link finds its own.
        false
    }

    fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError> {
        let mut options = ConnectOptions::new();
        if let Some(http) = &config.http {
            options = options.http_client(http.clone());
        }
        options.extensions = config.extensions.clone();
        Ok(Arc::new(DefaultChain::new(config, &options)))
    }
}
