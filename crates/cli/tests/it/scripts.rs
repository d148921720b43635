//! `d365` as a script uses it, against one `d365 emulator`: `get` returns exactly what was
//! asked (`--top` across pages and into files, `--select` order, empty results, one record
//! by id or alternate key, `--page-size` bounds), `create` prints the new id alone,
//! `request` prints the body (`-i` the head too) with or without the API prefix, `token`
//! gives its expiry as numbers, `--query` and `-o tsv` everywhere, and `batch` files name
//! their change sets; `tables`, `columns` and `--formatted` read the metadata and
//! formatted values.

use crate::support::{RunningEmulator, d365, http_post, stderr, stdout, temp_config};

/// `d365 ARGS` against the emulator: (exit code, stdout, stderr).
fn run(
    config: &std::path::Path,
    emulator: &RunningEmulator,
    args: &[&str],
) -> (i32, String, String) {
    let output = d365(config)
        .env("D365_CONNECTION_STRING", &emulator.connection_string)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        stdout(&output),
        stderr(&output),
    )
}

/// A `d365 emulator` with `count` generated accounts.
fn emulator_with_accounts(config: &std::path::Path, count: u32) -> RunningEmulator {
    let emulator = RunningEmulator::start(config);
    let (status, body) = http_post(
        &format!("{}/_emulator/dataverse/generate", emulator.base_url),
        "application/json",
        &format!(r#"{{"count": {count}}}"#),
    );
    assert_eq!(status, 201, "{body}");
    emulator
}

#[test]
fn get_returns_exactly_what_was_asked() {
    let config = temp_config("scripts-get");
    let emulator = emulator_with_accounts(&config, 23);

    // --top holds across pages, on stdout and into a file.
    let (code, out, err) = run(
        &config,
        &emulator,
        &[
            "get",
            "accounts",
            "--all",
            "--page-size",
            "5",
            "--top",
            "12",
            "-o",
            "jsonl",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 12, "{out}");
    let file = config.join("top.csv");
    let (code, _, err) = run(
        &config,
        &emulator,
        &[
            "get",
            "accounts",
            "--select",
            "revenue,name",
            "--top",
            "7",
            "--page-size",
            "3",
            "--out",
            file.to_str().unwrap(),
            "-o",
            "csv",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written.lines().count(), 8, "a header and 7 rows: {written}");
    // CSV, TSV and table columns follow --select, not the alphabet.
    assert!(written.starts_with("revenue,name,accountid\n"), "{written}");
    let (_, out, _) = run(
        &config,
        &emulator,
        &[
            "get",
            "accounts",
            "-s",
            "revenue,name",
            "--top",
            "2",
            "-o",
            "csv",
        ],
    );
    assert!(out.starts_with("revenue,name,"), "{out}");
    let (_, out, _) = run(
        &config,
        &emulator,
        &["get", "accounts", "-s", "revenue,name", "--top", "2"],
    );
    let header = out.lines().nth(1).unwrap();
    assert!(
        header.find("revenue").unwrap() < header.find("name").unwrap(),
        "{out}"
    );
    assert!(out.ends_with("2 rows\n"), "{out}");
    assert!(!out.contains("more rows"), "--top was reached: {out}");
    let (_, out, _) = run(
        &config,
        &emulator,
        &[
            "get",
            "accounts",
            "-s",
            "name,accountnumber",
            "--filter",
            "accountnumber eq 'G0000003'",
            "-o",
            "tsv",
        ],
    );
    let cells: Vec<&str> = out.trim_end().split('\t').collect();
    assert_eq!(
        cells[..2],
        ["Generated account 0000003", "G0000003"],
        "{out}"
    );

    // An empty result says so.
    let none = ["--filter", "name eq 'no such account'"];
    let (code, out, _) = run(
        &config,
        &emulator,
        &[&["get", "accounts", "-s", "name,revenue"][..], &none[..]].concat(),
    );
    assert_eq!(code, 0);
    assert!(out.contains("name") && out.ends_with("0 rows\n"), "{out}");
    let (_, out, _) = run(
        &config,
        &emulator,
        &[
            &["get", "accounts", "-s", "name,revenue", "-o", "csv"][..],
            &none[..],
        ]
        .concat(),
    );
    assert_eq!(out, "name,revenue\n");
    let (_, out, _) = run(
        &config,
        &emulator,
        &[&["get", "accounts", "-o", "json"][..], &none[..]].concat(),
    );
    assert_eq!(out.trim(), "[]");

    // One record by alternate key and by id.
    let (code, out, err) = run(
        &config,
        &emulator,
        &[
            "get",
            "accounts",
            "accountnumber=G0000003",
            "-s",
            "name",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let record: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(record["name"], "Generated account 0000003");
    let id = record["accountid"].as_str().unwrap().to_owned();
    let (code, out, _) = run(
        &config,
        &emulator,
        &["get", "accounts", &id, "-s", "accountnumber,name"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("G0000003"), "{out}");
    assert!(
        out.find("accountnumber").unwrap() < out.find("name ").unwrap(),
        "{out}"
    );
    let (code, _, err) = run(
        &config,
        &emulator,
        &["get", "accounts", "accountnumber=NOPE"],
    );
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = run(&config, &emulator, &["get", "accounts", &id, "--all"]);
    assert_eq!(code, 2, "{err}");

    // Page sizes Dataverse cannot honour are refused, saying why.
    let (code, _, err) = run(
        &config,
        &emulator,
        &["get", "accounts", "--page-size", "5001"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("at most 5000 rows per page"), "{err}");
    emulator.stop();
}

#[test]
fn output_for_scripts() {
    let config = temp_config("scripts-output");
    let emulator = emulator_with_accounts(&config, 3);

    // create: the id alone; the record with -o json.
    let (code, out, err) = run(
        &config,
        &emulator,
        &["create", "accounts", "-d", r#"{"name":"Script Co"}"#],
    );
    assert_eq!(code, 0, "{err}");
    let id = out.trim();
    assert_eq!(out, format!("{id}\n"));
    assert_eq!(id.len(), 36, "{out}");
    let (_, out, _) = run(
        &config,
        &emulator,
        &[
            "create",
            "accounts",
            "-d",
            r#"{"name":"Script Co 2"}"#,
            "-o",
            "json",
        ],
    );
    let record: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(record["name"], "Script Co 2");
    assert_eq!(record["accountid"].as_str().unwrap().len(), 36);

    // request: the body, with or without the API prefix (never doubled); -i the head.
    for path in [
        format!("accounts({id})?$select=name"),
        format!("/api/data/v9.2/accounts({id})?$select=name"),
        format!("api/data/v9.2/accounts({id})?$select=name"),
    ] {
        let (code, out, err) = run(&config, &emulator, &["request", "GET", &path]);
        assert_eq!(code, 0, "{path}: {err}");
        let body: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(body["name"], "Script Co", "{path}");
    }
    let (_, out, _) = run(&config, &emulator, &["request", "GET", "WhoAmI", "-i"]);
    assert!(out.starts_with("HTTP/1.1 200 OK\n"), "{out}");
    let (head, body) = out.split_once("\n\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    assert!(
        serde_json::from_str::<serde_json::Value>(body).is_ok(),
        "{body}"
    );
    let (code, out, _) = run(
        &config,
        &emulator,
        &["request", "DELETE", &format!("accounts({id})")],
    );
    assert_eq!(
        (code, out.as_str()),
        (0, ""),
        "an empty body prints nothing"
    );
    let (_, out, _) = run(
        &config,
        &emulator,
        &[
            "request",
            "GET",
            "accounts?$select=name&$orderby=name",
            "--query",
            "value[0].name",
            "-o",
            "tsv",
        ],
    );
    assert_eq!(out, "Generated account 0000001\n");

    // token: the expiry as Unix time and ISO 8601.
    let (_, out, _) = run(&config, &emulator, &["token", "-o", "json"]);
    let facts: serde_json::Value = serde_json::from_str(&out).unwrap();
    let epoch = facts["expires_on"].as_u64().unwrap();
    assert!(epoch > 1_700_000_000, "{facts}");
    let iso = facts["expires_on_iso"].as_str().unwrap();
    assert!(iso.ends_with('Z') && iso.contains('T'), "{iso}");
    assert!(facts.get("expires").is_none(), "no human string: {facts}");

    // --query on other commands, and a bad expression is a usage error.
    let (_, out, _) = run(
        &config,
        &emulator,
        &[
            "get",
            "accounts",
            "-s",
            "name",
            "--orderby",
            "name",
            "--query",
            "[].name",
            "-o",
            "tsv",
        ],
    );
    assert_eq!(
        out,
        "Generated account 0000001\nGenerated account 0000002\nGenerated account 0000003\nScript Co 2\n"
    );
    let (_, out, _) = run(
        &config,
        &emulator,
        &["whoami", "--query", "UserId", "-o", "tsv"],
    );
    assert_eq!(out.trim().len(), 36, "{out}");
    let (code, _, err) = run(&config, &emulator, &["whoami", "--query", "[oops"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--query is not a JMESPath expression"),
        "{err}"
    );
    let (code, _, err) = run(
        &config,
        &emulator,
        &["get", "accounts", "--out", "x.jsonl", "--query", "[].name"],
    );
    assert_eq!(code, 2, "{err}");
    emulator.stop();
}

#[test]
fn batch_change_sets_have_names_or_numbers() {
    let config = temp_config("scripts-batch");
    let emulator = RunningEmulator::start(&config);
    let file = config.join("batch.json");
    std::fs::write(
        &file,
        r#"{"requests":[
            {"method":"POST","url":"accounts","body":{"name":"Named set"},"change_set":"new-customer"},
            {"method":"POST","url":"accounts","body":{"name":"Numbered set"},"change_set":7},
            {"method":"POST","url":"contacts","body":{"lastname":"Ng","parentcustomerid_account@odata.bind":"$1"},"change_set":"new-customer"},
            {"method":"GET","url":"accounts?$select=name"}
        ]}"#,
    )
    .unwrap();
    let (code, out, err) = run(
        &config,
        &emulator,
        &["batch", file.to_str().unwrap(), "-o", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let parts: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(parts.len(), 4);
    assert!(parts[..3].iter().all(|part| part["status"] == 204), "{out}");
    let (_, out, _) = run(
        &config,
        &emulator,
        &[
            "get",
            "contacts",
            "-s",
            "lastname,_parentcustomerid_value",
            "-o",
            "csv",
        ],
    );
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|row| row.starts_with("Ng,") && row.len() > 10),
        "{out}"
    );
    std::fs::write(
        &file,
        r#"{"requests":[{"method":"POST","url":"accounts","body":{},"change_set":"  "}]}"#,
    )
    .unwrap();
    let (code, _, err) = run(&config, &emulator, &["batch", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("`change_set` name is empty"), "{err}");
    emulator.stop();
}

#[test]
fn tables_columns_and_formatted_values_come_from_the_metadata() {
    let config = temp_config("scripts-metadata");
    let emulator = RunningEmulator::start(&config);

    let (code, out, err) = run(&config, &emulator, &["tables", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let tables: serde_json::Value = serde_json::from_str(&out).unwrap();
    let account = tables
        .as_array()
        .unwrap()
        .iter()
        .find(|table| table["logical_name"] == "account")
        .expect("account is listed");
    assert_eq!(account["entity_set"], "accounts");
    assert_eq!(account["primary_id"], "accountid");

    let (code, out, err) = run(
        &config,
        &emulator,
        &[
            "columns",
            "account",
            "-o",
            "tsv",
            "--query",
            "[?logical_name=='accountcategorycode'].[type, options]",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "Picklist\t1=Preferred Customer; 2=Standard",
        "{out}"
    );

    let (code, _, err) = run(&config, &emulator, &["columns", "nosuch"]);
    assert_eq!(code, 4, "not found: {err}");
    assert!(
        err.contains("no table has the logical name `nosuch`"),
        "{err}"
    );

    let (code, _, err) = run(
        &config,
        &emulator,
        &[
            "create",
            "accounts",
            "-d",
            r#"{"name":"Formatted","accountcategorycode":2}"#,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        &config,
        &emulator,
        &[
            "get",
            "accounts",
            "--select",
            "name,accountcategorycode",
            "--filter",
            "name eq 'Formatted'",
            "--formatted",
            "-o",
            "csv",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Formatted,Standard (2)"), "{out}");
    let (code, out, err) = run(
        &config,
        &emulator,
        &[
            "get",
            "accounts",
            "--select",
            "name,accountcategorycode",
            "--filter",
            "name eq 'Formatted'",
            "-o",
            "csv",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Formatted,2"),
        "without --formatted, the value alone: {out}"
    );

    let fetch = r#"<fetch><entity name="account"><attribute name="accountcategorycode"/><filter><condition attribute="name" operator="eq" value="Formatted"/></filter></entity></fetch>"#;
    for all in [false, true] {
        let mut args = vec!["fetchxml", "accounts", fetch, "--formatted", "-o", "json"];
        if all {
            args.push("--all");
        }
        let (code, out, err) = run(&config, &emulator, &args);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(
                r#""accountcategorycode@OData.Community.Display.V1.FormattedValue": "Standard""#
            ),
            "{out}"
        );
    }
}
