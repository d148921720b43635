//! `d365 auth compare` (grants side by side) and `d365 auth doctor` (a connection checked
//! step by step, each failure with what is wrong and how to fix it).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use d365_auth_core::grant::GrantConfig;
use d365_auth_core::{AccessToken, Resource, TokenCache, TokenProvider, TokenRequest};
use d365_auth_device_code::ShowDeviceCode;
use d365_connect::{BearerChallenge, ConnectOptions, Credential, Registry};
use d365_emulator::Emulator;
use d365_webapi::{Client, ErrorKind, Query};
use serde_json::{Value, json};

use crate::cli::Global;
use crate::commands::token::claims;
use crate::connection::{Connection, emulator_builder, emulator_config, start_emulator};
use crate::exit;
use crate::output;

/// The columns of the comparison, in reading order.
pub(crate) const COMPARE_COLUMNS: &[&str] = &[
    "grant",
    "kind",
    "cold",
    "cached",
    "lifetime",
    "roles / scp",
    "WhoAmI user",
    "result",
];

/// One grant to compare: a label and its provider.
pub(crate) struct Candidate {
    pub(crate) label: String,
    pub(crate) provider: Arc<dyn TokenProvider>,
}

/// The emulator's seeded identities as grants, each described as configuration and built
/// by `d365-connect`: a secret, a certificate (from the files the emulator writes), the
/// password grant for a public and a confidential client, and the device code grant —
/// approved by the emulator itself as its seeded user the moment the code is issued, so
/// the comparison runs unattended (the label says so).
pub(crate) async fn emulator_candidates(emulator: &Emulator) -> anyhow::Result<Vec<Candidate>> {
    let seeded = emulator
        .seeded()
        .ok_or_else(|| anyhow::anyhow!("the emulator has no seeded identities"))?;
    let files = emulator
        .credentials_dir()
        .ok_or_else(|| anyhow::anyhow!("the emulator wrote no credential files"))?;
    let base = emulator_config(emulator)?;
    let described = |auth_type: &str, client_id: &str| {
        let mut config = base.clone();
        config.auth_type = Some(auth_type.to_owned());
        config.client_id = Some(client_id.to_owned());
        config
    };

    let mut secret = described("ClientSecret", &seeded.confidential_app.client_id);
    secret.set_secret("ClientSecret", seeded.confidential_app.secret.clone());

    let mut certificate = described("Certificate", &seeded.certificate_app.client_id);
    certificate.set_text(
        "CertificatePath",
        files.join("certificate-app.crt.pem").display().to_string(),
    );
    certificate.set_text(
        "CertificateKeyPath",
        files.join("certificate-app.key.pem").display().to_string(),
    );
    certificate.set_text("Thumbprint", seeded.certificate_app.thumbprint_sha1.clone());

    let with_user = |mut config: GrantConfig| {
        config.set_text("Username", seeded.user.upn.clone());
        config.set_secret("Password", seeded.user.password.clone());
        config
    };
    let public_password = with_user(described("OAuth", &seeded.public_app.client_id));
    let mut confidential_password =
        with_user(described("OAuth", &seeded.confidential_app.client_id));
    confidential_password.set_secret("ClientSecret", seeded.confidential_app.secret.clone());

    let mut device_code = described("OAuth", &seeded.public_app.client_id);
    device_code.grant = Some("device-code".to_owned());
    let codes = emulator.device_codes();
    let person = seeded.user.upn.clone();
    let approve = ConnectOptions::new().extension(ShowDeviceCode::new(move |message| {
        if let Err(error) = codes.approve(&message.user_code, &person) {
            tracing::warn!(%error, "the emulator did not approve the device code");
        }
    }));

    // Managed identity in both of Azure's shapes, at the emulator's endpoints: App Service
    // (endpoint and its secret header) and the instance metadata service.
    let host = emulator.managed_identity();
    let mut app_service = base.clone();
    app_service.grant = Some("managed-identity".to_owned());
    app_service.set_text("IdentityEndpoint", host.app_service_endpoint());
    app_service.set_secret("IdentityHeader", host.identity_header());
    let mut imds = base.clone();
    imds.grant = Some("managed-identity".to_owned());
    imds.set_text("ImdsEndpoint", emulator.base_url().to_owned());

    let registry = Registry::enabled();
    let plain = ConnectOptions::new();
    let mut candidates = Vec::new();
    for (label, config, options) in [
        ("client credentials (secret)".to_owned(), secret, &plain),
        (
            "client credentials (certificate)".to_owned(),
            certificate,
            &plain,
        ),
        (
            "password (public client)".to_owned(),
            public_password,
            &plain,
        ),
        (
            "password (confidential client)".to_owned(),
            confidential_password,
            &plain,
        ),
        (
            format!(
                "device code (public client; approved by the emulator as {})",
                seeded.user.upn
            ),
            device_code,
            &approve,
        ),
        (
            "managed identity (App Service endpoint)".to_owned(),
            app_service,
            &plain,
        ),
        (
            "managed identity (instance metadata service)".to_owned(),
            imds,
            &plain,
        ),
    ] {
        let credential = Credential::from_config(config, &registry)?;
        candidates.push(Candidate {
            label,
            provider: credential.provider(options).await?,
        });
    }
    Ok(candidates)
}

