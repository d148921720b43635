//! `$batch` (`POST /api/data/v9.2/$batch`): a strict multipart/mixed parser (every framing
//! line must end in CRLF, at most 1000 requests, no GET inside a change set), execution with
//! atomic change sets (an SQLite savepoint per change set), each part answered by the same
//! dispatcher as a plain request, Content-ID references (`$1` in URLs and in `@odata.bind` /
//! `@odata.id` values), `odata.continue-on-error`, and the response in Dataverse's wire
//! format (`batchresponse_…` / `changesetresponse_…` boundaries, `HTTP/1.1 204 No Content`
//! lines).

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use serde_json::Value;

use super::dispatch;
use super::errors::{ApiError, ApiResult};
use super::odata::Prefer;
use super::request::{Ctx, DvRequest};
use super::response::{DvResponse, JSON};
use super::store::Db;

/// Dataverse's limit on requests in one batch.
pub(crate) const MAX_REQUESTS: usize = 1000;

/// Answers a request to `$batch`: parses the multipart body, runs its parts (each through
/// the same dispatcher as a plain request) and renders the multipart answer.
pub(crate) fn respond(ctx: &Ctx<'_>, db: &mut Db, request: &DvRequest) -> DvResponse {
    if request.method != Method::POST {
        return ApiError::no_resource(&format!("{}$batch", ctx.api_root)).into_response();
    }
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let continue_on_error = Prefer::from_headers(&request.headers).continue_on_error;
    match parse(content_type, &request.body) {
        Ok(items) => execute(ctx, db, &items, continue_on_error),
        Err(err) => err.into_response(),
    }
}

/// One request of a batch.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) content_id: Option<String>,
    pub(crate) method: Method,
    pub(crate) target: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// A top-level batch item.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Single(Part),
    ChangeSet(Vec<Part>),
}

/// The `boundary` parameter of a multipart content type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    params.split(';').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn framing(line: &str) -> ApiResult<&str> {
    if line.contains('\n') || line.contains('\r') {
        return Err(ApiError::unreadable_batch("a line does not end in CRLF"));
    }
    Ok(line)
}

/// The lines of each part between `--boundary` delimiters.
fn split_parts<'a>(lines: &[&'a str], boundary: &str) -> ApiResult<Vec<Vec<&'a str>>> {
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut iter = lines.iter();
    loop {
        match iter.next() {
            Some(line) if line.trim_end() == delimiter => break,
            Some(line) if line.trim_end() == close => return Ok(Vec::new()),
            Some(line) => {
                framing(line)?;
            }
            None => {
                return Err(ApiError::unreadable_batch(&format!(
                    "no '{delimiter}' line"
                )));
            }
        }
    }
    let mut parts = Vec::new();
    let mut current = Vec::new();
    for line in iter {
        let trimmed = line.trim_end();
        if trimmed == delimiter {
            parts.push(std::mem::take(&mut current));
        } else if trimmed == close {
            parts.push(current);
            return Ok(parts);
        } else {
            current.push(*line);
        }
    }
    Err(ApiError::unreadable_batch(&format!(
        "no closing '{close}' line"
    )))
}

fn headers(lines: &mut std::slice::Iter<'_, &str>) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for line in lines.by_ref() {
        let line = framing(line)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ApiError::unreadable_batch(&format!("'{line}' is not a header")))?;
        out.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(out)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn http_part(part_headers: &[(String, String)], lines: &[&str]) -> ApiResult<Part> {
    let content_type = header(part_headers, "content-type").unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/http")
    {
        return Err(ApiError::unreadable_batch("a part is not application/http"));
    }
    let mut iter = lines.iter();
    let request_line = loop {
        match iter.next() {
            Some(&"") => {}
            Some(line) => break framing(line)?,
            None => return Err(ApiError::unreadable_batch("a part has no request line")),
        }
    };
    let Some((method, target)) = request_target(request_line) else {
        return Err(ApiError::unreadable_batch(&format!(
            "'{request_line}' is not a request line"
        )));
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| ApiError::unreadable_batch(&format!("'{method}' is not a method")))?;
    let request_headers = headers(&mut iter)?;
    let mut header_map = HeaderMap::new();
    for (name, value) in &request_headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            header_map.append(name, value);
        }
    }
    let body = iter.copied().collect::<Vec<_>>().join("\r\n");
    Ok(Part {
        content_id: header(part_headers, "content-id").map(str::to_owned),
        method,
        target: target.to_owned(),
        headers: header_map,
        body: body.trim_end().as_bytes().to_vec(),
    })
}

