//! Reading record keys and JSON arguments from the command line: `GUID` or
//! `column=value[,column=value]`, and `--data` as inline JSON or `@FILE`.

use d365_webapi::{Guid, Literal, RecordKey};

use crate::exit::UsageError;

/// A GUID, or `column=value[,column=value]`. Values in single quotes are strings
/// (quotes doubled inside); bare GUIDs, integers and `true`/`false` are typed.
pub(crate) fn parse_key(text: &str) -> Result<RecordKey, UsageError> {
    if let Ok(id) = text.parse::<Guid>() {
        return Ok(RecordKey::id(id));
    }
    let mut columns = Vec::new();
    for part in split_outside_quotes(text) {
        let Some((name, value)) = part.split_once('=') else {
            return Err(UsageError(format!(
                "`{text}` is not a key: give a GUID, or column=value[,column=value] for an alternate key"
            )));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(UsageError(format!("`{name}` is not a column name")));
        }
        columns.push((name.to_owned(), literal(value.trim())));
    }
    if columns.is_empty() {
        return Err(UsageError("the key is empty".to_owned()));
    }
    Ok(RecordKey::alternate(columns))
}

fn literal(value: &str) -> Literal {
    if let Some(inner) = value
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return Literal::String(inner.replace("''", "'"));
    }
    if let Ok(id) = value.parse::<Guid>() {
        return Literal::Guid(id);
    }
    if let Ok(number) = value.parse::<i64>() {
        return Literal::Int(number);
    }
    match value {
        "true" => Literal::Bool(true),
        "false" => Literal::Bool(false),
        _ => Literal::String(value.to_owned()),
    }
}

fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (index, character) in text.char_indices() {
        match character {
            '\'' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// `--data`: JSON text, or `@path` to read it from a file.
pub(crate) fn read_json(argument: &str) -> anyhow::Result<serde_json::Value> {
    let text = match argument.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|error| UsageError(format!("cannot read {path}: {error}")))?,
        None => argument.to_owned(),
    };
    serde_json::from_str(&text)
        .map_err(|error| UsageError(format!("the data is not valid JSON: {error}")).into())
}

/// A FetchXML argument: the XML, or `@path`.
pub(crate) fn read_text(argument: &str) -> anyhow::Result<String> {
    match argument.strip_prefix('@') {
        Some(path) => Ok(std::fs::read_to_string(path)
            .map_err(|error| UsageError(format!("cannot read {path}: {error}")))?),
        None => Ok(argument.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_ids_or_alternate_keys() {
        let cases = [
            (
                "6c1d2e3f-0000-0000-0000-00000000a001",
                "(6c1d2e3f-0000-0000-0000-00000000a001)",
            ),
            ("accountnumber=A1", "(accountnumber='A1')"),
            ("accountnumber='A,1'", "(accountnumber='A%2C1')"),
            ("firstname='O''Neil',age=42", "(firstname='O''Neil',age=42)"),
            ("code='42'", "(code='42')"),
            (
                "_parentid_value=6c1d2e3f-0000-0000-0000-00000000a001",
                "(_parentid_value=6c1d2e3f-0000-0000-0000-00000000a001)",
            ),
        ];
        for (input, segment) in cases {
            assert_eq!(parse_key(input).unwrap().to_segment(), segment, "{input}");
        }
        for bad in ["", "not a key", "a b=1", "=1"] {
            assert!(parse_key(bad).is_err(), "{bad}");
        }
    }
}
