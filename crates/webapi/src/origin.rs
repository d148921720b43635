//! The one judge of "is this URL on the organization": a bearer token goes only to the
//! organization's origin (scheme, host and port). Every URL the client sends a request to
//! is an [`OrgUrl`], and [`OrgUrl`]s are made here alone, by [`resolve`] — relative paths,
//! absolute URLs, `@odata.nextLink`s, FetchXML pages, `$batch` parts and follow-ups alike.
//!
//! The reference is parsed by `url::Url` against the API root, never compared as a string:
//! the parser already normalizes what attackers use to confuse string checks (scheme case,
//! surrounding spaces, backslashes, scheme-relative `//host`, percent-encoded hosts, IDN),
//! so what is compared is what `reqwest` would connect to.

use std::fmt;

use url::Url;

use crate::error::WebApiError;

/// A URL checked to be on the organization: the only kind of URL a request is sent to.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct OrgUrl(Url);

impl OrgUrl {
    /// The checked URL.
    pub(crate) fn as_url(&self) -> &Url {
        &self.0
    }

    /// The URL as text.
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The path and query (`/api/data/v9.2/accounts?$top=1`), for a `$batch` part.
    pub(crate) fn path_and_query(&self) -> &str {
        &self.0[url::Position::BeforePath..url::Position::AfterQuery]
    }
}

impl fmt::Display for OrgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for OrgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

/// Resolves `reference` — a path relative to the API root (`accounts?$top=1`), a path from
/// the organization's root (`/api/data/v9.2/accounts`, or `api/data/v9.0/accounts` without
/// the slash: any version, never doubled; other rooted paths such as `/accounts` are read
/// as relative to the API root), or an absolute URL such as an `@odata.nextLink` — and
/// refuses anything that is not on the organization.
///
/// # Errors
///
/// [`WebApiError::ForeignUrl`] naming the other origin; [`WebApiError::InvalidInput`] for a
/// reference with control characters or credentials, or one that is not a URL at all.
pub(crate) fn resolve(api_root: &Url, reference: &str) -> Result<OrgUrl, WebApiError> {
    if let Some(control) = reference.chars().find(|c| c.is_control()) {
        return Err(WebApiError::InvalidInput(format!(
            "the URL {reference:?} contains the control character {control:?}: it is refused (a link from the server or an argument was tampered with)"
        )));
    }
    // `api/data/v9.2/accounts` names the API from the organization's root, as its rooted
    // form does: joined as a relative path it would be doubled under the API root.
    let rooted;
    let reference = if reference.trim_start().starts_with("api/data/") {
        rooted = format!("/{}", reference.trim_start());
        rooted.as_str()
    } else {
        reference
    };
    let joined = join(api_root, reference)?;
    let api_prefix = api_prefix(api_root);
    let organization_path = api_prefix.trim_end_matches("/api/");
    let joined = if !is_rooted_path(reference) || is_under(&joined, api_prefix) {
        joined
    } else {
        let relative = reference
            .trim_start()
            .trim_start_matches(['/', '\\'].as_slice());
        if !organization_path.is_empty() && is_under(&joined, "/api/") {
            // `/api/data/…` on an on-premises organization means its own `/{org}/api/…`.
            join(api_root, &format!("{organization_path}/{relative}"))?
        } else {
            // `/accounts` means the API's `accounts`, as `az rest`-style tools read it.
            join(api_root, relative)?
        }
    };
    on_organization(api_root, joined)
}

