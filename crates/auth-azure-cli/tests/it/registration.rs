//! The grant as configuration builds it: named only, no authority, the tenant of
//! `GrantConfig` (or of a whole authority) passed on when it names one directory.

use d365_auth_azure_cli::REGISTRATION;
use d365_auth_core::grant::{GrantConfig, GrantRegistration as _};
use d365_auth_core::{Authority, Resource, Tenant};

fn config_with(tenant: Option<&str>) -> GrantConfig {
    let mut config = GrantConfig::default();
    config.grant = Some("azure-cli".to_owned());
    config.auth_type = Some("OAuth".to_owned());
    config.organization = Some(Resource::parse("https://contoso.crm.dynamics.com").unwrap());
    config.tenant = tenant.map(|tenant| Tenant::parse(tenant).unwrap());
    config
}

#[test]
fn the_registration_says_what_the_grant_is() {
    assert_eq!(REGISTRATION.name(), "azure-cli");
    assert!(REGISTRATION.description().contains("az login"));
    assert!(REGISTRATION.description().contains("never in production"));
    assert!(REGISTRATION.keys().is_empty());
    assert!(!REGISTRATION.needs_authority());
    // Only when named: a configuration with a user and password is the password grant's.
    let mut config = config_with(Some("contoso.onmicrosoft.com"));
    config.set_text("Username", "ana@contoso.com");
    assert!(!REGISTRATION.accepts(&config));
    assert!(!REGISTRATION.accepts(&GrantConfig::default()));
    assert!(REGISTRATION.check(&config).is_ok());
}

#[test]
fn build_passes_the_tenant_of_the_configuration() {
    let grant = REGISTRATION
        .build(&config_with(Some("Contoso.onmicrosoft.com")))
        .unwrap();
    assert_eq!(grant.grant().as_str(), "azure_cli");
    assert_eq!(
        grant.cache_key(),
        "azure_cli|contoso.onmicrosoft.com|default"
    );
    assert!(format!("{grant:?}").contains("contoso.onmicrosoft.com"));

    let grant = REGISTRATION.build(&config_with(None)).unwrap();
    assert_eq!(grant.cache_key(), "azure_cli|default|default");

    // `organizations` is no directory: the Azure CLI's own default is used.
    let grant = REGISTRATION
        .build(&config_with(Some("organizations")))
        .unwrap();
    assert_eq!(grant.cache_key(), "azure_cli|default|default");
}

#[test]
fn build_reads_the_tenant_of_a_whole_authority() {
    let mut config = config_with(None);
    config.authority = Some(Authority::public_cloud(
        Tenant::parse("00000000-0000-0000-0000-00000000000a").unwrap(),
    ));
    let grant = REGISTRATION.build(&config).unwrap();
    assert_eq!(
        grant.cache_key(),
        "azure_cli|00000000-0000-0000-0000-00000000000a|default"
    );
}
