//! `d365 import TABLE --file F`: the thin layer over `d365_webapi`'s importer — the file
//! readers (CSV, JSON lines, a JSON array read one object at a time), the checkpoint file
//! beside the input that makes a run resumable, the rejects file, progress, and the summary.
//!
//! The checkpoint (`F.d365-import.json`, replaced atomically after each chunk) records the
//! input's fingerprint (SHA-256 and size), the table and options, the highest row ever sent,
//! and the rows done (merged ranges). A re-run skips the rows done and sends the rows that
//! may have been in flight as upserts on their deterministic ids, so no row is lost or
//! applied twice; a changed input is refused. It is removed when the import ends.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal as _, Read, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use d365_webapi::{ChunkReport, ImportObserver, ImportOptions, ImportRow, RowConverter};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::cli::{ImportArgs, InputFormat, OutputFormat};
use crate::connection::Connection;
use crate::exit::{Failed, Interrupted, UsageError};

/// The longest JSON line or JSON array element read (one row).
const MAX_ROW_BYTES: u64 = 16 * 1024 * 1024;
/// The most distinct columns an input may name.
const MAX_COLUMNS: usize = 10_000;
/// The largest checkpoint read back.
const MAX_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

/// `d365 import`.
pub(crate) async fn run(
    connection: &Connection,
    output: OutputFormat,
    args: &ImportArgs,
) -> anyhow::Result<()> {
    let stdin = args.file.as_os_str() == "-";
    let format = input_format(args, stdin)?;
    let client = &connection.client;
    let create = args.upsert.is_empty();
    let mut converter = RowConverter::load(client, &args.table, create).await?;
    let table = converter.table().logical_name.clone();

    // A file is read once before anything is sent: its fingerprint, its row count (for the
    // ETA) and every column it names, each checked against the table.
    let mut total = None;
    let mut fingerprint = None;
    let mut headers = Vec::new();
    if stdin {
        if format == InputFormat::Csv {
            // The header row is the columns: checked before any row is sent.
            let mut reader = csv::Reader::from_reader(std::io::stdin());
            headers = csv_headers(&mut reader)?;
            converter
                .prepare(client, headers.iter().map(String::as_str))
                .await?;
            return import(
                connection,
                output,
                args,
                converter,
                Input {
                    rows: Box::new(csv_rows(reader, headers.clone())),
                    headers,
                    total: None,
                    fingerprint: None,
                    format,
                    table,
                },
            )
            .await;
        }
    } else {
        fingerprint = Some(fingerprint_of(&args.file)?);
        let mut columns = BTreeSet::new();
        let mut count = 0_u64;
        let (rows, file_headers) = open_rows(&args.file, format)?;
        headers = file_headers;
        columns.extend(headers.iter().cloned());
        for row in rows {
            let row = row?;
            count += 1;
            for name in row.values.keys() {
                if !columns.contains(name) {
                    if columns.len() >= MAX_COLUMNS {
                        return Err(UsageError(format!(
                            "the input names more than {MAX_COLUMNS} columns"
                        ))
                        .into());
                    }
                    columns.insert(name.clone());
                }
            }
        }
        converter
            .prepare(client, columns.iter().map(String::as_str))
            .await?;
        total = Some(count);
    }
    let rows: Box<dyn Iterator<Item = std::io::Result<ImportRow>>> = if stdin {
        Box::new(json_rows(
            Box::new(BufReader::new(std::io::stdin())),
            format,
        ))
    } else {
        open_rows(&args.file, format)?.0
    };
    import(
        connection,
        output,
        args,
        converter,
        Input {
            rows,
            headers,
            total,
            fingerprint,
            format,
            table,
        },
    )
    .await
}

/// An input, ready to import.
struct Input {
    rows: Box<dyn Iterator<Item = std::io::Result<ImportRow>>>,
    /// A CSV input's header row, in order (for the rejects file).
    headers: Vec<String>,
    total: Option<u64>,
    /// `None` for standard input: no checkpoint then.
    fingerprint: Option<String>,
    format: InputFormat,
    table: String,
}

