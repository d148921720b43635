//! [`ConnectionString`]: a ServiceClient-style connection string, parsed, with its aliases
//! resolved and checked for the authentication type it names.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use d365_auth_core::{Authority, Resource, Tenant};
use secrecy::SecretString;

use super::auth_type::AuthType;
use super::error::ConnectError;
use super::grammar::{self, SyntaxError, SyntaxProblem};
use super::keys::{self, KEYS, KeyInfo, Setting};

/// A parsed ServiceClient / CrmServiceClient connection string.
///
/// [`parse`](Self::parse) follows the ADO.NET grammar ServiceClient uses (`;`-separated
/// `key=value` pairs, keys case-insensitive, values quoted with `'` or `"` when they hold
/// `;` or outer spaces), accepts every alias of every ServiceClient key and d365's own
/// keys (`TenantId`, `Authority`, `AuthorityHost`, `CertificatePath`,
/// `CertificateKeyPath`, `CertificatePassword`, `SendCertificateChain`), and checks that
/// the string can work for its `AuthType` before anything is sent. `docs/connection-strings.md`
/// lists every key.
///
/// `Debug` and `Display` never show a password, client secret or certificate password;
/// `Display` ([`to_redacted_string`](Self::to_redacted_string)) writes the string back
/// with canonical key names and `***` for secrets. Keys d365 does not know are ignored (as
/// ServiceClient ignores them), counted in errors and left out of `Display`: a misquoted
/// secret can turn into such a "key".
///
/// # Examples
///
/// ```
/// use d365_webapi::{AuthType, ConnectionString};
///
/// let parsed = ConnectionString::parse(
///     "AuthType=ClientSecret; url=https://contoso.crm.dynamics.com; AppId=00000000-0000-0000-0000-0000000000c1; Secret='a;b=c'",
/// )?;
/// assert_eq!(parsed.auth_type(), AuthType::ClientSecret);
/// assert_eq!(parsed.url().as_str(), "https://contoso.crm.dynamics.com");
/// assert_eq!(parsed.client_id(), Some("00000000-0000-0000-0000-0000000000c1"));
/// assert_eq!(
///     parsed.to_string(),
///     "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=00000000-0000-0000-0000-0000000000c1;ClientSecret=***",
/// );
/// # Ok::<(), d365_webapi::ConnectError>(())
/// ```
#[derive(Clone)]
pub struct ConnectionString {
    url: Resource,
    auth_type: AuthType,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    username: Option<String>,
    password: Option<SecretString>,
    domain: Option<String>,
    home_realm_uri: Option<String>,
    redirect_uri: Option<String>,
    token_cache_store_path: Option<String>,
    login_prompt: Option<String>,
    thumbprint: Option<String>,
    store_name: Option<String>,
    require_new_instance: bool,
    skip_discovery: bool,
    integrated_security: bool,
    tenant: Option<Tenant>,
    authority: Option<Authority>,
    authority_host: Option<String>,
    certificate_path: Option<PathBuf>,
    certificate_key_path: Option<PathBuf>,
    certificate_password: Option<SecretString>,
    send_certificate_chain: bool,
    unknown_keys: Vec<String>,
    /// The settings as written (secrets as `None`), in key-table order, for `Display`.
    shown: Vec<(&'static KeyInfo, Option<String>)>,
}

/// The settings found, by setting, after alias resolution.
struct Resolved {
    values: HashMap<Setting, String>,
    unrecognised: usize,
    unknown_keys: Vec<String>,
}

impl Resolved {
    fn get(&self, setting: Setting) -> Option<&str> {
        self.values.get(&setting).map(String::as_str)
    }

    fn missing(&self, setting: Setting, fix: impl Into<String>) -> ConnectError {
        let info = keys::info(setting);
        ConnectError::MissingKey {
            key: missing_label(info),
            fix: fix.into(),
            unrecognised: self.unrecognised,
        }
    }
}

/// How a missing key is named: the canonical key and its aliases.
fn missing_label(info: &KeyInfo) -> &'static str {
    match info.setting {
        Setting::AuthType => "AuthType (or AuthenticationType)",
        Setting::Url => "Url (or ServiceUri, Service Uri, Server)",
        Setting::ClientId => "ClientId (or AppId, ApplicationId)",
        Setting::ClientSecret => "ClientSecret (or Secret)",
        Setting::UserName => "Username (or User Name, UserId, User Id)",
        Setting::CertificatePath => "CertificatePath (or CertificateFile)",
        _ => info.canonical,
    }
}

