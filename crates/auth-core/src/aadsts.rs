//! What each AADSTS code means and how users usually fix it.
//!
//! The tables are data: one row per code (or family of codes), so a new code is one line.
//! Meanings and fixes come from Microsoft's error reference and the reports collected in
//! `shared/reference/entra-id.md` §12.
//!
//! A few `error` values name their failure exactly, whatever AADSTS code comes with them:
//! the polling errors of the device authorization grant (RFC 8628 §3.5, and Entra's
//! `authorization_declined`). They are in [`KNOWN_ERRORS`] and win over the code, because
//! the code Entra sends with some of them is not documented.

use crate::error::ErrorKind;

/// One known AADSTS code.
#[derive(Debug)]
pub(crate) struct KnownCode {
    pub(crate) codes: &'static [u32],
    pub(crate) kind: ErrorKind,
    pub(crate) meaning: &'static str,
    pub(crate) fix: &'static str,
}

const fn row(
    codes: &'static [u32],
    kind: ErrorKind,
    meaning: &'static str,
    fix: &'static str,
) -> KnownCode {
    KnownCode {
        codes,
        kind,
        meaning,
        fix,
    }
}

pub(crate) static KNOWN_CODES: &[KnownCode] = &[
    row(
        &[7000215],
        ErrorKind::InvalidClientSecret,
        "the client secret is not valid",
        "send the secret's Value, not its Secret ID: the portal shows the value once, when the secret is created (App registrations > Certificates & secrets); create a new secret if it was not saved",
    ),
    row(
        &[7000222],
        ErrorKind::ClientSecretExpired,
        "the client secret has expired",
        "create a new client secret under App registrations > Certificates & secrets and update the configuration, or switch to a certificate",
    ),
    row(
        &[7000218, 7000216],
        ErrorKind::ClientCredentialMissing,
        "the request carried no client secret or client assertion, and the application is confidential",
        "send the application's client secret or certificate; for the password grant without a secret, set 'Allow public client flows' to Yes under App registrations > Authentication",
    ),
    row(
        &[700025],
        ErrorKind::PublicClientSentCredential,
        "a public client application sent a client secret or assertion",
        "drop the secret for this application, or turn off 'Allow public client flows' so it is treated as confidential",
    ),
    row(
        &[700016],
        ErrorKind::ClientNotFound,
        "no application with this client id exists in the tenant",
        "check the client (application) id and the tenant; an application registered in another tenant must be consented in this one (for Dataverse, an administrator grants consent or creates the application user)",
    ),
    row(
        &[700027, 50012],
        ErrorKind::InvalidClientAssertion,
        "the client assertion's signature could not be verified with any certificate registered on the application",
        "upload the certificate whose private key signs the assertion (App registrations > Certificates & secrets) and check that the thumbprint in the assertion header matches it",
    ),
    row(
        &[700030],
        ErrorKind::InvalidClientAssertion,
        "the certificate is not trusted for subject name and issuer authentication",
        "upload the certificate itself, or configure trusted subject name and issuer for the application and send the x5c chain",
    ),
    row(
        &[50013],
        ErrorKind::InvalidClientAssertion,
        "the client assertion is not valid: malformed, or already used (its jti was seen before)",
        "create a new assertion for every request, with a unique jti; d365's certificate credential does this, so check an external assertion source",
    ),
    row(
        &[700021],
        ErrorKind::InvalidClientAssertion,
        "the client assertion's iss or sub is not the client id sent with it",
        "set both iss and sub of the assertion to the application (client) id",
    ),
    row(
        &[700024],
        ErrorKind::ClientAssertionExpired,
        "the client assertion is outside its validity window (exp/nbf)",
        "synchronize the machine's clock (NTP) and create a fresh assertion for each request with an expiry of at most 10 minutes; a workload identity token file must be re-read when it changes",
    ),
    row(
        &[7000112],
        ErrorKind::ApplicationDisabled,
        "the application is disabled in this tenant",
        "re-enable the service principal (Enterprise applications > Properties > Enabled for users to sign in)",
    ),
    row(
        &[90002],
        ErrorKind::TenantNotFound,
        "the tenant was not found",
        "check the tenant id or domain, and that the authority host is in the same cloud as the tenant (public, US Government or China)",
    ),
    row(
        &[90038, 900382, 900432],
        ErrorKind::WrongCloud,
        "the request crossed Microsoft clouds: the tenant or application lives in another national cloud",
        "use the authority of the tenant's cloud: login.microsoftonline.us for GCC High and DoD, login.chinacloudapi.cn for China, login.microsoftonline.com otherwise",
    ),
    row(
        &[9001023, 90124, 90130],
        ErrorKind::TenantNotAllowed,
        "this grant is not allowed on the `common` or `consumers` endpoint",
        "use the tenant id, a verified domain, or `organizations` in the authority",
    ),
    row(
        &[50049],
        ErrorKind::UnknownInstance,
        "the authority host is not a known Microsoft identity host",
        "fix the authority host, or turn off instance discovery for a private or emulated host",
    ),
    row(
        &[50126],
        ErrorKind::InvalidUserCredentials,
        "the user name or password is wrong (federated users also get this from the password grant)",
        "check the user name (UPN) and the password; a user federated to an on-premises identity provider cannot use the password grant: use client credentials or the device code grant",
    ),
    row(
        &[50034],
        ErrorKind::UserNotFound,
        "the user does not exist in this tenant",
        "check the user principal name and that the authority's tenant is the user's home tenant",
    ),
    row(
        &[50053],
        ErrorKind::AccountLocked,
        "the account is locked, or sign-in was blocked as suspicious",
        "wait for the lockout to end or ask an administrator to unblock the account",
    ),
    row(
        &[50055, 50144],
        ErrorKind::PasswordExpired,
        "the user's password has expired",
        "reset the password interactively, then use the new one",
    ),
    row(
        &[50057],
        ErrorKind::AccountDisabled,
        "the user account is disabled",
        "ask an administrator to enable the account, or use another identity",
    ),
    row(
        &[50076],
        ErrorKind::MfaRequired,
        "multi-factor authentication is required for this user, and the password grant cannot perform it",
        "use the client credentials grant with an application user, or the device code grant, which lets the user complete MFA in a browser",
    ),
    row(
        &[50079],
        ErrorKind::MfaRegistrationRequired,
        "the user must register for multi-factor authentication, which the password grant cannot do",
        "use the client credentials grant with an application user, or the device code grant; or have the user complete MFA registration interactively",
    ),
    row(
        &[53003],
        ErrorKind::ConditionalAccessBlocked,
        "a Conditional Access policy blocked the sign-in",
        "ask an administrator to review the Conditional Access sign-in logs for this request; a non-interactive grant may need a policy exclusion or a compliant device",
    ),
    row(
        &[65001],
        ErrorKind::ConsentRequired,
        "the user or an administrator has not consented to the application's use of Dynamics CRM (user_impersonation)",
        "grant admin consent for the Dynamics CRM user_impersonation permission under App registrations > API permissions; app-only grants need no consent but an application user in the environment",
    ),
    row(
        &[50011],
        ErrorKind::UnauthorizedClient,
        "the redirect URI the sign-in sent is not one registered for the application",
        "add it under App registrations > Authentication: for a desktop tool, a Mobile and desktop applications redirect URI http://localhost (any port matches)",
    ),
    row(
        &[501481, 50148],
        ErrorKind::InvalidGrant,
        "the PKCE code verifier does not match the code challenge of the sign-in",
        "sign in again; if it repeats, the code was redeemed by another process than the one that started the sign-in",
    ),
    row(
        &[54005],
        ErrorKind::InvalidGrant,
        "the authorization code was already redeemed",
        "sign in again: a code is good for one redemption",
    ),
    row(
        &[50058],
        ErrorKind::InteractionRequired,
        "a silent sign-in (prompt=none) found no session in the browser",
        "sign in with a prompt (LoginPrompt=Auto or Always)",
    ),
    row(
        &[650057],
        ErrorKind::PermissionMissing,
        "the application does not list the requested API among its permissions",
        "add the Dynamics CRM user_impersonation permission under App registrations > API permissions",
    ),
    row(
        &[500011, 50001],
        ErrorKind::ResourceNotFound,
        "the resource (the Dataverse organization) was not found in the tenant",
        "check the organization URL and that the environment belongs to this tenant; do not encode or double the resource URL",
    ),
    row(
        &[70011, 700022],
        ErrorKind::InvalidScope,
        "the scope is malformed or names more than one resource",
        "request exactly one resource, as https://{org}/.default for confidential clients or https://{org}/user_impersonation for public clients",
    ),
    row(
        &[901002],
        ErrorKind::ResourceParameterOnV2,
        "the request sent the v1 `resource` parameter to the v2 endpoint",
        "send scope={org}/.default to the v2 endpoint, or use the v1 endpoint (/oauth2/token) with resource=",
    ),
    row(
        &[900144, 90014],
        ErrorKind::MissingParameter,
        "a required parameter is missing from the request body",
        "the error description names the parameter; if it is client_id or grant_type, check the grant's configuration",
    ),
    row(
        &[70000, 70008, 700082, 50173, 70043],
        ErrorKind::RefreshTokenRejected,
        "the refresh token is invalid, expired or revoked",
        "run the original grant again (d365 does this automatically for the password grant); a revoked token follows a password change or an administrator's sign-out",
    ),
    row(
        &[70016],
        ErrorKind::AuthorizationPending,
        "the user has not finished signing in yet",
        "keep polling at the interval the server gave; d365's device code grant does this for you",
    ),
    row(
        &[70019, 70020],
        ErrorKind::CodeExpired,
        "the device code expired before the user finished signing in",
        "start the sign-in again and enter the new code within its lifetime (15 minutes at Entra ID)",
    ),
    row(
        &[70018],
        ErrorKind::InvalidGrant,
        "the device or user code was not recognized",
        "start the sign-in again; poll with the device_code of the latest device authorization response, from the same client id and tenant",
    ),
    row(
        &[70003],
        ErrorKind::UnsupportedGrantType,
        "the identity provider does not support this grant type",
        "check the grant type; Entra supports client_credentials, password, refresh_token and the device code grant, AD FS the first three",
    ),
    row(
        &[50196],
        ErrorKind::Throttled,
        "Entra ID detected a loop: the same token was requested too often",
        "cache tokens (TokenCache) and share them between workers (a shared TokenStore) instead of asking for a new token per call",
    ),
];

