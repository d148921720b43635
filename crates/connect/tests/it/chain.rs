//! The default credential chain: the first link that can answer answers and is kept to;
//! links that do not exist here pass; a real failure stops the chain; when none answers,
//! one error says why each could not; the remembered sign-in answers only from its store.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use d365_auth_core::grant::GrantConfig;
use d365_auth_core::store::MemoryStore;
use d365_auth_core::{
    AccessToken, AuthError, ErrorKind, Grant, Resource, TokenCache, TokenProvider, TokenRequest,
    async_trait,
};
use d365_connect::{ConnectOptions, DefaultChain, Registry, RememberedSignIn};
use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;

/// A person's grant that counts its sign-ins.
#[derive(Debug, Default)]
struct Person {
    sign_ins: AtomicUsize,
}

#[async_trait]
impl TokenProvider for Person {
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken, AuthError> {
        self.sign_ins.fetch_add(1, Ordering::SeqCst);
        Ok(AccessToken::builder(
            "a-person-token".to_owned().into(),
            SystemTime::now() + Duration::from_secs(3600),
            request.resource().clone(),
        )
        .build()
        .unwrap())
    }

    fn grant(&self) -> Grant {
        Grant::new("person")
    }

    fn cache_key(&self) -> String {
        "person".to_owned()
    }
}

fn org_config(url: &str) -> GrantConfig {
    let mut config = GrantConfig::default();
    config.organization = Some(Resource::parse(url).unwrap());
    config
}

fn chain(
    config: &GrantConfig,
    options: &ConnectOptions,
    variables: &[(&str, String)],
) -> DefaultChain {
    let map: HashMap<String, String> = variables
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    DefaultChain::with_variables(config, options, &Registry::enabled(), move |name| {
        map.get(name).cloned()
    })
}

#[tokio::test]
async fn the_environment_answers_first_and_is_kept_to() {
    let emulator = Emulator::builder().start().await.unwrap();
    let app = emulator.seeded().unwrap().confidential_app.clone();
    let person = Arc::new(Person::default());
    let options = ConnectOptions::new().extension(RememberedSignIn::new(
        person.clone(),
        Arc::new(MemoryStore::new()),
    ));
    let chain = chain(
        &org_config(emulator.base_url()),
        &options,
        &[
            ("AZURE_TENANT_ID", emulator.tenant_id().to_owned()),
            ("AZURE_AUTHORITY_HOST", emulator.base_url().to_owned()),
            ("AZURE_CLIENT_ID", app.client_id.clone()),
            ("AZURE_CLIENT_SECRET", app.secret.expose_secret().to_owned()),
        ],
    );
    let links: Vec<&str> = chain.links().collect();
    assert_eq!(links.first(), Some(&"the environment"));
    assert_eq!(links.last(), Some(&"the remembered d365 login"));
    let request = TokenRequest::for_url(emulator.base_url()).unwrap();
    let token = chain.request_token(&request).await.unwrap();
    let validated = emulator
        .token_validator()
        .validate(token.secret().expose_secret(), emulator.base_url())
        .unwrap();
    assert!(validated.is_app_only());
    chain.request_token(&request).await.unwrap();
    assert_eq!(person.sign_ins.load(Ordering::SeqCst), 0);
    assert!(format!("{chain:?}").contains("chosen: Some(\"the environment\")"));
    emulator.shutdown().await;
}

#[tokio::test]
async fn with_nothing_here_one_error_says_why_each_link_could_not() {
    let options = ConnectOptions::new().extension(RememberedSignIn::new(
        Arc::new(Person::default()),
        Arc::new(MemoryStore::new()),
    ));
    let chain = chain(
        &org_config("https://contoso.crm.dynamics.com"),
        &options,
        &[],
    );
    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();
    let error = chain.request_token(&request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CredentialUnavailable, "{error}");
    let text = error.to_string();
    for link in chain.links() {
        assert!(text.contains(link), "{link} is named: {text}");
    }
    assert!(text.contains("run `d365 login`"), "{text}");
}

#[tokio::test]
async fn the_remembered_sign_in_answers_from_its_store_without_a_prompt() {
    let store = Arc::new(MemoryStore::new());
    let person = Arc::new(Person::default());
    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();
    // `d365 login` signed in earlier, in another process: the store has the token.
    TokenCache::builder(person.clone() as Arc<dyn TokenProvider>)
        .store(store.clone())
        .build()
        .get(&request)
        .await
        .unwrap();
    assert_eq!(person.sign_ins.load(Ordering::SeqCst), 1);
    let options = ConnectOptions::new().extension(RememberedSignIn::new(person.clone(), store));
    let chain = chain(
        &org_config("https://contoso.crm.dynamics.com"),
        &options,
        &[],
    );
    let token = chain.request_token(&request).await.unwrap();
    assert_eq!(token.secret().expose_secret(), "a-person-token");
    assert_eq!(person.sign_ins.load(Ordering::SeqCst), 1, "no new sign-in");
}

#[tokio::test]
async fn a_real_failure_stops_the_chain() {
    let emulator = Emulator::builder().start().await.unwrap();
    let app = emulator.seeded().unwrap().confidential_app.clone();
    let store = Arc::new(MemoryStore::new());
    let person = Arc::new(Person::default());
    let options = ConnectOptions::new().extension(RememberedSignIn::new(person.clone(), store));
    let chain = chain(
        &org_config(emulator.base_url()),
        &options,
        &[
            ("AZURE_TENANT_ID", emulator.tenant_id().to_owned()),
            ("AZURE_AUTHORITY_HOST", emulator.base_url().to_owned()),
            ("AZURE_CLIENT_ID", app.client_id.clone()),
            ("AZURE_CLIENT_SECRET", "a-wrong-secret".to_owned()),
        ],
    );
    let request = TokenRequest::for_url(emulator.base_url()).unwrap();
    let error = chain.request_token(&request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidClientSecret, "{error}");
    assert!(!error.to_string().contains("a-wrong-secret"));
    assert_eq!(
        person.sign_ins.load(Ordering::SeqCst),
        0,
        "nothing after a real failure"
    );
    emulator.shutdown().await;
}

#[test]
fn the_chain_is_a_grant_of_configuration() {
    let parsed = d365_connect::ConnectionString::parse(
        "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Grant=default",
    )
    .unwrap();
    assert_eq!(parsed.grant().name(), "default");
    assert!(!parsed.grant().needs_authority());
}