/// The application ServiceClient uses for `AuthType=OAuth` when no client id is given
/// (Microsoft's sample public client; redirect `http://localhost` or
/// `app://58145B91-0C36-4500-8554-080854F2AC97`).
pub(crate) const SAMPLE_CLIENT_ID: &str = "51f81489-12ee-4a9e-aaae-a2591f45987d";

impl ConnectionString {
    /// The client id ServiceClient (and d365) use for `AuthType=OAuth` when the string
    /// gives none: Microsoft's sample public client. Never used for `ClientSecret` or
    /// `Certificate`, where the application is yours.
    pub const SAMPLE_CLIENT_ID: &'static str = SAMPLE_CLIENT_ID;

    /// Parses and checks a connection string.
    ///
    /// # Errors
    ///
    /// [`ConnectError`]: [`Syntax`](ConnectError::Syntax) with the position;
    /// [`MissingKey`](ConnectError::MissingKey) for `AuthType`, `Url` and what the type
    /// needs (`ClientId` and `ClientSecret`; `ClientId` and `CertificatePath`; `Username`
    /// and `Password`); [`InvalidUrl`](ConnectError::InvalidUrl) (plain `http` to a host
    /// that is not loopback, ...); [`InvalidValue`](ConnectError::InvalidValue);
    /// [`UnknownAuthType`](ConnectError::UnknownAuthType);
    /// [`UnsupportedAuthType`](ConnectError::UnsupportedAuthType) for `AD`, `IFD`,
    /// `Claims`, `Office365`; [`InteractiveSignIn`](ConnectError::InteractiveSignIn) for
    /// `OAuth` without a user name and password;
    /// [`IntegratedSecurity`](ConnectError::IntegratedSecurity);
    /// [`CertificateStore`](ConnectError::CertificateStore) for a thumbprint without a
    /// certificate file. No error contains a secret.
    pub fn parse(text: &str) -> Result<Self, ConnectError> {
        let pairs = grammar::split(text).map_err(syntax_error)?;
        let resolved = resolve(pairs);
        Self::from_resolved(&resolved)
    }

