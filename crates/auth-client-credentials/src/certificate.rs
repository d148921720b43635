//! [`Certificate`]: an RSA private key with its X.509 certificate (and chain), loaded from
//! PEM or PKCS#12, checked before any request (the key matches, the certificate is in
//! its validity period), and used to sign client assertions.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use d365_auth_core::ConfigError;
use d365_auth_core::store::read_private_file;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};
use sha1::Digest as _;
use x509_cert::der::{Decode as _, DecodePem as _, Encode as _};

/// The JWS algorithm of a client assertion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256, with the `x5t#S256` header: Microsoft's current guidance.
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, with the SHA-1 `x5t` header: what older clients
    /// send and what AD FS servers that only know SHA-1 thumbprints need.
    Rs256,
}

/// A certificate credential: an RSA private key and its certificate.
///
/// `Debug` shows the subject, thumbprints and validity, never the key.
#[derive(Clone)]
pub struct Certificate {
    signing_key: jsonwebtoken::EncodingKey,
    /// DER of the leaf first, then the rest of the chain.
    chain: Vec<Vec<u8>>,
    sha1: [u8; 20],
    sha256: [u8; 32],
    subject: String,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Certificate {
    /// Loads a PEM private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`) and a
    /// PEM certificate (the leaf first; more `CERTIFICATE` blocks are its chain).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when either cannot be read, the key is not RSA, the key does not
    /// belong to the certificate, or the certificate is not valid now.
    pub fn from_pem(
        private_key_pem: &SecretString,
        certificate_pem: &str,
    ) -> Result<Self, ConfigError> {
        let key = parse_pem_key(private_key_pem.expose_secret())?;
        let chain = parse_pem_chain(certificate_pem)?;
        Self::new(&key, chain)
    }

    /// Loads a PEM key and certificate from files; one file holding both works too (pass
    /// it twice).
    ///
    /// # Errors
    ///
    /// As for [`Certificate::from_pem`], and when a file cannot be read.
    pub fn from_pem_files(
        private_key_path: &Path,
        certificate_path: &Path,
    ) -> Result<Self, ConfigError> {
        let key = SecretString::from(read_text(private_key_path, "certificate private key")?);
        let certificate = read_text(certificate_path, "certificate")?;
        Self::from_pem(&key, &certificate)
    }

    /// Loads a PKCS#12 (`.pfx`/`.p12`) archive protected by `password` (empty for none).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the archive or password is wrong, it holds no private key with
    /// a certificate, or the checks of [`Certificate::from_pem`] fail.
    pub fn from_pkcs12(archive: &[u8], password: &SecretString) -> Result<Self, ConfigError> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            archive,
            password.expose_secret(),
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .map_err(|error| invalid(
            format!("the PKCS#12 archive could not be opened ({error})"),
            "check the password (AZURE_CLIENT_CERTIFICATE_PASSWORD) and that the file is a .pfx/.p12 archive",
        ))?;
        let (_, chain) = store.private_key_chain().ok_or_else(|| {
            invalid(
                "the PKCS#12 archive holds no private key with its certificate".to_owned(),
                "export the certificate with its private key",
            )
        })?;
        let key = RsaPrivateKey::from_pkcs8_der(chain.key().as_der()).map_err(|_| not_rsa())?;
        let certificates = chain
            .certs()
            .iter()
            .map(|cert| cert.as_der().to_vec())
            .collect();
        Self::new(&key, certificates)
    }

    /// Loads a PKCS#12 archive from a file.
    ///
    /// # Errors
    ///
    /// As for [`Certificate::from_pkcs12`], and when the file cannot be read.
    pub fn from_pkcs12_file(path: &Path, password: &SecretString) -> Result<Self, ConfigError> {
        let archive = read_file(path, "certificate")?;
        Self::from_pkcs12(&archive, password)
    }

