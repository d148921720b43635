//! `d365 emulator`: runs the local Entra ID and Dataverse emulator until Ctrl-C, after
//! printing its base URL and a ready connection string for each seeded identity: as text
//! for people, or with `-o json`/`-o jsonl` as one JSON line a script can read before it
//! starts its clients.

use std::path::{Path, PathBuf};

use d365_emulator::{Emulator, OnPremises};
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::cli::{EmulatorArgs, OutputFormat};

/// Where the running emulator answers, and how to connect to it.
struct Announcement {
    base_url: String,
    tenant_id: String,
    device_login_url: String,
    /// The https certificate to trust, written to a file (with `--https` only).
    ca_certificate: Option<PathBuf>,
    /// `(identity, connection string)` for each seeded identity.
    connections: Vec<(String, String)>,
    /// On-premises: what is served where.
    on_premises: Option<String>,
}

impl Announcement {
    fn print_text(&self) {
        println!("d365 emulator: Entra ID and Dataverse at {}", self.base_url);
        if let Some(on_premises) = &self.on_premises {
            println!("{on_premises}");
        }
        println!("tenant {}", self.tenant_id);
        println!("device code sign-in page: {}", self.device_login_url);
        if let Some(path) = &self.ca_certificate {
            println!(
                "https certificate (trust it in your client): {}",
                path.display()
            );
        }
        println!();
        for (identity, connection_string) in &self.connections {
            println!("{identity}:\n  {connection_string}\n");
        }
        println!("Press Ctrl-C to stop.");
    }

    /// One line, so a script reading the process's output can parse it as soon as it comes.
    fn print_json(&self) {
        println!("{}", self.to_json());
    }

    /// Everything it says, as one JSON object.
    fn to_json(&self) -> serde_json::Value {
        let connections: Vec<_> = self
            .connections
            .iter()
            .map(|(identity, connection_string)| {
                json!({"identity": identity, "connection_string": connection_string})
            })
            .collect();
        json!({
            "base_url": self.base_url,
            "tenant_id": self.tenant_id,
            "device_login_url": self.device_login_url,
            "ca_certificate": self.ca_certificate.as_ref().map(|path| path.display().to_string()),
            "connections": connections,
            "on_premises": self.on_premises,
        })
    }
}

/// Starts the emulator, says where it is, and waits for Ctrl-C.
pub(crate) async fn run(args: &EmulatorArgs, format: OutputFormat) -> anyhow::Result<()> {
    let mut builder = Emulator::builder().https(args.https);
    if let Some(port) = args.port {
        builder = builder.port(port);
    }
    if let Some(path) = &args.data {
        builder = builder.data_file(path);
    }
    if let Some(path) = &args.config {
        builder = builder.config_file(path);
    }
    if let Some(organization) = &args.on_premises {
        let mut on_premises = OnPremises::new(organization);
        if let Some(version) = &args.server_version {
            on_premises = on_premises.server_version(version);
        }
        builder = builder.on_premises(on_premises);
    }
    // The certificate app's key and certificate as files, so its connection string works
    // on any platform (there is no certificate store to name a thumbprint in): in a
    // private directory of this emulator's own, so two emulators never overwrite each
    // other's keys, removed when it stops.
    let builder = match &args.credentials_dir {
        Some(dir) => builder.write_credentials_to(dir),
        None => builder.write_credentials_to_private_dir(),
    };
    let emulator = builder.start().await?;
    let announcement = announce(&emulator);
    let text = !matches!(format, OutputFormat::Json | OutputFormat::Jsonl);
    if crate::output::query_active() {
        // `--query 'connections[0].connection_string' -o tsv`: the one value a script needs.
        let result = crate::output::apply_query(announcement.to_json())?;
        let mut stdout = std::io::stdout().lock();
        crate::output::value(&mut stdout, format, &result)?;
        std::io::Write::flush(&mut stdout)?;
    } else if text {
        announcement.print_text();
    } else {
        announcement.print_json();
    }
    tokio::signal::ctrl_c().await?;
    emulator.shutdown().await;
    if text && !crate::output::query_active() {
        println!("stopped");
    }
    Ok(())
}

/// Gathers what to print.
fn announce(emulator: &Emulator) -> Announcement {
    let credentials = emulator.credentials_dir().unwrap_or(Path::new("."));
    let ca_certificate = emulator
        .ca_certificate_pem()
        .map(|_| credentials.join("ca.crt.pem"));
    // The seeded secrets are the emulator's published test values, not real credentials:
    // printing them is the point of this command.
    let connections = emulator
        .connection_strings()
        .into_iter()
        .map(|connection| {
            let mut value = connection.value.expose_secret().to_owned();
            if value.starts_with("AuthType=Certificate") {
                value.push_str(&format!(
                    ";CertificatePath={};CertificateKeyPath={}",
                    credentials.join("certificate-app.crt.pem").display(),
                    credentials.join("certificate-app.key.pem").display()
                ));
            }
            (connection.identity, value)
        })
        .collect();
    Announcement {
        base_url: emulator.base_url().to_owned(),
        tenant_id: emulator.tenant_id().to_owned(),
        device_login_url: format!("{}/devicelogin", emulator.base_url()),
        ca_certificate,
        connections,
        on_premises: emulator.on_premises().map(|on_premises| {
            format!(
                "on-premises: organization {} (server {}, Web API {}), AD FS at {}",
                emulator.organization_url(),
                on_premises.version(),
                on_premises.web_api_versions().join(", "),
                emulator.adfs_authority().unwrap_or_default()
            )
        }),
    }
}
