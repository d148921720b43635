//! The `connect` feature end to end: a data-driven table of connection strings, valid and
//! invalid (every alias, the grammar's corners, the examples of the reference verbatim,
//! every unsupported `AuthType` with its alternative), secrets absent from every `Display`,
//! `Debug`, error and log line, the azure-identity variables, and real tokens from the d365
//! emulator for each supported `AuthType`, with the tenant given or discovered from a `401`
//! challenge.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use d365_auth_core::{Grant, TokenProvider, TokenRequest};
use d365_connect::{
    AuthType, ConnectError, ConnectOptions, ConnectionString, EnvironmentSettings, connect_with,
    provider_from_connection_string,
};
use d365_emulator::Emulator;
use d365_test_support::SecretWatch;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Every secret the table's strings hold; none may ever be shown.
const SECRETS: &[&str] = &[
    "SUPER-SECRET-1",
    "p@ss;word",
    "p@ss",
    "it's-a-secret",
    "PFX-PASSWORD-9",
    "Qu0ted\"Secret",
    "W0RDFRAG",
];

type Check = fn(&ConnectError) -> bool;

enum Expect {
    /// Parses; its redacted form is this.
    Valid(&'static str),
    /// Fails with this kind of error, whose message contains the fragment.
    Invalid(Check, &'static str),
}

use Expect::{Invalid, Valid};

const C1: &str = "00000000-0000-0000-0000-0000000000c1";

fn table() -> Vec<(&'static str, Expect)> {
    vec![
        // --- The examples of reference §4, verbatim.
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=00000000-0000-0000-0000-0000000000c1;ClientSecret=<value>",
            Valid(
                "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=00000000-0000-0000-0000-0000000000c1;ClientSecret=***",
            ),
        ),
        (
            "AuthType=Certificate;Url=https://contoso.crm4.dynamics.com;ClientId=00000000-0000-0000-0000-0000000000c1;Thumbprint=DC6C689022C905EA5F812B51F1574ED10F256FF6",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::InvalidValue {
                            key: "Thumbprint",
                            ..
                        }
                    )
                },
                "Windows-only; export the certificate",
            ),
        ),
        (
            "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Username=jsmith@contoso.onmicrosoft.com;Password=<pw>;AppId=<public client id>;RedirectUri=http://localhost;LoginPrompt=Never",
            Valid(
                "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;ClientId=<public client id>;Username=jsmith@contoso.onmicrosoft.com;Password=***;RedirectUri=http://localhost;LoginPrompt=Never",
            ),
        ),
        (
            "AuthType=ClientSecret;SkipDiscovery=true;Url=https://contoso.crm.dynamics.com;Secret=<value>;ClientId=<id>;RequireNewInstance=true",
            Valid(
                "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=<id>;ClientSecret=***;RequireNewInstance=true;SkipDiscovery=true",
            ),
        ),
        (
            "AuthType=OAuth;Url=https://org.crm.example.com/;Username=user@example.com;Password=<pw>;AppId=<AD FS client id>;LoginPrompt=Never",
            Valid(
                "AuthType=OAuth;Url=https://org.crm.example.com/;ClientId=<AD FS client id>;Username=user@example.com;Password=***;LoginPrompt=Never",
            ),
        ),
        // --- Keys in any case, every alias, whitespace, trailing `;`.
        (
            "authtype=clientsecret;serviceuri=https://contoso.crm.dynamics.com;appid=c1;secret=SUPER-SECRET-1;",
            Valid(
                "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=***",
            ),
        ),
        (
            "  Service Uri = https://contoso.crm4.dynamics.com ; AuthenticationType = ClientSecret ; ApplicationId = c1 ; CLIENTSECRET = SUPER-SECRET-1 ;; ",
            Valid(
                "AuthType=ClientSecret;Url=https://contoso.crm4.dynamics.com;ClientId=c1;ClientSecret=***",
            ),
        ),
        (
            "Server=https://contoso.crm.dynamics.com;AuthType=OAuth;User Name=ana@contoso.com;Password='p@ss;word'",
            Valid(
                "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Username=ana@contoso.com;Password=***",
            ),
        ),
        (
            "Url=https://contoso.crm.dynamics.com;AuthType=OAuth;UserId=ana@contoso.com;Password=\"it's-a-secret\"",
            Valid(
                "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Username=ana@contoso.com;Password=***",
            ),
        ),
        (
            "Url=https://contoso.crm.dynamics.com;AuthType=OAuth;User Id=ana@contoso.com;Password='it''s-a-secret';Domain=CONTOSO;HomeRealmUri=https://adfs.contoso.com/adfs/services/trust/mex;ReplyUrl=app://58145B91-0C36-4500-8554-080854F2AC97;TokenCacheStorePath=/tmp/cache;Integrated Security=false",
            Valid(
                "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Username=ana@contoso.com;Password=***;Domain=CONTOSO;HomeRealmUri=https://adfs.contoso.com/adfs/services/trust/mex;RedirectUri=app://58145B91-0C36-4500-8554-080854F2AC97;TokenCacheStorePath=/tmp/cache;Integrated Security=false",
            ),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;Secret=a=b=SUPER-SECRET-1",
            Valid(
                "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=***",
            ),
        ),
        (
            "AuthType=Certificate;Url=https://contoso.crm.dynamics.com;ClientId=c1;CertificateThumbprint=dc:6c:68:90:22:c9:05:ea:5f:81:2b:51:f1:57:4e:d1:0f:25:6f:f6;CertificateFile='/etc/d365/app cert.pfx';CertificatePassword=PFX-PASSWORD-9",
            Valid(
                "AuthType=Certificate;Url=https://contoso.crm.dynamics.com;ClientId=c1;Thumbprint=dc:6c:68:90:22:c9:05:ea:5f:81:2b:51:f1:57:4e:d1:0f:25:6f:f6;CertificatePath=/etc/d365/app cert.pfx;CertificatePassword=***",
            ),
        ),
        (
            "AuthType=Certificate;Url=https://contoso.crm.dynamics.com;ClientId=c1;CertThumbprint=DC6C689022C905EA5F812B51F1574ED10F256FF6;Certificate Path=/etc/app.pem;PrivateKeyPath=/etc/app.key;SendCertificateChain=false",
            Valid(
                "AuthType=Certificate;Url=https://contoso.crm.dynamics.com;ClientId=c1;Thumbprint=DC6C689022C905EA5F812B51F1574ED10F256FF6;CertificatePath=/etc/app.pem;CertificateKeyPath=/etc/app.key;SendCertificateChain=false",
            ),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=SUPER-SECRET-1;TenantId=Contoso.onmicrosoft.com;Authority Host=https://login.microsoftonline.us",
            Valid(
                "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=***;TenantId=Contoso.onmicrosoft.com;AuthorityHost=https://login.microsoftonline.us",
            ),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=SUPER-SECRET-1;Authority=https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            Valid(
                "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=***;Authority=https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            ),
        ),
        // Duplicates: the last occurrence wins. Aliases: ServiceClient's order wins (Url before Server).
        (
            "AuthType=ClientSecret;ClientId=first;ClientId=second;Server=https://server.crm.dynamics.com;Url=https://url.crm.dynamics.com;ClientSecret=SUPER-SECRET-1",
            Valid(
                "AuthType=ClientSecret;Url=https://url.crm.dynamics.com;ClientId=second;ClientSecret=***",
            ),
        ),
        // ExternalTokenManagement, loopback http, a numeric AuthType, an unknown key.
        (
            "AuthType=ExternalTokenManagement;Url=https://contoso.crm.dynamics.com/api/data/v9.2/",
            Valid(
                "AuthType=ExternalTokenManagement;Url=https://contoso.crm.dynamics.com/api/data/v9.2/",
            ),
        ),
        (
            "AuthType=7;Url=http://127.0.0.1:5555;ClientId=c1;ClientSecret=SUPER-SECRET-1;Fabrikam=ignored",
            Valid("AuthType=ClientSecret;Url=http://127.0.0.1:5555;ClientId=c1;ClientSecret=***"),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=' SUPER-SECRET-1 ';Domain='a;b'",
            Valid(
                "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=***;Domain='a;b'",
            ),
        ),
        // --- Missing keys.
        (
            "AuthType=ClientSecret;ClientId=c1;ClientSecret=SUPER-SECRET-1",
            Invalid(
                |e| matches!(e, ConnectError::MissingKey { .. }),
                "no Url (or ServiceUri, Service Uri, Server)",
            ),
        ),
        (
            "Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=SUPER-SECRET-1",
            Invalid(
                |e| matches!(e, ConnectError::MissingKey { .. }),
                "no AuthType",
            ),
        ),
        (
            "",
            Invalid(
                |e| matches!(e, ConnectError::MissingKey { .. }),
                "no AuthType",
            ),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1",
            Invalid(
                |e| matches!(e, ConnectError::MissingKey { .. }),
                "never falls back to interactive sign-in",
            ),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientSecret=SUPER-SECRET-1",
            Invalid(
                |e| matches!(e, ConnectError::MissingKey { .. }),
                "never substitutes Microsoft's sample application",
            ),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecert=SUPER-SECRET-1",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::MissingKey {
                            unrecognised: 1,
                            ..
                        }
                    )
                },
                "check its spelling",
            ),
        ),
        // With a user name alone: ServiceClient's interactive sign-in, the name a hint.
        (
            "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Username=ana@contoso.com",
            Valid("AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Username=ana@contoso.com"),
        ),
        (
            "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Password='p@ss;word'",
            Invalid(
                |e| matches!(e, ConnectError::MissingKey { .. }),
                "no Username",
            ),
        ),
        (
            "AuthType=Certificate;Url=https://contoso.crm.dynamics.com;ClientId=c1",
            Invalid(
                |e| matches!(e, ConnectError::MissingKey { .. }),
                "CertificatePath=<file.pfx",
            ),
        ),
        // --- URLs.
        (
            "AuthType=ClientSecret;Url=http://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=SUPER-SECRET-1",
            Invalid(|e| matches!(e, ConnectError::InvalidUrl(_)), "plain http"),
        ),
        (
            "AuthType=ClientSecret;Url=contoso.crm.dynamics.com;ClientId=c1;ClientSecret=SUPER-SECRET-1",
            Invalid(|e| matches!(e, ConnectError::InvalidUrl(_)), "not a URL"),
        ),
        // --- Windows sign-in: ServiceClient's AD strings sign in with NTLM.
        (
            "AuthType=AD;Url=https://crm.contoso.com/org;Domain=CONTOSO;Username=ana;Password='p@ss;word'",
            Valid(
                "AuthType=AD;Url=https://crm.contoso.com/org;Username=ana;Password=***;Domain=CONTOSO",
            ),
        ),
        (
            "AuthType=AD;Url=https://crm.contoso.com/org;Domain=CONTOSO",
            Invalid(|e| matches!(e, ConnectError::MissingKey { .. }), "Username"),
        ),
        // --- Authentication types d365 cannot use, each with its alternative.
        // CrmServiceClient's IFD sign-in becomes the password grant at the server's AD FS.
        (
            "AuthType=IFD;Url=https://crm.contoso.com;HomeRealmUri=https://adfs.contoso.com;Domain=CONTOSO;Username=ana;Password='p@ss;word'",
            Valid(
                "AuthType=IFD;Url=https://crm.contoso.com;Username=ana;Password=***;Domain=CONTOSO;HomeRealmUri=https://adfs.contoso.com",
            ),
        ),
        (
            "AuthType=IFD;Url=https://crm.contoso.com;Domain=CONTOSO;Username=ana",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::UnsupportedAuthType {
                            auth_type: AuthType::Ifd,
                            ..
                        }
                    )
                },
                "give Domain, Username and Password",
            ),
        ),
        (
            "AuthType=Claims;Url=https://crm.contoso.com;Username=ana;Password=SUPER-SECRET-1",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::UnsupportedAuthType {
                            auth_type: AuthType::Claims,
                            ..
                        }
                    )
                },
                "AD FS issues OAuth tokens",
            ),
        ),
        (
            "AuthType=Office365;Url=https://contoso.crm.dynamics.com;Username=ana@contoso.com;Password=SUPER-SECRET-1",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::UnsupportedAuthType {
                            auth_type: AuthType::Office365,
                            ..
                        }
                    )
                },
                "deprecated WS-Trust",
            ),
        ),
        (
            "AuthType=Kerberos;Url=https://contoso.crm.dynamics.com",
            Invalid(
                |e| matches!(e, ConnectError::UnknownAuthType { .. }),
                "`Kerberos` is not an authentication type",
            ),
        ),
        (
            "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;AppId=51f81489-12ee-4a9e-aaae-a2591f45987d;RedirectUri=app://58145B91-0C36-4500-8554-080854F2AC97;LoginPrompt=Auto",
            Valid(
                "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;ClientId=51f81489-12ee-4a9e-aaae-a2591f45987d;RedirectUri=app://58145B91-0C36-4500-8554-080854F2AC97;LoginPrompt=Auto",
            ),
        ),
        (
            "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Integrated Security=true",
            Invalid(
                |e| matches!(e, ConnectError::IntegratedSecurity),
                "current Windows user",
            ),
        ),
        (
            "AuthType=Certificate;Url=https://contoso.crm.dynamics.com;ClientId=c1;Thumbprint=DC6C689022C905EA5F812B51F1574ED10F256FF6;CertificateStoreName=Root",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::InvalidValue {
                            key: "Thumbprint",
                            ..
                        }
                    )
                },
                "store `Root`",
            ),
        ),
        // --- Grammar errors never quote the value.
        (
            "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Username=ana;Password='p@ss;word",
            Invalid(
                |e| matches!(e, ConnectError::Syntax { .. }),
                "the quote that opens the value of Password is not closed",
            ),
        ),
        (
            "AuthType=OAuth;Username=ana;Password=p@ss;W0RDFRAG;Url=https://contoso.crm.dynamics.com",
            Invalid(
                |e| matches!(e, ConnectError::Syntax { position: 43, .. }),
                "the value of Password before it probably contains an unquoted `;`",
            ),
        ),
        (
            "AuthType=ClientSecret;ClientSecret=\"Qu0ted\"Secret\";Url=https://contoso.crm.dynamics.com",
            Invalid(
                |e| matches!(e, ConnectError::Syntax { .. }),
                "text follows the closing quote of the value of ClientSecret",
            ),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientSecret",
            Invalid(
                |e| matches!(e, ConnectError::Syntax { position: 60, .. }),
                "text without `=`",
            ),
        ),
        // --- Values d365 checks.
        (
            "AuthType=Certificate;Url=https://contoso.crm.dynamics.com;ClientId=c1;Thumbprint=DC6C68;CertificatePath=/etc/app.pfx",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::InvalidValue {
                            key: "Thumbprint",
                            ..
                        }
                    )
                },
                "40 hexadecimal digits",
            ),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=SUPER-SECRET-1;TenantId=not a tenant",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::InvalidValue {
                            key: "TenantId",
                            ..
                        }
                    )
                },
                "is not valid",
            ),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=SUPER-SECRET-1;TenantId=contoso.com;Authority=https://login.microsoftonline.com/contoso.com",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::InvalidValue {
                            key: "Authority",
                            ..
                        }
                    )
                },
                "give either Authority alone",
            ),
        ),
        (
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=SUPER-SECRET-1;AuthorityHost=http://login.contoso.example",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::InvalidValue {
                            key: "AuthorityHost",
                            ..
                        }
                    )
                },
                "plain http",
            ),
        ),
        (
            "AuthType=Certificate;Url=https://contoso.crm.dynamics.com;ClientId=c1;CertificatePath=/etc/app.pfx;SendCertificateChain=maybe",
            Invalid(
                |e| {
                    matches!(
                        e,
                        ConnectError::InvalidValue {
                            key: "SendCertificateChain",
                            ..
                        }
                    )
                },
                "not true or false",
            ),
        ),
    ]
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows `{secret}`: {text}");
    }
}

