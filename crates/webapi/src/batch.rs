//! `$batch`: a [`Batch`] builder with change sets and Content-ID references, the
//! multipart/mixed body written with CRLF on every line (Dataverse refuses anything else),
//! and the response parsed into one [`BatchResponse`] per operation, in order.

use std::fmt::Write as _;

use http::{Method, StatusCode};

use crate::client::Client;
use crate::error::{ServiceError, WebApiError, parse_error_body};
use crate::guid::Guid;
use crate::ops::id_from_entity_url;
use crate::pipeline::{Prepared, Replay};
use crate::query::RecordKey;

/// Dataverse's limit on operations in one `$batch` request; [`Client::execute_batch`] sends
/// a larger [`Batch`] as several requests, in order, each change set whole.
pub const MAX_BATCH_OPERATIONS: usize = 1000;

/// GET URLs longer than this are sent inside a `$batch`, as DynamicsWebApi does: proxies
/// and gateways refuse long URLs well before Dataverse's own 32 KiB limit, and a batch
/// part may be 64 KiB.
pub const MAX_GET_URL_LEN: usize = 2048;

/// A reference to an earlier operation of the same change set (`$1`), usable as a URL
/// ([`ContentRef::url`]) or in an `@odata.bind` ([`ContentRef::bind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRef(u32);

impl ContentRef {
    /// `$n`, the operation's URL.
    #[must_use]
    pub fn url(self) -> String {
        format!("${}", self.0)
    }

    /// `$n`, for `"lookup@odata.bind": …`.
    #[must_use]
    pub fn bind(self) -> serde_json::Value {
        serde_json::Value::String(self.url())
    }
}

#[derive(Clone, Debug)]
struct Operation {
    method: Method,
    /// Relative to the API root, or `$n`.
    target: String,
    body: Option<serde_json::Value>,
    content_id: Option<u32>,
    headers: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
enum Item {
    Single(Operation),
    ChangeSet(Vec<Operation>),
}

impl Item {
    /// How many operations it holds.
    fn len(&self) -> usize {
        match self {
            Self::Single(_) => 1,
            Self::ChangeSet(operations) => operations.len(),
        }
    }
}

/// Whether `items` are all reads (a batch of them may be retried like a read).
fn only_reads(items: &[Item]) -> bool {
    items
        .iter()
        .all(|item| matches!(item, Item::Single(operation) if operation.method == Method::GET))
}

/// A `$batch` request.
///
/// # Examples
///
/// ```
/// use d365_webapi::Batch;
/// use serde_json::json;
///
/// let mut batch = Batch::new();
/// batch.change_set(|set| {
///     let account = set.create("accounts", json!({"name": "Fabrikam"}));
///     set.create("contacts", json!({"lastname": "Ng", "parentcustomerid_account@odata.bind": account.bind()}));
/// });
/// batch.get("accounts?$select=name&$top=1");
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Batch {
    items: Vec<Item>,
    continue_on_error: bool,
    next_content_id: u32,
}

/// The operations of one change set: applied all together or not at all.
#[derive(Debug)]
pub struct ChangeSet<'b> {
    operations: Vec<Operation>,
    next_content_id: &'b mut u32,
}

