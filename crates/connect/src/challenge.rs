//! Authority discovery as ServiceClient does it: an unauthenticated request to the
//! organization's Web API gets `401` with
//! `WWW-Authenticate: Bearer authorization_uri=https://login.microsoftonline.com/{tenant}/oauth2/authorize, resource_id=https://{org}.crm.dynamics.com/`,
//! and the `authorization_uri` names the authority (its cloud and tenant, or AD FS).

use std::sync::Arc;
use std::time::Duration;

use d365_auth_core::{Authority, ConfigError, Resource};
use url::Url;

use crate::error::ConnectError;

/// How long the discovery request may take unless the caller says otherwise.
pub(crate) const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `Bearer` challenge of a Dataverse `401` answer.
///
/// # Examples
///
/// ```
/// use d365_connect::BearerChallenge;
///
/// let challenge = BearerChallenge::parse(
///     "Bearer authorization_uri=https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
/// )
/// .expect("a Dataverse challenge");
/// assert_eq!(challenge.resource_id.as_str(), "https://contoso.crm.dynamics.com/");
/// assert_eq!(
///     challenge.authority()?.to_string(),
///     "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47",
/// );
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BearerChallenge {
    /// The authorization endpoint of the organization's identity provider
    /// (`https://login.microsoftonline.com/{tenant}/oauth2/authorize`, or AD FS's).
    pub authorization_uri: Url,
    /// The resource tokens must be issued for (the organization URL with a trailing `/`).
    pub resource_id: Url,
}

