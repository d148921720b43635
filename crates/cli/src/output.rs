//! Rendering results: records as a table, JSON, JSON lines or CSV; key/value facts as a
//! two-column table or a JSON object; and a streaming writer for exports that holds one
//! record at a time.

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

use crate::cli::OutputFormat;

/// `--csv-formula-guard`, set once at start: whether CSV text cells that a spreadsheet would
/// run as a formula get a leading `'`.
static CSV_FORMULA_GUARD: AtomicBool = AtomicBool::new(false);

/// Turns the CSV formula guard on or off for this process (`--csv-formula-guard`).
pub(crate) fn set_csv_formula_guard(on: bool) {
    CSV_FORMULA_GUARD.store(on, Ordering::Relaxed);
}

/// Text from a server (or any outside source) made safe to show on a terminal: control
/// characters (escape sequences, carriage returns, backspaces, C1 controls) and the Unicode
/// bidirectional controls that reorder what is shown are written as `\u{…}` escapes, so
/// data cannot move the cursor, rewrite earlier lines, change the terminal's title or
/// disguise itself. With `keep_newlines`, line breaks stay (a multi-line table cell).
pub(crate) fn printable(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && !(keep_newlines && c == '\n'))
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A CSV cell as written: exact, or with `--csv-formula-guard` a leading `'` for text a
/// spreadsheet would read as a formula (OWASP's advice for CSV injection). Numbers are
/// never changed: `-5` stays a number.
fn csv_cell(record: &Value, column: &str) -> String {
    let text = cell(record, column);
    let is_text = matches!(record.get(column), Some(Value::String(_)));
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if is_text && formula && CSV_FORMULA_GUARD.load(Ordering::Relaxed) {
        format!("'{text}")
    } else {
        text
    }
}

/// The columns of `records`: every key in the order first seen, without OData
/// annotations (`@odata.etag`, `…@OData.Community.Display.V1.FormattedValue`).
pub(crate) fn columns(records: &[Value]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for record in records {
        if let Value::Object(map) = record {
            for key in map.keys() {
                if !key.contains('@') && !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    columns
}

/// A cell's text: strings bare, null empty, the rest as JSON; with its formatted value
/// when the record carries one and it differs.
pub(crate) fn cell(record: &Value, column: &str) -> String {
    let raw = match record.get(column) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    let formatted = record
        .get(format!(
            "{column}@OData.Community.Display.V1.FormattedValue"
        ))
        .and_then(Value::as_str);
    match formatted {
        Some(label) if label != raw => format!("{label} ({raw})"),
        _ => raw,
    }
}

/// Prints records in `format`, columns in the order first seen.
pub(crate) fn records(
    out: &mut impl Write,
    format: OutputFormat,
    records: &[Value],
) -> anyhow::Result<()> {
    render(out, format, records, columns(records))
}

/// Prints records with the columns of `order` first (those present), then any others.
pub(crate) fn records_in_order(
    out: &mut impl Write,
    format: OutputFormat,
    records: &[Value],
    order: &[&str],
) -> anyhow::Result<()> {
    let present = columns(records);
    let mut ordered: Vec<String> = order
        .iter()
        .filter(|c| present.iter().any(|p| p == *c))
        .map(|c| (*c).to_owned())
        .collect();
    ordered.extend(present.into_iter().filter(|c| !order.contains(&c.as_str())));
    render(out, format, records, ordered)
}

fn render(
    out: &mut impl Write,
    format: OutputFormat,
    records: &[Value],
    columns: Vec<String>,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => {
            let mut table = Table::new();
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(
                    columns
                        .iter()
                        .map(|column| printable(column, false).into_owned()),
                );
            for record in records {
                table.add_row(
                    columns
                        .iter()
                        .map(|column| printable(&cell(record, column), true).into_owned())
                        .collect::<Vec<_>>(),
                );
            }
            writeln!(out, "{table}")?;
            writeln!(
                out,
                "{} row{}",
                records.len(),
                if records.len() == 1 { "" } else { "s" }
            )?;
        }
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(records)?)?,
        OutputFormat::Jsonl => {
            for record in records {
                writeln!(out, "{record}")?;
            }
        }
        OutputFormat::Csv => {
            if columns.is_empty() {
                // No rows, no columns: an empty CSV, not a header of one empty field.
                return Ok(());
            }
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(&columns)?;
            for record in records {
                writer.write_record(columns.iter().map(|column| csv_cell(record, column)))?;
            }
            writer.flush()?;
        }
    }
    Ok(())
}

/// Prints facts (label, value) as a two-column table, or as one JSON object.
pub(crate) fn facts(
    out: &mut impl Write,
    format: OutputFormat,
    facts: &[(&str, Value)],
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => {
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED);
            for (label, value) in facts {
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                table.add_row(vec![
                    (*label).to_owned(),
                    printable(&text, true).into_owned(),
                ]);
            }
            writeln!(out, "{table}")?;
        }
        OutputFormat::Json | OutputFormat::Jsonl | OutputFormat::Csv => {
            let object: serde_json::Map<String, Value> = facts
                .iter()
                .map(|(label, value)| ((*label).to_owned(), value.clone()))
                .collect();
            let object = Value::Object(object);
            if format == OutputFormat::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&object)?)?;
            } else if format == OutputFormat::Jsonl {
                writeln!(out, "{object}")?;
            } else {
                records(out, OutputFormat::Csv, &[object])?;
            }
        }
    }
    Ok(())
}

