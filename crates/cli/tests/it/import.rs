//! `d365 import` against one `d365 emulator`: CSV, JSON lines and JSON arrays with
//! conversions (labels, booleans, dates, lookups), unknown columns refused before anything is
//! sent, `--dry-run` sending nothing, `--upsert` twice, a rejects file for bad rows with the
//! rest imported, a run killed mid-way and resumed to exactly N rows, and throttling.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{
    RunningEmulator, d365, d365_process, http_request, stderr, stdout, temp_config,
};
use serde_json::Value;

/// `d365 ARGS` against the emulator: (exit code, stdout, stderr).
fn run(config: &Path, emulator: &RunningEmulator, args: &[&str]) -> (i32, String, String) {
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

/// Every row of `set` with `columns`.
fn rows(config: &Path, emulator: &RunningEmulator, set: &str, columns: &str) -> Vec<Value> {
    let (code, out, err) = run(
        config,
        emulator,
        &["get", set, "--all", "-s", columns, "-o", "jsonl"],
    );
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn admin(emulator: &RunningEmulator, method: &str, path: &str, body: &str) {
    let (status, answer) = http_request(
        method,
        &format!("{}/_emulator/{path}", emulator.base_url),
        "application/json",
        body,
    );
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
}

#[test]
fn files_are_converted_checked_and_imported() {
    let config = temp_config("import-files");
    let emulator = RunningEmulator::start(&config);
    let dir = tempfile::tempdir().unwrap();
    let (code, parent, err) = run(
        &config,
        &emulator,
        &[
            "create",
            "accounts",
            "-d",
            r#"{"name":"Parent","accountnumber":"P-1"}"#,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let parent = parent.trim().to_owned();

    // A column the table does not have: refused before anything is sent, close names listed.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "name,acountnumber\nX,1\n").unwrap();
    let (code, _, err) = run(
        &config,
        &emulator,
        &["import", "account", "-f", bad.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`acountnumber`") && err.contains("`accountnumber`"),
        "{err}"
    );
    // Nor one that cannot be written, even in the last row of a JSON lines file.
    let late = dir.path().join("late.jsonl");
    std::fs::write(
        &late,
        "{\"name\":\"ok\"}\n{\"name\":\"late\",\"createdon\":\"2024-01-01\"}\n",
    )
    .unwrap();
    let (code, _, err) = run(
        &config,
        &emulator,
        &["import", "accounts", "-f", late.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`createdon`"), "{err}");
    assert_eq!(
        rows(&config, &emulator, "accounts", "name").len(),
        1,
        "nothing was sent"
    );

    // CSV: labels, booleans, dates, money, lookups by id and by alternate key; one bad row.
    let csv = dir.path().join("accounts.csv");
    std::fs::write(
        &csv,
        format!(
            "name,accountnumber,accountcategorycode,creditonhold,revenue,lastonholdtime,parentaccountid\n\
             Alpha,A-1,Preferred Customer,yes,1234.5,2024-05-01 09:30,{parent}\n\
             Beta,A-2,standard,no,,,accountnumber=P-1\n\
             Gamma,A-3,Gold,no,,,\n\
             Delta,A-4,1,1,\"2,5\",,\n"
        ),
    )
    .unwrap();
    // --dry-run checks every row and sends nothing.
    let (code, out, err) = run(
        &config,
        &emulator,
        &[
            "import",
            "account",
            "-f",
            csv.to_str().unwrap(),
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 1, "{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (summary["valid"].as_u64(), summary["rejected"].as_u64()),
        (Some(2), Some(2)),
        "{out}"
    );
    assert!(err.contains("row 3") && err.contains("`Gold`"), "{err}");
    assert_eq!(
        rows(&config, &emulator, "accounts", "name").len(),
        1,
        "a dry run sends nothing"
    );

    let (code, out, err) = run(
        &config,
        &emulator,
        &[
            "import",
            "account",
            "-f",
            csv.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 1, "rows rejected: exit 1: {err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["created"], 2, "{out}");
    assert_eq!(summary["rejected"], 2, "{out}");
    let rejects_path = dir.path().join("accounts.csv.rejects.csv");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&rejects_path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the rejects file holds data: private");
    let rejects = std::fs::read_to_string(&rejects_path).unwrap();
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines.len(), 3, "{rejects}");
    assert!(
        lines[0].starts_with("row,error,name,accountnumber"),
        "{rejects}"
    );
    assert!(
        lines[1].starts_with("3,") && lines[1].contains("Gamma"),
        "{rejects}"
    );
    assert!(
        lines[2].starts_with("4,") && lines[2].contains("Delta"),
        "{rejects}"
    );
    assert!(
        !dir.path().join("accounts.csv.d365-import.json").exists(),
        "checkpoint removed"
    );
    let accounts = rows(
        &config,
        &emulator,
        "accounts",
        "name,accountcategorycode,creditonhold,revenue,lastonholdtime,_parentaccountid_value",
    );
    let alpha = accounts.iter().find(|a| a["name"] == "Alpha").unwrap();
    assert_eq!(alpha["accountcategorycode"], 1);
    assert_eq!(alpha["creditonhold"], true);
    assert_eq!(alpha["revenue"], 1234.5);
    assert!(
        alpha["lastonholdtime"]
            .as_str()
            .unwrap()
            .starts_with("2024-05-01T09:30")
    );
    assert_eq!(alpha["_parentaccountid_value"], parent.as_str());
    let beta = accounts.iter().find(|a| a["name"] == "Beta").unwrap();
    assert_eq!(beta["accountcategorycode"], 2);
    assert_eq!(beta["_parentaccountid_value"], parent.as_str());

    // JSON lines into contacts: a lookup with several targets names its table.
    let jsonl = dir.path().join("contacts.jsonl");
    std::fs::write(
        &jsonl,
        "{\"lastname\":\"Ng\",\"birthdate\":\"1990-02-03\",\"parentcustomerid\":\"account(accountnumber=A-1)\"}\n\
         {\"lastname\":\"Li\",\"gendercode\":\"Female\"}\n",
    )
    .unwrap();
    let (code, _, err) = run(
        &config,
        &emulator,
        &["import", "contacts", "-f", jsonl.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let contacts = rows(
        &config,
        &emulator,
        "contacts",
        "lastname,gendercode,_parentcustomerid_value",
    );
    assert_eq!(contacts.len(), 2);
    let ng = contacts.iter().find(|c| c["lastname"] == "Ng").unwrap();
    let alpha_id = accounts.iter().find(|a| a["name"] == "Alpha").unwrap()["accountid"].clone();
    assert_eq!(ng["_parentcustomerid_value"], alpha_id);

    // A JSON array, and the same rows from standard input.
    let json = dir.path().join("more.json");
    std::fs::write(
        &json,
        r#"[{"name": "Json 1", "numberofemployees": 5}, {"name": "Json 2"}]"#,
    )
    .unwrap();
    let (code, _, err) = run(
        &config,
        &emulator,
        &["import", "account", "-f", json.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let output = d365(&config)
        .env("D365_CONNECTION_STRING", &emulator.connection_string)
        .args(["import", "account", "-f", "-", "--format", "csv"])
        .write_stdin("name,numberofemployees\nStdin 1,7\n")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let names: Vec<String> = rows(&config, &emulator, "accounts", "name")
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    for name in ["Json 1", "Json 2", "Stdin 1"] {
        assert!(names.iter().any(|n| n == name), "{names:?}");
    }

    // --upsert by the alternate key, twice: the same records.
    let upsert = dir.path().join("upsert.csv");
    std::fs::write(&upsert, "accountnumber,name\nU-1,One\nU-2,Two\nU-3,Three\n").unwrap();
    let before = rows(&config, &emulator, "accounts", "name").len();
    for _ in 0..2 {
        let (code, out, err) = run(
            &config,
            &emulator,
            &[
                "import",
                "account",
                "-f",
                upsert.to_str().unwrap(),
                "--upsert",
                "accountnumber",
                "-o",
                "json",
            ],
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["upserted"], 3);
    }
    assert_eq!(
        rows(&config, &emulator, "accounts", "name").len(),
        before + 3
    );
    emulator.stop();
}

/// `n` accounts as CSV rows, named `Row 00001` and on.
fn write_accounts(path: &Path, n: usize) {
    let mut text = String::from("name,numberofemployees\n");
    for row in 1..=n {
        text.push_str(&format!("Row {row:05},{row}\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn assert_exactly(config: &Path, emulator: &RunningEmulator, n: usize) {
    let names: Vec<String> = rows(config, emulator, "accounts", "name")
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    let unique: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), n, "every row");
    assert_eq!(names.len(), n, "no row twice");
}

#[test]
fn a_killed_import_resumes_to_exactly_n_rows() {
    const ROWS: usize = 3000;
    let config = temp_config("import-resume");
    let emulator = RunningEmulator::start(&config);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("big.csv");
    write_accounts(&csv, ROWS);
    let checkpoint = dir.path().join("big.csv.d365-import.json");

    // Every request slowed down, so the kill lands mid-way.
    admin(
        &emulator,
        "PUT",
        "faults",
        r#"{"seed": 3, "delay_rate": 1.0, "delay_ms": 150}"#,
    );
    let mut child = d365_process(&config)
        .env("D365_CONNECTION_STRING", &emulator.connection_string)
        .args([
            "import",
            "account",
            "-f",
            csv.to_str().unwrap(),
            "--chunk-size",
            "100",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the import made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "killed before it finished"
        );
        let done = std::fs::read(&checkpoint)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|state| state["done"].as_array().map(|done| !done.is_empty()))
            .unwrap_or(false);
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    admin(&emulator, "DELETE", "faults", "");
    let partial = rows(&config, &emulator, "accounts", "name").len();
    assert!(partial > 0 && partial < ROWS, "killed mid-way: {partial}");

    // A changed input is refused while the checkpoint is there.
    let other = dir.path().join("other");
    std::fs::copy(&csv, &other).unwrap();
    std::fs::write(&csv, std::fs::read_to_string(&other).unwrap() + "Extra,1\n").unwrap();
    let (code, _, err) = run(
        &config,
        &emulator,
        &["import", "account", "-f", csv.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--restart"), "{err}");
    std::fs::copy(&other, &csv).unwrap();

    let (code, out, err) = run(
        &config,
        &emulator,
        &[
            "import",
            "account",
            "-f",
            csv.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("continuing"), "{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert!(summary["skipped"].as_u64().unwrap() > 0, "{out}");
    assert!(!checkpoint.exists());
    assert_exactly(&config, &emulator, ROWS);
    emulator.stop();
}

#[test]
fn throttled_imports_end_with_exactly_n_rows() {
    const ROWS: usize = 1500;
    let config = temp_config("import-429");
    let emulator = RunningEmulator::start(&config);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("throttled.csv");
    write_accounts(&csv, ROWS);
    admin(
        &emulator,
        "PUT",
        "limits",
        r#"{"max_requests": 8, "window_secs": 1}"#,
    );
    let (code, out, err) = run(
        &config,
        &emulator,
        &[
            "import",
            "account",
            "-f",
            csv.to_str().unwrap(),
            "--chunk-size",
            "100",
            "-o",
            "json",
        ],
    );
    admin(&emulator, "PUT", "limits", "{}");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["created"],
        ROWS as u64
    );
    let (status, stats) = http_request(
        "GET",
        &format!("{}/_emulator/dataverse/stats", emulator.base_url),
        "application/json",
        "",
    );
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(
        stats["throttled_responses"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert_eq!(stats["early_retries"], 0, "{stats}");
    assert_exactly(&config, &emulator, ROWS);
    emulator.stop();
}