async fn import(
    connection: &Connection,
    output: OutputFormat,
    args: &ImportArgs,
    mut converter: RowConverter,
    input: Input,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let client = &connection.client;
    let checkpoint_path = input
        .fingerprint
        .as_ref()
        .map(|_| sibling(&args.file, ".d365-import.json"));
    let mode = if args.upsert.is_empty() {
        Value::String("create".into())
    } else {
        json!({"upsert": args.upsert})
    };

    // An earlier, unfinished run of this file: continue it, unless the input or the options
    // changed.
    let mut state = Checkpoint {
        version: 1,
        fingerprint: input.fingerprint.clone().unwrap_or_default(),
        table: input.table.clone(),
        mode: mode.clone(),
        id_seed: input
            .fingerprint
            .clone()
            .unwrap_or_else(|| d365_webapi::Guid::new_random().to_string()),
        sent_through: 0,
        done: Vec::new(),
        created: 0,
        upserted: 0,
        rejected: 0,
    };
    let mut resumed = false;
    if let Some(path) = &checkpoint_path {
        if args.restart {
            remove_if_present(path)?;
        } else if let Some(found) = read_checkpoint(path)? {
            if found.fingerprint != state.fingerprint {
                return Err(UsageError(format!(
                    "{} changed since the unfinished import recorded in {}; to import it from the start anyway, add --restart (rows imported before are not removed)",
                    args.file.display(),
                    path.display()
                ))
                .into());
            }
            if found.table != state.table || found.mode != state.mode {
                return Err(UsageError(format!(
                    "the unfinished import recorded in {} was into `{}` ({}); run it again with the same table and --upsert, or add --restart",
                    path.display(),
                    found.table,
                    found.mode
                ))
                .into());
            }
            if !args.dry_run {
                state = found;
                resumed = true;
            }
        }
    }
    let rejects_path = args.rejects.clone().unwrap_or_else(|| {
        let suffix = if input.format == InputFormat::Csv {
            ".rejects.csv"
        } else {
            ".rejects.jsonl"
        };
        if input.fingerprint.is_some() {
            sibling(&args.file, suffix)
        } else {
            PathBuf::from(format!("d365-import{suffix}"))
        }
    });

    let mut options = ImportOptions::new()
        .id_seed(state.id_seed.clone())
        .resend_through(state.sent_through)
        .dry_run(args.dry_run);
    if !args.upsert.is_empty() {
        options = options.upsert(args.upsert.iter().map(|column| column.trim().to_owned()));
    }
    if let Some(rows) = args.chunk_size {
        options = options.chunk_size(usize::from(rows));
    }

    let progress = Progress::new(input.total, resumed.then(|| state.done_count()));
    let mut observer = Observer {
        checkpoint: checkpoint_path.clone().filter(|_| !args.dry_run),
        state,
        rejects: RejectsFile {
            path: rejects_path.clone(),
            append: resumed,
            csv_headers: (input.format == InputFormat::Csv).then(|| input.headers.clone()),
            writer: None,
            written: 0,
            dry_run: args.dry_run,
        },
        progress,
    };
    if resumed {
        eprintln!(
            "continuing the import recorded in {}: {} rows done",
            checkpoint_path
                .as_deref()
                .map_or_else(String::new, |path| path.display().to_string()),
            observer.state.done_count()
        );
    }
    let done = observer.state.done.clone();
    let mut skipped = 0_u64;
    let rows = input.rows.filter(|row| match row {
        Ok(row) if contains(&done, row.number) => {
            skipped += 1;
            false
        }
        _ => true,
    });
    let stream = futures_util::stream::iter(rows);
    let outcome = tokio::select! {
        outcome = client.import(&mut converter, &options, stream, &mut observer) => outcome,
        _ = tokio::signal::ctrl_c() => {
            observer.progress.clear();
            let how = if checkpoint_path.is_some() {
                "run the same command again to continue where it stopped"
            } else {
                "standard input cannot be resumed"
            };
            return Err(Interrupted(format!("the import stopped; {how}")).into());
        }
    };
    observer.progress.clear();
    observer.rejects.finish()?;
    let summary = match outcome {
        Ok(summary) => summary,
        Err(d365_webapi::ImportError::Service(error)) => {
            let hint = if checkpoint_path.is_some() {
                "; run the same command again to continue where it stopped"
            } else {
                ""
            };
            return Err(anyhow::Error::from(error).context(format!("the import stopped{hint}")));
        }
        Err(error) => return Err(error.into()),
    };
    if let Some(path) = checkpoint_path.as_ref().filter(|_| !args.dry_run) {
        remove_if_present(path)?;
    }

    let state = &observer.state;
    let (created, upserted, rejected) = if args.dry_run {
        (0, 0, summary.rejected)
    } else {
        (state.created, state.upserted, state.rejected)
    };
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    let handled = summary.created + summary.upserted + summary.validated + summary.rejected;
    #[allow(clippy::cast_precision_loss)]
    let rate = handled as f64 / elapsed;
    let mut facts: Vec<(&str, Value)> = vec![("table", json!(input.table))];
    if args.dry_run {
        facts.push(("dry_run", json!(true)));
        facts.push(("valid", json!(summary.validated)));
    } else {
        facts.push(("created", json!(created)));
        facts.push(("upserted", json!(upserted)));
    }
    facts.push(("rejected", json!(rejected)));
    if skipped > 0 {
        facts.push(("skipped", json!(skipped)));
    }
    facts.push(("elapsed_secs", json!((elapsed * 10.0).round() / 10.0)));
    facts.push(("rows_per_sec", json!(rate.round())));
    if summary.used_batch_fallback {
        facts.push(("batch_fallback", json!(true)));
    }
    if observer.rejects.written > 0 && !args.dry_run {
        facts.push(("rejects_file", json!(rejects_path.display().to_string())));
    }
    crate::output::facts(&mut std::io::stdout().lock(), output, &facts)?;
    if rejected > 0 {
        let detail = if args.dry_run {
            "would be rejected".to_owned()
        } else {
            format!("were rejected (see {})", rejects_path.display())
        };
        return Err(Failed {
            code: crate::exit::FAILURE,
            message: format!("{rejected} rows {detail}"),
        }
        .into());
    }
    Ok(())
}

