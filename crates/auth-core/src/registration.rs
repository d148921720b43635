//! How configuration reaches a grant without anyone listing the grants:
//! [`GrantConfig`], the one description of a credential every source parses into
//! (connection strings, environment variables, command-line flags, saved profiles), and
//! [`GrantRegistration`], what a grant crate tells configuration about itself — its
//! name, the settings it reads, which configurations it takes, how it builds its provider.
//!
//! A grant crate exports one registration; `d365-connect` keeps a registry of the ones its
//! cargo features enable and asks them, in turn, which one takes a configuration. Adding a
//! grant adds a crate and a feature line: nothing in auth-core or `d365-connect` lists
//! grants.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;

use crate::authority::{Authority, Tenant};
use crate::connection_auth::ConnectionAuthenticator;
use crate::error::ConfigError;
use crate::provider::TokenProvider;
use crate::resource::Resource;

/// A setting a grant reads, as configuration spells it.
///
/// # Examples
///
/// ```
/// use d365_auth_core::grant::SettingKey;
///
/// const CLIENT_SECRET: SettingKey = SettingKey::new("ClientSecret", &["ClientSecret", "Secret"])
///     .secret()
///     .environment("AZURE_CLIENT_SECRET");
/// assert!(CLIENT_SECRET.matches("secret"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SettingKey {
    /// The name d365 writes, and the key of [`GrantConfig::text`] and
    /// [`GrantConfig::secret`].
    pub name: &'static str,
    /// Every spelling a connection string may use, compared without regard to case, in
    /// order of precedence (the first one present wins).
    pub aliases: &'static [&'static str],
    /// Whether the value is a secret: kept as a `SecretString`, never shown.
    pub is_secret: bool,
    /// The environment variable it is read from (azure-identity's names), if any.
    pub variable: Option<&'static str>,
}

impl SettingKey {
    /// A setting named `name`, spelt `aliases` in connection strings.
    #[must_use]
    pub const fn new(name: &'static str, aliases: &'static [&'static str]) -> Self {
        Self {
            name,
            aliases,
            is_secret: false,
            variable: None,
        }
    }

    /// The value is a secret.
    #[must_use]
    pub const fn secret(mut self) -> Self {
        self.is_secret = true;
        self
    }

    /// The value may come from the environment variable `variable`.
    #[must_use]
    pub const fn environment(mut self, variable: &'static str) -> Self {
        self.variable = Some(variable);
        self
    }

    /// Whether `key` is one of its spellings.
    #[must_use]
    pub fn matches(&self, key: &str) -> bool {
        let key = key.trim();
        self.aliases
            .iter()
            .any(|alias| alias.eq_ignore_ascii_case(key))
    }
}

/// The client secret of a confidential client, as every grant that can be one reads it
/// (`ClientSecret`, `Secret`; `AZURE_CLIENT_SECRET`): list it among a grant's
/// [keys](GrantRegistration::keys) so configuration knows it whichever grants are enabled.
pub const CLIENT_SECRET: SettingKey = SettingKey::new("ClientSecret", &["ClientSecret", "Secret"])
    .secret()
    .environment("AZURE_CLIENT_SECRET");

/// A setting's value: text, or a secret that is never shown.
#[derive(Clone)]
enum Value {
    Text(String),
    Secret(SecretString),
}

/// One description of a credential: which grant (if configuration names one), the
/// organization, the authority, the client, and the grant's own settings by name —
/// whatever it was read from. Secrets are `SecretString`s; `Debug` never shows them.
///
/// # Examples
///
/// ```
/// use d365_auth_core::grant::GrantConfig;
///
/// let mut config = GrantConfig::default();
/// config.client_id = Some("00000000-0000-0000-0000-000000000001".into());
/// config.set_secret("ClientSecret", "s3cr3t".into());
/// config.set_text("SendCertificateChain", "true");
/// assert!(config.has("ClientSecret"));
/// assert_eq!(config.flag("SendCertificateChain")?, Some(true));
/// assert!(!format!("{config:?}").contains("s3cr3t"));
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct GrantConfig {
    /// The grant configuration names (`Grant=device-code`, `--grant device-code`), if any;
    /// otherwise the first registered grant that [accepts](GrantRegistration::accepts) the
    /// configuration is used.
    pub grant: Option<String>,
    /// The ServiceClient `AuthType` (`ClientSecret`, `Certificate`, `OAuth`, ...), as
    /// written, when the configuration has one.
    pub auth_type: Option<String>,
    /// The organization the tokens are for.
    pub organization: Option<Resource>,
    /// Where tokens come from, when configuration gives it whole (`Authority=`); otherwise
    /// `d365-connect` resolves it from [`tenant`](Self::tenant),
    /// [`authority_host`](Self::authority_host) and the organization before
    /// [`GrantRegistration::build`], for a grant that [needs one](GrantRegistration::needs_authority).
    pub authority: Option<Authority>,
    /// The directory (tenant), when configuration names it without a whole authority.
    pub tenant: Option<Tenant>,
    /// The host speaking Entra ID's protocol when it is not the organization's cloud's
    /// (another cloud, a proxy, the d365 emulator), such as `https://login.microsoftonline.us`.
    pub authority_host: Option<String>,
    /// The application (client) id.
    pub client_id: Option<String>,
    /// Your HTTP client for the grant's requests.
    pub http: Option<reqwest::Client>,
    /// Typed values for a grant beyond text settings, by type: a callback that shows a
    /// sign-in message, a token callback. Each grant crate documents the types it reads.
    pub extensions: http::Extensions,
    settings: BTreeMap<&'static str, Value>,
}

impl GrantConfig {
    /// Sets the text setting `name` (empty text removes it).
    pub fn set_text(&mut self, name: &'static str, value: impl Into<String>) {
        let value = value.into();
        if value.trim().is_empty() {
            self.settings.remove(name);
        } else {
            self.settings.insert(name, Value::Text(value));
        }
    }