/// Measures each candidate against `org` and returns one row per grant.
pub(crate) async fn compare_rows(org: &Resource, candidates: Vec<Candidate>) -> Vec<Value> {
    let request = TokenRequest::new(org.clone());
    let mut rows = Vec::new();
    for candidate in candidates {
        let cache = TokenCache::new(Arc::clone(&candidate.provider));
        let started = Instant::now();
        let cold = cache.get(&request).await;
        let cold_time = started.elapsed();
        let row = match cold {
            Err(error) => json!({
                "grant": candidate.label,
                "result": format!("failed: {error}"),
            }),
            Ok(token) => {
                let started = Instant::now();
                let _ = cache.get(&request).await;
                let cached_time = started.elapsed();
                let claims = claims(&token).unwrap_or(Value::Null);
                let delegated = claims.get("scp").is_some();
                let client =
                    Client::builder_shared(org.organization_url(), Arc::clone(&candidate.provider))
                        .max_retries(0)
                        .build();
                let client = match client {
                    Ok(client) => client.discover_api_version().await,
                    Err(error) => Err(error),
                };
                let user = match client {
                    Ok(client) => match client.who_am_i().await {
                        Ok(me) => me.user_id.to_string(),
                        Err(error) => format!("WhoAmI failed: {}", error.kind_text()),
                    },
                    Err(error) => error.to_string(),
                };
                json!({
                    "grant": candidate.label,
                    "cold": format_duration(cold_time),
                    "cached": format_duration(cached_time),
                    "lifetime": format!("{} min", lifetime(&token) / 60),
                    "kind": if delegated { "delegated" } else { "app-only" },
                    "roles / scp": claims.get("scp").or_else(|| claims.get("roles")).cloned().unwrap_or(json!("")),
                    "WhoAmI user": user,
                })
            }
        };
        rows.push(row);
    }
    rows
}

fn lifetime(token: &AccessToken) -> u64 {
    token.remaining_at(SystemTime::now()).as_secs()
}

fn format_duration(duration: Duration) -> String {
    if duration < Duration::from_millis(1) {
        format!("{} µs", duration.as_micros())
    } else {
        format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
    }
}

trait KindText {
    fn kind_text(&self) -> String;
}

impl KindText for d365_webapi::WebApiError {
    fn kind_text(&self) -> String {
        match self.service() {
            Some(service) if !service.code().is_empty() => {
                format!("{:?} ({})", self.kind(), service.code())
            }
            _ => format!("{:?}", self.kind()),
        }
    }
}

