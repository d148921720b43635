//! Where a managed identity's tokens come from: [`ManagedIdentitySource`] — the instance
//! metadata endpoint (IMDS) of VMs, scale sets and AKS nodes, or the local identity
//! endpoint of App Service and Functions — found in the environment as azure-identity finds
//! it, and the URL rules these endpoints follow.

use std::fmt;
use std::net::IpAddr;

use d365_auth_core::ConfigError;
use http::HeaderValue;
use secrecy::{ExposeSecret as _, SecretString};
use url::{Host, Url};

/// The instance metadata service (IMDS) of Azure VMs, scale sets and AKS nodes: a
/// link-local address every Azure host answers on, in plain http, never through a proxy.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// App Service, Functions and Container Apps: the local endpoint that issues tokens.
pub(crate) const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
/// App Service, Functions and Container Apps: the secret the endpoint expects back, rotated
/// by the platform.
pub(crate) const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
/// azure-identity's override of the IMDS host (AAD Pod Identity, tests).
pub(crate) const POD_IDENTITY_AUTHORITY_HOST: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
/// Set beside `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` on Service Fabric.
const SERVICE_FABRIC_THUMBPRINT: &str = "IDENTITY_SERVER_THUMBPRINT";
/// Set beside `IDENTITY_ENDPOINT` (without `IDENTITY_HEADER`) on Azure Arc servers.
const ARC_IMDS_ENDPOINT: &str = "IMDS_ENDPOINT";

/// The path of the token endpoint below the IMDS host.
pub(crate) const IMDS_TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

/// Where a managed identity's tokens come from.
///
/// Find it where the program runs with [`from_environment`](Self::from_environment) (as
/// azure-identity does), or name it: [`imds`](Self::imds) for VMs, scale sets and AKS, or
/// the `AppService` variant with the endpoint and header App Service gives the program.
///
/// `Debug` never shows the App Service header, which is a secret.
///
/// # Examples
///
/// ```
/// use d365_auth_managed_identity::ManagedIdentitySource;
///
/// let variables = [
///     ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
///     ("IDENTITY_HEADER", "a-rotated-secret"),
/// ];
/// let lookup = |name: &str| {
///     variables.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
/// };
/// let source = ManagedIdentitySource::from_variables(lookup)?;
/// assert_eq!(source.kind(), "app-service");
/// assert_eq!(source.endpoint().as_str(), "http://127.0.0.1:41741/msi/token");
/// assert!(!format!("{source:?}").contains("a-rotated-secret"));
///
/// let nothing_set = ManagedIdentitySource::from_variables(|_| None)?;
/// assert_eq!(nothing_set.endpoint().as_str(), "http://169.254.169.254/");
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum ManagedIdentitySource {
    /// App Service, Functions, Container Apps: `GET {endpoint}?api-version=2019-08-01&resource=…`
    /// with the header `X-IDENTITY-HEADER: {header}`.
    AppService {
        /// The token endpoint (`IDENTITY_ENDPOINT`), such as
        /// `http://127.0.0.1:41741/msi/token`.
        endpoint: Url,
        /// The value of `X-IDENTITY-HEADER` (`IDENTITY_HEADER`): a secret the platform
        /// rotates, never shown.
        header: SecretString,
    },
    /// The instance metadata service of VMs, scale sets and AKS nodes:
    /// `GET {endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
    /// with the header `Metadata: true`.
    Imds {
        /// The host, [`IMDS_ENDPOINT`] unless overridden
        /// (`AZURE_POD_IDENTITY_AUTHORITY_HOST`, a local endpoint for tests).
        endpoint: Url,
    },
}

impl ManagedIdentitySource {
    /// The instance metadata service at [`IMDS_ENDPOINT`].
    #[must_use]
    pub fn imds() -> Self {
        Self::Imds {
            endpoint: Url::parse(IMDS_ENDPOINT).expect("the IMDS address is a URL"),
        }
    }

    /// The source where the program runs, from the process environment: see
    /// [`from_variables`](Self::from_variables).
    ///
    /// # Errors
    ///
    /// As for [`from_variables`](Self::from_variables).
    pub fn from_environment() -> Result<Self, ConfigError> {
        Self::from_variables(|name| std::env::var(name).ok())
    }