/// The format from `--format` or the extension.
fn input_format(args: &ImportArgs, stdin: bool) -> anyhow::Result<InputFormat> {
    if let Some(format) = args.format {
        return Ok(format);
    }
    let extension = args
        .file
        .extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("csv") => Ok(InputFormat::Csv),
        Some("jsonl" | "ndjson") => Ok(InputFormat::Jsonl),
        Some("json") => Ok(InputFormat::Json),
        _ if stdin => Err(UsageError(
            "standard input has no extension: add --format csv, jsonl or json".to_owned(),
        )
        .into()),
        _ => Err(UsageError(format!(
            "cannot tell the format of {} from its extension: add --format csv, jsonl or json",
            args.file.display()
        ))
        .into()),
    }
}

/// `FILE` + `suffix`, beside it.
fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::anyhow!("cannot remove {}: {error}", path.display()))
        }
        _ => Ok(()),
    }
}

/// `sha256:HEX:SIZE` of a file, read in blocks.
fn fingerprint_of(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest as _;
    let mut file = File::open(path)
        .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0_u8; 1 << 16];
    let mut size = 0_u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok(format!("sha256:{digest}:{size}"))
}

type Rows = Box<dyn Iterator<Item = std::io::Result<ImportRow>>>;

/// The rows of a file, and a CSV file's header row.
fn open_rows(path: &Path, format: InputFormat) -> anyhow::Result<(Rows, Vec<String>)> {
    let file = File::open(path)
        .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", path.display()))?;
    if format == InputFormat::Csv {
        let mut reader = csv::Reader::from_reader(file);
        let headers = csv_headers(&mut reader)?;
        return Ok((Box::new(csv_rows(reader, headers.clone())), headers));
    }
    Ok((
        Box::new(json_rows(
            Box::new(BufReader::with_capacity(1 << 16, file)),
            format,
        )),
        Vec::new(),
    ))
}

