//! `d365-emulator [--port N] [--https] [--data PATH] [--config FILE] [--schema FILE]`: runs
//! the emulator (Entra ID and the Dataverse Web API) on 127.0.0.1, prints the base URL, the
//! managed identity endpoints (with the App Service `IDENTITY_HEADER`) and a ready
//! connection string for each seeded identity, and stops on Ctrl-C.

// A command-line program: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;

const USAGE: &str = "usage: d365-emulator [--port N] [--https] [--data PATH] [--config FILE] [--schema FILE] [--credentials-dir DIR]

  --port N        listen on 127.0.0.1:N (default: a free port)
  --https         serve https with a generated certificate (its CA is written as ca.crt.pem
                  into the credentials directory)
  --data PATH     keep the Dataverse data in this SQLite file (default: in memory)
  --config FILE   emulator configuration (TOML: tenants, apps, users, tables)
  --schema FILE   extra tables (TOML schema file)
  --credentials-dir DIR
                  write the certificate app's key and certificate (and the CA) here
                  (default: a new private directory of this emulator's own); the files are
                  removed when it stops";

#[derive(Debug, Default)]
struct Args {
    port: u16,
    https: bool,
    data: Option<PathBuf>,
    config: Option<PathBuf>,
    schema: Option<PathBuf>,
    credentials_dir: Option<PathBuf>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args::default();
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| iter.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => {
                let text = value("a port number")?;
                args.port = text
                    .parse()
                    .map_err(|_| format!("'{text}' is not a port number"))?;
            }
            "--https" => args.https = true,
            "--data" => args.data = Some(PathBuf::from(value("a path")?)),
            "--config" => args.config = Some(PathBuf::from(value("a file")?)),
            "--schema" => args.schema = Some(PathBuf::from(value("a file")?)),
            "--credentials-dir" => {
                args.credentials_dir = Some(PathBuf::from(value("a directory")?));
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(Some(args))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("d365-emulator: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = Emulator::builder().port(args.port).https(args.https);
    if let Some(path) = &args.data {
        builder = builder.data_file(path);
    }
    if let Some(path) = &args.config {
        builder = builder.config_file(path);
    }
    if let Some(path) = &args.schema {
        builder = builder.schema_file(path);
    }
    builder = match &args.credentials_dir {
        Some(dir) => builder.write_credentials_to(dir),
        None => builder.write_credentials_to_private_dir(),
    };
    let emulator = match builder.start().await {
        Ok(emulator) => emulator,
        Err(err) => {
            eprintln!("d365-emulator: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("d365 emulator listening on {}", emulator.base_url());
    println!("  tenant        {}", emulator.tenant_id());
    println!("  token (v2)    {}", emulator.token_endpoint_v2());
    println!("  Web API       {}", emulator.web_api_url());
    if let Some(dir) = emulator.credentials_dir() {
        if args.https {
            println!("  CA            {}", dir.join("ca.crt.pem").display());
        }
        println!("  credentials   {}", dir.display());
    }
    println!("  admin API     {}/_emulator/", emulator.base_url());
    let host = emulator.managed_identity();
    println!("  IMDS          {}", host.imds_endpoint());
    println!(
        "  App Service   IDENTITY_ENDPOINT={} IDENTITY_HEADER={}",
        host.app_service_endpoint(),
        host.identity_header().expose_secret()
    );
    println!();
    for connection in emulator.connection_strings() {
        println!("# {}", connection.identity);
        println!("{}", connection.value.expose_secret());
    }
    println!();
    println!("Press Ctrl-C to stop.");
    if let Err(err) = tokio::signal::ctrl_c().await {
        eprintln!("d365-emulator: cannot wait for Ctrl-C: {err}");
    }
    emulator.shutdown().await;
    println!("stopped");
    ExitCode::SUCCESS
}