#[test]
fn every_connection_string_of_the_table_parses_as_expected_and_shows_no_secret() {
    let cases = table();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    for (input, expect) in cases {
        let outcome = ConnectionString::parse(input);
        match (&outcome, expect) {
            (Ok(parsed), Valid(redacted)) => {
                assert_eq!(parsed.to_redacted_string(), redacted, "{input}");
                assert_eq!(parsed.to_string(), redacted, "{input}");
                assert_no_secret(input, &parsed.to_string());
                assert_no_secret(input, &format!("{parsed:?}"));
                // The redacted form parses back to the same settings (secrets aside).
                let again = ConnectionString::parse(&parsed.to_redacted_string())
                    .unwrap_or_else(|error| panic!("{redacted} does not parse back: {error}"));
                assert_eq!(again.to_redacted_string(), redacted);
            }
            (Err(error), Invalid(check, fragment)) => {
                assert!(check(error), "{input}: unexpected error {error:?}");
                let message = error.to_string();
                assert!(
                    message.contains(fragment),
                    "{input}: `{message}` lacks `{fragment}`"
                );
                assert_no_secret(input, &message);
                assert_no_secret(input, &format!("{error:?}"));
            }
            (Ok(parsed), Invalid(_, fragment)) => {
                panic!("{input}: parsed as {parsed}, expected an error with `{fragment}`")
            }
            (Err(error), Valid(_)) => panic!("{input}: {error}"),
        }
    }
}