/// A column name as the table knows it: logical names are lower case; an annotation
/// (`x@odata.bind`) keeps its case.
fn column_name(name: &str) -> String {
    let name = name.trim().trim_start_matches('\u{feff}');
    if name.contains('@') {
        name.to_owned()
    } else {
        name.to_ascii_lowercase()
    }
}

fn csv_headers<R: Read>(reader: &mut csv::Reader<R>) -> anyhow::Result<Vec<String>> {
    let headers: Vec<String> = reader
        .headers()
        .map_err(|error| UsageError(format!("the CSV header row cannot be read: {error}")))?
        .iter()
        .map(column_name)
        .collect();
    let mut seen = BTreeSet::new();
    for header in &headers {
        if header.is_empty() {
            return Err(UsageError("the CSV header row has an empty column name".into()).into());
        }
        if !seen.insert(header) {
            return Err(UsageError(format!("the CSV header row names `{header}` twice")).into());
        }
    }
    Ok(headers)
}

/// A CSV file's data rows (numbered from 1 after the header), each cell as text.
fn csv_rows<R: Read>(
    reader: csv::Reader<R>,
    headers: Vec<String>,
) -> impl Iterator<Item = std::io::Result<ImportRow>> {
    let mut number = 0_u64;
    reader.into_records().map(move |record| {
        number += 1;
        let record =
            record.map_err(|error| std::io::Error::other(format!("CSV row {number}: {error}")))?;
        let values: Map<String, Value> = headers
            .iter()
            .zip(record.iter())
            .map(|(name, cell)| (name.clone(), Value::String(cell.to_owned())))
            .collect();
        Ok(ImportRow::new(number, values))
    })
}

/// JSON lines or a JSON array's objects, one at a time, numbered from 1.
fn json_rows(
    reader: Box<dyn BufRead>,
    format: InputFormat,
) -> impl Iterator<Item = std::io::Result<ImportRow>> {
    let mut source = JsonSource {
        reader,
        array: format == InputFormat::Json,
        started: false,
        ended: false,
        number: 0,
    };
    std::iter::from_fn(move || source.next_row().transpose())
}

struct JsonSource {
    reader: Box<dyn BufRead>,
    /// A JSON array rather than JSON lines.
    array: bool,
    started: bool,
    ended: bool,
    number: u64,
}

impl JsonSource {
    fn next_row(&mut self) -> std::io::Result<Option<ImportRow>> {
        if self.ended {
            return Ok(None);
        }
        let bytes = if self.array {
            self.next_element()?
        } else {
            self.next_line()?
        };
        let Some(bytes) = bytes else {
            self.ended = true;
            return Ok(None);
        };
        self.number += 1;
        let number = self.number;
        let value: Value = serde_json::from_slice(&bytes).map_err(|error| {
            std::io::Error::other(format!("row {number} is not valid JSON: {error}"))
        })?;
        let Value::Object(object) = value else {
            return Err(std::io::Error::other(format!(
                "row {number} is not a JSON object"
            )));
        };
        let values = object
            .into_iter()
            .map(|(name, value)| (column_name(&name), value))
            .collect();
        Ok(Some(ImportRow::new(number, values)))
    }

