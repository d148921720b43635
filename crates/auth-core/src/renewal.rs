//! [`RefreshTokenRenewal`]: the renewal every grant that keeps refresh tokens shares —
//! redeem the refresh token, and sign in again only when there is none or it is refused.

use std::future::Future;

use secrecy::SecretString;

use crate::authority::TokenEndpoint;
use crate::endpoint::{ClientCredential, TokenEndpointClient, TokenForm};
use crate::error::AuthError;
use crate::resource::{ClientKind, TokenRequest};
use crate::token::AccessToken;

/// The scope that asks Entra ID for a refresh token with a delegated token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// How a grant redeems its refresh tokens: the endpoint, the client and how it proves
/// itself, and any scopes beyond the request's own (`offline_access` is always asked for).
///
/// A grant calls [`renew`](Self::renew) from its
/// [`TokenProvider::renew_token`](crate::TokenProvider::renew_token): the person (or the
/// password) is asked for again only when the refresh token is missing, expired or revoked.
///
/// # Examples
///
/// ```no_run
/// use d365_auth_core::grant::{RefreshTokenRenewal, TokenEndpointClient};
/// use d365_auth_core::{AccessToken, AuthError, TokenEndpoint, TokenRequest};
///
/// async fn renew(
///     http: &TokenEndpointClient,
///     endpoint: &TokenEndpoint,
///     request: &TokenRequest,
///     previous: &AccessToken,
/// ) -> Result<AccessToken, AuthError> {
///     RefreshTokenRenewal::new(http, endpoint, "my-client-id")
///         .renew(request, previous, || async {
///             // The grant's own sign-in: a new prompt, the password, ...
///             Err(AuthError::credential("sign in again", None))
///         })
///         .await
/// }
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct RefreshTokenRenewal<'a> {
    http: &'a TokenEndpointClient,
    endpoint: &'a TokenEndpoint,
    client_id: &'a str,
    credential: ClientCredential<'a>,
    client_kind: ClientKind,
    scopes: &'a [String],
}

impl<'a> RefreshTokenRenewal<'a> {
    /// Renewal for a public client (no credential) at `endpoint`.
    pub fn new(
        http: &'a TokenEndpointClient,
        endpoint: &'a TokenEndpoint,
        client_id: &'a str,
    ) -> Self {
        Self {
            http,
            endpoint,
            client_id,
            credential: ClientCredential::None,
            client_kind: ClientKind::Public,
            scopes: &[],
        }
    }

    /// A confidential client: it proves itself with `credential` on every redemption.
    pub fn credential(mut self, credential: ClientCredential<'a>) -> Self {
        self.client_kind = match credential {
            ClientCredential::None => ClientKind::Public,
            _ => ClientKind::Confidential,
        };
        self.credential = credential;
        self
    }

    /// Which form of the organization's scope to ask for, when it is not the one the
    /// credential implies (public: `{org}/user_impersonation`, confidential:
    /// `{org}/.default`): a public client that signs in with `{org}/.default`, as MSAL and
    /// azure-identity do, redeems with the same. Call it after [`credential`](Self::credential),
    /// which sets the kind from the credential.
    pub fn client_kind(mut self, kind: ClientKind) -> Self {
        self.client_kind = kind;
        self
    }

    /// Scopes to ask for beyond the request's own and `offline_access`.
    pub fn scopes(mut self, scopes: &'a [String]) -> Self {
        self.scopes = scopes;
        self
    }

    /// Redeems the refresh token `previous` carries; runs `sign_in` instead when it has
    /// none, or when the identity provider refuses it
    /// ([`AuthError::is_refresh_token_refused`]). Other failures (the network, throttling)
    /// are returned: signing in again would not help.
    ///
    /// # Errors
    ///
    /// The redemption's error, or `sign_in`'s.
    pub async fn renew<F>(
        &self,
        request: &TokenRequest,
        previous: &AccessToken,
        sign_in: impl FnOnce() -> F,
    ) -> Result<AccessToken, AuthError>
    where
        F: Future<Output = Result<AccessToken, AuthError>>,
    {
        let Some(refresh_token) = previous.refresh_token() else {
            return sign_in().await;
        };
        match self.redeem(request, refresh_token).await {
            Err(error) if error.is_refresh_token_refused() => {
                tracing::debug!(
                    client_id = %self.client_id,
                    aadsts = error.aadsts(),
                    "refresh token refused; signing in again"
                );
                sign_in().await
            }
            outcome => outcome,
        }
    }

    /// Redeems `refresh_token`. A response without a new refresh token keeps the one just
    /// used: Entra does not revoke a refresh token by using it, and AD FS often issues none.
    ///
    /// # Errors
    ///
    /// As for [`TokenEndpointClient::send`].
    pub async fn redeem(
        &self,
        request: &TokenRequest,
        refresh_token: &SecretString,
    ) -> Result<AccessToken, AuthError> {
        let mut form = TokenForm::refresh_token(self.client_id, refresh_token)
            .credential(self.credential)
            .target(request, self.client_kind, self.endpoint)
            .scope(OFFLINE_ACCESS);
        for scope in self.scopes {
            form = form.scope(scope.as_str());
        }
        self.http
            .send(self.endpoint, &form)
            .await?
            .into_renewed_token(request, refresh_token)
    }
}