#[test]
fn accessors_give_the_typed_values() {
    let parsed = ConnectionString::parse(
        "Server=https://Contoso.CRM.dynamics.com/;AuthType=OAuth;User Name=ana@contoso.com;Password='p@ss;word'",
    )
    .unwrap();
    assert_eq!(parsed.url().as_str(), "https://contoso.crm.dynamics.com");
    assert_eq!(parsed.auth_type(), Some(AuthType::OAuth));
    assert_eq!(parsed.get("Username"), Some("ana@contoso.com"));
    assert_eq!(
        parsed.config().secret("Password").unwrap().expose_secret(),
        "p@ss;word"
    );
    assert_eq!(parsed.get("Password"), None, "a secret is no text");
    assert!(parsed.has("Password") && !parsed.has("ClientSecret"));
    assert_eq!(parsed.grant().name(), "password");
    assert_eq!(
        parsed.client_id(),
        None,
        "OAuth falls back to the sample app in the grant"
    );

    let quoted = |value: &str| {
        ConnectionString::parse(&format!(
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret={value}"
        ))
        .unwrap()
        .config()
        .secret("ClientSecret")
        .unwrap()
        .expose_secret()
        .to_owned()
    };
    assert_eq!(quoted("'a;b'"), "a;b");
    assert_eq!(quoted("\"it's\""), "it's");
    assert_eq!(quoted("'it''s'"), "it's");
    assert_eq!(quoted("\"say \"\"hi\"\"\""), "say \"hi\"");
    assert_eq!(quoted("a=b=c"), "a=b=c");
    assert_eq!(quoted("  spaced out  "), "spaced out");
    assert_eq!(quoted("' kept '"), " kept ");

    let certificate = ConnectionString::parse(
        "AuthType=Certificate;Url=https://contoso.crm.dynamics.com;ClientId=c1;thumbprint=dc6c689022c905ea5f812b51f1574ed10f256ff6;CertificateFile=/etc/app.pfx;CertificatePassword=PFX-PASSWORD-9;Fabrikam=1",
    )
    .unwrap();
    assert_eq!(
        certificate.get("Thumbprint"),
        Some("dc6c689022c905ea5f812b51f1574ed10f256ff6")
    );
    assert_eq!(certificate.get("CertificatePath"), Some("/etc/app.pfx"));
    assert_eq!(
        certificate
            .config()
            .secret("CertificatePassword")
            .unwrap()
            .expose_secret(),
        "PFX-PASSWORD-9"
    );
    assert_eq!(certificate.grant().name(), "client-credentials");
    assert_eq!(certificate.unknown_keys(), ["Fabrikam"]);

    let tenant = ConnectionString::parse(
        "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=s;Tenant=72F988BF-86F1-41AF-91AB-2D7CD011DB47",
    )
    .unwrap();
    assert_eq!(
        tenant.tenant().unwrap().as_str(),
        "72f988bf-86f1-41af-91ab-2d7cd011db47"
    );
    assert_eq!(
        d365_auth_ropc::SAMPLE_CLIENT_ID,
        "51f81489-12ee-4a9e-aaae-a2591f45987d"
    );
}

