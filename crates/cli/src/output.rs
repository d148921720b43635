//! Rendering results: records as a table, JSON, JSON lines, CSV or TSV; key/value facts as
//! a two-column table or a JSON object; any JSON value after `--query` (a JMESPath
//! expression applied to the JSON a command would print); and a streaming writer for
//! exports that holds one record at a time.

use std::borrow::Cow;
use std::io::Write;
use std::sync::OnceLock;
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

/// `--query`, set once at start after it compiled.
static QUERY: OnceLock<String> = OnceLock::new();

/// The most a `--query` expression may hold.
const MAX_QUERY_LEN: usize = 4096;

/// Checks `--query` and keeps it for every output of this process.
pub(crate) fn set_query(expression: &str) -> Result<(), crate::exit::UsageError> {
    if expression.len() > MAX_QUERY_LEN {
        return Err(crate::exit::UsageError(format!(
            "--query is longer than {MAX_QUERY_LEN} characters"
        )));
    }
    jmespath::compile(expression).map_err(|error| {
        crate::exit::UsageError(format!(
            "--query is not a JMESPath expression: {} at column {}",
            error.reason, error.column
        ))
    })?;
    let _ = QUERY.set(expression.to_owned());
    Ok(())
}

/// Whether `--query` was given.
pub(crate) fn query_active() -> bool {
    QUERY.get().is_some()
}

/// `value` through `--query`, when it was given.
pub(crate) fn apply_query(value: Value) -> anyhow::Result<Value> {
    let Some(expression) = QUERY.get() else {
        return Ok(value);
    };
    let compiled = jmespath::compile(expression)
        .map_err(|error| crate::exit::UsageError(format!("--query: {}", error.reason)))?;
    let result = compiled.search(value).map_err(|error| {
        crate::exit::UsageError(format!(
            "--query could not be applied: {} at column {}",
            error.reason, error.column
        ))
    })?;
    Ok(serde_json::to_value(&*result)?)
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
    records_with_columns(out, format, records, &[])
}

/// Prints records with the columns of `order` first (those present), then any others.
pub(crate) fn records_in_order(
    out: &mut impl Write,
    format: OutputFormat,
    records: &[Value],
    order: &[&str],
) -> anyhow::Result<()> {
    let present = columns(records);
    let order: Vec<String> = order
        .iter()
        .filter(|c| present.iter().any(|p| p == *c))
        .map(|c| (*c).to_owned())
        .collect();
    records_with_columns(out, format, records, &order)
}

/// Prints records with exactly the columns of `first`, in that order (present or not: an
/// empty result still shows them), then any other column the records hold. With
/// `--query`, the records as a JSON array go through it and its result is printed.
pub(crate) fn records_with_columns(
    out: &mut impl Write,
    format: OutputFormat,
    records: &[Value],
    first: &[String],
) -> anyhow::Result<()> {
    if query_active() {
        let result = apply_query(Value::Array(records.to_vec()))?;
        return value_with_columns(out, format, &result, first);
    }
    render(out, format, records, ordered_columns(records, first))
}

/// Prints one record: a two-column table of its columns (`first` in order, then the
/// others; annotations folded into their column), the JSON object itself, or a CSV
/// header and row / a TSV line. With `--query`, the object goes through it.
pub(crate) fn record(
    out: &mut impl Write,
    format: OutputFormat,
    record: &Value,
    first: &[String],
) -> anyhow::Result<()> {
    if query_active() {
        return value_with_columns(out, format, &apply_query(record.clone())?, first);
    }
    let columns = ordered_columns(std::slice::from_ref(record), first);
    match format {
        OutputFormat::Table => {
            let pairs: Vec<(&str, Value)> = columns
                .iter()
                .map(|column| (column.as_str(), Value::String(cell(record, column))))
                .collect();
            facts_table(out, &pairs)?;
        }
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(record)?)?,
        OutputFormat::Jsonl => writeln!(out, "{record}")?,
        OutputFormat::Csv | OutputFormat::Tsv => {
            render(out, format, std::slice::from_ref(record), columns)?;
        }
    }
    Ok(())
}

