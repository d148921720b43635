//! [`ConnectionString`]: a ServiceClient-style connection string, parsed with its aliases
//! resolved against the keys every connection shares and those of each enabled grant, the
//! grant that takes it chosen, and checked by that grant before anything is read or sent.

use std::collections::HashMap;
use std::fmt;

use d365_auth_core::grant::{GrantConfig, GrantRegistration, SettingKey};
use d365_auth_core::{Authority, Resource, Tenant};
use secrecy::SecretString;

use crate::auth_type::AuthType;
use crate::credential::{Credential, Origin};
use crate::error::ConnectError;
use crate::grammar::{self, SyntaxError, SyntaxProblem};
use crate::keys;
use crate::registry::Registry;

/// A parsed ServiceClient / CrmServiceClient connection string.
///
/// [`parse`](Self::parse) follows the ADO.NET grammar ServiceClient uses (`;`-separated
/// `key=value` pairs, keys case-insensitive, values quoted with `'` or `"` when they hold
/// `;` or outer spaces), accepts every alias of every ServiceClient key, d365's own keys
/// (`TenantId`, `Authority`, `AuthorityHost`, `Grant`) and the keys of every grant this
/// build enables (`CertificatePath`, ...), picks the grant — the one `Grant=` names, or
/// the first that takes the `AuthType` — and lets it check the string before anything is
/// sent. `docs/connection-strings.md` lists every key.
///
/// `Debug` and `Display` never show a secret; `Display`
/// ([`to_redacted_string`](Self::to_redacted_string)) writes the string back with canonical
/// key names and `***` for secrets. Keys d365 does not know are ignored (as ServiceClient
/// ignores them), counted in errors and left out of `Display`: a misquoted secret can turn
/// into such a "key".
///
/// # Examples
///
/// ```
/// use d365_connect::{AuthType, ConnectionString};
///
/// let parsed = ConnectionString::parse(
///     "AuthType=ClientSecret; url=https://contoso.crm.dynamics.com; AppId=00000000-0000-0000-0000-0000000000c1; Secret='a;b=c'",
/// )?;
/// assert_eq!(parsed.auth_type(), Some(AuthType::ClientSecret));
/// assert_eq!(parsed.grant().name(), "client-credentials");
/// assert_eq!(parsed.url().as_str(), "https://contoso.crm.dynamics.com");
/// assert_eq!(parsed.client_id(), Some("00000000-0000-0000-0000-0000000000c1"));
/// assert_eq!(
///     parsed.to_string(),
///     "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=00000000-0000-0000-0000-0000000000c1;ClientSecret=***",
/// );
/// # Ok::<(), d365_connect::ConnectError>(())
/// ```
#[derive(Clone)]
pub struct ConnectionString {
    url: Resource,
    auth_type: Option<AuthType>,
    credential: Credential,
    unknown_keys: Vec<String>,
    /// The settings as written (secrets as `None`), in key order, for `Display`.
    shown: Vec<(&'static str, Option<String>)>,
}

/// The settings found, by canonical key name, after alias resolution.
struct Resolved {
    values: HashMap<&'static str, String>,
    unrecognised: usize,
    unknown_keys: Vec<String>,
}

impl Resolved {
    fn get(&self, key: &SettingKey) -> Option<&str> {
        self.values.get(key.name).map(String::as_str)
    }

    fn missing(&self, key: &SettingKey, fix: impl Into<String>) -> ConnectError {
        ConnectError::MissingKey {
            key: keys::label(key),
            fix: fix.into(),
            unrecognised: self.unrecognised,
        }
    }
}

impl ConnectionString {
    /// Parses and checks a connection string with the grants this build enables.
    ///
    /// # Errors
    ///
    /// [`ConnectError`]: [`Syntax`](ConnectError::Syntax) with the position;
    /// [`MissingKey`](ConnectError::MissingKey) for `AuthType`, `Url` and what the grant
    /// needs (`ClientId` and `ClientSecret`; `ClientId` and `CertificatePath`; `Username`
    /// and `Password`); [`InvalidUrl`](ConnectError::InvalidUrl) (plain `http` to a host
    /// that is not loopback, ...); [`InvalidValue`](ConnectError::InvalidValue);
    /// [`UnknownAuthType`](ConnectError::UnknownAuthType);
    /// [`UnsupportedAuthType`](ConnectError::UnsupportedAuthType) for `AD`, `IFD`,
    /// `Claims`, `Office365` when no grant takes them;
    /// [`InteractiveSignIn`](ConnectError::InteractiveSignIn) for `OAuth` without a user
    /// name and password when no grant takes it;
    /// [`IntegratedSecurity`](ConnectError::IntegratedSecurity);
    /// [`UnknownGrant`](ConnectError::UnknownGrant) for a `Grant=` this build does not
    /// have. No error contains a secret.
    pub fn parse(text: &str) -> Result<Self, ConnectError> {
        Self::parse_with(text, &Registry::enabled())
    }