/// `d365 auth compare`: the emulator's grants (with `--emulator`, or when nothing is
/// configured), else the configured connection and every saved profile for the same
/// organization, and with `--grant NAME` that grant beside the connection's own (the
/// device code grant needs a person: it prompts once; on the emulator, the emulator
/// approves it).
pub(crate) async fn compare(global: &Global) -> anyhow::Result<()> {
    let nothing_configured = global.connection_string.is_none()
        && global.connection_string_file.is_none()
        && global.profile.is_none()
        && crate::profiles::selected(None)?.is_none()
        && std::env::var("D365_URL").is_err();
    let (org, candidates, _emulator) = if global.emulator || nothing_configured {
        let emulator =
            start_emulator(emulator_builder().write_credentials_to_private_dir()).await?;
        let candidates = emulator_candidates(&emulator).await?;
        (
            Resource::parse(emulator.base_url())?,
            candidates,
            Some(emulator),
        )
    } else {
        let connection = Connection::resolve_as(global, None).await?;
        if let Some(authenticator) = connection.client.connection_authenticator() {
            // Windows sign-in: no token to time or read; WhoAmI says whom it signs in.
            let started = Instant::now();
            let user = match connection.client.who_am_i().await {
                Ok(me) => me.user_id.to_string(),
                Err(error) => format!("WhoAmI failed: {}", error.kind_text()),
            };
            let rows = vec![json!({
                "grant": connection.source,
                "kind": format!("Windows sign-in ({}, no token)", authenticator.scheme()),
                "cold": format_duration(started.elapsed()),
                "roles / scp": authenticator.identity(),
                "WhoAmI user": user,
            })];
            return output::records_in_order(
                &mut std::io::stdout().lock(),
                global.output,
                &rows,
                COMPARE_COLUMNS,
            );
        }
        let mut candidates = vec![Candidate {
            label: connection.source.clone(),
            provider: Arc::clone(&connection.provider),
        }];
        if global.grant.is_some() {
            let other = Connection::resolve_as(global, global.grant.as_deref()).await?;
            candidates.push(Candidate {
                label: other.source.clone(),
                provider: Arc::clone(&other.provider),
            });
        }
        candidates.extend(
            crate::connection::profile_candidates(connection.client.org(), &connection.source)
                .await?,
        );
        (connection.client.org().clone(), candidates, None)
    };
    let rows = compare_rows(&org, candidates).await;
    output::records_in_order(
        &mut std::io::stdout().lock(),
        global.output,
        &rows,
        COMPARE_COLUMNS,
    )
}

/// `d365 auth grants`: every grant this build registers, what it is for, and the
/// connection-string keys and environment variables it reads besides the common ones.
pub(crate) fn grants(global: &Global) -> anyhow::Result<()> {
    let rows: Vec<Value> = Registry::enabled()
        .iter()
        .map(|grant| {
            let keys: Vec<&str> = grant.keys().iter().map(|key| key.name).collect();
            let variables: Vec<&str> = grant.keys().iter().filter_map(|key| key.variable).collect();
            json!({
                "grant": grant.name(),
                "for": grant.description(),
                "keys": keys.join(", "),
                "variables": variables.join(", "),
            })
        })
        .collect();
    output::records_in_order(
        &mut std::io::stdout().lock(),
        global.output,
        &rows,
        &["grant", "for", "keys", "variables"],
    )
}

/// The outcome of one doctor step.
struct Step {
    name: &'static str,
    ok: bool,
    detail: String,
    fix: Option<String>,
    /// The exit code a failure of this check ends `auth doctor` with.
    code: u8,
}

impl Step {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
            code: exit::SUCCESS,
        }
    }

    /// A failed check, ending `auth doctor` with the exit code `code` (of [`exit::TABLE`]).
    fn fail(
        name: &'static str,
        code: u8,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
            code,
        }
    }
}

