//! The `d365` binary as a person and a script use it: help texts (insta snapshots), exit
//! codes, errors as one line plus a hint, output formats, profiles, and every command
//! against the embedded emulator (`--emulator`).

use crate::support::{
    ALICE_SYSTEMUSER_ID, RunningEmulator, d365, d365_process, http_post, stderr, stdout,
    temp_config, with_device_code,
};

#[test]
fn help_texts() {
    let config = temp_config("help");
    for args in [
        vec!["--help"],
        vec!["get", "--help"],
        vec!["auth", "--help"],
        vec!["profile", "--help"],
        vec!["emulator", "--help"],
    ] {
        let output = d365(&config).args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        insta::assert_snapshot!(format!("help {}", args.join(" ")), stdout(&output));
    }
}

#[test]
fn version_and_completions() {
    let config = temp_config("version");
    let output = d365(&config).arg("--version").output().unwrap();
    assert_eq!(
        stdout(&output),
        format!("d365 {}\n", env!("CARGO_PKG_VERSION"))
    );
    let output = d365(&config)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        stdout(&output).contains("_d365()"),
        "a bash completion function"
    );
}

#[test]
fn completions_for_every_shell_name_every_command() {
    let config = temp_config("completions");
    for (shell, marker) in [
        ("bash", "_d365()"),
        ("zsh", "#compdef d365"),
        ("fish", "complete -c d365"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[d365]"),
    ] {
        let output = d365(&config).args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        assert!(
            script.contains(marker),
            "{shell}: no {marker:?} in the script"
        );
        for command in [
            "whoami",
            "batch",
            "emulator",
            "completions",
            "man",
            "profile",
        ] {
            assert!(
                script.contains(command),
                "{shell}: `{command}` is not completed"
            );
        }
    }
    let output = d365(&config)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_page_is_roff_generated_from_the_command_definitions() {
    let config = temp_config("man");
    let output = d365(&config).arg("man").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let page = stdout(&output);
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq"),
        "roff preamble: {page:.80}"
    );
    assert!(page.contains(".TH d365 1"), "the page's title line");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
    ] {
        assert!(page.contains(section), "missing {section}");
    }
    for text in [
        "\\-\\-connection\\-string",
        "whoami",
        "completions",
        env!("CARGO_PKG_VERSION"),
    ] {
        assert!(page.contains(text), "missing {text:?}");
    }
}

