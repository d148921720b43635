//! The browser sign-in (authorization code with PKCE) driven with plain HTTP, redirects not
//! followed: the authorize endpoints and their checks, the sign-in page (its form, escaping,
//! a wrong password, Cancel), the answer in each `response_mode`, and the code's redemption
//! at the v1 and v2 token endpoints (PKCE, single use, expiry, bindings, client
//! authentication), down to the ID token and a refresh.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use d365_emulator::{Emulator, EmulatorConfig};
use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use sha2::Digest as _;

use crate::common::{Reply, claims, post_form};

/// RFC 7636 appendix B's verifier.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://localhost:53117/";
const ALICE: &str = "alice@contoso.onmicrosoft.com";
const PASSWORD: &str = "Emulator-Passw0rd!";
const STATE: &str = "st<a>te&\"1\"";
const NONCE: &str = "n-0S6_WzA2Mj";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A browser that does not follow redirects: each test looks at them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn public_app(emulator: &Emulator) -> String {
    emulator
        .seeded()
        .expect("seeded")
        .public_app
        .client_id
        .clone()
}

/// The parameters of a v2 sign-in of the public app, as MSAL sends them.
fn v2_params(emulator: &Emulator) -> Vec<(String, String)> {
    [
        ("client_id", public_app(emulator)),
        ("response_type", "code".to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        (
            "scope",
            format!(
                "{}/.default openid profile offline_access",
                emulator.base_url()
            ),
        ),
        ("state", STATE.to_owned()),
        ("nonce", NONCE.to_owned()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
        ("login_hint", ALICE.to_owned()),
        ("prompt", "select_account".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn set(params: &mut Vec<(String, String)>, name: &str, value: Option<&str>) {
    params.retain(|(key, _)| key != name);
    if let Some(value) = value {
        params.push((name.to_owned(), value.to_owned()));
    }
}

fn authorize_path(v2: bool) -> &'static str {
    if v2 {
        "oauth2/v2.0/authorize"
    } else {
        "oauth2/authorize"
    }
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    html: String,
}

async fn get(url: &str, params: &[(String, String)]) -> Page {
    let url = reqwest::Url::parse_with_params(url, params).expect("url");
    let response = browser().get(url).send().await.expect("sent");
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        html: response.text().await.expect("body"),
    }
}

async fn open_page(emulator: &Emulator, v2: bool, params: &[(String, String)]) -> Page {
    let url = format!(
        "{}/{}/{}",
        emulator.base_url(),
        emulator.tenant_id(),
        authorize_path(v2)
    );
    get(&url, params).await
}

/// The `value` of the input named `name`.
fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    html[start..end].to_owned()
}

/// The form's `action`.
fn form_action(html: &str) -> String {
    let start = html.find("action=\"").expect("action") + "action=\"".len();
    let end = start + html[start..].find('"').expect("quote");
    html[start..end].replace("&amp;", "&")
}

/// Answers the sign-in page as a person would.
async fn answer(
    emulator: &Emulator,
    page: &Page,
    username: &str,
    password: &str,
    action: &str,
) -> Page {
    let url = format!("{}{}", emulator.base_url(), form_action(&page.html));
    let response = browser()
        .post(url)
        .form(&[
            ("sign_in_id", input_value(&page.html, "sign_in_id").as_str()),
            ("username", username),
            ("password", password),
            ("action", action),
        ])
        .send()
        .await
        .expect("sent");
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        html: response.text().await.expect("body"),
    }
}

fn location(page: &Page) -> reqwest::Url {
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.html);
    let text = page.headers["location"].to_str().expect("text");
    reqwest::Url::parse(text).expect("absolute")
}

