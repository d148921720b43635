//! Secrets never reach what `d365` prints or logs: every command runs at `-vv` with
//! `RUST_LOG=trace` against `d365 emulator` (itself logging at trace), with every grant the
//! CLI offers and with failures forced (wrong secrets and passwords, MFA, 403s, a token
//! file that is not a JWT, injected 503s and cut connections). Each command's stdout and
//! stderr, the emulator's log and every insta snapshot in the workspace are searched for
//! the secrets, the passwords, the private key, the federated assertion and anything
//! shaped like a JWT. Only `d365 token --raw` prints a token, on stdout, by design. Files
//! that hold secrets are private to their owner.

use std::path::{Path, PathBuf};

use crate::support::{RunningEmulator, d365_process, http_request, temp_config, with_device_code};

/// Wrong credentials a user could mistype: must not be echoed back either.
const WRONG_SECRET: &str = "LEAK-TEST-WRONG-SECRET~1";
const WRONG_PASSWORD: &str = "LEAK-TEST-WRONG-PASSWORD!";
/// A federated token (JWT-shaped, so it is sent) that the emulator refuses.
const FEDERATED_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsZWFrLXRlc3QifQ.LEAK-TEST-FEDERATED-SIGNATURE";

/// One finished `d365` command.
struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `d365` commands at trace level with a private configuration directory.
struct Runner {
    config: PathBuf,
    runs: Vec<Run>,
}

