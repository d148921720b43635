//! Key material: the token-signing key, the seeded certificate app's key pair and the TLS
//! certificates, plus the small amount of PEM/DER handling the emulator needs.
//!
//! RSA key generation is the slowest thing the emulator does, so every generated item is kept
//! in a process-wide cache: many emulators started by one test binary pay for it once.

use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::SecretString;
use sha1::Digest as _;

use crate::error::EmulatorError;

/// SHA-1 and SHA-256 thumbprints of a certificate's DER encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Thumbprints {
    pub(crate) sha1: [u8; 20],
    pub(crate) sha256: [u8; 32],
}

impl Thumbprints {
    pub(crate) fn of(der: &[u8]) -> Self {
        Self {
            sha1: sha1::Sha1::digest(der).into(),
            sha256: sha2::Sha256::digest(der).into(),
        }
    }

    /// Upper-case hex, the form the Azure portal shows.
    pub(crate) fn sha1_hex(&self) -> String {
        hex_upper(&self.sha1)
    }

    /// The `x5t` JOSE header value.
    pub(crate) fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha1)
    }

    /// The `x5t#S256` JOSE header value.
    pub(crate) fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha256)
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02X}");
            out
        })
}

/// The key the emulator signs access tokens with, published in the JWKS.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    /// Base64url modulus and exponent, as the JWKS carries them.
    pub(crate) n: String,
    pub(crate) e: String,
    /// Standard base64 DER of the self-signed certificate around the key (JWKS `x5c`).
    pub(crate) x5c: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The public JWK (`kty`, `use`, `kid`, `x5t`, `n`, `e`, `x5c`) as Entra publishes it.
    pub(crate) fn jwk(&self, issuer: Option<&str>) -> serde_json::Value {
        let mut jwk = serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": self.n,
            "e": self.e,
            "x5c": [self.x5c],
        });
        if let Some(issuer) = issuer {
            jwk["issuer"] = serde_json::Value::String(issuer.to_owned());
        }
        jwk
    }
}

/// An RSA key pair with a self-signed certificate, as a developer would upload to an app
/// registration.
#[derive(Clone)]
pub(crate) struct CertificateMaterial {
    pub(crate) certificate_pem: String,
    pub(crate) private_key_pem: SecretString,
    pub(crate) public_key: RsaPublicKey,
    pub(crate) thumbprints: Thumbprints,
}

/// TLS material: a CA the client is told to trust and a loopback leaf certificate signed by it.
///
/// Two certificates rather than one self-signed leaf because rustls/webpki refuses a CA
/// certificate used as an end entity, and OpenSSL's strict mode wants a proper chain.
#[derive(Clone)]
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    pub(crate) ca_der: Vec<u8>,
    pub(crate) leaf_der: Vec<u8>,
    pub(crate) leaf_key_pkcs8_der: Vec<u8>,
}

fn crypto(err: impl std::fmt::Display) -> EmulatorError {
    EmulatorError::Crypto(err.to_string())
}

fn cached<T: Clone>(
    cell: &Mutex<Option<T>>,
    make: impl FnOnce() -> Result<T, EmulatorError>,
) -> Result<T, EmulatorError> {
    // Held across generation on purpose: concurrent first callers wait instead of each
    // generating a key of their own.
    let mut slot = cell.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(value) = slot.as_ref() {
        return Ok(value.clone());
    }
    let value = make()?;
    *slot = Some(value.clone());
    Ok(value)
}

fn rsa_key_and_certificate(
    common_name: &str,
) -> Result<(KeyPair, rcgen::Certificate), EmulatorError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(crypto)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    let certificate = params.self_signed(&key).map_err(crypto)?;
    Ok((key, certificate))
}

fn rsa_private_key(key: &KeyPair) -> Result<RsaPrivateKey, EmulatorError> {
    RsaPrivateKey::from_pkcs8_der(key.serialized_der()).map_err(crypto)
}

/// The process-wide token-signing key.
pub(crate) fn signing_key() -> Result<Arc<SigningKey>, EmulatorError> {
    static CELL: Mutex<Option<Arc<SigningKey>>> = Mutex::new(None);
    cached(&CELL, || {
        let (key, certificate) = rsa_key_and_certificate("d365 emulator token signing")?;
        let private = rsa_private_key(&key)?;
        let pkcs1 = private.to_pkcs1_der().map_err(crypto)?;
        let public = private.to_public_key();
        let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
        let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(crypto)?;
        Ok(Arc::new(SigningKey {
            kid: Thumbprints::of(certificate.der()).x5t(),
            encoding: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            decoding,
            n,
            e,
            x5c: STANDARD.encode(certificate.der()),
        }))
    })
}

