//! [`AuthoritySettings`]: what a grant's builder collects about where tokens come from —
//! a tenant and a cloud, a custom host, AD FS, a complete authority, or a bare token
//! endpoint — and the one place that turns it into an [`Authority`] and a
//! [`TokenEndpoint`], so every grant accepts the same settings with the same errors.

use crate::authority::{Authority, Cloud, EndpointVersion, Tenant, TokenEndpoint};
use crate::error::ConfigError;

#[derive(Clone, Debug, Default)]
enum Source {
    #[default]
    PublicCloud,
    Cloud(Cloud),
    Host(String),
    Adfs(String),
    Authority(Authority),
    Endpoint(TokenEndpoint),
}

/// Where a grant gets its tokens, as its builder collects it. A grant's builder keeps one
/// and forwards its `tenant`, `cloud`, `authority_host`, `adfs`, `authority`,
/// `token_endpoint` and `endpoint_version` methods to it, then calls
/// [`resolve`](Self::resolve) in `build`.
///
/// # Examples
///
/// ```
/// use d365_auth_core::{Tenant};
/// use d365_auth_core::grant::{AuthoritySettings};
///
/// let mut settings = AuthoritySettings::default();
/// settings.set_tenant("contoso.onmicrosoft.com");
/// let resolved = settings.resolve(|_| Ok(()))?;
/// assert_eq!(
///     resolved.endpoint.url().as_str(),
///     "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
/// );
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AuthoritySettings {
    tenant: Option<String>,
    source: Source,
    version: EndpointVersion,
}

/// The authority and endpoint [`AuthoritySettings::resolve`] settled on.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ResolvedAuthority {
    /// The authority; `None` when a bare token endpoint was given.
    pub authority: Option<Authority>,
    /// The token endpoint to post to.
    pub endpoint: TokenEndpoint,
}

impl AuthoritySettings {
    /// The tenant (its id, a verified domain, or a keyword); parsed by `resolve`.
    pub fn set_tenant(&mut self, tenant: impl Into<String>) {
        self.tenant = Some(tenant.into());
    }

    /// A Microsoft cloud (public unless set).
    pub fn set_cloud(&mut self, cloud: Cloud) {
        self.source = Source::Cloud(cloud);
    }

    /// A host speaking Entra ID's protocol (the d365 emulator, a proxy); the tenant
    /// follows it in the path.
    pub fn set_host(&mut self, base_url: impl Into<String>) {
        self.source = Source::Host(base_url.into());
    }

    /// On-premises AD FS; no tenant.
    pub fn set_adfs(&mut self, url: impl Into<String>) {
        self.source = Source::Adfs(url.into());
    }

    /// A complete authority; the tenant setting is then ignored.
    pub fn set_authority(&mut self, authority: Authority) {
        self.source = Source::Authority(authority);
    }

    /// Any OAuth 2.0 token endpoint, for servers not shaped like Entra ID.
    pub fn set_token_endpoint(&mut self, endpoint: TokenEndpoint) {
        self.source = Source::Endpoint(endpoint);
    }

    /// The Entra endpoint version (v2 unless set; AD FS has one endpoint).
    pub fn set_version(&mut self, version: EndpointVersion) {
        self.version = version;
    }

    /// Resolves the settings. `check_tenant` refuses the tenants this grant cannot use
    /// (for example `common`), with the grant's own reason; it sees every tenant, the one
    /// set and the one inside a complete authority.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when a tenant is needed and missing or invalid, a URL is invalid,
    /// or `check_tenant` refuses.
    pub fn resolve(
        &self,
        check_tenant: impl Fn(&Tenant) -> Result<(), ConfigError>,
    ) -> Result<ResolvedAuthority, ConfigError> {
        let tenant = || -> Result<Tenant, ConfigError> {
            let text = self.tenant.as_deref().ok_or_else(|| ConfigError::Missing {
                setting: "tenant",
                fix: "give the directory (tenant) id, or a verified domain such as contoso.onmicrosoft.com".to_owned(),
            })?;
            let tenant = Tenant::parse(text)?;
            check_tenant(&tenant)?;
            Ok(tenant)
        };
        let authority = match &self.source {
            Source::Endpoint(endpoint) => {
                return Ok(ResolvedAuthority {
                    authority: None,
                    endpoint: endpoint.clone(),
                });
            }
            Source::PublicCloud => Authority::public_cloud(tenant()?),
            Source::Cloud(cloud) => Authority::cloud(*cloud, tenant()?),
            Source::Host(host) => Authority::custom(host, tenant()?)?,
            Source::Adfs(url) => Authority::adfs(url)?,
            Source::Authority(authority) => {
                if let Some(tenant) = authority.tenant() {
                    check_tenant(tenant)?;
                }
                authority.clone()
            }
        };
        Ok(ResolvedAuthority {
            endpoint: authority.token_endpoint(self.version),
            authority: Some(authority),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refuse_common(tenant: &Tenant) -> Result<(), ConfigError> {
        match tenant {
            Tenant::Common => Err(ConfigError::Invalid {
                setting: "tenant",
                problem: "common".into(),
                fix: "x".into(),
            }),
            _ => Ok(()),
        }
    }

    #[test]
    fn each_source_resolves_and_tenant_rules_apply_everywhere() {
        let mut settings = AuthoritySettings::default();
        assert!(
            settings
                .resolve(refuse_common)
                .unwrap_err()
                .to_string()
                .contains("tenant is required")
        );
        settings.set_tenant("common");
        assert!(settings.resolve(refuse_common).is_err());
        settings.set_authority(Authority::public_cloud(Tenant::Common));
        assert!(
            settings.resolve(refuse_common).is_err(),
            "the tenant inside an authority is checked too"
        );
        settings.set_tenant("contoso.com");
        settings.set_cloud(Cloud::China);
        settings.set_version(EndpointVersion::V1);
        assert_eq!(
            settings
                .resolve(refuse_common)
                .unwrap()
                .endpoint
                .url()
                .as_str(),
            "https://login.chinacloudapi.cn/contoso.com/oauth2/token"
        );
        settings.set_host("http://127.0.0.1:9");
        assert_eq!(
            settings
                .resolve(refuse_common)
                .unwrap()
                .endpoint
                .url()
                .as_str(),
            "http://127.0.0.1:9/contoso.com/oauth2/token"
        );
        settings.set_adfs("https://adfs.contoso.com");
        let resolved = settings.resolve(refuse_common).unwrap();
        assert!(resolved.authority.unwrap().is_adfs());
        let endpoint = TokenEndpoint::new(
            "https://idp.example/token".parse().unwrap(),
            crate::authority::TargetParameter::Scope,
        );
        settings.set_token_endpoint(endpoint.clone());
        let resolved = settings.resolve(refuse_common).unwrap();
        assert!(resolved.authority.is_none());
        assert_eq!(resolved.endpoint, endpoint);
    }
}