impl Runner {
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut command = d365_process(&self.config);
        command
            .arg("-vv")
            .args(args)
            .env("RUST_LOG", "trace")
            .envs(env.iter().copied());
        command
    }

    /// Runs `d365 args` and keeps what it printed; returns its index.
    fn run(&mut self, args: &[&str], env: &[(&str, &str)]) -> &Run {
        let output = self.command(args, env).output().unwrap();
        self.runs.push(Run {
            what: redacted_args(args),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
        self.runs.last().unwrap()
    }

    /// As [`Self::run`], and the command must succeed.
    fn ok(&mut self, args: &[&str]) -> &Run {
        let run = self.run(args, &[]);
        assert_eq!(run.code, Some(0), "{}:\n{}", run.what, tail(&run.stderr));
        self.runs.last().unwrap()
    }

    /// As [`Self::run`], and the command must fail with `code`, saying `expected`.
    fn fails(&mut self, args: &[&str], env: &[(&str, &str)], code: i32, expected: &str) {
        let run = self.run(args, env);
        assert_eq!(run.code, Some(code), "{}:\n{}", run.what, tail(&run.stderr));
        assert!(
            run.stderr.contains(expected),
            "{} should say {expected:?}:\n{}",
            run.what,
            tail(&run.stderr)
        );
    }
}

/// The command line for an assertion message, with connection strings cut short.
fn redacted_args(args: &[&str]) -> String {
    args.iter()
        .map(|arg| {
            if arg.starts_with("AuthType=") {
                "<connection string>"
            } else {
                arg
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last lines of a long trace log, enough to see the error.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// The value of `key` in a connection string.
fn setting<'a>(connection_string: &'a str, key: &str) -> &'a str {
    connection_string
        .split(';')
        .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in {connection_string}"))
}

/// Where the first JWT-shaped string (`eyJ…` header, a dot, a payload) starts, if any.
fn find_jwt(text: &str) -> Option<&str> {
    let is_base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    text.match_indices("eyJ").find_map(|(start, _)| {
        let rest = &text.as_bytes()[start..];
        let header = rest.iter().take_while(|b| is_base64url(**b)).count();
        let payload = rest
            .get(header + 1..)
            .filter(|_| rest.get(header) == Some(&b'.'))
            .map_or(0, |after| {
                after.iter().take_while(|b| is_base64url(**b)).count()
            });
        (header >= 10 && payload >= 10).then(|| &text[start..start + header + 1 + payload])
    })
}

/// Every secret the commands were given or the emulator issued, each with a name.
fn secrets(emulator: &RunningEmulator) -> Vec<(String, String)> {
    let mut secrets = vec![
        ("a wrong client secret".to_owned(), WRONG_SECRET.to_owned()),
        ("a wrong password".to_owned(), WRONG_PASSWORD.to_owned()),
        ("the federated token".to_owned(), FEDERATED_TOKEN.to_owned()),
        (
            "the federated token's signature".to_owned(),
            "LEAK-TEST-FEDERATED-SIGNATURE".to_owned(),
        ),
    ];
    for printed in &emulator.connection_strings {
        for key in ["ClientSecret", "Password", "IdentityHeader"] {
            if let Some(value) = printed
                .split(';')
                .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
            {
                secrets.push((format!("the emulator's {key}"), value.to_owned()));
            }
        }
    }
    let key_file = setting(
        &emulator.certificate_connection_string,
        "CertificateKeyPath",
    );
    let key = std::fs::read_to_string(key_file).unwrap();
    secrets.extend(
        key.lines()
            .filter(|line| !line.starts_with("-----") && line.len() > 20)
            .map(|line| {
                (
                    "a line of the certificate's private key".to_owned(),
                    line.to_owned(),
                )
            }),
    );
    secrets
}

/// The access and refresh tokens the token file keeps, to search for verbatim.
fn tokens_in(token_file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(token_file).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entries = file["entries"]
        .as_object()
        .expect("a token file with entries");
    assert!(!entries.is_empty(), "the token file kept tokens");
    entries
        .values()
        .flat_map(|entry| ["access_token", "refresh_token"].map(|field| entry[field].as_str()))
        .flatten()
        .map(str::to_owned)
        .collect()
}

fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode & 0o077,
        0,
        "{} is readable by others: {mode:o}",
        path.display()
    );
}

#[test]
fn no_command_prints_or_logs_a_secret() {
    let config = temp_config("no-secrets");
    let settings = config.join("emulator.toml");
    std::fs::write(&settings, "device_code_interval_secs = 1\n").unwrap();
    let emulator = RunningEmulator::start_with_env(
        &config,
        &["--config", settings.to_str().unwrap()],
        &[("RUST_LOG", "trace")],
    );
    let [app, certificate, alice, read_only, no_user, ..] = emulator.connection_strings.as_slice()
    else {
        panic!(
            "at least five connection strings: {:?}",
            emulator.connection_strings
        );
    };
    let mut d365 = Runner {
        config: config.to_path_buf(),
        runs: Vec::new(),
    };
    let c = |connection: &str| ["-c".to_owned(), connection.to_owned()];
    let with = |connection: &str, args: &[&str]| -> Vec<String> {
        c(connection)
            .into_iter()
            .chain(args.iter().map(|arg| (*arg).to_owned()))
            .collect()
    };
    let run_ok = |d365: &mut Runner, args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        d365.ok(&args);
    };

    // Every command with the confidential app (client secret).
    run_ok(&mut d365, with(app, &["whoami", "-o", "json"]));
    run_ok(&mut d365, with(app, &["token"]));
    run_ok(&mut d365, with(app, &["token", "-o", "json"]));
    run_ok(
        &mut d365,
        with(
            app,
            &[
                "create",
                "accounts",
                "-d",
                r#"{"name":"Leak test","accountnumber":"LEAK-1"}"#,
            ],
        ),
    );
    run_ok(
        &mut d365,
        with(
            app,
            &[
                "update",
                "accounts",
                "accountnumber=LEAK-1",
                "-d",
                r#"{"revenue":5}"#,
            ],
        ),
    );
    run_ok(
        &mut d365,
        with(
            app,
            &[
                "upsert",
                "accounts",
                "accountnumber=LEAK-2",
                "-d",
                r#"{"name":"Upserted"}"#,
            ],
        ),
    );
    run_ok(
        &mut d365,
        with(
            app,
            &[
                "get", "accounts", "--select", "name", "--all", "-o", "jsonl",
            ],
        ),
    );
    let export = config.join("export.csv");
    run_ok(
        &mut d365,
        with(
            app,
            &[
                "get",
                "accounts",
                "--select",
                "name",
                "--out",
                export.to_str().unwrap(),
                "-o",
                "csv",
            ],
        ),
    );
    run_ok(
        &mut d365,
        with(
            app,
            &[
                "fetchxml",
                "accounts",
                r#"<fetch><entity name="account"><attribute name="name"/></entity></fetch>"#,
            ],
        ),
    );
    run_ok(&mut d365, with(app, &["request", "GET", "WhoAmI"]));
    let batch = config.join("batch.json");
    std::fs::write(
        &batch,
        r#"{"continue_on_error":true,"requests":[{"method":"GET","url":"WhoAmI"},{"method":"GET","url":"nosuchset"}]}"#,
    )
    .unwrap();
    let batch_args = with(app, &["batch", batch.to_str().unwrap(), "-o", "json"]);
    let batch_args: Vec<&str> = batch_args.iter().map(String::as_str).collect();
    let run = d365.run(&batch_args, &[]);
    assert!(
        run.code != Some(0) && run.stderr.contains("1 of 2 operations failed"),
        "a batch with a failing part fails: {}",
        tail(&run.stderr)
    );
    run_ok(
        &mut d365,
        with(app, &["delete", "accounts", "accountnumber=LEAK-2"]),
    );
    let import = config.join("import.csv");
    std::fs::write(&import, "name,accountnumber\nLeak import,LEAK-3\n").unwrap();
    run_ok(
        &mut d365,
        with(
            app,
            &[
                "import",
                "accounts",
                "-f",
                import.to_str().unwrap(),
                "--upsert",
                "accountnumber",
            ],
        ),
    );
    run_ok(&mut d365, with(app, &["auth", "doctor"]));
    run_ok(&mut d365, with(app, &["auth", "compare", "-o", "json"]));

    // Profiles: the connection string goes to a private file and never comes back.
    d365.ok(&["profile", "add", "leaky", "--connection-string", app]);
    d365.ok(&["profile", "list"]);
    d365.ok(&["profile", "show", "leaky"]);
    d365.ok(&["profile", "use", "leaky"]);
    d365.ok(&["whoami", "--no-token-cache"]);
    d365.ok(&["profile", "remove", "leaky"]);

    // The other grants: certificate, password (ROPC), device code.
    run_ok(
        &mut d365,
        with(certificate, &["whoami", "--no-token-cache"]),
    );
    run_ok(&mut d365, with(alice, &["whoami"]));
    run_ok(&mut d365, with(alice, &["token", "-o", "json"]));
    let device_code = d365.command(&["whoami", "--grant", "device-code", "-c", alice], &[]);
    let (code, stdout, stderr) = with_device_code(device_code, |_, user_code| {
        let (status, body) = http_request(
            "POST",
            &format!("{}/_emulator/device-codes/approve", emulator.base_url),
            "application/json",
            &format!(r#"{{"user_code":"{user_code}","user":"alice@contoso.onmicrosoft.com"}}"#),
        );
        assert_eq!(status, 200, "{body}");
    });
    assert_eq!(code, Some(0), "{}", tail(&stderr));
    d365.runs.push(Run {
        what: "whoami --grant device-code".to_owned(),
        code,
        stdout,
        stderr,
    });

    // Failures: a wrong secret, a wrong password, a user who needs MFA, an app without an
    // application user, a read-only app writing, a plain-http URL, a refused federated
    // token, a request aimed at another host.
    let wrong_secret = app.replace(setting(app, "ClientSecret"), WRONG_SECRET);
    d365.fails(
        &["whoami", "--no-token-cache", "-c", &wrong_secret],
        &[],
        3,
        "AADSTS7000215",
    );
    let wrong_password = alice.replace(setting(alice, "Password"), WRONG_PASSWORD);
    d365.fails(
        &["whoami", "--no-token-cache", "-c", &wrong_password],
        &[],
        3,
        "AADSTS50126",
    );
    let bob = alice.replace("alice@", "bob@");
    d365.fails(
        &["whoami", "--no-token-cache", "-c", &bob],
        &[],
        3,
        "AADSTS50076",
    );
    d365.fails(&["whoami", "-c", no_user], &[], 3, "0x80072560");
    d365.fails(
        &[
            "create",
            "accounts",
            "-c",
            read_only,
            "-d",
            r#"{"name":"x"}"#,
        ],
        &[],
        3,
        "0x80040220",
    );
    let plain_http = wrong_secret.replace(&emulator.base_url, "http://contoso.crm.dynamics.com");
    d365.fails(&["whoami", "-c", &plain_http], &[], 2, "plain http");
    d365.fails(
        &[
            "request",
            "GET",
            "http://127.0.0.1:9/api/data/v9.2/WhoAmI",
            "-c",
            app,
        ],
        &[],
        1,
        "refused to send the organization's token",
    );
    let federated_file = config.join("federated-token.jwt");
    std::fs::write(&federated_file, FEDERATED_TOKEN).unwrap();
    let tenant = setting(app, "TenantId");
    let client_id = setting(app, "ClientId");
    let environment = |credential: (&'static str, String)| {
        [
            ("AZURE_TENANT_ID", tenant.to_owned()),
            ("AZURE_CLIENT_ID", client_id.to_owned()),
            ("AZURE_AUTHORITY_HOST", emulator.base_url.clone()),
            ("D365_URL", emulator.base_url.clone()),
            credential,
        ]
    };
    for (credential, expected) in [
        (
            ("AZURE_CLIENT_SECRET", WRONG_SECRET.to_owned()),
            "AADSTS7000215",
        ),
        (
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                federated_file.display().to_string(),
            ),
            "AADSTS",
        ),
    ] {
        let variables = environment(credential);
        let env: Vec<(&str, &str)> = variables
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        d365.fails(&["whoami", "--no-token-cache"], &env, 3, expected);
    }

    // Faults: half the requests answer 503 or are cut mid-body; the commands retry.
    let faults = format!("{}/_emulator/faults", emulator.base_url);
    let (status, body) = http_request(
        "PUT",
        &faults,
        "application/json",
        r#"{"seed":10,"unavailable_rate":0.3,"cut_rate":0.2}"#,
    );
    assert_eq!(status, 200, "{body}");
    d365.run(&["whoami", "--no-token-cache", "-c", app], &[]);
    d365.run(&["get", "accounts", "--all", "-c", app], &[]);
    let (status, body) = http_request("DELETE", &faults, "application/json", "");
    assert!(status < 300, "{body}");

    // The one command that prints a token: on stdout, never in its logs.
    let raw = d365.run(&["token", "--raw", "-c", app], &[]);
    assert!(
        find_jwt(&raw.stdout).is_some(),
        "token --raw prints the token"
    );
    let raw_stdout = raw.stdout.trim().to_owned();
    d365.runs.last_mut().unwrap().stdout.clear();

    // The embedded emulator and the demo, at trace level too.
    d365.ok(&["demo"]);
    d365.ok(&["auth", "compare", "--emulator"]);
    let mut searched = secrets(&emulator);
    let log_file = emulator.log_file.clone();
    emulator.stop();

    let token_file = config.join("tokens.json");
    assert_private(&token_file);
    assert_private(&config.join("secrets.toml"));
    searched.extend(
        tokens_in(&token_file)
            .into_iter()
            .chain([raw_stdout])
            .map(|token| ("a token from the token file".to_owned(), token)),
    );
    assert!(
        d365.runs.iter().any(|run| run.stderr.contains("TRACE")),
        "trace logging was captured"
    );
    let emulator_log = std::fs::read_to_string(&log_file).unwrap();
    for event in ["token request refused", "fault injected"] {
        assert!(
            emulator_log.contains(event),
            "the emulator logged {event:?}:\n{emulator_log}"
        );
    }
    let mut observed: Vec<(String, &str)> = Vec::new();
    for run in &d365.runs {
        observed.push((format!("stdout of `d365 {}`", run.what), &run.stdout));
        observed.push((format!("stderr of `d365 {}`", run.what), &run.stderr));
    }
    observed.push(("the emulator's log".to_owned(), &emulator_log));
    let snapshots = every_snapshot();
    for (path, text) in &snapshots {
        observed.push((format!("snapshot {}", path.display()), text));
    }
    for (place, text) in &observed {
        for (name, secret) in &searched {
            assert!(
                !text.contains(secret.as_str()),
                "{name} leaked into {place}"
            );
        }
        if let Some(jwt) = find_jwt(text) {
            panic!(
                "a JWT-shaped string leaked into {place}: {}…",
                &jwt[..jwt.len().min(24)]
            );
        }
    }
}

/// Every `*.snap` file under the workspace's `crates/`, with its text. Fails when there
/// are none: a scan of nothing proves nothing.
fn every_snapshot() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, found: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() && name != "target" && name != "node_modules" {
                walk(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "snap") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
    }
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    walk(&crates, &mut found);
    assert!(
        found.len() >= 10,
        "expected the workspace's insta snapshots under {}, found {}",
        crates.display(),
        found.len()
    );
    found
}