    /// Parses with the grants of `registry` (one with a grant of your own).
    ///
    /// # Errors
    ///
    /// As for [`parse`](Self::parse).
    pub fn parse_with(text: &str, registry: &Registry) -> Result<Self, ConnectError> {
        let pairs = grammar::split(text).map_err(syntax_error)?;
        let resolved = resolve(pairs, registry);
        Self::from_resolved(&resolved, registry)
    }

    fn from_resolved(resolved: &Resolved, registry: &Registry) -> Result<Self, ConnectError> {
        // A string that names its grant needs no ServiceClient `AuthType` (a managed
        // identity has none).
        let auth_type =
            if resolved.get(&keys::AUTH_TYPE).is_none() && resolved.get(&keys::GRANT).is_some() {
                None
            } else {
                Some(parse_auth_type(resolved)?)
            };
        let url_text = resolved.get(&keys::URL).ok_or_else(|| {
            resolved.missing(
                &keys::URL,
                "give the organization URL, such as Url=https://contoso.crm.dynamics.com",
            )
        })?;
        // Checked once the grant is chosen: a type no grant takes (an on-premises `AD`
        // string, whose URL has the organization in its path) is the first thing to say.
        let url = Resource::parse(url_text);
        let tenant = resolved
            .get(&keys::TENANT_ID)
            .map(|value| {
                Tenant::parse(value).map_err(|error| ConnectError::InvalidValue {
                    key: "TenantId",
                    problem: error.to_string(),
                    fix: "give the directory (tenant) id or a verified domain, or leave TenantId out to discover it from the organization".to_owned(),
                })
            })
            .transpose()?;
        let authority = resolved
            .get(&keys::AUTHORITY)
            .map(|value| {
                Authority::parse(value).map_err(|error| ConnectError::InvalidValue {
                    key: "Authority",
                    problem: error.to_string(),
                    fix: "give the authority URL with its tenant, such as https://login.microsoftonline.com/contoso.onmicrosoft.com, or https://adfs.contoso.com/adfs".to_owned(),
                })
            })
            .transpose()?;
        let authority_host = resolved.get(&keys::AUTHORITY_HOST).map(str::to_owned);
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
        if lenient_flag(resolved, &keys::INTEGRATED_SECURITY, false) {
            return Err(ConnectError::IntegratedSecurity);
        }

        let mut config = GrantConfig::default();
        config.auth_type = auth_type.map(|auth_type| auth_type.as_str().to_owned());
        config.organization = url.as_ref().ok().cloned();
        config.tenant = tenant;
        config.authority = authority;
        config.authority_host = authority_host;
        config.client_id = resolved.get(&keys::CLIENT_ID).map(str::to_owned);
        config.grant = resolved.get(&keys::GRANT).map(str::to_owned);
        for key in registry.keys() {
            if let Some(value) = resolved.get(&key) {
                if key.is_secret {
                    config.set_secret(key.name, SecretString::from(value));
                } else {
                    config.set_text(key.name, value);
                }
            }
        }
        let grant = select_grant(registry, &config, auth_type, resolved)?;
        let url = url.map_err(ConnectError::InvalidUrl)?;
        let credential = Credential::checked(
            grant,
            config,
            Origin::Settings,
            registry,
            resolved.unrecognised,
        )?;
        let mut shown: Vec<(&'static str, Option<String>)> = Vec::new();
        for key in registry.keys() {
            if shown.iter().any(|(name, _)| *name == key.name) {
                continue;
            }
            let value = if key.name == keys::AUTH_TYPE.name {
                // As ServiceClient (case-sensitively) requires it.
                auth_type.map(AuthType::as_str)
            } else {
                resolved.get(&key)
            };
            if let Some(value) = value {
                shown.push((key.name, (!key.is_secret).then(|| value.to_owned())));
            }
        }
        Ok(Self {
            url,
            auth_type,
            credential,
            unknown_keys: resolved.unknown_keys.clone(),
            shown,
        })
    }

    /// This connection with `grant` (a registered name, `device-code`) instead of the one
    /// it picked: the client id, the authority and the settings that grant reads are kept.
    /// What `d365 --grant NAME` does.
    ///
    /// # Errors
    ///
    /// [`ConnectError::UnknownGrant`] for a name this build does not have, and the grant's
    /// own check.
    pub fn with_grant(mut self, grant: &str) -> Result<Self, ConnectError> {
        self.credential = self.credential.with_grant(grant)?;
        Ok(self)
    }

    /// The organization URL, canonical (`https://contoso.crm.dynamics.com`).
    #[must_use]
    pub fn url(&self) -> &Resource {
        &self.url
    }

    /// The authentication type; `None` for a string that names its grant (`Grant=`) and
    /// gives no `AuthType`.
    #[must_use]
    pub fn auth_type(&self) -> Option<AuthType> {
        self.auth_type
    }

    /// The grant that builds the provider.
    #[must_use]
    pub fn grant(&self) -> &'static dyn GrantRegistration {
        self.credential.grant()
    }

