//! [`AzureCliBuilder`]: the tenant, the subscription, the timeout and where `az` is, each
//! checked before anything runs; and the rule for what may reach the command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use d365_auth_core::ConfigError;

use crate::provider::{AzureCli, Settings};

/// How long `az account get-access-token` may run before it is stopped: 10 seconds, as
/// azure-identity's `process_timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest tenant or subscription accepted (a domain name is at most 253 characters).
const MAX_ARGUMENT: usize = 256;

/// Builds an [`AzureCli`]; see [`AzureCli::builder`].
///
/// Every setting is optional: with none, the grant asks the Azure CLI for a token of its
/// default tenant and subscription, finding `az` on the process `PATH`.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct AzureCliBuilder {
    tenant: Option<String>,
    subscription: Option<String>,
    timeout: Option<Duration>,
    program: Option<PathBuf>,
    search_path: Option<OsString>,
}

impl AzureCliBuilder {
    /// The tenant (directory id or verified domain) to ask for a token of: passed as
    /// `--tenant`. The developer must have signed in to it (`az login --tenant …`). Without
    /// it, the tenant of the Azure CLI's current subscription.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The subscription (name or id) whose tenant to use: passed as `--subscription`.
    pub fn subscription(mut self, subscription: impl Into<String>) -> Self {
        self.subscription = Some(subscription.into());
        self
    }

    /// How long the Azure CLI may take before it is stopped ([`DEFAULT_TIMEOUT`], 10 s,
    /// unless set). Raise it for a slow network or a slow first start.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs this program as `az` instead of looking for one on the search path: an
    /// installation outside `PATH`, or a stand-in in tests.
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Looks for `az` in these directories (in the form of `PATH`, separated by `:`, or `;`
    /// on Windows) instead of the process `PATH`. Relative directories are skipped.
    pub fn search_path(mut self, search_path: impl Into<OsString>) -> Self {
        self.search_path = Some(search_path.into());
        self
    }

    /// The grant, its settings checked.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for an empty tenant or subscription, one with a character
    /// that is not part of such a name (only `A-Z a-z 0-9 . -` in a tenant, and also `_` and
    /// spaces in a subscription name) or that starts with `-`, and for a zero timeout.
    pub fn build(self) -> Result<AzureCli, ConfigError> {
        let tenant = self
            .tenant
            .map(|tenant| check_name("tenant", &tenant, is_tenant_char))
            .transpose()?;
        let subscription = self
            .subscription
            .map(|subscription| check_name("subscription", &subscription, is_subscription_char))
            .transpose()?;
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(ConfigError::Invalid {
                setting: "timeout",
                problem: "a zero timeout stops the Azure CLI before it starts".to_owned(),
                fix: format!(
                    "give a timeout of a few seconds, or leave it out for {} s",
                    DEFAULT_TIMEOUT.as_secs()
                ),
            });
        }
        Ok(AzureCli::from_settings(Settings {
            tenant,
            subscription,
            timeout,
            program: self.program,
            search_path: self.search_path,
        }))
    }
}

/// `value` trimmed, when it is a plausible `setting`: not empty, not too long, not
/// starting with `-` (which `az` would read as an option), and made of `allowed`
/// characters. The value is never quoted in the error.
fn check_name(
    setting: &'static str,
    value: &str,
    allowed: fn(char) -> bool,
) -> Result<String, ConfigError> {
    let value = value.trim();
    let problem = if value.is_empty() {
        Some("it is empty".to_owned())
    } else if value.len() > MAX_ARGUMENT {
        Some(format!("it is longer than {MAX_ARGUMENT} characters"))
    } else if value.starts_with('-') {
        Some("it starts with `-`, which the Azure CLI would read as an option".to_owned())
    } else {
        value
            .char_indices()
            .find(|(_, c)| !allowed(*c))
            .map(|(position, _)| {
                format!(
                    "it holds a character at byte {position} that is not part of a {setting} name"
                )
            })
    };
    match problem {
        None => Ok(value.to_owned()),
        Some(problem) => Err(ConfigError::Invalid {
            setting,
            problem,
            fix: match setting {
                "tenant" => "give the tenant id (a GUID) or a verified domain such as contoso.onmicrosoft.com, or leave it out for the Azure CLI's default tenant".to_owned(),
                _ => "give the subscription's id or name as `az account list` shows it, or leave it out".to_owned(),
            },
        }),
    }
}

/// A tenant id or domain: what azure-identity accepts (`[A-Za-z0-9.-]`).
fn is_tenant_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-'
}

/// A subscription id or name: what azure-identity accepts (letters, digits, `_ .-` and spaces).
fn is_subscription_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ')
}

/// A resource as it goes on the command line: azure-identity's scope characters
/// (`[A-Za-z0-9._:/-]`), so nothing odd reaches `az`'s arguments.
pub(crate) fn is_resource_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_and_subscriptions_are_checked_without_being_quoted() {
        assert_eq!(
            check_name("tenant", " contoso.onmicrosoft.com ", is_tenant_char).unwrap(),
            "contoso.onmicrosoft.com"
        );
        for bad in ["", "  ", "-x", "a;b", "a b", "ténant", "a\nb"] {
            let error = check_name("tenant", bad, is_tenant_char).unwrap_err();
            assert!(matches!(
                error,
                ConfigError::Invalid {
                    setting: "tenant",
                    ..
                }
            ));
        }
        let error = check_name("tenant", "secret;Password=hunter2", is_tenant_char).unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(check_name("subscription", "My Sub_1.0", is_subscription_char).is_ok());
        assert!(check_name("subscription", "a\"b", is_subscription_char).is_err());
        assert!(check_name("subscription", &"a".repeat(300), is_subscription_char).is_err());
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        let error = AzureCliBuilder::default()
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Invalid {
                setting: "timeout",
                ..
            }
        ));
    }
}
