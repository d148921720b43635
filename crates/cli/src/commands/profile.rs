//! `d365 profile add|list|show|use|remove`.

use serde_json::{Value, json};

use crate::cli::{Global, ProfileCommand};
use crate::connection;
use crate::output;
use crate::profiles::{self, ProfileInfo};

/// Runs a profile command.
pub(crate) fn run(global: &Global, command: ProfileCommand) -> anyhow::Result<()> {
    let dir = profiles::config_dir();
    let mut stdout = std::io::stdout().lock();
    match command {
        ProfileCommand::Add {
            name,
            connection_string,
            connection_string_on_command_line,
            use_it,
            force,
        } => {
            let connection_string = match connection_string.as_deref() {
                None => ask_for_connection_string()?,
                Some("-") => connection::read_stdin("the connection string")?,
                Some(text) => {
                    if connection_string_on_command_line {
                        connection::warn_if_secret_on_command_line(text);
                    }
                    text.to_owned()
                }
            };
            let parsed = d365_connect::ConnectionString::parse(&connection_string)?;
            let info = ProfileInfo {
                url: parsed.url().to_string(),
                auth_type: parsed
                    .auth_type()
                    .map_or_else(|| parsed.grant().name().to_owned(), |auth| auth.to_string()),
                summary: parsed.to_redacted_string(),
            };
            let existing = if force {
                profiles::Existing::Replace
            } else {
                profiles::Existing::Refuse
            };
            profiles::add(
                &dir,
                &name,
                &connection_string,
                info.clone(),
                use_it,
                existing,
            )?;
            output::facts(
                &mut stdout,
                global.output,
                &[
                    ("saved", json!(name)),
                    ("url", json!(info.url)),
                    ("auth", json!(info.auth_type)),
                ],
            )
        }
        ProfileCommand::List => {
            let file = profiles::read_profiles(&dir)?;
            let rows: Vec<Value> = file
                .profiles
                .iter()
                .map(|(name, info)| {
                    json!({
                        "current": if file.current.as_deref() == Some(name) { "*" } else { "" },
                        "name": name,
                        "url": info.url,
                        "auth": info.auth_type,
                    })
                })
                .collect();
            output::records_in_order(
                &mut stdout,
                global.output,
                &rows,
                &["current", "name", "url", "auth"],
            )
        }
        ProfileCommand::Show { name } => {
            let file = profiles::read_profiles(&dir)?;
            let name = name.or(file.current.clone()).ok_or_else(|| {
                crate::exit::UsageError("no current profile: name one".to_owned())
            })?;
            let info = file.profiles.get(&name).ok_or_else(|| {
                crate::exit::UsageError(format!(
                    "there is no profile `{name}`: see `d365 profile list`"
                ))
            })?;
            output::facts(
                &mut stdout,
                global.output,
                &[
                    ("name", json!(name)),
                    (
                        "current",
                        json!(file.current.as_deref() == Some(name.as_str())),
                    ),
                    ("url", json!(info.url)),
                    ("auth", json!(info.auth_type)),
                    ("connection string", json!(info.summary)),
                    (
                        "secrets file",
                        json!(dir.join("secrets.toml").display().to_string()),
                    ),
                ],
            )
        }
        ProfileCommand::Use { name } => {
            profiles::set_current(&dir, &name)?;
            output::facts(&mut stdout, global.output, &[("current", json!(name))])
        }
        ProfileCommand::Remove { name } => {
            profiles::remove(&dir, &name)?;
            output::facts(&mut stdout, global.output, &[("removed", json!(name))])
        }
    }
}

/// The connection string for `profile add` without `-c`: asked for without echo on a
/// terminal (it usually holds a secret), else read from standard input.
fn ask_for_connection_string() -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() {
        return connection::read_stdin("the connection string");
    }
    let text = rpassword::prompt_password("Connection string (not shown as you type): ")
        .map_err(|error| anyhow::anyhow!("cannot read the connection string: {error}"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(crate::exit::UsageError("no connection string was given".to_owned()).into());
    }
    Ok(text.to_owned())
}
