//! The HTTP client every d365 default client starts from: reqwest with rustls and the
//! platform's certificate verifier (what reqwest's `rustls` feature builds), except that
//! the platform's root certificates are read on the first TLS handshake, not when the
//! client is built.
//!
//! On Linux the platform verifier reads every certificate under `/etc/ssl/certs` and parses
//! each PEM file: 3 to 5 ms on a typical machine, paid by every `reqwest::Client` built
//! with the default settings, even one that never opens a TLS connection. A command that
//! answers from the token file never calls the token endpoint, and a plain-http loopback
//! organization (the emulator) never does TLS at all; neither should pay for reading the
//! roots. The verifier, once made, is shared by every client of the process, so a command
//! that talks TLS to both the token endpoint and the organization reads the roots once.
//!
//! Certificate checking is unchanged: the same `rustls_platform_verifier::Verifier`, the
//! same crypto provider (the process default, else aws-lc-rs), the same protocol versions
//! and ALPN (`h2`, `http/1.1`). A machine without root certificates fails on its first TLS
//! handshake, with the platform verifier's error, instead of when the client is built.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The platform verifier of this process, made on the first handshake that needs it.
static PLATFORM_VERIFIER: OnceLock<Result<Arc<rustls_platform_verifier::Verifier>, rustls::Error>> =
    OnceLock::new();

/// A `reqwest::ClientBuilder` whose TLS checks certificates with the platform verifier,
/// which reads the system's root certificates on the first TLS handshake of the process
/// (not when the client is built). Every default HTTP client of d365 starts from it; add
/// your own settings (timeouts, redirects, user agent) as with `reqwest::Client::builder()`.
///
/// TLS settings made on the returned builder (`tls_certs_only`, minimum versions, …) are
/// ignored: its TLS is preconfigured, and offers `h2` and `http/1.1` (so do not combine
/// it with `http1_only`). Start from `reqwest::Client::builder()` for those.
///
/// # Examples
///
/// ```
/// let http = d365_auth_core::grant::http_client_builder()
///     .connect_timeout(std::time::Duration::from_secs(10))
///     .build()?;
/// # drop(http);
/// # Ok::<(), reqwest::Error>(())
/// ```
pub fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(lazy_roots_config())
}

/// The rustls configuration reqwest's `rustls` feature builds by default, with the lazy
/// verifier.
fn lazy_roots_config() -> rustls::ClientConfig {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .expect("aws-lc-rs and the process's provider support TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(LazyPlatformVerifier { provider }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// Checks certificates with the process's platform verifier, made when first needed.
/// Handshake signatures are checked with the provider's algorithms, as the platform
/// verifier itself does, so they need no root certificates.
#[derive(Debug)]
struct LazyPlatformVerifier {
    provider: Arc<CryptoProvider>,
}

impl LazyPlatformVerifier {
    fn platform(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        let made = PLATFORM_VERIFIER.get_or_init(|| {
            tracing::debug!("reading the platform's root certificates");
            rustls_platform_verifier::Verifier::new(Arc::clone(&self.provider)).map(Arc::new)
        });
        made.as_deref().map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyPlatformVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.platform()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_offers_what_reqwest_offers() {
        let config = lazy_roots_config();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(config.enable_sni);
        assert!(
            config
                .crypto_provider()
                .signature_verification_algorithms
                .supported_schemes()
                .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
        );
    }

    /// One test for everything that touches the process's verifier, so the order is known.
    #[test]
    fn a_client_reads_no_roots_until_a_certificate_is_checked_and_then_checks_it() {
        // Building (and dropping) clients reads nothing.
        let before = PLATFORM_VERIFIER.get().is_some();
        for _ in 0..2 {
            drop(http_client_builder().build().expect("a client"));
        }
        assert_eq!(PLATFORM_VERIFIER.get().is_some(), before);

        // The first certificate to check makes the platform verifier, which refuses
        // what it does not trust (here, not a certificate at all).
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = LazyPlatformVerifier { provider };
        let outcome = verifier.verify_server_cert(
            &CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
            &[],
            &ServerName::try_from("example.com").expect("a name"),
            &[],
            UnixTime::now(),
        );
        assert!(outcome.is_err());
        assert!(PLATFORM_VERIFIER.get().is_some());
    }
}
