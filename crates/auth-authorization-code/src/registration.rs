//! The browser sign-in as configuration knows it: `AuthType=OAuth` connection strings
//! without a password (ServiceClient's interactive sign-in), `Grant=interactive`, and
//! `d365 --grant interactive`, with the hook a program supplies through
//! [`GrantConfig::extensions`]. `d365-connect` registers [`REGISTRATION`] with its
//! `interactive` feature.

use std::fmt;
use std::sync::Arc;

use d365_auth_core::grant::{GrantConfig, GrantRegistration, SettingKey};
use d365_auth_core::{ConfigError, TokenProvider};

use crate::authorize::Prompt;
use crate::browser::SignInUrl;
use crate::provider::AuthorizationCode;

/// The application the browser sign-in uses when configuration names none: the Azure
/// CLI's public client, which may sign in to Dataverse and has a `http://localhost` redirect
/// URI — as azure-identity's `InteractiveBrowserCredential` uses it.
pub const DEFAULT_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// The person to preselect: the same key as the password grant's user name.
const USERNAME: SettingKey =
    SettingKey::new("Username", &["UserName", "User Name", "UserId", "User Id"])
        .environment("AZURE_USERNAME");
/// The home realm to go to directly.
const DOMAIN_HINT: SettingKey = SettingKey::new("DomainHint", &["DomainHint", "Domain Hint"]);
/// ServiceClient's keys this grant reads (d365-connect knows them for every connection).
const REDIRECT_URI: &str = "RedirectUri";
const LOGIN_PROMPT: &str = "LoginPrompt";

const KEYS: &[SettingKey] = &[USERNAME, DOMAIN_HINT];

/// How a program shows the browser sign-in: put one in [`GrantConfig::extensions`] (with
/// `d365-connect`: `ConnectOptions::extension`) before the grant is built from
/// configuration. Without one, the system browser is opened and nothing else is shown.
///
/// # Examples
///
/// ```
/// use d365_auth_authorization_code::ShowSignInUrl;
///
/// // A command line: open the browser, and print the address in case it did not appear.
/// let show = ShowSignInUrl::new(|sign_in| eprintln!("{sign_in}"));
/// // Over SSH: do not try a browser; the person opens the address elsewhere... on this machine.
/// let headless = ShowSignInUrl::new(|sign_in| eprintln!("{sign_in}")).without_browser();
/// # let _ = (show, headless);
/// ```
#[derive(Clone)]
pub struct ShowSignInUrl {
    callback: Arc<dyn Fn(&SignInUrl) + Send + Sync>,
    open_browser: bool,
}

impl ShowSignInUrl {
    /// Shows each sign-in address with `callback`; the system browser is opened too.
    pub fn new(callback: impl Fn(&SignInUrl) + Send + Sync + 'static) -> Self {
        Self {
            callback: Arc::new(callback),
            open_browser: true,
        }
    }

    /// Does not open the system browser: the callback alone shows the address.
    #[must_use]
    pub fn without_browser(mut self) -> Self {
        self.open_browser = false;
        self
    }
}

impl fmt::Debug for ShowSignInUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShowSignInUrl")
            .field("open_browser", &self.open_browser)
            .finish_non_exhaustive()
    }
}

/// The browser sign-in, registered with configuration as `interactive`.
///
/// It takes `AuthType=OAuth` without a `Password` — what ServiceClient signs in
/// interactively — and any configuration that names it. It reads the client id (the Azure
/// CLI's public client, [`DEFAULT_CLIENT_ID`], when none), the authority, `Username` as the
/// login hint (and cache partition), `DomainHint`, ServiceClient's `LoginPrompt` (`Always`
/// → `prompt=login`, `SelectAccount`, `Never` → `prompt=none`, `Auto` → none) and a loopback
/// `RedirectUri` (another, such as ServiceClient's `app://…`, is ignored with a warning:
/// the browser must come back to this machine).
#[derive(Debug)]
#[non_exhaustive]
pub struct InteractiveRegistration;

/// The registration `d365-connect` lists.
pub static REGISTRATION: InteractiveRegistration = InteractiveRegistration;

impl GrantRegistration for InteractiveRegistration {
    fn name(&self) -> &'static str {
        "interactive"
    }

    fn description(&self) -> &'static str {
        "a person signs in in the system browser (multi-factor authentication, Conditional Access, federated accounts); delegated tokens, renewed silently with the refresh token"
    }

    fn keys(&self) -> &'static [SettingKey] {
        KEYS
    }

    fn accepts(&self, config: &GrantConfig) -> bool {
        config.auth_type_is("OAuth") && !config.has("Password")
    }

    fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError> {
        let mut builder = AuthorizationCode::builder().client_id(
            config
                .client_id
                .clone()
                .unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned()),
        );
        if let Some(authority) = &config.authority {
            builder = builder.authority(authority.clone());
        }
        if let Some(http) = &config.http {
            builder = builder.http_client(http.clone());
        }
        if let Some(user) = config.text(USERNAME.name) {
            builder = builder.login_hint(user);
        }
        if let Some(domain) = config.text(DOMAIN_HINT.name) {
            builder = builder.domain_hint(domain);
        }
        if let Some(prompt) = config.text(LOGIN_PROMPT).and_then(login_prompt) {
            builder = builder.prompt(prompt);
        }
        if let Some(uri) = config.text(REDIRECT_URI) {
            if is_loopback(uri) {
                builder = builder.redirect_uri(uri);
            } else {
                tracing::warn!(
                    "RedirectUri is not a loopback http address, so the browser sign-in listens on http://localhost instead; the app registration needs that redirect URI (Mobile and desktop applications)"
                );
            }
        }
        if let Some(show) = config.extensions.get::<ShowSignInUrl>() {
            let callback = Arc::clone(&show.callback);
            builder = builder
                .open_browser(show.open_browser)
                .on_sign_in_url(move |sign_in| callback(sign_in));
        }
        Ok(Arc::new(builder.build()?))
    }
}

/// ServiceClient's `LoginPrompt` as a `prompt`; `Auto` (and anything unknown) sends none.
fn login_prompt(value: &str) -> Option<Prompt> {
    match value.trim().to_ascii_lowercase().as_str() {
        "always" => Some(Prompt::Login),
        "selectaccount" => Some(Prompt::SelectAccount),
        "never" => Some(Prompt::None),
        "auto" | "refreshsession" => None,
        other => {
            tracing::warn!(
                value = other,
                "LoginPrompt is not Auto, Always, Never or SelectAccount; no prompt is sent"
            );
            None
        }
    }
}

fn is_loopback(uri: &str) -> bool {
    url::Url::parse(uri.trim()).is_ok_and(|url| {
        url.scheme() == "http" && matches!(url.host_str(), Some("localhost" | "127.0.0.1"))
    })
}
