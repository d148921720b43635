//! `$batch` over HTTP: the reference's worked example (a change set with Content-ID
//! references, then a GET) answered in Dataverse's wire format, atomic change sets,
//! `odata.continue-on-error`, request lines whose URL holds raw spaces, and the framing errors.

use d365_emulator::Emulator;
use reqwest::Method;
use serde_json::Value;

use crate::common::{Api, assert_error, send};

fn batch(api: &Api, boundary: &str, body: String) -> reqwest::RequestBuilder {
    api.request(Method::POST, "$batch")
        .header(
            "Content-Type",
            format!("multipart/mixed; boundary=\"{boundary}\""),
        )
        .body(body)
}

fn change_set_part(id: u32, request_line: &str, body: &str) -> String {
    format!(
        "--changeset_c\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {id}\r\n\r\n{request_line} HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n{body}\r\n"
    )
}

fn example(account_body: &str) -> String {
    format!(
        "--batch_b\r\nContent-Type: multipart/mixed; boundary=\"changeset_c\"\r\n\r\n{}{}{}--changeset_c--\r\n\r\n--batch_b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET /api/data/v9.2/accounts?$select=name&$filter=name%20eq%20'Fabrikam%20(batch)' HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n--batch_b--\r\n",
        change_set_part(1, "POST /api/data/v9.2/accounts", account_body),
        change_set_part(
            2,
            "POST /api/data/v9.2/contacts",
            r#"{"lastname":"Ng","parentcustomerid_account@odata.bind":"$1"}"#
        ),
        change_set_part(3, "PATCH $1", r#"{"primarycontactid@odata.bind":"$2"}"#),
    )
}

#[tokio::test]
async fn the_reference_example_round_trips() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    let reply = send(batch(
        &api,
        "batch_b",
        example(r#"{"name":"Fabrikam (batch)"}"#),
    ))
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let content_type = reply.headers["content-type"]
        .to_str()
        .expect("ct")
        .to_owned();
    let boundary = content_type
        .strip_prefix("multipart/mixed; boundary=")
        .expect("boundary");
    assert!(boundary.starts_with("batchresponse_"));
    let text = reply.body.as_str().expect("text").to_owned();
    let root = emulator.web_api_url();
    assert!(
        text.starts_with(&format!(
            "--{boundary}\r\nContent-Type: multipart/mixed; boundary=changesetresponse_"
        )),
        "{text}"
    );
    assert!(text.ends_with(&format!("--{boundary}--\r\n")), "{text}");
    for id in 1..=3 {
        assert!(text.contains(&format!("Content-Transfer-Encoding: binary\r\nContent-ID: {id}\r\n\r\nHTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\nLocation: {root}")), "{text}");
    }
    assert!(text.contains("HTTP/1.1 200 OK\r\nContent-Type: application/json; odata.metadata=minimal; odata.streaming=true\r\nOData-Version: 4.0\r\n"), "{text}");
    assert!(text.contains(r#""name":"Fabrikam (batch)""#), "{text}");

    let accounts = api
        .get("accounts?$select=name,_primarycontactid_value")
        .await;
    let account = &accounts.body["value"][0];
    let contacts = api
        .get("contacts?$select=lastname,_parentcustomerid_value")
        .await;
    let contact = &contacts.body["value"][0];
    assert_eq!(account["_primarycontactid_value"], contact["contactid"]);
    assert_eq!(contact["_parentcustomerid_value"], account["accountid"]);
}

/// Microsoft's Python Dataverse SDK writes a query's `$filter` into a part's request line
/// unencoded; like OData's batch reader, the URL is everything between the method and the
/// HTTP version.
#[tokio::test]
async fn a_request_line_may_hold_raw_spaces() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    let body = example(r#"{"name":"Fabrikam (batch)"}"#).replace(
        "$filter=name%20eq%20'Fabrikam%20(batch)'",
        "$filter=name eq 'Fabrikam (batch)'",
    );
    assert!(body.contains("name eq 'Fabrikam (batch)' HTTP/1.1\r\n"));
    let reply = send(batch(&api, "batch_b", body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let text = reply.body.as_str().expect("text");
    assert!(text.contains("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains(r#""name":"Fabrikam (batch)""#), "{text}");
}

#[tokio::test]
async fn change_sets_are_atomic_and_errors_stop_or_continue() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    // The third request fails (unknown property): nothing of the change set stays.
    let failing = example(r#"{"name":"Fabrikam (batch)"}"#)
        .replace(r#"{"primarycontactid@odata.bind":"$2"}"#, r#"{"nope":1}"#);
    let reply = send(batch(&api, "batch_b", failing.clone())).await;
    assert_eq!(reply.status, 400);
    let text = reply.body.as_str().expect("text");
    assert!(
        text.contains("Content-ID: 3\r\n\r\nHTTP/1.1 400 Bad Request\r\nREQ_ID: "),
        "{text}"
    );
    assert!(text.contains("Invalid property 'nope'"), "{text}");
    assert!(
        !text.contains("HTTP/1.1 200 OK"),
        "processing stopped: {text}"
    );
    assert_eq!(
        api.get("accounts").await.body["value"],
        Value::Array(Vec::new())
    );
    assert_eq!(
        api.get("contacts").await.body["value"],
        Value::Array(Vec::new())
    );

    let reply =
        send(batch(&api, "batch_b", failing).header("Prefer", "odata.continue-on-error")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .body
            .as_str()
            .expect("text")
            .contains("HTTP/1.1 200 OK"),
        "the GET still ran"
    );

    // Content-ID references that do not exist.
    let body = format!(
        "--batch_b\r\nContent-Type: multipart/mixed; boundary=changeset_c\r\n\r\n{}--changeset_c--\r\n--batch_b--\r\n",
        change_set_part(1, "PATCH $9", "{}")
    );
    let reply = send(batch(&api, "batch_b", body)).await;
    assert!(
        reply
            .body
            .as_str()
            .expect("text")
            .contains("Content-ID Reference: '$9' does not exist in the batch context."),
        "{}",
        reply.body
    );

    let framing: Vec<(String, &str, u16, &str)> = vec![
        (
            example("{}").replace("\r\n", "\n"),
            "batch_b",
            400,
            "0x80048d19",
        ),
        (
            example("{}").trim_end().to_owned(),
            "batch_b",
            400,
            "0x80048d19",
        ),
        (example("{}"), "other", 400, "0x80048d19"),
    ];
    for (body, boundary, status, code) in framing {
        let reply = send(batch(&api, boundary, body)).await;
        assert_error(&reply, status, code, "");
    }
    let get = send(api.request(Method::GET, "$batch")).await;
    assert_error(&get, 404, "", "No HTTP resource");
}
