//! [`AzureCli`]: the `TokenProvider` that asks the Azure CLI, and how each way `az` can fail
//! becomes an [`AuthError`] that says what to do.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use d365_auth_core::{
    AccessToken, AuthError, ConfigError, Grant, TokenProvider, TokenRequest, async_trait,
};

use crate::builder::{AzureCliBuilder, is_resource_char};
use crate::output::{self, CliToken};
use crate::process::{self, Finished, OUTPUT_CAP, RunError};
use crate::redact;

/// How the credential is named in errors.
const CREDENTIAL: &str = "the Azure CLI";

/// The fix when `az` cannot be found.
const INSTALL: &str = "install the Azure CLI (https://learn.microsoft.com/cli/azure/install-azure-cli) and run `az login`, or use another credential";

/// The longest piece of the Azure CLI's standard error an error message carries.
const MAX_STDERR: usize = 600;

/// A token from the developer's own Azure CLI sign-in: `az account get-access-token`.
///
/// For local development and scripts, never for production: the token is the signed-in
/// person's (delegated, with `scp`), and the process must find a signed-in `az`. Build it
/// with [`AzureCli::builder`]; it holds no secret, and clones share their settings.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use d365_auth_azure_cli::AzureCli;
/// use d365_auth_core::TokenProvider;
///
/// let grant = AzureCli::builder()
///     .tenant("contoso.onmicrosoft.com")
///     .timeout(Duration::from_secs(20))
///     .build()?;
/// assert_eq!(grant.grant().as_str(), "azure_cli");
/// assert_eq!(grant.cache_key(), "azure_cli|contoso.onmicrosoft.com|default");
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct AzureCli {
    settings: Arc<Settings>,
}

/// What the builder checked.
pub(crate) struct Settings {
    pub(crate) tenant: Option<String>,
    pub(crate) subscription: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) program: Option<PathBuf>,
    pub(crate) search_path: Option<OsString>,
}

impl AzureCli {
    /// Starts a grant: every setting is optional.
    pub fn builder() -> AzureCliBuilder {
        AzureCliBuilder::default()
    }

    pub(crate) fn from_settings(settings: Settings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }

    /// The `az` to run: the one given, or the first on the search path.
    fn program(&self) -> Result<PathBuf, AuthError> {
        if let Some(program) = &self.settings.program {
            return if process::is_executable(program) {
                Ok(program.clone())
            } else {
                Err(AuthError::unavailable(
                    CREDENTIAL,
                    format!(
                        "the program given for it, `{}`, does not exist or may not be executed",
                        program.display()
                    ),
                    "give the path of `az` (`command -v az`, or `where az` on Windows), or install the Azure CLI",
                ))
            };
        }
        let search_path = self
            .settings
            .search_path
            .clone()
            .unwrap_or_else(process::process_path);
        process::find_program(&search_path)
            .ok_or_else(|| AuthError::unavailable(CREDENTIAL, "`az` is not on PATH", INSTALL))
    }

    /// ` --tenant T` for a fix that says to sign in, or nothing.
    fn login_command(&self) -> String {
        match &self.settings.tenant {
            Some(tenant) => format!("az login --tenant {tenant}"),
            None => "az login".to_owned(),
        }
    }

    /// A failed run as an error that says what to do.
    fn run_error(&self, error: RunError, program: &Path, resource: &str) -> AuthError {
        match error {
            RunError::Spawn(error) if error.kind() == std::io::ErrorKind::NotFound => {
                AuthError::unavailable(
                    CREDENTIAL,
                    format!(
                        "`{}` could not be started: it was not found",
                        program.display()
                    ),
                    INSTALL,
                )
            }
            RunError::Spawn(error) => AuthError::credential(
                format!(
                    "could not start the Azure CLI at `{}` ({error}); check that it runs (`az version`), or use another credential",
                    program.display()
                ),
                Some(Box::new(error)),
            ),
            RunError::TimedOut => AuthError::credential(
                format!(
                    "the Azure CLI did not answer within {} s and was stopped; run `az account get-access-token --resource {resource}` yourself to see what it waits for (the network, a prompt), or raise the timeout (AzureCli::builder().timeout(...))",
                    self.settings.timeout.as_secs_f64()
                ),
                None,
            ),
            RunError::TooLarge { stream } => AuthError::credential(
                format!(
                    "the Azure CLI wrote more than {} MiB to its {stream}, which no token answer needs, and was stopped; run `az account get-access-token --resource {resource}` yourself to see what it prints",
                    OUTPUT_CAP / (1024 * 1024)
                ),
                None,
            ),
            RunError::Read(error) => AuthError::credential(
                format!("could not read what the Azure CLI answered ({error})"),
                Some(Box::new(error)),
            ),
        }
    }

