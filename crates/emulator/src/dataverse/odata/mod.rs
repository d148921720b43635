//! OData v4 as Dataverse speaks it: URL encoding, query options, `Prefer`, resource paths,
//! `$filter`, record JSON, paging cookies and the query engine on top of the store.

pub(crate) mod expand;
pub(crate) mod filter;
pub(crate) mod json;
pub(crate) mod paging;
pub(crate) mod path;
pub(crate) mod query;

use axum::http::HeaderMap;

use super::errors::{ApiError, ApiResult};

/// The longest request URL (path and query) Dataverse accepts for a GET; a longer query
/// travels inside a `$batch`.
pub(crate) const MAX_URL_LEN: usize = 32 * 1024;
/// The longest request URL of one `$batch` part.
pub(crate) const MAX_BATCH_URL_LEN: usize = 64 * 1024;
/// How deeply `$filter` and FetchXML conditions may nest (parentheses, `not`, `<filter>`):
/// each level is a stack frame in the parser and the SQL translation.
pub(crate) const MAX_FILTER_DEPTH: usize = 100;
/// The most comparisons one `$filter` or FetchXML query may hold (SQLite's expression depth
/// is 1000).
pub(crate) const MAX_FILTER_TERMS: usize = 500;
/// The most values of one FetchXML `in` condition (SQLite allows 32,766 parameters).
pub(crate) const MAX_IN_VALUES: usize = 10_000;
/// The most columns `$select` (or FetchXML `<attribute>`s) may name.
pub(crate) const MAX_SELECT: usize = 1000;

/// Percent-decodes `text`; `+` is a space in query strings (as ASP.NET reads them).
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but unreserved characters and those in `keep`.
pub(crate) fn percent_encode(text: &str, keep: &[u8], upper: bool) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || keep.contains(&byte) {
            out.push(byte as char);
        } else if upper {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push_str(&format!("%{byte:02x}"));
        }
    }
    out
}

/// The query string of a request: raw pairs (for `@odata.nextLink`) and decoded values.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryOptions {
    pub(crate) raw: Vec<(String, String)>,
    pub(crate) select: Option<String>,
    pub(crate) filter: Option<String>,
    pub(crate) orderby: Option<String>,
    pub(crate) top: Option<String>,
    pub(crate) expand: Option<String>,
    pub(crate) count: Option<String>,
    pub(crate) skiptoken: Option<String>,
    pub(crate) fetch_xml: Option<String>,
    /// Parameter aliases (`@p1=...`).
    pub(crate) aliases: Vec<(String, String)>,
    /// `$id` (disassociation by URL).
    pub(crate) id: Option<String>,
}

impl QueryOptions {
    /// Parses the query; options Dataverse refuses are refused here, with its message.
    pub(crate) fn parse(query: &str) -> ApiResult<Self> {
        let mut options = Self::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(raw_name, true);
            let value = percent_decode(raw_value, true);
            options
                .raw
                .push((raw_name.to_owned(), raw_value.to_owned()));
            let slot = match name.as_str() {
                "$select" => &mut options.select,
                "$filter" => &mut options.filter,
                "$orderby" => &mut options.orderby,
                "$top" => &mut options.top,
                "$expand" => &mut options.expand,
                "$count" => &mut options.count,
                "$skiptoken" => &mut options.skiptoken,
                "$id" => &mut options.id,
                "fetchXml" => &mut options.fetch_xml,
                "$skip" | "$search" | "$format" => {
                    return Err(ApiError::unsupported_query_option(&name));
                }
                "$apply" => {
                    return Err(ApiError::bad_request(
                        "0x80060888",
                        format!("The query parameter {name} is not supported by the d365 emulator"),
                    ));
                }
                other if other.starts_with('$') => {
                    return Err(ApiError::bad_request(
                        "0x80060888",
                        format!("The query parameter '{other}' is not supported."),
                    ));
                }
                other if other.starts_with('@') => {
                    options.aliases.push((other.to_owned(), value));
                    continue;
                }
                // ASP.NET ignores query parameters that are not OData options.
                _ => continue,
            };
            if slot.is_some() {
                return Err(ApiError::bad_request(
                    "0x80060888",
                    format!(
                        "Query option '{name}' was specified more than once, but it must be specified at most once."
                    ),
                ));
            }
            *slot = Some(value);
        }
        Ok(options)
    }

    /// The raw query without `$skiptoken`, for building the next link.
    pub(crate) fn raw_without_skiptoken(&self) -> Vec<String> {
        self.raw
            .iter()
            .filter(|(name, _)| percent_decode(name, true) != "$skiptoken")
            .map(|(name, value)| format!("{name}={value}"))
            .collect()
    }
}