/// The row for an AADSTS code, if we know it.
pub(crate) fn lookup(code: u32) -> Option<&'static KnownCode> {
    KNOWN_CODES.iter().find(|row| row.codes.contains(&code))
}

/// An `error` value that names its failure whatever the AADSTS code.
#[derive(Debug)]
pub(crate) struct KnownError {
    pub(crate) error: &'static str,
    pub(crate) kind: ErrorKind,
    pub(crate) meaning: &'static str,
    pub(crate) fix: &'static str,
}

const fn error_row(
    error: &'static str,
    kind: ErrorKind,
    meaning: &'static str,
    fix: &'static str,
) -> KnownError {
    KnownError {
        error,
        kind,
        meaning,
        fix,
    }
}

/// The polling errors of the device authorization grant (RFC 8628 §3.5 and Entra's
/// device code documentation).
pub(crate) static KNOWN_ERRORS: &[KnownError] = &[
    error_row(
        "authorization_pending",
        ErrorKind::AuthorizationPending,
        "the user has not finished signing in yet",
        "keep polling at the interval the server gave; d365's device code grant does this for you",
    ),
    error_row(
        "slow_down",
        ErrorKind::SlowDown,
        "the client polled the token endpoint too often",
        "add 5 seconds to the polling interval, for this and every later poll (RFC 8628 §3.5); d365's device code grant does this for you",
    ),
    error_row(
        "authorization_declined",
        ErrorKind::AuthorizationDeclined,
        "the user declined the sign-in request",
        "start the sign-in again and approve it, or sign in with another account",
    ),
    error_row(
        "access_denied",
        ErrorKind::AuthorizationDeclined,
        "the user (or a policy) denied the sign-in request",
        "start the sign-in again and approve it; if a policy denies it, ask an administrator which one",
    ),
    error_row(
        "expired_token",
        ErrorKind::CodeExpired,
        "the device code expired before the user finished signing in",
        "start the sign-in again and enter the new code within its lifetime (15 minutes at Entra ID)",
    ),
    error_row(
        "bad_verification_code",
        ErrorKind::InvalidGrant,
        "the device code sent to the token endpoint was not recognized",
        "start the sign-in again; poll with the device_code of the latest device authorization response, from the same client id and tenant",
    ),
];

