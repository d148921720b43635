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
                let client = Client::builder_shared(org.as_str(), Arc::clone(&candidate.provider))
                    .max_retries(0)
                    .build();
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
    let challenge = match http.get(&probe).send().await {
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
                .find(|value| value.to_ascii_lowercase().starts_with("bearer"))
                .map(str::to_owned)
        }
    };
    match challenge.as_deref().map(BearerChallenge::parse) {
        Some(Some(challenge)) => steps.push(Step::pass(
            "authority discovery",
            format!("authority {} for resource {}", challenge.authorization_uri, challenge.resource_id),
        )),
        _ => steps.push(Step::fail(
            "authority discovery",
            exit::USAGE,
            "no `WWW-Authenticate: Bearer authorization_uri=…` challenge on an unauthenticated request",
            "check that the URL is a Dataverse organization (https://{org}.crm.dynamics.com), not a portal or app URL",
        )),
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
