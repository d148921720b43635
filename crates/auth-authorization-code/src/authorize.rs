//! The authorization request the browser carries to the identity provider: the authorize
//! endpoint beside the token endpoint, and its parameters (RFC 6749 §4.1.1, RFC 7636,
//! OpenID Connect's `nonce`, Entra's `login_hint`, `domain_hint` and `prompt`).

use std::fmt;

use d365_auth_core::grant::TargetParameter;
use d365_auth_core::{ConfigError, TokenEndpoint};
use url::Url;

/// Whether the identity provider asks the person to act even when a session exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Prompt {
    /// Let the person choose among their signed-in accounts (`prompt=select_account`), as
    /// azure-identity does.
    SelectAccount,
    /// Ask for credentials again, whatever session exists (`prompt=login`; ServiceClient's
    /// `LoginPrompt=Always`).
    Login,
    /// Show the consent page even when consent was given (`prompt=consent`).
    Consent,
    /// Never show a page: a session must exist, or the sign-in fails with
    /// `login_required` (`prompt=none`; ServiceClient's `LoginPrompt=Never`).
    None,
}

impl Prompt {
    /// The value of the `prompt` parameter.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelectAccount => "select_account",
            Self::Login => "login",
            Self::Consent => "consent",
            Self::None => "none",
        }
    }
}

impl fmt::Display for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authorize endpoint that belongs to `token`: Entra's `…/oauth2/v2.0/authorize` (v1
/// `…/oauth2/authorize`), AD FS's `…/adfs/oauth2/authorize` — the token endpoint's path
/// with its last segment `token` replaced.
pub(crate) fn authorize_endpoint(token: &TokenEndpoint) -> Result<Url, ConfigError> {
    let url = token.url();
    let path = url.path();
    let Some(base) = path.strip_suffix("/token") else {
        return Err(ConfigError::Invalid {
            setting: "token endpoint",
            problem: format!(
                "{url} does not end with /token, so its authorize endpoint is unknown"
            ),
            fix: "use an Entra ID or AD FS authority (tenant, authority host, or adfs) rather than a bare token endpoint".to_owned(),
        });
    };
    let mut authorize = url.clone();
    authorize.set_path(&format!("{base}/authorize"));
    authorize.set_query(None);
    Ok(authorize)
}

/// What one authorization request sends.
#[derive(Debug)]
pub(crate) struct AuthorizeRequest<'a> {
    pub(crate) endpoint: &'a Url,
    pub(crate) target: TargetParameter,
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: &'a str,
    /// The scopes (v2), space-separated, or the resource (v1 and AD FS).
    pub(crate) scope_or_resource: &'a str,
    pub(crate) state: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) code_challenge: &'a str,
    pub(crate) login_hint: Option<&'a str>,
    pub(crate) domain_hint: Option<&'a str>,
    pub(crate) prompt: Option<Prompt>,
}

impl AuthorizeRequest<'_> {
    /// The URL to open in the browser.
    pub(crate) fn url(&self) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", self.client_id)
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", self.redirect_uri)
                .append_pair("response_mode", "query");
            let name = if self.target == TargetParameter::Resource {
                "resource"
            } else {
                "scope"
            };
            query.append_pair(name, self.scope_or_resource);
            query
                .append_pair("state", self.state)
                .append_pair("nonce", self.nonce)
                .append_pair("code_challenge", self.code_challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(hint) = self.login_hint {
                query.append_pair("login_hint", hint);
            }
            if let Some(hint) = self.domain_hint {
                query.append_pair("domain_hint", hint);
            }
            if let Some(prompt) = self.prompt {
                query.append_pair("prompt", prompt.as_str());
            }
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use d365_auth_core::{Authority, EndpointVersion, Tenant};

    #[test]
    fn the_authorize_endpoint_sits_beside_the_token_endpoint() {
        let entra = Authority::public_cloud(Tenant::Organizations);
        for (endpoint, expected) in [
            (
                entra.token_endpoint(EndpointVersion::V2),
                "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize",
            ),
            (
                entra.token_endpoint(EndpointVersion::V1),
                "https://login.microsoftonline.com/organizations/oauth2/authorize",
            ),
            (
                Authority::adfs("https://adfs.contoso.com/adfs")
                    .unwrap()
                    .token_endpoint(EndpointVersion::V2),
                "https://adfs.contoso.com/adfs/oauth2/authorize",
            ),
        ] {
            assert_eq!(authorize_endpoint(&endpoint).unwrap().as_str(), expected);
        }
        let bare = TokenEndpoint::new(
            Url::parse("https://idp.example.com/connect/issue").unwrap(),
            TargetParameter::Scope,
        );
        assert!(authorize_endpoint(&bare).is_err());
    }

    #[test]
    fn the_url_carries_pkce_state_nonce_and_hints() {
        let endpoint =
            Url::parse("https://login.microsoftonline.com/t/oauth2/v2.0/authorize").unwrap();
        let url = AuthorizeRequest {
            endpoint: &endpoint,
            target: TargetParameter::Scope,
            client_id: "c1",
            redirect_uri: "http://localhost:1234/",
            scope_or_resource: "https://contoso.crm.dynamics.com/.default offline_access openid profile",
            state: "s",
            nonce: "n",
            code_challenge: "ch",
            login_hint: Some("ana@contoso.com"),
            domain_hint: None,
            prompt: Some(Prompt::SelectAccount),
        }
        .url();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("redirect_uri"), Some("http://localhost:1234/"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("login_hint"), Some("ana@contoso.com"));
        assert_eq!(get("prompt"), Some("select_account"));
        assert_eq!(get("domain_hint"), None);
        assert!(get("scope").unwrap().contains("offline_access"));
    }
}
