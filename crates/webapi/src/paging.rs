//! Queries and paging: one page at a time ([`Page`]), or a stream of records that follows
//! `@odata.nextLink` verbatim — no re-encoding, no extra options, the same `Prefer`
//! header — holding one page in memory at a time.

use futures_util::Stream;
use http::Method;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::WebApiError;
use crate::pipeline::{Prepared, Replay};
use crate::query::Query;

/// One page of results.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The records.
    pub records: Vec<T>,
    /// `@odata.count`, when the query asked for it (capped at 5000 by Dataverse).
    pub count: Option<u64>,
    /// The link to the next page, verbatim.
    pub next_link: Option<String>,
}

#[derive(serde::Deserialize)]
struct WirePage<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.count", default)]
    count: Option<u64>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

impl Client {
    /// The first page of `query`.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; [`WebApiError::Decode`] when rows do not fit `T`.
    pub async fn query_page<T: DeserializeOwned>(
        &self,
        query: &Query,
    ) -> Result<Page<T>, WebApiError> {
        self.fetch_page(&query.to_relative_url(), query.page_size)
            .await
    }

    /// The page at `next_link` (from [`Page::next_link`]), with the same page size.
    ///
    /// # Errors
    ///
    /// [`WebApiError`].
    pub async fn next_page<T: DeserializeOwned>(
        &self,
        next_link: &str,
        page_size: Option<u32>,
    ) -> Result<Page<T>, WebApiError> {
        self.fetch_page(next_link, page_size).await
    }

    async fn fetch_page<T: DeserializeOwned>(
        &self,
        link: &str,
        page_size: Option<u32>,
    ) -> Result<Page<T>, WebApiError> {
        let mut request = Prepared::new(Method::GET, self.url(link)?, Replay::Safe);
        if let Some(size) = page_size {
            request = request.header(
                http::header::HeaderName::from_static("prefer"),
                http::HeaderValue::from_str(&format!("odata.maxpagesize={size}"))
                    .expect("digits are a valid header"),
            );
        }
        let answer = self.send_get(request).await?;
        let page: WirePage<T> = serde_json::from_slice(&answer.body)
            .map_err(|error| WebApiError::Decode(error.to_string()))?;
        Ok(Page {
            records: page.value,
            count: page.count,
            next_link: page.next_link,
        })
    }

    /// Every record of `query`, page after page, as a stream. Memory holds one page.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: d365_webapi::Client) -> Result<(), d365_webapi::WebApiError> {
    /// use futures_util::TryStreamExt as _;
    /// use d365_webapi::Query;
    ///
    /// let mut rows = std::pin::pin!(client.query_all::<serde_json::Value>(Query::new("accounts").select(["name"]).page_size(500)));
    /// while let Some(account) = rows.try_next().await? {
    ///     println!("{}", account["name"]);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn query_all<T: DeserializeOwned + Send + 'static>(
        &self,
        query: Query,
    ) -> impl Stream<Item = Result<T, WebApiError>> + Send + 'static {
        let client = self.clone();
        let first = query.to_relative_url();
        let page_size = query.page_size;
        futures_util::stream::try_unfold(
            (client, Some(first), Vec::<T>::new().into_iter()),
            move |(client, mut link, mut buffered)| async move {
                loop {
                    if let Some(record) = buffered.next() {
                        return Ok(Some((record, (client, link, buffered))));
                    }
                    let Some(current) = link.take() else {
                        return Ok(None);
                    };
                    let page: Page<T> = client.fetch_page(&current, page_size).await?;
                    link = page.next_link;
                    buffered = page.records.into_iter();
                }
            },
        )
    }
}
