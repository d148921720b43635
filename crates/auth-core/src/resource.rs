//! The resource a token is for, and the two wire forms that name it.
//!
//! Entra ID's v2 endpoint names the target API by a scope
//! (`https://org.crm.dynamics.com/.default`), the v1 endpoint and AD FS by a resource
//! (`resource=https://org.crm.dynamics.com/`). Users paste organization URLs in many shapes;
//! [`Resource::parse`] turns each of them into one canonical origin so that both forms, and
//! the cache key, come out the same.

use std::fmt;

use url::Url;

use crate::error::ConfigError;
use crate::urls::{checked_origin, is_loopback_host, parse_url};

/// Whether the application asking for a token can keep a secret.
///
/// It decides the v2 scope: a confidential client asks for `{org}/.default` (every
/// permission granted to the app), a public client for `{org}/user_impersonation` (the
/// delegated permission Dataverse exposes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientKind {
    /// An application with a secret, a certificate or an assertion.
    Confidential,
    /// An application with no credential of its own (a script, a desktop tool).
    Public,
}

/// The organization a token is requested for: a canonical origin such as
/// `https://contoso.crm.dynamics.com` — the token's audience — and, on-premises, the
/// organization's path on its server (`https://crm.contoso.local/Contoso`).
///
/// [`as_str`](Self::as_str), the scope and the resource name the origin, which is what a
/// token's audience is; `Display` and [`organization_url`](Self::organization_url) give the
/// whole organization URL, under which the Web API lives.
///
/// # Examples
///
/// ```
/// use d365_auth_core::{Resource};
/// use d365_auth_core::grant::{ClientKind};
///
/// let org = Resource::parse("https://Contoso.crm4.dynamics.com/api/data/v9.2/")?;
/// assert_eq!(org.as_str(), "https://contoso.crm4.dynamics.com");
/// assert_eq!(org.v2_scope(ClientKind::Confidential), "https://contoso.crm4.dynamics.com/.default");
/// assert_eq!(org.v2_scope(ClientKind::Public), "https://contoso.crm4.dynamics.com/user_impersonation");
/// assert_eq!(org.v1_resource(), "https://contoso.crm4.dynamics.com/");
///
/// // On-premises, the organization is the first segment of the path.
/// let onprem = Resource::parse("https://crm.contoso.com:444/Contoso/api/data/v8.2/")?;
/// assert_eq!(onprem.as_str(), "https://crm.contoso.com:444");
/// assert_eq!(onprem.path(), "/Contoso");
/// assert_eq!(onprem.to_string(), "https://crm.contoso.com:444/Contoso");
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    origin: String,
    /// `""`, or the on-premises organization's path segment with its slash (`/Contoso`).
    path: String,
}

/// Paths that users copy along with the organization URL and that say nothing about the
/// resource: the Web API root, the SOAP endpoint, and the app's start page.
const IGNORED_PATH_PREFIXES: &[&str] = &["/api/data", "/xrmservices/", "/main.aspx", "/apps/"];

/// Hosts of Dataverse online, whose organization URLs have no path.
const ONLINE_HOST_SUFFIXES: &[&str] = &[
    ".dynamics.com",
    ".microsoftdynamics.us",
    ".appsplatform.us",
    ".dynamics.cn",
    ".microsoftdynamics.de",
];

impl Resource {
    /// Parses an organization URL in any common form: with or without a trailing slash,
    /// with the `/api/data/v9.2` path, with an upper-case host, in any cloud, a loopback
    /// address with a port (the emulator), or an on-premises server with the organization
    /// as the first path segment (`https://crm.contoso.local/Contoso`, any port).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the input is not an absolute URL, has no host, uses plain
    /// `http` for a host that is not loopback, carries a query string, fragment or user
    /// name, or has a path that is not part of an organization URL (more than one segment
    /// before the Web API's).
    pub fn parse(input: &str) -> Result<Self, ConfigError> {
        Self::from_url(&parse_url(input, "organization URL")?)
    }

