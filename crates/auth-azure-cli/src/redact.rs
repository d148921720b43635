//! What of the Azure CLI's standard error may go into an error message: one line of text,
//! control characters gone, anything shaped like a token replaced, nothing after the word
//! `accessToken` (as azure-identity redacts), and a length cap.

/// What replaces a word that looks like a token.
const REDACTED: &str = "[redacted]";

/// A word of base64url characters at least this long is taken for a token (a GUID is 36).
const LONG_WORD: usize = 64;

/// `text` as one line for an error message: lines trimmed and joined, each line's `ERROR: `
/// prefix dropped, everything from `accessToken` on cut, token-like words replaced, at most
/// `max_chars` characters.
pub(crate) fn clean(text: &str, max_chars: usize) -> String {
    let (text, cut) = match find_ignoring_case(text, "accesstoken") {
        Some(position) => (&text[..position], true),
        None => (text, false),
    };
    let joined = text
        .lines()
        .map(|line| {
            let line = line.trim();
            line.strip_prefix("ERROR:").map_or(line, str::trim_start)
        })
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let printable: String = joined
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut cleaned = redact_tokens(&printable);
    if cut {
        if !cleaned.is_empty() {
            cleaned.push(' ');
        }
        cleaned.push_str("[the rest is not shown: it may hold a token]");
    }
    truncate(&cleaned, max_chars)
}

/// The first AADSTS code in `text` and Entra ID's sentence from it on (the rest of its
/// line), cleaned and capped at `max_chars`.
pub(crate) fn aadsts(text: &str, max_chars: usize) -> Option<(u32, String)> {
    let mut from = 0;
    while let Some(found) = text[from..].find("AADSTS") {
        let start = from + found;
        let digits: String = text[start + 6..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(code) = digits.parse::<u32>() {
            let line = text[start..].lines().next().unwrap_or_default();
            return Some((code, clean(line, max_chars)));
        }
        from = start + 6;
    }
    None
}

/// Replaces every word that looks like a token: a JWT (base64url JSON starts with `eyJ`), or
/// a long run of base64url characters.
fn redact_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let looks_like_token =
            (word.starts_with("eyJ") && word.len() >= 16) || word.len() >= LONG_WORD;
        out.push_str(if looks_like_token { REDACTED } else { word });
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '=') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The byte position of `needle` (ASCII, lower case) in `haystack`, ignoring case.
fn find_ignoring_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// At most `max_chars` characters, `…` marking a cut.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJhbmEifQ.c2lnbmF0dXJlLXZhbHVl";

    #[test]
    fn tokens_and_everything_after_access_token_are_not_shown() {
        let text = format!("ERROR: failed with {JWT} here\n  second line \n");
        assert_eq!(clean(&text, 500), "failed with [redacted] here second line");
        let text = r#"something {"accessToken": "opaque-secret", "tokenType": "Bearer"}"#;
        let cleaned = clean(text, 500);
        assert!(!cleaned.contains("opaque-secret"), "{cleaned}");
        assert!(cleaned.starts_with("something {\""), "{cleaned}");
        let long = "A".repeat(LONG_WORD);
        assert_eq!(clean(&format!("x {long} y"), 500), "x [redacted] y");
        let guid = "0b0b0b0b-1c1c-2d2d-3e3e-4f4f4f4f4f4f";
        assert!(clean(&format!("Trace ID: {guid}"), 500).contains(guid));
    }

    #[test]
    fn output_is_one_printable_line_within_the_cap() {
        assert_eq!(clean("a\u{1b}[31mred\u{7}\r\nb", 500), "a [31mred  b");
        assert_eq!(clean(&"é".repeat(10), 3), "ééé…");
        assert_eq!(clean("", 3), "");
    }

    #[test]
    fn the_aadsts_code_and_entra_s_line_are_found() {
        let text = format!(
            "ERROR: AADSTS70043: The refresh token has expired. Trace ID: 1 {JWT}\nInteractive authentication is needed. Please run:\naz login\n"
        );
        let (code, line) = aadsts(&text, 500).unwrap();
        assert_eq!(code, 70043);
        assert_eq!(
            line,
            "AADSTS70043: The refresh token has expired. Trace ID: 1 [redacted]"
        );
        assert_eq!(
            aadsts("AADSTS without a code, then AADSTS50076: MFA", 500)
                .unwrap()
                .0,
            50076
        );
        assert!(aadsts("no code here", 500).is_none());
        assert!(aadsts("AADSTS99999999999999: too long", 500).is_none());
    }
}