/// The judge: `url` is on the organization when its origin (scheme, host, port) is the API
/// root's, and it carries no user name or password (`reqwest` would turn those into an
/// `Authorization` header of their own).
fn on_organization(api_root: &Url, url: Url) -> Result<OrgUrl, WebApiError> {
    if url.origin() != api_root.origin() {
        return Err(WebApiError::ForeignUrl {
            found: origin_text(&url),
            organization: origin_text(api_root),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebApiError::InvalidInput(format!(
            "the URL for {} carries a user name or password: it is refused (d365 authenticates with the organization's token only)",
            origin_text(&url)
        )));
    }
    Ok(OrgUrl(url))
}

fn join(api_root: &Url, reference: &str) -> Result<Url, WebApiError> {
    api_root.join(reference).map_err(|error| {
        WebApiError::InvalidInput(format!(
            "{reference:?} is not a Web API path or URL: {error}"
        ))
    })
}

/// `/x` or `\x` (after leading spaces), but not the scheme-relative `//host`.
fn is_rooted_path(reference: &str) -> bool {
    let mut chars = reference.trim_start().chars();
    matches!(chars.next(), Some('/' | '\\')) && !matches!(chars.next(), Some('/' | '\\'))
}

/// The path of the API root up to its `/api/`: `/api/`, or `/Contoso/api/` for an
/// on-premises organization.
fn api_prefix(api_root: &Url) -> &str {
    let path = api_root.path();
    path.find("/api/")
        .map_or("/api/", |at| &path[..at + "/api/".len()])
}

fn is_under(url: &Url, prefix: &str) -> bool {
    url.path().starts_with(prefix)
}

/// `scheme://host[:port]`, the port shown only when it is not the scheme's default; a URL
/// without a host (`file:`, `javascript:`) as it is, cut at 100 characters.
fn origin_text(url: &Url) -> String {
    match url.host_str() {
        Some(host) => match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        },
        None => url.as_str().chars().take(100).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "https://contoso.crm.dynamics.com/api/data/v9.2/";

    /// What a reference must come to.
    enum Expect {
        /// Refused, naming this origin.
        Foreign(&'static str),
        /// Refused as malformed (control characters, credentials).
        Invalid,
        /// Accepted as this URL.
        On(&'static str),
    }
    use Expect::{Foreign, Invalid, On};

    /// Hostile forms first (each one reached another host on the old string check), then
    /// the forms that must keep working.
    const CASES: &[(&str, Expect)] = &[
        ("HTTP://evil.example/x", Foreign("http://evil.example")),
        ("Http://evil.example/x", Foreign("http://evil.example")),
        ("HTTPS://evil.example/x", Foreign("https://evil.example")),
        (" https://evil.example/x", Foreign("https://evil.example")),
        ("\thttps://evil.example/x", Invalid),
        ("https://evil.example/x\n", Invalid),
        ("https://ev\u{0}il.example/", Invalid),
        ("http:\\\\evil.example\\x", Foreign("http://evil.example")),
        ("https:\\\\evil.example\\x", Foreign("https://evil.example")),
        ("\\\\evil.example\\x", Foreign("https://evil.example")),
        ("/\\evil.example/x", Foreign("https://evil.example")),
        ("\\/evil.example/x", Foreign("https://evil.example")),
        ("//evil.example/x", Foreign("https://evil.example")),
        (" //evil.example/x", Foreign("https://evil.example")),
        (
            "https://contoso.crm.dynamics.com@evil.example/",
            Foreign("https://evil.example"),
        ),
        (
            "https://contoso.crm.dynamics.com:443@evil.example/",
            Foreign("https://evil.example"),
        ),
        (
            "https://evil.example#@contoso.crm.dynamics.com/",
            Foreign("https://evil.example"),
        ),
        (
            "https://evil.example\\@contoso.crm.dynamics.com/",
            Foreign("https://evil.example"),
        ),
        ("https://evil%2Eexample/x", Foreign("https://evil.example")),
        (
            "https://contoso.crm.dynamics.com.evil.example/",
            Foreign("https://contoso.crm.dynamics.com.evil.example"),
        ),
        (
            "https://contoso.crm.dynamics.com./api/data/v9.2/",
            Foreign("https://contoso.crm.dynamics.com."),
        ),
        (
            "https://contоso.crm.dynamics.com/",
            Foreign("https://xn--contso-zqf.crm.dynamics.com"),
        ),
        (
            "https://contoso.crm.dynamics.com:444/api/data/v9.2/",
            Foreign("https://contoso.crm.dynamics.com:444"),
        ),
        (
            "http://contoso.crm.dynamics.com/api/data/v9.2/",
            Foreign("http://contoso.crm.dynamics.com"),
        ),
        (
            "https://fabrikam.crm.dynamics.com/api/data/v9.2/accounts",
            Foreign("https://fabrikam.crm.dynamics.com"),
        ),
        (
            "https://contoso.crm4.dynamics.com/api/data/v9.2/",
            Foreign("https://contoso.crm4.dynamics.com"),
        ),
        (
            "ftp://contoso.crm.dynamics.com/",
            Foreign("ftp://contoso.crm.dynamics.com"),
        ),
        ("file:///etc/passwd", Foreign("file:///etc/passwd")),
        ("javascript:alert(1)", Foreign("javascript:alert(1)")),
        ("https://[::1]/", Foreign("https://[::1]")),
        ("https://127.0.0.1/", Foreign("https://127.0.0.1")),
        ("https://0x7f.0.0.1/", Foreign("https://127.0.0.1")),
        (
            "https://user:pass@contoso.crm.dynamics.com/api/data/v9.2/",
            Invalid,
        ),
        (
            "https://user@contoso.crm.dynamics.com/api/data/v9.2/",
            Invalid,
        ),
        // The organization itself, however it is spelled.
        (
            "accounts?$top=1",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$top=1"),
        ),
        (
            "/accounts",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/accounts"),
        ),
        (
            "\\accounts",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/accounts"),
        ),
        (
            "/api/data/v9.2/accounts",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/accounts"),
        ),
        (
            "/api/data/v9.1/accounts",
            On("https://contoso.crm.dynamics.com/api/data/v9.1/accounts"),
        ),
        // Without the leading slash, the prefix is not doubled, whatever the version.
        (
            "api/data/v9.2/accounts?$top=1",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$top=1"),
        ),
        (
            "api/data/v9.0/WhoAmI",
            On("https://contoso.crm.dynamics.com/api/data/v9.0/WhoAmI"),
        ),
        (
            "HTTPS://CONTOSO.crm.dynamics.com/api/data/v9.2/accounts",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/accounts"),
        ),
        (
            "https://contoso.crm.dynamics.com:443/api/data/v9.2/x",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/x"),
        ),
        (
            "https://contoso%2Ecrm.dynamics.com/api/data/v9.2/x",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/x"),
        ),
        (
            "https://contoso.crm.dynamics.com\\api\\data\\v9.2\\x",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/x"),
        ),
        (
            "//contoso.crm.dynamics.com/api/data/v9.2/x",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/x"),
        ),
        (
            "https:%2F%2Fevil.example/x",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/%2F%2Fevil.example/x"),
        ),
        (
            "http%3A%2F%2Fevil.example",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/http%3A%2F%2Fevil.example"),
        ),
        (
            "https:evil.example/x",
            On("https://contoso.crm.dynamics.com/api/data/v9.2/evil.example/x"),
        ),
        (
            "accounts?$skiptoken=%3Ccookie%20pagenumber=%222%22/%3E",
            On(
                "https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=%3Ccookie%20pagenumber=%222%22/%3E",
            ),
        ),
    ];

    #[test]
    fn only_the_organization_origin_is_accepted() {
        let api_root = Url::parse(ORG).unwrap();
        let hostile = CASES
            .iter()
            .filter(|(_, expect)| !matches!(expect, On(_)))
            .count();
        assert!(hostile >= 20, "at least 20 hostile forms: {hostile}");
        for (reference, expect) in CASES {
            let outcome = resolve(&api_root, reference);
            match (expect, outcome) {
                (
                    Foreign(origin),
                    Err(WebApiError::ForeignUrl {
                        found,
                        organization,
                    }),
                ) => {
                    assert_eq!(found, *origin, "{reference:?}");
                    assert_eq!(organization, "https://contoso.crm.dynamics.com");
                }
                (Invalid, Err(WebApiError::InvalidInput(message))) => {
                    assert!(!message.is_empty(), "{reference:?}");
                }
                (On(url), Ok(resolved)) => assert_eq!(resolved.as_str(), *url, "{reference:?}"),
                (_, other) => panic!("{reference:?}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn a_loopback_organization_keeps_its_port() {
        let api_root = Url::parse("http://127.0.0.1:8080/api/data/v9.2/").unwrap();
        assert!(resolve(&api_root, "http://127.0.0.1:8080/api/data/v9.2/WhoAmI").is_ok());
        for other in [
            "http://127.0.0.1:8081/api/data/v9.2/WhoAmI",
            "http://localhost:8080/api/data/v9.2/WhoAmI",
            "https://127.0.0.1:8080/api/data/v9.2/WhoAmI",
            "http://[::1]:8080/api/data/v9.2/WhoAmI",
        ] {
            assert!(
                matches!(
                    resolve(&api_root, other),
                    Err(WebApiError::ForeignUrl { .. })
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn an_on_premises_organization_keeps_its_path() {
        let api_root = Url::parse("https://crm.contoso.com:444/Contoso/api/data/v8.2/").unwrap();
        for (reference, expected) in [
            (
                "accounts",
                "https://crm.contoso.com:444/Contoso/api/data/v8.2/accounts",
            ),
            (
                "/accounts",
                "https://crm.contoso.com:444/Contoso/api/data/v8.2/accounts",
            ),
            (
                "/Contoso/api/data/v8.2/WhoAmI",
                "https://crm.contoso.com:444/Contoso/api/data/v8.2/WhoAmI",
            ),
            (
                "/api/data/v8.2/WhoAmI",
                "https://crm.contoso.com:444/Contoso/api/data/v8.2/WhoAmI",
            ),
            (
                "api/data/v8.2/WhoAmI",
                "https://crm.contoso.com:444/Contoso/api/data/v8.2/WhoAmI",
            ),
            (
                "https://crm.contoso.com:444/Contoso/api/data/v8.2/accounts?$skiptoken=2",
                "https://crm.contoso.com:444/Contoso/api/data/v8.2/accounts?$skiptoken=2",
            ),
        ] {
            assert_eq!(
                resolve(&api_root, reference).unwrap().as_str(),
                expected,
                "{reference}"
            );
        }
        assert!(resolve(&api_root, "https://crm.contoso.com/Contoso/api/data/v8.2/x").is_err());
    }

    #[test]
    fn the_error_names_the_foreign_host() {
        let api_root = Url::parse(ORG).unwrap();
        let error = resolve(&api_root, "HTTP://evil.example:8443/steal").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("http://evil.example:8443"), "{text}");
        assert!(text.contains("https://contoso.crm.dynamics.com"), "{text}");
    }
}
