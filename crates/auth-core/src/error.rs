//! The errors of auth-core and of every grant: configuration mistakes caught before a
//! request, refusals from the identity provider (with the AADSTS code, its meaning and
//! the usual fix), and transport failures, each a kind of its own.
//!
//! No message here ever contains a secret: inputs that may hold one are not echoed
//! ([`describe_input`]), and response bodies of successful token responses are never quoted.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use url::Url;

use crate::aadsts;

/// A boxed error source that can be shared by every caller of one failed request.
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A setting that cannot work, found before any request was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not an absolute URL.
    #[error(
        "the {what} is not a URL ({input}): {reason}; write it in full, starting with https://"
    )]
    NotAUrl {
        /// Which setting it was.
        what: &'static str,
        /// The input, or a note that it is not shown because it may hold a secret.
        input: String,
        /// The parser's reason.
        reason: String,
    },
    /// The URL has no host.
    #[error(
        "the {what} has no host (scheme `{scheme}`); write the URL in full, such as https://contoso.crm.dynamics.com"
    )]
    MissingHost {
        /// Which setting it was.
        what: &'static str,
        /// The scheme found.
        scheme: String,
    },
    /// Plain `http` for a host that is not loopback.
    #[error(
        "the {what} `{origin}` uses plain http; use https:// (plain http is accepted only for loopback hosts such as the d365 emulator)"
    )]
    InsecureHttp {
        /// Which setting it was.
        what: &'static str,
        /// The URL's origin.
        origin: String,
    },
    /// A scheme other than `https` or `http`.
    #[error("the {what} uses the scheme `{scheme}`; use https://")]
    UnsupportedScheme {
        /// Which setting it was.
        what: &'static str,
        /// The scheme found.
        scheme: String,
    },
    /// A query string or a fragment, which no endpoint here takes.
    #[error(
        "the {what} `{origin}` has a query string or fragment; remove everything from `?` or `#` on"
    )]
    QueryOrFragment {
        /// Which setting it was.
        what: &'static str,
        /// The URL's origin.
        origin: String,
    },
    /// A user name or password inside the URL. Neither is shown.
    #[error(
        "the {what} `{origin}` contains a user name or password; remove it and give credentials to the grant instead"
    )]
    CredentialsInUrl {
        /// Which setting it was.
        what: &'static str,
        /// The URL's origin, without the credentials.
        origin: String,
    },
    /// A path that is not part of such a URL.
    #[error(
        "the {what} `{origin}` has the path `{path}`, which is not part of such a URL; use `{origin}` alone"
    )]
    UnexpectedPath {
        /// Which setting it was.
        what: &'static str,
        /// The URL's origin.
        origin: String,
        /// The path found.
        path: String,
    },
    /// An authority URL without a tenant segment.
    #[error(
        "the authority URL `{origin}` has no tenant; append the tenant id or domain, such as {origin}/contoso.onmicrosoft.com"
    )]
    MissingTenant {
        /// The URL's origin.
        origin: String,
    },
    /// A tenant that is neither an id, a domain nor a keyword.
    #[error("the tenant {input} is not valid: {reason}")]
    InvalidTenant {
        /// The input as given (or a note that it is not shown).
        input: String,
        /// Why it is not a tenant.
        reason: &'static str,
    },
    /// A required setting is missing.
    #[error("{setting} is required: {fix}")]
    Missing {
        /// The setting's name as the user writes it.
        setting: &'static str,
        /// How to provide it.
        fix: String,
    },
    /// A setting has a value that cannot work.
    #[error("{setting}: {problem}; {fix}")]
    Invalid {
        /// The setting's name as the user writes it.
        setting: &'static str,
        /// What is wrong with the value (never the value itself when it is secret).
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

/// Shows a user's input in an error message unless it may hold a secret: text with `;` or
/// `=` is likely a connection string or a query, so it is described instead of quoted.
pub(crate) fn describe_input(input: &str) -> String {
    if input.contains(';') || input.contains('=') || input.len() > 200 {
        "not shown: it looks like it may contain a secret".to_owned()
    } else {
        format!("`{input}`")
    }
}

/// What a caller does about a failure: a handful of groups of [`ErrorKind`]s, to match on
/// when the precise kind (and the AADSTS code, [`AuthError::aadsts`]) is more than the
/// caller needs.
///
/// # Examples
///
/// ```
/// use d365_auth_core::{AuthError, ConfigError, ErrorCategory};
///
/// let error = AuthError::Config(ConfigError::Missing { setting: "client id", fix: String::new() });
/// match error.category() {
///     ErrorCategory::Configuration => { /* fix the settings: nothing was sent */ }
///     ErrorCategory::Unavailable => { /* try again later */ }
///     _ => { /* show the error and its hint */ }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// A setting is wrong or missing: the tenant, the authority, the client id, the scope or
    /// resource, a grant the application may not use. Fix the configuration.
    Configuration,
    /// The credential was refused or could not be produced: a wrong or expired secret, a
    /// certificate or assertion not accepted, a wrong password. Fix or renew it.
    Credential,
    /// The application or the user cannot sign in at all: disabled, locked, unknown.
    Account,
    /// Consent or an API permission is missing. An administrator grants it.
    Consent,
    /// A person must act: multi-factor authentication, Conditional Access, an interactive
    /// sign-in, a pending, declined, expired or cancelled sign-in, a refused refresh token.
    Interaction,
    /// Temporary: throttling, an unavailable service, a timeout, the network. Retry later.
    Unavailable,
    /// The answer could not be used: not a token nor an OAuth error, a redirect, an
    /// unclassified refusal. Check the authority URL and anything in between.
    Protocol,
}