    fn from_resolved(resolved: &Resolved) -> Result<Self, ConnectError> {
        let auth_type = parse_auth_type(resolved)?;
        if !auth_type.is_supported() {
            return Err(unsupported(auth_type));
        }
        let url_text = resolved.get(Setting::Url).ok_or_else(|| {
            resolved.missing(
                Setting::Url,
                "give the organization URL, such as Url=https://contoso.crm.dynamics.com",
            )
        })?;
        let url = Resource::parse(url_text).map_err(ConnectError::InvalidUrl)?;

        let text = |setting| resolved.get(setting).map(str::to_owned);
        let secret = |setting| resolved.get(setting).map(SecretString::from);
        let flag = |setting, default| parse_lenient_bool(resolved, setting, default);

        let thumbprint = resolved
            .get(Setting::Thumbprint)
            .map(normalize_thumbprint)
            .transpose()?;
        let tenant = resolved
            .get(Setting::TenantId)
            .map(|value| {
                Tenant::parse(value).map_err(|error| ConnectError::InvalidValue {
                    key: "TenantId",
                    problem: error.to_string(),
                    fix: "give the directory (tenant) id or a verified domain, or leave TenantId out to discover it from the organization".to_owned(),
                })
            })
            .transpose()?;
        let authority = resolved
            .get(Setting::Authority)
            .map(|value| {
                Authority::parse(value).map_err(|error| ConnectError::InvalidValue {
                    key: "Authority",
                    problem: error.to_string(),
                    fix: "give the authority URL with its tenant, such as https://login.microsoftonline.com/contoso.onmicrosoft.com, or https://adfs.contoso.com/adfs".to_owned(),
                })
            })
            .transpose()?;
        let authority_host = text(Setting::AuthorityHost);
        if let Some(host) = &authority_host {
            Authority::custom(host, Tenant::Organizations).map_err(|error| {
                ConnectError::InvalidValue {
                    key: "AuthorityHost",
                    problem: error.to_string(),
                    fix: "give the host's base URL, such as https://login.microsoftonline.us or the d365 emulator's http://127.0.0.1:port".to_owned(),
                }
            })?;
        }
        if authority.is_some() && (tenant.is_some() || authority_host.is_some()) {
            return Err(ConnectError::InvalidValue {
                key: "Authority",
                problem: "Authority names the host and the tenant, and TenantId or AuthorityHost is given too".to_owned(),
                fix: "give either Authority alone, or TenantId (with AuthorityHost for a host other than Microsoft's)".to_owned(),
            });
        }
        let send_certificate_chain = match resolved.get(Setting::SendCertificateChain) {
            None => true,
            Some(value) => parse_bool(value).ok_or_else(|| ConnectError::InvalidValue {
                key: "SendCertificateChain",
                problem: "the value is not true or false".to_owned(),
                fix: "write SendCertificateChain=true (the default: send the x5c chain, as ServiceClient does) or false".to_owned(),
            })?,
        };

        let parsed = Self {
            url,
            auth_type,
            client_id: text(Setting::ClientId),
            client_secret: secret(Setting::ClientSecret),
            username: text(Setting::UserName),
            password: secret(Setting::Password),
            domain: text(Setting::Domain),
            home_realm_uri: text(Setting::HomeRealmUri),
            redirect_uri: text(Setting::RedirectUri),
            token_cache_store_path: text(Setting::TokenCacheStorePath),
            login_prompt: text(Setting::LoginPrompt),
            thumbprint,
            store_name: text(Setting::StoreName),
            require_new_instance: flag(Setting::RequireNewInstance, true),
            skip_discovery: flag(Setting::SkipDiscovery, true),
            integrated_security: flag(Setting::IntegratedSecurity, false),
            tenant,
            authority,
            authority_host,
            certificate_path: resolved.get(Setting::CertificatePath).map(PathBuf::from),
            certificate_key_path: resolved.get(Setting::CertificateKeyPath).map(PathBuf::from),
            certificate_password: secret(Setting::CertificatePassword),
            send_certificate_chain,
            unknown_keys: resolved.unknown_keys.clone(),
            shown: KEYS
                .iter()
                .filter_map(|info| {
                    let value = match info.setting {
                        // As ServiceClient (case-sensitively) requires it.
                        Setting::AuthType => auth_type.as_str(),
                        _ => resolved.get(info.setting)?,
                    };
                    Some((info, (!info.secret).then(|| value.to_owned())))
                })
                .collect(),
        };
        parsed.check_for_auth_type(resolved)?;
        Ok(parsed)
    }