/// `d365 auth doctor`: URL, TLS and reachability, authority discovery from the 401
/// challenge, token, audience, WhoAmI (application user), read privilege.
pub(crate) async fn doctor(global: &Global) -> anyhow::Result<()> {
    let connection = Connection::resolve(global).await?;
    let steps = diagnose(&connection).await;
    let failed = steps.iter().find(|step| !step.ok);
    let rows: Vec<Value> = steps
        .iter()
        .map(|step| {
            json!({
                "check": step.name,
                "result": if step.ok { "ok" } else { "FAILED" },
                "detail": step.detail,
                "fix": step.fix,
            })
        })
        .collect();
    output::records_in_order(
        &mut std::io::stdout().lock(),
        global.output,
        &rows,
        &["check", "result", "detail", "fix"],
    )?;
    if let Some(step) = failed {
        return Err(exit::Failed {
            code: step.code,
            message: format!(
                "the connection has a problem: the `{}` check FAILED (see above)",
                step.name
            ),
        }
        .into());
    }
    Ok(())
}

async fn diagnose(connection: &Connection) -> Vec<Step> {
    let mut steps = Vec::new();
    let org = connection.client.org().clone();
    steps.push(Step::pass(
        "organization URL",
        format!("{org} ({})", connection.source),
    ));

    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            steps.push(Step::fail(
                "TLS and reachability",
                exit::FAILURE,
                error.to_string(),
                "check the TLS configuration of this machine",
            ));
            return steps;
        }
    };
    let probe = connection.client.api_root().to_string();
    let challenges = match http.get(&probe).send().await {
        Err(error) => {
            let fix = if error.is_connect() {
                "check the URL's host name, DNS, a proxy (HTTPS_PROXY) and the firewall"
            } else {
                "check the network and the TLS certificates this machine trusts"
            };
            steps.push(Step::fail(
                "TLS and reachability",
                exit::NETWORK,
                format!("{probe}: {error}"),
                fix,
            ));
            return steps;
        }
        Ok(response) => {
            steps.push(Step::pass(
                "TLS and reachability",
                format!("{probe} answered HTTP {}", response.status().as_u16()),
            ));
            response
                .headers()
                .get_all(http::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    let found = Challenges::read(&challenges);
    steps.push(found.deployment_step());
    if let Some(discovery) = found.adfs_discovery_url() {
        steps.push(adfs_step(&http, &discovery).await);
    }

    if let Some(authenticator) = connection.client.connection_authenticator() {
        // Windows sign-in has no token: the WhoAmI below proves the account, on a new
        // connection signed in for it.
        steps.push(Step::pass(
            "sign-in",
            format!(
                "Windows sign-in ({}) as {}, no token: each connection is signed in",
                authenticator.scheme(),
                authenticator.identity()
            ),
        ));
        return server_steps(connection, steps).await;
    }

    // The credential is proved by a fresh request to the identity provider: a token from
    // the token file says nothing about whether the secret configured now still works.
    let request = TokenRequest::new(org.clone());
    let token = match connection.grant.request_token(&request).await {
        Ok(token) => {
            steps.push(Step::pass(
                "token",
                format!(
                    "a fresh {} token (the credential works), valid {} more min",
                    connection.grant.grant(),
                    lifetime(&token) / 60
                ),
            ));
            token
        }
        Err(error) => {
            let fix = error
                .hint()
                .unwrap_or("check the credentials of the connection")
                .to_owned();
            steps.push(Step::fail(
                "token",
                exit::from_auth(&error),
                error.to_string(),
                fix,
            ));
            return steps;
        }
    };
    let audience = claims(&token)
        .and_then(|claims| claims.get("aud").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    if audience
        .trim_end_matches('/')
        .eq_ignore_ascii_case(org.as_str())
    {
        steps.push(Step::pass("audience", audience));
    } else {
        steps.push(Step::fail(
            "audience",
            exit::AUTH,
            format!("the token is for `{audience}`, not `{org}`"),
            "use the organization URL exactly as Dataverse names itself (see resource_id above), e.g. without `.api.`",
        ));
        return steps;
    }
    server_steps(connection, steps).await
}

/// The steps that ask the organization itself: WhoAmI, the server's version, a read.
async fn server_steps(connection: &Connection, mut steps: Vec<Step>) -> Vec<Step> {
    match connection.client.who_am_i().await {
        Ok(me) => steps.push(Step::pass(
            "WhoAmI / application user",
            format!(
                "user {} in business unit {}",
                me.user_id, me.business_unit_id
            ),
        )),
        Err(error) => {
            let fix = match error.kind() {
                ErrorKind::NotAMember => {
                    "create an application user for this app in the environment (Power Platform admin center > Settings > Users + permissions > Application users) and give it a security role"
                }
                ErrorKind::Unauthorized => {
                    "the token was refused: check the tenant is the environment's and the URL is the organization's"
                }
                _ => error.hint().unwrap_or("see the error"),
            };
            steps.push(Step::fail(
                "WhoAmI / application user",
                exit::from_webapi(&error),
                error.to_string(),
                fix,
            ));
            return steps;
        }
    }

    match connection.client.retrieve_version().await {
        Ok(version) => steps.push(Step::pass(
            "Web API version",
            format!(
                "the server is version {version}; d365 speaks Web API {} to it",
                connection.client.api_version()
            ),
        )),
        Err(error) => steps.push(Step::fail(
            "Web API version",
            exit::from_webapi(&error),
            error.to_string(),
            "set the version the server speaks with --api-version or ApiVersion= in the connection string (v8.0-v8.2 for CRM 2016, v9.0-v9.1 for Dynamics 365 on-premises)",
        )),
    }

    match connection.client.query_page::<Value>(&Query::new("accounts").select(["name"]).top(1)).await {
        Ok(_) => steps.push(Step::pass("privileges", "can read accounts")),
        Err(error) if error.kind() == ErrorKind::Forbidden => steps.push(Step::fail(
            "privileges",
            exit::AUTH,
            error.to_string(),
            "give the user or application user a security role with read access to accounts (or the tables you use)",
        )),
        Err(error) => steps.push(Step::fail(
            "privileges",
            exit::from_webapi(&error),
            error.to_string(),
            error.hint().unwrap_or("see the error").to_owned(),
        )),
    }
    steps
}

/// What an unauthenticated request's `WWW-Authenticate` headers say about the server.
#[derive(Debug, Default)]
struct Challenges {
    /// The `Bearer` challenge, when there is one that parses.
    bearer: Option<BearerChallenge>,
    /// The Windows sign-in schemes offered (`Negotiate`, `NTLM`), in the server's order.
    windows: Vec<&'static str>,
}

impl Challenges {
    fn read(values: &[String]) -> Self {
        let mut found = Self::default();
        for value in values {
            if found.bearer.is_none() {
                found.bearer = BearerChallenge::parse(value);
            }
            // Each header value may hold several challenges; a scheme is the first token of
            // one, so it follows the start of the value or a comma.
            for part in value.split(',') {
                let scheme = part.split_whitespace().next().unwrap_or("");
                for known in ["Negotiate", "NTLM"] {
                    if scheme.eq_ignore_ascii_case(known) && !found.windows.contains(&known) {
                        found.windows.push(known);
                    }
                }
            }
        }
        found
    }

    /// Whether the `Bearer` challenge names AD FS (its `/adfs/` endpoints).
    fn is_adfs(&self) -> bool {
        self.bearer.as_ref().is_some_and(|bearer| {
            bearer
                .authorization_uri
                .path()
                .to_ascii_lowercase()
                .starts_with("/adfs/")
        })
    }

    /// AD FS's OpenID discovery document (`{authority}/.well-known/openid-configuration`),
    /// when the challenge names AD FS.
    fn adfs_discovery_url(&self) -> Option<String> {
        let bearer = self.bearer.as_ref().filter(|_| self.is_adfs())?;
        let mut authority = bearer.authorization_uri.clone();
        authority.set_query(None);
        authority.set_fragment(None);
        let path = authority.path().trim_end_matches('/').to_owned();
        let base = path.strip_suffix("/oauth2/authorize").unwrap_or(&path);
        authority.set_path(&format!("{base}/.well-known/openid-configuration"));
        Some(authority.to_string())
    }

    /// The "authority discovery" step: online (Entra ID), on-premises with AD FS, Windows
    /// sign-in, or nothing d365 can use.
    fn deployment_step(&self) -> Step {
        let windows = if self.windows.is_empty() {
            String::new()
        } else {
            format!("; Windows sign-in offered ({})", self.windows.join(", "))
        };
        match &self.bearer {
            Some(bearer) if self.is_adfs() => Step::pass(
                "authority discovery",
                format!(
                    "on-premises with AD FS: authority {} for resource {}{windows}",
                    bearer.authorization_uri, bearer.resource_id
                ),
            ),
            Some(bearer) => Step::pass(
                "authority discovery",
                format!(
                    "authority {} for resource {}{windows}",
                    bearer.authorization_uri, bearer.resource_id
                ),
            ),
            None if !self.windows.is_empty() => Step::pass(
                "authority discovery",
                format!(
                    "on-premises with Windows sign-in only ({}), no AD FS: connect with AuthType=AD;Url=…;Domain=…;Username=…;Password=…",
                    self.windows.join(", ")
                ),
            ),
            None => Step::fail(
                "authority discovery",
                exit::USAGE,
                "no `WWW-Authenticate: Bearer authorization_uri=…` (or Negotiate/NTLM) challenge on an unauthenticated request",
                "check that the URL is a Dataverse organization (https://{org}.crm.dynamics.com, or an on-premises server with its organization: https://server/Org), not a portal or app URL",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Challenges;

    #[test]
    fn doctor_tells_online_ad_fs_and_windows_sign_in_apart() {
        let online = Challenges::read(&[
            "Bearer authorization_uri=https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/".to_owned(),
        ]);
        let step = online.deployment_step();
        assert!(
            step.ok && !step.detail.contains("on-premises"),
            "{}",
            step.detail
        );

        let adfs = Challenges::read(&[
            "Bearer authorization_uri=https://adfs.contoso.com/adfs/oauth2/authorize, resource_id=https://crm.contoso.local/".to_owned(),
            "Negotiate".to_owned(),
            "NTLM".to_owned(),
        ]);
        let step = adfs.deployment_step();
        assert!(step.ok, "{}", step.detail);
        assert!(
            step.detail.starts_with("on-premises with AD FS"),
            "{}",
            step.detail
        );
        assert!(
            step.detail
                .ends_with("Windows sign-in offered (Negotiate, NTLM)"),
            "{}",
            step.detail
        );

        let windows = Challenges::read(&["Negotiate, NTLM".to_owned()]);
        let step = windows.deployment_step();
        assert!(
            step.ok && step.detail.contains("AuthType=AD"),
            "{}",
            step.detail
        );

        let nothing = Challenges::read(&["Basic realm=\"x\"".to_owned()]);
        assert!(!nothing.deployment_step().ok);
        assert_eq!(nothing.adfs_discovery_url(), None);
        assert_eq!(online.adfs_discovery_url(), None);
        assert_eq!(
            adfs.adfs_discovery_url().as_deref(),
            Some("https://adfs.contoso.com/adfs/.well-known/openid-configuration")
        );
    }

    #[test]
    fn doctor_reads_what_ad_fs_can_do_from_its_discovery_document() {
        use super::AdfsCapabilities;
        let adfs_2019 = br#"{"issuer":"https://adfs.contoso.com/adfs","grant_types_supported":["authorization_code","refresh_token","client_credentials","urn:ietf:params:oauth:grant-type:jwt-bearer","implicit","password","srv_challenge","urn:ietf:params:oauth:grant-type:device_code","device_code"],"code_challenge_methods_supported":["plain","S256"],"token_endpoint_auth_signing_alg_values_supported":["RS256"]}"#;
        let found = AdfsCapabilities::parse(adfs_2019).expect("a discovery document");
        assert!(found.password && found.client_credentials && found.pkce && found.device_code);
        let text = found.describe();
        assert!(text.contains("AD FS 2019 or later"), "{text}");
        assert!(text.contains("RS256 only"), "{text}");

        let adfs_2016 = br#"{"issuer":"https://adfs.contoso.com/adfs","grant_types_supported":["authorization_code","refresh_token","client_credentials","password"],"token_endpoint_auth_signing_alg_values_supported":["RS256"]}"#;
        let text = AdfsCapabilities::parse(adfs_2016).unwrap().describe();
        assert!(text.contains("AD FS 2016 (no PKCE"), "{text}");
        assert!(text.contains("browser sign-in with PKCE no"), "{text}");

        assert_eq!(AdfsCapabilities::parse(b"<html>sign in</html>"), None);
        assert_eq!(
            AdfsCapabilities::parse(br#"{"grant_types_supported":[]}"#),
            None
        );
    }
}

/// The largest discovery document `auth doctor` reads (AD FS's is about 3 KiB).
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// The "AD FS" step: what the AD FS discovery document says this AD FS can do.
async fn adfs_step(http: &reqwest::Client, url: &str) -> Step {
    let body = match read_capped(http, url).await {
        Ok(body) => body,
        Err(problem) => {
            return Step::fail(
                "AD FS",
                exit::NETWORK,
                format!("{url}: {problem}"),
                "AD FS 2012 R2 has no OpenID discovery and no password or client credentials grants: d365 needs AD FS 2016 or later; otherwise check that the AD FS host is reachable from here",
            );
        }
    };
    match AdfsCapabilities::parse(&body) {
        Some(found) => Step::pass("AD FS", found.describe()),
        None => Step::fail(
            "AD FS",
            exit::AUTH,
            format!("{url} did not answer with an OpenID discovery document"),
            "check the AD FS host in the server's challenge and that its OAuth endpoints are published",
        ),
    }
}

/// GETs `url` and returns its body, refusing a status other than 200 and more than
/// [`MAX_DISCOVERY_BYTES`].
async fn read_capped(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut response = http
        .get(url)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
        if body.len() + chunk.len() > MAX_DISCOVERY_BYTES {
            return Err(format!("an answer larger than {MAX_DISCOVERY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What an AD FS discovery document says about the grants d365 uses.
#[derive(Debug, PartialEq, Eq)]
struct AdfsCapabilities {
    issuer: String,
    password: bool,
    client_credentials: bool,
    pkce: bool,
    device_code: bool,
    rs256_only: bool,
}

impl AdfsCapabilities {
    fn parse(body: &[u8]) -> Option<Self> {
        let document: Value = serde_json::from_slice(body).ok()?;
        let strings = |name: &str| -> Vec<String> {
            document
                .get(name)
                .and_then(Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let grants = strings("grant_types_supported");
        let has_grant = |grant: &str| grants.iter().any(|known| known == grant);
        let algorithms = strings("token_endpoint_auth_signing_alg_values_supported");
        Some(Self {
            issuer: document.get("issuer")?.as_str()?.to_owned(),
            password: has_grant("password"),
            client_credentials: has_grant("client_credentials"),
            pkce: !strings("code_challenge_methods_supported").is_empty(),
            device_code: has_grant("urn:ietf:params:oauth:grant-type:device_code"),
            rs256_only: algorithms.iter().all(|algorithm| algorithm == "RS256"),
        })
    }

    fn describe(&self) -> String {
        let yes_no = |on: bool| if on { "yes" } else { "no" };
        let generation = if self.pkce || self.device_code {
            "AD FS 2019 or later"
        } else {
            "AD FS 2016 (no PKCE: d365 login needs AD FS 2019; the password and client credentials grants work)"
        };
        format!(
            "{} ({generation}): password grant {}, client credentials {}, browser sign-in with PKCE {}, device code {}; client assertions {}",
            self.issuer,
            yes_no(self.password),
            yes_no(self.client_credentials),
            yes_no(self.pkce),
            yes_no(self.device_code),
            if self.rs256_only {
                "RS256 only (d365 signs RS256 for AD FS)"
            } else {
                "RS256 and others"
            },
        )
    }
}
