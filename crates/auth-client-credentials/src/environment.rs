//! The azure-identity environment variables, so a grant can be configured the way
//! `EnvironmentCredential` and `WorkloadIdentityCredential` are.

use std::path::Path;

use secrecy::SecretString;

use crate::provider::ClientCredentialsBuilder;

impl ClientCredentialsBuilder {
    /// Reads `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_AUTHORITY_HOST` and one
    /// credential: `AZURE_CLIENT_SECRET`, `AZURE_CLIENT_CERTIFICATE_PATH` (PEM with key and
    /// certificate, or `.pfx`/`.p12` with `AZURE_CLIENT_CERTIFICATE_PASSWORD`; chain sent when
    /// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` is `true` or `1`), or
    /// `AZURE_FEDERATED_TOKEN_FILE`. Variables that are unset leave the builder as it was;
    /// `build` reports what is still missing.
    pub fn with_environment(self) -> Self {
        self.with_variables(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }

    pub(crate) fn with_variables(mut self, var: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(tenant) = var("AZURE_TENANT_ID") {
            self = self.tenant(tenant);
        }
        if let Some(client_id) = var("AZURE_CLIENT_ID") {
            self = self.client_id(client_id);
        }
        if let Some(host) = var("AZURE_AUTHORITY_HOST") {
            self = self.authority_host(host);
        }
        if let Some(secret) = var("AZURE_CLIENT_SECRET") {
            self = self.client_secret(SecretString::from(secret));
        } else if let Some(path) = var("AZURE_CLIENT_CERTIFICATE_PATH") {
            let path = Path::new(&path);
            let is_archive = path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| {
                    ext.eq_ignore_ascii_case("pfx") || ext.eq_ignore_ascii_case("p12")
                });
            self = if is_archive {
                let password = SecretString::from(
                    var("AZURE_CLIENT_CERTIFICATE_PASSWORD").unwrap_or_default(),
                );
                self.certificate_pkcs12_file(path, &password)
            } else {
                self.certificate_pem_files(path, path)
            };
            let send_chain = var("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
                .is_some_and(|value| value == "1" || value.eq_ignore_ascii_case("true"));
            self = self.send_certificate_chain(send_chain);
        } else if let Some(path) = var("AZURE_FEDERATED_TOKEN_FILE") {
            self = self.federated_token_file(path);
        }
        self
    }
}

/// Whether the environment holds enough for client credentials (a client id and one
/// credential), so callers can choose this grant without building it.
#[must_use]
pub fn environment_configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.is_empty());
    set("AZURE_CLIENT_ID")
        && (set("AZURE_CLIENT_SECRET")
            || set("AZURE_CLIENT_CERTIFICATE_PATH")
            || set("AZURE_FEDERATED_TOKEN_FILE"))
}
