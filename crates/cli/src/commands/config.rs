//! `d365 config show`: every effective setting and where it came from, so a surprising
//! connection or limit can be traced to the flag, variable or profile that set it. Nothing
//! is contacted, and secrets are shown as `***`.

use serde_json::{Value, json};

use crate::cli::{Global, Origin};
use crate::connection::{self, Chosen};
use crate::output;
use crate::profiles;

/// One row: the setting, its value and where the value came from.
fn row(setting: &str, value: impl Into<Value>, from: impl Into<String>) -> Value {
    json!({"setting": setting, "value": value.into(), "from": from.into()})
}

/// Where the recorded setting `id` came from, named after its flag and variable.
fn origin(global: &Global, id: &str, flag: &str, variable: &str) -> String {
    match global.origins.of(id) {
        Origin::Flag => flag.to_owned(),
        Origin::Environment => variable.to_owned(),
        Origin::Default => "default".to_owned(),
    }
}

/// `d365 config show`.
pub(crate) fn show(global: &Global) -> anyhow::Result<()> {
    let mut rows = vec![connection_row(global)?];
    rows.push(row(
        "grant",
        global.grant.clone().map_or(Value::Null, Value::from),
        match global.grant {
            Some(_) => origin(global, "grant", "--grant", "D365_GRANT"),
            None => "the connection's own".to_owned(),
        },
    ));
    rows.push(row(
        "output",
        format!("{:?}", global.output).to_lowercase(),
        origin(global, "output", "--output", "--output"),
    ));
    rows.push(row(
        "api_version",
        global
            .api_version
            .clone()
            .map_or_else(|| Value::from("discovered (v9.2 online)"), Value::from),
        origin(global, "api_version", "--api-version", "D365_API_VERSION"),
    ));
    rows.push(row(
        "timeout_secs",
        global.timeout,
        origin(global, "timeout", "--timeout", "D365_TIMEOUT"),
    ));
    rows.push(row(
        "max_retries",
        global.max_retries,
        origin(global, "max_retries", "--max-retries", "D365_MAX_RETRIES"),
    ));
    rows.push(row(
        "max_pages",
        global.max_pages,
        origin(global, "max_pages", "--max-pages", "D365_MAX_PAGES"),
    ));
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let (cache, cache_from) = if global.no_token_cache {
        (Value::from("off"), "--no-token-cache")
    } else if set("D365_TOKEN_CACHE") {
        (
            Value::from(connection::token_file().display().to_string()),
            "D365_TOKEN_CACHE",
        )
    } else {
        (
            Value::from(connection::token_file().display().to_string()),
            "default (in config_dir)",
        )
    };
    rows.push(row("token_cache", cache, cache_from));
    let config_from = if set("D365_CONFIG_DIR") {
        "D365_CONFIG_DIR"
    } else if set("XDG_CONFIG_HOME") {
        "XDG_CONFIG_HOME"
    } else {
        "default"
    };
    rows.push(row(
        "config_dir",
        profiles::config_dir().display().to_string(),
        config_from,
    ));
    let columns = ["setting", "value", "from"].map(str::to_owned);
    output::records_with_columns(
        &mut std::io::stdout().lock(),
        global.output,
        &rows,
        &columns,
    )
}

/// The connection the precedence chooses, redacted.
fn connection_row(global: &Global) -> anyhow::Result<Value> {
    if global.emulator {
        return Ok(row("connection", "the embedded emulator", "--emulator"));
    }
    Ok(match connection::choose(global)? {
        Chosen::ConnectionString { text, from } => row(
            "connection",
            d365_connect::ConnectionString::parse(&text)?.to_redacted_string(),
            from,
        ),
        Chosen::Profile { profile, from } => row(
            "connection",
            d365_connect::ConnectionString::parse(&profile.connection_string)?.to_redacted_string(),
            from,
        ),
        Chosen::Environment => row(
            "connection",
            format!(
                "{} with the AZURE_* variables",
                std::env::var("D365_URL").unwrap_or_default()
            ),
            "D365_URL",
        ),
        Chosen::Nothing => row("connection", Value::Null, "nothing names one"),
    })
}