/// Splits a part's request line into its method and target. The target is everything between
/// the first space and the last one (before `HTTP/1.1`), as OData's own batch reader takes it:
/// clients put URLs with raw spaces there (Microsoft's Python Dataverse SDK sends
/// `$filter=lastname eq 'x'` unencoded), and Dataverse answers them.
fn request_target(request_line: &str) -> Option<(&str, &str)> {
    let (method, rest) = request_line.trim().split_once(' ')?;
    let rest = rest.trim();
    let target = match rest.rsplit_once(' ') {
        Some((target, version)) if version.starts_with("HTTP/") => target.trim(),
        _ => rest,
    };
    (!method.is_empty() && !target.is_empty()).then_some((method, target))
}

/// Parses a batch body.
fn parse(content_type: &str, body: &[u8]) -> ApiResult<Vec<Item>> {
    let outer = boundary(content_type).ok_or_else(|| {
        ApiError::bad_request(
            "0x80048d19",
            "The content type of a $batch request must be multipart/mixed with a boundary.",
        )
    })?;
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::unreadable_batch("the body is not UTF-8"))?;
    let Some(text) = text.strip_suffix("\r\n") else {
        return Err(ApiError::unreadable_batch("the body does not end in CRLF"));
    };
    let lines: Vec<&str> = text.split("\r\n").collect();
    let mut items = Vec::new();
    let mut count = 0;
    for part in split_parts(&lines, &outer)? {
        let mut iter = part.iter();
        let part_headers = headers(&mut iter)?;
        let rest: Vec<&str> = iter.copied().collect();
        let content_type = header(&part_headers, "content-type").unwrap_or_default();
        if let Some(change_set) = boundary(content_type) {
            let mut parts = Vec::new();
            for inner in split_parts(&rest, &change_set)? {
                let mut iter = inner.iter();
                let inner_headers = headers(&mut iter)?;
                let rest: Vec<&str> = iter.copied().collect();
                let part = http_part(&inner_headers, &rest)?;
                if part.method == Method::GET {
                    return Err(ApiError::bad_request(
                        "0x80060888",
                        "A GET request is not allowed inside a change set.",
                    ));
                }
                parts.push(part);
            }
            count += parts.len();
            items.push(Item::ChangeSet(parts));
        } else {
            items.push(Item::Single(http_part(&part_headers, &rest)?));
            count += 1;
        }
        if count > MAX_REQUESTS {
            return Err(ApiError::bad_request(
                "0x0",
                format!("The number of requests in the batch exceeds the limit of {MAX_REQUESTS}."),
            ));
        }
    }
    Ok(items)
}

fn missing_reference(reference: &str) -> ApiError {
    ApiError::bad_request(
        "0x0",
        format!("Content-ID Reference: '{reference}' does not exist in the batch context."),
    )
}