    /// Sets the secret setting `name`.
    pub fn set_secret(&mut self, name: &'static str, value: SecretString) {
        self.settings.insert(name, Value::Secret(value));
    }

    /// Removes the setting `name`.
    pub fn remove(&mut self, name: &str) {
        self.settings.remove(name);
    }

    /// Whether the setting `name` is present.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.settings.contains_key(name)
    }

    /// The text setting `name`; `None` when absent or a secret.
    #[must_use]
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.settings.get(name) {
            Some(Value::Text(text)) => Some(text.trim()),
            _ => None,
        }
    }

    /// The secret setting `name`; `None` when absent or not a secret.
    #[must_use]
    pub fn secret(&self, name: &str) -> Option<&SecretString> {
        match self.settings.get(name) {
            Some(Value::Secret(secret)) => Some(secret),
            _ => None,
        }
    }

    /// The yes/no setting `name`: `true`, `yes`, `1` or `false`, `no`, `0` (any case).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for any other value.
    pub fn flag(&self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Some(true)),
            "false" | "no" | "0" => Ok(Some(false)),
            _ => Err(ConfigError::Invalid {
                setting: name,
                problem: format!("`{text}` is not true or false"),
                fix: format!("write {name}=true or {name}=false"),
            }),
        }
    }

    /// The names of the settings present, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.settings.keys().copied()
    }

    /// The text setting `name`, required.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] with `fix` when absent.
    pub fn require_text(&self, name: &'static str, fix: &str) -> Result<&str, ConfigError> {
        self.text(name).ok_or_else(|| ConfigError::Missing {
            setting: name,
            fix: fix.to_owned(),
        })
    }

    /// The secret setting `name`, required.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] with `fix` when absent.
    pub fn require_secret(
        &self,
        name: &'static str,
        fix: &str,
    ) -> Result<&SecretString, ConfigError> {
        self.secret(name).ok_or_else(|| ConfigError::Missing {
            setting: name,
            fix: fix.to_owned(),
        })
    }

    /// Whether the `AuthType` is `auth_type` (without regard to case).
    #[must_use]
    pub fn auth_type_is(&self, auth_type: &str) -> bool {
        self.auth_type
            .as_deref()
            .is_some_and(|given| given.trim().eq_ignore_ascii_case(auth_type))
    }
}

impl fmt::Debug for GrantConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings: BTreeMap<&str, &str> = self
            .settings
            .iter()
            .map(|(name, value)| {
                let shown = match value {
                    Value::Text(text) => text.as_str(),
                    Value::Secret(_) => "[redacted]",
                };
                (*name, shown)
            })
            .collect();
        f.debug_struct("GrantConfig")
            .field("grant", &self.grant)
            .field("auth_type", &self.auth_type)
            .field("organization", &self.organization)
            .field("authority", &self.authority)
            .field("tenant", &self.tenant)
            .field("authority_host", &self.authority_host)
            .field("client_id", &self.client_id)
            .field("settings", &settings)
            .finish_non_exhaustive()
    }
}

