//! FetchXML queries and their paging cookies: each page's
//! `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie` is decoded twice, XML-escaped into the
//! `paging-cookie` attribute of `<fetch>`, and the `page` attribute incremented.

use futures_util::Stream;
use http::Method;

use crate::client::Client;
use crate::error::WebApiError;
use crate::options::with_query;
use crate::paging::PagingGuard;
use crate::pipeline::{Prepared, Replay};
use crate::query::encode_query_value;

const COOKIE: &str = "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie";
const MORE: &str = "@Microsoft.Dynamics.CRM.morerecords";

/// One page of a FetchXML query.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FetchPage {
    /// The records.
    pub records: Vec<serde_json::Value>,
    /// Whether more records follow.
    pub more_records: bool,
    /// The FetchXML for the next page (page incremented, cookie set), when there is one.
    pub next_fetch_xml: Option<String>,
    /// The paging cookie the next page carries, as the server sent it.
    cookie: Option<String>,
}

impl Client {
    /// One page of a FetchXML query on `entity_set`.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; [`WebApiError::InvalidInput`] when `fetch_xml` has no `<fetch>` element.
    pub async fn fetch_xml_page(
        &self,
        entity_set: &str,
        fetch_xml: &str,
    ) -> Result<FetchPage, WebApiError> {
        self.fetch_xml_page_inner(entity_set, fetch_xml, None).await
    }

    /// One page of a FetchXML query with more annotations than paging needs, such as
    /// [`FORMATTED_VALUES`](crate::FORMATTED_VALUES) (choice labels, lookup names).
    ///
    /// # Errors
    ///
    /// As [`Client::fetch_xml_page`].
    pub async fn fetch_xml_page_with_annotations(
        &self,
        entity_set: &str,
        fetch_xml: &str,
        annotations: &str,
    ) -> Result<FetchPage, WebApiError> {
        self.fetch_xml_page_inner(entity_set, fetch_xml, Some(annotations))
            .await
    }

    async fn fetch_xml_page_inner(
        &self,
        entity_set: &str,
        fetch_xml: &str,
        annotations: Option<&str>,
    ) -> Result<FetchPage, WebApiError> {
        let fetch_xml = fetch_xml.trim();
        if !fetch_xml.starts_with("<fetch") {
            return Err(WebApiError::InvalidInput(
                "FetchXML must start with a <fetch> element".to_owned(),
            ));
        }
        let path = with_query(
            entity_set,
            &format!("fetchXml={}", encode_query_value(fetch_xml)),
        );
        let mut wanted = String::from(
            "Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords",
        );
        if let Some(more) = annotations {
            wanted.push(',');
            wanted.push_str(more);
        }
        let prefer =
            http::HeaderValue::from_str(&format!("odata.include-annotations=\"{wanted}\""))
                .map_err(|_| {
                    WebApiError::InvalidInput(format!(
                        "the annotations `{wanted}` cannot be sent in a header"
                    ))
                })?;
        let request = Prepared::new(Method::GET, self.url(&path)?, Replay::Safe)
            .header(http::header::HeaderName::from_static("prefer"), prefer);
        let body = self.send_get(request).await?.json()?;
        let records = body["value"].as_array().cloned().unwrap_or_default();
        let more_records = body[MORE].as_bool().unwrap_or(false);
        let cookie = body[COOKIE].as_str().and_then(paging_cookie);
        let next_fetch_xml = if more_records {
            let page = attribute(fetch_xml, "page")
                .and_then(|p| p.parse::<u32>().ok())
                .unwrap_or(1);
            let mut next = set_attribute(fetch_xml, "page", &page.saturating_add(1).to_string());
            if let Some(cookie) = &cookie {
                next = set_attribute(&next, "paging-cookie", &xml_escape(cookie));
            }
            Some(next)
        } else {
            None
        };
        Ok(FetchPage {
            records,
            more_records,
            next_fetch_xml,
            cookie,
        })
    }

