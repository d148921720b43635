//! Device codes waiting for a person: the [`DeviceCodes`] handle tests and tools use to
//! approve, decline, slow down or expire them, and the operations the admin API and the
//! verification page (`/devicelogin`) share. The device code itself (the client's secret)
//! never leaves the emulator through any of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::EmulatorError;
use crate::state::{AppState, DeviceCodeGrant, DeviceCodeState};

/// What RFC 8628 §3.5 adds to the interval of a client that polled too often.
pub(crate) const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Where a device code stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceCodeStatus {
    /// Waiting for a person to approve or decline it.
    Pending,
    /// Approved; the client's next poll gets the token.
    Approved,
    /// Declined; the client's polls answer `authorization_declined`.
    Declined,
    /// Redeemed for a token; it cannot be used again.
    Redeemed,
    /// Its lifetime ran out; polls answer `expired_token`.
    Expired,
}

impl DeviceCodeStatus {
    /// The status as the admin API writes it: `pending`, `approved`, `declined`,
    /// `redeemed` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Declined => "declined",
            Self::Redeemed => "redeemed",
            Self::Expired => "expired",
        }
    }
}

/// A device code as the admin API and [`DeviceCodes::list`] show it: everything but the
/// device code itself, which is the client's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceCodeInfo {
    /// The code a person types at the verification page, such as `BPPVYQZMA`.
    pub user_code: String,
    /// The application that asked for it.
    pub client_id: String,
    /// The tenant it signs in to.
    pub tenant_id: String,
    /// The scope of the device authorization request, as sent.
    pub scope: String,
    /// Where it stands.
    pub status: DeviceCodeStatus,
    /// The user who approved it (UPN), once approved.
    pub approved_by: Option<String>,
    /// The interval the client must keep between polls now (it grows by 5 s with every
    /// `slow_down`).
    pub interval: Duration,
    /// How long it remains valid (zero once expired).
    pub expires_in: Duration,
    /// How many times the client polled the token endpoint with it.
    pub polls: u32,
    /// How many of those polls were answered `slow_down`.
    pub slow_downs: u32,
}

impl DeviceCodeInfo {
    pub(crate) fn of(grant: &DeviceCodeGrant, now: Instant) -> Self {
        let (status, approved_by) = match &grant.state {
            _ if grant.is_expired(now)
                && !matches!(grant.state, DeviceCodeState::Redeemed { .. }) =>
            {
                (DeviceCodeStatus::Expired, None)
            }
            DeviceCodeState::Pending => (DeviceCodeStatus::Pending, None),
            DeviceCodeState::Approved { upn, .. } => {
                (DeviceCodeStatus::Approved, Some(upn.clone()))
            }
            DeviceCodeState::Declined => (DeviceCodeStatus::Declined, None),
            DeviceCodeState::Redeemed { upn } => (DeviceCodeStatus::Redeemed, Some(upn.clone())),
        };
        Self {
            user_code: grant.user_code.clone(),
            client_id: grant.client_id.clone(),
            tenant_id: grant.tenant_id.clone(),
            scope: grant.scope.clone(),
            status,
            approved_by,
            interval: grant.interval,
            expires_in: grant.expires_at().saturating_duration_since(now),
            polls: grant.polls,
            slow_downs: grant.slow_downs,
        }
    }
}

/// Why a device code operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DeviceCodeProblem {
    #[error(
        "no device code with the user code '{0}' (check the code; it may have expired long ago)"
    )]
    Unknown(String),
    #[error("the code '{0}' has expired: start the sign-in again on the device")]
    Expired(String),
    #[error("the code '{0}' is {1}, not pending: start the sign-in again on the device")]
    NotPending(String, &'static str),
    #[error("no user '{upn}' in the code's tenant {tenant}")]
    UnknownUser { upn: String, tenant: String },
    #[error("the user '{0}' is disabled")]
    UserDisabled(String),
    #[error(
        "the user '{0}' is federated to another identity provider, which the emulator does not have: they cannot sign in"
    )]
    UserFederated(String),
    #[error("the password is not right")]
    BadPassword,
}

