//! The `d365-emulator` binary: it prints the base URL and a connection string per seeded
//! identity, serves requests, and stops cleanly on Ctrl-C (SIGINT).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(unix)]
#[test]
fn the_binary_prints_connection_strings_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_d365-emulator"))
        .args(["--port", "0", "--data"])
        .arg(dir.path().join("data.sqlite"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawned");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        let done = line.starts_with("Press Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    let text = printed.join("\n");
    let base = printed[0]
        .strip_prefix("d365 emulator listening on ")
        .unwrap_or_else(|| panic!("{text}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{text}");
    assert!(text.contains(&format!(
        "AuthType=ClientSecret;Url={base};TenantId=d3650000-e0e0-4000-8000-000000000001;AuthorityHost={base};ClientId=d3650000-a990-4000-8000-000000000001;ClientSecret=d365-emulator-secret~1"
    )), "{text}");
    assert!(
        text.contains("AuthType=OAuth;") && text.contains("Username=alice@contoso.onmicrosoft.com"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Web API       {base}/api/data/v9.2/")),
        "{text}"
    );

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the emulator did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_d365-emulator"))
        .arg("--colour")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown argument '--colour'") && stderr.contains("usage:"),
        "{stderr}"
    );
}
