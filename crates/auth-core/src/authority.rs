//! Who issues tokens: Entra ID in each national cloud, a custom host (the emulator, a
//! proxy) or on-premises AD FS, the tenant, and the token endpoint URLs they imply.

use std::fmt;

use url::Url;

use crate::error::{ConfigError, describe_input};
use crate::urls::{checked_origin, parse_url};

/// A Microsoft cloud with its own Entra ID authority host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cloud {
    /// The public cloud (also GCC moderate): `login.microsoftonline.com`.
    Public,
    /// US Government GCC High and DoD: `login.microsoftonline.us`.
    UsGovernment,
    /// China, operated by 21Vianet: `login.chinacloudapi.cn`.
    China,
}

impl Cloud {
    /// The authority host of this cloud.
    #[must_use]
    pub fn authority_host(self) -> &'static str {
        match self {
            Self::Public => "login.microsoftonline.com",
            Self::UsGovernment => "login.microsoftonline.us",
            Self::China => "login.chinacloudapi.cn",
        }
    }

    /// The cloud an authority host belongs to, including Microsoft's alias hosts.
    #[must_use]
    pub fn from_host(host: &str) -> Option<Self> {
        match host.to_ascii_lowercase().as_str() {
            "login.microsoftonline.com"
            | "login.windows.net"
            | "login.microsoft.com"
            | "sts.windows.net" => Some(Self::Public),
            "login.microsoftonline.us" | "login.usgovcloudapi.net" => Some(Self::UsGovernment),
            "login.chinacloudapi.cn" | "login.partner.microsoftonline.cn" => Some(Self::China),
            _ => None,
        }
    }
}

/// The directory a token is requested from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Tenant {
    /// A tenant id (a GUID), in lower case.
    Id(String),
    /// A verified domain of the tenant, such as `contoso.onmicrosoft.com`, in lower case.
    Domain(String),
    /// Any work or school account: valid for user grants, not for client credentials.
    Organizations,
    /// Any account, work, school or personal: Entra refuses it for most non-interactive grants.
    Common,
    /// Personal Microsoft accounts only: Dataverse does not accept them.
    Consumers,
}