impl BearerChallenge {
    /// Parses one `WWW-Authenticate` header value. The scheme and parameter names are
    /// matched case-insensitively, values may be unquoted (as Dataverse sends them) or
    /// quoted, and other challenges in the same value are skipped. `None` when the value
    /// holds no `Bearer` challenge with both `authorization_uri` and `resource_id` as
    /// absolute URLs.
    #[must_use]
    pub fn parse(header_value: &str) -> Option<Self> {
        let mut in_bearer = false;
        let mut authorization_uri = None;
        let mut resource_id = None;
        for part in header_value.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            // `Scheme param=value` or a bare `Scheme` starts a new challenge.
            let first_space = part.find(char::is_whitespace);
            let first_equals = part.find('=');
            let param = match (first_space, first_equals) {
                (Some(space), Some(equals)) if space < equals => {
                    in_bearer = part[..space].eq_ignore_ascii_case("bearer");
                    part[space..].trim()
                }
                (Some(space), None) => {
                    in_bearer = part[..space].eq_ignore_ascii_case("bearer");
                    part[space..].trim()
                }
                (None, None) => {
                    in_bearer = part.eq_ignore_ascii_case("bearer");
                    ""
                }
                _ => part,
            };
            if !in_bearer {
                continue;
            }
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or(value);
            let name = name.trim();
            if name.eq_ignore_ascii_case("authorization_uri") {
                authorization_uri = authorization_uri.or_else(|| Url::parse(value).ok());
            } else if name.eq_ignore_ascii_case("resource_id") {
                resource_id = resource_id.or_else(|| Url::parse(value).ok());
            }
        }
        Some(Self {
            authorization_uri: authorization_uri?,
            resource_id: resource_id?,
        })
    }

    /// The first `Bearer` challenge among all `WWW-Authenticate` headers (on-premises
    /// servers send several).
    #[must_use]
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(Self::parse)
    }

    /// The authority the challenge names: `authorization_uri` without `/oauth2/authorize`,
    /// with the `common` tenant replaced by `organizations`, as ServiceClient does.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the URI is not a valid authority (plain `http` to a host that
    /// is not loopback, no tenant, ...).
    pub fn authority(&self) -> Result<Authority, ConfigError> {
        let mut url = self.authorization_uri.clone();
        let segments: Vec<String> = url
            .path_segments()
            .map(|segments| {
                segments
                    .map(|segment| {
                        if segment.eq_ignore_ascii_case("common") {
                            "organizations".to_owned()
                        } else {
                            segment.to_owned()
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        url.set_path(&segments.join("/"));
        url.set_query(None);
        Authority::parse(url.as_str())
    }
}

/// Asks the organization for its `401` challenge: `GET {org}/api/data/v9.2/` without a
/// token.
///
/// # Errors
///
/// [`ConnectError::Discovery`] when the request fails or the answer has no `Bearer`
/// challenge.
pub async fn discover_challenge(
    http: &reqwest::Client,
    org: &Resource,
) -> Result<BearerChallenge, ConnectError> {
    discover_with_timeout(http, org, DEFAULT_DISCOVERY_TIMEOUT).await
}

/// Discovers the authority of the organization from its `401` challenge, as ServiceClient
/// does when a connection string names no tenant: see [`discover_challenge`] and
/// [`BearerChallenge::authority`].
///
/// # Errors
///
/// [`ConnectError::Discovery`] when the request fails, the answer has no challenge, or its
/// `authorization_uri` is not a valid authority.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), d365_connect::ConnectError> {
/// use d365_auth_core::Resource;
///
/// let org = Resource::parse("https://contoso.crm.dynamics.com")?;
/// let authority = d365_connect::discover_authority(&reqwest::Client::new(), &org).await?;
/// println!("tokens come from {authority}");
/// # Ok(()) }
/// ```
pub async fn discover_authority(
    http: &reqwest::Client,
    org: &Resource,
) -> Result<Authority, ConnectError> {
    authority_of(org, &discover_challenge(http, org).await?)
}

pub(crate) fn authority_of(
    org: &Resource,
    challenge: &BearerChallenge,
) -> Result<Authority, ConnectError> {
    challenge
        .authority()
        .map_err(|error| ConnectError::Discovery {
            org: org.to_string(),
            problem: format!("its challenge names an authority that cannot be used ({error})"),
            fix: "give TenantId (and AuthorityHost, or Authority, for a host other than Microsoft's) in the connection string",
            source: Some(Arc::new(error)),
        })
}

pub(crate) async fn discover_with_timeout(
    http: &reqwest::Client,
    org: &Resource,
    timeout: Duration,
) -> Result<BearerChallenge, ConnectError> {
    let probe = format!("{org}/api/data/v9.2/");
    tracing::debug!(probe = %probe, "discovering the authority from the organization's 401 challenge");
    let response = http
        .get(&probe)
        .header(http::header::ACCEPT, "application/json")
        .timeout(timeout)
        .send()
        .await
        .map_err(|error| ConnectError::Discovery {
            org: org.to_string(),
            problem: if error.is_timeout() {
                format!("GET {probe} got no answer within {}s", timeout.as_secs())
            } else {
                format!("GET {probe} failed ({error})")
            },
            fix: "check the URL's host name, the network and any proxy; or give TenantId to skip discovery",
            source: Some(Arc::new(error)),
        })?;
    let status = response.status();
    match BearerChallenge::from_headers(response.headers()) {
        Some(challenge) => {
            tracing::debug!(
                authorization_uri = %challenge.authorization_uri,
                resource_id = %challenge.resource_id,
                "the organization named its authority"
            );
            Ok(challenge)
        }
        None => Err(ConnectError::Discovery {
            org: org.to_string(),
            problem: format!(
                "GET {probe} answered HTTP {} without a `WWW-Authenticate: Bearer authorization_uri=…, resource_id=…` challenge",
                status.as_u16()
            ),
            fix: "check that Url is the organization's URL (https://{org}.crm.dynamics.com), not an app or portal URL; or give TenantId (and AuthorityHost or Authority for a host other than Microsoft's)",
            source: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    #[test]
    fn challenges_parse_in_every_variant() {
        // (header value, expected authority, expected resource)
        let cases: &[(&str, &str, &str)] = &[
            // The form of reference §12.1.
            (
                "Bearer authorization_uri=https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
                "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47",
                "https://contoso.crm.dynamics.com/",
            ),
            // Scheme and keys in any case, no space after the comma, order swapped.
            (
                "bearer RESOURCE_ID=https://contoso.crm4.dynamics.com/,Authorization_Uri=https://login.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/authorize",
                "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47",
                "https://contoso.crm4.dynamics.com/",
            ),
            // Quoted values, extra parameters.
            (
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/authorize\", resource_id=\"https://contoso.crm.microsoftdynamics.us/\", error=\"invalid_token\"",
                "https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47",
                "https://contoso.crm.microsoftdynamics.us/",
            ),
            // `common` becomes `organizations`, as in ServiceClient.
            (
                "Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
                "https://login.microsoftonline.com/organizations",
                "https://contoso.crm.dynamics.com/",
            ),
            // On-premises AD FS.
            (
                "Bearer authorization_uri=https://adfs.contoso.com/adfs/oauth2/authorize, resource_id=https://crm.contoso.com/",
                "https://adfs.contoso.com/adfs",
                "https://crm.contoso.com/",
            ),
            // Another challenge first in the same value.
            (
                "Negotiate, Basic realm=\"crm\", Bearer authorization_uri=https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
                "https://login.microsoftonline.com/contoso.onmicrosoft.com",
                "https://contoso.crm.dynamics.com/",
            ),
            // The emulator on loopback.
            (
                "Bearer authorization_uri=http://127.0.0.1:4321/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/authorize, resource_id=http://127.0.0.1:4321/",
                "http://127.0.0.1:4321/72f988bf-86f1-41af-91ab-2d7cd011db47",
                "http://127.0.0.1:4321/",
            ),
        ];
        for (header, authority, resource) in cases {
            let challenge = BearerChallenge::parse(header).unwrap_or_else(|| panic!("{header}"));
            assert_eq!(challenge.resource_id.as_str(), *resource, "{header}");
            assert_eq!(
                challenge.authority().unwrap().to_string(),
                *authority,
                "{header}"
            );
        }
    }

    #[test]
    fn values_without_a_usable_bearer_challenge_are_none() {
        for header in [
            "",
            "Bearer",
            "Basic realm=\"x\"",
            "Bearer error=\"invalid_token\"",
            "Bearer authorization_uri=https://login.microsoftonline.com/x/oauth2/authorize",
            "Bearer resource_id=https://contoso.crm.dynamics.com/",
            "Bearer authorization_uri=not-a-url, resource_id=https://contoso.crm.dynamics.com/",
            "Basic authorization_uri=https://login.microsoftonline.com/x/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
        ] {
            assert_eq!(BearerChallenge::parse(header), None, "{header:?}");
        }
    }

    #[test]
    fn the_first_bearer_header_among_several_wins() {
        let mut headers = http::HeaderMap::new();
        headers.append(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Negotiate"),
        );
        headers.append(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_str(&format!(
                "Bearer authorization_uri=https://login.microsoftonline.com/{TID}/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/"
            ))
            .unwrap(),
        );
        let challenge = BearerChallenge::from_headers(&headers).unwrap();
        assert_eq!(
            challenge.authority().unwrap().tenant().unwrap().as_str(),
            TID
        );
        assert_eq!(BearerChallenge::from_headers(&http::HeaderMap::new()), None);
    }

    #[test]
    fn an_insecure_authority_is_refused() {
        let challenge = BearerChallenge::parse(
            "Bearer authorization_uri=http://login.contoso.example/x/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
        )
        .unwrap();
        assert!(matches!(
            challenge.authority(),
            Err(ConfigError::InsecureHttp { .. })
        ));
    }
}