    /// Every record of a FetchXML query, following paging cookies; memory holds one page.
    ///
    /// Paging always ends: a paging cookie that repeats an earlier one fails with
    /// [`WebApiError::PagingLoop`], and more pages than
    /// [`ClientBuilder::max_pages`](crate::ClientBuilder::max_pages) with
    /// [`WebApiError::TooManyPages`].
    pub fn fetch_xml_all(
        &self,
        entity_set: &str,
        fetch_xml: &str,
    ) -> impl Stream<Item = Result<serde_json::Value, WebApiError>> + Send + 'static {
        self.fetch_all(entity_set, fetch_xml, None)
    }

    /// Every record of a FetchXML query, as [`Client::fetch_xml_all`], each page with more
    /// annotations, such as [`FORMATTED_VALUES`](crate::FORMATTED_VALUES).
    pub fn fetch_xml_all_with_annotations(
        &self,
        entity_set: &str,
        fetch_xml: &str,
        annotations: &str,
    ) -> impl Stream<Item = Result<serde_json::Value, WebApiError>> + Send + 'static {
        self.fetch_all(entity_set, fetch_xml, Some(annotations.to_owned()))
    }

    fn fetch_all(
        &self,
        entity_set: &str,
        fetch_xml: &str,
        annotations: Option<String>,
    ) -> impl Stream<Item = Result<serde_json::Value, WebApiError>> + Send + 'static {
        let client = self.clone();
        let annotations = std::sync::Arc::new(annotations);
        let entity_set = entity_set.to_owned();
        let guard = PagingGuard::new(self.inner.max_pages);
        futures_util::stream::try_unfold(
            (
                client,
                Some(Ok(fetch_xml.trim().to_owned())),
                Vec::new().into_iter(),
                guard,
            ),
            move |(client, mut next, mut buffered, mut guard)| {
                let entity_set = entity_set.clone();
                let annotations = std::sync::Arc::clone(&annotations);
                async move {
                    loop {
                        if let Some(record) = buffered.next() {
                            return Ok(Some((record, (client, next, buffered, guard))));
                        }
                        let current = match next.take() {
                            None => return Ok(None),
                            Some(current) => current?,
                        };
                        let page = client
                            .fetch_xml_page_inner(&entity_set, &current, annotations.as_deref())
                            .await?;
                        // Without a cookie the page number moves on, and the cap bounds it.
                        // The rows of this page are handed out before a refused next page.
                        next = page.next_fetch_xml.map(|next_xml| {
                            guard
                                .next_page(page.cookie.as_deref().unwrap_or(&next_xml))
                                .map(|()| next_xml)
                        });
                        buffered = page.records.into_iter();
                    }
                }
            },
        )
    }
}

/// The `<fetch …>` start tag: from `<fetch` to the first `>`.
fn fetch_tag(xml: &str) -> Option<(usize, usize)> {
    let start = xml.find("<fetch")?;
    let end = start + xml[start..].find('>')?;
    Some((start, end))
}

/// Where `name="value"` sits on the `<fetch>` element: the byte range of the whole
/// attribute (from its leading whitespace) and of its value.
fn find_attribute(
    xml: &str,
    name: &str,
) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let (start, end) = fetch_tag(xml)?;
    let tag = &xml[start..end];
    let bytes = tag.as_bytes();
    let mut from = 0;
    while let Some(found) = tag[from..].find(name) {
        let position = from + found;
        from = position + name.len();
        let preceded_by_space = position > 0 && bytes[position - 1].is_ascii_whitespace();
        let rest = tag[from..].trim_start();
        let Some(after_equals) = rest.strip_prefix('=') else {
            continue;
        };
        let after_equals = after_equals.trim_start();
        let Some(quote) = after_equals
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
        else {
            continue;
        };
        if !preceded_by_space {
            continue;
        }
        let value_start = end - after_equals.len() + 1;
        let value_end = value_start + xml[value_start..].find(quote)?;
        let attribute_start = start + position - 1;
        return Some((attribute_start..value_end + 1, value_start..value_end));
    }
    None
}

