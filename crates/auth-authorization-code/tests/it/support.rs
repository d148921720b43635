//! A fake identity provider (a loopback token endpoint) and a scripted "browser": the
//! sign-in callback hands it the authorize URL, and it comes back to the loopback redirect
//! the way a browser does after the person signed in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use d365_auth_authorization_code::{AuthorizationCode, AuthorizationCodeBuilder, SignInUrl};
use d365_test_support::{Canned, Captured, Server};

/// The code the fake identity provider issues.
pub(crate) const CODE: &str = "AUTHZ-CODE-SECRET-1";
/// The tokens it issues.
pub(crate) const ACCESS: &str = "eyJ.ACCESS-TOKEN-SECRET.sig";
pub(crate) const REFRESH: &str = "REFRESH-TOKEN-SECRET-1";
pub(crate) const RENEWED: &str = "eyJ.RENEWED-TOKEN-SECRET.sig";

/// What the scripted browser does when it is shown the authorize URL.
#[derive(Clone, Debug)]
pub(crate) enum Person {
    /// Signs in: the browser comes back with the code and the right state.
    SignsIn,
    /// Comes back first with another sign-in's state, then with the right one.
    WrongStateFirst,
    /// Cancels: `error=access_denied`.
    Cancels,
    /// The identity provider refuses with an AADSTS error on the redirect.
    Refused(&'static str, &'static str),
    /// Comes back with `response_mode=form_post`: a POST with a form body.
    PostsTheForm,
    /// Never comes back.
    WalksAway,
}

/// What the browser saw: the authorize URL's parameters and each page it got back.
#[derive(Default, Debug)]
pub(crate) struct Seen {
    pub(crate) authorize: HashMap<String, String>,
    pub(crate) pages: Vec<(u16, String)>,
    pub(crate) shown: usize,
}

/// The fake identity provider and what it saw.
pub(crate) struct Idp {
    pub(crate) server: Server,
    pub(crate) seen: Arc<Mutex<Seen>>,
}

impl Idp {
    /// The pages the browser got back, once there are `count` (the browser records a page
    /// after reading it, which may be after the sign-in ended).
    pub(crate) async fn pages(&self, count: usize) -> Vec<(u16, String)> {
        for _ in 0..500 {
            let pages = self.seen.lock().unwrap().pages.clone();
            if pages.len() >= count {
                return pages;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the browser did not get {count} page(s)");
    }

    /// A token endpoint that answers the code with a token and an ID token carrying the
    /// nonce the browser saw (or `nonce_override`), and a refresh token with `RENEWED`.
    pub(crate) async fn start(nonce_override: Option<&'static str>) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let for_server = Arc::clone(&seen);
        let server = Server::start(move |request: &Captured, _| {
            match request.field("grant_type").as_deref() {
                Some("authorization_code") => {
                    let nonce = nonce_override.map_or_else(
                        || {
                            for_server
                                .lock()
                                .unwrap()
                                .authorize
                                .get("nonce")
                                .cloned()
                                .unwrap_or_default()
                        },
                        str::to_owned,
                    );
                    let id_token = format!(
                        "eyJhbGciOiJub25lIn0.{}.sig",
                        URL_SAFE_NO_PAD.encode(format!(
                            r#"{{"nonce":"{nonce}","preferred_username":"ana@contoso.onmicrosoft.com"}}"#
                        ))
                    );
                    Canned::json(
                        200,
                        format!(
                            r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"{ACCESS}","refresh_token":"{REFRESH}","id_token":"{id_token}"}}"#
                        ),
                    )
                }
                Some("refresh_token") => Canned::token(RENEWED, None, 3600),
                _ => Canned::json(400, r#"{"error":"unsupported_grant_type"}"#),
            }
        })
        .await;
        Self { server, seen }
    }

    /// A builder for a grant against this provider, whose sign-ins `person` completes.
    pub(crate) fn builder(&self, person: Person) -> AuthorizationCodeBuilder {
        let seen = Arc::clone(&self.seen);
        AuthorizationCode::builder()
            .authority_host(&self.server.base)
            .tenant("11111111-2222-3333-4444-555555555555")
            .client_id("00000000-0000-0000-0000-0000000000c1")
            .open_browser(false)
            .sign_in_timeout(Duration::from_secs(20))
            .on_sign_in_url(move |sign_in: &SignInUrl| {
                let mut record = seen.lock().unwrap();
                record.shown += 1;
                record.authorize = sign_in.url.query_pairs().into_owned().collect();
                drop(record);
                tokio::spawn(browse(sign_in.clone(), person.clone(), Arc::clone(&seen)));
            })
    }
}

/// The browser coming back to the redirect URI.
async fn browse(sign_in: SignInUrl, person: Person, seen: Arc<Mutex<Seen>>) {
    let query: HashMap<String, String> = sign_in.url.query_pairs().into_owned().collect();
    let state = query.get("state").cloned().unwrap_or_default();
    let back = |fields: &[(&str, &str)]| {
        let mut url = url::Url::parse(&sign_in.redirect_uri).unwrap();
        url.query_pairs_mut().extend_pairs(fields);
        url
    };
    let http = reqwest::Client::new();
    let visits: Vec<reqwest::RequestBuilder> = match person {
        Person::SignsIn => vec![http.get(back(&[
            ("code", CODE),
            ("state", &state),
            ("session_state", "s1"),
        ]))],
        Person::WrongStateFirst => vec![
            http.get(back(&[("code", "FORGED-CODE"), ("state", "not-this-one")])),
            http.get(back(&[("code", CODE), ("state", &state)])),
        ],
        Person::Cancels => vec![http.get(back(&[
            ("error", "access_denied"),
            (
                "error_description",
                "AADSTS65004: User declined to consent to access the app.",
            ),
            ("state", &state),
        ]))],
        Person::Refused(error, description) => vec![http.get(back(&[
            ("error", error),
            ("error_description", description),
            ("state", &state),
        ]))],
        Person::PostsTheForm => vec![
            http.post(&sign_in.redirect_uri)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("code", CODE)
                        .append_pair("state", &state)
                        .finish(),
                ),
        ],
        Person::WalksAway => Vec::new(),
    };
    for visit in visits {
        match visit.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let page = response.text().await.unwrap_or_default();
                seen.lock().unwrap().pages.push((status, page));
            }
            Err(error) => seen.lock().unwrap().pages.push((0, error.to_string())),
        }
    }
}
