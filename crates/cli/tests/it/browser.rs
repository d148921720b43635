//! The browser sign-in end to end, in a real browser: `d365 login` waits on its loopback
//! port while a headless Chromium, driven through WebDriver (`chromedriver`), fills in the
//! emulator's sign-in page as alice; then `d365 whoami` runs as alice with no prompt.
//!
//! `cargo xtask test` installs Debian's `chromium` and `chromium-driver`. Without them the
//! test says so and passes, except under `CI=true`, where it fails: a needed test must
//! never skip silently there.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::support::{
    ALICE_SYSTEMUSER_ID, RunningEmulator, d365, d365_process, stderr, stdout, temp_config,
};

/// `chromedriver` on a free loopback port, stopped when dropped.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether Chromium and chromedriver are installed; under CI their absence fails.
fn browser_available() -> bool {
    let found = ["chromedriver", "chromium"].iter().all(|program| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    });
    if !found {
        let message = "chromium and chromedriver are not installed; `cargo xtask test` installs them (Debian's chromium, chromium-driver)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        #[allow(clippy::print_stderr, reason = "a skipped test says why")]
        {
            eprintln!("skipping the browser sign-in test: {message}");
        }
    }
    found
}

/// Reads `child`'s stderr until the sign-in address, and keeps the rest for later.
fn sign_in_address(child: &mut Child) -> (String, std::thread::JoinHandle<String>) {
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut seen = String::new();
    let address = loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "no sign-in address: {seen}"
        );
        seen.push_str(&line);
        if let Some((_, url)) = line.split_once("open this page in a browser on this machine: ") {
            break url.trim().to_owned();
        }
    };
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        seen + &rest
    });
    (address, rest)
}

fn value_of<'a>(connection_string: &'a str, key: &str) -> &'a str {
    connection_string
        .split(';')
        .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in {connection_string}"))
}

/// Opens `address` in headless Chromium, signs in as alice at the emulator's page, and
/// waits until the browser is back at d365's loopback page.
async fn sign_in_in_chromium(driver: &ChromeDriver, address: &str) {
    let profile_dir = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    let mut chrome = json!({
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            format!("--user-data-dir={}", profile_dir.path().display()),
        ],
    });
    if Path::new("/usr/bin/chromium").exists() {
        chrome["binary"] = json!("/usr/bin/chromium");
    }
    capabilities.insert("goog:chromeOptions".to_owned(), chrome);
    let browser = ClientBuilder::rustls()
        .unwrap()
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session");
    browser.goto(address).await.unwrap();
    let username = browser.find(Locator::Id("username")).await.unwrap();
    username.clear().await.unwrap();
    username
        .send_keys("alice@contoso.onmicrosoft.com")
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("Emulator-Passw0rd!")
        .await
        .unwrap();
    browser
        .find(Locator::Id("accept"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The browser comes back to d365's loopback page.
    let started = Instant::now();
    loop {
        let page = browser.source().await.unwrap_or_default();
        if page.contains("You are signed in to d365") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never came back: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let final_url = browser.current_url().await.unwrap();
    assert_eq!(final_url.host_str(), Some("localhost"), "{final_url}");
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_in_a_real_browser_and_is_remembered() {
    if !browser_available() {
        return;
    }
    let config = temp_config("browser");
    let emulator = RunningEmulator::start(&config);
    let driver = ChromeDriver::start();
    let user = emulator.user_connection_string.clone();
    let mut login = d365_process(&config)
        .args([
            "login",
            "--no-browser",
            "-p",
            "bob",
            "-o",
            "json",
            "--url",
            &emulator.base_url,
            "--authority-host",
            &emulator.base_url,
            "--tenant",
            value_of(&user, "TenantId"),
            "--client-id",
            value_of(&user, "ClientId"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (address, login_stderr) = sign_in_address(&mut login);
    assert!(address.contains("code_challenge_method=S256"), "{address}");

    sign_in_in_chromium(&driver, &address).await;

    let output = tokio::task::spawn_blocking(move || login.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let login_stderr = login_stderr.join().unwrap();
    assert!(output.status.success(), "{login_stderr}");
    let facts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        facts["signed in as"], "alice@contoso.onmicrosoft.com",
        "{facts}"
    );

    // Remembered: no prompt, no browser.
    let output = d365(&config)
        .args(["whoami", "-o", "json", "-p", "bob"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("open this page"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains(ALICE_SYSTEMUSER_ID));
    drop(driver);
    emulator.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_at_ad_fs_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let config = temp_config("browser-adfs");
    let emulator = RunningEmulator::start_with(&config, &["--on-premises"]);
    let organization = format!("{}/Contoso", emulator.base_url);
    let driver = ChromeDriver::start();
    // Without --client-id, d365 says AD FS needs one, before any browser opens.
    let output = d365(&config)
        .args(["login", "--no-browser", "--url", &organization])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Add-AdfsClient"),
        "{}",
        stderr(&output)
    );

    let public_client = value_of(&emulator.user_connection_string, "ClientId").to_owned();
    let mut login = d365_process(&config)
        .args([
            "login",
            "--no-browser",
            "-p",
            "onprem",
            "-o",
            "json",
            "--url",
            &organization,
            "--client-id",
            &public_client,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (address, login_stderr) = sign_in_address(&mut login);
    assert!(address.contains("/adfs/oauth2/authorize"), "{address}");
    assert!(address.contains("code_challenge_method=S256"), "{address}");
    sign_in_in_chromium(&driver, &address).await;
    let output = tokio::task::spawn_blocking(move || login.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let login_stderr = login_stderr.join().unwrap();
    assert!(output.status.success(), "{login_stderr}");

    // Remembered: the profile's later commands ask nobody.
    let output = d365(&config)
        .args(["whoami", "-o", "json", "-p", "onprem"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(ALICE_SYSTEMUSER_ID),
        "{}",
        stdout(&output)
    );
    drop(driver);
    emulator.stop();
}
