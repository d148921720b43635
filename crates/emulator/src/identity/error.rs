//! Entra-shaped token endpoint errors: one constructor per failure, each with the AADSTS code,
//! the RFC 6749 `error` value and the HTTP status Entra uses for it.

use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use serde_json::json;

use super::RequestContext;

/// The code the emulator gives AD FS's unknown-resource refusal inside (no AADSTS code is
/// ever this large); it is only shown as `MSIS9602`.
const ADFS_UNKNOWN_RESOURCE: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub(crate) struct AadError {
    pub(crate) code: u32,
    pub(crate) error: &'static str,
    message: String,
    suberror: Option<&'static str>,
    claims: Option<String>,
    /// `false` for an RFC error Entra documents no AADSTS code for: the body then has no
    /// `error_codes`, no `error_uri` and no `AADSTSnnnn:` prefix.
    has_code: bool,
}

impl AadError {
    fn new(code: u32, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            error,
            message: message.into(),
            suberror: None,
            claims: None,
            has_code: true,
        }
    }

    /// Entra answers client-authentication failures with 401 and everything else with 400.
    pub(crate) fn status(&self) -> StatusCode {
        match self.error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// `AADSTSnnnn: message` (the message alone for an error without a code).
    pub(crate) fn headline(&self) -> String {
        if self.has_code {
            format!("AADSTS{}: {}", self.code, self.message)
        } else {
            self.message.clone()
        }
    }

    /// The `error_description`: the headline, then the trace id, correlation id and
    /// timestamp on lines of their own, as Entra writes it.
    pub(crate) fn description(&self, context: &RequestContext) -> String {
        format!(
            "{}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
            self.headline(),
            context.trace_id,
            context.correlation_id,
            context.timestamp()
        )
    }

    /// Entra's lookup page for the code, when there is a code.
    pub(crate) fn error_uri(&self) -> Option<String> {
        self.has_code
            .then(|| format!("https://login.microsoftonline.com/error?code={}", self.code))
    }

    pub(crate) fn into_response(self, context: &RequestContext) -> Response {
        let status = self.status();
        let timestamp = context.timestamp();
        let description = self.description(context);
        let mut body = json!({
            "error": self.error,
            "error_description": description,
            "timestamp": timestamp,
            "trace_id": context.trace_id,
            "correlation_id": context.correlation_id,
        });
        if let Some(uri) = self.error_uri() {
            body["error_codes"] = json!([self.code]);
            // Entra's lookup page, not the emulator's.
            body["error_uri"] = json!(uri);
        }
        if let Some(suberror) = self.suberror {
            body["suberror"] = json!(suberror);
        }
        if let Some(claims) = self.claims {
            body["claims"] = json!(claims);
        }
        tracing::debug!(
            code = self.code,
            error = self.error,
            "token request refused"
        );
        (status, axum::Json(body)).into_response()
    }

    /// The answer AD FS gives for this failure: `{"error", "error_description": "MSISnnnn: …"}`
    /// and nothing else (no `error_codes`, no trace ids). The failures AD FS has a code for
    /// get it; the others keep their message without a code.
    pub(crate) fn into_adfs_response(self) -> Response {
        let status = self.status();
        let (error, description) = match self.adfs_equivalent() {
            Some((msis, error, message)) => (error, format!("MSIS{msis}: {message}")),
            None => (self.error, self.message.clone()),
        };
        tracing::debug!(code = self.code, error, "AD FS token request refused");
        (
            status,
            axum::Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    }

    /// AD FS's code, `error` and message for this failure, when AD FS has one (the codes of
    /// `shared/reference/on-premises.md` §2).
    fn adfs_equivalent(&self) -> Option<(u32, &'static str, &'static str)> {
        Some(match self.code {
            ADFS_UNKNOWN_RESOURCE => (
                9602,
                "invalid_resource",
                "The received 'resource' parameter is not a valid relying party identifier.",
            ),
            700_016 => (
                9607,
                "invalid_client",
                "The 'client_id' parameter in the request is invalid. No registered client is found with this identifier.",
            ),
            50034 | 50126 => (9659, "invalid_grant", "Invalid 'username' or 'password'."),
            54005 | 70008 | 50148 | 501_481 => (
                9612,
                "invalid_grant",
                "The authorization code received in the 'code' parameter is invalid.",
            ),
            70000 | 9_002_313 => (
                9615,
                "invalid_grant",
                "The refresh token received in 'refresh_token' parameter is invalid.",
            ),
            _ if self.error == "invalid_client" => (
                9622,
                "invalid_client",
                "Client authentication failed. Please verify the credential provided for client authentication is valid.",
            ),
            _ => return None,
        })
    }

    /// AD FS's refusal of a `resource` no relying party trust has (it has no AADSTS code).
    pub(crate) fn adfs_unknown_resource(resource: &str) -> Self {
        Self::new(
            ADFS_UNKNOWN_RESOURCE,
            "invalid_resource",
            format!("'{resource}' is not a relying party of this AD FS."),
        )
    }

    /// The same failure under another `error` value (discovery says `invalid_tenant` where
    /// the token endpoint says `invalid_request`).
    pub(crate) fn with_error(mut self, error: &'static str) -> Self {
        self.error = error;
        self
    }

    pub(crate) fn unknown_instance() -> Self {
        Self::new(50049, "invalid_instance", "Unknown or invalid instance.")
    }

    pub(crate) fn server_error(why: &str) -> Self {
        Self::new(
            50000,
            "server_error",
            format!("There was an error issuing a token: {why}"),
        )
    }

    pub(crate) fn missing_parameter(name: &str) -> Self {
        Self::new(
            900_144,
            "invalid_request",
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    pub(crate) fn unsupported_grant_type(grant_type: &str) -> Self {
        Self::new(
            70003,
            "unsupported_grant_type",
            format!("The app requested an unsupported grant type '{grant_type}'."),
        )
    }

    pub(crate) fn tenant_not_found(segment: &str) -> Self {
        Self::new(
            90002,
            "invalid_request",
            format!(
                "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud."
            ),
        )
    }

    pub(crate) fn no_tenant_information() -> Self {
        Self::new(
            50059,
            "invalid_request",
            "No tenant-identifying information found in either the request or implied by any \
             provided credentials.",
        )
    }

    pub(crate) fn resource_on_v2() -> Self {
        Self::new(
            901_002,
            "invalid_request",
            "The 'resource' request parameter is not supported.",
        )
    }

    pub(crate) fn grant_on_common(segment: &str) -> Self {
        Self::new(
            9_001_023,
            "invalid_request",
            format!(
                "The grant type isn't supported over the /{segment} or /consumers endpoints. \
                 Please use the /organizations or tenant-specific endpoint."
            ),
        )
    }

    pub(crate) fn app_not_found(client_id: &str, tenant: &str) -> Self {
        Self::new(
            700_016,
            "unauthorized_client",
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You may \
                 have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub(crate) fn invalid_secret(client_id: &str) -> Self {
        Self::new(
            7_000_215,
            "invalid_client",
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is \
                 the client secret value, not the client secret ID, for a secret added to app \
                 '{client_id}'."
            ),
        )
    }

    pub(crate) fn expired_secret(client_id: &str) -> Self {
        Self::new(
            7_000_222,
            "invalid_client",
            format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the \
                 Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, \
                 or consider using certificate credentials for added security: \
                 https://aka.ms/certCreds."
            ),
        )
    }

    pub(crate) fn client_credentials_need_credential() -> Self {
        Self::new(
            7_000_216,
            "invalid_client",
            "'client_assertion', 'client_secret' or 'request' is required for the \
             'client_credentials' grant type.",
        )
    }

    pub(crate) fn confidential_client_needs_credential() -> Self {
        Self::new(
            7_000_218,
            "invalid_client",
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'.",
        )
    }

    pub(crate) fn public_client_with_credential() -> Self {
        Self::new(
            700_025,
            "invalid_client",
            "Client is public so neither 'client_assertion' nor 'client_secret' should be \
             presented.",
        )
    }

    pub(crate) fn assertion_malformed(why: &str) -> Self {
        Self::new(
            50027,
            "invalid_client",
            format!("JWT token is invalid or malformed: {why}."),
        )
    }

    pub(crate) fn assertion_key_not_registered(client_id: &str) -> Self {
        Self::new(
            700_027,
            "invalid_client",
            format!(
                "Client assertion failed signature validation. The certificate with identifier \
                 used to sign the client assertion is not registered on application \
                 '{client_id}'."
            ),
        )
    }

    pub(crate) fn assertion_signature() -> Self {
        Self::new(
            700_027,
            "invalid_client",
            "Client assertion failed signature validation.",
        )
    }

    pub(crate) fn assertion_time(now: i64, nbf: Option<i64>, exp: Option<i64>) -> Self {
        let show = |t: Option<i64>| t.map_or_else(|| "(absent)".to_owned(), |t| t.to_string());
        Self::new(
            700_024,
            "invalid_client",
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, \
                 assertion valid from {}, expiry time of assertion {}.",
                show(nbf),
                show(exp)
            ),
        )
    }

    pub(crate) fn assertion_audience(expected: &str) -> Self {
        Self::new(
            700_023,
            "invalid_client",
            format!(
                "Client assertion audience claim does not match Realm issuer. Expected the \
                 token endpoint '{expected}'."
            ),
        )
    }

    pub(crate) fn assertion_issuer() -> Self {
        Self::new(
            700_021,
            "invalid_client",
            "Client assertion application identifier doesn't match 'client_id' parameter. \
             Both 'iss' and 'sub' must be the client id.",
        )
    }

    /// Entra documents no dedicated code for a replayed client assertion; 50013 is its
    /// generic "assertion is invalid" code, the closest documented match.
    pub(crate) fn assertion_replayed() -> Self {
        Self::new(
            50013,
            "invalid_client",
            "Assertion is invalid: its 'jti' has already been used. Create a new client \
             assertion for every request.",
        )
    }

    pub(crate) fn invalid_scope(scope: &str, why: &str) -> Self {
        Self::new(
            70011,
            "invalid_scope",
            format!(
                "The provided request must include a 'scope' input parameter. The provided value \
                 for the input parameter 'scope' is not valid. The scope '{scope}' is not valid. \
                 {why}"
            ),
        )
    }

    /// A token for a resource the tenant does not know (not a registered organization).
    pub(crate) fn resource_not_found(resource: &str, tenant_name: &str) -> Self {
        Self::new(
            500_011,
            "invalid_resource",
            format!(
                "The resource principal named {resource} was not found in the tenant named \
                 {tenant_name}. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You might \
                 have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// A client credentials `scope` that is not `{resource}/.default`.
    pub(crate) fn scope_without_default(scope: &str) -> Self {
        Self::new(
            1_002_012,
            "invalid_scope",
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must \
                 have a scope value with /.default suffixed to the resource identifier \
                 (application ID URI)."
            ),
        )
    }

    pub(crate) fn multiple_resources() -> Self {
        Self::new(
            700_022,
            "invalid_scope",
            "The provided value for the input parameter scope is not valid because it contains \
             more than one resource.",
        )
    }

    pub(crate) fn user_not_found(tenant: &str) -> Self {
        Self::new(
            50034,
            "invalid_grant",
            format!(
                "The user account {{EUII Hidden}} does not exist in the {tenant} directory. To \
                 sign into this application, the account must be added to the directory."
            ),
        )
    }

    pub(crate) fn bad_password() -> Self {
        Self::new(
            50126,
            "invalid_grant",
            "Error validating credentials due to invalid username or password.",
        )
    }

    pub(crate) fn user_disabled() -> Self {
        Self::new(
            50057,
            "invalid_grant",
            "The user account is disabled. The user object in Active Directory backing this \
             account has been disabled.",
        )
    }

    pub(crate) fn mfa_required(resource: &str, policy_id: &str) -> Self {
        let mut error = Self::new(
            50076,
            "invalid_grant",
            format!(
                "Due to a configuration change made by your administrator, or because you moved \
                 to a new location, you must use multi-factor authentication to access \
                 '{resource}'."
            ),
        );
        error.suberror = Some("basic_action");
        error.claims = Some(
            json!({"access_token": {"capolids": {"essential": true, "values": [policy_id]}}})
                .to_string(),
        );
        error
    }

    pub(crate) fn invalid_refresh_token() -> Self {
        Self::new(
            70000,
            "invalid_grant",
            "Provided grant is invalid or malformed. The refresh token is not valid.",
        )
    }

    /// A device authorization request on `consumers`, which serves personal accounts only.
    pub(crate) fn consumers_not_allowed(client_id: &str) -> Self {
        Self::new(
            9_002_332,
            "invalid_request",
            format!(
                "Application '{client_id}' is configured for use by Microsoft Entra users only. \
                 Please do not use the /consumers endpoint to serve this request."
            ),
        )
    }

    /// A device code the person has not approved yet: poll again after the interval.
    pub(crate) fn authorization_pending() -> Self {
        Self::new(
            70016,
            "authorization_pending",
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    }

    /// RFC 8628 §3.5. Entra documents no AADSTS code for it, so none is sent.
    pub(crate) fn slow_down(interval_secs: u64) -> Self {
        let mut error = Self::new(
            0,
            "slow_down",
            format!(
                "The client polled too often. Wait at least {interval_secs} seconds between \
                 polls of this device code."
            ),
        );
        error.has_code = false;
        error
    }

    /// Entra documents `authorization_declined` but not the code it sends with it; 70000
    /// (its generic invalid grant) is our choice. Clients branch on `error`.
    pub(crate) fn authorization_declined() -> Self {
        Self::new(
            70000,
            "authorization_declined",
            "The end user denied the authorization request.",
        )
    }

    pub(crate) fn device_code_expired() -> Self {
        Self::new(
            70020,
            "expired_token",
            "The provided value for the input parameter 'device_code' is not valid. This \
             device code has expired.",
        )
    }

    pub(crate) fn bad_verification_code() -> Self {
        Self::new(
            70018,
            "bad_verification_code",
            "The provided value for the input parameter 'device_code' is not valid. The \
             device code was not recognized.",
        )
    }

    /// Entra's "InvalidDeviceFlowRequest - The request was already authorized or
    /// declined"; that it answers a second redemption this way is our reading.
    pub(crate) fn device_code_redeemed() -> Self {
        Self::new(
            90120,
            "invalid_grant",
            "The request was already authorized and the device code redeemed. Start a new \
             device authorization.",
        )
    }

    // The browser sign-in (authorization code grant with PKCE).

    /// A redirect URI the app did not register: the authorize endpoint shows this on its own
    /// page and never redirects.
    pub(crate) fn redirect_uri_not_registered(redirect_uri: &str, client_id: &str) -> Self {
        Self::new(
            50011,
            "invalid_request",
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the \
                 redirect URIs configured for the application '{client_id}'. Make sure the \
                 redirect URI sent in the request matches one added to your application in the \
                 Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more \
                 about how to fix this."
            ),
        )
    }

    /// A parameter of the authorize request whose value is not one the emulator knows.
    /// AADSTS90023 is Entra's generic "the authentication service request isn't valid".
    pub(crate) fn invalid_parameter(name: &str, value: &str, allowed: &str) -> Self {
        Self::new(
            90023,
            "invalid_request",
            format!(
                "The value '{value}' of the parameter '{name}' is not valid. Expected {allowed}."
            ),
        )
    }

    /// Only `response_type=code` is served (no implicit or hybrid flow).
    pub(crate) fn unsupported_response_type(response_type: &str) -> Self {
        Self::new(
            700_051,
            "unsupported_response_type",
            format!(
                "response_type '{response_type}' is not enabled for the application. The \
                 emulator serves response_type=code only."
            ),
        )
    }

    /// A public client's authorize request without `code_challenge`: Entra allows it, the
    /// emulator is stricter (see docs/emulator.md).
    pub(crate) fn pkce_required() -> Self {
        Self::new(
            900_144,
            "invalid_request",
            "The request must contain the following parameter: 'code_challenge'. The emulator \
             requires Proof Key for Code Exchange (RFC 7636) of public clients.",
        )
    }

    /// A `code_challenge` that cannot come from a valid verifier (S256: 43 base64url
    /// characters; plain: 43 to 128 of `[A-Za-z0-9-._~]`). The code is Entra's
    /// "invalid size of Code_Challenge" as reported; its exact use is our reading.
    pub(crate) fn invalid_code_challenge() -> Self {
        Self::new(
            501_491,
            "invalid_request",
            "Invalid size of Code_Challenge parameter. An S256 challenge is 43 base64url \
             characters; a plain one 43 to 128 characters of [A-Za-z0-9-._~].",
        )
    }

    /// `prompt=none`: the emulator keeps no browser session, so nobody is signed in.
    pub(crate) fn login_required() -> Self {
        Self::new(
            50058,
            "login_required",
            "A silent sign-in request was sent but no user is signed in.",
        )
    }

    /// The person pressed Cancel on the sign-in page.
    pub(crate) fn consent_declined() -> Self {
        Self::new(
            65004,
            "access_denied",
            "User declined to consent to access the app.",
        )
    }

    /// A code the emulator never issued, or issued to another client.
    pub(crate) fn invalid_authorization_code(why: &str) -> Self {
        Self::new(
            70000,
            "invalid_grant",
            format!("Provided grant is invalid or malformed. {why}"),
        )
    }

    pub(crate) fn authorization_code_other_tenant() -> Self {
        Self::new(
            700_005,
            "invalid_grant",
            "Provided Authorization Code is intended to use against other tenant, thus \
             rejected.",
        )
    }

    pub(crate) fn authorization_code_redeemed() -> Self {
        Self::new(
            54005,
            "invalid_grant",
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code \
             or use an existing refresh token.",
        )
    }

    pub(crate) fn authorization_code_expired() -> Self {
        Self::new(
            70008,
            "invalid_grant",
            "The provided authorization code or refresh token has expired due to inactivity. \
             Send a new interactive authorization request for this user and resource.",
        )
    }

    /// The `redirect_uri` of a code redemption differs from the authorize request's. Entra's
    /// current code for it is not documented; 50011 is the one it has used for this text.
    pub(crate) fn authorization_code_redirect_mismatch(redirect_uri: &str) -> Self {
        Self::new(
            50011,
            "invalid_grant",
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the \
                 redirect URI specified in the authorization request the code was issued for."
            ),
        )
    }

    /// The PKCE verifier does not match the challenge (or is malformed, or comes without
    /// a challenge).
    pub(crate) fn code_verifier_mismatch(why: &str) -> Self {
        Self::new(
            501_481,
            "invalid_grant",
            format!(
                "The Code_Verifier does not match the code_challenge supplied in the \
                 authorization request. {why}"
            ),
        )
    }

    /// The redemption names another resource than the sign-in asked for.
    pub(crate) fn authorization_code_target_mismatch(asked: &str, signed_in_for: &str) -> Self {
        Self::new(
            70011,
            "invalid_scope",
            format!(
                "The provided value for the input parameter 'scope' is not valid. The \
                 authorization code was issued for '{signed_in_for}', not '{asked}'."
            ),
        )
    }
}