impl ChangeSet<'_> {
    fn push(
        &mut self,
        method: Method,
        target: String,
        body: Option<serde_json::Value>,
    ) -> ContentRef {
        *self.next_content_id += 1;
        let id = *self.next_content_id;
        self.operations.push(Operation {
            method,
            target,
            body,
            content_id: Some(id),
            headers: Vec::new(),
        });
        ContentRef(id)
    }

    /// `POST {entity_set}`.
    pub fn create(&mut self, entity_set: &str, record: serde_json::Value) -> ContentRef {
        self.push(Method::POST, entity_set.to_owned(), Some(record))
    }

    /// `PATCH {entity_set}({key})` with `If-Match: *` (never creates).
    pub fn update(
        &mut self,
        entity_set: &str,
        key: &RecordKey,
        changes: serde_json::Value,
    ) -> ContentRef {
        let reference = self.push(
            Method::PATCH,
            format!("{entity_set}{}", key.to_segment()),
            Some(changes),
        );
        self.add_header("If-Match", "*");
        reference
    }

    /// `PATCH $n`: changes an operation created earlier in this change set.
    pub fn update_created(
        &mut self,
        created: ContentRef,
        changes: serde_json::Value,
    ) -> ContentRef {
        self.push(Method::PATCH, created.url(), Some(changes))
    }

    /// `PATCH {entity_set}({key})`: create or update.
    pub fn upsert(
        &mut self,
        entity_set: &str,
        key: &RecordKey,
        record: serde_json::Value,
    ) -> ContentRef {
        self.push(
            Method::PATCH,
            format!("{entity_set}{}", key.to_segment()),
            Some(record),
        )
    }

    /// `DELETE {entity_set}({key})`.
    pub fn delete(&mut self, entity_set: &str, key: &RecordKey) -> ContentRef {
        self.push(
            Method::DELETE,
            format!("{entity_set}{}", key.to_segment()),
            None,
        )
    }

    /// Any operation (an action, `$ref`): GETs are not allowed inside a change set.
    pub fn request(
        &mut self,
        method: Method,
        target: &str,
        body: Option<serde_json::Value>,
    ) -> ContentRef {
        self.push(method, target.to_owned(), body)
    }

    fn add_header(&mut self, name: &str, value: &str) {
        if let Some(operation) = self.operations.last_mut() {
            operation.headers.push((name.to_owned(), value.to_owned()));
        }
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep going after a failed operation (`Prefer: odata.continue-on-error`): every
    /// operation gets its own result. Without it Dataverse stops at the first failure.
    pub fn continue_on_error(mut self) -> Self {
        self.continue_on_error = true;
        self
    }

    /// A read outside any change set (`path` relative to the API root, with its query).
    pub fn get(&mut self, path: &str) -> &mut Self {
        self.items.push(Item::Single(Operation {
            method: Method::GET,
            target: path.to_owned(),
            body: None,
            content_id: None,
            headers: Vec::new(),
        }));
        self
    }

    /// Any operation outside a change set.
    pub fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> &mut Self {
        self.items.push(Item::Single(Operation {
            method,
            target: path.to_owned(),
            body,
            content_id: None,
            headers: Vec::new(),
        }));
        self
    }

    /// A change set, built by `build`; its operations may reference each other.
    pub fn change_set(&mut self, build: impl FnOnce(&mut ChangeSet<'_>)) -> &mut Self {
        let mut set = ChangeSet {
            operations: Vec::new(),
            next_content_id: &mut self.next_content_id,
        };
        build(&mut set);
        let operations = set.operations;
        if !operations.is_empty() {
            self.items.push(Item::ChangeSet(operations));
        }
        self
    }

    /// How many operations the batch holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.iter().map(Item::len).sum()
    }

    /// Whether the batch is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items cut into runs of at most `max` operations, in order, each change set
    /// whole in one run: the batches a batch over Dataverse's limit is sent as.
    ///
    /// # Errors
    ///
    /// [`WebApiError::InvalidInput`] for a change set of more than `max` operations: it
    /// is atomic, so it cannot be split.
    fn runs(&self, max: usize) -> Result<Vec<std::ops::Range<usize>>, WebApiError> {
        let mut runs = Vec::new();
        let (mut start, mut operations) = (0, 0);
        for (index, item) in self.items.iter().enumerate() {
            let size = item.len();
            if size > max {
                return Err(WebApiError::InvalidInput(format!(
                    "a change set of the batch holds {size} operations; Dataverse accepts at most {max} in one batch, and a change set is applied whole, so it cannot be split: make it smaller"
                )));
            }
            if operations + size > max {
                runs.push(start..index);
                (start, operations) = (index, 0);
            }
            operations += size;
        }
        if start < self.items.len() {
            runs.push(start..self.items.len());
        }
        Ok(runs)
    }

    /// The multipart body, every line ending in CRLF; `target` turns each operation's path
    /// into the request target written in its part (and refuses a path off the
    /// organization).
    #[cfg(test)]
    pub(crate) fn to_body(
        &self,
        target: impl Fn(&str) -> Result<String, WebApiError>,
        boundary: &str,
    ) -> Result<String, WebApiError> {
        body_of(&self.items, target, boundary)
    }
}

