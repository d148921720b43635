//! `d365 login`, `d365 logout` and `d365 auth status`: a person signs in once — in the
//! browser, or with a code — and the sign-in is remembered as a profile (a connection
//! string naming the grant, the authority and the client; no secret) and in the encrypted
//! token file, so later commands renew with the refresh token instead of asking again.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use d365_auth_authorization_code::ShowSignInUrl;
use d365_auth_core::store::TokenStore;
use d365_auth_core::{AccessToken, Resource, TokenCache, TokenProvider, TokenRequest};
use d365_connect::{ConnectOptions, ConnectionString, Credential, RememberedSignIn};
use serde_json::{Value, json};

use crate::cli::{Global, LoginArgs};
use crate::commands::token::{claims, format_time};
use crate::connection::{connect_options, token_file};
use crate::exit::UsageError;
use crate::output;
use crate::profiles::{self, ProfileInfo};
use crate::token_key::{self, KeyStoreChoice};

/// The grants whose sign-in is a person's, and can be remembered.
const PERSON_GRANTS: &[&str] = &["interactive", "device-code"];

/// `d365 login`.
pub(crate) async fn login(global: &Global, args: &LoginArgs) -> anyhow::Result<()> {
    let url = args.url.as_deref().ok_or_else(|| {
        UsageError(
            "give the organization to sign in to: --url https://contoso.crm.dynamics.com (or D365_URL)".to_owned(),
        )
    })?;
    let org = Resource::parse(url)?;
    let grant = if args.device_code {
        "device-code"
    } else {
        "interactive"
    };
    let mut draft = format!("AuthType=OAuth;Url={org};Grant={grant}");
    for (key, value) in [
        ("TenantId", &args.tenant),
        ("AuthorityHost", &args.authority_host),
        ("Authority", &args.authority),
    ] {
        if let Some(value) = value {
            draft.push_str(&format!(";{key}={}", setting(key, value)?));
        }
    }
    let options = sign_in_options(args.no_browser);
    // The authority is found once, now, and saved: later commands need no discovery.
    let authority = ConnectionString::parse(&draft)?
        .credential()
        .resolve_authority(&options)
        .await?;
    if authority.is_adfs() && args.client_id.is_none() {
        return Err(UsageError(format!(
            "{org} signs in with AD FS ({authority}), which knows only the clients registered on it: give --client-id with the ClientId of a public client registered with Add-AdfsClient -RedirectUri http://localhost (see docs/on-premises.md)"
        ))
        .into());
    }
    let mut text = format!("AuthType=OAuth;Url={org};Grant={grant};Authority={authority}");
    for (key, value) in [("ClientId", &args.client_id), ("Username", &args.user)] {
        if let Some(value) = value {
            text.push_str(&format!(";{key}={}", setting(key, value)?));
        }
    }
    let parsed = ConnectionString::parse(&text)?;
    let provider = parsed.credential().provider(&options).await?;
    let choice = match args.key_store {
        Some(choice) => choice,
        None => token_key::choice_from_environment()?,
    };
    let path = token_file();
    let (store, home) = token_key::open_store(&path, choice)?;
    let cache = TokenCache::builder(provider).store(Arc::new(store)).build();
    let request = TokenRequest::new(org.clone());
    // A new sign-in, whatever was remembered before.
    cache.forget(&request).await?;
    let token = cache.get(&request).await?;

    let name = match &global.profile {
        Some(name) => name.clone(),
        None => default_profile_name(&org),
    };
    let dir = profiles::config_dir();
    profiles::add(
        &dir,
        &name,
        &text,
        ProfileInfo {
            url: org.to_string(),
            auth_type: format!("OAuth ({grant})"),
            summary: parsed.to_redacted_string(),
        },
        true,
        // Signing in again under the same profile is what `login` is for.
        profiles::Existing::Replace,
    )?;
    output::facts(
        &mut std::io::stdout().lock(),
        global.output,
        &[
            ("signed in as", json!(person(&token))),
            ("organization", json!(org.as_str())),
            ("profile", json!(name)),
            ("grant", json!(grant)),
            ("valid until", json!(format_time(token.expires_on()))),
            ("renewed with", json!(renewal(&token))),
            ("tokens kept in", json!(path.display().to_string())),
            ("encrypted with a key in", json!(home.to_string())),
        ],
    )
}

/// `d365 logout`: the selected profile's tokens and the profile go; with no profile left,
/// the token file and its key go too.
pub(crate) async fn logout(global: &Global) -> anyhow::Result<()> {
    let profile = profiles::selected(global.profile.as_deref())?.ok_or_else(|| {
        UsageError(
            "no profile to log out of: name one with --profile, or `d365 auth status` lists them"
                .to_owned(),
        )
    })?;
    let parsed = ConnectionString::parse(&profile.connection_string)?;
    let path = token_file();
    let mut removed = Vec::new();
    if let Some(cache) = remembered(&parsed, &path).await? {
        cache
            .forget(&TokenRequest::new(parsed.url().clone()))
            .await?;
        removed.push("its tokens".to_owned());
    }
    let dir = profiles::config_dir();
    profiles::remove(&dir, &profile.name)?;
    removed.push(format!("the profile `{}`", profile.name));
    if profiles::read_profiles(&dir)?.profiles.is_empty() {
        for file in [path.clone(), sibling(&path, ".lock")] {
            match std::fs::remove_file(&file) {
                Ok(()) => removed.push(file.display().to_string()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot remove {}", file.display()));
                }
            }
        }
        if let Some(home) = token_key::recorded_home(&path)? {
            token_key::forget(&path)?;
            removed.push(format!("the token file's key in {home}"));
        }
    }
    output::facts(
        &mut std::io::stdout().lock(),
        global.output,
        &[
            ("signed out of", json!(parsed.url().as_str())),
            ("removed", json!(removed)),
        ],
    )
}