/// Turns a part into a request below the service root, resolving `$n` references.
fn request_of(ctx: &Ctx<'_>, part: &Part, ids: &HashMap<String, String>) -> ApiResult<DvRequest> {
    let target = &part.target;
    if target.len() > super::odata::MAX_BATCH_URL_LEN {
        return Err(ApiError::bad_request(
            "0x80060888",
            format!(
                "A request URL inside the batch is {} characters long, more than the {} Dataverse accepts.",
                target.len(),
                super::odata::MAX_BATCH_URL_LEN
            ),
        ));
    }
    let (path_and_query, resolved) = if let Some(reference) = target.strip_prefix('$') {
        let end = reference.find(['/', '?']).unwrap_or(reference.len());
        let entity = ids
            .get(&reference[..end])
            .ok_or_else(|| missing_reference(&format!("${}", &reference[..end])))?;
        (format!("{entity}{}", &reference[end..]), true)
    } else if let Some(rest) = target.strip_prefix(ctx.api_root) {
        (rest.to_owned(), false)
    } else if let Some(rest) = super::odata::path::after_api_root(target) {
        (rest.to_owned(), false)
    } else {
        (target.trim_start_matches('/').to_owned(), false)
    };
    let _ = resolved;
    let (path, query) = path_and_query
        .split_once('?')
        .map_or((path_and_query.as_str(), ""), |(p, q)| (p, q));
    let mut body = part.body.clone();
    if let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(&body) {
        let mut changed = false;
        for (key, value) in &mut object {
            if !(key.ends_with("@odata.bind") || key == "@odata.id") {
                continue;
            }
            if let Value::String(text) = value
                && let Some(reference) = text.strip_prefix('$')
            {
                let entity = ids.get(reference).ok_or_else(|| missing_reference(text))?;
                *value = Value::String(format!("/{entity}"));
                changed = true;
            }
        }
        if changed {
            body = serde_json::to_vec(&object).unwrap_or(body);
        }
    }
    Ok(DvRequest {
        method: part.method.clone(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers: part.headers.clone(),
        body,
    })
}

fn run(ctx: &Ctx<'_>, db: &mut Db, part: &Part, ids: &mut HashMap<String, String>) -> DvResponse {
    let response = match request_of(ctx, part, ids) {
        Ok(request) => dispatch::execute(ctx, db, &request),
        Err(err) => err.into_response(),
    };
    if let (Some(id), Some(url)) = (&part.content_id, response.header_value("OData-EntityId")) {
        let entity = url.strip_prefix(ctx.api_root).unwrap_or(url).to_owned();
        ids.insert(id.clone(), entity);
    }
    response
}

fn write_part(out: &mut String, content_id: Option<&str>, response: &DvResponse) {
    out.push_str("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    if let Some(id) = content_id {
        let _ = write!(out, "Content-ID: {id}\r\n");
    }
    let reason = response.status.canonical_reason().unwrap_or("");
    let _ = write!(
        out,
        "\r\nHTTP/1.1 {} {reason}\r\n",
        response.status.as_u16()
    );
    let content_type = response.header_value("Content-Type");
    if !response.is_success() {
        let _ = write!(out, "REQ_ID: {}\r\n", uuid::Uuid::new_v4());
    }
    if let Some(content_type) = content_type {
        if response.is_success() && content_type == JSON {
            let _ = write!(out, "Content-Type: {JSON}; odata.streaming=true\r\n");
        } else {
            let _ = write!(out, "Content-Type: {content_type}\r\n");
        }
    }
    out.push_str("OData-Version: 4.0\r\n");
    if let Some(url) = response.header_value("OData-EntityId") {
        let _ = write!(out, "Location: {url}\r\n");
    }
    for (name, value) in &response.headers {
        if !name.eq_ignore_ascii_case("Content-Type") {
            let _ = write!(out, "{name}: {value}\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(&String::from_utf8_lossy(&response.body));
    out.push_str("\r\n");
}

/// Runs the batch and renders Dataverse's multipart answer.
fn execute(ctx: &Ctx<'_>, db: &mut Db, items: &[Item], continue_on_error: bool) -> DvResponse {
    let batch = format!("batchresponse_{}", uuid::Uuid::new_v4());
    let mut out = String::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut stopped = false;
    for item in items {
        match item {
            Item::Single(part) => {
                let response = run(ctx, db, part, &mut ids);
                let _ = write!(out, "--{batch}\r\n");
                write_part(&mut out, None, &response);
                if !response.is_success() && !continue_on_error {
                    stopped = true;
                    break;
                }
            }
            Item::ChangeSet(parts) => {
                let change_set = format!("changesetresponse_{}", uuid::Uuid::new_v4());
                let before = ids.clone();
                let savepoint = db.conn.execute_batch("SAVEPOINT d365_changeset");
                let mut responses = Vec::new();
                let mut failure = None;
                if let Err(err) = savepoint {
                    failure = Some((None, ApiError::from(err).into_response()));
                } else {
                    for part in parts {
                        let response = run(ctx, db, part, &mut ids);
                        if response.is_success() {
                            responses.push((part.content_id.clone(), response));
                        } else {
                            failure = Some((part.content_id.clone(), response));
                            break;
                        }
                    }
                }
                if failure.is_some() {
                    let _ = db
                        .conn
                        .execute_batch("ROLLBACK TO d365_changeset; RELEASE d365_changeset");
                    ids = before;
                } else if let Err(err) = db.conn.execute_batch("RELEASE d365_changeset") {
                    failure = Some((None, ApiError::from(err).into_response()));
                }
                let _ = write!(
                    out,
                    "--{batch}\r\nContent-Type: multipart/mixed; boundary={change_set}\r\n\r\n"
                );
                match &failure {
                    // A failed change set answers with the failing request only.
                    Some((content_id, response)) => {
                        let _ = write!(out, "--{change_set}\r\n");
                        write_part(&mut out, content_id.as_deref(), response);
                    }
                    None => {
                        for (content_id, response) in &responses {
                            let _ = write!(out, "--{change_set}\r\n");
                            write_part(&mut out, content_id.as_deref(), response);
                        }
                    }
                }
                let _ = write!(out, "--{change_set}--\r\n");
                if failure.is_some() && !continue_on_error {
                    stopped = true;
                    break;
                }
            }
        }
    }
    let _ = write!(out, "--{batch}--\r\n");
    let status = if stopped {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    DvResponse::text(status, &format!("multipart/mixed; boundary={batch}"), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/mixed; boundary=\"batch_x\"";

    #[test]
    fn the_reference_example_parses() {
        let body = "--batch_x\r\nContent-Type: multipart/mixed; boundary=\"changeset_y\"\r\n\r\n--changeset_y\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\nPOST /api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n{\"name\":\"a\"}\r\n--changeset_y--\r\n\r\n--batch_x\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET /api/data/v9.2/accounts?$select=name HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n--batch_x--\r\n";
        let items = parse(CT, body.as_bytes()).expect("parses");
        assert_eq!(items.len(), 2);
        let Item::ChangeSet(parts) = &items[0] else {
            panic!("change set first")
        };
        assert_eq!(parts[0].content_id.as_deref(), Some("1"));
        assert_eq!(parts[0].method, Method::POST);
        assert_eq!(parts[0].body, b"{\"name\":\"a\"}");
        let Item::Single(get) = &items[1] else {
            panic!("single second")
        };
        assert_eq!(get.target, "/api/data/v9.2/accounts?$select=name");
        assert!(get.body.is_empty());
    }

    #[test]
    fn a_target_may_hold_spaces() {
        assert_eq!(
            request_target("GET /api/data/v9.2/contacts?$filter=lastname eq 'A B' HTTP/1.1"),
            Some(("GET", "/api/data/v9.2/contacts?$filter=lastname eq 'A B'"))
        );
        assert_eq!(request_target("PATCH $1 HTTP/1.1"), Some(("PATCH", "$1")));
        assert_eq!(request_target("GET accounts"), Some(("GET", "accounts")));
        assert_eq!(request_target("GET"), None);
    }

    #[test]
    fn malformed_batches_are_refused() {
        let good = "--batch_x\r\nContent-Type: application/http\r\n\r\nGET /api/data/v9.2/accounts HTTP/1.1\r\n\r\n\r\n--batch_x--\r\n";
        let in_change_set = "--batch_x\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n\r\nGET /api/data/v9.2/accounts HTTP/1.1\r\n\r\n\r\n--c--\r\n--batch_x--\r\n";
        let cases: Vec<(String, &str, &str)> = vec![
            (good.replace("\r\n", "\n"), CT, "0x80048d19"),
            (good.trim_end().to_owned(), CT, "0x80048d19"),
            (good.replace("--batch_x--\r\n", ""), CT, "0x80048d19"),
            (good.to_owned(), "application/json", "0x80048d19"),
            (in_change_set.to_owned(), CT, "0x80060888"),
        ];
        for (body, content_type, code) in cases {
            let err = parse(content_type, body.as_bytes()).expect_err(&body);
            assert_eq!(err.code, code, "{body:?}: {}", err.message);
        }
        let many: String = std::iter::repeat_n(
            "--batch_x\r\nContent-Type: application/http\r\n\r\nGET /api/data/v9.2/accounts HTTP/1.1\r\n\r\n",
            MAX_REQUESTS + 1,
        )
        .collect::<String>()
            + "--batch_x--\r\n";
        let err = parse(CT, many.as_bytes()).expect_err("too many");
        assert!(err.message.contains("1000"), "{}", err.message);
        assert!(parse(CT, good.as_bytes()).is_ok());
    }
}
