//! [`ConnectError`]: what is wrong with a connection string, the environment, or the
//! connection built from them, and how to fix it. No variant holds a secret: values of
//! secret keys are never copied into an error, and names of unknown keys are not shown
//! (a misquoted secret can turn into one).

use d365_auth_core::grant::ErrorSource;
use d365_auth_core::{AuthError, ConfigError};

use crate::auth_type::AuthType;

/// An error from parsing a connection string or the environment, or from building a
/// provider or a client from them.
///
/// `Display` says what is wrong and how to fix it; neither it nor `Debug` ever contains a
/// secret (a password, a client secret, a certificate password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The text does not follow the connection string grammar.
    #[error("the connection string is malformed at character {position}: {problem}; {fix}")]
    Syntax {
        /// 1-based position of the character or pair at fault.
        position: usize,
        /// What is wrong (never the value).
        problem: String,
        /// How to fix it.
        fix: &'static str,
    },
    /// A required key is missing (or empty).
    #[error("the connection string has no {key}{}: {fix}", unrecognised_note(*unrecognised))]
    MissingKey {
        /// The key, as d365 writes it, with its aliases.
        key: String,
        /// How to provide it.
        fix: String,
        /// How many keys of the string d365 does not recognise (perhaps misspelt).
        unrecognised: usize,
    },
    /// A key has a value that cannot work.
    #[error("{key}: {problem}; {fix}")]
    InvalidValue {
        /// The key, as d365 writes it.
        key: &'static str,
        /// What is wrong (never a secret value).
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// The organization URL (`Url`, `ServiceUri`, ...) is not valid.
    #[error("Url: {0}")]
    InvalidUrl(#[source] ConfigError),
    /// `AuthType` names no authentication type.
    #[error(
        "AuthType `{value}` is not an authentication type; use ClientSecret or Certificate for an application, OAuth with Username and Password for a user, or ExternalTokenManagement with a token callback"
    )]
    UnknownAuthType {
        /// The value given.
        value: String,
    },
    /// An authentication type d365 cannot use, and what to use instead.
    #[error("AuthType={auth_type} cannot be used with d365: {reason}; {alternative}")]
    UnsupportedAuthType {
        /// The type given.
        auth_type: AuthType,
        /// Why it cannot work.
        reason: &'static str,
        /// What to use instead.
        alternative: &'static str,
    },
    /// `AuthType=OAuth` without a password asks for interactive sign-in, and no enabled
    /// grant does it.
    #[error(
        "AuthType=OAuth without a Password means interactive sign-in, and this build of d365 has no grant that signs a person in through a browser; enable the `interactive` feature of d365-connect, name Grant=device-code for a sign-in on another device, give Username and Password for the password grant (users without multi-factor authentication), or use AuthType=ClientSecret or AuthType=Certificate with an application user for unattended work"
    )]
    InteractiveSignIn,
    /// `Integrated Security=true` asks for the signed-in Windows user.
    #[error(
        "Integrated Security=true signs in as the current Windows user, which is not available outside Windows' own authentication stack; give Username and Password with AuthType=OAuth, or use AuthType=ClientSecret or AuthType=Certificate"
    )]
    IntegratedSecurity,
    /// `Grant=` names a grant this build does not have.
    #[error(
        "the grant `{name}` is not one this build of d365 has ({enabled}); use one of those, or enable its cargo feature of d365-connect"
    )]
    UnknownGrant {
        /// The name given (at most 40 characters).
        name: String,
        /// The grants enabled.
        enabled: String,
    },
    /// No enabled grant takes the connection's `AuthType`.
    #[error(
        "no grant of this build of d365 takes AuthType={auth_type} ({enabled} are enabled); enable the grant's cargo feature of d365-connect, or name one with Grant="
    )]
    NoGrant {
        /// The type given.
        auth_type: AuthType,
        /// The grants enabled.
        enabled: String,
    },
    /// `AuthType=ExternalTokenManagement` without a token callback.
    #[error(
        "AuthType=ExternalTokenManagement takes its tokens from your code, and no token callback was given; pass one with ConnectOptions::token_callback (or, with the webapi feature, ConnectionString::into_client_with_token_callback)"
    )]
    TokenCallbackRequired,
    /// The azure-identity environment variables do not describe a credential.
    #[error("{problem}; {fix}")]
    Environment {
        /// What is missing or wrong (variable names, never values).
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// The organization's authority could not be discovered from its `401` challenge.
    #[error("could not discover the authority of {org}: {problem}; {fix}")]
    Discovery {
        /// The organization URL.
        org: String,
        /// What went wrong.
        problem: String,
        /// How to fix it.
        fix: &'static str,
        /// The underlying error, if any.
        #[source]
        source: Option<ErrorSource>,
    },
    /// The grant's settings cannot work (from the grant's builder).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Getting a token failed (boxed: it is large).
    #[error(transparent)]
    Auth(Box<AuthError>),
    /// Building the Web API client failed (boxed: it is large).
    #[cfg(feature = "webapi")]
    #[error(transparent)]
    WebApi(Box<d365_webapi::WebApiError>),
}

impl ConnectError {
    /// Whether the organization could not be reached at all (discovery's request failed on
    /// the network), as opposed to a setting that cannot work.
    #[must_use]
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            Self::Discovery {
                source: Some(source),
                ..
            } if source.downcast_ref::<reqwest::Error>().is_some()
        )
    }
}

impl From<AuthError> for ConnectError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Config(config) => Self::Config(config),
            other => Self::Auth(Box::new(other)),
        }
    }
}

#[cfg(feature = "webapi")]
impl From<d365_webapi::WebApiError> for ConnectError {
    fn from(error: d365_webapi::WebApiError) -> Self {
        Self::WebApi(Box::new(error))
    }
}

fn unrecognised_note(count: usize) -> String {
    match count {
        0 => String::new(),
        1 => " (and one of its keys is not one d365 knows: check its spelling)".to_owned(),
        n => format!(" (and {n} of its keys are not ones d365 knows: check their spelling)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a request that failed on the network makes a discovery error a network error:
    /// a challenge naming an unusable authority is a setting that cannot work.
    #[test]
    fn a_discovery_error_is_a_network_error_only_for_a_transport_failure() {
        let unusable = ConnectError::Discovery {
            org: "https://contoso.crm.dynamics.com".to_owned(),
            problem: "its challenge names an authority that cannot be used".to_owned(),
            fix: "give TenantId",
            source: Some(std::sync::Arc::new(std::io::Error::other("not a URL"))),
        };
        assert!(!unusable.is_network());
        let no_challenge = ConnectError::Discovery {
            org: "https://contoso.crm.dynamics.com".to_owned(),
            problem: "no challenge".to_owned(),
            fix: "check the URL",
            source: None,
        };
        assert!(!no_challenge.is_network());
    }
}
