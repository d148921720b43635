//! Redirect URIs as Entra ID registers and matches them: which URIs an app may register,
//! whether a requested URI matches a registered one (loopback ports ignored, paths exact and
//! case-sensitive, a path-less URI standing for `/`), and the URL the browser is sent back
//! to with the answer's parameters in its query or fragment.

use url::Url;

/// The longest redirect URI accepted (Entra's limit is 256 characters for most
/// registrations; the emulator is more generous but still bounded).
pub(crate) const MAX_LEN: usize = 2048;

fn is_loopback_host(url: &Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1"))
}

/// Parses and checks a redirect URI to register: absolute, `https`, or `http` on
/// `localhost`/`127.0.0.1` only, no fragment, no user name or password, no wildcard.
/// Returns the normalized form (a path-less URI gets its `/`).
pub(crate) fn register(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.len() > MAX_LEN {
        return Err(format!(
            "a redirect URI is longer than {MAX_LEN} characters"
        ));
    }
    let url = Url::parse(text).map_err(|err| format!("'{text}' is not a URL ({err})"))?;
    check(&url).map_err(|problem| format!("the redirect URI '{text}' {problem}"))?;
    if text.contains('*') {
        return Err(format!(
            "the redirect URI '{text}' has a wildcard, which public and loopback registrations cannot have"
        ));
    }
    Ok(url.to_string())
}

fn check(url: &Url) -> Result<(), &'static str> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(url) => {}
        "http" => return Err("uses http, which Entra allows only for localhost and 127.0.0.1"),
        _ => return Err("is neither https nor loopback http"),
    }
    if url.fragment().is_some() {
        return Err("has a fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("has a user name or password");
    }
    Ok(())
}

/// A requested redirect URI, parsed; `None` when it cannot be one (not a URL, a fragment,
/// credentials, not https or loopback http, too long).
pub(crate) fn parse_requested(text: &str) -> Option<Url> {
    if text.len() > MAX_LEN {
        return None;
    }
    let url = Url::parse(text).ok()?;
    check(&url).ok()?;
    Some(url)
}

/// Whether `requested` matches the registered URI `registered` (its normalized text):
/// scheme and host equal, the port ignored for `localhost` and `127.0.0.1` (RFC 8252 §7.3,
/// as Entra does) and equal otherwise, the path exact and case-sensitive, the query equal.
pub(crate) fn matches(registered: &str, requested: &Url) -> bool {
    let Ok(registered) = Url::parse(registered) else {
        return false;
    };
    registered.scheme() == requested.scheme()
        && registered.host_str() == requested.host_str()
        && (is_loopback_host(requested)
            || registered.port_or_known_default() == requested.port_or_known_default())
        && registered.path() == requested.path()
        && registered.query() == requested.query()
}

/// `redirect` with `params` appended to its query (`response_mode=query`) or put in its
/// fragment (`response_mode=fragment`).
pub(crate) fn with_params(redirect: &Url, params: &[(&str, &str)], fragment: bool) -> String {
    let mut url = redirect.clone();
    if fragment {
        let encoded = serde_urlencoded::to_string(params).unwrap_or_default();
        url.set_fragment(Some(&encoded));
    } else {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(text: &str) -> Url {
        parse_requested(text).expect("a redirect URI")
    }

    #[test]
    fn loopback_ports_are_ignored_and_paths_are_exact() {
        let registered = register("http://localhost").expect("valid");
        assert_eq!(registered, "http://localhost/");
        assert!(matches(&registered, &requested("http://localhost:53117")));
        assert!(matches(&registered, &requested("http://localhost:53117/")));
        assert!(!matches(
            &registered,
            &requested("http://localhost:53117/x")
        ));
        assert!(!matches(&registered, &requested("http://127.0.0.1:53117/")));
        let with_path = register("http://localhost/Callback").expect("valid");
        assert!(matches(
            &with_path,
            &requested("http://localhost:8400/Callback")
        ));
        assert!(!matches(
            &with_path,
            &requested("http://localhost:8400/callback")
        ));
        assert!(!matches(
            &with_path,
            &requested("http://localhost:8400/Callback/")
        ));
    }

    #[test]
    fn other_hosts_keep_their_port() {
        let registered = register("https://app.example/cb").expect("valid");
        assert!(matches(
            &registered,
            &requested("https://app.example:443/cb")
        ));
        assert!(!matches(
            &registered,
            &requested("https://app.example:8443/cb")
        ));
        assert!(!matches(&registered, &requested("https://APP.example/CB")));
    }

    #[test]
    fn registrations_are_checked() {
        for bad in [
            "http://app.example/",
            "ftp://localhost/",
            "https://a.example/#x",
            "https://u:p@a.example/",
            "https://*.example/",
            "not a url",
        ] {
            assert!(register(bad).is_err(), "{bad}");
        }
        assert!(parse_requested("http://localhost/#frag").is_none());
        assert!(parse_requested("javascript:alert(1)").is_none());
    }

    #[test]
    fn answers_go_in_the_query_or_the_fragment() {
        let url = requested("http://localhost:1234/cb?keep=1");
        assert_eq!(
            with_params(&url, &[("code", "a b"), ("state", "s&t")], false),
            "http://localhost:1234/cb?keep=1&code=a+b&state=s%26t"
        );
        assert_eq!(
            with_params(&url, &[("code", "c")], true),
            "http://localhost:1234/cb?keep=1#code=c"
        );
    }
}