#[test]
fn every_alias_of_the_reference_names_its_setting() {
    let base = "AuthType=ExternalTokenManagement;Url=https://contoso.crm.dynamics.com";
    // (alias, value, what the redacted string shows)
    let aliases: &[(&str, &str, &str)] = &[
        ("UserName", "ana", "Username=ana"),
        ("User Name", "ana", "Username=ana"),
        ("UserId", "ana", "Username=ana"),
        ("User Id", "ana", "Username=ana"),
        ("Password", "SUPER-SECRET-1", "Password=***"),
        ("Domain", "CONTOSO", "Domain=CONTOSO"),
        ("HomeRealmUri", "https://x", "HomeRealmUri=https://x"),
        ("Home Realm Uri", "https://x", "HomeRealmUri=https://x"),
        ("RequireNewInstance", "false", "RequireNewInstance=false"),
        ("ClientId", "c1", "ClientId=c1"),
        ("AppId", "c1", "ClientId=c1"),
        ("ApplicationId", "c1", "ClientId=c1"),
        ("ClientSecret", "SUPER-SECRET-1", "ClientSecret=***"),
        ("Secret", "SUPER-SECRET-1", "ClientSecret=***"),
        (
            "RedirectUri",
            "http://localhost",
            "RedirectUri=http://localhost",
        ),
        (
            "ReplyUrl",
            "http://localhost",
            "RedirectUri=http://localhost",
        ),
        (
            "TokenCacheStorePath",
            "/tmp/c",
            "TokenCacheStorePath=/tmp/c",
        ),
        ("LoginPrompt", "Never", "LoginPrompt=Never"),
        (
            "CertificateThumbprint",
            "DC6C689022C905EA5F812B51F1574ED10F256FF6",
            "Thumbprint=DC6C",
        ),
        (
            "Thumbprint",
            "DC6C689022C905EA5F812B51F1574ED10F256FF6",
            "Thumbprint=DC6C",
        ),
        (
            "CertThumbprint",
            "DC6C689022C905EA5F812B51F1574ED10F256FF6",
            "Thumbprint=DC6C",
        ),
        ("CertificateStoreName", "My", "StoreName=My"),
        ("StoreName", "My", "StoreName=My"),
        ("SkipDiscovery", "false", "SkipDiscovery=false"),
        ("Integrated Security", "false", "Integrated Security=false"),
        ("TenantId", "contoso.com", "TenantId=contoso.com"),
        ("Tenant Id", "contoso.com", "TenantId=contoso.com"),
        ("Tenant", "contoso.com", "TenantId=contoso.com"),
        (
            "Authority",
            "https://login.microsoftonline.com/contoso.com",
            "Authority=https://login.microsoftonline.com/contoso.com",
        ),
        (
            "AuthorityHost",
            "https://login.microsoftonline.us",
            "AuthorityHost=https://login.microsoftonline.us",
        ),
        (
            "Authority Host",
            "https://login.microsoftonline.us",
            "AuthorityHost=https://login.microsoftonline.us",
        ),
        ("CertificatePath", "/a.pfx", "CertificatePath=/a.pfx"),
        ("Certificate Path", "/a.pfx", "CertificatePath=/a.pfx"),
        ("CertificateFile", "/a.pfx", "CertificatePath=/a.pfx"),
        ("CertificateKeyPath", "/a.key", "CertificateKeyPath=/a.key"),
        ("CertificateKeyFile", "/a.key", "CertificateKeyPath=/a.key"),
        ("PrivateKeyPath", "/a.key", "CertificateKeyPath=/a.key"),
        (
            "CertificatePassword",
            "PFX-PASSWORD-9",
            "CertificatePassword=***",
        ),
        (
            "Certificate Password",
            "PFX-PASSWORD-9",
            "CertificatePassword=***",
        ),
        (
            "SendCertificateChain",
            "false",
            "SendCertificateChain=false",
        ),
    ];
    for (alias, value, shown) in aliases {
        for key in [
            alias.to_string(),
            alias.to_uppercase(),
            alias.to_lowercase(),
        ] {
            let parsed = ConnectionString::parse(&format!("{base};{key}={value}"))
                .unwrap_or_else(|error| panic!("{key}: {error}"));
            let redacted = parsed.to_redacted_string();
            assert!(redacted.contains(shown), "{key}: {redacted}");
            assert!(parsed.unknown_keys().is_empty(), "{key}");
            assert_no_secret(&key, &redacted);
        }
    }
    for (alias, auth_type) in [
        ("AuthType", "ClientSecret"),
        ("AuthenticationType", "ClientSecret"),
    ] {
        let parsed = ConnectionString::parse(&format!(
            "{alias}={auth_type};Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=s"
        ))
        .unwrap();
        assert_eq!(parsed.auth_type(), Some(AuthType::ClientSecret));
    }
    for alias in [
        "ServiceUri",
        "Service Uri",
        "Url",
        "Server",
        "SERVICE URI",
        "url",
    ] {
        let parsed = ConnectionString::parse(&format!(
            "AuthType=ExternalTokenManagement;{alias}=https://contoso.crm.dynamics.com"
        ))
        .unwrap();
        assert_eq!(
            parsed.url().as_str(),
            "https://contoso.crm.dynamics.com",
            "{alias}"
        );
    }
}