/// What went wrong, for code that branches on it. More specific than the variants of
/// [`AuthError`]: an identity provider's refusal is classified by its AADSTS code.
/// [`ErrorKind::category`] groups the kinds into a handful of [`ErrorCategory`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting cannot work ([`ConfigError`]).
    Configuration,
    /// AADSTS7000215: wrong client secret, usually its ID instead of its value.
    InvalidClientSecret,
    /// AADSTS7000222: the client secret has expired.
    ClientSecretExpired,
    /// AADSTS7000218/7000216: no client credential sent for a confidential application.
    ClientCredentialMissing,
    /// AADSTS700025: a public client sent a credential.
    PublicClientSentCredential,
    /// AADSTS700016: the application is unknown in the tenant.
    ClientNotFound,
    /// AADSTS700027/50012/700030: the client assertion's signature or certificate is not accepted.
    InvalidClientAssertion,
    /// AADSTS700024: the client assertion is outside its validity window.
    ClientAssertionExpired,
    /// AADSTS7000112: the application is disabled.
    ApplicationDisabled,
    /// Another `invalid_client` refusal.
    InvalidClient,
    /// AADSTS90002: the tenant was not found.
    TenantNotFound,
    /// AADSTS90038/900382/900432: the request crossed national clouds.
    WrongCloud,
    /// AADSTS9001023/90124/90130: the grant is not allowed on `common`/`consumers`.
    TenantNotAllowed,
    /// AADSTS50049: unknown authority host.
    UnknownInstance,
    /// AADSTS50126: wrong user name or password.
    InvalidUserCredentials,
    /// AADSTS50034: the user does not exist in the tenant.
    UserNotFound,
    /// AADSTS50053: the account is locked.
    AccountLocked,
    /// AADSTS50055/50144: the password has expired.
    PasswordExpired,
    /// AADSTS50057: the account is disabled.
    AccountDisabled,
    /// AADSTS50076: multi-factor authentication is required.
    MfaRequired,
    /// AADSTS50079: multi-factor registration is required.
    MfaRegistrationRequired,
    /// AADSTS53003: blocked by Conditional Access.
    ConditionalAccessBlocked,
    /// AADSTS65001 or `consent_required`: consent is missing.
    ConsentRequired,
    /// AADSTS650057: the API is missing from the application's permissions.
    PermissionMissing,
    /// `interaction_required` without a more specific code.
    InteractionRequired,
    /// AADSTS500011/50001: the resource is unknown in the tenant.
    ResourceNotFound,
    /// AADSTS70011/700022: the scope is malformed.
    InvalidScope,
    /// AADSTS901002: `resource` sent to the v2 endpoint.
    ResourceParameterOnV2,
    /// AADSTS900144/90014: a required parameter is missing.
    MissingParameter,
    /// AADSTS70000/70008/700082/50173/70043: the refresh token was refused.
    RefreshTokenRejected,
    /// `authorization_pending` (AADSTS70016): the user has not finished signing in yet. A
    /// polling grant (device code) keeps polling; it reaches callers only from code that
    /// polls by itself.
    AuthorizationPending,
    /// `slow_down`: the client polled too often. A polling grant adds 5 seconds to its
    /// interval (RFC 8628 §3.5) and keeps polling.
    SlowDown,
    /// `authorization_declined` (or RFC 8628's `access_denied`): the user declined the
    /// sign-in request.
    AuthorizationDeclined,
    /// `expired_token` (AADSTS70019/70020), or [`AuthError::CodeExpired`]: the code the user
    /// had to enter expired before they finished signing in. Start the sign-in again.
    CodeExpired,
    /// The caller cancelled the request ([`AuthError::Cancelled`]).
    Cancelled,
    /// AADSTS70003 or `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `unauthorized_client` without a more specific code.
    UnauthorizedClient,
    /// Another `invalid_grant` refusal.
    InvalidGrant,
    /// Another refusal from the identity provider.
    Rejected,
    /// The identity provider said it is temporarily unavailable.
    ServiceUnavailable,
    /// HTTP 429 or AADSTS50196: too many requests.
    Throttled,
    /// The response was not a token response nor an OAuth error.
    UnexpectedResponse,
    /// The token endpoint answered with a redirect, which is never followed.
    Redirected,
    /// No response within the timeout.
    Timeout,
    /// The connection failed (DNS, TCP, TLS).
    Network,
    /// The grant's own credential could not be produced (a certificate, an assertion file).
    Credential,
    /// The credential does not exist where the program runs: no managed identity endpoint
    /// answers, a command-line tool is missing or signed out, no sign-in was remembered.
    /// A chain of credentials tries the next one.
    CredentialUnavailable,
}

