//! [`CancelHandle`]: how a caller stops a sign-in that waits for a person.

use std::fmt;
use std::sync::Arc;

use tokio::sync::Notify;

/// Stops the device code sign-ins that are waiting for a person, from anywhere: a Cancel
/// button, a Ctrl-C handler, a deadline of your own.
///
/// [`cancel`](Self::cancel) ends every sign-in of the grants holding this handle that is in
/// progress at that moment: each `request_token` returns
/// [`AuthError::Cancelled`](d365_auth_core::AuthError::Cancelled) at once, and nothing more
/// is sent (not even the poll that was due). Sign-ins started afterwards are not affected,
/// so one grant can be cancelled and asked again. Dropping the `request_token` future also
/// stops the sign-in; the handle is for code that does not own that future (it may be
/// inside a [`TokenCache`](d365_auth_core::TokenCache) or a Web API client).
///
/// Cheap to clone; clones cancel the same sign-ins.
///
/// # Examples
///
/// ```
/// use d365_auth_device_code::{CancelHandle, DeviceCode};
///
/// let cancel = CancelHandle::new();
/// let grant = DeviceCode::builder()
///     .tenant("organizations")
///     .client_id("51f81489-12ee-4a9e-aaae-a2591f45987d")
///     .on_message(|message| eprintln!("{message}"))
///     .cancel_handle(cancel.clone())
///     .build()?;
/// // Later, from a UI thread or a signal handler:
/// cancel.cancel();
/// # let _ = grant;
/// # Ok::<(), d365_auth_core::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct CancelHandle {
    notify: Arc<Notify>,
}

impl CancelHandle {
    /// A handle that cancels nothing until [`cancel`](Self::cancel) is called.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends the sign-ins in progress now (see the type's documentation).
    pub fn cancel(&self) {
        self.notify.notify_waiters();
    }

    /// Resolves when [`cancel`](Self::cancel) is called after this call: the sign-in
    /// creates it first thing, so a cancellation during the callback counts.
    pub(crate) fn cancelled(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle").finish_non_exhaustive()
    }
}