    /// What the authentication type needs, checked before anything is sent.
    fn check_for_auth_type(&self, resolved: &Resolved) -> Result<(), ConnectError> {
        let relevant: &[Setting] = match self.auth_type {
            AuthType::ClientSecret => {
                if self.client_id.is_none() {
                    return Err(resolved.missing(
                        Setting::ClientId,
                        "give the application (client) id of the app registration; d365 never substitutes Microsoft's sample application for your own",
                    ));
                }
                if self.client_secret.is_none() {
                    return Err(resolved.missing(
                        Setting::ClientSecret,
                        "give the secret's Value from App registrations > Certificates & secrets (quote it if it contains ; or outer spaces: ClientSecret='a;b'); d365 never falls back to interactive sign-in",
                    ));
                }
                &[Setting::ClientId, Setting::ClientSecret]
            }
            AuthType::Certificate => {
                if self.client_id.is_none() {
                    return Err(resolved.missing(
                        Setting::ClientId,
                        "give the application (client) id of the app registration the certificate is registered for",
                    ));
                }
                if self.certificate_path.is_none() {
                    if let Some(thumbprint) = &self.thumbprint {
                        return Err(ConnectError::CertificateStore {
                            thumbprint: thumbprint.clone(),
                            store: self.store_name.clone().unwrap_or_else(|| "My".to_owned()),
                        });
                    }
                    return Err(resolved.missing(
                        Setting::CertificatePath,
                        "give the certificate with its private key as a file: CertificatePath=<file.pfx, .p12 or .pem> (and CertificatePassword for a protected .pfx, CertificateKeyPath for a separate PEM key)",
                    ));
                }
                &[
                    Setting::ClientId,
                    Setting::Thumbprint,
                    Setting::StoreName,
                    Setting::CertificatePath,
                    Setting::CertificateKeyPath,
                    Setting::CertificatePassword,
                    Setting::SendCertificateChain,
                ]
            }
            AuthType::OAuth => {
                if self.integrated_security {
                    return Err(ConnectError::IntegratedSecurity);
                }
                match (&self.username, &self.password) {
                    (Some(_), Some(_)) => {}
                    (None, None) => return Err(ConnectError::InteractiveSignIn),
                    (Some(_), None) => {
                        return Err(resolved.missing(
                            Setting::Password,
                            "give the user's password (quote it if it contains ; or outer spaces: Password='a;b'); d365 never prompts for it",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(resolved.missing(
                            Setting::UserName,
                            "give the user's name, such as Username=ana@contoso.onmicrosoft.com",
                        ));
                    }
                }
                if self.client_id.is_none() {
                    tracing::info!(
                        client_id = SAMPLE_CLIENT_ID,
                        "AuthType=OAuth without ClientId: using Microsoft's sample public client, as ServiceClient does; register your own application for production"
                    );
                }
                if self
                    .login_prompt
                    .as_deref()
                    .is_some_and(|prompt| !prompt.eq_ignore_ascii_case("never"))
                {
                    tracing::debug!("LoginPrompt is ignored: d365 never prompts");
                }
                &[
                    Setting::ClientId,
                    Setting::UserName,
                    Setting::Password,
                    Setting::RedirectUri,
                    Setting::LoginPrompt,
                    Setting::TokenCacheStorePath,
                    Setting::IntegratedSecurity,
                ]
            }
            AuthType::ExternalTokenManagement => &[],
            other => return Err(unsupported(other)),
        };
        let always = [
            Setting::AuthType,
            Setting::Url,
            Setting::RequireNewInstance,
            Setting::SkipDiscovery,
            Setting::TenantId,
            Setting::Authority,
            Setting::AuthorityHost,
        ];
        for (info, _) in &self.shown {
            if !always.contains(&info.setting) && !relevant.contains(&info.setting) {
                tracing::debug!(
                    key = info.canonical,
                    auth_type = %self.auth_type,
                    "this key does not apply to the authentication type and is ignored"
                );
            }
        }
        Ok(())
    }

    /// The organization URL, canonical (`https://contoso.crm.dynamics.com`).
    #[must_use]
    pub fn url(&self) -> &Resource {
        &self.url
    }

    /// The authentication type (never an unsupported one: those fail to parse).
    #[must_use]
    pub fn auth_type(&self) -> AuthType {
        self.auth_type
    }

    /// The application (client) id, as given. For `OAuth` without one, the grant uses
    /// [`SAMPLE_CLIENT_ID`](Self::SAMPLE_CLIENT_ID).
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The client secret (`ClientSecret`, `Secret`).
    #[must_use]
    pub fn client_secret(&self) -> Option<&SecretString> {
        self.client_secret.as_ref()
    }

    /// Whether a client secret was given.
    #[must_use]
    pub fn has_client_secret(&self) -> bool {
        self.client_secret.is_some()
    }

    /// The user name (`Username`, `User Name`, `UserId`, `User Id`).
    #[must_use]
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The user's password.
    #[must_use]
    pub fn password(&self) -> Option<&SecretString> {
        self.password.as_ref()
    }

    /// Whether a password was given.
    #[must_use]
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The Windows domain (`AuthType=AD` only; kept, not used).
    #[must_use]
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The home realm URI (claims/IFD only; kept, not used).
    #[must_use]
    pub fn home_realm_uri(&self) -> Option<&str> {
        self.home_realm_uri.as_deref()
    }

    /// The redirect URI (`RedirectUri`, `ReplyUrl`; interactive sign-in only; kept, not used).
    #[must_use]
    pub fn redirect_uri(&self) -> Option<&str> {
        self.redirect_uri.as_deref()
    }

    /// `TokenCacheStorePath` (an MSAL cache file; kept, not used: give the client a
    /// [`TokenStore`](d365_auth_core::TokenStore) instead).
    #[must_use]
    pub fn token_cache_store_path(&self) -> Option<&str> {
        self.token_cache_store_path.as_deref()
    }

    /// `LoginPrompt` as written (d365 never prompts).
    #[must_use]
    pub fn login_prompt(&self) -> Option<&str> {
        self.login_prompt.as_deref()
    }

    /// The certificate thumbprint (`CertificateThumbprint`, `Thumbprint`,
    /// `CertThumbprint`), upper-case hex without separators. With a certificate file,
    /// d365 checks the file holds this certificate.
    #[must_use]
    pub fn thumbprint(&self) -> Option<&str> {
        self.thumbprint.as_deref()
    }

    /// The Windows certificate store (`CertificateStoreName`, `StoreName`; not readable by d365).
    #[must_use]
    pub fn store_name(&self) -> Option<&str> {
        self.store_name.as_deref()
    }

    /// `RequireNewInstance` (default `true`; accepted, no effect: every d365 client is new).
    #[must_use]
    pub fn require_new_instance(&self) -> bool {
        self.require_new_instance
    }

    /// `SkipDiscovery` (default `true`; accepted, no effect: d365 never uses the global
    /// discovery service).
    #[must_use]
    pub fn skip_discovery(&self) -> bool {
        self.skip_discovery
    }

    /// `Integrated Security` (default `false`; `true` is refused).
    #[must_use]
    pub fn integrated_security(&self) -> bool {
        self.integrated_security
    }

    /// d365's `TenantId` (`Tenant Id`, `Tenant`): the directory, so no discovery is needed.
    #[must_use]
    pub fn tenant(&self) -> Option<&Tenant> {
        self.tenant.as_ref()
    }

    /// d365's `Authority`: the complete authority (host and tenant, or AD FS).
    #[must_use]
    pub fn authority(&self) -> Option<&Authority> {
        self.authority.as_ref()
    }

    /// d365's `AuthorityHost` (`Authority Host`): a host speaking Entra ID's protocol
    /// (another cloud, a proxy, the d365 emulator); the tenant follows it.
    #[must_use]
    pub fn authority_host(&self) -> Option<&str> {
        self.authority_host.as_deref()
    }

    /// d365's `CertificatePath` (`Certificate Path`, `CertificateFile`): a `.pfx`/`.p12`
    /// archive, or a PEM file with the certificate (and the key, unless
    /// [`certificate_key_path`](Self::certificate_key_path) is given).
    #[must_use]
    pub fn certificate_path(&self) -> Option<&Path> {
        self.certificate_path.as_deref()
    }

    /// d365's `CertificateKeyPath` (`CertificateKeyFile`, `PrivateKeyPath`): a PEM private
    /// key apart from the certificate.
    #[must_use]
    pub fn certificate_key_path(&self) -> Option<&Path> {
        self.certificate_key_path.as_deref()
    }

    /// d365's `CertificatePassword` (`Certificate Password`): the `.pfx` password.
    #[must_use]
    pub fn certificate_password(&self) -> Option<&SecretString> {
        self.certificate_password.as_ref()
    }

    /// d365's `SendCertificateChain`: send the `x5c` chain with the assertion (default
    /// `true`, as ServiceClient does).
    #[must_use]
    pub fn send_certificate_chain(&self) -> bool {
        self.send_certificate_chain
    }

    /// The keys d365 does not know, as written (ignored, as ServiceClient ignores them).
    /// Not shown by `Display`, `Debug` or errors, which only count them: a value with an
    /// unquoted `;` can turn part of a secret into such a key.
    #[must_use]
    pub fn unknown_keys(&self) -> &[String] {
        &self.unknown_keys
    }

    /// The string with canonical key names, secrets as `***`, unknown keys left out: safe
    /// to show and to log.
    #[must_use]
    pub fn to_redacted_string(&self) -> String {
        let mut out = String::new();
        for (info, value) in &self.shown {
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str(info.canonical);
            out.push('=');
            match value {
                Some(value) => out.push_str(&quote_if_needed(value)),
                None => out.push_str("***"),
            }
        }
        out
    }
}

impl std::str::FromStr for ConnectionString {
    type Err = ConnectError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_redacted_string())
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { Some("[redacted]") } else { None };
        f.debug_struct("ConnectionString")
            .field("url", &self.url)
            .field("auth_type", &self.auth_type)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(self.client_secret.is_some()))
            .field("username", &self.username)
            .field("password", &redacted(self.password.is_some()))
            .field("thumbprint", &self.thumbprint)
            .field("tenant", &self.tenant)
            .field("authority", &self.authority)
            .field("authority_host", &self.authority_host)
            .field("certificate_path", &self.certificate_path)
            .field("certificate_key_path", &self.certificate_key_path)
            .field(
                "certificate_password",
                &redacted(self.certificate_password.is_some()),
            )
            .field("unknown_keys", &self.unknown_keys.len())
            .finish_non_exhaustive()
    }
}