#[test]
fn auth_types_parse_in_any_case_and_by_number() {
    for (text, expected) in [
        ("ClientSecret", AuthType::ClientSecret),
        ("clientsecret", AuthType::ClientSecret),
        ("CERTIFICATE", AuthType::Certificate),
        ("oauth", AuthType::OAuth),
        ("5", AuthType::OAuth),
        ("6", AuthType::Certificate),
        ("99", AuthType::ExternalTokenManagement),
        ("externaltokenmanagement", AuthType::ExternalTokenManagement),
        ("ad", AuthType::Ad),
        ("Ifd", AuthType::Ifd),
        ("office365", AuthType::Office365),
    ] {
        assert_eq!(text.parse::<AuthType>(), Ok(expected), "{text}");
    }
    assert!("Basic".parse::<AuthType>().is_err());
    assert!("-1".parse::<AuthType>().is_err());
}

/// Collects every log line at TRACE while the table is parsed.
#[test]
fn no_log_line_holds_a_secret() {
    let watch = SecretWatch::start(SECRETS);
    for (input, _) in table() {
        let _ = ConnectionString::parse(input);
    }
    let _ = ConnectionString::parse(
        "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;Secret=SUPER-SECRET-1;Secret=p@ss;W0RDFRAG=x;RequireNewInstance=maybe",
    );
    let logs = watch.logs();
    assert!(
        logs.contains("does not know"),
        "unknown keys are logged: {logs}"
    );
    assert!(
        logs.contains("ServiceClient would not"),
        "AuthType case is logged: {logs}"
    );
    watch.assert_clean_with_logs();
}

#[test]
fn the_environment_variables_are_read_as_azure_identity_reads_them() {
    let read = |pairs: &[(&str, &str)]| {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        EnvironmentSettings::from_variables(|name| map.get(name).cloned())
    };
    let base = [
        ("D365_URL", "https://contoso.crm.dynamics.com"),
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AZURE_CLIENT_ID", C1),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        read(&all)
    };
    // The first complete credential wins: secret, certificate, user, federated token.
    let all = [
        ("AZURE_CLIENT_SECRET", "SUPER-SECRET-1"),
        ("AZURE_CLIENT_CERTIFICATE_PATH", "/etc/app.pem"),
        ("AZURE_USERNAME", "ana@contoso.com"),
        ("AZURE_PASSWORD", "p@ss;word"),
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
    ];
    // (the grant, the setting it uses)
    let chosen = [
        ("client-credentials", "ClientSecret"),
        ("client-credentials", "CertificatePath"),
        ("password", "Username"),
        ("client-credentials", "FederatedTokenFile"),
        ("client-credentials", "FederatedTokenFile"),
    ];
    for skip in 0..all.len() {
        let settings = with(&all[skip..]).unwrap();
        let (grant, setting) = chosen[skip];
        assert_eq!(settings.grant().name(), grant, "from {}", all[skip].0);
        assert!(
            settings.credential().config().has(setting),
            "from {}",
            all[skip].0
        );
        assert_no_secret("settings", &format!("{settings:?}"));
    }
    let settings = with(&[
        ("AZURE_CLIENT_SECRET", "s"),
        ("AZURE_AUTHORITY_HOST", "login.microsoftonline.us"),
    ])
    .unwrap();
    assert_eq!(
        settings.authority_host(),
        Some("https://login.microsoftonline.us")
    );
    assert_eq!(
        settings.url().unwrap().as_str(),
        "https://contoso.crm.dynamics.com"
    );
    assert_eq!(settings.client_id(), Some(C1));

    // Missing or invalid variables are named, values never shown.
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "no azure-identity credential"),
        (
            &[("AZURE_CLIENT_SECRET", "SUPER-SECRET-1")],
            "AZURE_CLIENT_ID is not set",
        ),
        (
            &[("AZURE_CLIENT_ID", C1), ("AZURE_USERNAME", "ana")],
            "AZURE_PASSWORD is not set",
        ),
        (
            &[("AZURE_CLIENT_ID", C1), ("AZURE_PASSWORD", "p@ss;word")],
            "AZURE_USERNAME is not set",
        ),
        (
            &[
                ("AZURE_CLIENT_ID", C1),
                ("AZURE_CLIENT_SECRET", "SUPER-SECRET-1"),
                ("D365_URL", "http://contoso.crm.dynamics.com"),
            ],
            "D365_URL is not valid",
        ),
        (
            &[
                ("AZURE_CLIENT_ID", C1),
                ("AZURE_CLIENT_SECRET", "SUPER-SECRET-1"),
                ("AZURE_TENANT_ID", "not a tenant"),
            ],
            "AZURE_TENANT_ID is not valid",
        ),
    ];
    for (pairs, fragment) in cases {
        let error = read(pairs).unwrap_err();
        assert!(
            matches!(error, ConnectError::Environment { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(fragment), "{error}");
        assert_no_secret("environment error", &error.to_string());
        assert_no_secret("environment error", &format!("{error:?}"));
    }
}

#[tokio::test]
async fn environment_without_tenant_or_url_says_what_to_set() {
    let settings = EnvironmentSettings::from_variables(|name| match name {
        "AZURE_CLIENT_ID" => Some(C1.to_owned()),
        "AZURE_CLIENT_SECRET" => Some("SUPER-SECRET-1".to_owned()),
        _ => None,
    })
    .unwrap();
    let error = settings
        .credential()
        .provider(&ConnectOptions::new())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("AZURE_TENANT_ID is not set"),
        "{error}"
    );
    let error = settings.client(&ConnectOptions::new()).await.unwrap_err();
    assert!(error.to_string().contains("D365_URL is not set"), "{error}");
}