#[test]
fn usage_errors_exit_2_with_one_clear_line() {
    let config = temp_config("usage");
    let output = d365(&config).arg("whoami").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.starts_with("error: no connection:"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");

    let output = d365(&config)
        .args([
            "get",
            "accounts",
            "--emulator",
            "--orderby",
            "name sideways",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));

    let output = d365(&config).args(["--connection-string", "AuthType=ClientSecret;Url=http://contoso.crm.dynamics.com;ClientId=x;ClientSecret=TOP-SECRET", "whoami"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("plain http"), "{text}");
    assert!(!text.contains("TOP-SECRET"), "a secret was printed: {text}");
}

#[test]
fn whoami_and_token_against_the_emulator() {
    let config = temp_config("whoami");
    let output = d365(&config)
        .args(["whoami", "--emulator", "--output", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let me: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(me["UserId"].as_str().unwrap().len(), 36);

    let output = d365(&config)
        .args(["token", "--emulator", "-o", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let facts: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(facts["kind"], "app-only");
    assert_eq!(facts["grant"], "client_credentials");
    assert!(
        !stdout(&output).contains("eyJ"),
        "the token is printed only with --raw"
    );

    let output = d365(&config)
        .args(["token", "--emulator", "--raw"])
        .output()
        .unwrap();
    assert!(stdout(&output).starts_with("eyJ"));
}

/// The root certificates are read on the first TLS handshake, not when a client is built
/// (a warm `whoami` against a plain-http organization never reads them): certificates are
/// still checked, against the platform's roots (`SSL_CERT_FILE` names them here).
#[test]
fn https_is_checked_against_the_platform_roots_read_on_first_use() {
    let config = temp_config("https");
    let emulator = RunningEmulator::start_with(&config, &["--https", "-o", "json"]);
    assert!(
        emulator.base_url.starts_with("https://"),
        "{}",
        emulator.base_url
    );
    let ca = emulator
        .ca_certificate
        .clone()
        .expect("--https -o json names the CA certificate");
    let whoami = |trust_the_ca: bool| {
        let mut command = d365(&config);
        command
            .args(["whoami", "-o", "json"])
            .env("D365_CONNECTION_STRING", &emulator.connection_string);
        if trust_the_ca {
            command.env("SSL_CERT_FILE", &ca);
        }
        command.output().unwrap()
    };

    let refused = whoami(false);
    assert!(!refused.status.success(), "an unknown CA is refused");
    let text = stderr(&refused).to_lowercase();
    assert!(text.contains("certificate"), "{text}");

    for run in ["cold", "warm"] {
        let output = whoami(true);
        assert!(output.status.success(), "{run}: {}", stderr(&output));
        let me: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(me["UserId"].as_str().unwrap().len(), 36);
    }
    emulator.stop();
}

#[test]
fn data_commands_against_the_emulator() {
    let config = temp_config("data");
    let output = d365(&config)
        .args([
            "request",
            "POST",
            "accounts",
            "--emulator",
            "--data",
            r#"{"name":"x"}"#,
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    // Each --emulator run starts a fresh emulator: chain the writes in one batch instead.
    let batch = config.join("batch.json");
    std::fs::write(
        &batch,
        r#"{"requests":[
            {"method":"POST","url":"accounts","body":{"name":"Contoso","accountnumber":"C-1"},"change_set":1},
            {"method":"POST","url":"contacts","body":{"lastname":"Ng","parentcustomerid_account@odata.bind":"$1"},"change_set":1},
            {"method":"GET","url":"accounts?$select=name"}
        ]}"#,
    )
    .unwrap();
    let output = d365(&config)
        .args(["batch", batch.to_str().unwrap(), "--emulator", "-o", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let parts: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0]["status"], 204);

    let output = d365(&config)
        .args([
            "get",
            "accounts",
            "--emulator",
            "--select",
            "name",
            "--top",
            "5",
            "-o",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("name") || stdout(&output).is_empty(),
        "{}",
        stdout(&output)
    );

    let output = d365(&config)
        .args([
            "delete",
            "accounts",
            "00000000-0000-0000-0000-000000000001",
            "--emulator",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(4),
        "not found exits 4: {}",
        stderr(&output)
    );
    assert!(stderr(&output).starts_with("error: "));

    let output = d365(&config)
        .args(["get", "nosuchset", "--emulator"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("hint: the entity set"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn profiles_keep_secrets_out_of_sight() {
    let config = temp_config("profiles");
    let connection = "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=d3650000-a990-4000-8000-000000000001;ClientSecret=VERY-SECRET;TenantId=contoso.onmicrosoft.com";
    let output = d365(&config)
        .args(["profile", "add", "dev", "--connection-string", connection])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    for args in [
        vec!["profile", "list"],
        vec!["profile", "show", "dev"],
        vec!["profile", "show", "-o", "json"],
    ] {
        let output = d365(&config).args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert!(
            !stdout(&output).contains("VERY-SECRET"),
            "{args:?} printed the secret"
        );
        assert!(stdout(&output).contains("contoso.crm.dynamics.com"));
    }
    let public = std::fs::read_to_string(config.join("profiles.toml")).unwrap();
    assert!(!public.contains("VERY-SECRET"));
    let output = d365(&config)
        .args(["profile", "use", "nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = d365(&config)
        .args(["profile", "remove", "dev"])
        .output()
        .unwrap();
    assert!(output.status.success());
}

#[test]
fn the_demo_walks_every_step() {
    let config = temp_config("demo");
    let output = d365(&config).arg("demo").output().unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{text}\n{}", stderr(&output));
    for expected in [
        "[1] Starting the emulator",
        "not a member of the organization",
        "[5] Getting a token by client credentials",
        "[6] Getting a token by the password grant",
        "Contoso Pharmaceuticals",
        "[8] Comparing the grants",
        "Done.",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn auth_compare_and_doctor_on_the_emulator() {
    let config = temp_config("auth");
    let output = d365(&config)
        .args(["auth", "compare", "--emulator", "-o", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(rows.len(), 7, "{rows:#?}");
    // Managed identity in both shapes: app-only tokens that Dataverse accepts.
    for shape in ["App Service endpoint", "instance metadata service"] {
        let row = rows
            .iter()
            .find(|row| row["grant"] == format!("managed identity ({shape})"))
            .unwrap_or_else(|| panic!("no managed identity ({shape}) row in {rows:#?}"));
        assert_eq!(row["kind"], "app-only", "{row}");
        assert!(row.get("result").is_none(), "{row}");
    }
    assert!(rows.iter().any(|row| row["kind"] == "delegated"));
    assert!(rows.iter().any(|row| row["kind"] == "app-only"));
    // The device code grant runs unattended on the emulator: it approves the code itself,
    // as its seeded user, and the label says so.
    let device_code = rows
        .iter()
        .find(|row| row["grant"].as_str().unwrap().starts_with("device code"))
        .expect("a device code row");
    assert_eq!(
        device_code["grant"],
        "device code (public client; approved by the emulator as alice@contoso.onmicrosoft.com)"
    );
    assert_eq!(device_code["kind"], "delegated", "{device_code}");
    assert_eq!(device_code["WhoAmI user"], ALICE_SYSTEMUSER_ID);
    assert!(device_code.get("result").is_none(), "{device_code}");

    let output = d365(&config)
        .args(["auth", "doctor", "--emulator", "-o", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    let steps: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(steps.iter().all(|step| step["result"] == "ok"), "{steps:?}");
    assert!(steps.len() >= 7);
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[guid]",
        ),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
    ]
}

#[test]
fn d365_emulator_announces_itself_as_one_json_line_for_scripts() {
    let config = temp_config("emulator-json");
    let emulator = RunningEmulator::start_with(&config, &["-o", "json"]);
    assert_eq!(
        emulator.connection_strings.len(),
        8,
        "{:?}",
        emulator.connection_strings
    );
    let managed_identity = emulator
        .connection_strings
        .iter()
        .find(|printed| printed.starts_with("Grant=managed-identity;"))
        .expect("a managed identity connection string");
    for connection_string in [
        &emulator.connection_string,
        &emulator.certificate_connection_string,
        managed_identity,
    ] {
        let output = d365(&config)
            .args([
                "whoami",
                "-o",
                "json",
                "--connection-string",
                connection_string,
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(
            stdout(&output).contains("\"UserId\""),
            "{}",
            stdout(&output)
        );
    }
    emulator.stop();
}

#[test]
fn commands_share_an_organization_served_by_d365_emulator() {
    let config = temp_config("shared");
    let emulator = RunningEmulator::start(&config);
    let with = |args: &[&str]| {
        let output = d365(&config)
            .args(args)
            .env("D365_CONNECTION_STRING", &emulator.connection_string)
            .output()
            .unwrap();
        (output.status.code(), stdout(&output), stderr(&output))
    };

    for (name, revenue) in [("Contoso", 300), ("Fabrikam", 200), ("Northwind", 100)] {
        let (code, out, err) = with(&[
            "create",
            "accounts",
            "-d",
            &format!(r#"{{"name":"{name}","revenue":{revenue},"accountnumber":"N-{name}"}}"#),
            "-o",
            "json",
        ]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("\"accountid\""), "{out}");
    }
    let (code, out, err) = with(&[
        "get",
        "accounts",
        "--select",
        "name,revenue",
        "--orderby",
        "name asc",
    ]);
    assert_eq!(code, Some(0), "{err}");
    insta::with_settings!({ filters => filters() }, { insta::assert_snapshot!("accounts table", out) });

    let (code, _, err) = with(&[
        "update",
        "accounts",
        "accountnumber=N-Contoso",
        "-d",
        r#"{"revenue":301}"#,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = with(&[
        "update",
        "accounts",
        "00000000-0000-0000-0000-000000000001",
        "-d",
        r#"{"revenue":1}"#,
    ]);
    assert_eq!(code, Some(4), "update never creates: {err}");
    insta::with_settings!({ filters => filters() }, { insta::assert_snapshot!("update missing record error", err) });

    let (code, _, err) = with(&[
        "upsert",
        "accounts",
        "accountnumber=N-New",
        "-d",
        r#"{"name":"New"}"#,
        "--create-only",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = with(&[
        "upsert",
        "accounts",
        "accountnumber=N-New",
        "-d",
        r#"{"name":"New"}"#,
        "--create-only",
    ]);
    assert_eq!(
        code,
        Some(4),
        "create-only on an existing record is a conflict: {err}"
    );

    let fetch = r#"<fetch count="2"><entity name="account"><attribute name="name"/><order attribute="name"/></entity></fetch>"#;
    let (code, out, err) = with(&["fetchxml", "accounts", fetch, "--all", "-o", "jsonl"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().count(),
        4,
        "paging cookies cover every row: {out}"
    );

    let export = config.join("accounts.csv");
    let (code, _, err) = with(&[
        "get",
        "accounts",
        "--select",
        "name",
        "--out",
        export.to_str().unwrap(),
        "-o",
        "csv",
        "--page-size",
        "2",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("wrote 4 rows"), "{err}");
    let csv = std::fs::read_to_string(&export).unwrap();
    assert_eq!(csv.lines().count(), 5, "a header and four rows: {csv}");

    let (code, out, err) = with(&["whoami", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("UserId"));
    assert!(
        config.join("tokens.json").exists(),
        "the token file keeps tokens between commands"
    );

    let output = d365(&config)
        .args([
            "whoami",
            "--no-token-cache",
            "--connection-string",
            &emulator.certificate_connection_string,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the printed certificate connection string works: {}",
        stderr(&output)
    );

    let (code, _, err) = with(&["get", "nosuchset"]);
    assert_eq!(code, Some(4));
    insta::with_settings!({ filters => filters() }, { insta::assert_snapshot!("unknown entity set error", err) });
    emulator.stop();
}

#[test]
fn error_and_profile_table_snapshots() {
    let config = temp_config("snapshots");
    let output = d365(&config).arg("whoami").output().unwrap();
    insta::assert_snapshot!("no connection error", stderr(&output));
    let output = d365(&config)
        .args(["whoami"])
        .env(
            "D365_CONNECTION_STRING",
            "AuthType=ClientSecret;Url=http://contoso.crm.dynamics.com;ClientId=x;ClientSecret=TOP-SECRET",
        )
        .output()
        .unwrap();
    insta::assert_snapshot!("plain http error", stderr(&output));
    for (name, url) in [
        ("dev", "https://dev.crm.dynamics.com"),
        ("prod", "https://prod.crm4.dynamics.com"),
    ] {
        let connection = format!(
            "AuthType=ClientSecret;Url={url};ClientId=d3650000-a990-4000-8000-000000000001;ClientSecret=S;TenantId=contoso.onmicrosoft.com"
        );
        assert!(
            d365(&config)
                .args(["profile", "add", name, "-c", &connection])
                .output()
                .unwrap()
                .status
                .success()
        );
    }
    let output = d365(&config).args(["profile", "list"]).output().unwrap();
    insta::assert_snapshot!("profile list table", stdout(&output));
}

#[test]
fn device_code_sign_in_on_the_embedded_emulator() {
    let config = temp_config("device-code-embedded");
    let mut command = d365_process(&config);
    command.args([
        "--emulator",
        "--grant",
        "device-code",
        "whoami",
        "-o",
        "json",
    ]);
    let (code, out, err) = with_device_code(command, |page, user_code| {
        assert!(page.ends_with("/devicelogin"), "{page}");
        // As a test would: through the emulator's admin API.
        let base = page.trim_end_matches("/devicelogin");
        let (status, body) = http_post(
            &format!("{base}/_emulator/device-codes/approve"),
            "application/json",
            &format!(r#"{{"user_code":"{user_code}","user":"alice@contoso.onmicrosoft.com"}}"#),
        );
        assert_eq!(status, 200, "{body}");
    });
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("Waiting for the sign-in"), "{err}");
    assert!(
        err.contains("alice@contoso.onmicrosoft.com"),
        "the emulator's user is named: {err}"
    );
    let me: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        me["UserId"], ALICE_SYSTEMUSER_ID,
        "signed in as alice: {out}"
    );

    // Declined at the page: a typed error, exit code 3, and a hint.
    let mut command = d365_process(&config);
    command.args(["--emulator", "--grant", "device-code", "whoami"]);
    let (code, _, err) = with_device_code(command, |page, user_code| {
        let (status, body) = http_post(
            page,
            "application/x-www-form-urlencoded",
            &format!("user_code={user_code}&action=decline"),
        );
        assert_eq!(status, 200, "{body}");
    });
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("the user declined the sign-in request"),
        "{err}"
    );
    assert!(err.contains("hint: start the sign-in again"), "{err}");
}

#[test]
fn device_code_with_a_connection_string_asks_once() {
    let config = temp_config("device-code-shared");
    let settings = config.join("emulator.toml");
    std::fs::write(&settings, "device_code_interval_secs = 1\n").unwrap();
    let emulator = RunningEmulator::start_with(&config, &["--config", settings.to_str().unwrap()]);
    let whoami = || {
        let mut command = d365_process(&config);
        command
            .args(["whoami", "-o", "json", "--grant", "device-code"])
            .args(["--connection-string", &emulator.user_connection_string]);
        command
    };
    // A person at the verification page: the code, then alice's name and password.
    let (code, out, err) = with_device_code(whoami(), |page, user_code| {
        assert_eq!(page, format!("{}/devicelogin", emulator.base_url));
        let (status, body) = http_post(
            page,
            "application/x-www-form-urlencoded",
            &format!(
                "user_code={user_code}&username=alice%40contoso.onmicrosoft.com&password=Emulator-Passw0rd%21&action=approve"
            ),
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("You signed in"), "{body}");
    });
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(ALICE_SYSTEMUSER_ID), "{out}");

    // The token file keeps the token (and its refresh token): no second prompt.
    let output = whoami().output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("To sign in"),
        "asked again: {}",
        stderr(&output)
    );
    assert!(stdout(&output).contains(ALICE_SYSTEMUSER_ID));

    let output = d365(&config)
        .args(["token", "-o", "json", "--grant", "device-code"])
        .args(["--connection-string", &emulator.user_connection_string])
        .output()
        .unwrap();
    let facts: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(facts["kind"], "delegated", "{facts}");
    emulator.stop();
}