/// The value of `name` on the `<fetch>` element.
fn attribute<'x>(xml: &'x str, name: &str) -> Option<&'x str> {
    find_attribute(xml, name).map(|(_, value)| &xml[value])
}

/// `xml` with `name="value"` set on the `<fetch>` element (replaced or added).
fn set_attribute(xml: &str, name: &str, value: &str) -> String {
    if let Some((whole, _)) = find_attribute(xml, name) {
        let mut out = xml.to_owned();
        out.replace_range(whole, &format!(" {name}=\"{value}\""));
        return out;
    }
    let Some((_, end)) = fetch_tag(xml) else {
        return xml.to_owned();
    };
    let insert_at = if xml[..end].ends_with('/') {
        end - 1
    } else {
        end
    };
    format!(
        "{} {name}=\"{value}\"{}",
        xml[..insert_at].trim_end(),
        &xml[insert_at..]
    )
}

/// The inner cookie of a `fetchxmlpagingcookie` annotation, URL-decoded twice.
fn paging_cookie(annotation: &str) -> Option<String> {
    let start = annotation.find("pagingcookie=\"")? + "pagingcookie=\"".len();
    let end = start + annotation[start..].find('"')?;
    let once = percent_decode(&annotation[start..end]);
    Some(percent_decode(&once))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Some(byte) = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOKIE_ANNOTATION: &str = "<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e%253ccontactid%2520last%253d%2522%257b0000%257d%2522%2520first%253d%2522%257b1111%257d%2522%2520%252f%253e%253c%252fcookie%253e\" istracking=\"False\" />";

    #[test]
    fn cookies_are_decoded_twice() {
        assert_eq!(
            paging_cookie(COOKIE_ANNOTATION).unwrap(),
            "<cookie page=\"1\"><contactid last=\"{0000}\" first=\"{1111}\" /></cookie>"
        );
    }

    #[test]
    fn the_next_page_sets_page_and_escaped_cookie() {
        let fetch = "<fetch count=\"2\"><entity name=\"contact\"><attribute name=\"fullname\"/></entity></fetch>";
        let next = set_attribute(fetch, "page", "2");
        let next = set_attribute(
            &next,
            "paging-cookie",
            &xml_escape(&paging_cookie(COOKIE_ANNOTATION).unwrap()),
        );
        assert_eq!(
            next,
            "<fetch count=\"2\" page=\"2\" paging-cookie=\"&lt;cookie page=&quot;1&quot;&gt;&lt;contactid last=&quot;{0000}&quot; first=&quot;{1111}&quot; /&gt;&lt;/cookie&gt;\"><entity name=\"contact\"><attribute name=\"fullname\"/></entity></fetch>"
        );
        let third = set_attribute(&next, "page", "3");
        assert_eq!(attribute(&third, "page"), Some("3"));
        assert_eq!(third.matches("page=\"3\"").count(), 1);
        assert_eq!(attribute("<fetch page='4' count='5'>", "page"), Some("4"));
        assert_eq!(
            set_attribute("<fetch page='4'>", "page", "5"),
            "<fetch page=\"5\">"
        );
    }

    #[test]
    fn leading_whitespace_and_newlines_do_not_break_paging() {
        let fetch = "\n  <fetch\n count=\"5\">\n<entity name=\"account\"/></fetch>";
        assert_eq!(attribute(fetch.trim(), "count"), Some("5"));
        let next = set_attribute(fetch.trim(), "page", "2");
        assert!(
            next.starts_with("<fetch\n count=\"5\" page=\"2\">"),
            "{next}"
        );
        assert_eq!(
            attribute("<fetch distinct='true' page = '7'>", "page"),
            Some("7")
        );
        assert_eq!(attribute("<fetch mypage='7'>", "page"), None);
        assert_eq!(
            set_attribute("<fetch/>", "page", "2"),
            "<fetch page=\"2\"/>"
        );
    }
}
