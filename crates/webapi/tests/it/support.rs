//! What the Web API tests against the emulator share: the grant of its seeded
//! confidential application.

use d365_auth_client_credentials::ClientCredentials;
use d365_emulator::Emulator;

/// The client credentials grant of `emulator`'s seeded confidential application (a System
/// Administrator).
pub(crate) fn admin_grant(emulator: &Emulator) -> ClientCredentials {
    let app = emulator.seeded().unwrap().confidential_app.clone();
    app_grant(emulator, &app.client_id, app.secret)
}

/// The client credentials grant of the application `client_id` with `secret`.
pub(crate) fn app_grant(
    emulator: &Emulator,
    client_id: &str,
    secret: secrecy::SecretString,
) -> ClientCredentials {
    ClientCredentials::builder()
        .authority_host(emulator.base_url())
        .tenant(emulator.tenant_id())
        .client_id(client_id)
        .client_secret(secret)
        .build()
        .unwrap()
}