impl Tenant {
    /// Parses a tenant id, a verified domain or one of the keywords `organizations`,
    /// `common`, `consumers` (any case).
    ///
    /// # Examples
    ///
    /// ```
    /// use d365_auth_core::Tenant;
    ///
    /// assert_eq!(Tenant::parse("Contoso.onmicrosoft.com")?, Tenant::Domain("contoso.onmicrosoft.com".into()));
    /// assert_eq!(Tenant::parse("organizations")?, Tenant::Organizations);
    /// assert!(Tenant::parse("not a tenant").is_err());
    /// # Ok::<(), d365_auth_core::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidTenant`] for anything else, saying what a tenant looks like.
    pub fn parse(input: &str) -> Result<Self, ConfigError> {
        let value = input.trim().to_ascii_lowercase();
        let invalid = |reason: &'static str| ConfigError::InvalidTenant {
            input: describe_input(input.trim()),
            reason,
        };
        match value.as_str() {
            "" => Err(invalid("it is empty")),
            "organizations" => Ok(Self::Organizations),
            "common" => Ok(Self::Common),
            "consumers" => Ok(Self::Consumers),
            "adfs" => Err(invalid(
                "`adfs` is not a tenant; for on-premises AD FS use an AD FS authority (Authority::adfs)",
            )),
            _ if is_guid(&value) => Ok(Self::Id(value)),
            _ if looks_like_guid(&value) => Err(invalid(
                "it looks like a GUID but is malformed; a tenant id has the form 00000000-0000-0000-0000-000000000000",
            )),
            _ if is_domain(&value) => Ok(Self::Domain(value)),
            _ => Err(invalid(
                "a tenant is a tenant id (GUID), a verified domain such as contoso.onmicrosoft.com, or `organizations`",
            )),
        }
    }

    /// The tenant as it appears in the authority path.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Id(value) | Self::Domain(value) => value,
            Self::Organizations => "organizations",
            Self::Common => "common",
            Self::Consumers => "consumers",
        }
    }

    /// Whether this names one directory (an id or a domain) rather than a keyword.
    #[must_use]
    pub fn is_specific(&self) -> bool {
        matches!(self, Self::Id(_) | Self::Domain(_))
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tenant {
    type Err = ConfigError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn looks_like_guid(value: &str) -> bool {
    value.matches('-').count() >= 3 && value.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn is_domain(value: &str) -> bool {
    value.contains('.')
        && value.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Which token endpoint of Entra ID to call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointVersion {
    /// `/oauth2/token`, with `resource=`. Also the only form AD FS has.
    V1,
    /// `/oauth2/v2.0/token`, with `scope=`: Microsoft's current endpoint.
    #[default]
    V2,
}

/// How a token endpoint names the API a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetParameter {
    /// `scope={org}/.default` or `scope={org}/user_impersonation` (Entra v2).
    Scope,
    /// `resource={org}/` (Entra v1, AD FS).
    Resource,
}

/// A token endpoint URL with the way it expects the target API to be named.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenEndpoint {
    url: Url,
    target: TargetParameter,
}

impl TokenEndpoint {
    /// An endpoint at `url`; use this for a token service that is not an [`Authority`].
    #[must_use]
    pub fn new(url: Url, target: TargetParameter) -> Self {
        Self { url, target }
    }

    /// The URL to POST the token request to; also the `aud` of a client assertion.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether the request names the API by `scope` or by `resource`.
    #[must_use]
    pub fn target(&self) -> TargetParameter {
        self.target
    }
}

impl fmt::Display for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// The identity provider that issues tokens.
///
/// # Examples
///
/// ```
/// use d365_auth_core::{Authority, Cloud, EndpointVersion, Tenant};
///
/// let tenant = Tenant::parse("contoso.onmicrosoft.com")?;
/// let authority = Authority::cloud(Cloud::UsGovernment, tenant);
/// assert_eq!(
///     authority.token_endpoint(EndpointVersion::V2).url().as_str(),
///     "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token",
/// );
///
/// let adfs = Authority::adfs("https://adfs.contoso.com")?;
/// assert_eq!(
///     adfs.token_endpoint(EndpointVersion::V2).url().as_str(),
///     "https://adfs.contoso.com/adfs/oauth2/token",
/// );
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Authority {
    kind: AuthorityKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum AuthorityKind {
    /// Entra ID or something that speaks its protocol. `base` ends with `/`; the tenant
    /// segment follows it.
    Entra { base: Url, tenant: Tenant },
    /// AD FS; `base` is the origin, the token endpoint is `{base}/adfs/oauth2/token`.
    Adfs { base: Url },
}

impl Authority {
    /// Entra ID in the public cloud.
    #[must_use]
    pub fn public_cloud(tenant: Tenant) -> Self {
        Self::cloud(Cloud::Public, tenant)
    }

    /// Entra ID in the given cloud.
    #[must_use]
    pub fn cloud(cloud: Cloud, tenant: Tenant) -> Self {
        let base = Url::parse(&format!("https://{}/", cloud.authority_host()))
            .expect("cloud hosts are valid URLs");
        Self {
            kind: AuthorityKind::Entra { base, tenant },
        }
    }

    /// A host that speaks Entra ID's protocol: the d365 emulator, a test server, a proxy.
    /// `base_url` may carry a path prefix (`https://proxy.example/login`); the tenant
    /// follows it. `https` is required unless the host is loopback.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `base_url` is not an absolute URL, uses plain `http` for a
    /// host that is not loopback, or carries credentials, a query or a fragment.
    pub fn custom(base_url: &str, tenant: Tenant) -> Result<Self, ConfigError> {
        let url = parse_url(base_url, "authority URL")?;
        let origin = checked_origin(&url, "authority URL")?;
        let prefix = url.path().trim_matches('/');
        let base = if prefix.is_empty() {
            format!("{origin}/")
        } else {
            format!("{origin}/{prefix}/")
        };
        let base = Url::parse(&base).map_err(|error| ConfigError::NotAUrl {
            what: "authority URL",
            input: describe_input(base_url),
            reason: error.to_string(),
        })?;
        Ok(Self {
            kind: AuthorityKind::Entra { base, tenant },
        })
    }

    /// On-premises AD FS (Dynamics 365 with claims-based authentication / IFD). Accepts
    /// the server's origin (`https://adfs.contoso.com`), its `/adfs` path or its token
    /// endpoint. AD FS speaks the v1 protocol: requests name the API by `resource`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] as for [`Authority::custom`], or when the path is not an AD FS path.
    pub fn adfs(url: &str) -> Result<Self, ConfigError> {
        let parsed = parse_url(url, "AD FS URL")?;
        let origin = checked_origin(&parsed, "AD FS URL")?;
        let path = parsed.path().trim_end_matches('/').to_ascii_lowercase();
        if !(path.is_empty() || path == "/adfs" || path.starts_with("/adfs/")) {
            return Err(ConfigError::UnexpectedPath {
                what: "AD FS URL",
                origin,
                path: parsed.path().to_owned(),
            });
        }
        let base = Url::parse(&format!("{origin}/")).map_err(|error| ConfigError::NotAUrl {
            what: "AD FS URL",
            input: describe_input(url),
            reason: error.to_string(),
        })?;
        Ok(Self {
            kind: AuthorityKind::Adfs { base },
        })
    }

    /// Parses an authority URL as users and services write it:
    /// `https://login.microsoftonline.com/{tenant}` (with or without `/v2.0`, an
    /// `/oauth2/...` endpoint path, or a trailing slash), the `authorization_uri` of a
    /// Dataverse `WWW-Authenticate` challenge, an AD FS URL (`https://host/adfs/...`), or a
    /// custom host whose last path segment is the tenant.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the URL is invalid, has no tenant segment, or the tenant is invalid.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let parsed = parse_url(url, "authority URL")?;
        let origin = checked_origin(&parsed, "authority URL")?;
        let segments: Vec<&str> = parsed
            .path_segments()
            .map(|segments| segments.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        if segments
            .first()
            .is_some_and(|first| first.eq_ignore_ascii_case("adfs"))
        {
            return Self::adfs(url);
        }
        let end = segments
            .iter()
            .position(|segment| {
                let segment = segment.to_ascii_lowercase();
                segment == "oauth2" || segment == "v2.0" || segment.starts_with('.')
            })
            .unwrap_or(segments.len());
        let Some((tenant, prefix)) = segments[..end].split_last() else {
            return Err(ConfigError::MissingTenant { origin });
        };
        let tenant = Tenant::parse(tenant)?;
        let host = parsed.host_str().unwrap_or_default();
        match Cloud::from_host(host) {
            Some(cloud) if prefix.is_empty() && parsed.port().is_none() => {
                Ok(Self::cloud(cloud, tenant))
            }
            _ => Self::custom(&format!("{origin}/{}", prefix.join("/")), tenant),
        }
    }

    /// The tenant, for Entra authorities; AD FS has none.
    #[must_use]
    pub fn tenant(&self) -> Option<&Tenant> {
        match &self.kind {
            AuthorityKind::Entra { tenant, .. } => Some(tenant),
            AuthorityKind::Adfs { .. } => None,
        }
    }

    /// Whether this is an on-premises AD FS server.
    #[must_use]
    pub fn is_adfs(&self) -> bool {
        matches!(self.kind, AuthorityKind::Adfs { .. })
    }

    /// The Microsoft cloud this authority belongs to, if it is one of Microsoft's hosts.
    #[must_use]
    pub fn cloud_of_host(&self) -> Option<Cloud> {
        match &self.kind {
            AuthorityKind::Entra { base, .. } => base.host_str().and_then(Cloud::from_host),
            AuthorityKind::Adfs { .. } => None,
        }
    }

    /// The authority URL: `{base}/{tenant}` for Entra, `{origin}/adfs` for AD FS.
    #[must_use]
    pub fn url(&self) -> Url {
        let text = match &self.kind {
            AuthorityKind::Entra { base, tenant } => format!("{base}{tenant}"),
            AuthorityKind::Adfs { base } => format!("{base}adfs"),
        };
        Url::parse(&text).expect("authority parts were validated")
    }

    /// The token endpoint for the given protocol version. AD FS has one endpoint, which
    /// takes `resource=`, whatever the version asked for.
    #[must_use]
    pub fn token_endpoint(&self, version: EndpointVersion) -> TokenEndpoint {
        let (text, target) = match (&self.kind, version) {
            (AuthorityKind::Adfs { base }, _) => (
                format!("{base}adfs/oauth2/token"),
                TargetParameter::Resource,
            ),
            (AuthorityKind::Entra { base, tenant }, EndpointVersion::V1) => (
                format!("{base}{tenant}/oauth2/token"),
                TargetParameter::Resource,
            ),
            (AuthorityKind::Entra { base, tenant }, EndpointVersion::V2) => (
                format!("{base}{tenant}/oauth2/v2.0/token"),
                TargetParameter::Scope,
            ),
        };
        TokenEndpoint::new(
            Url::parse(&text).expect("authority parts were validated"),
            target,
        )
    }

    /// An endpoint of the Entra host outside any tenant, such as
    /// `common/userrealm/{user}`; `None` for AD FS.
    #[must_use]
    pub fn instance_endpoint(&self, path: &str) -> Option<Url> {
        match &self.kind {
            AuthorityKind::Entra { base, .. } => base.join(path.trim_start_matches('/')).ok(),
            AuthorityKind::Adfs { .. } => None,
        }
    }

    /// The endpoint of another Entra path under the tenant, such as
    /// `oauth2/v2.0/devicecode`; `None` for AD FS.
    #[must_use]
    pub fn tenant_endpoint(&self, path: &str) -> Option<Url> {
        match &self.kind {
            AuthorityKind::Entra { base, tenant } => {
                Url::parse(&format!("{base}{tenant}/{}", path.trim_start_matches('/'))).ok()
            }
            AuthorityKind::Adfs { .. } => None,
        }
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Authority")
            .field(&self.url().as_str())
            .finish()
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    #[test]
    fn tenants_parse() {
        let cases: &[(&str, Result<Tenant, &str>)] = &[
            (TID, Ok(Tenant::Id(TID.into()))),
            (
                "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
                Ok(Tenant::Id(TID.into())),
            ),
            (
                "contoso.onmicrosoft.com",
                Ok(Tenant::Domain("contoso.onmicrosoft.com".into())),
            ),
            ("Contoso.COM", Ok(Tenant::Domain("contoso.com".into()))),
            ("organizations", Ok(Tenant::Organizations)),
            ("Common", Ok(Tenant::Common)),
            ("consumers", Ok(Tenant::Consumers)),
            ("", Err("it is empty")),
            (
                "72f988bf-86f1-41af-91ab",
                Err("it looks like a GUID but is malformed"),
            ),
            ("contoso", Err("a tenant is a tenant id")),
            ("adfs", Err("`adfs` is not a tenant")),
            ("conto so.com", Err("a tenant is a tenant id")),
        ];
        for (input, expected) in cases {
            match (Tenant::parse(input), expected) {
                (Ok(actual), Ok(expected)) => assert_eq!(&actual, expected),
                (Err(error), Err(reason)) => {
                    assert!(error.to_string().contains(reason), "{input}: {error}");
                }
                (actual, _) => panic!("{input}: expected {expected:?}, got {actual:?}"),
            }
        }
    }

    #[test]
    fn token_endpoints_for_each_cloud_and_version() {
        let tenant = Tenant::Id(TID.into());
        let cases = [
            (
                Cloud::Public,
                EndpointVersion::V2,
                format!("https://login.microsoftonline.com/{TID}/oauth2/v2.0/token"),
            ),
            (
                Cloud::Public,
                EndpointVersion::V1,
                format!("https://login.microsoftonline.com/{TID}/oauth2/token"),
            ),
            (
                Cloud::UsGovernment,
                EndpointVersion::V2,
                format!("https://login.microsoftonline.us/{TID}/oauth2/v2.0/token"),
            ),
            (
                Cloud::China,
                EndpointVersion::V1,
                format!("https://login.chinacloudapi.cn/{TID}/oauth2/token"),
            ),
        ];
        for (cloud, version, expected) in cases {
            let endpoint = Authority::cloud(cloud, tenant.clone()).token_endpoint(version);
            assert_eq!(endpoint.url().as_str(), expected);
            let target = if version == EndpointVersion::V2 {
                TargetParameter::Scope
            } else {
                TargetParameter::Resource
            };
            assert_eq!(endpoint.target(), target);
        }
    }

    #[test]
    fn custom_hosts_keep_their_prefix_and_refuse_plain_http() {
        let tenant = Tenant::Organizations;
        let emulator = Authority::custom("http://127.0.0.1:5000", tenant.clone()).unwrap();
        assert_eq!(
            emulator.token_endpoint(EndpointVersion::V2).url().as_str(),
            "http://127.0.0.1:5000/organizations/oauth2/v2.0/token"
        );
        let proxy = Authority::custom("https://proxy.example/login/", tenant.clone()).unwrap();
        assert_eq!(
            proxy.token_endpoint(EndpointVersion::V1).url().as_str(),
            "https://proxy.example/login/organizations/oauth2/token"
        );
        let error = Authority::custom("http://proxy.example", tenant).unwrap_err();
        assert!(error.to_string().contains("uses plain http"), "{error}");
    }

    #[test]
    fn adfs_accepts_its_usual_forms() {
        for input in [
            "https://adfs.contoso.com",
            "https://adfs.contoso.com/adfs",
            "https://adfs.contoso.com/adfs/",
            "https://adfs.contoso.com/adfs/oauth2/token",
            "https://ADFS.contoso.com/adfs/oauth2/authorize",
        ] {
            let authority = Authority::adfs(input).unwrap();
            assert!(authority.is_adfs());
            assert_eq!(authority.tenant(), None);
            for version in [EndpointVersion::V1, EndpointVersion::V2] {
                let endpoint = authority.token_endpoint(version);
                assert_eq!(
                    endpoint.url().as_str(),
                    "https://adfs.contoso.com/adfs/oauth2/token"
                );
                assert_eq!(endpoint.target(), TargetParameter::Resource);
            }
        }
        assert!(Authority::adfs("https://adfs.contoso.com/other").is_err());
        assert!(Authority::adfs("http://adfs.contoso.com").is_err());
    }

    #[test]
    fn authority_urls_parse() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "https://login.microsoftonline.com/contoso.onmicrosoft.com",
                Ok("https://login.microsoftonline.com/contoso.onmicrosoft.com"),
            ),
            (
                "https://login.microsoftonline.com/organizations/",
                Ok("https://login.microsoftonline.com/organizations"),
            ),
            (
                "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/authorize",
                Ok("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ),
            (
                "https://login.windows.net/contoso.com/v2.0",
                Ok("https://login.microsoftonline.com/contoso.com"),
            ),
            (
                "https://login.microsoftonline.us/contoso.com/oauth2/v2.0/token",
                Ok("https://login.microsoftonline.us/contoso.com"),
            ),
            (
                "http://127.0.0.1:8080/contoso.com",
                Ok("http://127.0.0.1:8080/contoso.com"),
            ),
            (
                "https://proxy.example/login/contoso.com/.well-known/openid-configuration",
                Ok("https://proxy.example/login/contoso.com"),
            ),
            (
                "https://adfs.contoso.com/adfs/oauth2/authorize",
                Ok("https://adfs.contoso.com/adfs"),
            ),
            ("https://login.microsoftonline.com/", Err("has no tenant")),
            (
                "https://login.microsoftonline.com/oauth2/token",
                Err("has no tenant"),
            ),
            (
                "http://login.microsoftonline.com/contoso.com",
                Err("uses plain http"),
            ),
            ("login.microsoftonline.com/contoso.com", Err("is not a URL")),
            (
                "https://login.microsoftonline.com/contoso",
                Err("a tenant is a tenant id"),
            ),
        ];
        for (input, expected) in cases {
            match (Authority::parse(input), expected) {
                (Ok(authority), Ok(url)) => assert_eq!(authority.url().as_str(), *url, "{input}"),
                (Err(error), Err(reason)) => {
                    assert!(error.to_string().contains(reason), "{input}: {error}");
                }
                (actual, _) => panic!("{input}: expected {expected:?}, got {actual:?}"),
            }
        }
        let parsed = Authority::parse("https://login.microsoftonline.us/contoso.com").unwrap();
        assert_eq!(parsed.cloud_of_host(), Some(Cloud::UsGovernment));
    }

    #[test]
    fn tenant_endpoint_builds_sibling_paths() {
        let authority = Authority::public_cloud(Tenant::Organizations);
        assert_eq!(
            authority
                .tenant_endpoint("/oauth2/v2.0/devicecode")
                .unwrap()
                .as_str(),
            "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode"
        );
        assert!(
            Authority::adfs("https://adfs.contoso.com")
                .unwrap()
                .tenant_endpoint("x")
                .is_none()
        );
    }
}