/// The process-wide key pair and certificate of the seeded certificate app.
pub(crate) fn client_certificate() -> Result<CertificateMaterial, EmulatorError> {
    static CELL: Mutex<Option<CertificateMaterial>> = Mutex::new(None);
    cached(&CELL, || {
        let (key, certificate) = rsa_key_and_certificate("d365 emulator certificate app")?;
        let public_key = rsa_private_key(&key)?.to_public_key();
        Ok(CertificateMaterial {
            certificate_pem: certificate.pem(),
            private_key_pem: SecretString::from(key.serialize_pem()),
            public_key,
            thumbprints: Thumbprints::of(certificate.der()),
        })
    })
}

/// The process-wide TLS CA and loopback server certificate.
pub(crate) fn tls_material() -> Result<TlsMaterial, EmulatorError> {
    static CELL: Mutex<Option<TlsMaterial>> = Mutex::new(None);
    cached(&CELL, || {
        let ca_key = KeyPair::generate().map_err(crypto)?;
        let mut ca_params = CertificateParams::default();
        let mut ca_name = DistinguishedName::new();
        ca_name.push(DnType::CommonName, "d365 emulator local CA");
        ca_params.distinguished_name = ca_name;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_certificate = ca_params.self_signed(&ca_key).map_err(crypto)?;

        let leaf_key = KeyPair::generate().map_err(crypto)?;
        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(crypto)?;
        let mut leaf_name = DistinguishedName::new();
        leaf_name.push(DnType::CommonName, "localhost");
        leaf_params.distinguished_name = leaf_name;
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = Issuer::new(ca_params, &ca_key);
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(crypto)?;

        Ok(TlsMaterial {
            ca_pem: ca_certificate.pem(),
            ca_der: ca_certificate.der().to_vec(),
            leaf_der: leaf.der().to_vec(),
            leaf_key_pkcs8_der: leaf_key.serialize_der(),
        })
    })
}

/// The DER bodies of the `-----BEGIN {label}-----` blocks in `text`.
pub(crate) fn pem_blocks(text: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = STANDARD.decode(body) {
            blocks.push(der);
        }
        rest = &after[stop + end.len()..];
    }
    blocks
}

/// One DER element read from the front of a byte string.
struct Der<'a> {
    tag: u8,
    /// Tag, length and contents.
    whole: &'a [u8],
    contents: &'a [u8],
    /// The bytes after the element.
    rest: &'a [u8],
}

fn der_element(input: &[u8]) -> Option<Der<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some(Der {
        tag,
        whole: &input[..header + len],
        contents: &rest[..len],
        rest: &rest[len..],
    })
}

/// The RSA public key inside an X.509 certificate.
///
/// A hand-written walk over the few DER elements in front of `subjectPublicKeyInfo`, so the
/// emulator does not need a full X.509 parser for the one field it reads.
pub(crate) fn certificate_public_key(der: &[u8]) -> Result<RsaPublicKey, EmulatorError> {
    let bad = || EmulatorError::InvalidConfig("the certificate is not valid DER X.509".into());
    let certificate = der_element(der).ok_or_else(bad)?.contents;
    let tbs = der_element(certificate).ok_or_else(bad)?;
    let mut next = der_element(tbs.contents).ok_or_else(bad)?;
    // Optional explicit version tag [0].
    if next.tag == 0xa0 {
        next = der_element(next.rest).ok_or_else(bad)?;
    }
    // serialNumber (read above), signature, issuer, validity, subject.
    for _ in 0..4 {
        next = der_element(next.rest).ok_or_else(bad)?;
    }
    let spki = der_element(next.rest).ok_or_else(bad)?;
    RsaPublicKey::from_public_key_der(spki.whole).map_err(|_| {
        EmulatorError::InvalidConfig("the certificate does not hold an RSA public key".into())
    })
}

/// Decodes a thumbprint header value, accepting base64url (the standard) and padded
/// standard base64 (what some SDKs send for `x5t`).
pub(crate) fn decode_thumbprint(value: &str) -> Option<Vec<u8>> {
    let normalized: String = value
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(normalized).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_is_read_back_from_the_certificate() {
        let material = client_certificate().expect("certificate");
        let der = pem_blocks(&material.certificate_pem, "CERTIFICATE");
        assert_eq!(der.len(), 1);
        let key = certificate_public_key(&der[0]).expect("public key");
        assert_eq!(key, material.public_key);
        assert_eq!(Thumbprints::of(&der[0]), material.thumbprints);
    }

    #[test]
    fn thumbprints_decode_in_both_base64_alphabets() {
        let print = Thumbprints::of(b"anything");
        assert_eq!(
            decode_thumbprint(&print.x5t()).as_deref(),
            Some(&print.sha1[..])
        );
        let padded = STANDARD.encode(print.sha1);
        assert_eq!(decode_thumbprint(&padded).as_deref(), Some(&print.sha1[..]));
        assert_eq!(print.sha1_hex().len(), 40);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(certificate_public_key(b"\x30\x03\x02\x01\x01").is_err());
    }
}
