//! `d365` against an on-premises organization, played by `d365 emulator --on-premises`: the
//! organization under its path, AD FS found from the server's challenge, the Web API version
//! discovered — every connection string the emulator prints, `get`, `auth doctor` (which
//! recognises AD FS and the version) and `auth compare`, on a CRM 2016 (8.2) and a
//! Dynamics 365 9.0 server.

use crate::support::{RunningEmulator, d365, stderr, stdout, temp_config};

/// Runs `d365 args…` with the connection string on standard input.
fn run(config: &std::path::Path, connection: &str, args: &[&str]) -> (Option<i32>, String, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("d365"))
        .args(args)
        .args(["-c", "-"])
        .env("D365_CONFIG_DIR", config)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(connection.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (output.status.code(), stdout(&output), stderr(&output))
}

#[test]
fn every_command_works_against_an_on_premises_server_of_either_generation() {
    for (version, api) in [("8.2.2.112", "v8.2"), ("9.0.2.3034", "v9.0")] {
        let config = temp_config("on-premises");
        let emulator = RunningEmulator::start_with(
            &config,
            &[
                "--on-premises",
                "Contoso",
                "--server-version",
                version,
                "-o",
                "json",
            ],
        );
        let organization = format!("{}/Contoso", emulator.base_url);
        assert_eq!(
            emulator.connection_strings.len(),
            5,
            "{:?}",
            emulator.connection_strings
        );
        for connection in &emulator.connection_strings {
            assert!(
                connection.contains(&format!("Url={organization};")),
                "{connection}"
            );
            let (code, out, err) = run(
                &config,
                connection,
                &["whoami", "--no-token-cache", "-o", "json"],
            );
            assert_eq!(code, Some(0), "{connection}: {err}");
            let me: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(me["Organization"], organization.as_str(), "{me}");
        }

        let admin = &emulator.connection_string;
        let (code, out, err) = run(
            &config,
            admin,
            &[
                "create",
                "accounts",
                "-d",
                r#"{"name":"On premises"}"#,
                "-o",
                "json",
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        assert!(
            out.contains(&format!(
                "/Contoso/api/data/{api}/$metadata#accounts/$entity"
            )),
            "{out}"
        );
        let (code, out, err) = run(
            &config,
            admin,
            &["get", "accounts", "--select", "name", "-o", "json"],
        );
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("On premises"), "{out}");

        let (code, out, err) = run(
            &config,
            &emulator.user_connection_string,
            &["auth", "doctor", "-o", "json"],
        );
        assert_eq!(code, Some(0), "{out}\n{err}");
        let steps: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        let detail = |check: &str| {
            steps
                .iter()
                .find(|step| step["check"] == check)
                .unwrap_or_else(|| panic!("no {check} step in {steps:#?}"))["detail"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert!(
            detail("authority discovery").starts_with("on-premises with AD FS"),
            "{steps:#?}"
        );
        assert!(detail("AD FS").contains("AD FS 2019"), "{steps:#?}");
        assert_eq!(
            detail("Web API version"),
            format!("the server is version {version}; d365 speaks Web API {api} to it")
        );
        assert!(
            steps.iter().all(|step| step["result"] == "ok"),
            "{steps:#?}"
        );

        // Windows sign-in: no token, so doctor says so and proves the account with WhoAmI.
        let windows = emulator
            .connection_strings
            .iter()
            .find(|connection| connection.starts_with("AuthType=AD;"))
            .expect("a Windows sign-in connection string");
        let (code, out, err) = run(&config, windows, &["auth", "doctor", "-o", "json"]);
        assert_eq!(code, Some(0), "{out}\n{err}");
        assert!(
            out.contains("Windows sign-in (NTLM) as CONTOSO\\\\alice, no token"),
            "{out}"
        );
        let wrong = windows.replace("Password=", "Password=x");
        let (code, _, err) = run(&config, &wrong, &["whoami"]);
        assert_ne!(code, Some(0));
        assert!(
            err.contains("refused the Windows sign-in of CONTOSO\\alice"),
            "{err}"
        );

        let (code, out, err) = run(&config, admin, &["auth", "compare", "-o", "json"]);
        assert_eq!(code, Some(0), "{err}");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        assert!(
            rows.iter().all(|row| row.get("result").is_none()
                && !row["WhoAmI user"].as_str().unwrap().contains("failed")),
            "{rows:#?}"
        );
        emulator.stop();
    }
}

#[test]
fn a_version_the_server_does_not_speak_is_refused_clearly() {
    let config = temp_config("on-premises-version");
    let emulator = RunningEmulator::start_with(
        &config,
        &[
            "--on-premises",
            "--server-version",
            "8.2.2.112",
            "-o",
            "json",
        ],
    );
    let (code, _, err) = run(
        &config,
        &emulator.connection_string,
        &["whoami", "--api-version", "v9.0"],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("v9.0"), "{err}");
    let output = d365(&config)
        .args(["emulator", "--on-premises", "adfs"])
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("one of the emulator's own paths"),
        "{}",
        stderr(&output)
    );
    emulator.stop();
}
