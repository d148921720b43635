//! The pages the browser shows when it comes back to the loopback listener: signed in,
//! refused (with the identity provider's reason, escaped), or not this sign-in's answer.
//! They never show the code.

/// The page after a successful sign-in.
pub(crate) fn signed_in() -> String {
    page(
        "Signed in",
        "You are signed in to d365. You can close this tab and return to the program.",
        None,
    )
}

/// The page when the identity provider refused (or the person cancelled).
pub(crate) fn refused(error: &str, description: Option<&str>) -> String {
    let detail = match description {
        Some(description) => format!("{error}: {description}"),
        None => error.to_owned(),
    };
    let message = if error == "access_denied" {
        "The sign-in was cancelled. You can close this tab; the program says what to do next."
    } else {
        "The sign-in did not complete. You can close this tab; the program says what to do next."
    };
    page("Sign-in not completed", message, Some(&detail))
}

/// The page for a request that is not this sign-in's answer.
pub(crate) fn not_this(reason: &str) -> String {
    page(
        "Not a sign-in answer",
        "This address waits for one sign-in's answer, and this request is not it.",
        Some(reason),
    )
}

fn page(title: &str, message: &str, detail: Option<&str>) -> String {
    let detail = detail
        .map(|detail| format!("<p><code>{}</code></p>", escape(&truncate(detail, 500))))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title} · d365</title><style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}}code{{white-space:pre-wrap;word-break:break-word}}</style></head><body><h1>{title}</h1><p>{message}</p>{detail}</body></html>",
        title = escape(title),
        message = escape(message),
    )
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// HTML-escapes text for element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_providers_words_are_escaped() {
        let page = refused("invalid_request", Some("<script>alert(1)</script> & more"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
        assert!(refused("access_denied", None).contains("cancelled"));
        assert!(signed_in().contains("close this tab"));
    }
}