// --- Against the d365 emulator.

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("d365-connect-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn assert_token(
    emulator: &Emulator,
    provider: &dyn TokenProvider,
    org: &str,
) -> d365_emulator::ValidatedToken {
    let token = provider
        .request_token(&TokenRequest::for_url(org).unwrap())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    emulator
        .token_validator()
        .validate(token.secret().expose_secret(), org)
        .expect("the emulator accepts its own token")
}

/// The tenant given explicitly, with the emulator as the authority host.
fn explicit(emulator: &Emulator) -> String {
    format!(
        "Url={base};TenantId={tenant};AuthorityHost={base}",
        base = emulator.base_url(),
        tenant = emulator.tenant_id()
    )
}

#[tokio::test]
async fn client_secret_gets_a_token_from_the_emulator() {
    let emulator = Emulator::builder().start().await.unwrap();
    let app = emulator.seeded().unwrap().confidential_app.clone();
    let text = format!(
        "AuthType=ClientSecret;{};ClientId={};ClientSecret='{}'",
        explicit(&emulator),
        app.client_id,
        app.secret.expose_secret().replace('\'', "''")
    );
    let provider = provider_from_connection_string(&text).await.unwrap();
    assert_eq!(provider.grant(), Grant::new("client_credentials"));
    let token = assert_token(&emulator, provider.as_ref(), emulator.base_url()).await;
    assert!(token.is_app_only());
    assert_eq!(token.client_id(), Some(app.client_id.as_str()));

    // A wrong secret: Entra's error, with no secret in it.
    let wrong = format!(
        "AuthType=ClientSecret;{};ClientId={};ClientSecret=SUPER-SECRET-1",
        explicit(&emulator),
        app.client_id
    );
    let provider = provider_from_connection_string(&wrong).await.unwrap();
    let error = provider
        .request_token(&TokenRequest::for_url(emulator.base_url()).unwrap())
        .await
        .unwrap_err();
    assert_no_secret("token error", &error.to_string());
    assert_no_secret("token error", &format!("{error:?}"));

    // The whole client.
    let client = connect_with(&text, &ConnectOptions::new()).await.unwrap();
    assert_eq!(
        client.org().as_str(),
        emulator.base_url().trim_end_matches('/')
    );
    client
        .token_cache()
        .get(&TokenRequest::for_url(emulator.base_url()).unwrap())
        .await
        .unwrap();
    emulator.shutdown().await;
}