    /// The source the variables describe, read through `lookup` (a name → its value; empty
    /// values count as unset), in azure-identity's order:
    ///
    /// 1. `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`: App Service, Functions, Container Apps;
    /// 2. `AZURE_POD_IDENTITY_AUTHORITY_HOST`: IMDS at that host;
    /// 3. otherwise IMDS at [`IMDS_ENDPOINT`].
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the variable: an endpoint that is not a usable URL, one of
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` without the other, or the variables of a
    /// managed identity this crate does not support (Service Fabric, Azure Arc).
    pub fn from_variables(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        detect(&lookup).map(|detected| detected.source)
    }

    /// `app-service` or `imds`: the kind of endpoint, for logs and cache keys.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AppService { .. } => "app-service",
            Self::Imds { .. } => "imds",
        }
    }

    /// The endpoint: App Service's token endpoint, or the IMDS host.
    #[must_use]
    pub fn endpoint(&self) -> &Url {
        match self {
            Self::AppService { endpoint, .. } | Self::Imds { endpoint } => endpoint,
        }
    }
}

impl Default for ManagedIdentitySource {
    fn default() -> Self {
        Self::imds()
    }
}

impl fmt::Debug for ManagedIdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AppService { endpoint, .. } => f
                .debug_struct("AppService")
                .field("endpoint", &shown_url(endpoint))
                .field("header", &"[redacted]")
                .finish(),
            Self::Imds { endpoint } => f
                .debug_struct("Imds")
                .field("endpoint", &shown_url(endpoint))
                .finish(),
        }
    }
}

/// A source found in the environment, and whether the IMDS endpoint should be probed
/// before the first token request (not when `AZURE_POD_IDENTITY_AUTHORITY_HOST` declares
/// it, as azure-identity does: AAD Pod Identity may be slow to answer the first time).
#[derive(Clone, Debug)]
pub(crate) struct Detected {
    pub(crate) source: ManagedIdentitySource,
    pub(crate) probe: bool,
}

/// Finds the source the variables describe; see [`ManagedIdentitySource::from_variables`].
pub(crate) fn detect(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Detected, ConfigError> {
    let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    match (var(IDENTITY_ENDPOINT), var(IDENTITY_HEADER)) {
        (Some(endpoint), Some(header)) => {
            if var(SERVICE_FABRIC_THUMBPRINT).is_some() {
                return Err(unsupported(
                    IDENTITY_ENDPOINT,
                    "IDENTITY_SERVER_THUMBPRINT is set too: this is a Service Fabric managed identity, which d365 does not support",
                ));
            }
            let endpoint = endpoint_url(&endpoint, IDENTITY_ENDPOINT)?;
            let header = SecretString::from(header);
            header_value(&header, IDENTITY_HEADER)?;
            Ok(Detected {
                source: ManagedIdentitySource::AppService { endpoint, header },
                probe: false,
            })
        }
        (Some(_), None) if var(ARC_IMDS_ENDPOINT).is_some() => Err(unsupported(
            IDENTITY_ENDPOINT,
            "IMDS_ENDPOINT is set too, without IDENTITY_HEADER: this is an Azure Arc server's managed identity, which d365 does not support",
        )),
        (Some(_), None) => Err(ConfigError::Missing {
            setting: IDENTITY_HEADER,
            fix: "App Service and Functions set IDENTITY_ENDPOINT and IDENTITY_HEADER together; set both, or neither to use the instance metadata endpoint".to_owned(),
        }),
        (None, Some(_)) => Err(ConfigError::Missing {
            setting: IDENTITY_ENDPOINT,
            fix: "App Service and Functions set IDENTITY_ENDPOINT and IDENTITY_HEADER together; set both, or neither to use the instance metadata endpoint".to_owned(),
        }),
        (None, None) => match var(POD_IDENTITY_AUTHORITY_HOST) {
            Some(host) => Ok(Detected {
                source: ManagedIdentitySource::Imds {
                    endpoint: endpoint_url(&host, POD_IDENTITY_AUTHORITY_HOST)?,
                },
                probe: false,
            }),
            None => Ok(Detected {
                source: ManagedIdentitySource::imds(),
                probe: true,
            }),
        },
    }
}

fn unsupported(setting: &'static str, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        setting,
        problem: problem.to_owned(),
        fix: "use the client credentials grant with a certificate or a federated token there, or run where App Service or the instance metadata endpoint issues tokens".to_owned(),
    }
}

/// An endpoint URL as configuration gives it — the IMDS host (`http://169.254.169.254`,
/// `http://127.0.0.1:50342`) or App Service's token endpoint
/// (`http://127.0.0.1:41741/msi/token`) — checked with [`check_endpoint`].
pub(crate) fn endpoint_url(input: &str, setting: &'static str) -> Result<Url, ConfigError> {
    let url = parse(input, setting)?;
    check_endpoint(&url, setting)?;
    Ok(url)
}

fn parse(input: &str, setting: &'static str) -> Result<Url, ConfigError> {
    Url::parse(input.trim()).map_err(|error| ConfigError::Invalid {
        setting,
        // The input is not echoed: a mistyped value may be something else entirely.
        problem: format!("the value is not an absolute URL ({error})"),
        fix: "write the URL in full, such as http://169.254.169.254 or http://127.0.0.1:41741/msi/token".to_owned(),
    })
}

/// The rules every managed identity endpoint follows: `http` or `https`, a host, no user
/// name or password, no query or fragment (the grant adds the query), and plain `http` only
/// to an address on this host or its network — loopback, link-local (IMDS), private
/// (RFC 1918, IPv6 unique local) or `localhost` — since these endpoints are plain http on
/// the host, and an answer carries a token.
pub(crate) fn check_endpoint(url: &Url, setting: &'static str) -> Result<(), ConfigError> {
    let origin = origin(url);
    let invalid = |problem: String, fix: &str| ConfigError::Invalid {
        setting,
        problem,
        fix: fix.to_owned(),
    };
    if url.host().is_none() {
        return Err(invalid(
            "the URL has no host".to_owned(),
            "write the URL in full, such as http://169.254.169.254",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            format!("`{origin}` contains a user name or password"),
            "remove them: a managed identity endpoint takes no credentials in its URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            format!("`{origin}` has a query string or fragment"),
            "remove everything from `?` or `#` on: the grant adds the query itself",
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_host_local(url) => Ok(()),
        "http" => Err(invalid(
            format!(
                "`{origin}` uses plain http to a host that is neither on this machine nor on its network"
            ),
            "use https://, or the address of the endpoint on this host (loopback, link-local or a private address)",
        )),
        other => Err(invalid(
            format!("the scheme `{other}` is not http or https"),
            "write the URL in full, such as http://169.254.169.254",
        )),
    }
}

/// A URL as `Debug` shows it: without a user name or password (which `build` refuses, but
/// a source may be made by hand), and without a query.
pub(crate) fn shown_url(url: &Url) -> String {
    format!("{}{}", origin(url), url.path())
}

/// A URL given as text, as `Debug` shows it: see [`shown_url`].
pub(crate) fn shown_text_url(input: &str) -> String {
    Url::parse(input.trim()).map_or_else(|_| "(not a URL)".to_owned(), |url| shown_url(&url))
}

/// `scheme://host[:port]`, without credentials, for messages.
fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// Whether the host is on this machine or its network: where plain http stays.
fn is_host_local(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => is_local_ip(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_local_ip(IpAddr::V6(ip)),
        None => false,
    }
}

fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_link_local() || ip.is_private(),
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return is_local_ip(IpAddr::V4(mapped));
            }
            let first = ip.segments()[0];
            ip.is_loopback()
                // fc00::/7, unique local addresses
                || first & 0xfe00 == 0xfc00
                // fe80::/10, link-local addresses
                || first & 0xffc0 == 0xfe80
        }
    }
}

