//! [`DeviceCodeBuilder`]: every setting of the device code grant, checked by `build`
//! before any request, with a fix for each mistake.

use std::fmt;
use std::sync::Arc;

use d365_auth_core::grant::{ClientSettings, ResolvedAuthority, client_setters};
use d365_auth_core::{ConfigError, Tenant};
use secrecy::{ExposeSecret, SecretString};

use crate::cancel::CancelHandle;
use crate::message::DeviceCodeMessage;
use crate::provider::{DeviceCode, Inner, OnMessage};

/// Where Entra ID's device authorization endpoint is, relative to the tenant.
const DEVICE_AUTHORIZATION_PATH: &str = "oauth2/v2.0/devicecode";

/// Configures [`DeviceCode`]; see [`DeviceCode::builder`]. Every mistake is reported by
/// [`build`](Self::build), before any request.
///
/// Required: a tenant (unless a complete [`Authority`](d365_auth_core::Authority) is given), the client id, and the
/// callback that shows the person where to sign in ([`on_message`](Self::on_message)).
/// Everything else has a default: the public cloud, a public client, no scopes beyond the
/// organization's (and `offline_access`), a cancel handle of its own, d365's HTTP client and
/// a 30-second timeout per request.
///
/// # Examples
///
/// ```
/// use d365_auth_device_code::DeviceCode;
///
/// let grant = DeviceCode::builder()
///     .tenant("organizations")
///     .client_id("51f81489-12ee-4a9e-aaae-a2591f45987d")
///     .on_message(|message| eprintln!("{message}"))
///     .build()?;
/// assert_eq!(
///     grant.device_authorization_endpoint().as_str(),
///     "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode",
/// );
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[must_use]
#[derive(Default)]
pub struct DeviceCodeBuilder {
    client: ClientSettings,
    client_secret: Option<SecretString>,
    scopes: Vec<String>,
    on_message: Option<OnMessage>,
    cancel: Option<CancelHandle>,
    cache_partition: Option<String>,
}

impl DeviceCodeBuilder {
    // The tenant, cloud, authority host, authority, client id, HTTP client (for both
    // endpoints) and timeout of each request, as every grant takes them. The tenant may
    // be an id, a verified domain, `organizations` or `common`; `consumers` (personal
    // accounts cannot use Dataverse) and AD FS are refused by `build`. The app
    // registration must allow public client flows, unless a client secret is given. The
    // whole sign-in lasts as long as the code lives (15 minutes at Entra ID).
    client_setters!(client);

    /// The client secret of a confidential application (its value, not its id), sent when
    /// the device code is redeemed. The grant then asks for `{org}/.default` instead of
    /// `{org}/user_impersonation`. Most tools are public clients and need none.
    pub fn client_secret(mut self, secret: SecretString) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// Scopes to ask for beside the organization's and `offline_access`, such as `openid`
    /// or `profile` (space-separated, or one call each). They must not name another
    /// resource: Entra ID issues a token for one resource at a time (AADSTS700022).
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.scopes
            .extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self
    }

    /// Shows the person where to sign in: called once per sign-in with the page to open
    /// and the code to type ([`DeviceCodeMessage`]; its `Display` is the identity
    /// provider's own sentence). Then the grant polls until the person has signed in.
    ///
    /// The callback runs on the task that asked for the token and must not block; print
    /// the message, put it in a window, or hand it to a channel. It never sees the device
    /// code.
    pub fn on_message(
        mut self,
        callback: impl Fn(&DeviceCodeMessage) + Send + Sync + 'static,
    ) -> Self {
        self.on_message = Some(Arc::new(callback));
        self
    }

    /// A handle to cancel sign-ins in progress (see [`CancelHandle`]). Without one the
    /// grant makes its own, available from [`DeviceCode::cancel_handle`].
    pub fn cancel_handle(mut self, handle: CancelHandle) -> Self {
        self.cancel = Some(handle);
        self
    }

    /// A label for the person expected to sign in, such as their user name, added to the
    /// grant's [`cache_key`](d365_auth_core::TokenProvider::cache_key). The user is known
    /// only after sign-in, so without it every device code grant of one application and
    /// authority shares a key: a shared [`TokenStore`](d365_auth_core::store::TokenStore) hands
    /// each the token of whoever signed in last. Nothing is sent.
    pub fn cache_partition(mut self, label: impl Into<String>) -> Self {
        self.cache_partition = Some(label.into());
        self
    }

    /// Checks the settings and builds the grant.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a missing or invalid tenant (including `consumers`), an AD FS
    /// authority, a missing client id or message callback, or an empty client secret.
    pub fn build(self) -> Result<DeviceCode, ConfigError> {
        let ResolvedAuthority {
            authority,
            endpoint,
            ..
        } = self.client.authority.resolve(check_tenant)?;
        let authority = authority.ok_or_else(adfs_refused)?;
        let device_endpoint = authority
            .tenant_endpoint(DEVICE_AUTHORIZATION_PATH)
            .ok_or_else(adfs_refused)?;
        let client_id = self.client.require_client_id()?;
        let on_message = self.on_message.ok_or_else(|| ConfigError::Missing {
            setting: "message callback",
            fix: "give .on_message(|message| eprintln!(\"{message}\")) or show the message in your UI: without it nobody learns where to sign in".to_owned(),
        })?;
        if let Some(secret) = &self.client_secret
            && secret.expose_secret().trim().is_empty()
        {
            return Err(ConfigError::Invalid {
                setting: "client secret",
                problem: "it is empty".to_owned(),
                fix: "give the secret's Value from App registrations > Certificates & secrets, or leave the secret out for a public client".to_owned(),
            });
        }
        Ok(DeviceCode::from_inner(Inner {
            authority,
            endpoint,
            device_endpoint,
            client_id,
            client_secret: self.client_secret,
            scopes: self.scopes,
            on_message,
            cancel: self.cancel.unwrap_or_default(),
            cache_partition: self.cache_partition,
            http: self.client.endpoint_client(),
        }))
    }
}