    /// The next non-blank line.
    fn next_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            let mut line = Vec::new();
            let read = (&mut self.reader)
                .take(MAX_ROW_BYTES + 1)
                .read_until(b'\n', &mut line)?;
            if read == 0 {
                return Ok(None);
            }
            if line.len() as u64 > MAX_ROW_BYTES {
                return Err(std::io::Error::other(format!(
                    "a line after row {} is longer than {MAX_ROW_BYTES} bytes",
                    self.number
                )));
            }
            if line.iter().any(|byte| !byte.is_ascii_whitespace()) {
                return Ok(Some(line));
            }
        }
    }

    fn next_byte(&mut self) -> std::io::Result<Option<u8>> {
        let buffer = self.reader.fill_buf()?;
        let Some(&byte) = buffer.first() else {
            return Ok(None);
        };
        self.reader.consume(1);
        Ok(Some(byte))
    }

    fn next_non_space(&mut self) -> std::io::Result<Option<u8>> {
        while let Some(byte) = self.next_byte()? {
            if !byte.is_ascii_whitespace() {
                return Ok(Some(byte));
            }
        }
        Ok(None)
    }

    /// The next object of the array, as its bytes (strings and nesting followed, so a `}`
    /// in a string does not end it).
    fn next_element(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let bad = |what: String| std::io::Error::other(what);
        let mut first = self.next_non_space()?;
        if !self.started {
            if first == Some(0xEF) {
                // A UTF-8 byte order mark (EF BB BF).
                self.next_byte()?;
                self.next_byte()?;
                first = self.next_non_space()?;
            }
            if first != Some(b'[') {
                return Err(bad("a JSON input must be an array of objects (`[{…}, …]`); use --format jsonl for one object per line".into()));
            }
            self.started = true;
            first = self.next_non_space()?;
            if first == Some(b']') {
                return Ok(None);
            }
        } else {
            match first {
                Some(b',') => first = self.next_non_space()?,
                Some(b']') => return Ok(None),
                _ => {
                    return Err(bad(format!(
                        "after row {} the JSON array should go on with `,` or end with `]`",
                        self.number
                    )));
                }
            }
        }
        if first != Some(b'{') {
            return Err(bad(format!(
                "row {} of the JSON array is not an object",
                self.number + 1
            )));
        }
        let mut element = vec![b'{'];
        let (mut depth, mut in_string, mut escaped) = (1_u32, false, false);
        while depth > 0 {
            let byte = self.next_byte()?.ok_or_else(|| {
                bad(format!(
                    "the JSON array ends inside row {}",
                    self.number + 1
                ))
            })?;
            element.push(byte);
            if element.len() as u64 > MAX_ROW_BYTES {
                return Err(bad(format!(
                    "row {} is longer than {MAX_ROW_BYTES} bytes",
                    self.number + 1
                )));
            }
            if in_string {
                match (escaped, byte) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                _ => {}
            }
        }
        Ok(Some(element))
    }
}

/// What the checkpoint file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    version: u32,
    /// `sha256:HEX:SIZE` of the input.
    fingerprint: String,
    table: String,
    /// `"create"` or `{"upsert": [columns]}`.
    mode: Value,
    /// What row ids derive from (the fingerprint).
    id_seed: String,
    /// The highest row ever sent: rows after the done ones up to it may have been applied.
    sent_through: u64,
    /// Rows done (written or rejected), as merged `[first, last]` ranges.
    done: Vec<(u64, u64)>,
    created: u64,
    upserted: u64,
    rejected: u64,
}

impl Checkpoint {
    fn done_count(&self) -> u64 {
        self.done.iter().map(|(first, last)| last - first + 1).sum()
    }

    /// Adds `first..=last` to the done ranges, merging neighbours.
    fn mark_done(&mut self, first: u64, last: u64) {
        self.done.push((first, last));
        self.done.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.done.len());
        for &(first, last) in &self.done {
            match merged.last_mut() {
                Some(previous) if first <= previous.1.saturating_add(1) => {
                    previous.1 = previous.1.max(last);
                }
                _ => merged.push((first, last)),
            }
        }
        self.done = merged;
    }
}

