//! A grant of your own: a `TokenProvider` written against `d365_auth_core::grant` — the
//! token endpoint client, the form, the answer's parsing — with no grant crate involved,
//! then used by the Web API client like any other. Here it sends the client credentials
//! grant with the secret in the form, which is what `d365-auth-client-credentials` does
//! with many more options; `docs/extending.md` walks through a complete grant crate.
//!
//! It starts the d365 emulator in-process, so it runs with no setup:
//!
//! ```text
//! cargo run -p d365-webapi --example custom_grant
//! ```

#![allow(clippy::print_stdout)]

use d365_auth_core::grant::{
    ClientCredential, ClientKind, TokenEndpointClient, TokenForm, credential_fingerprint,
};
use d365_auth_core::{
    AccessToken, AuthError, Authority, EndpointVersion, Grant, Tenant, TokenProvider, TokenRequest,
    async_trait,
};
use d365_emulator::Emulator;
use d365_webapi::Client;
use secrecy::{ExposeSecret as _, SecretString};

/// The grant: where to ask, who asks, and the secret (never in `Debug`: `SecretString`).
#[derive(Debug)]
struct MySecretGrant {
    authority: Authority,
    client_id: String,
    secret: SecretString,
    http: TokenEndpointClient,
}

#[async_trait]
impl TokenProvider for MySecretGrant {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        let endpoint = self.authority.token_endpoint(EndpointVersion::V2);
        let form = TokenForm::new("client_credentials", &self.client_id)
            .credential(ClientCredential::SecretPost(&self.secret))
            .target(request, ClientKind::Confidential, &endpoint);
        self.http
            .send(&endpoint, &form)
            .await?
            .into_access_token(request)
    }

    fn grant(&self) -> Grant {
        Grant::new("client_credentials")
    }

    fn cache_key(&self) -> String {
        // A token got with another secret must never be served to this provider.
        let secret =
            credential_fingerprint("client_secret", self.secret.expose_secret().as_bytes());
        format!("{}|{}|{secret}", self.authority, self.client_id)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder().start().await?;
    let app = emulator
        .seeded()
        .expect("the emulator seeds a confidential app")
        .confidential_app
        .clone();

    let grant = MySecretGrant {
        authority: Authority::custom(emulator.base_url(), Tenant::parse(emulator.tenant_id())?)?,
        client_id: app.client_id.clone(),
        secret: app.secret.clone(),
        http: TokenEndpointClient::new(),
    };
    let client = Client::builder(emulator.base_url(), grant).build()?;
    let me = client.who_am_i().await?;
    println!("the custom grant's token works: WhoAmI says {}", me.user_id);
    emulator.shutdown().await;
    Ok(())
}