    fn new(key: &RsaPrivateKey, chain: Vec<Vec<u8>>) -> Result<Self, ConfigError> {
        let leaf_der = chain.first().ok_or_else(|| invalid(
            "no certificate was found".to_owned(),
            "give the PEM certificate (-----BEGIN CERTIFICATE-----) that was uploaded to the app registration",
        ))?;
        let leaf = x509_cert::Certificate::from_der(leaf_der).map_err(|error| {
            invalid(
                format!("the certificate could not be parsed ({error})"),
                "give an X.509 certificate in PEM or PKCS#12 form",
            )
        })?;
        let spki = &leaf.tbs_certificate.subject_public_key_info;
        let spki_der = spki.to_der().map_err(|_| not_rsa())?;
        let certificate_key = rsa::pkcs8::DecodePublicKey::from_public_key_der(&spki_der)
            .map_err(|_: rsa::pkcs8::spki::Error| not_rsa())?;
        if RsaPublicKey::from(key) != certificate_key {
            return Err(invalid(
                "the private key does not belong to the certificate".to_owned(),
                "give the key that was generated with this certificate (compare their moduli with `openssl x509 -noout -modulus` and `openssl rsa -noout -modulus`)",
            ));
        }
        let validity = &leaf.tbs_certificate.validity;
        let not_before = validity.not_before.to_system_time();
        let not_after = validity.not_after.to_system_time();
        let subject = leaf.tbs_certificate.subject.to_string();
        let now = SystemTime::now();
        if now > not_after {
            return Err(invalid(
                format!(
                    "the certificate `{subject}` expired {} ago",
                    days(now.duration_since(not_after).unwrap_or_default())
                ),
                "create a new certificate, upload it to the app registration, and use it here",
            ));
        }
        if now < not_before {
            return Err(invalid(
                format!(
                    "the certificate `{subject}` is not valid for another {}",
                    days(not_before.duration_since(now).unwrap_or_default())
                ),
                "check the machine's clock, or wait until the certificate's validity starts",
            ));
        }
        let pkcs1 = key.to_pkcs1_der().map_err(|_| not_rsa())?;
        Ok(Self {
            signing_key: jsonwebtoken::EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            sha1: sha1::Sha1::digest(leaf_der).into(),
            sha256: sha2::Sha256::digest(leaf_der).into(),
            chain,
            subject,
            not_before,
            not_after,
        })
    }

    /// The SHA-1 thumbprint in upper-case hex, as the Azure portal shows it.
    #[must_use]
    pub fn thumbprint_sha1(&self) -> String {
        hex(&self.sha1)
    }

    /// The SHA-256 thumbprint in upper-case hex.
    #[must_use]
    pub fn thumbprint_sha256(&self) -> String {
        hex(&self.sha256)
    }

    /// The certificate's subject.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// When the certificate stops being valid.
    #[must_use]
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Signs a client assertion: `aud` the token endpoint, `iss` and `sub` the client id, a
    /// fresh `jti`, valid from now for `lifetime` (at most ten minutes).
    pub(crate) fn sign_assertion(
        &self,
        client_id: &str,
        audience: &str,
        algorithm: AssertionAlgorithm,
        include_chain: bool,
        lifetime: Duration,
    ) -> Result<SecretString, jsonwebtoken::errors::Error> {
        let mut header = match algorithm {
            AssertionAlgorithm::Ps256 => {
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
                header.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(self.sha256));
                header
            }
            AssertionAlgorithm::Rs256 => {
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                header.x5t = Some(URL_SAFE_NO_PAD.encode(self.sha1));
                header
            }
        };
        header.typ = Some("JWT".to_owned());
        if include_chain {
            header.x5c = Some(self.chain.iter().map(|der| STANDARD.encode(der)).collect());
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = AssertionClaims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + lifetime.as_secs(),
        };
        jsonwebtoken::encode(&header, &claims, &self.signing_key).map(SecretString::from)
    }
}