#[tokio::test]
async fn certificate_files_get_a_token_and_the_thumbprint_is_checked() {
    let emulator = Emulator::builder().start().await.unwrap();
    let app = emulator.seeded().unwrap().certificate_app.clone();
    let dir = scratch_dir();
    let combined = dir.join("app.pem");
    let (certificate, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&certificate, &app.certificate_pem).unwrap();
    std::fs::write(&key, app.private_key_pem.expose_secret()).unwrap();
    let mut file = std::fs::File::create(&combined).unwrap();
    write!(
        file,
        "{}\n{}",
        app.private_key_pem.expose_secret(),
        app.certificate_pem
    )
    .unwrap();
    drop(file);

    for (files, thumbprint) in [
        (
            format!("CertificatePath={}", combined.display()),
            String::new(),
        ),
        (
            format!(
                "CertificateFile={};CertificateKeyPath={}",
                certificate.display(),
                key.display()
            ),
            format!(";Thumbprint={}", app.thumbprint_sha1.to_lowercase()),
        ),
        (
            format!(
                "CertificatePath={};PrivateKeyPath={};SendCertificateChain=false",
                certificate.display(),
                key.display()
            ),
            String::new(),
        ),
    ] {
        let text = format!(
            "AuthType=Certificate;{};ClientId={};{files}{thumbprint}",
            explicit(&emulator),
            app.client_id
        );
        let provider = provider_from_connection_string(&text)
            .await
            .unwrap_or_else(|error| panic!("{text}: {error}"));
        let token = assert_token(&emulator, provider.as_ref(), emulator.base_url()).await;
        assert_eq!(token.client_id(), Some(app.client_id.as_str()));
    }

    let mismatch = format!(
        "AuthType=Certificate;{};ClientId={};CertificatePath={};Thumbprint=DC6C689022C905EA5F812B51F1574ED10F256FF6",
        explicit(&emulator),
        app.client_id,
        combined.display()
    );
    let error = provider_from_connection_string(&mismatch)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConnectError::InvalidValue {
                key: "Thumbprint",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains(&app.thumbprint_sha1), "{error}");

    let missing = format!(
        "AuthType=Certificate;{};ClientId={};CertificatePath={}",
        explicit(&emulator),
        app.client_id,
        dir.join("absent.pfx").display()
    );
    let error = provider_from_connection_string(&missing).await.unwrap_err();
    assert!(
        matches!(
            error,
            ConnectError::InvalidValue {
                key: "CertificatePath",
                ..
            }
        ),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    emulator.shutdown().await;
}

#[tokio::test]
async fn oauth_with_a_user_and_password_uses_the_password_grant() {
    let emulator = Emulator::builder().start().await.unwrap();
    let seeded = emulator.seeded().unwrap().clone();
    let text = format!(
        "AuthType=OAuth;{};AppId={};Username={};Password='{}';RedirectUri=http://localhost;LoginPrompt=Never",
        explicit(&emulator),
        seeded.public_app.client_id,
        seeded.user.upn,
        seeded.user.password.expose_secret().replace('\'', "''")
    );
    let provider = provider_from_connection_string(&text).await.unwrap();
    assert_eq!(provider.grant(), Grant::new("password"));
    let token = assert_token(&emulator, provider.as_ref(), emulator.base_url()).await;
    assert_eq!(token.user_principal_name(), Some(seeded.user.upn.as_str()));

    let wrong = format!(
        "AuthType=OAuth;{};AppId={};Username={};Password='p@ss;word'",
        explicit(&emulator),
        seeded.public_app.client_id,
        seeded.user.upn
    );
    let provider = provider_from_connection_string(&wrong).await.unwrap();
    let error = provider
        .request_token(&TokenRequest::for_url(emulator.base_url()).unwrap())
        .await
        .unwrap_err();
    assert_no_secret("password grant error", &error.to_string());
    assert_no_secret("password grant error", &format!("{error:?}"));
    emulator.shutdown().await;
}

#[tokio::test]
async fn grant_azure_cli_is_named_and_needs_no_authority() {
    // No tenant and an organization nobody can reach: a grant that needed an authority
    // would try discovery from the 401 challenge here and fail.
    let provider = provider_from_connection_string(
        "AuthType=OAuth;Url=https://unreachable.invalid;Grant=azure-cli",
    )
    .await
    .unwrap();
    assert_eq!(provider.grant(), Grant::new("azure_cli"));
    assert_eq!(provider.cache_key(), "azure_cli|default|default");

    let text = "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Grant=Azure-CLI;TenantId=contoso.onmicrosoft.com";
    let parsed = ConnectionString::parse(text).unwrap();
    assert_eq!(parsed.credential().grant().name(), "azure-cli");
    let provider = provider_from_connection_string(text).await.unwrap();
    assert_eq!(
        provider.cache_key(),
        "azure_cli|contoso.onmicrosoft.com|default"
    );

    // From the environment: no AZURE_CLIENT_ID needed, AZURE_TENANT_ID passed on.
    let variables = HashMap::from([
        ("D365_URL", "https://contoso.crm.dynamics.com"),
        ("D365_GRANT", "azure-cli"),
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
    ]);
    let settings =
        EnvironmentSettings::from_variables(|name| variables.get(name).map(|v| (*v).to_owned()))
            .unwrap();
    assert_eq!(settings.grant().name(), "azure-cli");
    let provider = settings
        .credential()
        .provider(&ConnectOptions::new())
        .await
        .unwrap();
    assert_eq!(
        provider.cache_key(),
        "azure_cli|contoso.onmicrosoft.com|default"
    );
}

#[tokio::test]
async fn external_token_management_uses_the_callback() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let options = ConnectOptions::new().token_callback(move |resource: String| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(SecretString::from(format!("token-for-{resource}")))
        }
    });
    let text = "AuthType=ExternalTokenManagement;Url=https://contoso.crm.dynamics.com";
    let client = connect_with(text, &options).await.unwrap();
    let request = TokenRequest::for_url("https://contoso.crm.dynamics.com").unwrap();
    let token = client.token_cache().get(&request).await.unwrap();
    assert_eq!(
        token.secret().expose_secret(),
        "token-for-https://contoso.crm.dynamics.com/"
    );
    client.token_cache().get(&request).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the cache serves the second call"
    );

    let error = provider_from_connection_string(text).await.unwrap_err();
    assert!(
        matches!(error, ConnectError::TokenCallbackRequired),
        "{error}"
    );

    let client = ConnectionString::parse(text)
        .unwrap()
        .into_client_with_token_callback(|_| async { Ok(SecretString::from("t")) })
        .unwrap();
    assert_eq!(
        client
            .token_cache()
            .get(&request)
            .await
            .unwrap()
            .secret()
            .expose_secret(),
        "t"
    );

    let error = ConnectionString::parse("AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com;ClientId=c1;ClientSecret=SUPER-SECRET-1")
        .unwrap()
        .into_client_with_token_callback(|_| async { Ok(SecretString::from("t")) })
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("AuthType=ExternalTokenManagement"),
        "{error}"
    );
    assert_no_secret("callback error", &format!("{error:?}"));
}

/// A stand-in for Dataverse's unauthenticated answer: `401` with the challenge, pointing
/// at the emulator's authority. Counts the requests.
async fn challenge_server(authorization_uri: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let resource = format!("{base}/");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let authorization_uri = authorization_uri.clone();
            let resource = resource.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0_u8; 1024];
                while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request).to_string();
                let status = if head.starts_with("GET /api/data/v9.2/ ")
                    && !head.to_ascii_lowercase().contains("authorization:")
                {
                    "401 Unauthorized"
                } else {
                    "400 Bad Request"
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nWWW-Authenticate: Bearer authorization_uri={authorization_uri}, resource_id={resource}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (base, hits)
}

