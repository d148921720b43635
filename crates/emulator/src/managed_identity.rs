//! The Azure host the emulator's managed identities are attached to: [`ManagedIdentityHost`],
//! the handle tests use to learn its endpoints (the IMDS and App Service shapes, both on the
//! emulator's loopback base URL) and its secret `X-IDENTITY-HEADER` value, and to make the
//! next requests fail the way a host that is updating, throttling or broken does
//! ([`ManagedIdentityFault`]). The endpoints themselves are in `identity/managed_identity.rs`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use secrecy::SecretString;

use crate::identity::random_string;
use crate::state::AppState;

/// The most faults waiting at once; more are refused (the admin API answers 400).
pub(crate) const MAX_PENDING_FAULTS: usize = 10_000;
/// The longest `Retry-After` a 429 fault may carry.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How one managed identity request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManagedIdentityFault {
    /// `404 Not Found`: IMDS is being updated (clients retry with back-off).
    NotFound,
    /// `410 Gone`: IMDS is being updated and back within 70 seconds (clients keep retrying
    /// for at least 70 s).
    Gone,
    /// `429 Too Many Requests` with `Retry-After` in whole seconds.
    TooManyRequests {
        /// The wait the answer asks for (rounded down to whole seconds).
        retry_after: Duration,
    },
    /// `500 Internal Server Error`.
    ServerError,
}

impl ManagedIdentityFault {
    /// The HTTP status of the answer.
    pub fn status(self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::Gone => 410,
            Self::TooManyRequests { .. } => 429,
            Self::ServerError => 500,
        }
    }
}

/// The managed identity endpoints' state: the secret header, the faults to answer the next
/// requests with, and how many requests came.
pub(crate) struct ManagedIdentityState {
    identity_header: SecretString,
    faults: Mutex<VecDeque<ManagedIdentityFault>>,
    requests: AtomicU64,
}

impl std::fmt::Debug for ManagedIdentityState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentityState")
            .field("identity_header", &"[redacted]")
            .field("faults", &*self.faults())
            .field("requests", &self.requests.load(Ordering::Relaxed))
            .finish()
    }
}

impl ManagedIdentityState {
    /// A new random identity header (256 bits), as App Service rotates one per host.
    pub(crate) fn new() -> Self {
        Self {
            identity_header: SecretString::from(random_string(2)),
            faults: Mutex::new(VecDeque::new()),
            requests: AtomicU64::new(0),
        }
    }

    pub(crate) fn identity_header(&self) -> &SecretString {
        &self.identity_header
    }

    fn faults(&self) -> MutexGuard<'_, VecDeque<ManagedIdentityFault>> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request and takes the fault it must be answered with, if any.
    pub(crate) fn next_request(&self) -> Option<ManagedIdentityFault> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.faults().pop_front()
    }

    /// Queues `count` answers with `fault` after those already queued; `false` (and nothing
    /// queued) when that would pass [`MAX_PENDING_FAULTS`].
    pub(crate) fn add_faults(&self, fault: ManagedIdentityFault, count: usize) -> bool {
        let mut faults = self.faults();
        if faults.len().saturating_add(count) > MAX_PENDING_FAULTS {
            return false;
        }
        faults.extend(std::iter::repeat_n(fault, count));
        true
    }

    pub(crate) fn clear_faults(&self) {
        self.faults().clear();
    }

    pub(crate) fn pending_faults(&self) -> Vec<ManagedIdentityFault> {
        self.faults().iter().copied().collect()
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// The host of the managed identities, from [`Emulator::managed_identity`]: its endpoints,
/// its secret identity header, and fault modes for client retry tests. Cheap to clone;
/// usable while the emulator runs. `Debug` never shows the identity header.
///
/// [`Emulator::managed_identity`]: crate::Emulator::managed_identity
#[derive(Clone)]
pub struct ManagedIdentityHost {
    state: Arc<AppState>,
}

impl std::fmt::Debug for ManagedIdentityHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentityHost")
            .field("imds_endpoint", &self.imds_endpoint())
            .field("app_service_endpoint", &self.app_service_endpoint())
            .field("identity_header", &"[redacted]")
            .finish()
    }
}

impl ManagedIdentityHost {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    /// `{base_url}/metadata/identity/oauth2/token`: the IMDS token endpoint (needs the
    /// header `Metadata: true`). Clients that read `AZURE_POD_IDENTITY_AUTHORITY_HOST` take
    /// `{base_url}` as that host.
    pub fn imds_endpoint(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.state.base_url)
    }

    /// `{base_url}/msi/token`: the App Service token endpoint, the value of
    /// `IDENTITY_ENDPOINT` (needs the header `X-IDENTITY-HEADER` = [`Self::identity_header`]).
    pub fn app_service_endpoint(&self) -> String {
        format!("{}/msi/token", self.state.base_url)
    }

    /// The secret the App Service endpoint expects in `X-IDENTITY-HEADER`: the value of
    /// `IDENTITY_HEADER`. Random, one per emulator.
    pub fn identity_header(&self) -> SecretString {
        self.state.managed_identity.identity_header().clone()
    }

    /// Answers the next `count` managed identity requests (either shape, whatever they ask)
    /// with `fault`, after the faults already queued. At most 10,000 wait at once:
    /// [`EmulatorError::InvalidConfig`](crate::EmulatorError::InvalidConfig) past that, or
    /// for a `Retry-After` over an hour.
    pub fn fail_next(
        &self,
        fault: ManagedIdentityFault,
        count: usize,
    ) -> Result<(), crate::EmulatorError> {
        if let ManagedIdentityFault::TooManyRequests { retry_after } = fault
            && retry_after > MAX_RETRY_AFTER
        {
            return Err(crate::EmulatorError::InvalidConfig(
                "a Retry-After of more than an hour".into(),
            ));
        }
        if self.state.managed_identity.add_faults(fault, count) {
            Ok(())
        } else {
            Err(crate::EmulatorError::InvalidConfig(format!(
                "more than {MAX_PENDING_FAULTS} managed identity faults waiting"
            )))
        }
    }

    /// Forgets the faults not yet answered.
    pub fn clear_faults(&self) {
        self.state.managed_identity.clear_faults();
    }

    /// The faults still to be answered, in order.
    pub fn pending_faults(&self) -> Vec<ManagedIdentityFault> {
        self.state.managed_identity.pending_faults()
    }

    /// How many requests the managed identity endpoints received since the start (faulted
    /// ones included): what a retry test counts.
    pub fn requests(&self) -> u64 {
        self.state.managed_identity.requests()
    }
}