/// An error from getting a token.
///
/// Match on [`AuthError::kind`] to branch; show it with `Display`, which says what went
/// wrong and how to fix it, and never contains a secret.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A setting cannot work; nothing was sent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The identity provider refused the request.
    #[error(transparent)]
    Identity(Box<IdentityError>),
    /// The identity provider is throttling this client.
    #[error("the identity provider at {endpoint} is throttling this client (HTTP 429){}; cache tokens and retry later", retry_after_text(*retry_after))]
    Throttled {
        /// The token endpoint.
        endpoint: Url,
        /// How long the server asked to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The response was neither a token nor an OAuth error: an HTML page, an empty or
    /// truncated body, a proxy's error page.
    #[error(
        "the token endpoint {endpoint} answered HTTP {status} with {detail}; check the authority URL and any proxy in between"
    )]
    UnexpectedResponse {
        /// The token endpoint.
        endpoint: Url,
        /// The HTTP status.
        status: StatusCode,
        /// What was wrong with the body (never the body of a successful response).
        detail: String,
    },
    /// The token endpoint answered with a redirect, which is not followed: a token request
    /// carries credentials and must reach the endpoint named, not another one.
    #[error("the token endpoint {endpoint} redirected (HTTP {status}){}; use the final URL as the authority, or check for a proxy or captive portal", location.as_deref().map(|l| format!(" to {l}")).unwrap_or_default())]
    Redirected {
        /// The token endpoint.
        endpoint: Url,
        /// The HTTP status.
        status: StatusCode,
        /// Where it pointed.
        location: Option<String>,
    },
    /// No response arrived in time.
    #[error("the token endpoint {endpoint} did not answer within {}; check the network, or raise the timeout", format_duration(*after))]
    Timeout {
        /// The token endpoint.
        endpoint: Url,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The connection failed before a response arrived.
    #[error("could not reach the token endpoint {endpoint}: {source}")]
    Network {
        /// The token endpoint.
        endpoint: Url,
        /// The transport error.
        source: ErrorSource,
    },
    /// The grant's own credential could not be produced.
    #[error("{message}")]
    Credential {
        /// What failed and how to fix it.
        message: String,
        /// The underlying error, if any.
        source: Option<ErrorSource>,
    },
    /// The caller cancelled the request before it completed (a grant that waits for a
    /// person, such as the device code grant, offers a way to).
    #[error(
        "{operation} was cancelled before it completed, and nothing more was sent; start it again when ready"
    )]
    Cancelled {
        /// What was cancelled, such as "the device code sign-in".
        operation: String,
    },
    /// The credential does not exist where the program runs: an identity endpoint that does
    /// not answer, a tool that is not installed or not signed in, no remembered sign-in.
    /// Nothing was refused: a chain of credentials goes on to the next one.
    #[error("{credential} is not available here: {reason}; {fix}")]
    Unavailable {
        /// The credential, as people name it ("managed identity", "the Azure CLI").
        credential: String,
        /// Why it is not available (never a secret).
        reason: String,
        /// What would make it available.
        fix: String,
    },
    /// The code a person had to enter expired, by the grant's own clock, before they
    /// finished signing in. (When the identity provider says so first, the error is an
    /// [`AuthError::Identity`] with `expired_token`; both have [`ErrorKind::CodeExpired`].)
    #[error("the sign-in code expired after {} before the user finished signing in; start the sign-in again and enter the new code within that time", format_duration(*lifetime))]
    CodeExpired {
        /// How long the code was valid.
        lifetime: Duration,
    },
}