    /// A non-zero exit as an error that says what to do: an Entra ID refusal (its AADSTS
    /// code and sentence), a missing sign-in (unavailable), or the Azure CLI's own message.
    fn failure(&self, finished: &Finished, program: &Path, resource: &str) -> AuthError {
        let stderr = String::from_utf8_lossy(&finished.stderr);
        if let Some((code, line)) = redact::aadsts(&stderr, MAX_STDERR) {
            return AuthError::credential(
                format!(
                    "the Azure CLI could not get a token: Entra ID refused it with AADSTS{code} ({line}); sign in again with `{}` (codes such as AADSTS50076, multi-factor authentication, or AADSTS53003, Conditional Access, need that sign-in in a browser), then retry",
                    self.login_command()
                ),
                None,
            );
        }
        if stderr.contains("az login") {
            return AuthError::unavailable(
                CREDENTIAL,
                "it is not signed in (`az account get-access-token` asks for `az login`)",
                format!("run `{}`, then retry", self.login_command()),
            );
        }
        if stderr.contains("az account set") {
            return AuthError::unavailable(
                CREDENTIAL,
                "it has no usable subscription (`az account get-access-token` asks for `az account set`)",
                format!(
                    "run `az account set --subscription <id or name>` or `{}`, then retry",
                    self.login_command()
                ),
            );
        }
        if finished.status.code() == Some(127) {
            return AuthError::unavailable(
                CREDENTIAL,
                format!(
                    "`{}` could not run: a program it needs is missing (exit code 127)",
                    program.display()
                ),
                "reinstall the Azure CLI, or use another credential",
            );
        }
        let message = redact::clean(&stderr, MAX_STDERR);
        AuthError::credential(
            format!(
                "the Azure CLI failed ({}){}; run `az account get-access-token --resource {resource}` yourself to see more",
                finished.status,
                if message.is_empty() {
                    " and wrote no error".to_owned()
                } else {
                    format!(": {message}")
                }
            ),
            None,
        )
    }
}

#[async_trait]
impl TokenProvider for AzureCli {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let resource = request.resource().v1_resource();
        if let Some(position) = resource.find(|c| !is_resource_char(c)) {
            return Err(AuthError::Config(ConfigError::Invalid {
                setting: "organization URL",
                problem: format!(
                    "it holds a character at byte {position} that the Azure CLI grant does not pass to `az` (only A-Z a-z 0-9 . _ : / -)"
                ),
                fix: "give the organization's https:// URL with its host name".to_owned(),
            }));
        }
        let program = self.program()?;
        let mut args = vec![
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            &resource,
        ];
        if let Some(tenant) = &self.settings.tenant {
            args.extend(["--tenant", tenant]);
        }
        if let Some(subscription) = &self.settings.subscription {
            args.extend(["--subscription", subscription]);
        }
        tracing::debug!(
            program = %program.display(),
            %resource,
            tenant = self.settings.tenant.as_deref().unwrap_or("default"),
            timeout_s = self.settings.timeout.as_secs_f64(),
            "asking the Azure CLI for a token"
        );
        let finished = process::run(&program, &args, self.settings.timeout)
            .await
            .map_err(|error| {
                let error = self.run_error(error, &program, &resource);
                tracing::debug!(%error, "the Azure CLI did not answer");
                error
            })?;
        tracing::trace!(
            status = %finished.status,
            stdout_bytes = finished.stdout.len(),
            stderr_bytes = finished.stderr.len(),
            "the Azure CLI exited"
        );
        if !finished.status.success() {
            let error = self.failure(&finished, &program, &resource);
            tracing::debug!(%error, "the Azure CLI gave no token");
            return Err(error);
        }
        let CliToken {
            secret,
            token_type,
            expires_on,
            expiry_from,
        } = output::parse(&finished.stdout, output::process_local_offset).map_err(|problem| {
            let error = AuthError::credential(
                format!(
                    "could not read the Azure CLI's answer: it {problem}; run `az account get-access-token --resource {resource}` yourself to check it"
                ),
                None,
            );
            tracing::debug!(%error, "the Azure CLI gave no token");
            error
        })?;
        let token = AccessToken::builder(secret, expires_on, request.resource().clone())
            .token_type(token_type)
            .build()
            .map_err(|problem| {
                AuthError::credential(
                    format!("the Azure CLI returned an access token that {problem}; run `az account get-access-token` yourself, and sign in again with `{}` if it looks wrong", self.login_command()),
                    None,
                )
            })?;
        let remaining = expires_on
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        if remaining.is_zero() {
            tracing::warn!(
                expiry_from,
                "the Azure CLI returned a token that has already expired; check the system clock"
            );
        }
        tracing::debug!(
            expiry_from,
            expires_in_s = remaining.as_secs(),
            "the Azure CLI returned a token"
        );
        Ok(token)
    }

    fn grant(&self) -> Grant {
        Grant::new("azure_cli")
    }

    /// `azure_cli|{tenant}|{subscription}` (`default` for either when not given). The key
    /// cannot name the person signed in to the Azure CLI: after `az login` as someone else,
    /// clear a persistent token store or wait for its tokens to expire.
    fn cache_key(&self) -> String {
        format!(
            "azure_cli|{}|{}",
            self.settings.tenant.as_deref().unwrap_or("default"),
            self.settings.subscription.as_deref().unwrap_or("default")
        )
    }
}

impl fmt::Debug for AzureCli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.settings;
        f.debug_struct("AzureCli")
            .field("tenant", &settings.tenant)
            .field("subscription", &settings.subscription)
            .field("timeout", &settings.timeout)
            .field("program", &settings.program)
            .field(
                "search_path",
                &if settings.search_path.is_some() {
                    "given"
                } else {
                    "the process PATH"
                },
            )
            .finish()
    }
}
