//! The TLS layer of https mode: a rustls acceptor serving the generated leaf certificate
//! (with its CA) over HTTP/1.1.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::error::EmulatorError;
use crate::keys::TlsMaterial;

/// The acceptor for `material`'s leaf certificate and key.
pub(crate) fn acceptor(material: &TlsMaterial) -> Result<TlsAcceptor, EmulatorError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let crypto = |err: rustls::Error| EmulatorError::Crypto(err.to_string());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(crypto)?
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(material.leaf_der.clone()),
                CertificateDer::from(material.ca_der.clone()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                material.leaf_key_pkcs8_der.clone(),
            )),
        )
        .map_err(crypto)?;
    // HTTP/1.1 only: the server speaks nothing else, so never let a client pick h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