/// Whether `number` is in one of the sorted, merged `ranges`.
fn contains(ranges: &[(u64, u64)], number: u64) -> bool {
    let index = ranges.partition_point(|(_, last)| *last < number);
    ranges.get(index).is_some_and(|(first, _)| *first <= number)
}

fn read_checkpoint(path: &Path) -> anyhow::Result<Option<Checkpoint>> {
    let Some(bytes) = d365_auth_core::store::read_private_file(path, MAX_CHECKPOINT_BYTES)
        .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", path.display()))?
    else {
        return Ok(None);
    };
    let checkpoint: Checkpoint = serde_json::from_slice(&bytes).map_err(|error| {
        UsageError(format!(
            "{} is not a d365 import checkpoint ({error}); remove it or add --restart",
            path.display()
        ))
    })?;
    Ok(Some(checkpoint))
}

/// The rejects file: created at the first reject (appended to when resuming).
struct RejectsFile {
    path: PathBuf,
    append: bool,
    /// A CSV input's header row: the rejects file is CSV then (`row,error,…`).
    csv_headers: Option<Vec<String>>,
    writer: Option<std::io::BufWriter<File>>,
    written: u64,
    dry_run: bool,
}

impl RejectsFile {
    fn write(&mut self, row: &ImportRow, reason: &str) -> std::io::Result<()> {
        self.written += 1;
        if self.dry_run {
            if self.written <= 20 {
                eprintln!(
                    "row {}: {}",
                    row.number,
                    crate::output::printable(reason, false)
                );
            }
            return Ok(());
        }
        if self.writer.is_none() {
            // The rows hold the organization's data: a new rejects file is private, and a
            // symlink planted under its name is refused rather than followed.
            let mut options = std::fs::OpenOptions::new();
            options
                .create(true)
                .append(self.append)
                .write(true)
                .truncate(!self.append);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
            }
            let file = options.open(&self.path)?;
            let empty = file.metadata()?.len() == 0;
            let mut writer = std::io::BufWriter::new(file);
            if let (Some(headers), true) = (&self.csv_headers, empty) {
                let mut csv = csv::Writer::from_writer(&mut writer);
                let mut header = vec!["row".to_owned(), "error".to_owned()];
                header.extend(headers.iter().cloned());
                csv.write_record(&header).map_err(std::io::Error::other)?;
                csv.flush()?;
            }
            self.writer = Some(writer);
        }
        let writer = self.writer.as_mut().expect("opened above");
        match &self.csv_headers {
            Some(headers) => {
                let mut record = vec![row.number.to_string(), reason.to_owned()];
                record.extend(headers.iter().map(|name| {
                    row.values
                        .get(name)
                        .map(|value| match value {
                            Value::String(text) => text.clone(),
                            other => other.to_string(),
                        })
                        .unwrap_or_default()
                }));
                let mut csv = csv::Writer::from_writer(&mut *writer);
                csv.write_record(&record).map_err(std::io::Error::other)?;
                csv.flush()?;
            }
            None => {
                let line = json!({"row": row.number, "error": reason, "record": row.values});
                writeln!(writer, "{line}")?;
            }
        }
        Ok(())
    }

    /// Makes what was written durable (before the checkpoint counts those rows done).
    fn sync(&mut self) -> std::io::Result<()> {
        if let Some(writer) = &mut self.writer {
            writer.flush()?;
            writer.get_ref().sync_data()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.sync()
            .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", self.path.display()))
    }
}