/// Resolves duplicates (the last occurrence of a key wins) and aliases (the first alias,
/// in ServiceClient's order, that is present and non-empty wins).
fn resolve(pairs: Vec<grammar::RawPair>) -> Resolved {
    let mut by_key: HashMap<String, String> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for pair in pairs {
        let lower = pair.key.to_lowercase();
        if by_key.insert(lower, pair.value).is_some() {
            match keys::known_name(&pair.key) {
                Some(name) => tracing::debug!(key = name, "a key appears twice; the last one wins"),
                None => tracing::debug!("an unknown key appears twice; the last one wins"),
            }
        } else {
            order.push(pair.key);
        }
    }
    let mut values = HashMap::new();
    for info in KEYS {
        let present: Vec<&str> = info
            .aliases
            .iter()
            .filter_map(|alias| by_key.get(&alias.to_lowercase()))
            .map(String::as_str)
            .filter(|value| !value.is_empty())
            .collect();
        if let Some(first) = present.first() {
            if present.len() > 1 {
                tracing::debug!(
                    key = info.canonical,
                    "several aliases of this key are given; the first in ServiceClient's order wins"
                );
            }
            values.insert(info.setting, (*first).to_owned());
        }
    }
    let unknown_keys: Vec<String> = order
        .into_iter()
        .filter(|key| keys::lookup(key).is_none())
        .collect();
    if !unknown_keys.is_empty() {
        tracing::warn!(
            count = unknown_keys.len(),
            "the connection string has keys d365 does not know; they are ignored (ConnectionString::unknown_keys lists them)"
        );
    }
    Resolved {
        values,
        unrecognised: unknown_keys.len(),
        unknown_keys,
    }
}