/// `first`, then the other columns of `records` (in the order first seen).
fn ordered_columns(records: &[Value], first: &[String]) -> Vec<String> {
    let mut ordered: Vec<String> = Vec::with_capacity(first.len());
    for column in first {
        if !ordered.contains(column) {
            ordered.push(column.clone());
        }
    }
    for column in columns(records) {
        if !ordered.contains(&column) {
            ordered.push(column);
        }
    }
    ordered
}

/// Prints any JSON value (what `--query` made) in `format`: an array of objects as
/// records, an object as facts, an array of other values one per line (a row of cells for
/// an array of arrays), and a string, number or boolean as its text. JSON formats print
/// it as JSON.
pub(crate) fn value(
    out: &mut impl Write,
    format: OutputFormat,
    value: &Value,
) -> anyhow::Result<()> {
    value_with_columns(out, format, value, &[])
}

fn value_with_columns(
    out: &mut impl Write,
    format: OutputFormat,
    value: &Value,
    first: &[String],
) -> anyhow::Result<()> {
    match (format, value) {
        (OutputFormat::Json, _) => writeln!(out, "{}", serde_json::to_string_pretty(value)?)?,
        (OutputFormat::Jsonl, Value::Array(items)) => {
            for item in items {
                writeln!(out, "{item}")?;
            }
        }
        (OutputFormat::Jsonl, _) => writeln!(out, "{value}")?,
        (_, Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_object) => {
            // Keys come back sorted from a query: the asked order first where it applies.
            let first: Vec<String> = first
                .iter()
                .filter(|column| items.iter().any(|item| item.get(column.as_str()).is_some()))
                .cloned()
                .collect();
            render(out, format, items, ordered_columns(items, &first))?;
        }
        (_, Value::Array(items)) => {
            for item in items {
                match item {
                    Value::Array(cells) => {
                        let cells: Vec<String> = cells.iter().map(scalar_text).collect();
                        write_line(out, format, &cells)?;
                    }
                    other => write_line(out, format, &[scalar_text(other)])?,
                }
            }
        }
        (OutputFormat::Table, Value::Object(map)) => {
            let pairs: Vec<(&str, Value)> = map
                .iter()
                .map(|(key, value)| (key.as_str(), value.clone()))
                .collect();
            facts_table(out, &pairs)?;
        }
        (_, Value::Object(_)) => render(
            out,
            format,
            std::slice::from_ref(value),
            ordered_columns(std::slice::from_ref(value), first),
        )?,
        (_, Value::Null) => {}
        (_, scalar) => write_line(out, format, &[scalar_text(scalar)])?,
    }
    Ok(())
}

/// A value's text in a line of plain output: strings bare, null empty, the rest as JSON.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One line of cells: tab-separated (TSV-escaped) for `tsv`, a CSV record for `csv`, and
/// for a table, cells made safe for the terminal and separated by tabs.
fn write_line(out: &mut impl Write, format: OutputFormat, cells: &[String]) -> anyhow::Result<()> {
    match format {
        OutputFormat::Csv => write_csv_row(out, cells.iter().map(String::as_str)),
        OutputFormat::Tsv => write_tsv_row(out, cells.iter().map(String::as_str)),
        _ => {
            let shown: Vec<String> = cells
                .iter()
                .map(|cell| printable(cell, false).into_owned())
                .collect();
            writeln!(out, "{}", shown.join("\t"))?;
            Ok(())
        }
    }
}

/// A TSV cell: backslash, tab, line feed and carriage return escaped (`\\`, `\t`, `\n`,
/// `\r`), so every record is one line and every tab separates cells.
fn tsv_cell(text: &str) -> Cow<'_, str> {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

fn write_tsv_row<'c>(
    out: &mut impl Write,
    cells: impl Iterator<Item = &'c str>,
) -> anyhow::Result<()> {
    let line: Vec<Cow<'_, str>> = cells.map(tsv_cell).collect();
    writeln!(out, "{}", line.join("\t"))?;
    Ok(())
}

fn render(
    out: &mut impl Write,
    format: OutputFormat,
    records: &[Value],
    columns: Vec<String>,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => {
            // No rows and no columns known: no table at all, only the count.
            if !columns.is_empty() {
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
            }
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
        OutputFormat::Tsv => {
            // No header: one line per record, cells in the columns' order.
            for record in records {
                let cells: Vec<String> =
                    columns.iter().map(|column| cell(record, column)).collect();
                write_tsv_row(out, cells.iter().map(String::as_str))?;
            }
        }
    }
    Ok(())
}