    /// Builds a resource from an already parsed URL, with the rules of [`Resource::parse`].
    ///
    /// # Errors
    ///
    /// As for [`Resource::parse`].
    pub fn from_url(url: &Url) -> Result<Self, ConfigError> {
        let origin = checked_origin(url, "organization URL")?;
        let path = url.path();
        let lower = path.to_ascii_lowercase();
        // What comes before the Web API root, the SOAP endpoint or the app's pages.
        let cut = IGNORED_PATH_PREFIXES
            .iter()
            .filter_map(|prefix| lower.find(prefix))
            .min()
            .unwrap_or(path.len());
        let organization = path[..cut].trim_end_matches('/');
        let segments: Vec<&str> = organization.split('/').filter(|s| !s.is_empty()).collect();
        // Dataverse online names the organization by its host alone.
        let online = url.host_str().is_some_and(|host| {
            ONLINE_HOST_SUFFIXES
                .iter()
                .any(|suffix| host.to_ascii_lowercase().ends_with(suffix))
        });
        let organization = match segments.as_slice() {
            [] => String::new(),
            [name]
                if !online
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
            {
                format!("/{name}")
            }
            _ => {
                return Err(ConfigError::UnexpectedPath {
                    what: "organization URL",
                    origin,
                    path: path.to_owned(),
                });
            }
        };
        Ok(Self {
            origin,
            path: organization,
        })
    }

    /// The resource of an organization at `origin` itself (online, or IFD), whatever
    /// path this one has.
    #[must_use]
    pub fn without_path(&self) -> Self {
        Self {
            origin: self.origin.clone(),
            path: String::new(),
        }
    }

    /// The on-premises organization's path (`/Contoso`), or `""`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The organization URL: the origin and the organization's path, no trailing slash.
    #[must_use]
    pub fn organization_url(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }

    /// The canonical origin: scheme, lower-case host and (non-default) port, no slash.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.origin
    }

    /// The v2 `scope` value for this resource.
    #[must_use]
    pub fn v2_scope(&self, client: ClientKind) -> String {
        match client {
            ClientKind::Confidential => format!("{}/.default", self.origin),
            ClientKind::Public => format!("{}/user_impersonation", self.origin),
        }
    }

    /// The v1 (and AD FS) `resource` value: the origin with a trailing slash, as Dataverse
    /// names itself in its `WWW-Authenticate` challenge.
    #[must_use]
    pub fn v1_resource(&self) -> String {
        format!("{}/", self.origin)
    }

    /// Whether the host is a loopback address (the emulator, a local proxy).
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        Url::parse(&self.origin)
            .ok()
            .and_then(|url| url.host_str().map(is_loopback_host))
            .unwrap_or(false)
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Resource")
            .field(&self.organization_url())
            .finish()
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        f.write_str(&self.path)
    }
}

impl std::str::FromStr for Resource {
    type Err = ConfigError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

/// What a token is requested for. Providers turn it into the wire form their endpoint
/// wants; the cache uses it as its key.
///
/// # Examples
///
/// ```
/// use d365_auth_core::TokenRequest;
///
/// let request = TokenRequest::for_url("https://contoso.crm.dynamics.com/")?;
/// assert_eq!(request.resource().as_str(), "https://contoso.crm.dynamics.com");
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TokenRequest {
    resource: Resource,
}

impl TokenRequest {
    /// A request for a token to call `resource`.
    #[must_use]
    pub fn new(resource: Resource) -> Self {
        Self { resource }
    }

    /// A request for a token to call the organization at `url` (see [`Resource::parse`]).
    ///
    /// # Errors
    ///
    /// As for [`Resource::parse`].
    pub fn for_url(url: &str) -> Result<Self, ConfigError> {
        Resource::parse(url).map(Self::new)
    }

