//! [`FakeAz`]: a stand-in for the Azure CLI — a `#!/bin/sh` script named `az`, mode 0755, in
//! a private temporary directory — that records the arguments it was given, one a line, in
//! `args` beside it. Tests find it through `search_path` (or `program`), so the process
//! environment is never changed and the real `az` never runs.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use d365_auth_azure_cli::{AzureCli, AzureCliBuilder};
use d365_auth_core::{AccessToken, AuthError, TokenProvider, TokenRequest};
use tempfile::TempDir;
use tokio::sync::RwLock;

/// The organization every test asks a token for.
pub(crate) const ORG: &str = "https://contoso.crm.dynamics.com";

/// Writing an executable while another test thread starts a process lets that process
/// inherit the file, open for writing, until it runs its own program; running the script
/// in that moment fails with "text file busy" (ETXTBSY). Scripts are written holding this
/// lock exclusively; processes are started holding it shared ([`request`]).
pub(crate) static STARTING: RwLock<()> = RwLock::const_new(());

/// A fake `az` in a directory of its own.
pub(crate) struct FakeAz {
    dir: TempDir,
}

impl FakeAz {
    /// An `az` that records its arguments, then runs the shell commands `body`.
    pub(crate) async fn new(body: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n{body}\n",
            dir.path().join("args").display()
        );
        let _writing = STARTING.write().await;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(dir.path().join("az"))
            .unwrap();
        file.write_all(script.as_bytes()).unwrap();
        drop(file);
        Self { dir }
    }

    /// An `az` that prints `stdout` and exits 0.
    pub(crate) async fn answering(stdout: &str) -> Self {
        Self::new(&format!("cat <<'EOF'\n{stdout}\nEOF")).await
    }

    /// An `az` that prints `stderr` on standard error and exits with `code`.
    pub(crate) async fn failing(code: u8, stderr: &str) -> Self {
        Self::new(&format!("cat >&2 <<'EOF'\n{stderr}\nEOF\nexit {code}")).await
    }

    /// Its directory: the only one on the search path of [`builder`](Self::builder).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The script itself.
    pub(crate) fn program(&self) -> PathBuf {
        self.dir.path().join("az")
    }

    /// A grant builder that finds this `az` and no other.
    pub(crate) fn builder(&self) -> AzureCliBuilder {
        AzureCli::builder().search_path(self.dir.path())
    }

    /// The arguments of its last run, or `None` if it never ran.
    pub(crate) fn args(&self) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(self.dir.path().join("args")).ok()?;
        Some(text.lines().map(str::to_owned).collect())
    }
}

/// Asks `grant` for a token for `org`, holding the lock that keeps script writes apart.
pub(crate) async fn request(
    grant: &impl TokenProvider,
    org: &str,
) -> Result<AccessToken, AuthError> {
    let _starting = STARTING.read().await;
    grant
        .request_token(&TokenRequest::for_url(org).unwrap())
        .await
}

/// A JWT-shaped token whose payload holds `claims` (unsigned: only its shape matters).
pub(crate) fn jwt(claims: &str) -> String {
    format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk",
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// The answer of `az account get-access-token --output json` (CLI 2.54 and later).
pub(crate) fn answer(token: &str, expires_on: u64) -> String {
    format!(
        r#"{{
  "accessToken": "{token}",
  "expiresOn": "2023-10-31 21:59:10.000000",
  "expires_on": {expires_on},
  "subscription": "00000000-0000-0000-0000-00000000000b",
  "tenant": "00000000-0000-0000-0000-00000000000a",
  "tokenType": "Bearer"
}}"#
    )
}