/// AD FS's refusals: AD FS sends no `error_codes`; the `MSISnnnn` code opens its
/// `error_description` (`MSIS9659: Invalid 'username' or 'password'.`). Codes and
/// meanings from `shared/reference/on-premises.md` §2; the fixes are the usual ones for
/// AD FS 2016/2019 with Dynamics 365 on-premises.
pub(crate) static KNOWN_MSIS_CODES: &[KnownCode] = &[
    row(
        &[9602],
        ErrorKind::ResourceNotFound,
        "AD FS has no relying party trust whose identifier is the `resource` that was sent",
        "send the organization URL exactly as the Dynamics 365 relying party trust lists it (with its port and a trailing '/'), or add that identifier to the trust in AD FS Management",
    ),
    row(
        &[9605],
        ErrorKind::PermissionMissing,
        "the client is not permitted to access the resource (no application permission for this relying party)",
        "on the AD FS server run Grant-AdfsApplicationPermission -ClientRoleIdentifier <client id> -ServerRoleIdentifier <organization URL with trailing '/'> -ScopeNames openid",
    ),
    row(
        &[9607],
        ErrorKind::ClientNotFound,
        "AD FS has no client with this client id",
        "register the client on the AD FS server (Add-AdfsClient, or an application group in AD FS Management) and use its ClientId",
    ),
    row(
        &[9612],
        ErrorKind::InvalidGrant,
        "the authorization code or refresh token is not valid: unknown, already used, expired, or issued to another client",
        "sign in again (d365 login); an authorization code can be redeemed once, by the client and redirect URI it was issued for",
    ),
    row(
        &[9615],
        ErrorKind::RefreshTokenRejected,
        "AD FS refused the refresh token",
        "sign in again; if this happens after a few hours, check the relying party's refresh token lifetime (Set-AdfsRelyingPartyTrust -IssueOAuthRefreshTokensTo)",
    ),
    row(
        &[9622],
        ErrorKind::InvalidClientAssertion,
        "client authentication failed: the secret is wrong, or the assertion's certificate, signature or algorithm is not accepted",
        "check the client secret; for a certificate, register it on the AD FS client (Set-AdfsClient / the application group) and sign the assertion RS256 with the SHA-1 thumbprint in x5t (d365 does this for AD FS authorities)",
    ),
    row(
        &[9658, 9659],
        ErrorKind::InvalidUserCredentials,
        "AD FS refused the user name or password",
        "check the password, and write the user as DOMAIN\\user or user@domain (the UPN); the account must not be locked or expired in Active Directory",
    ),
];