impl ErrorKind {
    /// The group this kind belongs to.
    #[must_use]
    pub fn category(self) -> ErrorCategory {
        use ErrorCategory as C;
        match self {
            Self::Configuration
            | Self::ClientCredentialMissing
            | Self::PublicClientSentCredential
            | Self::ClientNotFound
            | Self::TenantNotFound
            | Self::WrongCloud
            | Self::TenantNotAllowed
            | Self::UnknownInstance
            | Self::ResourceNotFound
            | Self::InvalidScope
            | Self::ResourceParameterOnV2
            | Self::MissingParameter
            | Self::UnsupportedGrantType
            | Self::UnauthorizedClient
            | Self::CredentialUnavailable => C::Configuration,
            Self::InvalidClientSecret
            | Self::ClientSecretExpired
            | Self::InvalidClientAssertion
            | Self::ClientAssertionExpired
            | Self::InvalidClient
            | Self::InvalidUserCredentials
            | Self::PasswordExpired
            | Self::Credential => C::Credential,
            Self::ApplicationDisabled
            | Self::UserNotFound
            | Self::AccountLocked
            | Self::AccountDisabled => C::Account,
            Self::ConsentRequired | Self::PermissionMissing => C::Consent,
            Self::MfaRequired
            | Self::MfaRegistrationRequired
            | Self::ConditionalAccessBlocked
            | Self::InteractionRequired
            | Self::RefreshTokenRejected
            | Self::AuthorizationPending
            | Self::SlowDown
            | Self::AuthorizationDeclined
            | Self::CodeExpired
            | Self::Cancelled
            | Self::InvalidGrant => C::Interaction,
            Self::ServiceUnavailable | Self::Throttled | Self::Timeout | Self::Network => {
                C::Unavailable
            }
            Self::Rejected | Self::UnexpectedResponse | Self::Redirected => C::Protocol,
        }
    }
}

impl AuthError {
    /// The group of failures this belongs to: a handful to match on; [`kind`](Self::kind)
    /// and [`aadsts`](Self::aadsts) stay precise.
    #[must_use]
    pub fn category(&self) -> ErrorCategory {
        self.kind().category()
    }

