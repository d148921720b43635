//! One test per exit code of the documented table (`docs/cli.md`, `d365 --help`): each
//! provokes the failure the code stands for and checks the code, so a script can trust it.
//! `auth doctor` ends with the code of the check that failed.

use std::io::{BufRead as _, Read as _};

use crate::support::{RunningEmulator, d365, d365_process, http_request, stderr, temp_config};

/// The emulator's confidential application with `secret` instead of its own.
fn with_secret(connection: &str, secret: &str) -> String {
    connection
        .split(';')
        .map(|pair| {
            if pair.starts_with("ClientSecret=") {
                format!("ClientSecret={secret}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A loopback port nothing listens on (it was just released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn exit_0_on_success() {
    let config = temp_config("exit-0");
    let output = d365(&config)
        .args(["--emulator", "whoami"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn exit_1_on_any_other_failure() {
    let config = temp_config("exit-1");
    let file = config.join("batch.json");
    std::fs::write(
        &file,
        r#"{"requests": [{"method": "POST", "url": "accounts", "body": {"nosuchcolumn": 1}}]}"#,
    )
    .unwrap();
    let output = d365(&config)
        .args(["--emulator", "batch", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("1 of 1 operations failed"));
}

#[test]
fn exit_2_on_usage_errors() {
    let config = temp_config("exit-2");
    let output = d365(&config).arg("whoami").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "no connection");
    let output = d365(&config)
        .args(["get", "accounts", "--page-size", "5001"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let output = d365(&config)
        .args([
            "-c",
            "AuthType=Nonsense;Url=https://contoso.crm.dynamics.com",
            "whoami",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

#[test]
fn exit_3_on_authentication_failures_and_a_doctor_whose_token_check_fails() {
    let config = temp_config("exit-3");
    let emulator = RunningEmulator::start(&config);
    let wrong = with_secret(
        &emulator.connection_string,
        "not-the-secret-but-long-enough-1234",
    );
    let output = d365(&config)
        .env("D365_CONNECTION_STRING", &wrong)
        .args(["--no-token-cache", "whoami"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let output = d365(&config)
        .env("D365_CONNECTION_STRING", &wrong)
        .args(["--no-token-cache", "auth", "doctor"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`token` check FAILED"),
        "{}",
        stderr(&output)
    );
    emulator.stop();
}

#[test]
fn exit_4_on_not_found() {
    let config = temp_config("exit-4");
    let output = d365(&config)
        .args([
            "--emulator",
            "delete",
            "accounts",
            "00000000-0000-4000-8000-00000000dead",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
}

#[test]
fn exit_5_when_throttled_after_the_retries() {
    let config = temp_config("exit-5");
    let emulator = RunningEmulator::start(&config);
    let (status, body) = http_request(
        "PUT",
        &format!("{}/_emulator/limits", emulator.base_url),
        "application/json",
        r#"{"max_requests": 1, "window_secs": 3600}"#,
    );
    assert_eq!(status, 200, "{body}");
    let mut codes = Vec::new();
    for _ in 0..3 {
        let output = d365(&config)
            .env("D365_CONNECTION_STRING", &emulator.connection_string)
            .args(["--max-retries", "0", "--timeout", "5", "whoami"])
            .output()
            .unwrap();
        codes.push(output.status.code());
    }
    assert_eq!(codes.last(), Some(&Some(5)), "{codes:?}");
    emulator.stop();
}

#[test]
fn exit_6_when_the_organization_cannot_be_reached_in_discovery_or_the_doctor() {
    let config = temp_config("exit-6");
    let port = closed_port();
    // No tenant: the authority is discovered from the organization, which is not there.
    let output = d365(&config)
        .env(
            "D365_CONNECTION_STRING",
            format!("AuthType=ClientSecret;Url=http://127.0.0.1:{port};ClientId=d3650000-a990-4000-8000-0000000000aa;ClientSecret=not-a-real-secret-but-long-enough-123"),
        )
        .arg("whoami")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{}", stderr(&output));
    // With a tenant nothing is discovered: the doctor's reachability check fails.
    let output = d365(&config)
        .env(
            "D365_CONNECTION_STRING",
            format!("AuthType=ClientSecret;Url=http://127.0.0.1:{port};TenantId=d3650000-0000-4000-8000-000000000001;ClientId=d3650000-a990-4000-8000-0000000000aa;ClientSecret=not-a-real-secret-but-long-enough-123"),
        )
        .args(["auth", "doctor"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`TLS and reachability` check FAILED"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn exit_130_when_interrupted_with_ctrl_c() {
    let config = temp_config("exit-130");
    // The device code grant waits for a person: Ctrl-C while it waits.
    let mut child = d365_process(&config)
        .args(["--emulator", "--grant", "device-code", "whoami"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.starts_with("Waiting for the sign-in") {
            break;
        }
        line.clear();
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    err.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("interrupted"), "{seen}");
}
