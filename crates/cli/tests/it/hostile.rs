//! `d365` against a hostile organization: a loopback server whose token endpoint works and
//! whose Web API answers with links that point elsewhere (a second loopback port, "the
//! attacker", records whether a bearer token reached it), links that repeat themselves, an
//! absurd `Retry-After`; an organization that cannot be reached; and queries deep enough to
//! overflow a parser's stack, sent with a valid token to a running emulator. Every case ends
//! with no token leaked, no panic, a non-zero exit and a clear message, in bounded time, and
//! the emulator still answers afterwards.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{RunningEmulator, d365, stderr, stdout, temp_config};

const TENANT: &str = "d3650000-e0e0-4000-8000-00000000beef";
const TOKEN: &str = "HOSTILE-ORG-BEARER-TOKEN";

/// One request as a server saw it.
#[derive(Clone, Debug)]
struct Seen {
    target: String,
    authorization: Option<String>,
}

/// A loopback HTTP/1.1 server answering each request with `answer(target, own base URL)`
/// and recording what it saw. Threads, not a runtime: the tests drive a `d365` process.
struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(
        answer: impl Fn(&str, &str) -> (u16, Vec<(String, String)>, String) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let (log, own) = (Arc::clone(&seen), base.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, answer, own) = (Arc::clone(&log), Arc::clone(&answer), own.clone());
                std::thread::spawn(move || serve(stream, &log, &*answer, &own));
            }
        });
        Self { base, seen }
    }

    fn authority(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

type Answer = (u16, Vec<(String, String)>, String);

fn serve(
    stream: TcpStream,
    log: &Mutex<Vec<Seen>>,
    answer: &(dyn Fn(&str, &str) -> Answer + Send + Sync),
    own: &str,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let (mut length, mut authorization) = (0, None);
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        log.lock().unwrap().push(Seen {
            target: target.clone(),
            authorization,
        });
        let (status, headers, body) = answer(&target, own);
        let mut response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&body);
        if reader.get_mut().write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn json(status: u16, body: serde_json::Value) -> Answer {
    (status, Vec::new(), body.to_string())
}

/// The hostile organization: a working token endpoint; `accounts` pages link to the
/// attacker in the spelling chosen by the page's `$filter` (`name eq 'N'` → `links[N]`),
/// `loops` link to themselves, `throttled` answers 429 with `Retry-After: 1e20`.
fn hostile_organization(links: Vec<String>) -> Server {
    Server::start(move |target, own| {
        if target.contains("/oauth2/v2.0/token") {
            return json(
                200,
                serde_json::json!({"token_type": "Bearer", "access_token": TOKEN, "expires_in": 3600}),
            );
        }
        let path = target.split('?').next().unwrap_or_default();
        match path {
            "/api/data/v9.2/accounts" => {
                let index: usize = target
                    .split("%27")
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                json(
                    200,
                    serde_json::json!({"value": [{"name": "own row"}], "@odata.nextLink": links[index]}),
                )
            }
            "/api/data/v9.2/loops" => json(
                200,
                serde_json::json!({"value": [{"name": "again"}], "@odata.nextLink": format!("{own}/api/data/v9.2/loops?$skiptoken=same")}),
            ),
            "/api/data/v9.2/throttled" => (
                429,
                vec![("Retry-After".to_owned(), "1e20".to_owned())],
                serde_json::json!({"error": {"code": "0x80072322", "message": "Number of requests exceeded the limit of 6000 over time window of 300 seconds."}}).to_string(),
            ),
            _ => json(404, serde_json::json!({"error": {"code": "0x8006088a", "message": "Resource not found"}})),
        }
    })
}

fn connection_string(base: &str) -> String {
    format!(
        "AuthType=ClientSecret;Url={base};TenantId={TENANT};AuthorityHost={base};ClientId=d3650000-a990-4000-8000-0000000000aa;ClientSecret=not-a-real-secret-but-long-enough-123"
    )
}

/// Runs `d365 ARGS` against `connection`, and checks the common promises: a non-zero exit,
/// no panic, the token never in the output, a bounded time. Returns (exit code, stderr).
fn run_refused(config: &std::path::Path, connection: &str, args: &[&str]) -> (i32, String) {
    let started = Instant::now();
    let output = d365(config)
        .env("D365_CONNECTION_STRING", connection)
        .args(args)
        .timeout(Duration::from_secs(90))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let (out, err) = (stdout(&output), stderr(&output));
    let code = output.status.code().unwrap_or(-1);
    assert_ne!(code, 0, "{args:?} must fail\nstdout: {out}\nstderr: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(
        !out.contains(TOKEN) && !err.contains(TOKEN),
        "{args:?} printed the token"
    );
    assert!(
        !out.contains("foreign row"),
        "{args:?} merged foreign rows: {out}"
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "{args:?} took {elapsed:?}"
    );
    (code, err)
}

#[test]
fn links_and_urls_to_another_host_never_receive_the_token() {
    let attacker =
        Server::start(|_, _| json(200, serde_json::json!({"value": [{"name": "foreign row"}]})));
    let evil = attacker.authority();
    let forms = vec![
        format!("HTTP://{evil}/api/data/v9.2/accounts"),
        format!("Http://{evil}/api/data/v9.2/accounts"),
        format!(" http://{evil}/api/data/v9.2/accounts"),
        format!("\thttp://{evil}/api/data/v9.2/accounts"),
        format!("http:\\\\{evil}\\api\\data\\v9.2\\accounts"),
        format!("//{evil}/api/data/v9.2/accounts"),
        format!("/\\{evil}/api/data/v9.2/accounts"),
        format!("http://org@{evil}/api/data/v9.2/accounts"),
        format!("https://{evil}/api/data/v9.2/accounts"),
    ];
    let org = hostile_organization(forms.clone());
    let config = temp_config("hostile-links");
    let connection = connection_string(&org.base);
    for (index, form) in forms.iter().enumerate() {
        let filter = format!("name eq '{index}'");
        for args in [
            vec!["get", "accounts", "--filter", &filter, "--all"],
            vec![
                "get", "accounts", "--filter", &filter, "--all", "-o", "json",
            ],
        ] {
            let (_, err) = run_refused(&config, &connection, &args);
            assert!(
                err.contains("refused to send") || err.contains("control character"),
                "{form:?}: {err}"
            );
        }
        let (code, err) = run_refused(&config, &connection, &["request", "GET", form]);
        assert!(
            err.contains("refused to send")
                || err.contains("control character")
                || err.contains("user name"),
            "{form:?}: {err}"
        );
        assert!(code == 1 || code == 2, "{form:?}: exit {code}");
        // An export never leaves a file behind either.
        let out = config.join(format!("export-{index}.jsonl"));
        run_refused(
            &config,
            &connection,
            &[
                "get",
                "accounts",
                "--filter",
                &filter,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(!out.exists(), "no file under the target's name");
    }
    assert!(
        attacker.seen().is_empty(),
        "nothing reached the attacker: {:?}",
        attacker.seen()
    );
    assert!(
        org.seen()
            .iter()
            .any(|seen| seen.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))),
        "the organization itself did get the token"
    );
    std::fs::remove_dir_all(&config).unwrap();
}

#[test]
fn paging_in_a_loop_and_an_absurd_retry_after_end_at_once() {
    let org = hostile_organization(vec![String::new()]);
    let config = temp_config("hostile-paging");
    let connection = connection_string(&org.base);
    let (code, err) = run_refused(&config, &connection, &["get", "loops", "--all"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("repeats an earlier one"), "{err}");
    let loops = org
        .seen()
        .iter()
        .filter(|seen| seen.target.contains("loops"))
        .count();
    assert_eq!(loops, 2, "the first page and the repeated link, once");

    let started = Instant::now();
    let (code, err) = run_refused(&config, &connection, &["get", "throttled"]);
    assert_eq!(code, 5, "throttled: {err}");
    assert!(err.contains("asked to wait"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "no wait: {:?}",
        started.elapsed()
    );
    std::fs::remove_dir_all(&config).unwrap();
}

#[test]
fn an_unreachable_organization_fails_within_30_seconds_with_exit_6() {
    // A port that was just released: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token_service = hostile_organization(vec![String::new()]);
    let config = temp_config("hostile-unreachable");
    let connection = format!(
        "AuthType=ClientSecret;Url=http://127.0.0.1:{port};TenantId={TENANT};AuthorityHost={};ClientId=d3650000-a990-4000-8000-0000000000aa;ClientSecret=not-a-real-secret-but-long-enough-123",
        token_service.base
    );
    let started = Instant::now();
    let (code, err) = run_refused(&config, &connection, &["whoami"]);
    let elapsed = started.elapsed();
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")),
        "the message names the host: {err}"
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    std::fs::remove_dir_all(&config).unwrap();
}

#[test]
fn queries_deep_enough_to_overflow_a_parser_are_refused_and_the_emulator_lives_on() {
    let config = temp_config("hostile-deep");
    let emulator = RunningEmulator::start(&config);
    // The read-only application: a read-only caller must not be able to take it down.
    let read_only = emulator.connection_strings[3].clone();
    let deep_parens = format!("{}name eq 'x'{}", "(".repeat(450), ")".repeat(450));
    let deep_not = format!("{}name eq 'x'", "not ".repeat(1000));
    let deep_fetch = format!(
        "<fetch><entity name=\"account\">{}<condition attribute=\"name\" operator=\"eq\" value=\"x\"/>{}</entity></fetch>",
        "<filter>".repeat(500),
        "</filter>".repeat(500)
    );
    for args in [
        vec!["get", "accounts", "--filter", deep_parens.as_str()],
        vec!["get", "accounts", "--filter", deep_not.as_str()],
        vec!["fetchxml", "accounts", deep_fetch.as_str()],
    ] {
        let (code, err) = run_refused(&config, &read_only, &args);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("HTTP 400") && err.contains("more than"),
            "{err}"
        );
    }
    let output = d365(&config)
        .env("D365_CONNECTION_STRING", &read_only)
        .args(["whoami", "-o", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the emulator still answers: {}",
        stderr(&output)
    );
    emulator.stop();
    std::fs::remove_dir_all(&config).unwrap();
}

/// What a command line holds is visible to every local user (`ps`): a connection string
/// with a secret typed there gets a warning, and `-c -`, `--connection-string-file`,
/// the environment and `profile add` without `-c` keep it off the command line.
#[test]
fn secrets_stay_off_the_command_line() {
    let config = temp_config("secret-argv");
    let emulator = RunningEmulator::start(&config);
    let secret = &emulator.connection_string;
    let warning = "other users of this machine can read in the process list";

    let output = d365(&config)
        .args(["-c", secret, "whoami"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains(warning), "{}", stderr(&output));

    let output = d365(&config)
        .args(["-c", "-", "whoami"])
        .write_stdin(format!("{secret}\n"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains(warning));

    let file = config.join("connection.txt");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let output = d365(&config)
        .args(["--connection-string-file", file.to_str().unwrap(), "whoami"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains(warning));

    let output = d365(&config)
        .env("D365_CONNECTION_STRING", secret)
        .arg("whoami")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains(warning),
        "the environment is not the process list"
    );

    // `profile add` reads standard input when no -c is given (a prompt without echo on a
    // terminal).
    let output = d365(&config)
        .args(["profile", "add", "from-stdin"])
        .write_stdin(secret.clone())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains(warning));
    let output = d365(&config)
        .args(["-p", "from-stdin", "whoami"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let output = d365(&config)
        .args(["profile", "add", "typed", "-c", secret])
        .output()
        .unwrap();
    assert!(stderr(&output).contains(warning), "{}", stderr(&output));
    emulator.stop();
    std::fs::remove_dir_all(&config).unwrap();
}

/// A token file warmed with the right secret never serves a wrong one, and `auth doctor`
/// proves the credential with a fresh request instead of trusting the file.
#[test]
fn a_wrong_secret_is_refused_even_with_a_warm_token_file() {
    let config = temp_config("wrong-secret");
    let emulator = RunningEmulator::start(&config);
    let right = emulator.connection_string.clone();
    let wrong = right.replace("ClientSecret=", "ClientSecret=WRONG-");
    let run = |connection: &str, args: &[&str]| {
        d365(&config)
            .env("D365_CONNECTION_STRING", connection)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&right, &["whoami"]).status.success());
    let output = run(&wrong, &["whoami"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("AADSTS7000215"),
        "{}",
        stderr(&output)
    );
    let output = run(&wrong, &["auth", "doctor", "-o", "json"]);
    assert_ne!(output.status.code(), Some(0), "{}", stdout(&output));
    let steps: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let token_step = steps
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["check"] == "token")
        .unwrap();
    assert_eq!(token_step["result"], "FAILED", "{steps}");
    // The right secret still works from the warm file, and doctor passes with it.
    assert!(run(&right, &["whoami"]).status.success());
    assert!(run(&right, &["auth", "doctor"]).status.success());
    emulator.stop();
    std::fs::remove_dir_all(&config).unwrap();
}

/// `--out` writes a temporary file beside the target and renames it only when complete: a
/// failure or Ctrl-C leaves an existing file as it was and nothing half-written behind.
#[test]
fn an_export_replaces_its_file_only_when_complete() {
    let config = temp_config("export-atomic");
    let emulator = RunningEmulator::start(&config);
    let target = config.join("accounts.jsonl");
    std::fs::write(&target, "precious\n").unwrap();
    let connection = emulator.connection_string.clone();
    let export = |set: &str| {
        d365(&config)
            .env("D365_CONNECTION_STRING", &connection)
            .args(["get", set, "--out", target.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let leftovers = || {
        std::fs::read_dir(&config)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".partial"))
            .count()
    };
    let output = export("nosuchset");
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    assert_eq!(leftovers(), 0);

    // A slow export, interrupted with Ctrl-C half-way.
    let admin = format!("{}/_emulator", emulator.base_url);
    let (status, body) = crate::support::http_post(
        &format!("{admin}/dataverse/generate"),
        "application/json",
        r#"{"count": 3000}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = crate::support::http_request(
        "PUT",
        &format!("{admin}/faults"),
        "application/json",
        r#"{"delay_rate": 1.0, "delay_ms": 300}"#,
    );
    assert_eq!(status, 200, "{body}");
    let mut child = crate::support::d365_process(&config)
        .env("D365_CONNECTION_STRING", &connection)
        .args([
            "get",
            "accounts",
            "--page-size",
            "50",
            "--out",
            target.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while leftovers() == 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(700));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "precious\n",
        "untouched"
    );
    assert_eq!(leftovers(), 0, "the partial file is removed");

    let (status, _) =
        crate::support::http_request("DELETE", &format!("{admin}/faults"), "application/json", "");
    assert_eq!(status, 204);
    let output = export("accounts");
    assert!(output.status.success(), "{}", stderr(&output));
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(
        written.lines().count() >= 3000,
        "complete: {} lines",
        written.lines().count()
    );
    assert!(
        written
            .lines()
            .all(|line| serde_json::from_str::<serde_json::Value>(line).is_ok())
    );
    emulator.stop();
    std::fs::remove_dir_all(&config).unwrap();
}
