//! Secrets never reach a log line, `Debug`, or an error message: every grant form is sent
//! at TRACE level against answers that succeed and fail, and everything observable is
//! searched for each secret.

use d365_auth_core::grant::{ClientCredential, ClientKind, TokenEndpointClient, TokenForm};
use d365_auth_core::{Authority, EndpointVersion, Tenant, TokenRequest};
use d365_test_support::{Canned, CannedServer, SecretWatch};
use secrecy::SecretString;

const SECRETS: &[&str] = &[
    "CLIENT-SECRET-VALUE",
    "USER-PASSWORD-VALUE",
    "REFRESH-TOKEN-VALUE",
    "ASSERTION-VALUE",
    "DEVICE-CODE-VALUE",
    "ACCESS-TOKEN-VALUE",
    "NEW-REFRESH-VALUE",
];

#[tokio::test]
async fn no_secret_in_logs_debug_or_errors() {
    let mut watch = SecretWatch::start(SECRETS);

    let success = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"ACCESS-TOKEN-VALUE","refresh_token":"NEW-REFRESH-VALUE"}"#;
    let failure = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#;
    let truncated = r#"{"token_type":"Bearer","access_token":"ACCESS-TOKEN-VAL"#;
    let answers = [
        Canned::json(200, success),
        Canned::json(401, failure),
        Canned::json(200, truncated),
    ];

    let secret = SecretString::from("CLIENT-SECRET-VALUE");
    let password = SecretString::from("USER-PASSWORD-VALUE");
    let refresh = SecretString::from("REFRESH-TOKEN-VALUE");
    let assertion = SecretString::from("ASSERTION-VALUE");
    let device_code = SecretString::from("DEVICE-CODE-VALUE");
    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();

    for answer in answers {
        let server = CannedServer::start(vec![answer]).await;
        let authority = Authority::custom(&server.base, Tenant::Organizations).unwrap();
        let endpoint = authority.token_endpoint(EndpointVersion::V2);
        let forms = [
            TokenForm::new("client_credentials", "app")
                .credential(ClientCredential::SecretPost(&secret)),
            TokenForm::new("client_credentials", "app")
                .credential(ClientCredential::SecretBasic(&secret)),
            TokenForm::new("client_credentials", "app")
                .credential(ClientCredential::Assertion(&assertion)),
            TokenForm::new("password", "app")
                .param("username", "ana@contoso.com")
                .secret_param("password", &password),
            TokenForm::refresh_token("app", &refresh)
                .credential(ClientCredential::SecretPost(&secret)),
            TokenForm::new("urn:ietf:params:oauth:grant-type:device_code", "app")
                .secret_param("device_code", &device_code),
        ];
        for form in forms {
            let form = form.target(&request, ClientKind::Confidential, &endpoint);
            watch.see_debug(&form);
            match TokenEndpointClient::new().send(&endpoint, &form).await {
                Ok(response) => {
                    watch.see_debug(&response);
                    let token = response.into_access_token(&request).unwrap();
                    watch.see_debug(&token);
                    watch.see_debug(&token.authorization_header());
                }
                Err(error) => watch.see_outcome(&Err::<(), _>(error)),
            }
        }
    }
    assert!(
        watch.everything().contains("token_request"),
        "TRACE logging was not captured"
    );
    watch.assert_clean_with_logs();
}
