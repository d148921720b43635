//! `d365 request METHOD PATH`: any Web API request, like `az rest`; prints the body.

use std::io::Write as _;

use crate::cli::RequestArgs;
use crate::connection::Connection;
use crate::exit::UsageError;
use crate::keys::read_json;

/// Sends the request and prints the JSON body pretty (or the raw body).
pub(crate) async fn run(connection: &Connection, args: &RequestArgs) -> anyhow::Result<()> {
    let method = http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| UsageError(format!("`{}` is not an HTTP method", args.method)))?;
    let body = args.data.as_deref().map(read_json).transpose()?;
    let response = connection
        .client
        .request(method, &args.path, body.as_ref())
        .await?;
    let mut stdout = std::io::stdout().lock();
    match serde_json::from_slice::<serde_json::Value>(&response.body) {
        Ok(json) => writeln!(stdout, "{}", serde_json::to_string_pretty(&json)?)?,
        Err(_) if response.body.is_empty() => {
            writeln!(stdout, "HTTP {}", response.status.as_u16())?;
        }
        // Raw bytes for a pipe or a file; on a terminal, nothing that could drive it.
        Err(_) if std::io::IsTerminal::is_terminal(&stdout) => writeln!(
            stdout,
            "{}",
            crate::output::printable(&String::from_utf8_lossy(&response.body), true)
        )?,
        Err(_) => stdout.write_all(&response.body)?,
    }
    Ok(())
}
