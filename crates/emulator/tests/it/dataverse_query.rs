//! Queries: `$select`, `$filter`, `$orderby`, `$top`, `$count`, paging with
//! `odata.maxpagesize` and a keyset `$skiptoken` that stays correct while rows are inserted
//! between pages, annotations, FetchXML with paging cookies, and refused options.

use std::collections::HashSet;

use d365_emulator::Emulator;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{self, Api, assert_error, send};

fn names(reply: &common::Reply) -> Vec<String> {
    reply.body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no value: {}", reply.body))
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn query_options_select_filter_order_and_count() {
    let emulator = Emulator::builder().start().await.expect("started");
    let api = Api::new(&emulator).await;
    for (name, employees, city) in [
        ("Alpha", 10, "Oslo"),
        ("beta", 20, "Rome"),
        ("Gamma", 30, "Oslo"),
        ("O'Neil", 40, "Paris"),
        ("Delta", 5, ""),
    ] {
        let mut body = json!({"name": name, "numberofemployees": employees, "lastonholdtime": "2024-05-01T10:00:00Z"});
        if !city.is_empty() {
            body["address1_city"] = json!(city);
        }
        api.create("accounts", &body).await;
    }
    let cases: &[(&str, &[&str])] = &[
        (
            "$filter=address1_city eq 'Oslo'&$orderby=name",
            &["Alpha", "Gamma"],
        ),
        (
            "$filter=address1_city eq 'oslo'&$orderby=name",
            &["Alpha", "Gamma"],
        ),
        (
            "$filter=numberofemployees gt 10 and numberofemployees le 30&$orderby=numberofemployees desc",
            &["Gamma", "beta"],
        ),
        (
            "$filter=not (numberofemployees lt 30) or name eq 'Alpha'&$orderby=name",
            &["Alpha", "Gamma", "O'Neil"],
        ),
        (
            "$filter=contains(name,'l')&$orderby=name",
            &["Alpha", "Delta", "O'Neil"],
        ),
        (
            "$filter=startswith(name,'g') or endswith(name,'ta')&$orderby=name",
            &["beta", "Delta", "Gamma"],
        ),
        ("$filter=name eq 'O''Neil'", &["O'Neil"]),
        ("$filter=address1_city eq null", &["Delta"]),
        (
            "$filter=address1_city ne 'Oslo'&$orderby=name",
            &["beta", "Delta", "O'Neil"],
        ),
        (
            "$filter=lastonholdtime ge 2024-05-01T10:00:00Z and lastonholdtime lt 2024-05-02&$orderby=name&$top=2",
            &["Alpha", "beta"],
        ),
        ("$filter=creditonhold eq true", &[]),
        ("$filter=name eq @p1&@p1='Gamma'", &["Gamma"]),
        (
            "$orderby=address1_city desc,name asc&$top=3",
            &["beta", "O'Neil", "Alpha"],
        ),
    ];
    for (query, expected) in cases {
        let reply = api.get(&format!("accounts?$select=name&{query}")).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        assert_eq!(names(&reply), *expected, "{query}");
    }
    let reply = api
        .get("accounts?$select=name,numberofemployees&$count=true&$filter=numberofemployees ge 20")
        .await;
    assert_eq!(reply.body["@odata.count"], 3);
    assert_eq!(
        reply.body["@odata.context"],
        format!(
            "{}$metadata#accounts(name,numberofemployees)",
            emulator.web_api_url()
        )
    );
    let first = &reply.body["value"][0];
    assert!(
        first["@odata.etag"].is_string()
            && first["accountid"].is_string()
            && first.get("address1_city").is_none(),
        "{first}"
    );
    let count = send(api.request(Method::GET, "accounts/$count")).await;
    assert_eq!(count.body, Value::from(5));

    let refused: &[(&str, u16, &str, &str)] = &[
        (
            "accounts?$skip=1",
            400,
            "0x80060888",
            "The query parameter $skip is not supported",
        ),
        (
            "accounts?$search=x",
            400,
            "0x80060888",
            "$search is not supported",
        ),
        (
            "accounts?$format=json",
            400,
            "0x80060888",
            "$format is not supported",
        ),
        (
            "accounts?$filter=Name eq 'x'",
            400,
            "0x0",
            "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'.",
        ),
        (
            "accounts?$filter=name eq 1",
            400,
            "0x0",
            "incompatible types",
        ),
        (
            "accounts?$filter=name eq",
            400,
            "0x80060888",
            "Syntax error",
        ),
        ("accounts?$top=x", 400, "0x80060888", "$top"),
        ("accounts?$count=maybe", 400, "0x80060888", "count"),
        ("accounts?$skiptoken=abc", 400, "0x80040203", "skiptoken"),
        (
            "Accounts",
            404,
            "0x8006088a",
            "Resource not found for the segment 'Accounts'.",
        ),
    ];
    for (path, status, code, message) in refused {
        assert_error(&api.get(path).await, *status, code, message);
    }
}

#[tokio::test]
async fn paging_returns_every_row_once_while_rows_are_inserted() {
    let emulator = Emulator::builder()
        .generated_accounts(20_000)
        .start()
        .await
        .expect("started");
    let api = Api::new(&emulator).await;
    let mut seen = HashSet::new();
    let mut next = Some("accounts?$select=name,accountnumber&$orderby=name desc".to_owned());
    let mut pages = 0;
    let mut inserted = Vec::new();
    while let Some(url) = next.take() {
        let reply = send(
            api.request(Method::GET, &url)
                .header("Prefer", "odata.maxpagesize=1000"),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        if pages == 0 {
            assert_eq!(
                reply.headers["preference-applied"],
                "odata.maxpagesize=1000"
            );
        }
        for row in reply.body["value"].as_array().expect("rows") {
            let id = row["accountid"].as_str().expect("id").to_owned();
            assert!(seen.insert(id), "a row came twice");
        }
        next = reply.body["@odata.nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(link.starts_with(&emulator.web_api_url()), "{link}");
            assert!(
                link.contains("$skiptoken=%3Ccookie%20pagenumber=%22"),
                "{link}"
            );
            assert!(
                link.contains("pagingcookie=%22%253ccookie%2520page%253d%2522"),
                "{link}"
            );
            assert!(
                link.contains("$select=name,accountnumber&$orderby=name%20desc")
                    || link.contains("$orderby=name desc"),
                "{link}"
            );
        }
        // Insert rows before and after the cursor: those behind it never appear, those ahead
        // appear once.
        pages += 1;
        for name in [
            format!("Generated account 0000000-{pages}"),
            format!("Generated account 9999999-{pages}"),
            format!("Generated account 0010000-{pages}"),
        ] {
            inserted.push(api.create("accounts", &json!({"name": name})).await);
        }
    }
    assert_eq!(
        pages, 21,
        "20,000 rows and the ones inserted ahead of the cursor"
    );
    let generated = seen.len() - inserted.iter().filter(|id| seen.contains(*id)).count();
    assert_eq!(generated, 20_000);

    // A client that re-encodes the link breaks, as it does against Dataverse.
    let reply = send(
        api.request(Method::GET, "accounts?$select=name")
            .header("Prefer", "odata.maxpagesize=10"),
    )
    .await;
    let link = reply.body["@odata.nextLink"].as_str().expect("link");
    let reencoded = link.replace('%', "%25");
    assert_error(
        &send(
            api.request(Method::GET, &reencoded)
                .header("Prefer", "odata.maxpagesize=10"),
        )
        .await,
        400,
        "0x80040203",
        "skiptoken",
    );
    let page2 = send(
        api.request(Method::GET, link)
            .header("Prefer", "odata.maxpagesize=10"),
    )
    .await;
    assert_eq!(page2.body["value"].as_array().expect("rows").len(), 10);
    // $top is ignored with a page size; without, it limits and ends paging.
    let top = api.get("accounts?$select=name&$top=3").await;
    assert_eq!(top.body["value"].as_array().expect("rows").len(), 3);
    assert!(top.body.get("@odata.nextLink").is_none());
    let default_page = api.get("accounts?$select=name").await;
    assert_eq!(
        default_page.body["value"].as_array().expect("rows").len(),
        5000
    );
    assert!(default_page.body["@odata.nextLink"].is_string());
    assert_error(
        &send(
            api.request(Method::GET, "accounts")
                .header("Prefer", "odata.maxpagesize=0"),
        )
        .await,
        400,
        "0x80060888",
        "maxpagesize",
    );
    let count = api.get("accounts?$select=name&$count=true&$top=1").await;
    assert_eq!(count.body["@odata.count"], 5000, "capped at 5000");
}

#[tokio::test]
async fn fetchxml_pages_with_cookies() {
    let emulator = Emulator::builder()
        .generated_accounts(25)
        .start()
        .await
        .expect("started");
    let api = Api::new(&emulator).await;
    let prefer = "odata.include-annotations=\"Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords\"";
    let mut cookie: Option<String> = None;
    let mut page = 1;
    let mut all = Vec::new();
    loop {
        let paging = cookie
            .as_deref()
            .map(|c| {
                format!(
                    " paging-cookie=\"{}\"",
                    c.replace('&', "&amp;")
                        .replace('"', "&quot;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;")
                )
            })
            .unwrap_or_default();
        let fetch = format!(
            "<fetch count=\"10\" page=\"{page}\"{paging}><entity name=\"account\"><attribute name=\"name\" /><attribute name=\"description\" /><order attribute=\"name\" /><filter type=\"and\"><condition attribute=\"accountnumber\" operator=\"like\" value=\"G%\" /><condition attribute=\"statecode\" operator=\"eq\" value=\"0\" /></filter></entity></fetch>"
        );
        let reply = send(
            api.request(Method::GET, "accounts")
                .query(&[("fetchXml", fetch.as_str())])
                .header("Prefer", prefer),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        for row in reply.body["value"].as_array().expect("rows") {
            assert!(
                row.get("description").is_none(),
                "null columns are left out"
            );
            all.push(row["name"].as_str().expect("name").to_owned());
        }
        match reply.body["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"].as_str() {
            Some(annotation) => {
                assert_eq!(reply.body["@Microsoft.Dynamics.CRM.morerecords"], true);
                let attr = annotation
                    .split("pagingcookie=\"")
                    .nth(1)
                    .expect("attr")
                    .split('"')
                    .next()
                    .expect("value");
                let decoded = percent(&percent(attr));
                assert!(
                    decoded.starts_with(&format!("<cookie page=\"{page}\">")),
                    "{decoded}"
                );
                cookie = Some(decoded);
                page += 1;
            }
            None => break,
        }
    }
    assert_eq!(all.len(), 25);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);

    let bad: &[(&str, &str)] = &[
        (
            "<fetch><entity name=\"contact\" /></fetch>",
            "must be 'account'",
        ),
        (
            "<fetch><entity name=\"account\"><attribute name=\"nope\" /></entity></fetch>",
            "doesn't contain attribute",
        ),
        ("<fetch", "not well-formed"),
        (
            "<fetch top=\"5\" count=\"5\"><entity name=\"account\" /></fetch>",
            "top",
        ),
        (
            "<fetch><entity name=\"account\"><link-entity name=\"contact\" /></entity></fetch>",
            "link-entity",
        ),
    ];
    for (fetch, message) in bad {
        let reply = send(
            api.request(Method::GET, "accounts")
                .query(&[("fetchXml", *fetch)]),
        )
        .await;
        assert_eq!(reply.status, 400, "{fetch}");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .expect("message")
                .contains(message),
            "{}",
            reply.body
        );
    }
}

fn percent(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).expect("hex"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf8")
}