/// AD FS (and a bare token endpoint, which the builder does not offer) has no device
/// authorization endpoint this grant knows.
fn adfs_refused() -> ConfigError {
    ConfigError::Invalid {
        setting: "authority",
        problem: "the device code grant here supports Microsoft Entra ID only, and this authority is AD FS (AD FS 2019 has a device code endpoint of its own, which d365 does not implement)".to_owned(),
        fix: "use an Entra ID tenant; for AD FS, sign in with the password grant (d365-auth-ropc, .adfs(url)) or use client credentials".to_owned(),
    }
}

/// Dataverse accepts work and school accounts only.
fn check_tenant(tenant: &Tenant) -> Result<(), ConfigError> {
    match tenant {
        Tenant::Consumers => Err(ConfigError::Invalid {
            setting: "tenant",
            problem: "`consumers` signs in personal Microsoft accounts only, and Dataverse accepts work and school accounts".to_owned(),
            fix: "use the tenant id, a verified domain such as contoso.onmicrosoft.com, `organizations` or `common`".to_owned(),
        }),
        _ => Ok(()),
    }
}

impl fmt::Debug for DeviceCodeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeBuilder")
            .field("authority", &self.client.authority)
            .field("client_id", &self.client.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .field("on_message", &self.on_message.as_ref().map(|_| "callback"))
            .field("cache_partition", &self.cache_partition)
            .field("timeout", &self.client.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use d365_auth_core::Authority;

    fn base() -> DeviceCodeBuilder {
        DeviceCode::builder().client_id("app").on_message(|_| {})
    }

    #[test]
    fn tenants_for_the_device_code_grant() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "organizations",
                Ok("https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode"),
            ),
            (
                "common",
                Ok("https://login.microsoftonline.com/common/oauth2/v2.0/devicecode"),
            ),
            (
                "Contoso.onmicrosoft.com",
                Ok(
                    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode",
                ),
            ),
            ("consumers", Err("personal Microsoft accounts")),
            ("contoso", Err("a tenant is a tenant id")),
        ];
        for (tenant, expected) in cases {
            match (base().tenant(*tenant).build(), expected) {
                (Ok(grant), Ok(url)) => {
                    assert_eq!(grant.device_authorization_endpoint().as_str(), *url);
                }
                (Err(error), Err(reason)) => {
                    assert!(error.to_string().contains(reason), "{tenant}: {error}");
                }
                (Ok(grant), Err(_)) => panic!("{tenant}: expected an error, got {grant:?}"),
                (Err(error), Ok(_)) => panic!("{tenant}: {error}"),
            }
        }
    }

    #[test]
    fn ad_fs_is_refused_with_what_to_use_instead() {
        let adfs = Authority::adfs("https://adfs.contoso.com").unwrap();
        let error = base().authority(adfs).build().unwrap_err();
        let text = error.to_string();
        assert!(text.contains("AD FS"), "{text}");
        assert!(text.contains("password grant"), "{text}");
    }

    #[test]
    fn missing_settings_say_how_to_fix_them() {
        let error = DeviceCode::builder()
            .tenant("organizations")
            .on_message(|_| {})
            .build()
            .unwrap_err();
        assert!(
            error.to_string().starts_with("client id is required"),
            "{error}"
        );
        let error = DeviceCode::builder()
            .tenant("organizations")
            .client_id("app")
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("on_message"), "{error}");
        let error = base()
            .tenant("organizations")
            .client_secret(" ".into())
            .build()
            .unwrap_err();
        assert!(
            error.to_string().contains("client secret: it is empty"),
            "{error}"
        );
        assert!(
            base()
                .build()
                .unwrap_err()
                .to_string()
                .contains("tenant is required")
        );
    }

    #[test]
    fn scopes_split_on_spaces_and_debug_hides_the_secret() {
        let builder = base()
            .tenant("organizations")
            .scope("openid profile")
            .scope("email")
            .client_secret("SECRET-VALUE".into());
        let shown = format!("{builder:?}");
        assert!(
            shown.contains(r#"["openid", "profile", "email"]"#),
            "{shown}"
        );
        assert!(!shown.contains("SECRET-VALUE"), "{shown}");
    }
}