/// The `Prefer` preferences Dataverse honours.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prefer {
    pub(crate) return_representation: bool,
    pub(crate) max_page_size: Option<String>,
    pub(crate) annotations: Option<String>,
    pub(crate) continue_on_error: bool,
}

/// Splits on commas outside double quotes.
fn split_preferences(header: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for ch in header.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                current.push(ch);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

impl Prefer {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let mut prefer = Self::default();
        for value in headers.get_all("prefer") {
            let Ok(text) = value.to_str() else { continue };
            for preference in split_preferences(text) {
                let (name, value) = preference
                    .split_once('=')
                    .map_or((preference.as_str(), ""), |(n, v)| (n.trim(), v.trim()));
                match name.to_ascii_lowercase().as_str() {
                    "return" if value.eq_ignore_ascii_case("representation") => {
                        prefer.return_representation = true;
                    }
                    "odata.maxpagesize" => {
                        prefer.max_page_size = Some(value.trim_matches('"').to_owned());
                    }
                    "odata.include-annotations" => {
                        prefer.annotations = Some(value.trim_matches('"').to_owned());
                    }
                    "odata.continue-on-error" => prefer.continue_on_error = true,
                    _ => {}
                }
            }
        }
        prefer
    }

    /// Whether the annotation `name` (e.g. `OData.Community.Display.V1.FormattedValue`) was
    /// asked for: `*`, the exact name or a `Namespace.*` wildcard; `-name` excludes.
    pub(crate) fn wants(&self, name: &str) -> bool {
        let Some(list) = &self.annotations else {
            return false;
        };
        let mut wanted = false;
        for pattern in list.split(',').map(str::trim) {
            let (exclude, pattern) = pattern
                .strip_prefix('-')
                .map_or((false, pattern), |p| (true, p));
            let matches = pattern == "*"
                || pattern == name
                || pattern.strip_suffix(".*").is_some_and(|prefix| {
                    name.starts_with(prefix) && name[prefix.len()..].starts_with('.')
                });
            if matches {
                if exclude {
                    return false;
                }
                wanted = true;
            }
        }
        wanted
    }

    pub(crate) fn any_annotations(&self) -> bool {
        self.annotations.is_some()
    }
}

/// Annotation names.
pub(crate) const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";
pub(crate) const LOOKUP_LOGICAL_NAME: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";
pub(crate) const ASSOCIATED_NAVIGATION: &str =
    "Microsoft.Dynamics.CRM.associatednavigationproperty";
pub(crate) const FETCH_PAGING_COOKIE: &str = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie";
pub(crate) const MORE_RECORDS: &str = "Microsoft.Dynamics.CRM.morerecords";
pub(crate) const TOTAL_COUNT: &str = "Microsoft.Dynamics.CRM.totalrecordcount";
pub(crate) const TOTAL_COUNT_EXCEEDED: &str =
    "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_coding_round_trips() {
        let cases = [
            ("a%20b", false, "a b"),
            ("a+b", true, "a b"),
            ("a+b", false, "a+b"),
            ("%3Ccookie%3E", false, "<cookie>"),
            ("100%", false, "100%"),
            ("%zz", false, "%zz"),
        ];
        for (input, plus, expected) in cases {
            assert_eq!(percent_decode(input, plus), expected, "{input}");
        }
        assert_eq!(percent_encode("<a b>", b"", true), "%3Ca%20b%3E");
        assert_eq!(percent_encode("a=b/c", b"=/", false), "a=b/c");
    }

    #[test]
    fn refused_query_options_name_themselves() {
        for (query, fragment) in [
            ("$skip=10", "$skip is not supported"),
            ("$search=x", "$search is not supported"),
            ("$format=json", "$format is not supported"),
            ("$foo=1", "'$foo' is not supported"),
            ("$top=1&$top=2", "more than once"),
        ] {
            let err = QueryOptions::parse(query).expect_err(query);
            assert!(err.message.contains(fragment), "{query}: {}", err.message);
        }
        let ok = QueryOptions::parse("$select=name&other=1&@p1='x'").expect("parses");
        assert_eq!(ok.select.as_deref(), Some("name"));
        assert_eq!(ok.aliases, vec![("@p1".to_owned(), "'x'".to_owned())]);
    }

    #[test]
    fn preferences_split_outside_quotes() {
        let mut headers = HeaderMap::new();
        headers.append(
            "prefer",
            "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.*\", odata.maxpagesize=10"
                .parse()
                .expect("header"),
        );
        headers.append("prefer", "return=representation".parse().expect("header"));
        let prefer = Prefer::from_headers(&headers);
        assert!(prefer.return_representation);
        assert_eq!(prefer.max_page_size.as_deref(), Some("10"));
        assert!(prefer.wants(FORMATTED));
        assert!(prefer.wants(LOOKUP_LOGICAL_NAME));
        assert!(!prefer.wants("Other.Thing"));
    }
}
