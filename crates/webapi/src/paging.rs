//! Queries and paging: one page at a time ([`Page`]), or a stream of records that follows
//! `@odata.nextLink` verbatim — no re-encoding, no extra options, the same `Prefer`
//! header. The stream fetches the next page while the caller reads the current one, so
//! memory holds at most two pages.

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

    /// Every record of `query`, page after page, as a stream.
    ///
    /// The first page is asked for when the stream is first polled; each later page is
    /// asked for as soon as the link to it arrives, in a task of its own, so that the
    /// server produces page n + 1 while the caller works through page n. Memory holds at
    /// most those two pages. Dropping the stream cancels a page still on its way (a GET,
    /// harmless to abandon). Must be polled inside a tokio runtime, as every request is.
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
            (
                client,
                Some(Upcoming::Link(first)),
                Vec::<T>::new().into_iter(),
            ),
            move |(client, mut upcoming, mut buffered)| async move {
                loop {
                    if let Some(record) = buffered.next() {
                        return Ok(Some((record, (client, upcoming, buffered))));
                    }
                    let page: Page<T> = match upcoming.take() {
                        None => return Ok(None),
                        Some(Upcoming::Link(link)) => client.fetch_page(&link, page_size).await?,
                        Some(Upcoming::Fetching(prefetch)) => prefetch.page().await?,
                    };
                    upcoming = page
                        .next_link
                        .map(|link| Upcoming::Fetching(Prefetch::start(&client, link, page_size)));
                    buffered = page.records.into_iter();
                }
            },
        )
    }
}

/// The page after the one being read.
enum Upcoming<T> {
    /// Not asked for yet (the first page, fetched when the stream is first polled).
    Link(String),
    /// On its way.
    Fetching(Prefetch<T>),
}

/// A page being fetched by a task of its own; aborted when dropped unread.
struct Prefetch<T> {
    task: tokio::task::JoinHandle<Result<Page<T>, WebApiError>>,
}

impl<T: DeserializeOwned + Send + 'static> Prefetch<T> {
    fn start(client: &Client, link: String, page_size: Option<u32>) -> Self {
        let client = client.clone();
        Self {
            task: tokio::spawn(async move { client.fetch_page(&link, page_size).await }),
        }
    }

    async fn page(mut self) -> Result<Page<T>, WebApiError> {
        let outcome = (&mut self.task).await;
        match outcome {
            Ok(page) => page,
            // The task only ends early by panicking (it is aborted only when this is
            // dropped): let the panic carry on in the caller's task.
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
