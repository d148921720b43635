//! The managed identity as configuration knows it: taken by itself when App Service's
//! variables are set (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`), otherwise used when named
//! (`Grant=managed-identity` in a connection string, `--grant managed-identity` on the
//! command line). `d365-connect` registers [`REGISTRATION`] with its `managed-identity`
//! feature.

use std::sync::Arc;

use d365_auth_core::grant::{GrantConfig, GrantRegistration, SettingKey};
use d365_auth_core::{ConfigError, TokenProvider};
use secrecy::SecretString;

use crate::builder::ManagedIdentityBuilder;
use crate::identity::ManagedIdentityId;
use crate::provider::ManagedIdentity;
use crate::source::{self, endpoint_url, header_value};

/// A user-assigned identity by its object (principal) id.
const OBJECT_ID: SettingKey = SettingKey::new(
    "ManagedIdentityObjectId",
    &["ManagedIdentityObjectId", "ManagedIdentityPrincipalId"],
);
/// A user-assigned identity by its Azure resource id.
const RESOURCE_ID: SettingKey =
    SettingKey::new("ManagedIdentityResourceId", &["ManagedIdentityResourceId"]);
/// App Service's token endpoint.
const IDENTITY_ENDPOINT: SettingKey = SettingKey::new("IdentityEndpoint", &["IdentityEndpoint"])
    .environment(source::IDENTITY_ENDPOINT);
/// App Service's header: a secret the platform rotates.
const IDENTITY_HEADER: SettingKey = SettingKey::new("IdentityHeader", &["IdentityHeader"])
    .secret()
    .environment(source::IDENTITY_HEADER);
/// The IMDS host, when it is not `http://169.254.169.254`.
const IMDS_ENDPOINT: SettingKey = SettingKey::new(
    "ImdsEndpoint",
    &["ImdsEndpoint", "PodIdentityAuthorityHost"],
)
.environment(source::POD_IDENTITY_AUTHORITY_HOST);

const KEYS: &[SettingKey] = &[
    OBJECT_ID,
    RESOURCE_ID,
    IDENTITY_ENDPOINT,
    IDENTITY_HEADER,
    IMDS_ENDPOINT,
];

/// The common key that names a user-assigned identity by client id (`ClientId`,
/// `AZURE_CLIENT_ID`), as azure-identity reads `AZURE_CLIENT_ID`.
const CLIENT_ID: &str = "ClientId";

/// The managed identity, registered with configuration.
///
/// | key (connection string) | environment variable | what it is |
/// |---|---|---|
/// | `ClientId` (common) | `AZURE_CLIENT_ID` | a user-assigned identity by client id |
/// | `ManagedIdentityObjectId` (`ManagedIdentityPrincipalId`) | — | a user-assigned identity by object id |
/// | `ManagedIdentityResourceId` | — | a user-assigned identity by Azure resource id |
/// | `IdentityEndpoint` | `IDENTITY_ENDPOINT` | App Service's token endpoint |
/// | `IdentityHeader` (secret) | `IDENTITY_HEADER` | App Service's header |
/// | `ImdsEndpoint` (`PodIdentityAuthorityHost`) | `AZURE_POD_IDENTITY_AUTHORITY_HOST` | the IMDS host, not probed |
///
/// It takes a configuration by itself only when it has no `AuthType` and App Service's
/// endpoint and header are both set (the azure-identity environment of an App Service or
/// Functions app); otherwise it is used when named: `Grant=managed-identity`,
/// `--grant managed-identity`, `D365_GRANT=managed-identity`. With no endpoint in the
/// configuration, [`build`](GrantRegistration::build) finds it where the program runs
/// (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, `AZURE_POD_IDENTITY_AUTHORITY_HOST`, else
/// `http://169.254.169.254`), as azure-identity does: a managed identity belongs to the
/// host, so `Grant=managed-identity` means the identity of the host the program runs on.
///
/// It needs no authority (the endpoint knows the tenant) and reads no client secret. It
/// does not use [`GrantConfig::http`]: that client may go through a proxy, which a managed
/// identity endpoint must never be reached through, and a `reqwest::Client` cannot say
/// whether it does; the grant uses its own client without one.
#[derive(Debug)]
#[non_exhaustive]
pub struct ManagedIdentityRegistration;

/// The registration `d365-connect` lists.
pub static REGISTRATION: ManagedIdentityRegistration = ManagedIdentityRegistration;

