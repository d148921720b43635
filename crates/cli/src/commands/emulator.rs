//! `d365 emulator`: runs the local Entra ID and Dataverse emulator until Ctrl-C, after
//! printing its base URL and a ready connection string for each seeded identity.

use d365_emulator::Emulator;
use secrecy::ExposeSecret as _;

use crate::cli::EmulatorArgs;

/// Starts the emulator and waits for Ctrl-C.
pub(crate) async fn run(args: &EmulatorArgs) -> anyhow::Result<()> {
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
    // The certificate app's key and certificate as files, so its connection string works
    // on any platform (there is no certificate store to name a thumbprint in).
    let credentials = crate::profiles::config_dir().join("emulator");
    let emulator = builder.write_credentials_to(&credentials).start().await?;
    println!(
        "d365 emulator: Entra ID and Dataverse at {}",
        emulator.base_url()
    );
    println!("tenant {}", emulator.tenant_id());
    println!(
        "device code sign-in page: {}/devicelogin",
        emulator.base_url()
    );
    if let Some(pem) = emulator.ca_certificate_pem() {
        let path = std::env::temp_dir().join(format!("d365-emulator-{}.pem", std::process::id()));
        std::fs::write(&path, pem)?;
        println!(
            "https certificate (trust it in your client): {}",
            path.display()
        );
    }
    println!();
    // The seeded secrets are the emulator's published test values, not real credentials:
    // printing them is the point of this command.
    for connection in emulator.connection_strings() {
        let mut value = connection.value.expose_secret().to_owned();
        if value.starts_with("AuthType=Certificate") {
            value.push_str(&format!(
                ";CertificatePath={};CertificateKeyPath={}",
                credentials.join("certificate-app.crt.pem").display(),
                credentials.join("certificate-app.key.pem").display()
            ));
        }
        println!("{}:\n  {value}\n", connection.identity);
    }
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    emulator.shutdown().await;
    println!("stopped");
    Ok(())
}
