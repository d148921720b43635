//! The user realm check: before a password is sent, ask Entra ID whether the user's domain
//! is managed (Entra checks the password) or federated (another identity provider does,
//! and the password grant cannot sign the user in).
//!
//! MSAL makes the same call and, like MSAL, a realm endpoint that is missing or
//! unreachable means "no answer": the password grant goes ahead and Entra's own error, if
//! any, reaches the user.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use d365_auth_core::{AuthError, Authority, ConfigError};
use serde::Deserialize;
use url::Url;

/// What `/common/userrealm/{user}?api-version=1.0` answers; only the fields we read.
#[derive(Deserialize)]
struct UserRealm {
    account_type: Option<String>,
    domain_name: Option<String>,
}

/// The realm check of one provider: where to ask and whether a definitive answer came.
pub(crate) struct RealmCheck {
    url: Url,
    http: reqwest::Client,
    timeout: Duration,
    /// Set once the endpoint has answered for this user in a way that will not change
    /// (managed, or no realm endpoint at all), so later password grants skip the call.
    settled: AtomicBool,
}

/// The realm URL for `username` under `authority`, or `None` for AD FS, which has no
/// realm endpoint (its users are, by definition, not federated elsewhere).
///
/// MSAL drops the authority's port here; we keep it, so that custom hosts such as the
/// d365 emulator on a random loopback port answer the call themselves.
pub(crate) fn realm_url(authority: &Authority, username: &str) -> Option<Url> {
    if authority.is_adfs() {
        return None;
    }
    let mut url = authority.instance_endpoint("common/userrealm/")?;
    url.path_segments_mut().ok()?.pop_if_empty().push(username);
    url.set_query(Some("api-version=1.0"));
    Some(url)
}

impl RealmCheck {
    pub(crate) fn new(url: Url, http: reqwest::Client, timeout: Duration) -> Self {
        Self {
            url,
            http,
            timeout,
            settled: AtomicBool::new(false),
        }
    }

    /// Refuses a federated user; any other answer, or none, lets the grant go ahead.
    pub(crate) async fn check(&self, username: &str) -> Result<(), AuthError> {
        if self.settled.load(Ordering::Acquire) {
            return Ok(());
        }
        let response = self
            .http
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(url = %self.url, %error, "user realm endpoint unreachable; skipping the federated-user check");
                return Ok(());
            }
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            tracing::debug!(url = %self.url, "no user realm endpoint (HTTP 404); skipping the federated-user check");
            self.settled.store(true, Ordering::Release);
            return Ok(());
        }
        if !status.is_success() {
            tracing::debug!(url = %self.url, status = status.as_u16(), "user realm endpoint failed; skipping the federated-user check");
            return Ok(());
        }
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => {
                tracing::debug!(url = %self.url, %error, "user realm answer cut short; skipping the federated-user check");
                return Ok(());
            }
        };
        let realm = match serde_json::from_slice::<UserRealm>(&body) {
            Ok(realm) => realm,
            Err(error) => {
                tracing::debug!(url = %self.url, %error, "user realm answer unreadable; skipping the federated-user check");
                return Ok(());
            }
        };
        let account_type = realm.account_type.as_deref().unwrap_or("");
        tracing::debug!(url = %self.url, account_type, "user realm");
        if account_type.eq_ignore_ascii_case("federated") {
            return Err(federated_user(username, realm.domain_name.as_deref()));
        }
        self.settled.store(true, Ordering::Release);
        Ok(())
    }
}

/// The setting a federated user's refusal names: what to change is the grant, or the
/// check itself.
pub(crate) const REALM_SETTING: &str = "user realm";

/// The refusal of a federated user, before the password is sent.
fn federated_user(username: &str, domain: Option<&str>) -> AuthError {
    AuthError::Config(ConfigError::Invalid {
        setting: REALM_SETTING,
        problem: format!(
            "`{username}`{} is federated to another identity provider, and the password grant cannot sign in federated users, so the password was not sent",
            domain.map(|domain| format!(" (domain `{domain}`)")).unwrap_or_default()
        ),
        fix: "use the client credentials grant (an application user) for unattended jobs or the device code grant for people, or, if the tenant validates federated users' passwords in the cloud (AllowCloudPasswordValidation), turn the grant's user realm check off".to_owned(),
    })
}

impl fmt::Debug for RealmCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealmCheck")
            .field("url", &self.url.as_str())
            .field("settled", &self.settled.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use d365_auth_core::Tenant;

    #[test]
    fn realm_urls_sit_beside_the_tenant() {
        let cases = [
            (
                Authority::public_cloud(Tenant::Organizations),
                "https://login.microsoftonline.com/common/userrealm/ana@contoso.com?api-version=1.0",
            ),
            (
                Authority::parse("https://login.microsoftonline.us/contoso.com").unwrap(),
                "https://login.microsoftonline.us/common/userrealm/ana@contoso.com?api-version=1.0",
            ),
            (
                Authority::custom("http://127.0.0.1:8080", Tenant::Organizations).unwrap(),
                "http://127.0.0.1:8080/common/userrealm/ana@contoso.com?api-version=1.0",
            ),
            (
                Authority::custom("https://proxy.example/login", Tenant::Organizations).unwrap(),
                "https://proxy.example/login/common/userrealm/ana@contoso.com?api-version=1.0",
            ),
        ];
        for (authority, expected) in cases {
            assert_eq!(
                realm_url(&authority, "ana@contoso.com").unwrap().as_str(),
                expected
            );
        }
    }

    #[test]
    fn user_names_are_escaped_as_one_segment() {
        let authority = Authority::public_cloud(Tenant::Organizations);
        let url = realm_url(&authority, "odd/name?#@contoso.com").unwrap();
        assert_eq!(
            url.as_str(),
            "https://login.microsoftonline.com/common/userrealm/odd%2Fname%3F%23@contoso.com?api-version=1.0"
        );
    }

    #[test]
    fn adfs_has_no_realm_endpoint() {
        let authority = Authority::adfs("https://adfs.contoso.com").unwrap();
        assert!(realm_url(&authority, "ana@contoso.com").is_none());
    }
}