/// The MSIS code that opens an AD FS `error_description`, if there is one.
pub(crate) fn msis_code(description: &str) -> Option<u32> {
    let rest = description.trim_start().strip_prefix("MSIS")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 6 {
        return None;
    }
    rest[..digits].parse().ok()
}

/// The row for an MSIS code, if it is one we know.
pub(crate) fn lookup_msis(code: u32) -> Option<&'static KnownCode> {
    KNOWN_MSIS_CODES
        .iter()
        .find(|row| row.codes.contains(&code))
}

/// The row for an `error` value that names its failure exactly, if it is one.
pub(crate) fn lookup_error(error: &str) -> Option<&'static KnownError> {
    KNOWN_ERRORS.iter().find(|row| row.error == error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes issue #2 requires a hint for.
    const REQUIRED: &[u32] = &[
        7000215, 7000222, 7000218, 700016, 700027, 700024, 90002, 50126, 50076, 50079, 50034,
        53003, 65001, 500011, 901002, 9001023, 900382,
    ];

    #[test]
    fn every_required_code_has_a_hint() {
        for code in REQUIRED {
            let row = lookup(*code).unwrap_or_else(|| panic!("AADSTS{code} has no row"));
            assert!(!row.fix.is_empty() && !row.meaning.is_empty());
        }
    }

    #[test]
    fn polling_errors_are_classified_by_their_error_value() {
        for (error, kind) in [
            ("authorization_pending", ErrorKind::AuthorizationPending),
            ("slow_down", ErrorKind::SlowDown),
            ("authorization_declined", ErrorKind::AuthorizationDeclined),
            ("access_denied", ErrorKind::AuthorizationDeclined),
            ("expired_token", ErrorKind::CodeExpired),
            ("bad_verification_code", ErrorKind::InvalidGrant),
        ] {
            let row = lookup_error(error).unwrap_or_else(|| panic!("{error} has no row"));
            assert_eq!(row.kind, kind, "{error}");
            assert!(!row.fix.is_empty() && !row.meaning.is_empty());
        }
        assert!(lookup_error("invalid_grant").is_none());
        let mut seen = std::collections::HashSet::new();
        for row in KNOWN_ERRORS {
            assert!(seen.insert(row.error), "{} is listed twice", row.error);
        }
    }

    #[test]
    fn msis_codes_are_read_from_the_description() {
        assert_eq!(
            msis_code("MSIS9659: Invalid 'username' or 'password'."),
            Some(9659)
        );
        assert_eq!(
            msis_code("  MSIS9622: Client authentication failed."),
            Some(9622)
        );
        assert_eq!(
            msis_code("AADSTS50126: Error validating credentials."),
            None
        );
        assert_eq!(msis_code("MSIS: no digits"), None);
        assert_eq!(msis_code("MSIS12345678901234567890: too long"), None);
        for code in [9602, 9605, 9607, 9612, 9622, 9659] {
            let row = lookup_msis(code).unwrap_or_else(|| panic!("MSIS{code} has no row"));
            assert!(!row.fix.is_empty() && !row.meaning.is_empty());
        }
    }

    #[test]
    fn no_code_appears_twice() {
        let mut seen = std::collections::HashSet::new();
        for row in KNOWN_CODES {
            for code in row.codes {
                assert!(seen.insert(code), "AADSTS{code} is listed twice");
            }
        }
    }
}