    /// The kind of failure, to branch on.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) => ErrorKind::Configuration,
            Self::Identity(error) => error.kind(),
            Self::Throttled { .. } => ErrorKind::Throttled,
            Self::UnexpectedResponse { .. } => ErrorKind::UnexpectedResponse,
            Self::Redirected { .. } => ErrorKind::Redirected,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Network { .. } => ErrorKind::Network,
            Self::Credential { .. } => ErrorKind::Credential,
            Self::Cancelled { .. } => ErrorKind::Cancelled,
            Self::CodeExpired { .. } => ErrorKind::CodeExpired,
            Self::Unavailable { .. } => ErrorKind::CredentialUnavailable,
        }
    }

    /// The identity provider's refusal, if this is one.
    #[must_use]
    pub fn identity(&self) -> Option<&IdentityError> {
        match self {
            Self::Identity(error) => Some(error),
            _ => None,
        }
    }

    /// The AADSTS code, if the identity provider sent one.
    #[must_use]
    pub fn aadsts(&self) -> Option<u32> {
        self.identity().and_then(IdentityError::code)
    }

    /// The AD FS `MSISnnnn` code, if AD FS refused with one.
    #[must_use]
    pub fn msis(&self) -> Option<u32> {
        self.identity().and_then(IdentityError::msis)
    }

    /// How to fix it, when we know.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Identity(error) => Some(error.hint()),
            Self::Throttled { .. } => {
                Some("share one TokenCache per application, and a TokenStore across processes")
            }
            Self::CodeExpired { .. } => Some(
                "start the sign-in again and enter the new code within its lifetime (15 minutes at Entra ID)",
            ),
            _ => None,
        }
    }

    /// Whether a refresh failed because of the refresh token itself (invalid, expired,
    /// revoked, or issued to another client), so that running the grant's original flow
    /// again (the password, a new device code) may succeed. Entra answers all of these
    /// with `invalid_grant`; the AADSTS codes we know map to
    /// [`ErrorKind::RefreshTokenRejected`]. A grant that keeps refresh tokens calls this in
    /// its `renew_token` to decide whether to fall back.
    ///
    /// ```
    /// use d365_auth_core::{AuthError, ConfigError};
    ///
    /// let config = AuthError::Config(ConfigError::Missing { setting: "client id", fix: String::new() });
    /// assert!(!config.is_refresh_token_refused());
    /// ```
    #[must_use]
    pub fn is_refresh_token_refused(&self) -> bool {
        self.kind() == ErrorKind::RefreshTokenRejected
            || self
                .identity()
                .is_some_and(|identity| identity.error() == "invalid_grant")
    }

    /// Whether the same request may succeed later without any change: throttling, timeouts,
    /// network failures, and 5xx answers.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Throttled { .. } | Self::Timeout { .. } | Self::Network { .. } => true,
            Self::UnexpectedResponse { status, .. } => status.is_server_error(),
            Self::Identity(error) => {
                error.kind() == ErrorKind::ServiceUnavailable || error.status().is_server_error()
            }
            _ => false,
        }
    }

    /// A credential that does not exist where the program runs (see
    /// [`AuthError::Unavailable`]).
    pub fn unavailable(
        credential: impl Into<String>,
        reason: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::Unavailable {
            credential: credential.into(),
            reason: reason.into(),
            fix: fix.into(),
        }
    }

    /// Whether the credential does not exist where the program runs
    /// ([`ErrorKind::CredentialUnavailable`]): a chain of credentials tries the next.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        self.kind() == ErrorKind::CredentialUnavailable
    }

    /// A failure of the grant's own credential (reading a key, signing an assertion).
    pub fn credential(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::Credential {
            message: message.into(),
            source: source.map(ErrorSource::from),
        }
    }
}

impl From<IdentityError> for AuthError {
    fn from(error: IdentityError) -> Self {
        Self::Identity(Box::new(error))
    }
}

fn retry_after_text(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|after| format!(", retry after {}", format_duration(after)))
        .unwrap_or_default()
}

fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// A refusal from the identity provider, in Entra ID's error shape (plain RFC 6749 errors
/// fill only `error` and perhaps `error_description`).
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityError {
    pub(crate) endpoint: Url,
    pub(crate) status: StatusCode,
    pub(crate) error: String,
    pub(crate) description: Option<String>,
    pub(crate) codes: Vec<u32>,
    pub(crate) trace_id: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) timestamp: Option<String>,
    pub(crate) error_uri: Option<String>,
    pub(crate) suberror: Option<String>,
    pub(crate) claims: Option<String>,
}

impl IdentityError {
    /// The token endpoint that refused.
    #[must_use]
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The HTTP status (401 for `invalid_client`, 400 for most others).
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The RFC 6749 error code, such as `invalid_client`.
    #[must_use]
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The server's description, as sent (Entra appends trace lines to it).
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The first AADSTS code: the one that names the failure.
    #[must_use]
    pub fn code(&self) -> Option<u32> {
        self.codes.first().copied()
    }

    /// Every AADSTS code sent, most specific first.
    #[must_use]
    pub fn codes(&self) -> &[u32] {
        &self.codes
    }

    /// Entra's trace id, for a support request.
    #[must_use]
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    /// Entra's correlation id, for a support request.
    #[must_use]
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// When Entra saw the request, as it formats it.
    #[must_use]
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }

    /// A page about the error, when Entra has one.
    #[must_use]
    pub fn error_uri(&self) -> Option<&str> {
        self.error_uri.as_deref()
    }

    /// The sub-error of a Conditional Access refusal, such as `basic_action`.
    #[must_use]
    pub fn suberror(&self) -> Option<&str> {
        self.suberror.as_deref()
    }

    /// The claims challenge (JSON) of a Conditional Access refusal.
    #[must_use]
    pub fn claims(&self) -> Option<&str> {
        self.claims.as_deref()
    }

    /// The AD FS `MSISnnnn` code that opens the description, when AD FS refused. AD FS
    /// sends no `error_codes`: this is where its code is.
    #[must_use]
    pub fn msis(&self) -> Option<u32> {
        if !self.codes.is_empty() {
            return None;
        }
        self.description.as_deref().and_then(aadsts::msis_code)
    }

    /// What the tables know about this refusal: its `error` value when that names the
    /// failure exactly (the device code grant's polling errors), else its first known
    /// AADSTS code, else its known MSIS code.
    fn known(&self) -> Option<(ErrorKind, &'static str, &'static str)> {
        if let Some(row) = aadsts::lookup_error(&self.error) {
            return Some((row.kind, row.meaning, row.fix));
        }
        self.codes
            .iter()
            .find_map(|code| aadsts::lookup(*code))
            .or_else(|| self.msis().and_then(aadsts::lookup_msis))
            .map(|row| (row.kind, row.meaning, row.fix))
    }

    /// The kind of refusal: by the `error` value when it names the failure exactly (such as
    /// `authorization_pending`), else by AADSTS code when known, else by the RFC 6749 error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        if let Some((kind, _, _)) = self.known() {
            return kind;
        }
        match self.error.as_str() {
            "invalid_client" => ErrorKind::InvalidClient,
            "invalid_grant" => ErrorKind::InvalidGrant,
            "invalid_scope" => ErrorKind::InvalidScope,
            "invalid_resource" => ErrorKind::ResourceNotFound,
            "unauthorized_client" => ErrorKind::UnauthorizedClient,
            "unsupported_grant_type" => ErrorKind::UnsupportedGrantType,
            "interaction_required" => ErrorKind::InteractionRequired,
            "consent_required" => ErrorKind::ConsentRequired,
            "temporarily_unavailable" => ErrorKind::ServiceUnavailable,
            _ => ErrorKind::Rejected,
        }
    }

    /// What the failure means, in plain words.
    #[must_use]
    pub fn meaning(&self) -> String {
        if let Some((_, meaning, _)) = self.known() {
            return meaning.to_owned();
        }
        match self.server_message() {
            Some(message) => format!("the identity provider refused the request: {message}"),
            None => "the identity provider refused the request".to_owned(),
        }
    }

    /// How to fix it.
    #[must_use]
    pub fn hint(&self) -> &'static str {
        if let Some((_, _, fix)) = self.known() {
            return fix;
        }
        match self.kind() {
            ErrorKind::InvalidClient => {
                "check the client id and the client's secret or certificate"
            }
            ErrorKind::InvalidGrant => "check the user's credentials, or run the grant again",
            ErrorKind::InvalidScope => {
                "request https://{org}/.default (confidential) or https://{org}/user_impersonation (public)"
            }
            ErrorKind::ResourceNotFound => "check the organization URL and the tenant",
            ErrorKind::UnauthorizedClient => {
                "check that the application may use this grant in this tenant"
            }
            ErrorKind::UnsupportedGrantType => "use a grant the identity provider supports",
            ErrorKind::InteractionRequired | ErrorKind::ConsentRequired => {
                "the user must sign in interactively once (or an administrator must consent)"
            }
            ErrorKind::ServiceUnavailable => "retry later",
            _ => {
                "read the server's description; the trace and correlation ids identify the request for Microsoft support"
            }
        }
    }

    /// The first line of the server's description without its `AADSTSnnnn: ` prefix.
    fn server_message(&self) -> Option<&str> {
        let first = self.description.as_deref()?.lines().next()?.trim();
        let without_code = match first.split_once(": ") {
            Some((prefix, rest)) if prefix.starts_with("AADSTS") || prefix.starts_with("MSIS") => {
                rest
            }
            _ => first,
        };
        (!without_code.is_empty()).then_some(without_code)
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.meaning())?;
        if let Some(code) = self.code() {
            write!(f, "AADSTS{code}, ")?;
        } else if let Some(code) = self.msis() {
            write!(f, "MSIS{code}, ")?;
        }
        write!(f, "{}, HTTP {})", self.error, self.status.as_u16())?;
        write!(f, ". Fix: {}", self.hint())?;
        match (&self.trace_id, &self.correlation_id) {
            (Some(trace), Some(correlation)) => {
                write!(f, " [trace id {trace}, correlation id {correlation}]")
            }
            (Some(trace), None) => write!(f, " [trace id {trace}]"),
            (None, Some(correlation)) => write!(f, " [correlation id {correlation}]"),
            (None, None) => Ok(()),
        }
    }
}

