//! The device code grant as configuration knows it: used when named (`Grant=device-code`
//! in a connection string, `--grant device-code` on the command line), with the message
//! callback a program supplies through [`GrantConfig::extensions`].
//! `d365-connect` registers [`REGISTRATION`] with its `device-code` feature.

use std::fmt;
use std::sync::Arc;

use d365_auth_core::grant::{GrantConfig, GrantRegistration};
use d365_auth_core::{ConfigError, TokenProvider};

use crate::cancel::CancelHandle;
use crate::message::DeviceCodeMessage;
use crate::provider::DeviceCode;

/// The application the device code grant uses when configuration names none: Microsoft's
/// sample public client, as ServiceClient uses for `AuthType=OAuth`.
pub const SAMPLE_CLIENT_ID: &str = "51f81489-12ee-4a9e-aaae-a2591f45987d";

/// How a program shows the device code sign-in: put one in
/// [`GrantConfig::extensions`] before building the grant from configuration (the
/// equivalent of [`DeviceCodeBuilder::on_message`](crate::DeviceCodeBuilder::on_message)).
///
/// # Examples
///
/// ```
/// use d365_auth_core::grant::GrantConfig;
/// use d365_auth_device_code::ShowDeviceCode;
///
/// let mut config = GrantConfig::default();
/// config.extensions.insert(ShowDeviceCode::new(|message| eprintln!("{message}")));
/// ```
#[derive(Clone)]
pub struct ShowDeviceCode(Arc<dyn Fn(&DeviceCodeMessage) + Send + Sync>);

impl ShowDeviceCode {
    /// Shows each sign-in message with `callback`.
    pub fn new(callback: impl Fn(&DeviceCodeMessage) + Send + Sync + 'static) -> Self {
        Self(Arc::new(callback))
    }
}

impl fmt::Debug for ShowDeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShowDeviceCode(callback)")
    }
}

/// The device code grant, registered with configuration.
///
/// It is used only when configuration names it, as a person must be at hand to sign in.
/// It reads the client id (Microsoft's sample public client, [`SAMPLE_CLIENT_ID`], when
/// none), the authority, and `Username` as the cache partition (the person expected to
/// sign in); it signs in as a public client, so client secrets and passwords in the same
/// configuration are not used (build a [`DeviceCode`] yourself for a confidential client).
/// The message callback comes from [`ShowDeviceCode`] in the extensions, and a
/// [`CancelHandle`] there is used too.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeviceCodeRegistration;

/// The registration `d365-connect` lists.
pub static REGISTRATION: DeviceCodeRegistration = DeviceCodeRegistration;

impl GrantRegistration for DeviceCodeRegistration {
    fn name(&self) -> &'static str {
        "device-code"
    }

    fn description(&self) -> &'static str {
        "a person signs in in any browser with a code (multi-factor authentication, Conditional Access), where no browser can open here; delegated tokens, renewed silently"
    }

    fn accepts(&self, _config: &GrantConfig) -> bool {
        // A person must be at hand: never picked for a configuration that does not name it.
        false
    }

    fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError> {
        // The hook comes with the program's options when the provider is built, not with
        // the configuration text, so it is required here rather than in `check`.
        let show = config
            .extensions
            .get::<ShowDeviceCode>()
            .cloned()
            .map(|show| show.0)
            .ok_or_else(|| ConfigError::Missing {
                setting: "device code message callback",
                fix: "pass a d365_auth_device_code::ShowDeviceCode with ConnectOptions::extension (or put one in GrantConfig::extensions): without it nobody learns where to sign in".to_owned(),
            })?;
        let mut builder = DeviceCode::builder().client_id(
            config
                .client_id
                .clone()
                .unwrap_or_else(|| SAMPLE_CLIENT_ID.to_owned()),
        );
        builder = builder.on_message(move |message| show(message));
        if let Some(cancel) = config.extensions.get::<CancelHandle>() {
            builder = builder.cancel_handle(cancel.clone());
        }
        if let Some(authority) = &config.authority {
            builder = builder.authority(authority.clone());
        }
        if let Some(user) = config.text("Username") {
            builder = builder.cache_partition(user.to_lowercase());
        }
        if let Some(http) = &config.http {
            builder = builder.http_client(http.clone());
        }
        Ok(Arc::new(builder.build()?))
    }
}
