//! Which connection and settings win: flags beat the environment, the environment beats the
//! current profile, and an explicit `-p NAME` beats `D365_CONNECTION_STRING`; `profile add`
//! keeps an existing profile unless `--force`; `config show` says where each setting came
//! from.

use crate::support::{RunningEmulator, d365, stderr, stdout, temp_config};

const A: &str = "AuthType=ClientSecret;Url=https://a.crm.dynamics.com;ClientId=00000000-0000-0000-0000-00000000000a;ClientSecret=SECRET-A;TenantId=contoso.onmicrosoft.com";
const B: &str = "AuthType=ClientSecret;Url=https://b.crm.dynamics.com;ClientId=00000000-0000-0000-0000-00000000000b;ClientSecret=SECRET-B;TenantId=contoso.onmicrosoft.com";
const ENV: &str = "AuthType=ClientSecret;Url=https://env.crm.dynamics.com;ClientId=00000000-0000-0000-0000-00000000000e;ClientSecret=SECRET-E;TenantId=contoso.onmicrosoft.com";

/// `d365 config show -o json`, with `env` set, as a map of setting → (value, from).
fn config_show(
    config: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::collections::BTreeMap<String, (serde_json::Value, String)> {
    let mut command = d365(config);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command
        .args(args)
        .args(["config", "show", "-o", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.contains("SECRET"), "secrets are never shown: {text}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    rows.into_iter()
        .map(|row| {
            (
                row["setting"].as_str().unwrap().to_owned(),
                (
                    row["value"].clone(),
                    row["from"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

fn add_profile(config: &std::path::Path, name: &str, text: &str, extra: &[&str]) -> (i32, String) {
    let output = d365(config)
        .args(["profile", "add", name, "-c", text])
        .args(extra)
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), stderr(&output))
}

#[test]
fn flags_beat_the_environment_which_beats_the_current_profile() {
    let config = temp_config("precedence");
    assert_eq!(add_profile(&config, "a", A, &[]).0, 0);
    assert_eq!(add_profile(&config, "b", B, &[]).0, 0);
    let connection = |env: &[(&str, &str)], args: &[&str]| {
        let shown = config_show(&config, env, args);
        let (value, from) = shown["connection"].clone();
        (value.as_str().unwrap_or_default().to_owned(), from)
    };

    // Nothing else: the current profile (the first one added).
    let (value, from) = connection(&[], &[]);
    assert!(value.contains("a.crm.dynamics.com"), "{value}");
    assert_eq!(from, "profile `a` (the current one)");
    // The environment beats the current profile.
    let (value, from) = connection(&[("D365_CONNECTION_STRING", ENV)], &[]);
    assert!(value.contains("env.crm.dynamics.com"), "{value}");
    assert_eq!(from, "D365_CONNECTION_STRING");
    let (value, from) = connection(&[("D365_PROFILE", "b")], &[]);
    assert!(value.contains("b.crm.dynamics.com"), "{value}");
    assert_eq!(from, "profile `b` (D365_PROFILE)");
    let (value, from) = connection(&[("D365_URL", "https://url.crm.dynamics.com")], &[]);
    assert!(value.contains("url.crm.dynamics.com"), "{value}");
    assert_eq!(from, "D365_URL");
    // An explicit -p beats D365_CONNECTION_STRING; -c beats D365_PROFILE.
    let (value, from) = connection(&[("D365_CONNECTION_STRING", ENV)], &["-p", "b"]);
    assert!(value.contains("b.crm.dynamics.com"), "{value}");
    assert_eq!(from, "profile `b` (--profile)");
    let (value, from) = connection(&[("D365_PROFILE", "b")], &["-c", A]);
    assert!(value.contains("a.crm.dynamics.com"), "{value}");
    assert_eq!(from, "--connection-string");
    // A file on the command line beats the variable, without a conflict between them.
    let file = config.join("connection.txt");
    std::fs::write(&file, B).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (value, from) = connection(
        &[("D365_CONNECTION_STRING", ENV)],
        &["--connection-string-file", file.to_str().unwrap()],
    );
    assert!(value.contains("b.crm.dynamics.com"), "{value}");
    assert_eq!(from, "--connection-string-file");

    let both = d365(&config)
        .args([
            "-c",
            A,
            "--connection-string-file",
            file.to_str().unwrap(),
            "config",
            "show",
        ])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2), "both flags: {}", stderr(&both));

    // Settings say where they came from.
    let shown = config_show(&config, &[("D365_TIMEOUT", "42")], &["--max-retries", "2"]);
    assert_eq!(
        shown["timeout_secs"],
        (42.into(), "D365_TIMEOUT".to_owned())
    );
    assert_eq!(shown["max_retries"], (2.into(), "--max-retries".to_owned()));
    assert_eq!(shown["max_pages"].1, "default");
    let shown = config_show(&config, &[("D365_TIMEOUT", "42")], &["--timeout", "7"]);
    assert_eq!(shown["timeout_secs"], (7.into(), "--timeout".to_owned()));
}

#[test]
fn an_explicit_profile_beats_the_connection_string_variable_when_connecting() {
    let config = temp_config("precedence-connect");
    let emulator = RunningEmulator::start(&config);
    assert_eq!(
        add_profile(&config, "emu", &emulator.connection_string, &[]).0,
        0
    );
    // A broken connection string in the environment: used, it fails as a usage error.
    let output = d365(&config)
        .env("D365_CONNECTION_STRING", "AuthType=Nonsense")
        .args(["whoami", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let output = d365(&config)
        .env("D365_CONNECTION_STRING", "AuthType=Nonsense")
        .args(["-p", "emu", "whoami", "-o", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("UserId"), "{}", stdout(&output));
}

#[test]
fn profile_add_keeps_an_existing_profile_unless_forced() {
    let config = temp_config("precedence-force");
    assert_eq!(add_profile(&config, "dev", A, &[]).0, 0);
    let (code, err) = add_profile(&config, "dev", B, &[]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("--force") && err.contains("a.crm.dynamics.com"),
        "{err}"
    );
    let shown = config_show(&config, &[], &["-p", "dev"]);
    assert!(
        shown["connection"]
            .0
            .as_str()
            .unwrap()
            .contains("a.crm.dynamics.com")
    );
    let (code, err) = add_profile(&config, "dev", B, &["--force"]);
    assert_eq!(code, 0, "{err}");
    let shown = config_show(&config, &[], &["-p", "dev"]);
    assert!(
        shown["connection"]
            .0
            .as_str()
            .unwrap()
            .contains("b.crm.dynamics.com")
    );
}