    /// The resource the token is for.
    #[must_use]
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// A stable text form of the request, for keys in a persistent [`TokenStore`](crate::store::TokenStore).
    #[must_use]
    pub fn cache_key(&self) -> &str {
        self.resource.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, expected origin or the start of the expected error message)
    const CASES: &[(&str, Result<&str, &str>)] = &[
        (
            "https://contoso.crm.dynamics.com",
            Ok("https://contoso.crm.dynamics.com"),
        ),
        (
            "https://contoso.crm.dynamics.com/",
            Ok("https://contoso.crm.dynamics.com"),
        ),
        (
            "  https://contoso.crm.dynamics.com/  ",
            Ok("https://contoso.crm.dynamics.com"),
        ),
        (
            "https://CONTOSO.CRM.Dynamics.com/",
            Ok("https://contoso.crm.dynamics.com"),
        ),
        (
            "https://contoso.crm.dynamics.com/api/data/v9.2",
            Ok("https://contoso.crm.dynamics.com"),
        ),
        (
            "https://contoso.crm.dynamics.com/api/data/v9.2/",
            Ok("https://contoso.crm.dynamics.com"),
        ),
        (
            "https://contoso.crm.dynamics.com/API/Data/v9.1/accounts",
            Ok("https://contoso.crm.dynamics.com"),
        ),
        (
            "https://contoso.crm.dynamics.com/XRMServices/2011/Organization.svc",
            Ok("https://contoso.crm.dynamics.com"),
        ),
        (
            "https://contoso.crm.dynamics.com/main.aspx",
            Ok("https://contoso.crm.dynamics.com"),
        ),
        (
            "https://contoso.crm4.dynamics.com",
            Ok("https://contoso.crm4.dynamics.com"),
        ),
        (
            "https://contoso.crm11.dynamics.com/",
            Ok("https://contoso.crm11.dynamics.com"),
        ),
        (
            "https://contoso.crm.dynamics.us/",
            Ok("https://contoso.crm.dynamics.us"),
        ),
        (
            "https://contoso.crm.microsoftdynamics.us",
            Ok("https://contoso.crm.microsoftdynamics.us"),
        ),
        (
            "https://contoso.crm.dynamics.cn",
            Ok("https://contoso.crm.dynamics.cn"),
        ),
        (
            "https://contoso.crm.dynamics.com:443/",
            Ok("https://contoso.crm.dynamics.com"),
        ),
        (
            "https://crm.contoso.local:8443/",
            Ok("https://crm.contoso.local:8443"),
        ),
        ("http://127.0.0.1:8080", Ok("http://127.0.0.1:8080")),
        (
            "http://127.0.0.1:8080/api/data/v9.2/",
            Ok("http://127.0.0.1:8080"),
        ),
        ("http://localhost:5555/", Ok("http://localhost:5555")),
        ("http://[::1]:5555/", Ok("http://[::1]:5555")),
        ("https://127.0.0.1:5555/", Ok("https://127.0.0.1:5555")),
        (
            "contoso.crm.dynamics.com",
            Err("the organization URL is not a URL"),
        ),
        ("", Err("the organization URL is not a URL")),
        ("not a url", Err("the organization URL is not a URL")),
        (
            "http://contoso.crm.dynamics.com",
            Err("the organization URL `http://contoso.crm.dynamics.com` uses plain http"),
        ),
        (
            "http://10.0.0.5:8080/",
            Err("the organization URL `http://10.0.0.5:8080` uses plain http"),
        ),
        ("https://", Err("the organization URL has no host")),
        (
            "file:///etc/passwd",
            Err("the organization URL has no host"),
        ),
        (
            "ftp://contoso.crm.dynamics.com",
            Err("the organization URL uses the scheme `ftp`"),
        ),
        (
            "https://contoso.crm.dynamics.com/?foo=bar",
            Err(
                "the organization URL `https://contoso.crm.dynamics.com` has a query string or fragment",
            ),
        ),
        (
            "https://contoso.crm.dynamics.com/#main",
            Err(
                "the organization URL `https://contoso.crm.dynamics.com` has a query string or fragment",
            ),
        ),
        (
            "https://user:hunter2@contoso.crm.dynamics.com/",
            Err(
                "the organization URL `https://contoso.crm.dynamics.com` contains a user name or password",
            ),
        ),
        (
            "https://contoso.crm.dynamics.com/contoso",
            Err("the organization URL `https://contoso.crm.dynamics.com` has the path `/contoso`"),
        ),
    ];

