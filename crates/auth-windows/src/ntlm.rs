//! One NTLM client handshake with [`sspi`]: the NEGOTIATE message, then the AUTHENTICATE
//! message for the server's CHALLENGE.

use secrecy::ExposeSecret as _;
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, CredentialUse, DataRepresentation, Ntlm,
    SecurityBuffer, Sspi as _, SspiImpl as _, Username,
};

use crate::authenticator::Account;

/// An NTLM client context for one connection.
pub(crate) struct NtlmClient {
    ntlm: Ntlm,
    credentials: <Ntlm as sspi::SspiImpl>::CredentialsHandle,
    target: String,
}

impl NtlmClient {
    /// A context for `account`, towards the service `HTTP/{host}`.
    pub(crate) fn new(account: &Account, host: &str) -> Result<Self, String> {
        let mut ntlm = Ntlm::new();
        let username = Username::new(account.user(), account.domain())
            .map_err(|error| format!("the user name cannot be used for NTLM: {error}"))?;
        let identity = AuthIdentity {
            username,
            password: account.password().expose_secret().to_owned().into(),
        };
        let acquired = ntlm
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&identity)
            .execute(&mut ntlm)
            .map_err(|error| format!("NTLM credentials: {error}"))?;
        Ok(Self {
            ntlm,
            credentials: acquired.credentials_handle,
            target: format!("HTTP/{host}"),
        })
    }

    /// The NEGOTIATE message.
    pub(crate) fn negotiate(&mut self) -> Result<Vec<u8>, String> {
        self.step(&[])
            .map_err(|error| format!("NTLM negotiation: {error}"))
    }

    /// The AUTHENTICATE message answering `challenge`.
    pub(crate) fn authenticate(&mut self, challenge: &[u8]) -> Result<Vec<u8>, String> {
        self.step(challenge)
            .map_err(|error| format!("the server's NTLM challenge cannot be answered: {error}"))
    }

    /// One `InitializeSecurityContext` step: the server's token in (none at first), ours out.
    fn step(&mut self, input: &[u8]) -> sspi::Result<Vec<u8>> {
        let mut input = vec![SecurityBuffer::new(input.to_vec(), BufferType::Token)];
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut builder = self
            .ntlm
            .initialize_security_context()
            .with_credentials_handle(&mut self.credentials)
            .with_context_requirements(ClientRequestFlags::ALLOCATE_MEMORY)
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(&self.target)
            .with_input(&mut input)
            .with_output(&mut output);
        self.ntlm
            .initialize_security_context_impl(&mut builder)
            .and_then(|mut generator| generator.resolve_to_result())?;
        Ok(std::mem::take(&mut output[0].buffer))
    }
}
