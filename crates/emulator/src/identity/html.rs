//! What the emulator's HTML pages share (the device code verification page, the sign-in
//! page, its error page and the `form_post` answer): escaping, the style sheet, and the
//! headers that keep a page out of caches and out of other sites' frames.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse as _, Response};

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The one style sheet of every page.
pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:30em;margin:3em auto;padding:0 1em}\
label{display:block;margin:.8em 0}input{display:block;width:100%;padding:.4em;margin-top:.2em}\
button{margin:1em .5em 0 0;padding:.5em 1em}.error{color:#a4262c}.consent{border-left:3px solid #0078d4;padding-left:.8em}\
.detail{color:#605e5c;font-size:.85em;white-space:pre-wrap}";

/// A whole page: `title` and `body` (already HTML; escape what goes into it).
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} - d365 emulator</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    );
    with_no_store((status, Html(html)).into_response())
}

/// `Cache-Control: no-store`, and no framing by other sites (a sign-in page in a hidden
/// frame is how clickjacking starts), and no `Referer` carrying the page's query onwards.
pub(crate) fn with_no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_text_is_escaped() {
        assert_eq!(
            escape(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