/// A progress bar on a terminal; plain lines on stderr every few seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(total: Option<u64>, already: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let (bar, template) = match total {
                Some(total) => (
                    indicatif::ProgressBar::new(total),
                    "{bar:30} {pos}/{len} rows  {per_sec}  ETA {eta}",
                ),
                None => (
                    indicatif::ProgressBar::new_spinner(),
                    "{spinner} {pos} rows  {per_sec}  {elapsed}",
                ),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_position(already.unwrap_or(0));
            bar.reset_eta();
            bar
        });
        Self {
            bar,
            total,
            done: already.unwrap_or(0),
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn advance(&mut self, rows: u64) {
        self.done += rows;
        if let Some(bar) = &self.bar {
            bar.inc(rows);
            return;
        }
        if self.last_line.elapsed() >= Duration::from_secs(2) {
            self.last_line = Instant::now();
            let seconds = self.started.elapsed().as_secs_f64().max(0.001);
            let of = self
                .total
                .map_or_else(String::new, |total| format!("/{total}"));
            #[allow(clippy::cast_precision_loss)]
            let rate = self.done as f64 / seconds;
            eprintln!("imported {}{of} rows ({rate:.0} rows/s)", self.done);
        }
    }

    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The importer's observer: the checkpoint, the rejects file, the progress.
struct Observer {
    /// `None`: no checkpoint (standard input, a dry run).
    checkpoint: Option<PathBuf>,
    state: Checkpoint,
    rejects: RejectsFile,
    progress: Progress,
}

impl Observer {
    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.checkpoint else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&self.state).map_err(std::io::Error::other)?;
        d365_auth_core::store::replace_private_file(path, &bytes)
    }
}

impl ImportObserver for Observer {
    fn sending(&mut self, _first: u64, last: u64) -> std::io::Result<()> {
        // Recorded before the request leaves: a run that dies now resends these rows as
        // upserts.
        if last > self.state.sent_through {
            self.state.sent_through = last;
            self.save()?;
        }
        Ok(())
    }

    fn rejected(&mut self, row: &ImportRow, reason: &str) -> std::io::Result<()> {
        self.rejects.write(row, reason)
    }

    fn finished(&mut self, first: u64, last: u64, report: &ChunkReport) -> std::io::Result<()> {
        self.rejects.sync()?;
        self.state.mark_done(first, last);
        self.state.created += report.created;
        self.state.upserted += report.upserted;
        self.state.rejected += report.rejected;
        self.save()?;
        self.progress
            .advance(report.created + report.upserted + report.rejected);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_ranges_merge_and_answer() {
        let mut checkpoint = Checkpoint {
            version: 1,
            fingerprint: String::new(),
            table: String::new(),
            mode: Value::Null,
            id_seed: String::new(),
            sent_through: 0,
            done: Vec::new(),
            created: 0,
            upserted: 0,
            rejected: 0,
        };
        checkpoint.mark_done(5, 9);
        checkpoint.mark_done(1, 3);
        checkpoint.mark_done(4, 4);
        checkpoint.mark_done(20, 25);
        assert_eq!(checkpoint.done, [(1, 9), (20, 25)]);
        assert_eq!(checkpoint.done_count(), 15);
        assert!(contains(&checkpoint.done, 1));
        assert!(contains(&checkpoint.done, 9));
        assert!(!contains(&checkpoint.done, 10));
        assert!(contains(&checkpoint.done, 22));
        assert!(!contains(&checkpoint.done, 26));
    }

    #[test]
    fn json_arrays_are_read_one_object_at_a_time() {
        let text = r#" [ {"name": "a}", "n": [1, {"x": 2}]}, {"name": "b\"}"} ] "#;
        let rows: Vec<ImportRow> = json_rows(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            InputFormat::Json,
        )
        .collect::<Result<_, _>>()
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].values["name"], "a}");
        assert_eq!(rows[1].number, 2);
        let broken = json_rows(
            Box::new(std::io::Cursor::new(b"[{\"a\":1} {\"b\":2}]".to_vec())),
            InputFormat::Json,
        )
        .collect::<Result<Vec<_>, _>>();
        assert!(broken.is_err());
        let lines = json_rows(
            Box::new(std::io::Cursor::new(
                b"{\"Name\":\"a\"}\n\n{\"name\":\"b\"}\n".to_vec(),
            )),
            InputFormat::Jsonl,
        )
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].values["name"], "a");
    }
}