/// The multipart body of `items` every line ending in CRLF; `target` turns each
/// operation's path into the request target written in its part (and refuses a path off
/// the organization).
fn body_of(
    items: &[Item],
    target: impl Fn(&str) -> Result<String, WebApiError>,
    boundary: &str,
) -> Result<String, WebApiError> {
    let mut body = String::new();
    for item in items {
        let _ = write!(body, "--{boundary}\r\n");
        match item {
            Item::Single(operation) => {
                write_operation(&mut body, &target(&operation.target)?, operation);
            }
            Item::ChangeSet(operations) => {
                let set_boundary = format!("changeset_{}", Guid::new_random());
                let _ = write!(
                    body,
                    "Content-Type: multipart/mixed; boundary=\"{set_boundary}\"\r\n\r\n"
                );
                for operation in operations {
                    let _ = write!(body, "--{set_boundary}\r\n");
                    write_operation(&mut body, &target(&operation.target)?, operation);
                }
                let _ = write!(body, "--{set_boundary}--\r\n");
            }
        }
    }
    let _ = write!(body, "--{boundary}--\r\n");
    Ok(body)
}

fn write_operation(body: &mut String, target: &str, operation: &Operation) {
    body.push_str("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    if let Some(id) = operation.content_id {
        let _ = write!(body, "Content-ID: {id}\r\n");
    }
    body.push_str("\r\n");
    let _ = write!(body, "{} {target} HTTP/1.1\r\n", operation.method);
    for (name, value) in &operation.headers {
        let _ = write!(body, "{name}: {value}\r\n");
    }
    match &operation.body {
        Some(json) => {
            let _ = write!(
                body,
                "Content-Type: application/json; type=entry\r\n\r\n{json}\r\n"
            );
        }
        None => body.push_str("Accept: application/json\r\n\r\n"),
    }
}

/// The result of one operation of a batch.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BatchResponse {
    /// The operation's HTTP status.
    pub status: StatusCode,
    /// Its `Content-ID`, for change-set operations.
    pub content_id: Option<u32>,
    /// The record's URL (`OData-EntityId` or `Location`), for creates and updates.
    pub entity_url: Option<String>,
    /// The id at the end of `entity_url`.
    pub id: Option<Guid>,
    /// The JSON body, when there is one.
    pub body: Option<serde_json::Value>,
    /// Dataverse's error, when the operation failed.
    pub error: Option<ServiceError>,
}

impl BatchResponse {
    /// Whether the operation succeeded.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

impl Client {
    /// Sends a `$batch`. Returns one [`BatchResponse`] per operation Dataverse answered
    /// (one for a change set that failed), in order; without `continue_on_error`, a
    /// failure ends the list (and a failed change set is rolled back whole).
    ///
    /// A batch of more than [`MAX_BATCH_OPERATIONS`] operations is sent as several
    /// batches, one after another, in order, each change set whole in one of them; without
    /// `continue_on_error` none is sent after one that held a failure. A batch of reads is
    /// retried like a read; a batch with writes only when Dataverse said it did not apply
    /// it (429, 503).
    ///
    /// # Errors
    ///
    /// [`WebApiError::InvalidInput`] for an empty batch or a change set of more than 1000
    /// operations (a change set cannot be split); [`WebApiError::BatchInterrupted`], with
    /// the answers so far, when a batch after the first fails as a whole; other
    /// [`WebApiError`]s when the (first) batch itself fails.
    pub async fn execute_batch(&self, batch: &Batch) -> Result<Vec<BatchResponse>, WebApiError> {
        if batch.is_empty() {
            return Err(WebApiError::InvalidInput("the batch is empty".to_owned()));
        }
        let runs = batch.runs(MAX_BATCH_OPERATIONS)?;
        if runs.len() > 1 {
            tracing::debug!(
                operations = batch.len(),
                batches = runs.len(),
                "a $batch over {MAX_BATCH_OPERATIONS} operations is sent as several batches"
            );
        }
        let mut answered = Vec::new();
        for (number, run) in runs.into_iter().enumerate() {
            let items = &batch.items[run];
            match self.send_batch(items, batch.continue_on_error).await {
                Ok(parts) => {
                    let failed = parts.iter().any(|part| !part.is_success());
                    answered.extend(parts);
                    if failed && !batch.continue_on_error {
                        break;
                    }
                }
                Err(error) if number == 0 => return Err(error),
                Err(error) => {
                    return Err(WebApiError::BatchInterrupted {
                        answered,
                        total: batch.len(),
                        failed_batch: number + 1,
                        source: Box::new(error),
                    });
                }
            }
        }
        Ok(answered)
    }