impl DeviceCodeProblem {
    fn user_code(&self) -> String {
        match self {
            Self::Unknown(code) | Self::Expired(code) | Self::NotPending(code, _) => code.clone(),
            _ => String::new(),
        }
    }
}

impl From<DeviceCodeProblem> for EmulatorError {
    fn from(problem: DeviceCodeProblem) -> Self {
        Self::DeviceCode {
            user_code: problem.user_code(),
            problem: problem.to_string(),
        }
    }
}

/// Upper case without spaces and hyphens, so `bppv-yqzma` finds `BPPVYQZMA`.
pub(crate) fn normalize_user_code(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// Runs `change` on the pending, unexpired code `user_code`.
fn with_pending<T>(
    state: &AppState,
    user_code: &str,
    change: impl FnOnce(&mut DeviceCodeGrant, Instant) -> Result<T, DeviceCodeProblem>,
) -> Result<T, DeviceCodeProblem> {
    let wanted = normalize_user_code(user_code);
    let now = Instant::now();
    let mut codes = state.device_codes();
    let grant = codes
        .iter_mut()
        .find(|grant| grant.user_code == wanted)
        .ok_or_else(|| DeviceCodeProblem::Unknown(wanted.clone()))?;
    if grant.is_expired(now) {
        return Err(DeviceCodeProblem::Expired(wanted));
    }
    let status = DeviceCodeInfo::of(grant, now).status;
    if status != DeviceCodeStatus::Pending {
        return Err(DeviceCodeProblem::NotPending(wanted, status.as_str()));
    }
    change(grant, now)
}

/// The tenant of the pending code `user_code`, to check a user against.
pub(crate) fn pending_tenant(
    state: &AppState,
    user_code: &str,
) -> Result<String, DeviceCodeProblem> {
    with_pending(state, user_code, |grant, _| Ok(grant.tenant_id.clone()))
}

/// Approves `user_code` as `upn`, who must be an enabled, non-federated user of the code's
/// tenant. (The verification page checks the password first; the admin API does not.)
pub(crate) fn approve(
    state: &AppState,
    user_code: &str,
    upn: &str,
) -> Result<DeviceCodeInfo, DeviceCodeProblem> {
    let tenant_id = pending_tenant(state, user_code)?;
    let (object_id, upn) = {
        let directory = state.directory();
        let user = directory
            .tenant(&tenant_id)
            .and_then(|tenant| tenant.user(upn))
            .ok_or_else(|| DeviceCodeProblem::UnknownUser {
                upn: upn.to_owned(),
                tenant: tenant_id.clone(),
            })?;
        if user.disabled {
            return Err(DeviceCodeProblem::UserDisabled(user.upn.clone()));
        }
        if user.federated {
            return Err(DeviceCodeProblem::UserFederated(user.upn.clone()));
        }
        (user.object_id.clone(), user.upn.clone())
    };
    with_pending(state, user_code, |grant, now| {
        grant.state = DeviceCodeState::Approved {
            user_object_id: object_id,
            upn,
        };
        tracing::debug!(client_id = %grant.client_id, "device code approved");
        Ok(DeviceCodeInfo::of(grant, now))
    })
}

/// Declines `user_code`.
pub(crate) fn decline(
    state: &AppState,
    user_code: &str,
) -> Result<DeviceCodeInfo, DeviceCodeProblem> {
    with_pending(state, user_code, |grant, now| {
        grant.state = DeviceCodeState::Declined;
        tracing::debug!(client_id = %grant.client_id, "device code declined");
        Ok(DeviceCodeInfo::of(grant, now))
    })
}

/// Answers the next poll of `user_code` with `slow_down`, as a busy server would.
pub(crate) fn slow_down(
    state: &AppState,
    user_code: &str,
) -> Result<DeviceCodeInfo, DeviceCodeProblem> {
    with_pending(state, user_code, |grant, now| {
        grant.slow_down_next = true;
        Ok(DeviceCodeInfo::of(grant, now))
    })
}

/// Ends the lifetime of `user_code` now.
pub(crate) fn expire(
    state: &AppState,
    user_code: &str,
) -> Result<DeviceCodeInfo, DeviceCodeProblem> {
    with_pending(state, user_code, |grant, now| {
        grant.lifetime = now.saturating_duration_since(grant.issued);
        Ok(DeviceCodeInfo::of(grant, now))
    })
}

/// Every device code the emulator remembers, oldest first.
pub(crate) fn list(state: &AppState) -> Vec<DeviceCodeInfo> {
    let now = Instant::now();
    state
        .device_codes()
        .iter()
        .map(|grant| DeviceCodeInfo::of(grant, now))
        .collect()
}

/// The device codes of a running emulator: approve or decline them as a person at the
/// verification page would, without the page. Get one from
/// [`Emulator::device_codes`](crate::Emulator::device_codes); it is cheap to clone and can
/// be moved into a device code grant's callback, so a test or a demo signs in unattended.
///
/// ```no_run
/// # async fn demo() -> Result<(), d365_emulator::EmulatorError> {
/// let emulator = d365_emulator::Emulator::builder().start().await?;
/// let codes = emulator.device_codes();
/// // ... a client asked /{tenant}/oauth2/v2.0/devicecode and showed the user code ...
/// for code in codes.list() {
///     codes.approve(&code.user_code, "alice@contoso.onmicrosoft.com")?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DeviceCodes {
    state: Arc<AppState>,
}

