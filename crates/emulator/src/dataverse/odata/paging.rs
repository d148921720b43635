//! Paging cookies. Dataverse pages by the sort key and the primary id of the last row of a
//! page (keyset paging), so rows inserted between pages are neither skipped nor repeated. The
//! cookie travels in two forms that clients must pass back untouched:
//!
//! - OData: `$skiptoken=<cookie pagenumber="2" pagingcookie="%3ccookie…" istracking="False" />`,
//!   URL-encoded in `@odata.nextLink` (so the inner cookie shows as `%253c…`);
//! - FetchXML: the `fetchxmlpagingcookie` annotation, inner cookie encoded twice.

use rusqlite::types::Value as Sql;

use super::{percent_decode, percent_encode};
use crate::dataverse::errors::{ApiError, ApiResult};

/// Where the previous page ended: the value of each sort property on its last row (the
/// primary id last), `None` for null.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cursor {
    pub(crate) page: u32,
    pub(crate) values: Vec<(String, Option<String>)>,
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The text form of a stored value in a cookie.
pub(crate) fn cookie_value(value: &Sql) -> Option<String> {
    match value {
        Sql::Null => None,
        Sql::Integer(i) => Some(i.to_string()),
        Sql::Real(r) => Some(r.to_string()),
        Sql::Text(t) => Some(t.clone()),
        Sql::Blob(_) => None,
    }
}

/// `<cookie page="1"><name last="…" /><accountid last="{…}" first="{…}" /></cookie>`.
pub(crate) fn inner_cookie(
    page: u32,
    cursor: &[(String, Option<String>)],
    first_id: Option<&str>,
) -> String {
    let mut text = format!("<cookie page=\"{page}\">");
    let count = cursor.len();
    for (index, (name, value)) in cursor.iter().enumerate() {
        let is_id = index + 1 == count;
        text.push('<');
        text.push_str(name);
        if let Some(value) = value {
            let shown = if is_id {
                format!("{{{}}}", value.to_ascii_uppercase())
            } else {
                value.clone()
            };
            text.push_str(&format!(" last=\"{}\"", escape_attribute(&shown)));
        }
        if is_id && let Some(first) = first_id {
            text.push_str(&format!(" first=\"{{{}}}\"", first.to_ascii_uppercase()));
        }
        text.push_str(" />");
    }
    text.push_str("</cookie>");
    text
}

/// The decoded `$skiptoken` value.
pub(crate) fn skiptoken(next_page: u32, inner: &str) -> String {
    format!(
        "<cookie pagenumber=\"{next_page}\" pagingcookie=\"{}\" istracking=\"False\" />",
        percent_encode(inner, b"", false)
    )
}

/// How the `$skiptoken` appears in `@odata.nextLink`.
pub(crate) fn skiptoken_in_url(token: &str) -> String {
    percent_encode(token, b"=/", true)
}

/// The `fetchxmlpagingcookie` annotation value.
pub(crate) fn fetch_annotation(next_page: u32, inner: &str) -> String {
    let once = percent_encode(inner, b"", false);
    format!(
        "<cookie pagenumber=\"{next_page}\" pagingcookie=\"{}\" istracking=\"False\" />",
        percent_encode(&once, b"", false)
    )
}

fn invalid_token() -> ApiError {
    ApiError::bad_request(
        "0x80040203",
        "The $skiptoken is not valid: pass @odata.nextLink back exactly as it was received.",
    )
}

/// Reads a `$skiptoken` (already URL-decoded once by the query parser).
pub(crate) fn parse_skiptoken(token: &str) -> ApiResult<Cursor> {
    let document = roxmltree::Document::parse(token).map_err(|_| invalid_token())?;
    let root = document.root_element();
    if root.tag_name().name() != "cookie" {
        return Err(invalid_token());
    }
    let inner = root.attribute("pagingcookie").ok_or_else(invalid_token)?;
    let page: u32 = root
        .attribute("pagenumber")
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid_token)?;
    let mut cursor = parse_inner(&percent_decode(inner, false)).ok_or_else(invalid_token)?;
    cursor.page = page.saturating_sub(1);
    Ok(cursor)
}

/// Reads an inner cookie (`<cookie page="1">…</cookie>`), as FetchXML's `paging-cookie`.
pub(crate) fn parse_inner(text: &str) -> Option<Cursor> {
    let document = roxmltree::Document::parse(text).ok()?;
    let root = document.root_element();
    if root.tag_name().name() != "cookie" {
        return None;
    }
    let page = root
        .attribute("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let values: Vec<(String, Option<String>)> = root
        .children()
        .filter(roxmltree::Node::is_element)
        .map(|node| {
            let value = node
                .attribute("last")
                .map(|v| v.trim_start_matches('{').trim_end_matches('}').to_owned());
            (node.tag_name().name().to_owned(), value)
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    let count = values.len();
    let values = values
        .into_iter()
        .enumerate()
        .map(|(i, (name, value))| {
            // The primary id is shown as {UPPER-CASE}; it is stored lower-case.
            let value = if i + 1 == count {
                value.map(|v| v.to_ascii_lowercase())
            } else {
                value
            };
            (name, value)
        })
        .collect();
    Some(Cursor { page, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skiptoken_matches_dataverse_and_round_trips() {
        let cursor = vec![
            ("name".to_owned(), Some("A & \"B\"".to_owned())),
            (
                "accountid".to_owned(),
                Some("6c1d2e3f-0000-0000-0000-00000000a001".to_owned()),
            ),
        ];
        let inner = inner_cookie(1, &cursor, Some("6c1d2e3f-0000-0000-0000-00000000a000"));
        assert!(inner.starts_with("<cookie page=\"1\"><name last=\"A &amp; &quot;B&quot;\" />"));
        let token = skiptoken(2, &inner);
        let url = skiptoken_in_url(&token);
        assert!(url.starts_with("%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221%2522%253e"), "{url}");
        assert!(
            url.ends_with("%22%20istracking=%22False%22%20/%3E"),
            "{url}"
        );
        let parsed = parse_skiptoken(&percent_decode(&url, true)).expect("round trip");
        assert_eq!(parsed.page, 1);
        assert_eq!(parsed.values, cursor);
        // A client that re-encodes the link sends %253C…: one decode leaves no XML.
        assert!(parse_skiptoken(&percent_decode(&percent_encode(&url, b"", true), true)).is_err());
    }

    #[test]
    fn the_fetch_annotation_is_encoded_twice() {
        let inner = inner_cookie(1, &[("accountid".into(), Some("ab".into()))], None);
        let annotation = fetch_annotation(2, &inner);
        assert!(
            annotation.contains("pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e"),
            "{annotation}"
        );
        let attr = annotation.split('"').nth(3).expect("attribute");
        let decoded = percent_decode(&percent_decode(attr, false), false);
        assert_eq!(decoded, inner);
        assert_eq!(
            parse_inner(&decoded).expect("inner").values[0].1.as_deref(),
            Some("ab")
        );
    }
}