    /// Sends one `$batch` of `items` (at most [`MAX_BATCH_OPERATIONS`] operations).
    async fn send_batch(
        &self,
        items: &[Item],
        continue_on_error: bool,
    ) -> Result<Vec<BatchResponse>, WebApiError> {
        let boundary = format!("batch_{}", Guid::new_random());
        let body = body_of(items, |target| self.batch_target(target), &boundary)?;
        let replay = if only_reads(items) {
            Replay::Safe
        } else {
            Replay::Unsafe
        };
        let mut request = Prepared::new(Method::POST, self.url("$batch")?, replay);
        request.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_str(&format!("multipart/mixed; boundary=\"{boundary}\""))
                .expect("the boundary is ASCII"),
        );
        if continue_on_error {
            request.headers.insert(
                http::header::HeaderName::from_static("prefer"),
                http::HeaderValue::from_static("odata.continue-on-error"),
            );
        }
        request.body = Some(body.into_bytes());
        // A failed batch answers 400 with the parts that ran: the pipeline hands multipart
        // answers back whatever their status.
        let answer = self.execute(request).await?;
        let content_type = answer.header("content-type").unwrap_or_default().to_owned();
        parse_batch_response(&content_type, &answer.body, self.inner.api_root.as_str())
    }
}

impl Client {
    /// The request target of a `$batch` part: a `$n` reference to an earlier operation of
    /// the change set as it is, any other path or URL resolved on the organization (the
    /// one check every URL passes) and written as its path and query. Control characters
    /// are refused, so a path cannot end the request line and inject lines into the body.
    fn batch_target(&self, target: &str) -> Result<String, WebApiError> {
        if let Some(reference) = target.strip_prefix('$') {
            let id_len = reference.bytes().take_while(u8::is_ascii_digit).count();
            let rest = &reference[id_len..];
            let valid = id_len > 0
                && (rest.is_empty() || rest.starts_with('/'))
                && !rest.contains(|c: char| c.is_control() || c == ' ');
            if !valid {
                return Err(WebApiError::InvalidInput(format!(
                    "the batch operation path {target:?} is neither a path nor a `$n` reference to an earlier operation"
                )));
            }
            return Ok(target.to_owned());
        }
        Ok(self.url(target)?.path_and_query().to_owned())
    }

    /// Sends a read, inside a one-part `$batch` when its URL is too long for a GET.
    pub(crate) async fn send_get(
        &self,
        request: Prepared,
    ) -> Result<crate::pipeline::Answer, WebApiError> {
        if request.url.as_str().len() <= MAX_GET_URL_LEN {
            return self.execute(request).await;
        }
        let api_root = self.inner.api_root.as_str();
        let relative = request
            .url
            .as_str()
            .strip_prefix(api_root)
            .unwrap_or(request.url.as_str())
            .to_owned();
        let headers = request
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let mut batch = Batch::new();
        batch.items.push(Item::Single(Operation {
            method: Method::GET,
            target: relative,
            body: None,
            content_id: None,
            headers,
        }));
        tracing::debug!(
            url_len = request.url.as_str().len(),
            "a long GET is sent inside a $batch"
        );
        let mut parts = self.execute_batch(&batch).await?;
        if parts.is_empty() {
            return Err(WebApiError::UnexpectedResponse {
                method: Method::GET,
                url: request.url.to_string(),
                status: StatusCode::OK,
                detail: "the $batch that carried a long GET answered no part".to_owned(),
            });
        }
        let part = parts.remove(0);
        if let Some(mut error) = part.error {
            error.method = Method::GET;
            error.url = request.url.to_string();
            return Err(error.into());
        }
        Ok(crate::pipeline::Answer {
            status: part.status,
            headers: http::HeaderMap::new(),
            body: part
                .body
                .map(|json| json.to_string().into_bytes())
                .unwrap_or_default(),
        })
    }
}

