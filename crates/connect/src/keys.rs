//! The keys every connection shares, whatever its grant: the organization, the
//! authentication type, the client, the authority, and the ServiceClient keys d365 accepts
//! without using. Each grant crate adds its own keys through its registration; data, not code.

use d365_auth_core::grant::SettingKey;

/// `AuthType`, as ServiceClient requires it.
pub(crate) const AUTH_TYPE: SettingKey =
    SettingKey::new("AuthType", &["AuthType", "AuthenticationType"]);
/// The organization URL.
pub(crate) const URL: SettingKey =
    SettingKey::new("Url", &["ServiceUri", "Service Uri", "Url", "Server"]).environment("D365_URL");
/// The application (client) id.
pub(crate) const CLIENT_ID: SettingKey =
    SettingKey::new("ClientId", &["ClientId", "AppId", "ApplicationId"])
        .environment("AZURE_CLIENT_ID");
/// d365's `TenantId`: the directory, so no discovery is needed.
pub(crate) const TENANT_ID: SettingKey =
    SettingKey::new("TenantId", &["TenantId", "Tenant Id", "Tenant"])
        .environment("AZURE_TENANT_ID");
/// d365's `Authority`: a complete authority (host and tenant, or AD FS).
pub(crate) const AUTHORITY: SettingKey = SettingKey::new("Authority", &["Authority"]);
/// d365's `AuthorityHost`: a host speaking Entra ID's protocol; the tenant follows it.
pub(crate) const AUTHORITY_HOST: SettingKey =
    SettingKey::new("AuthorityHost", &["AuthorityHost", "Authority Host"])
        .environment("AZURE_AUTHORITY_HOST");
/// d365's `Grant`: the grant to sign in with, by its registered name (`device-code`).
pub(crate) const GRANT: SettingKey =
    SettingKey::new("Grant", &["Grant"]).environment(crate::GRANT_VARIABLE);
/// d365's `ApiVersion`: the Web API version to speak (`v8.2`), instead of asking an
/// on-premises server.
pub(crate) const API_VERSION: SettingKey =
    SettingKey::new("ApiVersion", &["ApiVersion", "Api Version"]).environment("D365_API_VERSION");
/// `Integrated Security=true`: the signed-in Windows user, refused.
pub(crate) const INTEGRATED_SECURITY: SettingKey =
    SettingKey::new("Integrated Security", &["Integrated Security"]);

/// The keys every connection accepts that a redacted string lists first: what it connects
/// to, as whom, with which grant. The grants' own keys follow them.
pub(crate) const LEADING: &[SettingKey] = &[AUTH_TYPE, URL, CLIENT_ID, GRANT];

/// The keys every connection accepts that a redacted string lists after the grants' keys:
/// ServiceClient keys d365 accepts and keeps (a grant may read them) and d365's authority
/// keys.
pub(crate) const TRAILING: &[SettingKey] = &[
    SettingKey::new("Domain", &["Domain"]),
    SettingKey::new("HomeRealmUri", &["HomeRealmUri", "Home Realm Uri"]),
    SettingKey::new("RedirectUri", &["RedirectUri", "ReplyUrl"]),
    SettingKey::new("TokenCacheStorePath", &["TokenCacheStorePath"]),
    SettingKey::new("LoginPrompt", &["LoginPrompt"]),
    SettingKey::new("RequireNewInstance", &["RequireNewInstance"]),
    SettingKey::new("SkipDiscovery", &["SkipDiscovery"]),
    INTEGRATED_SECURITY,
    API_VERSION,
    TENANT_ID,
    AUTHORITY,
    AUTHORITY_HOST,
];

/// Whether `name` is one of the keys every connection shares (not a grant's own).
pub(crate) fn is_common(name: &str) -> bool {
    LEADING.iter().chain(TRAILING).any(|key| key.name == name)
}

/// How a key is named in an error: the canonical name, and its other spellings.
pub(crate) fn label(key: &SettingKey) -> String {
    let others: Vec<&str> = key
        .aliases
        .iter()
        .copied()
        .filter(|alias| !alias.eq_ignore_ascii_case(key.name))
        .collect();
    if others.is_empty() {
        key.name.to_owned()
    } else {
        format!("{} (or {})", key.name, others.join(", "))
    }
}
