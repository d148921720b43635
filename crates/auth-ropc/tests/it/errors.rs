//! The errors users of the password grant hit, each with its kind and the hint that says
//! what to do: Entra's refusals as they come back through this grant, and the mistakes the
//! builder catches before any request.

use d365_auth_core::{Authority, ErrorKind, TokenProvider, TokenRequest};
use d365_auth_ropc::UsernamePassword;
use d365_test_support::{Canned, Server};

fn request() -> TokenRequest {
    TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap()
}

struct Case {
    status: u16,
    error: &'static str,
    code: u32,
    text: &'static str,
    kind: ErrorKind,
    hint: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        status: 400,
        error: "invalid_grant",
        code: 50126,
        text: "Error validating credentials due to invalid username or password.",
        kind: ErrorKind::InvalidUserCredentials,
        hint: &["check the user name (UPN) and the password", "federated"],
    },
    Case {
        status: 400,
        error: "invalid_grant",
        code: 50076,
        text: "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000007-0000-0000-c000-000000000000'.",
        kind: ErrorKind::MfaRequired,
        hint: &["client credentials grant", "device code grant"],
    },
    Case {
        status: 400,
        error: "invalid_grant",
        code: 50079,
        text: "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication.",
        kind: ErrorKind::MfaRegistrationRequired,
        hint: &["client credentials grant", "device code grant"],
    },
    Case {
        status: 400,
        error: "invalid_grant",
        code: 50057,
        text: "The user account is disabled.",
        kind: ErrorKind::AccountDisabled,
        hint: &["enable the account"],
    },
    Case {
        status: 401,
        error: "invalid_client",
        code: 7000218,
        text: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        kind: ErrorKind::ClientCredentialMissing,
        hint: &["Allow public client flows", "client secret"],
    },
    Case {
        status: 400,
        error: "invalid_grant",
        code: 65001,
        text: "The user or administrator has not consented to use the application.",
        kind: ErrorKind::ConsentRequired,
        hint: &["admin consent", "user_impersonation"],
    },
    Case {
        status: 400,
        error: "invalid_request",
        code: 9001023,
        text: "The grant type is not supported over the /common or /consumers endpoints.",
        kind: ErrorKind::TenantNotAllowed,
        hint: &["`organizations`"],
    },
    Case {
        status: 400,
        error: "invalid_grant",
        code: 50034,
        text: "The user account does not exist in the directory.",
        kind: ErrorKind::UserNotFound,
        hint: &["user principal name"],
    },
    Case {
        status: 400,
        error: "invalid_grant",
        code: 50055,
        text: "The password is expired.",
        kind: ErrorKind::PasswordExpired,
        hint: &["reset the password"],
    },
];

#[tokio::test]
async fn entra_refusals_reach_the_user_with_their_kind_and_hint() {
    for case in CASES {
        let answer = Canned::entra_error(case.status, case.error, case.code, case.text);
        let server = Server::managed(move |_, _| answer.clone()).await;
        let grant = UsernamePassword::builder()
            .authority_host(&server.base)
            .tenant("organizations")
            .client_id("app")
            .username("ana@contoso.com")
            .password("USER-PASSWORD".into())
            .build()
            .unwrap();
        let error = grant.request_token(&request()).await.unwrap_err();
        let code = case.code;
        assert_eq!(error.kind(), case.kind, "AADSTS{code}: {error}");
        assert_eq!(error.aadsts(), Some(code));
        let hint = error.hint().expect("identity errors have a hint");
        let message = error.to_string();
        for expected in case.hint {
            assert!(
                hint.contains(expected),
                "AADSTS{code}: {expected:?} not in {hint:?}"
            );
        }
        assert!(message.contains(hint), "AADSTS{code}: {message}");
        assert!(message.contains(&format!("AADSTS{code}")), "{message}");
        assert!(message.contains("trace id 0000aaaa"), "{message}");
        assert!(!message.contains("USER-PASSWORD"));
        assert_eq!(server.count("password"), 1);
    }
}

#[tokio::test]
async fn the_mfa_claims_challenge_is_kept() {
    let server = Server::managed(|_, _| {
        Canned::json(
            400,
            r#"{"error":"invalid_grant","error_description":"AADSTS50076: you must use multi-factor authentication.","error_codes":[50076],"suberror":"basic_action","claims":"{\"access_token\":{\"capolids\":{\"essential\":true,\"values\":[\"1\"]}}}"}"#,
        )
    })
    .await;
    let grant = UsernamePassword::builder()
        .authority_host(&server.base)
        .tenant("organizations")
        .client_id("app")
        .username("mfa@contoso.com")
        .password("pw".into())
        .build()
        .unwrap();
    let error = grant.request_token(&request()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MfaRequired);
    let identity = error.identity().unwrap();
    assert_eq!(identity.suberror(), Some("basic_action"));
    assert!(identity.claims().unwrap().contains("capolids"));
}

#[test]
fn common_and_consumers_are_refused_before_anything_is_sent() {
    for tenant in ["common", "consumers"] {
        let error = UsernamePassword::builder()
            .tenant(tenant)
            .client_id("app")
            .username("ana@contoso.com")
            .password("pw".into())
            .build()
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("AADSTS9001023"), "{message}");
        assert!(message.contains("`organizations`"), "{message}");
    }
    let error = UsernamePassword::builder()
        .authority(Authority::parse("https://login.microsoftonline.com/common/v2.0").unwrap())
        .client_id("app")
        .username("ana@contoso.com")
        .password("pw".into())
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("AADSTS9001023"), "{error}");
}

/// What the builder says for each mistake a user makes, as a person reads it.
#[test]
fn builder_messages() {
    let full = || {
        UsernamePassword::builder()
            .tenant("organizations")
            .client_id("app")
            .username("ana@contoso.com")
            .password("USER-PASSWORD".into())
    };
    let cases = [
        ("common tenant", full().tenant("common")),
        ("consumers tenant", full().tenant("consumers")),
        ("malformed tenant", full().tenant("contoso")),
        ("no tenant", {
            UsernamePassword::builder()
                .client_id("app")
                .username("ana@contoso.com")
                .password("USER-PASSWORD".into())
        }),
        ("no client id", full().client_id("  ")),
        ("empty username", full().username("")),
        ("blank password", full().password("   ".into())),
        ("empty client secret", full().client_secret("".into())),
        (
            "plain http host",
            full().authority_host("http://login.contoso.example"),
        ),
        (
            "bad AD FS path",
            full().adfs("https://adfs.contoso.com/other"),
        ),
    ];
    let mut text = String::new();
    for (name, builder) in cases {
        let error = builder.build().unwrap_err();
        let message = error.to_string();
        assert!(!message.contains("USER-PASSWORD"));
        text.push_str(&format!("{name}:\n  {message}\n"));
    }
    insta::assert_snapshot!(text);
}
