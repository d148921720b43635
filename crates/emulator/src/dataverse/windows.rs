//! Windows sign-in (NTLM) of the on-premises mode, as IIS integrated authentication does
//! it: a request with `Authorization: NTLM <NEGOTIATE>` (or under `Negotiate`) gets `401`
//! with the CHALLENGE on the same connection; the AUTHENTICATE message on that connection
//! signs the account in, and the server remembers it for the connection's later requests.
//! The NTLM acceptor is `sspi`'s (the emulator shares no code with the client crates).
//!
//! State is per TCP connection ([`ConnectionId`](crate::server::ConnectionId)) and bounded:
//! at most [`MAX_CONNECTIONS`] handshakes and signed-in connections, a handshake forgotten
//! after [`HANDSHAKE_LIFETIME`], a token over [`MAX_TOKEN_LEN`] refused.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::ExposeSecret as _;
use sspi::{
    AuthIdentity, AuthIdentityBuffers, BufferType, CredentialUse, DataRepresentation, Ntlm,
    SecurityBuffer, SecurityStatus, ServerRequestFlags, Sspi as _, SspiImpl as _, Username,
};

use crate::directory::Directory;

/// The most handshakes in progress, and the most signed-in connections, kept at once.
const MAX_CONNECTIONS: usize = 1024;
/// How long a connection may take between NEGOTIATE and AUTHENTICATE.
const HANDSHAKE_LIFETIME: Duration = Duration::from_secs(60);
/// How long a connection stays signed in without a request.
const SIGNED_IN_LIFETIME: Duration = Duration::from_secs(600);
/// The largest NTLM message accepted (they are a few hundred bytes).
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Who a connection signed in as.
#[derive(Debug, Clone)]
pub(crate) struct WindowsUser {
    pub(crate) object_id: String,
    pub(crate) upn: String,
}

/// What a Windows `Authorization` header leads to.
pub(crate) enum Answer {
    /// Send this CHALLENGE (base64) under the scheme the client used, with `401`.
    Challenge(String),
    /// The account signed in.
    SignedIn(WindowsUser),
    /// The message, the account or the password was refused.
    Refused(&'static str),
}

struct Handshake {
    ntlm: Ntlm,
    started: Instant,
}

/// The handshakes in progress and the signed-in connections.
#[derive(Default)]
pub(crate) struct WindowsSignIns {
    handshakes: Mutex<HashMap<u64, Handshake>>,
    signed_in: Mutex<HashMap<u64, (WindowsUser, Instant)>>,
}

impl std::fmt::Debug for WindowsSignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowsSignIns").finish_non_exhaustive()
    }
}

impl WindowsSignIns {
    /// The account `connection` signed in as, if it did (and recently).
    pub(crate) fn connection_user(&self, connection: u64) -> Option<WindowsUser> {
        let mut signed_in = self
            .signed_in
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (user, at) = signed_in.get_mut(&connection)?;
        if at.elapsed() > SIGNED_IN_LIFETIME {
            signed_in.remove(&connection);
            return None;
        }
        *at = Instant::now();
        Some(user.clone())
    }

    /// Answers the NTLM message `token` (base64) sent on `connection`, checking the
    /// account against `directory`'s users of `domain`.
    pub(crate) fn answer(
        &self,
        connection: u64,
        token: &str,
        directory: &Directory,
        domain: &str,
    ) -> Answer {
        if token.len() > MAX_TOKEN_LEN * 4 / 3 + 4 {
            return Answer::Refused("the NTLM message is too large");
        }
        let Ok(message) = STANDARD.decode(token.trim()) else {
            return Answer::Refused("the NTLM message is not base64");
        };
        match message_type(&message) {
            Some(1) => self.challenge(connection, &message),
            Some(3) => self.authenticate(connection, &message, directory, domain),
            _ => Answer::Refused("not an NTLM NEGOTIATE or AUTHENTICATE message"),
        }
    }

