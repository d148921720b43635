//! Reading the server's `WWW-Authenticate` headers: which Windows schemes it offers, and
//! the NTLM challenge it answers with, within size limits.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;

/// The largest NTLM token read from a header (a challenge is a few hundred bytes).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The scheme to answer with: `NTLM` when offered (the token is plain NTLM), else
/// `Negotiate` (which takes NTLM inside it), else none.
pub(crate) fn offered_scheme(headers: &HeaderMap) -> Option<&'static str> {
    let schemes: Vec<String> = headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.split_whitespace().next())
        .map(str::to_ascii_lowercase)
        .collect();
    if schemes.iter().any(|scheme| scheme == "ntlm") {
        Some("NTLM")
    } else if schemes.iter().any(|scheme| scheme == "negotiate") {
        Some("Negotiate")
    } else {
        None
    }
}

/// The token of the `scheme` challenge (`WWW-Authenticate: NTLM <base64>`), decoded.
///
/// # Errors
///
/// What is wrong with it, without quoting it.
pub(crate) fn challenge_token(headers: &HeaderMap, scheme: &str) -> Result<Vec<u8>, String> {
    let value = headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let (name, token) = value.trim().split_once(' ')?;
            name.eq_ignore_ascii_case(scheme).then(|| token.trim())
        })
        .ok_or_else(|| {
            format!("the server answered the {scheme} negotiation without a challenge")
        })?;
    if value.len() > MAX_TOKEN_LEN * 4 / 3 + 4 {
        return Err(format!(
            "the server's {scheme} challenge is larger than {MAX_TOKEN_LEN} bytes"
        ));
    }
    STANDARD
        .decode(value)
        .map_err(|_| format!("the server's {scheme} challenge is not base64"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn schemes_and_challenges_are_read_within_limits() {
        assert_eq!(
            offered_scheme(&headers(&["Negotiate", "NTLM"])),
            Some("NTLM")
        );
        assert_eq!(offered_scheme(&headers(&["Negotiate"])), Some("Negotiate"));
        assert_eq!(
            offered_scheme(&headers(&["Bearer authorization_uri=x, resource_id=y"])),
            None
        );
        assert_eq!(
            challenge_token(&headers(&["NTLM AAEC"]), "NTLM").unwrap(),
            [0, 1, 2]
        );
        assert!(challenge_token(&headers(&["NTLM"]), "NTLM").is_err());
        assert!(challenge_token(&headers(&["NTLM !!!"]), "NTLM").is_err());
        let huge = format!("NTLM {}", "A".repeat(100_000));
        let error = challenge_token(&headers(&[&huge]), "NTLM").unwrap_err();
        assert!(error.contains("larger than"), "{error}");
    }
}