/// What a grant crate tells configuration about itself. Each grant crate exports one (a
/// `static`); `d365-connect` registers the crates its features enable.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, SystemTime};
/// use d365_auth_core::grant::{GrantConfig, GrantRegistration, SettingKey};
/// use d365_auth_core::{async_trait, AccessToken, AuthError, ConfigError, Grant, TokenProvider, TokenRequest};
///
/// const SIDECAR_URL: SettingKey = SettingKey::new("SidecarUrl", &["SidecarUrl"]);
///
/// /// The provider: asks the sidecar at `url` (here, makes a token up).
/// #[derive(Debug)]
/// struct Sidecar {
///     url: String,
/// }
///
/// #[async_trait]
/// impl TokenProvider for Sidecar {
///     async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
///         let expires = SystemTime::now() + Duration::from_secs(300);
///         AccessToken::builder("from-the-sidecar".into(), expires, request.resource().clone())
///             .build()
///             .map_err(|problem| AuthError::credential(format!("the sidecar sent a token that {problem}"), None))
///     }
///
///     fn grant(&self) -> Grant {
///         Grant::new("sidecar")
///     }
///
///     fn cache_key(&self) -> String {
///         format!("sidecar|{}", self.url)
///     }
/// }
///
/// /// Tokens from a sidecar process (`Grant=sidecar;SidecarUrl=…`, or any configuration
/// /// with a `SidecarUrl`).
/// #[derive(Debug)]
/// pub struct SidecarRegistration;
///
/// impl GrantRegistration for SidecarRegistration {
///     fn name(&self) -> &'static str {
///         "sidecar"
///     }
///
///     fn description(&self) -> &'static str {
///         "tokens from a sidecar process on the same host"
///     }
///
///     fn keys(&self) -> &'static [SettingKey] {
///         &[SIDECAR_URL]
///     }
///
///     fn accepts(&self, config: &GrantConfig) -> bool {
///         config.has("SidecarUrl")
///     }
///
///     fn needs_authority(&self) -> bool {
///         false
///     }
///
///     fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError> {
///         let url = config.require_text("SidecarUrl", "give the sidecar's URL")?;
///         Ok(Arc::new(Sidecar { url: url.to_owned() }))
///     }
/// }
///
/// let mut config = GrantConfig::default();
/// config.auth_type = Some("Sidecar".into());
/// config.set_text("SidecarUrl", "http://127.0.0.1:9000");
/// assert!(SidecarRegistration.accepts(&config));
/// assert_eq!(SidecarRegistration.build(&config)?.cache_key(), "sidecar|http://127.0.0.1:9000");
/// # Ok::<(), ConfigError>(())
/// ```
pub trait GrantRegistration: Send + Sync + fmt::Debug + 'static {
    /// The grant's name for people and configuration, in kebab case:
    /// `client-credentials`, `device-code`. It is what `Grant=` in a connection string and
    /// `--grant` on the command line name.
    fn name(&self) -> &'static str;

    /// One line: what the grant is and when to pick it.
    fn description(&self) -> &'static str;

    /// The settings it reads beyond the ones every grant shares (the organization, the
    /// client id and the authority).
    fn keys(&self) -> &'static [SettingKey] {
        &[]
    }

    /// Whether it takes `config` when no grant is named: by its ServiceClient `AuthType`,
    /// or by the settings present (environment variables have no `AuthType`). A grant that
    /// needs a person at hand, or that another grant's configuration could be mistaken
    /// for, answers `false` and is used only when named.
    fn accepts(&self, config: &GrantConfig) -> bool;

    /// Checks that `config` holds what this grant needs and that it can work, without
    /// reading a file or sending anything: `d365-connect` calls it when it parses a
    /// connection string, so a mistake is reported at once. [`build`](Self::build) checks
    /// again.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the setting that is missing or cannot work, and how to fix it.
    fn check(&self, config: &GrantConfig) -> Result<(), ConfigError> {
        let _ = config;
        Ok(())
    }

    /// Whether it needs [`GrantConfig::authority`] (the default). Grants that ask another
    /// source (a managed identity endpoint, a command-line tool) do not.
    fn needs_authority(&self) -> bool {
        true
    }

    /// Builds the grant's provider from `config`, checking its settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the setting that is missing or cannot work, and how to fix it.
    fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError>;

    /// For a grant that proves itself on the connection instead of with a token (Windows
    /// sign-in): its [`ConnectionAuthenticator`] for `config`. `None` (the default) for
    /// every token grant. Such a grant's [`build`](Self::build) fails with a
    /// [`ConfigError`] that says so.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the setting that is missing or cannot work, and how to fix it.
    fn build_authenticator(
        &self,
        config: &GrantConfig,
    ) -> Option<Result<Arc<dyn ConnectionAuthenticator>, ConfigError>> {
        let _ = config;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_secrets_apart_and_read_flags() {
        let mut config = GrantConfig::default();
        config.set_text("Username", " ana@contoso.com ");
        config.set_secret("Password", "p@ss".into());
        config.set_text("Empty", "  ");
        config.set_text("Flag", "Maybe");
        assert_eq!(config.text("Username"), Some("ana@contoso.com"));
        assert!(config.text("Password").is_none(), "a secret is not text");
        assert!(config.secret("Username").is_none());
        assert!(!config.has("Empty"), "empty text is no setting");
        assert!(config.flag("Flag").is_err());
        assert_eq!(config.flag("Absent").unwrap(), None);
        assert!(config.require_secret("ClientSecret", "give it").is_err());
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("p@ss") && shown.contains("ana@contoso.com"),
            "{shown}"
        );
        assert_eq!(
            config.names().collect::<Vec<_>>(),
            ["Flag", "Password", "Username"]
        );
    }

    #[test]
    fn keys_match_their_spellings_without_case() {
        const KEY: SettingKey = SettingKey::new("ClientSecret", &["ClientSecret", "Secret"]);
        assert!(KEY.matches(" SECRET "));
        assert!(!KEY.matches("ClientSecrets"));
        assert!(!KEY.is_secret && KEY.secret().is_secret);
    }
}