fn parse_auth_type(resolved: &Resolved) -> Result<AuthType, ConnectError> {
    let value = resolved.get(Setting::AuthType).ok_or_else(|| {
        resolved.missing(
            Setting::AuthType,
            "add AuthType=ClientSecret or AuthType=Certificate for an application, AuthType=OAuth with Username and Password for a user, or AuthType=ExternalTokenManagement with a token callback",
        )
    })?;
    let (auth_type, exact) =
        AuthType::parse_with_case(value).ok_or_else(|| ConnectError::UnknownAuthType {
            value: value.chars().take(60).collect(),
        })?;
    if !exact {
        tracing::warn!(
            auth_type = auth_type.as_str(),
            "AuthType is not written as ServiceClient requires (it is case-sensitive); d365 accepts it, ServiceClient would not"
        );
    }
    Ok(auth_type)
}

fn unsupported(auth_type: AuthType) -> ConnectError {
    let (reason, alternative) = match auth_type {
        AuthType::Ad => (
            "it is Windows integrated (NTLM/Kerberos) authentication to on-premises Dynamics 365, which needs Windows and the .NET Framework and is not OAuth",
            "for on-premises Dynamics 365 with AD FS use AuthType=OAuth with Username and Password (the AD FS authority is discovered from the server); for Dataverse online use AuthType=ClientSecret or AuthType=Certificate",
        ),
        AuthType::Ifd | AuthType::Claims => (
            "it is the WS-Trust claims sign-in of CrmServiceClient for internet-facing deployments, which Dataverse's OAuth endpoints replace",
            "AD FS issues OAuth tokens: use AuthType=OAuth with Username and Password (the AD FS authority is discovered from the server, or give Authority=https://adfs.contoso.com/adfs), or AuthType=ClientSecret with an AD FS application",
        ),
        _ => (
            "it is the deprecated WS-Trust sign-in (Office365), which Microsoft has turned off for Dataverse",
            "use AuthType=OAuth with Username and Password for the same user (the password grant), or AuthType=ClientSecret or AuthType=Certificate with an application user for unattended work",
        ),
    };
    ConnectError::UnsupportedAuthType {
        auth_type,
        reason,
        alternative,
    }
}

/// .NET's `bool.TryParse`: `true`/`false` in any case, outer whitespace ignored.
fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A ServiceClient boolean: unparsable values fall back to the default, as there.
fn parse_lenient_bool(resolved: &Resolved, setting: Setting, default: bool) -> bool {
    match resolved.get(setting) {
        None => default,
        Some(value) => parse_bool(value).unwrap_or_else(|| {
            tracing::warn!(
                key = keys::info(setting).canonical,
                default,
                "the value is not true or false; using the default, as ServiceClient does"
            );
            default
        }),
    }
}