impl GrantRegistration for ManagedIdentityRegistration {
    fn name(&self) -> &'static str {
        "managed-identity"
    }

    fn description(&self) -> &'static str {
        "a program in Azure (VM, AKS, App Service, Functions) gets app-only tokens from its managed identity, with no secret to keep"
    }

    fn keys(&self) -> &'static [SettingKey] {
        KEYS
    }

    fn accepts(&self, config: &GrantConfig) -> bool {
        config.auth_type.is_none()
            && config.has(IDENTITY_ENDPOINT.name)
            && config.has(IDENTITY_HEADER.name)
    }

    fn check(&self, config: &GrantConfig) -> Result<(), ConfigError> {
        configured_source(config)?;
        identity(config)?;
        Ok(())
    }

    fn needs_authority(&self) -> bool {
        false
    }

    fn build(&self, config: &GrantConfig) -> Result<Arc<dyn TokenProvider>, ConfigError> {
        let builder = match configured_source(config)? {
            Some(configured) => configured,
            None => ManagedIdentity::builder().from_environment(),
        };
        Ok(Arc::new(builder.identity(identity(config)?).build()?))
    }
}

/// The builder with the source the configuration names, checked with its keys' names;
/// `None` when it names none.
fn configured_source(config: &GrantConfig) -> Result<Option<ManagedIdentityBuilder>, ConfigError> {
    let header = config
        .secret(IDENTITY_HEADER.name)
        .cloned()
        .or_else(|| config.text(IDENTITY_HEADER.name).map(SecretString::from));
    match (config.text(IDENTITY_ENDPOINT.name), header) {
        (Some(endpoint), Some(header)) => {
            endpoint_url(endpoint, IDENTITY_ENDPOINT.name)?;
            header_value(&header, IDENTITY_HEADER.name)?;
            Ok(Some(ManagedIdentity::builder().app_service(endpoint, header)))
        }
        (Some(_), None) => Err(ConfigError::Missing {
            setting: IDENTITY_HEADER.name,
            fix: "App Service and Functions set IDENTITY_ENDPOINT and IDENTITY_HEADER together: give both, or neither to use the instance metadata endpoint (Azure Arc and Service Fabric identities are not supported)".to_owned(),
        }),
        (None, Some(_)) => Err(ConfigError::Missing {
            setting: IDENTITY_ENDPOINT.name,
            fix: "App Service and Functions set IDENTITY_ENDPOINT and IDENTITY_HEADER together: give both, or neither to use the instance metadata endpoint".to_owned(),
        }),
        (None, None) => match config.text(IMDS_ENDPOINT.name) {
            Some(host) => {
                endpoint_url(host, IMDS_ENDPOINT.name)?;
                // A host named, as AZURE_POD_IDENTITY_AUTHORITY_HOST names it, is not probed.
                Ok(Some(ManagedIdentity::builder().imds_endpoint(host).probe(false)))
            }
            None => Ok(None),
        },
    }
}

/// The identity the configuration names: at most one of the client id, the object id and
/// the resource id; none is the system-assigned identity.
fn identity(config: &GrantConfig) -> Result<ManagedIdentityId, ConfigError> {
    let client_id = config
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let named: Vec<(&'static str, ManagedIdentityId)> = [
        client_id.map(|id| (CLIENT_ID, ManagedIdentityId::ClientId(id.to_owned()))),
        config
            .text(OBJECT_ID.name)
            .map(|id| (OBJECT_ID.name, ManagedIdentityId::ObjectId(id.to_owned()))),
        config.text(RESOURCE_ID.name).map(|id| {
            (
                RESOURCE_ID.name,
                ManagedIdentityId::ResourceId(id.to_owned()),
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    match named.as_slice() {
        [] => Ok(ManagedIdentityId::System),
        [(setting, id)] => {
            id.check(setting)?;
            Ok(id.clone())
        }
        [(first, _), (second, _), ..] => Err(ConfigError::Invalid {
            setting: second,
            problem: format!("{first} and {second} both name a user-assigned identity"),
            fix: "name the identity once: by its client id, its object id or its resource id"
                .to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imds_host_named_in_configuration_is_not_probed() {
        let mut config = GrantConfig::default();
        config.set_text("ImdsEndpoint", "http://127.0.0.1:50342");
        let grant = configured_source(&config)
            .unwrap()
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(grant.probe_timeout(), None);
        assert_eq!(
            grant.token_endpoint().as_str(),
            "http://127.0.0.1:50342/metadata/identity/oauth2/token"
        );
        assert!(
            configured_source(&GrantConfig::default())
                .unwrap()
                .is_none()
        );
    }
}