#[tokio::test]
async fn without_a_tenant_the_authority_is_discovered_from_the_401_challenge() {
    let emulator = Emulator::builder().start().await.unwrap();
    let seeded = emulator.seeded().unwrap().clone();
    let authorization_uri = format!(
        "{}/{}/oauth2/authorize",
        emulator.base_url().trim_end_matches('/'),
        emulator.tenant_id()
    );
    let (org, hits) = challenge_server(authorization_uri).await;
    emulator.register_organization(&org);

    let discovered = d365_connect::discover_authority(
        &reqwest::Client::new(),
        &d365_auth_core::Resource::parse(&org).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(discovered.tenant().unwrap().as_str(), emulator.tenant_id());

    let secret = format!(
        "AuthType=ClientSecret;Url={org};ClientId={};ClientSecret='{}'",
        seeded.confidential_app.client_id,
        seeded
            .confidential_app
            .secret
            .expose_secret()
            .replace('\'', "''")
    );
    let password = format!(
        "AuthType=OAuth;Url={org};AppId={};Username={};Password='{}'",
        seeded.public_app.client_id,
        seeded.user.upn,
        seeded.user.password.expose_secret().replace('\'', "''")
    );
    for text in [secret, password] {
        let before = hits.load(Ordering::SeqCst);
        let provider = provider_from_connection_string(&text).await.unwrap();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            before + 1,
            "one discovery request"
        );
        assert_token(&emulator, provider.as_ref(), &org).await;
    }

    // Something that is not Dataverse: no challenge, and the error says what to do.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0_u8; 1024];
            let _ = socket.read(&mut buffer).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    let error = provider_from_connection_string(&format!(
        "AuthType=ClientSecret;Url={silent};ClientId=c1;ClientSecret=SUPER-SECRET-1"
    ))
    .await
    .unwrap_err();
    assert!(matches!(error, ConnectError::Discovery { .. }), "{error}");
    assert!(
        error.to_string().contains("answered HTTP 200 without"),
        "{error}"
    );
    assert!(error.to_string().contains("give TenantId"), "{error}");
    assert_no_secret("discovery error", &format!("{error:?}"));
    emulator.shutdown().await;
}

#[tokio::test]
async fn environment_variables_get_tokens_from_the_emulator() {
    let emulator = Emulator::builder().start().await.unwrap();
    let seeded = emulator.seeded().unwrap().clone();
    let dir = scratch_dir();
    let pem = dir.join("app.pem");
    std::fs::write(
        &pem,
        format!(
            "{}\n{}",
            seeded.certificate_app.private_key_pem.expose_secret(),
            seeded.certificate_app.certificate_pem
        ),
    )
    .unwrap();
    let pem = pem.display().to_string();
    let common = [
        ("D365_URL", emulator.base_url().to_owned()),
        ("AZURE_TENANT_ID", emulator.tenant_id().to_owned()),
        ("AZURE_AUTHORITY_HOST", emulator.base_url().to_owned()),
    ];
    let sets: Vec<(Vec<(&str, String)>, Grant)> = vec![
        (
            vec![
                ("AZURE_CLIENT_ID", seeded.confidential_app.client_id.clone()),
                (
                    "AZURE_CLIENT_SECRET",
                    seeded.confidential_app.secret.expose_secret().to_owned(),
                ),
            ],
            Grant::new("client_credentials"),
        ),
        (
            vec![
                ("AZURE_CLIENT_ID", seeded.certificate_app.client_id.clone()),
                ("AZURE_CLIENT_CERTIFICATE_PATH", pem.clone()),
                ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "1".to_owned()),
            ],
            Grant::new("client_credentials"),
        ),
        (
            vec![
                ("AZURE_CLIENT_ID", seeded.public_app.client_id.clone()),
                ("AZURE_USERNAME", seeded.user.upn.clone()),
                (
                    "AZURE_PASSWORD",
                    seeded.user.password.expose_secret().to_owned(),
                ),
            ],
            Grant::new("password"),
        ),
    ];
    for (set, grant) in sets {
        let map: HashMap<&str, String> = common.iter().cloned().chain(set).collect();
        let settings = EnvironmentSettings::from_variables(|name| map.get(name).cloned()).unwrap();
        let provider = settings
            .credential()
            .provider(&ConnectOptions::new())
            .await
            .unwrap();
        assert_eq!(provider.grant(), grant);
        assert_token(&emulator, provider.as_ref(), emulator.base_url()).await;
        let client = settings.client(&ConnectOptions::new()).await.unwrap();
        assert_eq!(
            client.org().as_str(),
            emulator.base_url().trim_end_matches('/')
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    emulator.shutdown().await;
}

#[test]
fn a_build_without_the_browser_sign_in_says_what_to_enable() {
    let password_only = d365_connect::Registry::empty().with(&d365_auth_ropc::REGISTRATION);
    let interactive = "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;LoginPrompt=Auto";
    let error = ConnectionString::parse_with(interactive, &password_only).unwrap_err();
    assert!(matches!(error, ConnectError::InteractiveSignIn), "{error}");
    assert!(
        error.to_string().contains("`interactive` feature"),
        "{error}"
    );
    let half = "AuthType=OAuth;Url=https://contoso.crm.dynamics.com;Username=ana@contoso.com";
    let error = ConnectionString::parse_with(half, &password_only).unwrap_err();
    assert!(error.to_string().contains("no Password"), "{error}");
    let parsed = ConnectionString::parse(interactive).unwrap();
    assert_eq!(parsed.grant().name(), "interactive");
}

#[test]
fn a_string_that_names_its_grant_needs_no_auth_type() {
    let parsed = ConnectionString::parse(
        "Grant=managed-identity;Url=https://contoso.crm.dynamics.com;ClientId=00000000-0000-0000-0000-0000000000c1",
    )
    .unwrap();
    assert_eq!(parsed.auth_type(), None);
    assert_eq!(parsed.grant().name(), "managed-identity");
    assert_eq!(
        parsed.to_string(),
        "Url=https://contoso.crm.dynamics.com;ClientId=00000000-0000-0000-0000-0000000000c1;Grant=managed-identity"
    );
    let error = ConnectionString::parse("Url=https://contoso.crm.dynamics.com").unwrap_err();
    assert!(error.to_string().contains("no AuthType"), "{error}");
}