    /// The credential: the grant and what it is built from. Its
    /// [`provider`](Credential::provider) is the token provider of this connection.
    #[must_use]
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The credential, without the rest of the string.
    #[must_use]
    pub fn into_credential(self) -> Credential {
        self.credential
    }

    /// The application (client) id, as given.
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.config().client_id.as_deref()
    }

    /// d365's `TenantId` (`Tenant Id`, `Tenant`): the directory, so no discovery is needed.
    #[must_use]
    pub fn tenant(&self) -> Option<&Tenant> {
        self.config().tenant.as_ref()
    }

    /// d365's `Authority`: the complete authority (host and tenant, or AD FS).
    #[must_use]
    pub fn authority(&self) -> Option<&Authority> {
        self.config().authority.as_ref()
    }

    /// d365's `AuthorityHost` (`Authority Host`): a host speaking Entra ID's protocol
    /// (another cloud, a proxy, the d365 emulator); the tenant follows it.
    #[must_use]
    pub fn authority_host(&self) -> Option<&str> {
        self.config().authority_host.as_deref()
    }

    /// The text value of the key named `name` (canonical name: `Username`,
    /// `CertificatePath`, `LoginPrompt`); `None` when absent or a secret.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "AuthType" => self.auth_type.map(AuthType::as_str),
            "Url" => Some(self.url.as_str()),
            "ClientId" => self.client_id(),
            _ => self
                .shown
                .iter()
                .find(|(key, _)| *key == name)
                .and_then(|(_, value)| value.as_deref()),
        }
    }

    /// Whether the key named `name` is present (secrets included).
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.shown.iter().any(|(key, _)| *key == name)
    }

    /// Whether the string holds a secret (a client secret, a password, a certificate
    /// password): it must not be shown, typed on a command line or logged.
    #[must_use]
    pub fn holds_secret(&self) -> bool {
        self.shown.iter().any(|(_, value)| value.is_none())
    }

    /// The credential description the grant is built from (secrets stay `SecretString`s).
    #[must_use]
    pub fn config(&self) -> &GrantConfig {
        self.credential.config()
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
        for (name, value) in &self.shown {
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str(name);
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
        f.debug_struct("ConnectionString")
            .field("url", &self.url)
            .field("auth_type", &self.auth_type)
            .field("grant", &self.grant().name())
            .field("settings", &self.to_redacted_string())
            .field("unknown_keys", &self.unknown_keys.len())
            .finish_non_exhaustive()
    }
}