/// `d365 auth status`.
pub(crate) async fn status(global: &Global) -> anyhow::Result<()> {
    let dir = profiles::config_dir();
    let file = profiles::read_profiles(&dir)?;
    let path = token_file();
    let mut rows = Vec::new();
    for (name, info) in &file.profiles {
        let Some(profile) = profiles::selected(Some(name))? else {
            continue;
        };
        let mut row = json!({
            "current": if file.current.as_deref() == Some(name) { "*" } else { "" },
            "profile": name,
            "organization": info.url,
            "auth": info.auth_type,
        });
        if let Ok(parsed) = ConnectionString::parse(&profile.connection_string)
            && let Ok(Some(cache)) = remembered(&parsed, &path).await
        {
            let stored = cache.stored(&TokenRequest::new(parsed.url().clone())).await;
            if let Ok(Some(token)) = stored {
                row["signed in as"] = json!(person(&token));
                row["valid until"] = json!(format_time(token.expires_on()));
                row["renewal"] = json!(renewal(&token));
            } else {
                row["signed in as"] = json!("nobody (run d365 login)");
            }
        }
        rows.push(row);
    }
    output::records_in_order(
        &mut std::io::stdout().lock(),
        global.output,
        &rows,
        &[
            "current",
            "profile",
            "organization",
            "auth",
            "signed in as",
            "valid until",
            "renewal",
        ],
    )?;
    if global.output == crate::cli::OutputFormat::Table {
        let home = token_key::recorded_home(&path)?
            .map_or_else(|| "none yet".to_owned(), |home| home.to_string());
        eprintln!("tokens: {} (encrypted; key in {home})", path.display());
    }
    Ok(())
}

/// The cache of `parsed`'s tokens in the token file, when it is a person's sign-in whose
/// grant can be built without asking anyone (its authority is saved).
async fn remembered(
    parsed: &ConnectionString,
    path: &std::path::Path,
) -> anyhow::Result<Option<TokenCache<Arc<dyn TokenProvider>>>> {
    let credential: &Credential = parsed.credential();
    if !PERSON_GRANTS.contains(&credential.grant().name())
        || (credential.config().authority.is_none() && credential.config().tenant.is_none())
    {
        return Ok(None);
    }
    let provider = credential.provider(&sign_in_options(true)).await?;
    let (store, _) = token_key::open_store(
        path,
        token_key::choice_from_environment().unwrap_or(KeyStoreChoice::Auto),
    )?;
    Ok(Some(
        TokenCache::builder(provider)
            .store(Arc::new(store) as Arc<dyn TokenStore>)
            .build(),
    ))
}

/// The remembered `d365 login` for `org`, for the end of the default chain: the current
/// profile when it is one, else the first saved sign-in for the organization.
pub(crate) async fn remembered_sign_in(org: &Resource) -> Option<RememberedSignIn> {
    let dir = profiles::config_dir();
    let file = profiles::read_profiles(&dir).ok()?;
    let mut names: Vec<&String> = file.profiles.keys().collect();
    names.sort_by_key(|name| file.current.as_ref() != Some(*name));
    for name in names {
        let Ok(Some(profile)) = profiles::selected(Some(name)) else {
            continue;
        };
        let Ok(parsed) = ConnectionString::parse(&profile.connection_string) else {
            continue;
        };
        if parsed.url() != org || !PERSON_GRANTS.contains(&parsed.grant().name()) {
            continue;
        }
        let provider = parsed
            .credential()
            .provider(&sign_in_options(true))
            .await
            .ok()?;
        let store = crate::connection::token_store().ok()?;
        return Some(RememberedSignIn::new(provider, store));
    }
    None
}

/// What the person's grants read from the command line: where the sign-in address and the
/// device code are shown (stderr), and whether a browser may open.
fn sign_in_options(no_browser: bool) -> ConnectOptions {
    let show = ShowSignInUrl::new(|sign_in| {
        eprintln!("{}", output::printable(&sign_in.to_string(), true));
    });
    connect_options(None).extension(if no_browser {
        show.without_browser()
    } else {
        show
    })
}

/// A value for a connection string: one that needs no quoting, or a usage error.
fn setting<'a>(key: &str, value: &'a str) -> anyhow::Result<&'a str> {
    let value = value.trim();
    if value.is_empty()
        || value
            .chars()
            .any(|c| matches!(c, ';' | '\'' | '"' | '=') || c.is_control())
    {
        return Err(UsageError(format!(
            "--{} must not be empty or hold ; = ' \" or control characters",
            key.to_ascii_lowercase()
        ))
        .into());
    }
    Ok(value)
}

/// The person a token was issued to: `upn`, `preferred_username` or `unique_name`.
fn person(token: &AccessToken) -> String {
    claims(token)
        .and_then(|claims| {
            ["upn", "preferred_username", "unique_name"]
                .iter()
                .find_map(|name| claims.get(*name).and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| "an unnamed account".to_owned())
}

fn renewal(token: &AccessToken) -> &'static str {
    if token.refresh_token().is_some() {
        "refresh token (no prompt)"
    } else if token.is_expired_at(SystemTime::now()) {
        "a new sign-in"
    } else {
        "a new sign-in once it expires"
    }
}

/// A profile name from the organization's host: `contoso` for contoso.crm.dynamics.com.
fn default_profile_name(org: &Resource) -> String {
    let host = org
        .as_str()
        .split_once("://")
        .map_or(org.as_str(), |(_, rest)| rest);
    let label: String = host
        .split(['.', ':'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    match label.as_str() {
        "" | "127" | "localhost" => "default".to_owned(),
        _ => label,
    }
}

fn sibling(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    std::path::PathBuf::from(name)
}