/// Splits a multipart body into its parts (the text between boundaries).
fn multipart_parts<'b>(body: &'b str, boundary: &str) -> Vec<&'b str> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut sections = body.split(delimiter.as_str());
    sections.next(); // preamble
    for section in sections {
        if section.starts_with("--") {
            break;
        }
        parts.push(section.trim_start_matches(['\r', '\n']));
    }
    parts
}

fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|parameter| {
        let (name, value) = parameter.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Splits `headers\r\n\r\nbody` (tolerating bare LF).
fn split_head(text: &str) -> (&str, &str) {
    if let Some(index) = text.find("\r\n\r\n") {
        (&text[..index], &text[index + 4..])
    } else if let Some(index) = text.find("\n\n") {
        (&text[..index], &text[index + 2..])
    } else {
        (text, "")
    }
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

pub(crate) fn parse_batch_response(
    content_type: &str,
    body: &[u8],
    request_url: &str,
) -> Result<Vec<BatchResponse>, WebApiError> {
    let unexpected = |detail: String| WebApiError::UnexpectedResponse {
        method: Method::POST,
        url: format!("{request_url}$batch"),
        status: StatusCode::OK,
        detail,
    };
    let text = std::str::from_utf8(body)
        .map_err(|_| unexpected("the batch response is not UTF-8".to_owned()))?;
    let boundary = boundary_of(content_type)
        .or_else(|| {
            text.trim_start()
                .strip_prefix("--")
                .and_then(|rest| rest.lines().next())
                .map(|line| line.trim().to_owned())
        })
        .ok_or_else(|| unexpected("the batch response has no multipart boundary".to_owned()))?;
    let mut responses = Vec::new();
    for part in multipart_parts(text, &boundary) {
        let (head, rest) = split_head(part);
        match header(head, "content-type") {
            Some(kind) if kind.to_ascii_lowercase().starts_with("multipart/mixed") => {
                let inner = boundary_of(kind).ok_or_else(|| {
                    unexpected("a change set response has no boundary".to_owned())
                })?;
                for inner_part in multipart_parts(rest, &inner) {
                    responses.push(parse_operation(inner_part, request_url).map_err(unexpected)?);
                }
            }
            _ => responses.push(parse_operation(part, request_url).map_err(unexpected)?),
        }
    }
    Ok(responses)
}

/// One `application/http` part: its MIME headers, the status line, headers and body.
fn parse_operation(part: &str, request_url: &str) -> Result<BatchResponse, String> {
    let (mime_head, http_text) = split_head(part);
    let content_id = header(mime_head, "content-id").and_then(|id| id.parse().ok());
    let (http_head, body) = split_head(http_text);
    let status_line = http_head.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| format!("a batch part has no HTTP status line: `{status_line}`"))?;
    let entity_url = header(http_head, "odata-entityid")
        .or_else(|| header(http_head, "location"))
        .map(str::to_owned);
    let body = body.trim();
    let json = if body.is_empty() {
        None
    } else {
        serde_json::from_str(body).ok()
    };
    let error = (!status.is_success()).then(|| {
        let (code, message) = parse_error_body(body.as_bytes());
        ServiceError {
            method: Method::POST,
            url: format!("{request_url}$batch"),
            status,
            code,
            message,
            request_id: header(http_head, "req_id").map(str::to_owned),
            client_request_id: String::new(),
            retry_after: None,
        }
    });
    Ok(BatchResponse {
        status,
        content_id,
        id: entity_url.as_deref().and_then(id_from_entity_url),
        entity_url,
        body: json,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The targets as the client writes them for an organization at the root.
    #[allow(clippy::unnecessary_wraps)]
    pub(super) fn under_api_root(target: &str) -> Result<String, WebApiError> {
        Ok(if target.starts_with('$') {
            target.to_owned()
        } else {
            format!("/api/data/v9.2/{target}")
        })
    }

    #[test]
    fn the_body_uses_crlf_everywhere_and_references_content_ids() {
        let mut batch = Batch::new();
        batch.change_set(|set| {
            let account = set.create("accounts", serde_json::json!({"name": "Fabrikam (batch)"}));
            let contact = set.create("contacts", serde_json::json!({"lastname": "Ng", "parentcustomerid_account@odata.bind": account.bind()}));
            set.update_created(account, serde_json::json!({"primarycontactid@odata.bind": contact.bind()}));
        });
        batch.get("accounts?$select=name");
        let body = batch.to_body(under_api_root, "batch_x").unwrap();
        assert!(
            !body.replace("\r\n", "").contains('\n'),
            "a bare LF: {body:?}"
        );
        assert!(body.ends_with("--batch_x--\r\n"));
        assert!(body.contains("Content-ID: 1\r\n\r\nPOST /api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n{\"name\":\"Fabrikam (batch)\"}\r\n"));
        assert!(body.contains("\"parentcustomerid_account@odata.bind\":\"$1\""));
        assert!(body.contains("Content-ID: 3\r\n\r\nPATCH $1 HTTP/1.1\r\n"));
        assert!(body.contains("GET /api/data/v9.2/accounts?$select=name HTTP/1.1\r\nAccept: application/json\r\n\r\n--batch_x--"));
        assert_eq!(batch.len(), 4);
        assert!(!only_reads(&batch.items));
    }

    /// A batch of `sizes`: 1 a single request, n > 1 a change set of n creates.
    fn batch_of(sizes: &[usize]) -> Batch {
        let mut batch = Batch::new();
        for &size in sizes {
            if size == 1 {
                batch.request(Method::DELETE, "accounts(1)", None);
            } else {
                batch.change_set(|set| {
                    for _ in 0..size {
                        set.create("accounts", serde_json::json!({}));
                    }
                });
            }
        }
        batch
    }

    #[test]
    fn a_large_batch_is_cut_into_runs_with_change_sets_whole_and_order_kept() {
        let sizes_of = |batch: &Batch, runs: &[std::ops::Range<usize>]| -> Vec<usize> {
            runs.iter()
                .map(|run| batch.items[run.clone()].iter().map(Item::len).sum())
                .collect()
        };
        // Within the limit: one run.
        let batch = batch_of(&[1; 1000]);
        assert_eq!(batch.runs(1000).unwrap(), vec![0..1000]);
        // 2,500 singles: 1000, 1000, 500.
        let batch = batch_of(&[1; 2500]);
        let runs = batch.runs(1000).unwrap();
        assert_eq!(sizes_of(&batch, &runs), vec![1000, 1000, 500]);
        // A change set that would straddle the limit starts the next run.
        let batch = batch_of(&[1, 600, 300, 200, 1, 1000, 5]);
        let runs = batch.runs(1000).unwrap();
        assert_eq!(runs, vec![0..3, 3..5, 5..6, 6..7]);
        assert_eq!(sizes_of(&batch, &runs), vec![901, 201, 1000, 5]);
        // Every item once, in order.
        let flattened: Vec<usize> = runs.iter().flat_map(Clone::clone).collect();
        assert_eq!(flattened, (0..batch.items.len()).collect::<Vec<_>>());
        // A change set over the limit cannot be split.
        let error = batch_of(&[1, 1001]).runs(1000).unwrap_err();
        assert!(error.to_string().contains("1001 operations"), "{error}");
        // Content ids stay unique across the runs: references inside a change set hold.
        let batch = batch_of(&[600, 600]);
        let body = body_of(&batch.items[1..2], under_api_root, "b").unwrap();
        assert!(body.contains("Content-ID: 601\r\n"), "{body}");
    }

    /// The response of shared/reference/dataverse-webapi.md §9.2, verbatim.
    const RESPONSE: &str = "--batchresponse_7c1e\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2b9f\r\n\r\n--changesetresponse_2b9f\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\nHTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\nLocation: https://contoso.crm.dynamics.com/api/data/v9.2/accounts(6c1d2e3f-0000-0000-0000-00000000a001)\r\nOData-EntityId: https://contoso.crm.dynamics.com/api/data/v9.2/accounts(6c1d2e3f-0000-0000-0000-00000000a001)\r\n\r\n\r\n--changesetresponse_2b9f\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\nHTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\nOData-EntityId: https://contoso.crm.dynamics.com/api/data/v9.2/contacts(6c1d2e3f-0000-0000-0000-00000000c002)\r\n\r\n\r\n--changesetresponse_2b9f--\r\n--batchresponse_7c1e\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json; odata.metadata=minimal\r\nOData-Version: 4.0\r\n\r\n{\"value\":[{\"name\":\"Fabrikam (batch)\"}]}\r\n--batchresponse_7c1e\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 400 Bad Request\r\nREQ_ID: 0f3c9a52\r\nContent-Type: application/json; odata.metadata=minimal\r\n\r\n{\"error\":{\"code\":\"0x80044331\",\"message\":\"A validation error occurred.\"}}\r\n--batchresponse_7c1e--\r\n";

    #[test]
    fn responses_are_read_part_by_part() {
        let parts = parse_batch_response(
            "multipart/mixed; boundary=batchresponse_7c1e",
            RESPONSE.as_bytes(),
            "https://contoso.crm.dynamics.com/api/data/v9.2/",
        )
        .unwrap();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0].content_id, Some(1));
        assert_eq!(parts[0].status, StatusCode::NO_CONTENT);
        assert_eq!(
            parts[0].id.unwrap().to_string(),
            "6c1d2e3f-0000-0000-0000-00000000a001"
        );
        assert_eq!(
            parts[1].id.unwrap().to_string(),
            "6c1d2e3f-0000-0000-0000-00000000c002"
        );
        assert_eq!(
            parts[2].body.as_ref().unwrap()["value"][0]["name"],
            "Fabrikam (batch)"
        );
        let failure = parts[3].error.as_ref().unwrap();
        assert_eq!(failure.code(), "0x80044331");
        assert_eq!(failure.request_id(), Some("0f3c9a52"));
        assert!(!parts[3].is_success());
        // The same response with bare LF line ends still parses.
        let lf = RESPONSE.replace("\r\n", "\n");
        assert_eq!(
            parse_batch_response(
                "multipart/mixed; boundary=\"batchresponse_7c1e\"",
                lf.as_bytes(),
                "x/"
            )
            .unwrap()
            .len(),
            4
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::query::Literal;
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    const API: &str = "https://contoso.crm.dynamics.com/api/data/v9.2/";

    fn config() -> Config {
        Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        }
    }

    /// One generated operation; names and paths are what callers write (no CR or LF),
    /// key values and JSON bodies are anything.
    #[derive(Clone, Debug)]
    enum Op {
        Get(String),
        Create(String, String),
        Update(String, String, String),
        Delete(String),
        UpdateCreated(String),
    }

    fn op() -> impl Strategy<Value = Op> {
        let set = "[a-z]{1,12}";
        prop_oneof![
            "[a-z]{1,12}(\\?\\$select=[a-z,]{1,20})?".prop_map(Op::Get),
            (set, any::<String>()).prop_map(|(s, v)| Op::Create(s, v)),
            (set, any::<String>(), any::<String>()).prop_map(|(s, k, v)| Op::Update(s, k, v)),
            set.prop_map(Op::Delete),
            any::<String>().prop_map(Op::UpdateCreated),
        ]
    }

    /// A batch of single GETs and change sets built from `ops`.
    fn build(items: &[(bool, Vec<Op>)]) -> Batch {
        let mut batch = Batch::new();
        for (in_set, ops) in items {
            if *in_set {
                batch.change_set(|set| {
                    let mut last = None;
                    for op in ops {
                        let reference = match op {
                            Op::Get(path) => set.request(Method::POST, path, None),
                            Op::Create(entity_set, value) => {
                                set.create(entity_set, serde_json::json!({ "name": value }))
                            }
                            Op::Update(entity_set, key, value) => set.update(
                                entity_set,
                                &RecordKey::alternate([("code", Literal::String(key.clone()))]),
                                serde_json::json!({ "name": value }),
                            ),
                            Op::Delete(entity_set) => {
                                set.delete(entity_set, &RecordKey::id(Guid::new_random()))
                            }
                            Op::UpdateCreated(value) => match last {
                                Some(created) => set
                                    .update_created(created, serde_json::json!({ "name": value })),
                                None => set.create("accounts", serde_json::json!({})),
                            },
                        };
                        last = Some(reference);
                    }
                });
            } else {
                for op in ops {
                    match op {
                        Op::Get(path) => {
                            batch.get(path);
                        }
                        Op::Create(entity_set, value) => {
                            batch.request(
                                Method::POST,
                                entity_set,
                                Some(serde_json::json!({ "name": value })),
                            );
                        }
                        _ => {
                            batch.request(Method::DELETE, "accounts(1)", None);
                        }
                    }
                }
            }
        }
        batch
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn response_parsing_never_panics_on_text(
            content_type in "multipart/mixed(; boundary=[a-z_]{0,8})?|[ -~]{0,30}",
            body in "(--[a-z_]{0,8}(--)?|\r\n|\n|Content-Type: multipart/mixed; boundary=[a-z_]{0,8}|Content-ID: [0-9a-z]{0,3}|HTTP/1.1 [0-9]{0,4} [A-Z]{0,3}|OData-EntityId: [ -~]{0,50}|\\{[ -~]{0,20}\\}|[ -~]{0,10})*",
        ) {
            let _ = parse_batch_response(&content_type, body.as_bytes(), API);
        }

        #[test]
        fn response_parsing_never_panics_on_bytes(
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let _ = parse_batch_response("multipart/mixed; boundary=b", &body, API);
            let _ = parse_batch_response("", &body, API);
        }

        #[test]
        fn bodies_are_well_formed(
            items in proptest::collection::vec(
                (any::<bool>(), proptest::collection::vec(op(), 1..5)),
                0..5,
            ),
        ) {
            let batch = build(&items);
            let body = batch.to_body(super::tests::under_api_root, "batch_p").unwrap();
            prop_assert!(body.ends_with("\r\n"));
            prop_assert!(!body.replace("\r\n", "").contains(['\r', '\n']), "{:?}", body);
            let lines: Vec<&str> = body.split("\r\n").collect();
            let mut open_sets: Vec<String> = Vec::new();
            let mut batch_closes = 0;
            for line in &lines {
                if let Some(set) = line
                    .strip_prefix("Content-Type: multipart/mixed; boundary=\"")
                    .and_then(|rest| rest.strip_suffix('"'))
                {
                    prop_assert!(open_sets.is_empty(), "a change set inside a change set");
                    open_sets.push(set.to_owned());
                } else if *line == "--batch_p--" {
                    batch_closes += 1;
                    prop_assert!(open_sets.is_empty(), "the batch closes inside a change set");
                } else if *line == "--batch_p" {
                    prop_assert!(open_sets.is_empty(), "a batch part inside a change set");
                } else if let Some(set) = line.strip_prefix("--").and_then(|rest| rest.strip_suffix("--")) {
                    let closed = open_sets.pop();
                    prop_assert_eq!(closed.as_deref(), Some(set));
                }
            }
            prop_assert_eq!(batch_closes, 1);
            prop_assert_eq!(lines[lines.len() - 2], "--batch_p--");
            prop_assert!(open_sets.is_empty());
            let parts = lines.iter().filter(|line| **line == "--batch_p").count();
            prop_assert_eq!(parts, items.iter().map(|(in_set, ops)| if *in_set { 1 } else { ops.len() }).sum::<usize>());
            // Whatever the body, reading it back as a response does not panic.
            let _ = parse_batch_response("multipart/mixed; boundary=batch_p", body.as_bytes(), API);
        }
    }
}
