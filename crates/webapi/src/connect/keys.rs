//! The keys of a connection string: every ServiceClient setting with its aliases (in the
//! order ServiceClient tries them), and the keys d365 adds. Data, not code.

/// A setting, whatever alias names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Setting {
    AuthType,
    Url,
    UserName,
    Password,
    Domain,
    HomeRealmUri,
    RequireNewInstance,
    ClientId,
    ClientSecret,
    RedirectUri,
    TokenCacheStorePath,
    LoginPrompt,
    Thumbprint,
    StoreName,
    SkipDiscovery,
    IntegratedSecurity,
    // d365 extensions.
    TenantId,
    Authority,
    AuthorityHost,
    CertificatePath,
    CertificateKeyPath,
    CertificatePassword,
    SendCertificateChain,
}

/// One row of the key table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyInfo {
    pub(crate) setting: Setting,
    /// How d365 writes the key (in redacted strings and errors).
    pub(crate) canonical: &'static str,
    /// Every accepted spelling, compared case-insensitively, in ServiceClient's order of
    /// precedence (the first present and non-empty one wins).
    pub(crate) aliases: &'static [&'static str],
    /// Whether the value is a secret (never shown).
    pub(crate) secret: bool,
}

const fn key(
    setting: Setting,
    canonical: &'static str,
    aliases: &'static [&'static str],
    secret: bool,
) -> KeyInfo {
    KeyInfo {
        setting,
        canonical,
        aliases,
        secret,
    }
}

/// Every key, in the order a redacted string lists them.
pub(crate) const KEYS: &[KeyInfo] = &[
    key(
        Setting::AuthType,
        "AuthType",
        &["AuthType", "AuthenticationType"],
        false,
    ),
    key(
        Setting::Url,
        "Url",
        &["ServiceUri", "Service Uri", "Url", "Server"],
        false,
    ),
    key(
        Setting::ClientId,
        "ClientId",
        &["ClientId", "AppId", "ApplicationId"],
        false,
    ),
    key(
        Setting::ClientSecret,
        "ClientSecret",
        &["ClientSecret", "Secret"],
        true,
    ),
    key(
        Setting::UserName,
        "Username",
        &["UserName", "User Name", "UserId", "User Id"],
        false,
    ),
    key(Setting::Password, "Password", &["Password"], true),
    key(Setting::Domain, "Domain", &["Domain"], false),
    key(
        Setting::HomeRealmUri,
        "HomeRealmUri",
        &["HomeRealmUri", "Home Realm Uri"],
        false,
    ),
    key(
        Setting::Thumbprint,
        "Thumbprint",
        &["CertificateThumbprint", "Thumbprint", "CertThumbprint"],
        false,
    ),
    key(
        Setting::StoreName,
        "StoreName",
        &["CertificateStoreName", "StoreName"],
        false,
    ),
    key(
        Setting::RedirectUri,
        "RedirectUri",
        &["RedirectUri", "ReplyUrl"],
        false,
    ),
    key(
        Setting::TokenCacheStorePath,
        "TokenCacheStorePath",
        &["TokenCacheStorePath"],
        false,
    ),
    key(Setting::LoginPrompt, "LoginPrompt", &["LoginPrompt"], false),
    key(
        Setting::RequireNewInstance,
        "RequireNewInstance",
        &["RequireNewInstance"],
        false,
    ),
    key(
        Setting::SkipDiscovery,
        "SkipDiscovery",
        &["SkipDiscovery"],
        false,
    ),
    key(
        Setting::IntegratedSecurity,
        "Integrated Security",
        &["Integrated Security"],
        false,
    ),
    key(
        Setting::TenantId,
        "TenantId",
        &["TenantId", "Tenant Id", "Tenant"],
        false,
    ),
    key(Setting::Authority, "Authority", &["Authority"], false),
    key(
        Setting::AuthorityHost,
        "AuthorityHost",
        &["AuthorityHost", "Authority Host"],
        false,
    ),
    key(
        Setting::CertificatePath,
        "CertificatePath",
        &["CertificatePath", "Certificate Path", "CertificateFile"],
        false,
    ),
    key(
        Setting::CertificateKeyPath,
        "CertificateKeyPath",
        &["CertificateKeyPath", "CertificateKeyFile", "PrivateKeyPath"],
        false,
    ),
    key(
        Setting::CertificatePassword,
        "CertificatePassword",
        &["CertificatePassword", "Certificate Password"],
        true,
    ),
    key(
        Setting::SendCertificateChain,
        "SendCertificateChain",
        &["SendCertificateChain"],
        false,
    ),
];

/// The row of `setting`.
pub(crate) fn info(setting: Setting) -> &'static KeyInfo {
    KEYS.iter()
        .find(|info| info.setting == setting)
        .expect("every setting has a row")
}

/// The row a key (any alias, any case, outer whitespace ignored) belongs to.
pub(crate) fn lookup(key: &str) -> Option<&'static KeyInfo> {
    let key = key.trim();
    KEYS.iter().find(|info| {
        info.aliases
            .iter()
            .any(|alias| alias.eq_ignore_ascii_case(key))
    })
}

/// The canonical name of `key` if it is a known key; `None` otherwise (unknown text may be
/// a fragment of a misquoted secret and is never shown).
pub(crate) fn known_name(key: &str) -> Option<&'static str> {
    lookup(key).map(|info| info.canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_unique_and_every_setting_has_a_row() {
        let mut seen = std::collections::HashSet::new();
        for row in KEYS {
            for alias in row.aliases {
                assert!(
                    seen.insert(alias.to_ascii_lowercase()),
                    "{alias} appears twice"
                );
            }
            assert!(
                row.aliases
                    .iter()
                    .any(|alias| alias.eq_ignore_ascii_case(row.canonical)),
                "{} is one of its aliases",
                row.canonical
            );
            assert_eq!(info(row.setting).canonical, row.canonical);
        }
        assert_eq!(lookup(" service uri ").unwrap().setting, Setting::Url);
        assert_eq!(
            lookup("CERTTHUMBPRINT").unwrap().setting,
            Setting::Thumbprint
        );
        assert!(lookup("Passwrd").is_none());
    }
}
