//! `d365 request METHOD PATH`: any Web API request, like `az rest`; prints the response
//! body (JSON pretty-printed), with `-i` the status line and headers before it, and with
//! `--query` the query's result.

use std::io::Write as _;

use crate::cli::{OutputFormat, RequestArgs};
use crate::connection::Connection;
use crate::exit::UsageError;
use crate::keys::read_json;

/// Sends the request and prints what it answered.
pub(crate) async fn run(
    connection: &Connection,
    format: OutputFormat,
    args: &RequestArgs,
) -> anyhow::Result<()> {
    let method = http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| UsageError(format!("`{}` is not an HTTP method", args.method)))?;
    let body = args.data.as_deref().map(read_json).transpose()?;
    let response = connection
        .client
        .request(method, &args.path, body.as_ref())
        .await?;
    let mut stdout = std::io::stdout().lock();
    let terminal = std::io::IsTerminal::is_terminal(&stdout);
    if args.include {
        writeln!(
            stdout,
            "HTTP/1.1 {} {}",
            response.status.as_u16(),
            response.status.canonical_reason().unwrap_or_default()
        )?;
        for (name, value) in &response.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            // The server wrote the headers: they must not drive a terminal.
            writeln!(
                stdout,
                "{name}: {}",
                crate::output::printable(&value, false)
            )?;
        }
        writeln!(stdout)?;
    }
    match serde_json::from_slice::<serde_json::Value>(&response.body) {
        Ok(json) if crate::output::query_active() => {
            // The body is JSON: `table`, the default, prints the result as JSON too.
            let format = if format == OutputFormat::Table {
                OutputFormat::Json
            } else {
                format
            };
            crate::output::value(&mut stdout, format, &crate::output::apply_query(json)?)?;
        }
        Ok(json) => writeln!(stdout, "{}", serde_json::to_string_pretty(&json)?)?,
        Err(_) if response.body.is_empty() => {}
        Err(_) if crate::output::query_active() => {
            return Err(UsageError(
                "--query applies to JSON, and the response body is not JSON".to_owned(),
            )
            .into());
        }
        // Raw bytes for a pipe or a file; on a terminal, nothing that could drive it.
        Err(_) if terminal => writeln!(
            stdout,
            "{}",
            crate::output::printable(&String::from_utf8_lossy(&response.body), true)
        )?,
        Err(_) => stdout.write_all(&response.body)?,
    }
    Ok(())
}
