//! Queries and paging: one page at a time ([`Page`]), or a stream of records that follows
//! `@odata.nextLink` verbatim — no re-encoding, no extra options, the same `Prefer`
//! header. The stream fetches the next page while the caller reads the current one, so
//! memory holds at most two pages. Paging always ends: [`PagingGuard`] refuses a link seen
//! before and stops at the page cap.

use std::collections::HashSet;
use std::hash::{BuildHasher as _, RandomState};

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
        self.fetch_page(&query.to_relative_url(), &PageSettings::of(query))
            .await
    }

    /// The page at `next_link` of `query`, with its page size and annotations (the same
    /// `Prefer` header as its first page, as Dataverse requires).
    ///
    /// # Errors
    ///
    /// [`WebApiError`].
    pub async fn next_page_of<T: DeserializeOwned>(
        &self,
        query: &Query,
        next_link: &str,
    ) -> Result<Page<T>, WebApiError> {
        self.fetch_page(next_link, &PageSettings::of(query)).await
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
        let settings = PageSettings {
            page_size,
            annotations: None,
        };
        self.fetch_page(next_link, &settings).await
    }

    async fn fetch_page<T: DeserializeOwned>(
        &self,
        link: &str,
        settings: &PageSettings,
    ) -> Result<Page<T>, WebApiError> {
        let mut request = Prepared::new(Method::GET, self.url(link)?, Replay::Safe);
        let mut preferences = Vec::new();
        if let Some(size) = settings.page_size {
            preferences.push(format!("odata.maxpagesize={size}"));
        }
        if let Some(annotations) = &settings.annotations {
            preferences.push(format!("odata.include-annotations=\"{annotations}\""));
        }
        if !preferences.is_empty() {
            let value = http::HeaderValue::from_str(&preferences.join(",")).map_err(|_| {
                WebApiError::InvalidInput(
                    "the annotations of the query cannot be sent in a header".to_owned(),
                )
            })?;
            request = request.header(http::header::HeaderName::from_static("prefer"), value);
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
    /// Paging always ends: a next link that repeats an earlier one fails with
    /// [`WebApiError::PagingLoop`], and more pages than
    /// [`ClientBuilder::max_pages`](crate::ClientBuilder::max_pages) with
    /// [`WebApiError::TooManyPages`]. Every link must be on the organization
    /// ([`WebApiError::ForeignUrl`] otherwise, before it is followed).
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
        // Shared, not cloned: the closure below runs once per record.
        let settings = std::sync::Arc::new(PageSettings::of(&query));
        let guard = PagingGuard::new(self.inner.max_pages);
        futures_util::stream::try_unfold(
            (
                client,
                Some(Upcoming::Link(first)),
                Vec::<T>::new().into_iter(),
                guard,
            ),
            move |(client, mut upcoming, mut buffered, mut guard)| {
                let settings = std::sync::Arc::clone(&settings);
                async move {
                    loop {
                        if let Some(record) = buffered.next() {
                            return Ok(Some((record, (client, upcoming, buffered, guard))));
                        }
                        let page: Page<T> = match upcoming.take() {
                            None => return Ok(None),
                            Some(Upcoming::Link(link)) => {
                                client.fetch_page(&link, &settings).await?
                            }
                            Some(Upcoming::Fetching(prefetch)) => prefetch.page().await?,
                            Some(Upcoming::Refused(error)) => return Err(error),
                        };
                        // The rows of this page are handed out before a refused next page.
                        upcoming = page.next_link.map(|link| match guard.next_page(&link) {
                            Ok(()) => Upcoming::Fetching(Prefetch::start(
                                &client,
                                link,
                                std::sync::Arc::clone(&settings),
                            )),
                            Err(error) => Upcoming::Refused(error),
                        });
                        buffered = page.records.into_iter();
                    }
                }
            },
        )
    }
}

/// What every page of a query carries in its `Prefer` header.
#[derive(Clone, Debug, Default)]
struct PageSettings {
    page_size: Option<u32>,
    annotations: Option<String>,
}

impl PageSettings {
    fn of(query: &Query) -> Self {
        Self {
            page_size: query.page_size,
            annotations: query.annotations.clone(),
        }
    }
}

/// What keeps paging finite: the links (or paging cookies) seen so far, as keyed hashes so
/// memory stays small, and the page count against the cap.
pub(crate) struct PagingGuard {
    seen: HashSet<u64>,
    hasher: RandomState,
    pages: u32,
    max_pages: u32,
}

impl PagingGuard {
    pub(crate) fn new(max_pages: u32) -> Self {
        Self {
            seen: HashSet::new(),
            hasher: RandomState::new(),
            pages: 1,
            max_pages,
        }
    }

    /// Accounts for the page `marker` (its link or paging cookie) leads to: an error when
    /// the marker was seen before or the page would pass the cap.
    pub(crate) fn next_page(&mut self, marker: &str) -> Result<(), WebApiError> {
        if !self.seen.insert(self.hasher.hash_one(marker)) {
            return Err(WebApiError::PagingLoop { pages: self.pages });
        }
        if self.pages >= self.max_pages {
            return Err(WebApiError::TooManyPages {
                max_pages: self.max_pages,
            });
        }
        self.pages += 1;
        Ok(())
    }
}

/// The page after the one being read.
enum Upcoming<T> {
    /// Not asked for yet (the first page, fetched when the stream is first polled).
    Link(String),
    /// On its way.
    Fetching(Prefetch<T>),
    /// Not to be followed (a loop, the page cap): the stream ends with this error.
    Refused(WebApiError),
}

/// A page being fetched by a task of its own; aborted when dropped unread.
struct Prefetch<T> {
    task: tokio::task::JoinHandle<Result<Page<T>, WebApiError>>,
}

impl<T: DeserializeOwned + Send + 'static> Prefetch<T> {
    fn start(client: &Client, link: String, settings: std::sync::Arc<PageSettings>) -> Self {
        let client = client.clone();
        Self {
            task: tokio::spawn(async move { client.fetch_page(&link, &settings).await }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_refuses_a_repeated_marker_and_stops_at_the_cap() {
        let mut guard = PagingGuard::new(3);
        guard.next_page("page-2").unwrap();
        assert!(matches!(
            guard.next_page("page-2"),
            Err(WebApiError::PagingLoop { pages: 2 })
        ));
        guard.next_page("page-3").unwrap();
        assert!(matches!(
            guard.next_page("page-4"),
            Err(WebApiError::TooManyPages { max_pages: 3 })
        ));
    }
}