/// A SHA-1 thumbprint: 40 hex digits, separators (spaces, colons) and case ignored.
fn normalize_thumbprint(value: &str) -> Result<String, ConnectError> {
    let hex: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-' && *c != '\u{200e}')
        .collect::<String>()
        .to_ascii_uppercase();
    if hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(ConnectError::InvalidValue {
            key: "Thumbprint",
            problem: format!(
                "a SHA-1 thumbprint is 40 hexadecimal digits, and this value has {} characters after removing separators",
                hex.chars().count()
            ),
            fix: "copy the thumbprint from the app registration's Certificates & secrets page"
                .to_owned(),
        })
    }
}

/// Quotes a value for a connection string when the grammar needs it.
fn quote_if_needed(value: &str) -> String {
    // A leading `=` would be read as `==`, a literal `=` in the key.
    let needs_quotes = value.contains(';')
        || value.starts_with('=')
        || value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace)
        || value.starts_with(['\'', '"'])
        || value.ends_with(['\'', '"'])
        || value.chars().any(char::is_control);
    if !needs_quotes {
        return value.to_owned();
    }
    if !value.contains('\'') {
        format!("'{value}'")
    } else if !value.contains('"') {
        format!("\"{value}\"")
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// Maps a grammar error to a message that names only known keys.
fn syntax_error(error: SyntaxError) -> ConnectError {
    let known_key = error.key.as_deref().and_then(keys::known_name);
    let previous = error.previous_key.as_deref().and_then(keys::known_name);
    let of_key =
        known_key.map_or_else(|| "a value".to_owned(), |key| format!("the value of {key}"));
    let (problem, fix) = match error.problem {
        SyntaxProblem::KeyWithoutEquals => (
            "text without `=` follows".to_owned(),
            "write key=value pairs separated by `;`",
        ),
        SyntaxProblem::SemicolonInKey => (
            match previous {
                Some(key) => format!(
                    "a key contains `;`, so the value of {key} before it probably contains an unquoted `;`"
                ),
                None => {
                    "a key contains `;`, so a value before it probably contains an unquoted `;`"
                        .to_owned()
                }
            },
            "quote a value that contains `;` with ' or \" (Password='a;b')",
        ),
        SyntaxProblem::EmptyKey => (
            "a pair has no key before its `=`".to_owned(),
            "write key=value pairs separated by `;` (a `=` inside a key is written `==`)",
        ),
        SyntaxProblem::ControlCharacter => (
            format!("{of_key} or a key contains a control character"),
            "remove it, or quote the value",
        ),
        SyntaxProblem::UnclosedQuote => (
            format!("the quote that opens {of_key} is not closed"),
            "close the quote; inside a quoted value, double the quote character ('it''s') or use the other one (\"it's\")",
        ),
        SyntaxProblem::TextAfterQuote => (
            format!("text follows the closing quote of {of_key}"),
            "end the value at its closing quote; inside a quoted value, double the quote character ('it''s') or use the other one",
        ),
        SyntaxProblem::UnquotedValueEndsWithQuote => (
            format!("{of_key} ends with a quote but does not start with one"),
            "quote the whole value, doubling the quote inside ('it''s') or using the other one (\"it's'\")",
        ),
    };
    ConnectError::Syntax {
        position: error.position,
        problem,
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_the_grammar() {
        for value in [
            "plain",
            "a;b",
            " padded ",
            "it's;",
            "say \"hi\";",
            "both ' and \";",
            "'q",
        ] {
            let text = format!("k={}", quote_if_needed(value));
            let pairs = grammar::split(&text).unwrap();
            assert_eq!(pairs[0].value, value, "{text}");
        }
    }

    #[test]
    fn thumbprints_are_normalized() {
        assert_eq!(
            normalize_thumbprint("dc 6c 68 90 22 c9 05 ea 5f 81 2b 51 f1 57 4e d1 0f 25 6f f6")
                .unwrap(),
            "DC6C689022C905EA5F812B51F1574ED10F256FF6"
        );
        assert!(normalize_thumbprint("DC6C").is_err());
        assert!(normalize_thumbprint("ZZ6C689022C905EA5F812B51F1574ED10F256FF6").is_err());
    }
}
