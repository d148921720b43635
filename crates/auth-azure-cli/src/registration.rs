//! The Azure CLI grant as configuration knows it: used when named (`Grant=azure-cli` in a
//! connection string, `--grant azure-cli` on the command line), reading only the tenant.
//! `d365-connect` registers [`REGISTRATION`] with its `azure-cli` feature.

use std::sync::Arc;

use d365_auth_core::grant::{GrantConfig, GrantRegistration};
use d365_auth_core::{ConfigError, Tenant, TokenProvider};

use crate::provider::AzureCli;

/// The Azure CLI grant, registered with configuration.
///
/// It is used only when configuration names it: it is the developer's own sign-in, which
/// another configuration must never fall into silently. It reads the tenant
/// ([`GrantConfig::tenant`], `TenantId` or `AZURE_TENANT_ID`, else the tenant of a whole
/// `Authority`) when that names one directory (`organizations` and `common` leave the
/// choice to the Azure CLI). It needs no authority, client id or secret: `az` has its own
/// sign-in and its own cloud (`az cloud set`), so those settings are not used.
///
/// # Examples
///
/// ```
/// use d365_auth_azure_cli::REGISTRATION;
/// use d365_auth_core::grant::{GrantConfig, GrantRegistration};
/// use d365_auth_core::Tenant;
///
/// let mut config = GrantConfig::default();
/// config.tenant = Some(Tenant::parse("contoso.onmicrosoft.com")?);
/// assert!(!REGISTRATION.accepts(&config));
/// let grant = REGISTRATION.build(&config)?;
/// assert_eq!(grant.cache_key(), "azure_cli|contoso.onmicrosoft.com|default");
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct AzureCliRegistration;

/// The registration `d365-connect` lists.
pub static REGISTRATION: AzureCliRegistration = AzureCliRegistration;

impl GrantRegistration for AzureCliRegistration {
    fn name(&self) -> &'static str {
        "azure-cli"
    }

    fn description(&self) -> &'static str {
        "the developer's own `az login`: a delegated token from the Azure CLI, for local development and scripts; never in production"
    }

    fn accepts(&self, _config: &GrantConfig) -> bool {
        // The developer's own sign-in: only when named (or, later, by a default chain).
        false
    }

    fn needs_authority(&self) -> bool {
        // `az` knows its cloud and signs in by itself.
        false
    }

    fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError> {
        let tenant = config
            .tenant
            .as_ref()
            .or_else(|| {
                config
                    .authority
                    .as_ref()
                    .and_then(|authority| authority.tenant())
            })
            .filter(|tenant| tenant.is_specific())
            .map(Tenant::as_str);
        let mut builder = AzureCli::builder();
        if let Some(tenant) = tenant {
            builder = builder.tenant(tenant);
        }
        Ok(Arc::new(builder.build()?))
    }
}
