//! Showing the person where to sign in: the system browser opened on the authorize URL
//! (the `webbrowser` crate: every desktop platform, WSL, `$BROWSER`), and the program's
//! own callback with the URL — what a command line prints when no browser can open (an SSH
//! session, no display).

use std::fmt;
use std::sync::Arc;

use url::Url;

/// The sign-in a person must complete: the page to open, and whether the system browser
/// was opened on it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SignInUrl {
    /// The authorize URL. It holds no secret (the PKCE challenge, `state` and `nonce` are
    /// meant to travel through the browser), so it may be shown.
    pub url: Url,
    /// Whether the system browser was opened on it; when `false`, the person must open it.
    pub browser_opened: bool,
    /// Where the browser comes back (`http://localhost:{port}/`): the page there tells the
    /// person when they are done.
    pub redirect_uri: String,
}

impl fmt::Display for SignInUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.browser_opened {
            write!(
                f,
                "A browser window was opened to sign in. If it did not appear, open this page: {}",
                self.url
            )
        } else {
            write!(
                f,
                "To sign in, open this page in a browser on this machine: {}",
                self.url
            )
        }
    }
}

/// The callback that shows a [`SignInUrl`].
pub(crate) type OnSignInUrl = Arc<dyn Fn(&SignInUrl) + Send + Sync>;

/// Opens the system browser on `url`; `false` when none can be opened here.
pub(crate) fn open(url: &Url) -> bool {
    match webbrowser::open(url.as_str()) {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(%error, "no browser could be opened");
            false
        }
    }
}