/// The grant the string names (`Grant=`), or the first that takes it; when none does, the
/// reason people meet most, with what to use instead.
fn select_grant(
    registry: &Registry,
    config: &GrantConfig,
    auth_type: Option<AuthType>,
    resolved: &Resolved,
) -> Result<&'static dyn GrantRegistration, ConnectError> {
    if let Some(name) = &config.grant {
        return registry.named(name);
    }
    if let Some(grant) = registry.select(config) {
        return Ok(grant);
    }
    // Without `Grant=`, the `AuthType` was required and parsed.
    let auth_type = auth_type.unwrap_or(AuthType::OAuth);
    Err(match auth_type {
        AuthType::OAuth => {
            let user = config.has("Username");
            let password = config.has("Password");
            match (user, password) {
                (false, false) => ConnectError::InteractiveSignIn,
                _ => resolved.missing(
                    &registry
                        .key_named(if user { "Password" } else { "Username" })
                        .unwrap_or(keys::AUTH_TYPE),
                    "give both the user's name and password for the password grant (this build has no other grant for AuthType=OAuth)",
                ),
            }
        }
        AuthType::Ad | AuthType::Ifd | AuthType::Claims | AuthType::Office365 => {
            unsupported(auth_type)
        }
        other => ConnectError::NoGrant {
            auth_type: other,
            enabled: registry.names().collect::<Vec<_>>().join(", "),
        },
    })
}

/// Resolves duplicates (the last occurrence of a key wins) and aliases (the first alias,
/// in ServiceClient's order, that is present and non-empty wins).
fn resolve(pairs: Vec<grammar::RawPair>, registry: &Registry) -> Resolved {
    let mut by_key: HashMap<String, String> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for pair in pairs {
        let lower = pair.key.to_lowercase();
        if by_key.insert(lower, pair.value).is_some() {
            match registry.key(&pair.key) {
                Some(key) => {
                    tracing::debug!(key = key.name, "a key appears twice; the last one wins");
                }
                None => tracing::debug!("an unknown key appears twice; the last one wins"),
            }
        } else {
            order.push(pair.key);
        }
    }
    let mut values = HashMap::new();
    for key in registry.keys() {
        if values.contains_key(key.name) {
            continue;
        }
        let present: Vec<&str> = key
            .aliases
            .iter()
            .filter_map(|alias| by_key.get(&alias.to_lowercase()))
            .map(String::as_str)
            .filter(|value| !value.is_empty())
            .collect();
        if let Some(first) = present.first() {
            if present.len() > 1 {
                tracing::debug!(
                    key = key.name,
                    "several aliases of this key are given; the first in ServiceClient's order wins"
                );
            }
            values.insert(key.name, (*first).to_owned());
        }
    }
    let unknown_keys: Vec<String> = order
        .into_iter()
        .filter(|key| registry.key(key).is_none())
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
    let value = resolved.get(&keys::AUTH_TYPE).ok_or_else(|| {
        resolved.missing(
            &keys::AUTH_TYPE,
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
            "it is Windows integrated (NTLM/Kerberos) authentication to on-premises Dynamics 365, and no grant of this build signs in that way",
            "for on-premises Dynamics 365 with AD FS use AuthType=OAuth with Username and Password (the AD FS authority is discovered from the server); for Dataverse online use AuthType=ClientSecret or AuthType=Certificate",
        ),
        AuthType::Ifd => (
            "without a Password it names no credential d365 can use: CrmServiceClient's IFD sign-in is WS-Trust, which d365 replaces with the password grant at the server's AD FS",
            "give Domain, Username and Password (AuthType=IFD;Url=…;Domain=CONTOSO;Username=alice;Password=…), or use AuthType=ClientSecret / Certificate with an AD FS application",
        ),
        AuthType::Claims => (
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

/// A ServiceClient boolean: `true`/`false` in any case; anything else falls back to the
/// default, as there.
fn lenient_flag(resolved: &Resolved, key: &SettingKey, default: bool) -> bool {
    match resolved.get(key).map(str::trim) {
        None => default,
        Some(value) if value.eq_ignore_ascii_case("true") => true,
        Some(value) if value.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            tracing::warn!(
                key = key.name,
                default,
                "the value is not true or false; using the default, as ServiceClient does"
            );
            default
        }
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
    let registry = Registry::enabled();
    let known_name = |key: &str| registry.key(key).map(|key| key.name);
    let known_key = error.key.as_deref().and_then(known_name);
    let previous = error.previous_key.as_deref().and_then(known_name);
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
}