/// Writes records one at a time: JSON lines, CSV (columns from the first record), or a
/// JSON array. Memory holds one record.
pub(crate) struct StreamWriter<W: Write> {
    out: W,
    format: OutputFormat,
    columns: Option<Vec<String>>,
    written: u64,
}

impl<W: Write> StreamWriter<W> {
    pub(crate) fn new(out: W, format: OutputFormat) -> Self {
        Self {
            out,
            format,
            columns: None,
            written: 0,
        }
    }

    pub(crate) fn write(&mut self, record: &Value) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Csv => {
                if self.columns.is_none() {
                    let columns = columns(std::slice::from_ref(record));
                    write_csv_row(&mut self.out, columns.iter().map(String::as_str))?;
                    self.columns = Some(columns);
                }
                let columns = self.columns.as_ref().expect("set above");
                let cells: Vec<String> = columns
                    .iter()
                    .map(|column| csv_cell(record, column))
                    .collect();
                write_csv_row(&mut self.out, cells.iter().map(String::as_str))?;
            }
            OutputFormat::Json => {
                let separator = if self.written == 0 { "[\n" } else { ",\n" };
                write!(self.out, "{separator}{record}")?;
            }
            OutputFormat::Jsonl | OutputFormat::Table => writeln!(self.out, "{record}")?,
        }
        self.written += 1;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> anyhow::Result<u64> {
        if self.format == OutputFormat::Json {
            let closing = if self.written == 0 { "[]\n" } else { "\n]\n" };
            write!(self.out, "{closing}")?;
        }
        self.out.flush()?;
        Ok(self.written)
    }
}

fn write_csv_row<'c>(
    out: &mut impl Write,
    cells: impl Iterator<Item = &'c str>,
) -> anyhow::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    writer.write_record(cells)?;
    out.write_all(
        &writer
            .into_inner()
            .map_err(|error| anyhow::anyhow!("{error}"))?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Value> {
        vec![
            serde_json::json!({"@odata.etag": "W/\"1\"", "name": "Contoso, Ltd.", "revenue": 10, "statecode": 0, "statecode@OData.Community.Display.V1.FormattedValue": "Active"}),
            serde_json::json!({"name": "Fabrikam", "revenue": null, "city": "Paris"}),
        ]
    }

    #[test]
    fn columns_skip_annotations_and_keep_first_seen_order() {
        assert_eq!(
            columns(&rows()),
            vec!["name", "revenue", "statecode", "city"]
        );
        assert_eq!(cell(&rows()[0], "statecode"), "Active (0)");
        assert_eq!(cell(&rows()[1], "revenue"), "");
    }

    #[test]
    fn server_text_cannot_drive_the_terminal() {
        let hostile = "Contoso\u{1b}]0;owned\u{7}\u{1b}[2J\r\u{8}\u{9b}31m\u{202e}gnp.exe";
        let shown = printable(hostile, true);
        assert!(!shown.contains(|c: char| c.is_control()), "{shown:?}");
        assert!(!shown.contains('\u{202e}'), "{shown:?}");
        assert!(shown.starts_with("Contoso\\u{1b}]0;owned"), "{shown:?}");
        assert_eq!(printable("two\nlines", true), "two\nlines");
        assert_eq!(printable("two\nlines", false), "two\\u{a}lines");
        assert!(matches!(printable("Zoë, 東京", false), Cow::Borrowed(_)));
        let mut out = Vec::new();
        records(
            &mut out,
            OutputFormat::Table,
            &[serde_json::json!({"name": hostile})],
        )
        .unwrap();
        let table = String::from_utf8(out).unwrap();
        assert!(!table.contains('\u{1b}'), "{table}");
    }

    #[test]
    fn csv_is_exact_unless_the_formula_guard_is_on() {
        let rows = [
            serde_json::json!({"a": "=HYPERLINK(\"http://x\")", "b": "-5", "c": -5, "d": "@SUM(1)", "e": "plain"}),
        ];
        let mut out = Vec::new();
        records(&mut out, OutputFormat::Csv, &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b,c,d,e\n\"=HYPERLINK(\"\"http://x\"\")\",-5,-5,@SUM(1),plain\n"
        );
        set_csv_formula_guard(true);
        let mut out = Vec::new();
        records(&mut out, OutputFormat::Csv, &rows).unwrap();
        set_csv_formula_guard(false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b,c,d,e\n\"'=HYPERLINK(\"\"http://x\"\")\",'-5,-5,'@SUM(1),plain\n"
        );
    }

    #[test]
    fn csv_quotes_and_streaming_json_is_an_array() {
        let mut out = Vec::new();
        records(&mut out, OutputFormat::Csv, &rows()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "name,revenue,statecode,city\n\"Contoso, Ltd.\",10,Active (0),\nFabrikam,,,Paris\n"
        );
        let mut writer = StreamWriter::new(Vec::new(), OutputFormat::Json);
        for row in rows() {
            writer.write(&row).unwrap();
        }
        let mut buffer = Vec::new();
        let mut writer_into = StreamWriter::new(&mut buffer, OutputFormat::Json);
        writer_into.write(&rows()[1]).unwrap();
        assert_eq!(writer_into.finish().unwrap(), 1);
        let parsed: Vec<Value> = serde_json::from_slice(&buffer).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(writer.finish().unwrap(), 2);
    }
}