#[derive(serde::Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("thumbprint_sha1", &self.thumbprint_sha1())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("chain_len", &self.chain.len())
            .field("private_key", &"[redacted]")
            .finish()
    }
}

fn parse_pem_key(pem: &str) -> Result<RsaPrivateKey, ConfigError> {
    if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        let block = pem_block(pem, "RSA PRIVATE KEY").ok_or_else(no_key)?;
        return rsa::pkcs1::DecodeRsaPrivateKey::from_pkcs1_pem(block).map_err(|_| not_rsa());
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(invalid(
            "the private key is encrypted".to_owned(),
            "decrypt it (`openssl pkcs8 -in key.pem -out plain.pem`) or use the PKCS#12 archive with its password",
        ));
    }
    if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
        return Err(not_rsa());
    }
    let block = pem_block(pem, "PRIVATE KEY").ok_or_else(no_key)?;
    RsaPrivateKey::from_pkcs8_pem(block).map_err(|_| not_rsa())
}

/// The text of the first `label` block, markers included.
fn pem_block<'a>(pem: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)?;
    let stop = start + pem[start..].find(&end)? + end.len();
    Some(&pem[start..stop])
}

fn parse_pem_chain(pem: &str) -> Result<Vec<Vec<u8>>, ConfigError> {
    let mut chain = Vec::new();
    let mut rest = pem;
    while let Some(block) = pem_block(rest, "CERTIFICATE") {
        let certificate = x509_cert::Certificate::from_pem(block.as_bytes()).map_err(|error| {
            invalid(
                format!("a PEM certificate could not be parsed ({error})"),
                "give the certificate in PEM form (-----BEGIN CERTIFICATE-----)",
            )
        })?;
        chain.push(certificate.to_der().map_err(|error| {
            invalid(
                format!("a certificate could not be encoded ({error})"),
                "give the certificate in PEM form",
            )
        })?);
        let offset = rest.find(block).unwrap_or(0) + block.len();
        rest = &rest[offset..];
    }
    Ok(chain)
}

/// The most a certificate or key file may hold: real ones are a few KiB, and a larger
/// file (or a device that never ends) is not one.
const MAX_FILE_LEN: u64 = 1024 * 1024;

/// The whole file, when it is a regular file of at most [`MAX_FILE_LEN`] bytes.
fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, ConfigError> {
    match read_private_file(path, MAX_FILE_LEN) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(unreadable(
            path,
            what,
            &std::io::Error::from(std::io::ErrorKind::NotFound),
        )),
        Err(error) => Err(unreadable(path, what, &error)),
    }
}

fn read_text(path: &Path, what: &str) -> Result<String, ConfigError> {
    String::from_utf8(read_file(path, what)?).map_err(|_| {
        invalid(
            format!("the {what} file {} is not PEM text", path.display()),
            "give a PEM file (-----BEGIN ...), or a .pfx/.p12 file for PKCS#12",
        )
    })
}

fn unreadable(path: &Path, what: &str, error: &std::io::Error) -> ConfigError {
    invalid(
        format!(
            "the {what} file {} could not be read ({error})",
            path.display()
        ),
        "check the path and the file's permissions",
    )
}

fn invalid(problem: String, fix: &str) -> ConfigError {
    ConfigError::Invalid {
        setting: "certificate",
        problem,
        fix: fix.to_owned(),
    }
}

fn no_key() -> ConfigError {
    invalid(
        "no private key was found in the PEM text".to_owned(),
        "give the key in PEM form (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)",
    )
}

fn not_rsa() -> ConfigError {
    invalid(
        "the key is not an RSA key".to_owned(),
        "Entra ID certificate credentials are RSA: create an RSA certificate (2048 bits or more)",
    )
}

fn days(duration: Duration) -> String {
    let days = duration.as_secs() / 86_400;
    if days == 0 {
        "less than a day".to_owned()
    } else {
        format!("{days} days")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02X}")).collect()
}