impl fmt::Debug for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityError")
            .field("endpoint", &self.endpoint.as_str())
            .field("status", &self.status.as_u16())
            .field("error", &self.error)
            .field("codes", &self.codes)
            .field("msis", &self.msis())
            .field("kind", &self.kind())
            .field("trace_id", &self.trace_id)
            .field("correlation_id", &self.correlation_id)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for IdentityError {}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unavailable_credential_says_why_and_what_would_make_it_work() {
        let error = AuthError::unavailable(
            "managed identity",
            "no endpoint answered at 127.0.0.1:1 within 1 s",
            "run in Azure with an identity assigned",
        );
        assert!(error.is_unavailable());
        assert_eq!(error.kind(), ErrorKind::CredentialUnavailable);
        assert_eq!(error.category(), ErrorCategory::Configuration);
        assert_eq!(
            error.to_string(),
            "managed identity is not available here: no endpoint answered at 127.0.0.1:1 within 1 s; run in Azure with an identity assigned"
        );
        assert!(!AuthError::credential("x", None).is_unavailable());
    }

    use super::*;

    fn refusal(error: &str, codes: &[u32]) -> IdentityError {
        IdentityError {
            endpoint: Url::parse(
                "https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
            )
            .unwrap(),
            status: StatusCode::BAD_REQUEST,
            error: error.to_owned(),
            description: None,
            codes: codes.to_vec(),
            trace_id: None,
            correlation_id: None,
            timestamp: None,
            error_uri: None,
            suberror: None,
            claims: None,
        }
    }

    #[test]
    fn ad_fs_refusals_are_read_by_their_msis_code() {
        let mut wrong_password = refusal("invalid_grant", &[]);
        wrong_password.description = Some("MSIS9659: Invalid 'username' or 'password'.".into());
        assert_eq!(wrong_password.msis(), Some(9659));
        assert_eq!(wrong_password.kind(), ErrorKind::InvalidUserCredentials);
        let shown = wrong_password.to_string();
        assert!(
            shown.contains("MSIS9659, invalid_grant, HTTP 400"),
            "{shown}"
        );
        assert!(shown.contains("DOMAIN\\user"), "{shown}");

        let mut unknown_client = refusal("invalid_client", &[]);
        unknown_client.description = Some("MSIS9607: The 'client_id' parameter is invalid.".into());
        assert_eq!(unknown_client.kind(), ErrorKind::ClientNotFound);
        assert!(unknown_client.hint().contains("Add-AdfsClient"));

        // An unknown MSIS code still reads its message without the prefix.
        let mut other = refusal("invalid_request", &[]);
        other.description = Some("MSIS9999: Something new.".into());
        assert_eq!(other.msis(), Some(9999));
        assert!(
            other.meaning().ends_with(": Something new."),
            "{}",
            other.meaning()
        );

        // Entra's codes win: an AADSTS answer is never read as AD FS's.
        let mut entra = refusal("invalid_grant", &[50126]);
        entra.description = Some("MSIS9659: looks like AD FS".into());
        assert_eq!(entra.msis(), None);
    }

    #[test]
    fn polling_errors_win_over_their_code() {
        // 70000 alone means a refused refresh token; with `authorization_declined` it is a
        // decline, whatever code Entra attaches.
        assert_eq!(
            refusal("invalid_grant", &[70000]).kind(),
            ErrorKind::RefreshTokenRejected
        );
        let declined = refusal("authorization_declined", &[70000]);
        assert_eq!(declined.kind(), ErrorKind::AuthorizationDeclined);
        assert!(
            declined.meaning().contains("declined"),
            "{}",
            declined.meaning()
        );
        assert!(!declined.hint().contains("refresh token"));
        for (error, codes, kind) in [
            (
                "authorization_pending",
                &[70016][..],
                ErrorKind::AuthorizationPending,
            ),
            ("slow_down", &[][..], ErrorKind::SlowDown),
            ("expired_token", &[70020][..], ErrorKind::CodeExpired),
            ("invalid_grant", &[70019][..], ErrorKind::CodeExpired),
            ("access_denied", &[][..], ErrorKind::AuthorizationDeclined),
        ] {
            assert_eq!(refusal(error, codes).kind(), kind, "{error} {codes:?}");
        }
    }

    #[test]
    fn refused_refresh_tokens_are_recognized() {
        let refused = AuthError::from(refusal("invalid_grant", &[70008]));
        assert!(refused.is_refresh_token_refused());
        let unknown_code = AuthError::from(refusal("invalid_grant", &[1234]));
        assert!(unknown_code.is_refresh_token_refused());
        let wrong_secret = AuthError::from(refusal("invalid_client", &[7000215]));
        assert!(!wrong_secret.is_refresh_token_refused());
        let timeout = AuthError::Timeout {
            endpoint: Url::parse("https://login.microsoftonline.com/").unwrap(),
            after: Duration::from_secs(30),
        };
        assert!(!timeout.is_refresh_token_refused());
    }

    #[test]
    fn cancellation_and_expiry_say_what_to_do() {
        let cancelled = AuthError::Cancelled {
            operation: "the device code sign-in".to_owned(),
        };
        assert_eq!(cancelled.kind(), ErrorKind::Cancelled);
        assert!(
            cancelled
                .to_string()
                .starts_with("the device code sign-in was cancelled")
        );
        assert!(!cancelled.is_transient());
        let expired = AuthError::CodeExpired {
            lifetime: Duration::from_secs(900),
        };
        assert_eq!(expired.kind(), ErrorKind::CodeExpired);
        assert!(expired.to_string().contains("after 900 s"), "{expired}");
        assert!(expired.to_string().contains("start the sign-in again"));
        assert!(expired.hint().is_some());
    }
}
