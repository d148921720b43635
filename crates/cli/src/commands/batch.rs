//! `d365 batch FILE`: a `$batch` described in JSON —
//! `{"continue_on_error": bool, "requests": [{"method", "url", "body"?, "change_set"?}]}`.
//! Requests with the same `change_set` — a number or a name (`1` and `"1"` are the same) —
//! form one atomic change set, placed where its first request is; inside it, `$1`, `$2`…
//! refer to earlier requests of that change set (counted across the batch). More than
//! 1,000 operations are sent as several batches, in order, each change set whole.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::{BatchArgs, OutputFormat};
use crate::connection::Connection;
use crate::exit::UsageError;
use crate::output;
use d365_webapi::Batch;

#[derive(Deserialize)]
struct BatchFile {
    #[serde(default)]
    continue_on_error: bool,
    requests: Vec<BatchEntry>,
}

#[derive(Deserialize)]
struct BatchEntry {
    method: String,
    url: String,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    change_set: Option<ChangeSetName>,
}

/// A `change_set` value: a number or a name.
#[derive(Deserialize)]
#[serde(untagged)]
enum ChangeSetName {
    Number(u64),
    Name(String),
}

impl ChangeSetName {
    /// The name requests are grouped by: a number as its digits.
    fn key(self) -> Result<String, UsageError> {
        match self {
            Self::Number(number) => Ok(number.to_string()),
            Self::Name(name) if name.trim().is_empty() => Err(UsageError(
                "a `change_set` name is empty: give a number or a name".to_owned(),
            )),
            Self::Name(name) => Ok(name.trim().to_owned()),
        }
    }
}

/// Reads the file into a [`Batch`].
fn build(file: BatchFile) -> Result<Batch, UsageError> {
    let mut batch = if file.continue_on_error {
        Batch::new().continue_on_error()
    } else {
        Batch::new()
    };
    let mut groups: BTreeMap<String, Vec<BatchEntry>> = BTreeMap::new();
    let mut order: Vec<Option<String>> = Vec::new();
    let mut singles = Vec::new();
    for mut entry in file.requests {
        match entry
            .change_set
            .take()
            .map(ChangeSetName::key)
            .transpose()?
        {
            Some(set) => {
                if !groups.contains_key(&set) {
                    order.push(Some(set.clone()));
                }
                groups.entry(set).or_default().push(entry);
            }
            None => {
                order.push(None);
                singles.push(entry);
            }
        }
    }
    let mut singles = singles.into_iter();
    for slot in order {
        match slot {
            None => {
                let entry = singles.next().expect("one single per slot");
                let method = method(&entry.method)?;
                batch.request(method, &entry.url, entry.body);
            }
            Some(set) => {
                let entries = groups.remove(&set).unwrap_or_default();
                let mut methods = Vec::new();
                for entry in &entries {
                    let method = method(&entry.method)?;
                    if method == http::Method::GET {
                        return Err(UsageError(format!(
                            "change set `{set}`: GET is not allowed inside a change set"
                        )));
                    }
                    methods.push(method);
                }
                batch.change_set(|change_set| {
                    for (entry, method) in entries.into_iter().zip(methods) {
                        change_set.request(method, &entry.url, entry.body);
                    }
                });
            }
        }
    }
    Ok(batch)
}

fn method(text: &str) -> Result<http::Method, UsageError> {
    http::Method::from_bytes(text.to_ascii_uppercase().as_bytes())
        .map_err(|_| UsageError(format!("`{text}` is not an HTTP method")))
}

/// Sends the batch and prints one row per operation.
pub(crate) async fn run(
    connection: &Connection,
    format: OutputFormat,
    args: &BatchArgs,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|error| UsageError(format!("cannot read {}: {error}", args.file.display())))?;
    let file: BatchFile = serde_json::from_str(&text).map_err(|error| {
        UsageError(format!(
            "{} is not a batch file: {error}",
            args.file.display()
        ))
    })?;
    let batch = build(file)?;
    let responses = connection.client.execute_batch(&batch).await?;
    let rows: Vec<Value> = responses
        .iter()
        .enumerate()
        .map(|(index, response)| {
            json!({
                "#": index + 1,
                "content_id": response.content_id,
                "status": response.status.as_u16(),
                "id": response.id.map(|id| id.to_string()),
                "error": response.error.as_ref().map(|error| format!("{} {}", error.code(), error.message())),
                "body": response.body,
            })
        })
        .collect();
    output::records(&mut std::io::stdout().lock(), format, &rows)?;
    if responses.iter().any(|response| !response.is_success()) {
        anyhow::bail!(
            "{} of {} operations failed",
            responses.iter().filter(|r| !r.is_success()).count(),
            responses.len()
        );
    }
    Ok(())
}