    #[test]
    fn organization_urls_normalize_or_fail_clearly() {
        for (input, expected) in CASES {
            let actual = Resource::parse(input);
            match (expected, &actual) {
                (Ok(origin), Ok(resource)) => {
                    assert_eq!(resource.as_str(), *origin, "input {input:?}");
                }
                (Err(message), Err(error)) => {
                    let text = error.to_string();
                    assert!(text.starts_with(message), "input {input:?}: got {text:?}");
                    assert!(!text.contains("hunter2"), "a password leaked: {text}");
                }
                _ => panic!("input {input:?}: expected {expected:?}, got {actual:?}"),
            }
        }
    }

    #[test]
    fn on_premises_organizations_keep_their_path_and_name_the_origin_as_audience() {
        for (input, origin, path) in [
            (
                "https://crm.contoso.com:444/Contoso",
                "https://crm.contoso.com:444",
                "/Contoso",
            ),
            (
                "https://crm.contoso.com/Contoso/",
                "https://crm.contoso.com",
                "/Contoso",
            ),
            (
                "https://crm.contoso.com/Contoso/api/data/v8.2/",
                "https://crm.contoso.com",
                "/Contoso",
            ),
            (
                "https://crm.contoso.com/Contoso/main.aspx",
                "https://crm.contoso.com",
                "/Contoso",
            ),
            (
                "https://contoso.crm.contoso.com/api/data/v9.0",
                "https://contoso.crm.contoso.com",
                "",
            ),
            (
                "http://127.0.0.1:5555/Test",
                "http://127.0.0.1:5555",
                "/Test",
            ),
        ] {
            let resource = Resource::parse(input).unwrap();
            assert_eq!(resource.as_str(), origin, "{input}");
            assert_eq!(resource.path(), path, "{input}");
            assert_eq!(resource.to_string(), format!("{origin}{path}"));
            assert_eq!(resource.v1_resource(), format!("{origin}/"));
            assert_eq!(Resource::parse(&resource.to_string()).unwrap(), resource);
        }
        for bad in [
            "https://crm.contoso.com/a/b",
            "https://crm.contoso.com/Con toso",
            "https://contoso.crm.dynamics.com/contoso",
        ] {
            assert!(Resource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_wire_forms_come_from_the_origin() {
        for (input, expected) in CASES {
            let Ok(origin) = expected else { continue };
            let resource = Resource::parse(input).unwrap();
            assert_eq!(
                resource.v2_scope(ClientKind::Confidential),
                format!("{origin}/.default")
            );
            assert_eq!(
                resource.v2_scope(ClientKind::Public),
                format!("{origin}/user_impersonation")
            );
            assert_eq!(resource.v1_resource(), format!("{origin}/"));
        }
    }

    #[test]
    fn loopback_is_recognized() {
        assert!(Resource::parse("http://127.0.0.1:1").unwrap().is_loopback());
        assert!(Resource::parse("http://[::1]:1").unwrap().is_loopback());
        assert!(
            !Resource::parse("https://contoso.crm.dynamics.com")
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn requests_for_equivalent_urls_are_equal() {
        let a = TokenRequest::for_url("https://Contoso.crm.dynamics.com/api/data/v9.2/").unwrap();
        let b = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.cache_key(), "https://contoso.crm.dynamics.com");
    }
}
