//! `d365 login` with the device code grant against `d365 emulator`: the sign-in is
//! remembered in a profile and the encrypted token file, later commands ask nobody,
//! `auth status` says who is signed in, and `logout` removes every trace.

use crate::support::{
    ALICE_SYSTEMUSER_ID, RunningEmulator, d365, d365_process, http_post, stderr, stdout,
    temp_config, with_device_code,
};

/// The value of `key` in a printed connection string.
fn value_of<'a>(connection_string: &'a str, key: &str) -> &'a str {
    connection_string
        .split(';')
        .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in {connection_string}"))
}

#[test]
fn a_person_signs_in_once_and_logout_removes_every_trace() {
    let config = temp_config("login");
    let settings = config.join("emulator.toml");
    std::fs::write(&settings, "device_code_interval_secs = 1\n").unwrap();
    let emulator = RunningEmulator::start_with(&config, &["--config", settings.to_str().unwrap()]);
    let user = &emulator.user_connection_string;
    let mut login = d365_process(&config);
    login.args([
        "login",
        "--device-code",
        "-p",
        "alice",
        "-o",
        "json",
        "--url",
        &emulator.base_url,
        "--authority-host",
        &emulator.base_url,
        "--tenant",
        value_of(user, "TenantId"),
        "--client-id",
        value_of(user, "ClientId"),
    ]);
    let (code, out, err) = with_device_code(login, |page, user_code| {
        let (status, body) = http_post(
            page,
            "application/x-www-form-urlencoded",
            &format!(
                "user_code={user_code}&username=alice%40contoso.onmicrosoft.com&password=Emulator-Passw0rd%21&action=approve"
            ),
        );
        assert_eq!(status, 200, "{body}");
    });
    assert_eq!(code, Some(0), "{err}");
    let facts: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        facts["signed in as"], "alice@contoso.onmicrosoft.com",
        "{facts}"
    );
    assert_eq!(facts["profile"], "alice");
    assert_eq!(facts["renewed with"], "refresh token (no prompt)");

    // The token file holds no token in clear text, and its key lives apart from it.
    let tokens = std::fs::read_to_string(config.join("tokens.json")).unwrap();
    assert!(!tokens.contains("eyJ"), "{tokens}");
    assert!(config.join("tokens.json.key").exists());

    // Later commands use the remembered sign-in: no prompt.
    let output = d365(&config)
        .args(["whoami", "-o", "json", "-p", "alice"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("To sign in"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains(ALICE_SYSTEMUSER_ID));

    let output = d365(&config)
        .args(["auth", "status", "-o", "json"])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(rows[0]["profile"], "alice", "{rows}");
    assert_eq!(rows[0]["signed in as"], "alice@contoso.onmicrosoft.com");
    assert_eq!(rows[0]["current"], "*");

    // The default chain ends with the remembered sign-in. No managed identity here (its
    // endpoint a loopback port nobody listens on, never the link-local one), no `az`.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let imds = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let empty = tempfile::tempdir().unwrap();
    let output = d365(&config)
        .args(["whoami", "-o", "json", "-p", "alice", "--grant", "default"])
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds)
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(ALICE_SYSTEMUSER_ID));

    let output = d365(&config)
        .args(["logout", "-p", "alice", "-o", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    for gone in ["tokens.json", "tokens.json.key", "tokens.json.keystore"] {
        assert!(!config.join(gone).exists(), "{gone} is gone");
    }
    let output = d365(&config)
        .args(["auth", "status", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(stdout(&output).trim(), "[]");
    emulator.stop();
}
