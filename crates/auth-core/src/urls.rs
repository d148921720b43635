//! URL checks every endpoint shares: absolute, a host, https unless loopback, no
//! credentials, no query.

use url::Url;

use crate::error::{ConfigError, describe_input};

pub(crate) fn parse_url(input: &str, what: &'static str) -> Result<Url, ConfigError> {
    let trimmed = input.trim();
    Url::parse(trimmed).map_err(|error| match error {
        url::ParseError::EmptyHost => ConfigError::MissingHost {
            what,
            scheme: trimmed.split(':').next().unwrap_or_default().to_owned(),
        },
        other => ConfigError::NotAUrl {
            what,
            input: describe_input(trimmed),
            reason: other.to_string(),
        },
    })
}

/// Validates the parts every endpoint URL shares (scheme, host, no credentials, no query)
/// and returns `scheme://host[:port]` with the host in lower case.
pub(crate) fn checked_origin(url: &Url, what: &'static str) -> Result<String, ConfigError> {
    let Some(host) = url.host_str().filter(|host| !host.is_empty()) else {
        return Err(ConfigError::MissingHost {
            what,
            scheme: url.scheme().to_owned(),
        });
    };
    let origin = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::CredentialsInUrl { what, origin });
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(host) => {}
        "http" => return Err(ConfigError::InsecureHttp { what, origin }),
        other => {
            return Err(ConfigError::UnsupportedScheme {
                what,
                scheme: other.to_owned(),
            });
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::QueryOrFragment { what, origin });
    }
    Ok(origin)
}

/// Whether `host` (as `Url::host_str` gives it) is a loopback name or address, where plain
/// `http` is allowed because the traffic never leaves the machine.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