/// The App Service header as an HTTP header value, marked sensitive so that `http` and
/// reqwest never show it.
pub(crate) fn header_value(
    header: &SecretString,
    setting: &'static str,
) -> Result<HeaderValue, ConfigError> {
    let text = header.expose_secret().trim();
    if text.is_empty() {
        return Err(ConfigError::Missing {
            setting,
            fix: "give the value App Service sets in IDENTITY_HEADER".to_owned(),
        });
    }
    let mut value = HeaderValue::from_str(text).map_err(|_| ConfigError::Invalid {
        setting,
        // The value is a secret: never shown.
        problem: "the value holds characters an HTTP header cannot carry".to_owned(),
        fix: "give the value App Service sets in IDENTITY_HEADER, unchanged".to_owned(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_stays_on_the_host_or_its_network() {
        for local in [
            "http://169.254.169.254",
            "http://127.0.0.1:41741/msi/token",
            "http://localhost:8081/msi/token",
            "http://10.0.0.4:2579",
            "http://192.168.1.2",
            "http://[::1]:50342",
            "http://[fe80::1]",
            "http://[fd00::1]",
            "https://identity.example.com/token",
        ] {
            assert!(
                check_endpoint(&Url::parse(local).unwrap(), "endpoint").is_ok(),
                "{local}"
            );
        }
        for remote in [
            "http://identity.example.com/token",
            "http://8.8.8.8",
            "http://[2001:db8::1]",
            "ftp://127.0.0.1",
        ] {
            assert!(
                check_endpoint(&Url::parse(remote).unwrap(), "endpoint").is_err(),
                "{remote}"
            );
        }
    }
}