fn query(url: &reqwest::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn fragment(url: &reqwest::Url) -> HashMap<String, String> {
    serde_urlencoded::from_str(url.fragment().expect("fragment")).expect("pairs")
}

/// Signs alice in and returns the code.
async fn sign_in(emulator: &Emulator, v2: bool, params: &[(String, String)]) -> String {
    let page = open_page(emulator, v2, params).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let done = answer(emulator, &page, ALICE, PASSWORD, "accept").await;
    query(&location(&done))["code"].clone()
}

async fn redeem(
    emulator: &Emulator,
    code: &str,
    extra: &[(&str, &str)],
    verifier: Option<&str>,
) -> Reply {
    let client_id = public_app(emulator);
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id.as_str()),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    form.extend_from_slice(extra);
    post_form(
        &crate::common::client(),
        &emulator.token_endpoint_v2(),
        &form,
    )
    .await
}

fn assert_refusal(reply: &Reply, error: &str, code: u64) {
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["error"], error, "{}", reply.body);
    assert_eq!(reply.body["error_codes"][0], code, "{}", reply.body);
}

/// An error sent back to the redirect URI.
fn assert_redirected_error(page: &Page, error: &str, code: u32) -> HashMap<String, String> {
    let url = location(page);
    assert_eq!(url.host_str(), Some("localhost"));
    assert_eq!(url.port(), Some(53117));
    let params = query(&url);
    assert_eq!(params["error"], error, "{params:?}");
    assert!(
        params["error_description"].starts_with(&format!("AADSTS{code}: ")),
        "{params:?}"
    );
    assert_eq!(
        params["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
    assert_eq!(params["state"], STATE);
    params
}

#[tokio::test]
async fn the_sign_in_page_is_a_form_with_stable_ids_that_escapes_what_it_echoes() {
    let emulator = Emulator::builder().start().await.expect("started");
    let mut params = v2_params(&emulator);
    set(
        &mut params,
        "login_hint",
        Some("\"><script>alert(1)</script>@contoso.onmicrosoft.com"),
    );
    let page = open_page(&emulator, true, &params).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(page.headers["cache-control"], "no-store, no-cache");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    for expected in [
        "<form method=\"post\"",
        "id=\"username\" name=\"username\"",
        "id=\"password\" name=\"password\" type=\"password\"",
        "id=\"accept\"",
        "id=\"cancel\"",
        "type=\"hidden\" id=\"sign_in_id\"",
        "d365 emulator public client",
        "wants to access Dataverse as you",
        "value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@contoso.onmicrosoft.com\"",
    ] {
        assert!(
            page.html.contains(expected),
            "{expected} missing:\n{}",
            page.html
        );
    }
    assert!(!page.html.contains("<script>alert"), "{}", page.html);
    // The parameters stay server-side: neither the state nor the challenge is in the page.
    assert!(!page.html.contains("st&lt;a&gt;te"), "{}", page.html);
    assert!(!page.html.contains(&challenge(VERIFIER)), "{}", page.html);
    assert_eq!(
        form_action(&page.html),
        format!("/{}/oauth2/v2.0/authorize", emulator.tenant_id())
    );

    // The login hint prefills the user name.
    let page = open_page(&emulator, true, &v2_params(&emulator)).await;
    assert!(
        page.html.contains(&format!("value=\"{ALICE}\"")),
        "{}",
        page.html
    );
}

#[tokio::test]
async fn a_wrong_password_shows_the_page_again_and_the_right_one_redirects() {
    let emulator = Emulator::builder().start().await.expect("started");
    let page = open_page(&emulator, true, &v2_params(&emulator)).await;

    let again = answer(&emulator, &page, ALICE, "wrong", "accept").await;
    assert_eq!(again.status, 200, "{}", again.html);
    assert!(again.headers.get("location").is_none());
    assert!(again.html.contains("AADSTS50126"), "{}", again.html);
    assert!(again.html.contains("id=\"password\""), "{}", again.html);
    assert!(again.html.contains(&format!("value=\"{ALICE}\"")));

    let nobody = answer(
        &emulator,
        &again,
        "nobody@contoso.onmicrosoft.com",
        PASSWORD,
        "accept",
    )
    .await;
    assert!(nobody.html.contains("AADSTS50034"), "{}", nobody.html);

    let done = answer(&emulator, &nobody, ALICE, PASSWORD, "accept").await;
    let url = location(&done);
    assert_eq!(url.scheme(), "http");
    assert_eq!(url.host_str(), Some("localhost"));
    assert_eq!(url.port(), Some(53117));
    assert_eq!(url.path(), "/");
    let params = query(&url);
    assert!(params["code"].len() > 40, "{params:?}");
    assert_eq!(params["state"], STATE);
    assert!(uuid::Uuid::parse_str(&params["session_state"]).is_ok());

    // The page is spent once it has answered.
    let late = answer(&emulator, &page, ALICE, PASSWORD, "accept").await;
    assert_eq!(late.status, 400);
    assert!(late.html.contains("has expired or was already completed"));
}

#[tokio::test]
async fn a_code_redeems_once_for_tokens_an_id_token_and_a_working_refresh_token() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let code = sign_in(&emulator, true, &v2_params(&emulator)).await;

    let reply = redeem(&emulator, &code, &[("client_info", "1")], Some(VERIFIER)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_u64(), "{body}");
    assert!(body["client_info"].is_string());
    let scope = body["scope"].as_str().expect("scope");
    for granted in ["user_impersonation", "openid", "profile", "offline_access"] {
        assert!(scope.contains(granted), "{scope}");
    }
    let access = claims(body["access_token"].as_str().expect("access token"));
    assert_eq!(access["aud"], emulator.base_url());
    assert_eq!(access["scp"], "user_impersonation");
    assert_eq!(access["oid"], seeded.user.object_id);
    assert_eq!(access["tid"], emulator.tenant_id());
    // Dataverse's tokens are v1-shaped whichever endpoint issued them.
    assert_eq!(access["ver"], "1.0");
    assert_eq!(access["upn"], ALICE);
    assert_eq!(access["unique_name"], ALICE);
    assert_eq!(access["appid"], seeded.public_app.client_id);
    assert_eq!(access["appidacr"], "0");

    let id_token = body["id_token"].as_str().expect("an ID token");
    let validated = emulator
        .token_validator()
        .validate(id_token, &seeded.public_app.client_id)
        .expect("signed by the emulator, for the client");
    let id = validated.claims();
    assert_eq!(id["aud"], seeded.public_app.client_id);
    assert_eq!(id["nonce"], NONCE);
    assert_eq!(id["tid"], emulator.tenant_id());
    assert_eq!(id["oid"], seeded.user.object_id);
    assert_eq!(id["preferred_username"], ALICE);
    assert_eq!(id["name"], "Alice Emulator");
    assert_eq!(
        id["iss"],
        format!("{}/{}/v2.0", emulator.base_url(), emulator.tenant_id())
    );
    assert!(id["exp"].as_i64() > id["iat"].as_i64());

    // The same code again.
    assert_refusal(
        &redeem(&emulator, &code, &[], Some(VERIFIER)).await,
        "invalid_grant",
        54005,
    );

    // The refresh token works with the refresh grant.
    let client_id = public_app(&emulator);
    let refreshed = post_form(
        &crate::common::client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("refresh_token", body["refresh_token"].as_str().expect("rt")),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let access = claims(refreshed.body["access_token"].as_str().expect("token"));
    assert_eq!(access["oid"], seeded.user.object_id);

    // And the Web API takes the access token: WhoAmI as alice.
    let whoami = crate::common::send(
        crate::common::client()
            .get(format!("{}WhoAmI", emulator.web_api_url()))
            .bearer_auth(body["access_token"].as_str().expect("token")),
    )
    .await;
    assert_eq!(whoami.status, 200, "{}", whoami.body);
    assert_eq!(whoami.body["UserId"], seeded.organization.user_id);
}

#[tokio::test]
async fn the_verifier_must_match_the_challenge() {
    let emulator = Emulator::builder().start().await.expect("started");
    let code = sign_in(&emulator, true, &v2_params(&emulator)).await;
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
    assert_refusal(
        &redeem(&emulator, &code, &[], Some(wrong)).await,
        "invalid_grant",
        501_481,
    );
    assert_refusal(
        &redeem(&emulator, &code, &[], Some("short")).await,
        "invalid_grant",
        501_481,
    );
    assert_refusal(
        &redeem(&emulator, &code, &[], None).await,
        "invalid_request",
        900_144,
    );
    // A refused attempt does not spend the code.
    let reply = redeem(&emulator, &code, &[], Some(VERIFIER)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // `plain`, and a method left out (plain as well).
    let plain = "p".repeat(60);
    for method in [Some("plain"), None] {
        let mut params = v2_params(&emulator);
        set(&mut params, "code_challenge", Some(&plain));
        set(&mut params, "code_challenge_method", method);
        let code = sign_in(&emulator, true, &params).await;
        assert_refusal(
            &redeem(&emulator, &code, &[], Some(VERIFIER)).await,
            "invalid_grant",
            501_481,
        );
        let reply = redeem(&emulator, &code, &[], Some(&plain)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

#[tokio::test]
async fn codes_are_bound_to_their_redirect_uri_client_resource_and_lifetime() {
    let emulator = Emulator::builder()
        .authorization_code_lifetime(Duration::from_secs(2))
        .start()
        .await
        .expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let code = sign_in(&emulator, true, &v2_params(&emulator)).await;

    let client_id = public_app(&emulator);
    let other_port = post_form(
        &crate::common::client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:53118/"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_refusal(&other_port, "invalid_grant", 50011);

    let other_resource = redeem(
        &emulator,
        &code,
        &[("scope", "https://other.crm.dynamics.com/.default openid")],
        Some(VERIFIER),
    )
    .await;
    assert_refusal(&other_resource, "invalid_scope", 70011);

    let confidential = &seeded.confidential_app;
    let other_client = post_form(
        &crate::common::client(),
        &emulator.token_endpoint_v2(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", confidential.client_id.as_str()),
            ("client_secret", confidential.secret.expose_secret()),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_refusal(&other_client, "invalid_grant", 70000);

    assert_refusal(
        &redeem(&emulator, "1.Anot-a-code", &[], Some(VERIFIER)).await,
        "invalid_grant",
        70000,
    );

    // A public client must not authenticate.
    let with_secret = redeem(&emulator, &code, &[("client_secret", "x")], Some(VERIFIER)).await;
    assert_eq!(with_secret.status, 401, "{}", with_secret.body);
    assert_eq!(with_secret.body["error_codes"][0], 700_025);

    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_refusal(
        &redeem(&emulator, &code, &[], Some(VERIFIER)).await,
        "invalid_grant",
        70008,
    );
}

#[tokio::test]
async fn unregistered_redirect_uris_are_shown_never_redirected_to() {
    let emulator = Emulator::builder().start().await.expect("started");
    for redirect in [
        "http://localhost:53117/elsewhere",
        "http://127.0.0.1:53117/",
        "https://evil.example/",
        "http://localhost:53117/#fragment",
        "not a url",
    ] {
        let mut params = v2_params(&emulator);
        set(&mut params, "redirect_uri", Some(redirect));
        let page = open_page(&emulator, true, &params).await;
        assert_eq!(page.status, 400, "{redirect}: {}", page.html);
        assert!(page.headers.get("location").is_none());
        assert!(page.html.contains("AADSTS50011"), "{}", page.html);
        assert!(page.html.contains("Trace ID:"), "{}", page.html);
    }
    // The port of a localhost redirect URI is ignored, and a path-less one is `/`.
    for redirect in [
        "http://localhost:1/",
        "http://localhost:65535",
        "http://localhost",
    ] {
        let mut params = v2_params(&emulator);
        set(&mut params, "redirect_uri", Some(redirect));
        let page = open_page(&emulator, true, &params).await;
        assert_eq!(page.status, 200, "{redirect}: {}", page.html);
    }
}

#[tokio::test]
async fn unknown_clients_and_tenants_are_shown_never_redirected_to() {
    let emulator = Emulator::builder().start().await.expect("started");
    let mut params = v2_params(&emulator);
    set(
        &mut params,
        "client_id",
        Some("11111111-2222-4333-8444-555555555555"),
    );
    let page = open_page(&emulator, true, &params).await;
    assert_eq!(page.status, 400);
    assert!(page.headers.get("location").is_none());
    assert!(page.html.contains("AADSTS700016"), "{}", page.html);

    let url = format!(
        "{}/fabrikam.onmicrosoft.com/oauth2/v2.0/authorize",
        emulator.base_url()
    );
    let page = get(&url, &v2_params(&emulator)).await;
    assert_eq!(page.status, 400);
    assert!(page.html.contains("AADSTS90002"), "{}", page.html);

    let mut params = v2_params(&emulator);
    set(&mut params, "client_id", None);
    let page = open_page(&emulator, true, &params).await;
    assert_eq!(page.status, 400);
    assert!(page.html.contains("AADSTS900144"), "{}", page.html);
}

#[tokio::test]
async fn cancel_sends_access_denied_back() {
    let emulator = Emulator::builder().start().await.expect("started");
    let page = open_page(&emulator, true, &v2_params(&emulator)).await;
    let cancelled = answer(&emulator, &page, "", "", "cancel").await;
    let params = assert_redirected_error(&cancelled, "access_denied", 65004);
    assert!(
        params["error_description"]
            .starts_with("AADSTS65004: User declined to consent to access the app."),
        "{params:?}"
    );
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn prompt_none_answers_login_required() {
    let emulator = Emulator::builder().start().await.expect("started");
    let mut params = v2_params(&emulator);
    set(&mut params, "prompt", Some("none"));
    let page = open_page(&emulator, true, &params).await;
    assert_redirected_error(&page, "login_required", 50058);
}

#[tokio::test]
async fn other_parameter_errors_go_back_to_the_app() {
    let emulator = Emulator::builder().start().await.expect("started");
    type Change<'a> = (&'a str, Option<&'a str>, &'a str, u32);
    let cases: Vec<Change<'_>> = vec![
        ("scope", None, "invalid_request", 900_144),
        ("scope", Some("openid profile"), "invalid_scope", 70011),
        ("response_type", None, "invalid_request", 900_144),
        (
            "response_type",
            Some("token"),
            "unsupported_response_type",
            700_051,
        ),
        (
            "response_mode",
            Some("web_message"),
            "invalid_request",
            90023,
        ),
        ("prompt", Some("always"), "invalid_request", 90023),
        ("code_challenge", None, "invalid_request", 900_144),
        (
            "code_challenge",
            Some("too-short"),
            "invalid_request",
            501_491,
        ),
        (
            "code_challenge_method",
            Some("S512"),
            "invalid_request",
            90023,
        ),
        (
            "resource",
            Some("https://x.example"),
            "invalid_request",
            901_002,
        ),
    ];
    for (name, value, error, code) in cases {
        let mut params = v2_params(&emulator);
        set(&mut params, name, value);
        let page = open_page(&emulator, true, &params).await;
        let url = location(&page);
        let answer = query(&url);
        assert_eq!(answer["error"], error, "{name}={value:?}: {answer:?}");
        assert!(
            answer["error_description"].starts_with(&format!("AADSTS{code}: ")),
            "{name}={value:?}: {answer:?}"
        );
        assert_eq!(answer["state"], STATE);
    }
}

#[tokio::test]
async fn fragment_and_form_post_answers() {
    let emulator = Emulator::builder().start().await.expect("started");
    let mut params = v2_params(&emulator);
    set(&mut params, "response_mode", Some("fragment"));
    let page = open_page(&emulator, true, &params).await;
    let done = answer(&emulator, &page, ALICE, PASSWORD, "accept").await;
    let url = location(&done);
    assert!(url.query().is_none(), "{url}");
    let answer_params = fragment(&url);
    assert_eq!(answer_params["state"], STATE);
    let reply = redeem(&emulator, &answer_params["code"], &[], Some(VERIFIER)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let mut params = v2_params(&emulator);
    set(&mut params, "response_mode", Some("form_post"));
    let page = open_page(&emulator, true, &params).await;
    let done = answer(&emulator, &page, ALICE, PASSWORD, "accept").await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert!(done.headers.get("location").is_none());
    let html = &done.html;
    for expected in [
        "<form method=\"post\" name=\"hiddenform\" action=\"http://localhost:53117/\">",
        "<input type=\"hidden\" name=\"code\" value=\"",
        "<input type=\"hidden\" name=\"state\" value=\"st&lt;a&gt;te&amp;&quot;1&quot;\">",
        "<input type=\"hidden\" name=\"session_state\"",
        "<script>document.forms[0].submit();</script>",
    ] {
        assert!(html.contains(expected), "{expected} missing:\n{html}");
    }
    let code = input_value(html, "code");
    let reply = redeem(&emulator, &code, &[], Some(VERIFIER)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Errors too come back by form_post.
    let page = open_page(&emulator, true, &params).await;
    let cancelled = answer(&emulator, &page, "", "", "cancel").await;
    assert_eq!(cancelled.status, 200);
    assert!(
        cancelled
            .html
            .contains("name=\"error\" value=\"access_denied\"")
    );
}

#[tokio::test]
async fn the_v1_endpoints_take_a_resource() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let mut params = v2_params(&emulator);
    set(&mut params, "scope", None);
    set(
        &mut params,
        "resource",
        Some(&format!("{}/", emulator.base_url())),
    );
    let url = format!("{}/organizations/oauth2/authorize", emulator.base_url());
    let page = get(&url, &params).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(
        form_action(&page.html),
        format!("/{}/oauth2/authorize", emulator.tenant_id())
    );
    let done = answer(&emulator, &page, ALICE, PASSWORD, "accept").await;
    let code = query(&location(&done))["code"].clone();

    let client_id = public_app(&emulator);
    let resource = format!("{}/", emulator.base_url());
    let reply = post_form(
        &crate::common::client(),
        &emulator.token_endpoint_v1(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", resource.as_str()),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body["expires_in"].is_string(), "{}", reply.body);
    assert!(reply.body["refresh_token"].is_string());
    let access = claims(reply.body["access_token"].as_str().expect("token"));
    assert_eq!(access["ver"], "1.0");
    assert_eq!(access["upn"], ALICE);
    assert_eq!(access["oid"], seeded.user.object_id);
    assert_eq!(access["appid"], client_id);

    // v1 with a scope-less authorize request and no PKCE from a public client is refused.
    let mut params = v2_params(&emulator);
    set(&mut params, "scope", None);
    set(&mut params, "code_challenge", None);
    set(&mut params, "code_challenge_method", None);
    set(&mut params, "resource", Some(emulator.base_url()));
    let page = open_page(&emulator, false, &params).await;
    assert_redirected_error(&page, "invalid_request", 900_144);
}

#[tokio::test]
async fn confidential_apps_may_skip_pkce_but_must_authenticate() {
    let config = EmulatorConfig::from_toml_str(
        r#"
        [[apps]]
        client_id = "d3650000-a990-4000-8000-0000000000c1"
        display_name = "web app <beta>"
        secrets = [{ value = "web-secret" }]
        redirect_uris = ["https://app.example/signin-oidc"]
        "#,
    )
    .expect("config");
    let emulator = Emulator::builder()
        .config(config)
        .start()
        .await
        .expect("started");
    let client_id = "d3650000-a990-4000-8000-0000000000c1";
    let redirect = "https://app.example/signin-oidc";
    let mut params = v2_params(&emulator);
    set(&mut params, "client_id", Some(client_id));
    set(&mut params, "redirect_uri", Some(redirect));
    set(&mut params, "code_challenge", None);
    set(&mut params, "code_challenge_method", None);
    let page = open_page(&emulator, true, &params).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("web app &lt;beta&gt;"), "{}", page.html);
    let done = answer(&emulator, &page, ALICE, PASSWORD, "accept").await;
    let url = location(&done);
    assert_eq!(url.as_str().split('?').next(), Some(redirect));
    let code = query(&url)["code"].clone();

    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
    ];
    let endpoint = emulator.token_endpoint_v2();
    let http = crate::common::client();
    let unauthenticated = post_form(&http, &endpoint, &form).await;
    assert_eq!(unauthenticated.status, 401, "{}", unauthenticated.body);
    assert_eq!(unauthenticated.body["error_codes"][0], 7_000_218);
    // A verifier for a code that had no challenge is refused.
    let mut with_verifier = form.clone();
    with_verifier.extend([("client_secret", "web-secret"), ("code_verifier", VERIFIER)]);
    assert_refusal(
        &post_form(&http, &endpoint, &with_verifier).await,
        "invalid_grant",
        501_481,
    );
    form.push(("client_secret", "web-secret"));
    let reply = post_form(&http, &endpoint, &form).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        claims(reply.body["access_token"].as_str().unwrap())["appidacr"],
        "1"
    );
}

#[tokio::test]
async fn redirect_uris_are_set_through_the_admin_api() {
    let emulator = Emulator::builder().start().await.expect("started");
    let seeded = emulator.seeded().expect("seeded");
    let admin = format!(
        "{}/_emulator/tenants/{}/apps/{}",
        emulator.base_url(),
        emulator.tenant_id(),
        seeded.public_app.client_id
    );
    let http = crate::common::client();
    let tenant = crate::common::send(http.get(format!(
        "{}/_emulator/tenants/{}",
        emulator.base_url(),
        emulator.tenant_id()
    )))
    .await;
    let public = tenant.body["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .find(|app| app["client_id"] == seeded.public_app.client_id)
        .expect("public app")
        .clone();
    assert_eq!(
        public["redirect_uris"],
        serde_json::json!(["http://localhost/"])
    );

    let bad = crate::common::send(
        http.put(format!("{admin}/redirect-uris"))
            .json(&serde_json::json!({"redirect_uris": ["http://app.example/"]})),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    let set_uris = crate::common::send(
        http.put(format!("{admin}/redirect-uris"))
            .json(&serde_json::json!({"redirect_uris": ["http://localhost/callback"]})),
    )
    .await;
    assert_eq!(set_uris.status, 200, "{}", set_uris.body);
    assert_eq!(
        set_uris.body["redirect_uris"],
        serde_json::json!(["http://localhost/callback"])
    );
    let page = open_page(&emulator, true, &v2_params(&emulator)).await;
    assert_eq!(page.status, 400, "the old URI is gone");
    let mut params = v2_params(&emulator);
    set(
        &mut params,
        "redirect_uri",
        Some("http://localhost:4242/callback"),
    );
    let page = open_page(&emulator, true, &params).await;
    assert_eq!(page.status, 200, "{}", page.html);

    let settings = crate::common::send(
        http.patch(format!("{}/_emulator/settings", emulator.base_url()))
            .json(&serde_json::json!({"authorization_code_lifetime_secs": 120})),
    )
    .await;
    assert_eq!(settings.status, 200, "{}", settings.body);
    assert_eq!(settings.body["authorization_code_lifetime_secs"], 120);
}
