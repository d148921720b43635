//! `d365 profile add|list|show|use|remove`.

use serde_json::{Value, json};

use crate::cli::{Global, ProfileCommand};
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
            use_it,
        } => {
            let parsed = d365_webapi::ConnectionString::parse(&connection_string)?;
            let info = ProfileInfo {
                url: parsed.url().to_string(),
                auth_type: parsed.auth_type().to_string(),
                summary: parsed.to_redacted_string(),
            };
            profiles::add(&dir, &name, &connection_string, info.clone(), use_it)?;
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