impl DeviceCodes {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    /// Every device code the emulator remembers (codes are forgotten ten minutes after
    /// they expire), oldest first.
    pub fn list(&self) -> Vec<DeviceCodeInfo> {
        list(&self.state)
    }

    /// Approves the pending code `user_code` (any letter case; spaces and hyphens ignored)
    /// as the user `upn` of the code's tenant, without a password: the client's next poll
    /// gets a token for that user.
    ///
    /// # Errors
    ///
    /// [`EmulatorError::DeviceCode`] when the code is unknown, expired or not pending, or
    /// the user is unknown in the code's tenant, disabled or federated.
    pub fn approve(&self, user_code: &str, upn: &str) -> Result<DeviceCodeInfo, EmulatorError> {
        Ok(approve(&self.state, user_code, upn)?)
    }

    /// Declines the pending code `user_code`: the client's next poll answers
    /// `authorization_declined`.
    ///
    /// # Errors
    ///
    /// [`EmulatorError::DeviceCode`] when the code is unknown, expired or not pending.
    pub fn decline(&self, user_code: &str) -> Result<DeviceCodeInfo, EmulatorError> {
        Ok(decline(&self.state, user_code)?)
    }

    /// Answers the next poll of the pending code `user_code` with `slow_down`, as a busy
    /// server would; its interval grows by 5 seconds (RFC 8628 §3.5), and a poll sooner
    /// than that is answered `slow_down` again.
    ///
    /// # Errors
    ///
    /// [`EmulatorError::DeviceCode`] when the code is unknown, expired or not pending.
    pub fn slow_down(&self, user_code: &str) -> Result<DeviceCodeInfo, EmulatorError> {
        Ok(slow_down(&self.state, user_code)?)
    }

    /// Ends the lifetime of the pending code `user_code` now: the client's next poll
    /// answers `expired_token`.
    ///
    /// # Errors
    ///
    /// [`EmulatorError::DeviceCode`] when the code is unknown, already expired or not
    /// pending.
    pub fn expire(&self, user_code: &str) -> Result<DeviceCodeInfo, EmulatorError> {
        Ok(expire(&self.state, user_code)?)
    }
}

impl std::fmt::Debug for DeviceCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCodes")
            .field("base_url", &self.state.base_url)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_found_in_any_form_people_type() {
        for typed in ["BPPVYQZMA", "bppvyqzma", "BPPV-YQZMA", " bpp vyq zma "] {
            assert_eq!(normalize_user_code(typed), "BPPVYQZMA", "{typed:?}");
        }
    }
}