/// Prints facts (label, value) as a two-column table, or as one JSON object (a CSV header
/// and row; one TSV line of the values). With `--query`, the object goes through it.
pub(crate) fn facts(
    out: &mut impl Write,
    format: OutputFormat,
    facts: &[(&str, Value)],
) -> anyhow::Result<()> {
    let object = || {
        Value::Object(
            facts
                .iter()
                .map(|(label, value)| ((*label).to_owned(), value.clone()))
                .collect(),
        )
    };
    if query_active() {
        let labels: Vec<String> = facts.iter().map(|(label, _)| (*label).to_owned()).collect();
        return value_with_columns(out, format, &apply_query(object())?, &labels);
    }
    match format {
        OutputFormat::Table => facts_table(out, facts)?,
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&object())?)?,
        OutputFormat::Jsonl => writeln!(out, "{}", object())?,
        OutputFormat::Csv | OutputFormat::Tsv => {
            let labels: Vec<String> = facts.iter().map(|(label, _)| (*label).to_owned()).collect();
            render(out, format, &[object()], labels)?;
        }
    }
    Ok(())
}

/// Facts as a two-column table.
fn facts_table(out: &mut impl Write, facts: &[(&str, Value)]) -> anyhow::Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    for (label, value) in facts {
        table.add_row(vec![
            printable(label, false).into_owned(),
            printable(&scalar_text(value), true).into_owned(),
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}

/// Writes records one at a time: JSON lines, CSV (a header of the asked columns, then the
/// first record's others), TSV (no header, the same columns), or a JSON array. Memory
/// holds one record.
pub(crate) struct StreamWriter<W: Write> {
    out: W,
    format: OutputFormat,
    /// The columns asked for (`--select`), first and in order.
    first: Vec<String>,
    columns: Option<Vec<String>>,
    written: u64,
}

impl<W: Write> StreamWriter<W> {
    /// A writer whose CSV and TSV columns start with `first`, in that order.
    pub(crate) fn with_columns(out: W, format: OutputFormat, first: &[String]) -> Self {
        Self {
            out,
            format,
            first: first.to_vec(),
            columns: None,
            written: 0,
        }
    }

    pub(crate) fn write(&mut self, record: &Value) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Csv | OutputFormat::Tsv => {
                if self.columns.is_none() {
                    let columns = ordered_columns(std::slice::from_ref(record), &self.first);
                    if self.format == OutputFormat::Csv {
                        write_csv_row(&mut self.out, columns.iter().map(String::as_str))?;
                    }
                    self.columns = Some(columns);
                }
                let columns = self.columns.as_ref().expect("set above");
                if self.format == OutputFormat::Csv {
                    let cells: Vec<String> = columns
                        .iter()
                        .map(|column| csv_cell(record, column))
                        .collect();
                    write_csv_row(&mut self.out, cells.iter().map(String::as_str))?;
                } else {
                    let cells: Vec<String> =
                        columns.iter().map(|column| cell(record, column)).collect();
                    write_tsv_row(&mut self.out, cells.iter().map(String::as_str))?;
                }
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
        match self.format {
            OutputFormat::Json => {
                let closing = if self.written == 0 { "[]\n" } else { "\n]\n" };
                write!(self.out, "{closing}")?;
            }
            // No rows: the header of the asked columns still says what was asked.
            OutputFormat::Csv if self.written == 0 && !self.first.is_empty() => {
                write_csv_row(&mut self.out, self.first.iter().map(String::as_str))?;
            }
            _ => {}
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
        let mut writer = StreamWriter::with_columns(Vec::new(), OutputFormat::Json, &[]);
        for row in rows() {
            writer.write(&row).unwrap();
        }
        let mut buffer = Vec::new();
        let mut writer_into = StreamWriter::with_columns(&mut buffer, OutputFormat::Json, &[]);
        writer_into.write(&rows()[1]).unwrap();
        assert_eq!(writer_into.finish().unwrap(), 1);
        let parsed: Vec<Value> = serde_json::from_slice(&buffer).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(writer.finish().unwrap(), 2);
    }

    fn text(write: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn columns_follow_the_asked_order_and_an_empty_result_says_so() {
        let select = ["revenue".to_owned(), "name".to_owned()];
        let rows = rows();
        assert_eq!(
            text(|out| records_with_columns(out, OutputFormat::Csv, &rows, &select)),
            "revenue,name,statecode,city\n10,\"Contoso, Ltd.\",Active (0),\n,Fabrikam,,Paris\n"
        );
        // No rows: the asked columns still head the CSV, and the table says `0 rows`.
        assert_eq!(
            text(|out| records_with_columns(out, OutputFormat::Csv, &[], &select)),
            "revenue,name\n"
        );
        let table = text(|out| records_with_columns(out, OutputFormat::Table, &[], &select));
        assert!(
            table.contains("revenue") && table.ends_with("0 rows\n"),
            "{table}"
        );
        assert_eq!(
            text(|out| records_with_columns(out, OutputFormat::Table, &[], &[])),
            "0 rows\n"
        );
        assert_eq!(text(|out| records(out, OutputFormat::Json, &[])), "[]\n");
        // Streaming keeps the same order, and writes the header when nothing came.
        let streamed = text(|out| {
            let mut writer = StreamWriter::with_columns(out, OutputFormat::Csv, &select);
            for row in &rows {
                writer.write(row)?;
            }
            writer.finish().map(drop)
        });
        assert!(streamed.starts_with("revenue,name,"), "{streamed}");
        let empty = text(|out| {
            StreamWriter::with_columns(out, OutputFormat::Csv, &select)
                .finish()
                .map(drop)
        });
        assert_eq!(empty, "revenue,name\n");
    }

    #[test]
    fn tsv_is_one_line_per_row_without_a_header_and_escapes_tabs_and_breaks() {
        let rows = [
            serde_json::json!({"name": "a\tb\nc\\d", "n": 1}),
            serde_json::json!({"name": "plain", "n": null}),
        ];
        let select = ["name".to_owned(), "n".to_owned()];
        assert_eq!(
            text(|out| records_with_columns(out, OutputFormat::Tsv, &rows, &select)),
            "a\\tb\\nc\\\\d\t1\nplain\t\n"
        );
        let streamed = text(|out| {
            let mut writer = StreamWriter::with_columns(out, OutputFormat::Tsv, &select);
            for row in &rows {
                writer.write(row)?;
            }
            writer.finish().map(drop)
        });
        assert_eq!(streamed, "a\\tb\\nc\\\\d\t1\nplain\t\n");
        assert_eq!(
            text(|out| facts(
                out,
                OutputFormat::Tsv,
                &[("id", serde_json::json!("x")), ("n", serde_json::json!(2))]
            )),
            "x\t2\n"
        );
    }

    #[test]
    fn any_value_prints_in_every_format() {
        let names = serde_json::json!(["Contoso", "Fabrikam"]);
        assert_eq!(
            text(|out| value(out, OutputFormat::Tsv, &names)),
            "Contoso\nFabrikam\n"
        );
        assert_eq!(
            text(|out| value(out, OutputFormat::Table, &names)),
            "Contoso\nFabrikam\n"
        );
        assert_eq!(
            text(|out| value(out, OutputFormat::Jsonl, &names)),
            "\"Contoso\"\n\"Fabrikam\"\n"
        );
        let pairs = serde_json::json!([["a", 1], ["b", null]]);
        assert_eq!(
            text(|out| value(out, OutputFormat::Tsv, &pairs)),
            "a\t1\nb\t\n"
        );
        assert_eq!(
            text(|out| value(out, OutputFormat::Csv, &pairs)),
            "a,1\nb,\n"
        );
        assert_eq!(
            text(|out| value(out, OutputFormat::Tsv, &serde_json::json!(3))),
            "3\n"
        );
        assert_eq!(text(|out| value(out, OutputFormat::Tsv, &Value::Null)), "");
        let objects = serde_json::json!([{"b": 1, "a": 2}]);
        assert_eq!(
            text(|out| value(out, OutputFormat::Csv, &objects)),
            "a,b\n2,1\n"
        );
    }
}