    fn challenge(&self, connection: u64, negotiate: &[u8]) -> Answer {
        let mut ntlm = Ntlm::new();
        let mut credentials: Option<AuthIdentityBuffers> = None;
        if let Ok(acquired) = ntlm
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Inbound)
            .execute(&mut ntlm)
        {
            credentials = acquired.credentials_handle;
        }
        let mut output = token_buffer(Vec::new());
        if accept(&mut ntlm, &mut credentials, negotiate, &mut output).is_err() {
            return Answer::Refused("the NTLM NEGOTIATE message cannot be read");
        }
        let challenge = STANDARD.encode(&output[0].buffer);
        let mut handshakes = self
            .handshakes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        handshakes.retain(|_, handshake| handshake.started.elapsed() < HANDSHAKE_LIFETIME);
        if handshakes.len() >= MAX_CONNECTIONS && !handshakes.contains_key(&connection) {
            return Answer::Refused("too many NTLM handshakes in progress");
        }
        handshakes.insert(
            connection,
            Handshake {
                ntlm,
                started: Instant::now(),
            },
        );
        Answer::Challenge(challenge)
    }

    fn authenticate(
        &self,
        connection: u64,
        message: &[u8],
        directory: &Directory,
        domain: &str,
    ) -> Answer {
        // The CHALLENGE belongs to this connection: AUTHENTICATE on another one fails.
        let Some(mut handshake) = self
            .handshakes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&connection)
        else {
            return Answer::Refused("no NTLM handshake on this connection");
        };
        let Some((message_domain, account)) = names(message) else {
            return Answer::Refused("the NTLM AUTHENTICATE message names no account");
        };
        let domain_ok = message_domain.is_empty() || message_domain.eq_ignore_ascii_case(domain);
        let user = directory
            .tenants
            .iter()
            .find_map(|tenant| tenant.user_by_account(&account));
        let Some(user) = user.filter(|user| domain_ok && !user.disabled) else {
            return Answer::Refused("unknown account");
        };
        let Ok(username) = Username::new(&account, Some(&message_domain)) else {
            return Answer::Refused("unknown account");
        };
        let identity = AuthIdentity {
            username,
            password: user.password.expose_secret().to_owned().into(),
        };
        let mut credentials = Some(AuthIdentityBuffers::from(identity));
        let mut output = token_buffer(Vec::new());
        let ntlm = &mut handshake.ntlm;
        let Ok(status) = accept(ntlm, &mut credentials, message, &mut output) else {
            return Answer::Refused("the NTLM AUTHENTICATE message cannot be read");
        };
        // The proof is checked when the token is completed: a wrong password fails here.
        let completed = match status {
            SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue => {
                ntlm.complete_auth_token(&mut output).map(|_| ())
            }
            SecurityStatus::Ok => Ok(()),
            _ => Err(sspi::Error::new(
                sspi::ErrorKind::OutOfSequence,
                "the NTLM handshake did not end",
            )),
        };
        if completed.is_err() {
            return Answer::Refused("wrong password");
        }
        let signed_in = WindowsUser {
            object_id: user.object_id.clone(),
            upn: user.upn.clone(),
        };
        let mut connections = self
            .signed_in
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|_, (_, at)| at.elapsed() < SIGNED_IN_LIFETIME);
        if connections.len() < MAX_CONNECTIONS {
            connections.insert(connection, (signed_in.clone(), Instant::now()));
        }
        Answer::SignedIn(signed_in)
    }
}

/// One token buffer, as sspi takes input and gives output.
fn token_buffer(token: Vec<u8>) -> Vec<SecurityBuffer> {
    vec![SecurityBuffer::new(token, BufferType::Token)]
}

/// One `AcceptSecurityContext` step: `message` in, the answer (if any) in `output`.
fn accept(
    ntlm: &mut Ntlm,
    credentials: &mut Option<AuthIdentityBuffers>,
    message: &[u8],
    output: &mut [SecurityBuffer],
) -> sspi::Result<SecurityStatus> {
    let mut input = token_buffer(message.to_vec());
    let builder = ntlm
        .accept_security_context()
        .with_credentials_handle(credentials)
        .with_context_requirements(ServerRequestFlags::ALLOCATE_MEMORY)
        .with_target_data_representation(DataRepresentation::Native)
        .with_input(&mut input)
        .with_output(output);
    ntlm.accept_security_context_impl(builder)
        .and_then(|mut generator| generator.resolve_to_result())
        .map(|accepted| accepted.status)
}

/// The type of an NTLM message: 1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE.
fn message_type(message: &[u8]) -> Option<u32> {
    if message.len() < 12 || &message[..8] != b"NTLMSSP\0" {
        return None;
    }
    Some(u32::from_le_bytes([
        message[8],
        message[9],
        message[10],
        message[11],
    ]))
}

/// The domain and user name of an AUTHENTICATE message (UTF-16LE fields).
fn names(message: &[u8]) -> Option<(String, String)> {
    let field = |at: usize| -> Option<String> {
        let length = usize::from(u16::from_le_bytes([
            *message.get(at)?,
            *message.get(at + 1)?,
        ]));
        let offset = u32::from_le_bytes([
            *message.get(at + 4)?,
            *message.get(at + 5)?,
            *message.get(at + 6)?,
            *message.get(at + 7)?,
        ]) as usize;
        let bytes = message.get(offset..offset.checked_add(length)?)?;
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        String::from_utf16(&units).ok()
    };
    let domain = field(28)?;
    let user = field(36)?;
    (!user.is_empty()).then_some((domain, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_messages_are_refused_without_panicking() {
        let sign_ins = WindowsSignIns::default();
        let directory = Directory::default();
        for token in [
            "",
            "!!!",
            "AAAA",
            &STANDARD.encode(b"NTLMSSP\0\x03\0\0\0"),
            &"A".repeat(100_000),
        ] {
            assert!(
                matches!(
                    sign_ins.answer(1, token, &directory, "CONTOSO"),
                    Answer::Refused(_)
                ),
                "{token:.20}"
            );
        }
        // Field offsets past the end, or lengths that overflow.
        let mut message = b"NTLMSSP\0\x03\0\0\0".to_vec();
        message.resize(64, 0xff);
        assert!(names(&message).is_none());
    }
}
