//! `get`/`query`, `fetchxml`, `create`, `update`, `upsert`, `delete`.

use std::io::{BufWriter, Write as _};
use std::time::Instant;

use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};

use crate::cli::{
    FetchXmlArgs, GetArgs, KeyArgs, KeyedWriteArgs, OutputFormat, UpsertArgs, WriteArgs,
};
use crate::connection::Connection;
use crate::exit::{Interrupted, UsageError};
use crate::keys::{parse_key, read_json, read_text};
use crate::output;
use d365_webapi::{FORMATTED_VALUES, Order, Query, RequestOptions, UpsertMode};

/// The `--select` columns, trimmed, in the order given.
fn selected_columns(args: &GetArgs) -> Vec<String> {
    args.select
        .iter()
        .map(|column| column.trim().to_owned())
        .filter(|column| !column.is_empty())
        .collect()
}

fn build_query(args: &GetArgs) -> anyhow::Result<Query> {
    let mut query = Query::new(&args.entity_set);
    let select = selected_columns(args);
    if !select.is_empty() {
        query = query.select(select);
    }
    if let Some(filter) = &args.filter {
        query = query.filter_raw(filter.clone());
    }
    for order in &args.orderby {
        let mut words = order.split_whitespace();
        let column = words
            .next()
            .ok_or_else(|| crate::exit::UsageError("--orderby needs a column".to_owned()))?;
        let direction = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => Order::Asc,
            Some("desc") => Order::Desc,
            Some(other) => {
                return Err(crate::exit::UsageError(format!(
                    "--orderby direction `{other}` is not asc or desc"
                ))
                .into());
            }
        };
        query = query.order_by(column, direction);
    }
    if let Some(top) = args.top {
        query = query.top(top);
    }
    if args.count {
        query = query.count();
    }
    if args.formatted {
        query = query.formatted_values();
    }
    let every_page = args.all || args.out.is_some();
    let page_size = match (args.page_size, every_page) {
        (Some(size), _) => Some(size),
        (None, true) => Some(crate::cli::MAX_PAGE_SIZE),
        (None, false) => None,
    };
    // Dataverse ignores `$top` when a page size is set: no page larger than the rows asked.
    if let Some(size) = page_size {
        query = query.page_size(args.top.map_or(size, |top| top.min(size)));
    }
    Ok(query)
}

/// At most `top` rows of `rows` (all without it): `--top` holds across pages.
fn at_most<S: Stream>(rows: S, top: Option<u32>) -> impl Stream<Item = S::Item> {
    rows.take(top.map_or(usize::MAX, |top| top as usize))
}

/// `d365 get`: one record by id or alternate key, the first page, every page (`--all`),
/// or an export to a file (`--out`); at most `--top` rows in each case.
pub(crate) async fn get(
    connection: &Connection,
    format: OutputFormat,
    args: &GetArgs,
) -> anyhow::Result<()> {
    let select = selected_columns(args);
    if let Some(key) = &args.key {
        let mut options = RequestOptions::new();
        if !select.is_empty() {
            options = options.select(select.clone());
        }
        if args.formatted {
            options = options.formatted_values();
        }
        let record = connection
            .client
            .retrieve(&args.entity_set, parse_key(key)?, &options)
            .await?;
        return output::record(&mut std::io::stdout().lock(), format, &record, &select);
    }
    let query = build_query(args)?;
    if let Some(path) = &args.out {
        if output::query_active() {
            return Err(UsageError(
                "--query shapes what is printed, and --out writes the rows themselves to a file: use one or the other".to_owned(),
            )
            .into());
        }
        return export(connection, format, query, path, args.top, &select).await;
    }
    let mut stdout = std::io::stdout().lock();
    if args.all {
        let rows = at_most(connection.client.query_all::<Value>(query), args.top);
        let streams = matches!(
            format,
            OutputFormat::Jsonl | OutputFormat::Csv | OutputFormat::Tsv | OutputFormat::Json
        );
        if streams && !output::query_active() {
            let mut writer =
                output::StreamWriter::with_columns(BufWriter::new(&mut stdout), format, &select);
            futures_util::pin_mut!(rows);
            while let Some(row) = rows.try_next().await? {
                writer.write(&row)?;
            }
            writer.finish()?;
            return Ok(());
        }
        let rows: Vec<Value> = rows.try_collect().await?;
        return output::records_with_columns(&mut stdout, format, &rows, &select);
    }
    let mut page = connection.client.query_page::<Value>(&query).await?;
    let top = args.top.map(|top| top as usize);
    let reached_top = top.is_some_and(|top| page.records.len() >= top);
    if let Some(top) = top {
        page.records.truncate(top);
    }
    output::records_with_columns(&mut stdout, format, &page.records, &select)?;
    if format == OutputFormat::Table && !output::query_active() {
        if let Some(count) = page.count {
            writeln!(stdout, "total: {count}")?;
        }
        if page.next_link.is_some() && !reached_top {
            writeln!(stdout, "more rows: use --all, or --out FILE to export")?;
        }
    }
    Ok(())
}

/// Streams every row (at most `top`) to a file (JSON lines unless --output csv/tsv/json),
/// with a progress bar.
///
/// The rows go to a temporary file beside the target, which replaces the target only when
/// every row is written and synced: an existing file is never truncated first, and a
/// failure, Ctrl-C or a kill never leaves a torn file under the target's name. A new file
/// is private (mode 0600: it holds the organization's data); one that replaces an existing
/// file takes the old file's permissions.
async fn export(
    connection: &Connection,
    format: OutputFormat,
    query: Query,
    path: &std::path::Path,
    top: Option<u32>,
    select: &[String],
) -> anyhow::Result<()> {
    let format = if format == OutputFormat::Table {
        OutputFormat::Jsonl
    } else {
        format
    };
    let mut partial = partial_file_for(path)?;
    let progress = indicatif::ProgressBar::new_spinner();
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} rows  {per_sec}  {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let started = Instant::now();
    let written = {
        let mut writer = output::StreamWriter::with_columns(
            BufWriter::with_capacity(1 << 16, partial.as_file_mut()),
            format,
            select,
        );
        let rows = at_most(connection.client.query_all::<Value>(query), top);
        futures_util::pin_mut!(rows);
        let copy = async {
            while let Some(row) = rows.try_next().await? {
                writer.write(&row)?;
                progress.inc(1);
            }
            anyhow::Ok(())
        };
        tokio::select! {
            outcome = copy => outcome?,
            _ = tokio::signal::ctrl_c() => {
                progress.finish_and_clear();
                return Err(Interrupted(format!("{} was left as it was", path.display())).into());
            }
        }
        writer.finish()?
    };
    partial.as_file().sync_all()?;
    partial
        .persist(path)
        .map_err(|error| anyhow::anyhow!("cannot replace {}: {}", path.display(), error.error))?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    #[allow(clippy::cast_precision_loss)]
    let rate = written as f64 / seconds;
    eprintln!(
        "wrote {written} rows to {} in {seconds:.1} s ({rate:.0} rows/s)",
        path.display()
    );
    Ok(())
}

/// A new temporary file beside `target` (created exclusively, never through a symlink),
/// removed unless it is persisted over the target; with the target's permissions when it
/// exists, else mode 0600.
fn partial_file_for(target: &std::path::Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    };
    let name = target.file_name().map_or_else(
        || "export".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let prefix = format!(".{name}.");
    let partial = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .tempfile_in(directory)
        .map_err(|error| {
            anyhow::anyhow!("cannot create a file in {}: {error}", directory.display())
        })?;
    if let Ok(existing) = std::fs::metadata(target) {
        std::fs::set_permissions(partial.path(), existing.permissions())?;
    }
    Ok(partial)
}

/// `d365 fetchxml`.
pub(crate) async fn fetch_xml(
    connection: &Connection,
    format: OutputFormat,
    args: &FetchXmlArgs,
) -> anyhow::Result<()> {
    let fetch = read_text(&args.fetch_xml)?;
    let client = &connection.client;
    let rows: Vec<Value> = match (args.all, args.formatted) {
        (true, false) => {
            client
                .fetch_xml_all(&args.entity_set, &fetch)
                .try_collect()
                .await?
        }
        (true, true) => {
            client
                .fetch_xml_all_with_annotations(&args.entity_set, &fetch, FORMATTED_VALUES)
                .try_collect()
                .await?
        }
        (false, false) => {
            client
                .fetch_xml_page(&args.entity_set, &fetch)
                .await?
                .records
        }
        (false, true) => {
            client
                .fetch_xml_page_with_annotations(&args.entity_set, &fetch, FORMATTED_VALUES)
                .await?
                .records
        }
    };
    output::records(&mut std::io::stdout().lock(), format, &rows)
}

/// `d365 create`: the new id alone in table, CSV and TSV output (for `id=$(d365 create …)`),
/// the created record in JSON (and with `--return-record` or `--query` in any format).
pub(crate) async fn create(
    connection: &Connection,
    format: OutputFormat,
    args: &WriteArgs,
) -> anyhow::Result<()> {
    let record = read_json(&args.data.data)?;
    let json = matches!(format, OutputFormat::Json | OutputFormat::Jsonl);
    let wants_record = args.return_record || json || output::query_active();
    let options = if wants_record {
        RequestOptions::new().return_representation()
    } else {
        RequestOptions::new()
    };
    let created = connection
        .client
        .create(&args.entity_set, &record, &options)
        .await?;
    let id = created.id.map(|id| id.to_string());
    let mut stdout = std::io::stdout().lock();
    if !wants_record {
        return match id {
            Some(id) => Ok(writeln!(stdout, "{id}")?),
            None => Err(anyhow::anyhow!(
                "the record was created, but the answer named no id (no OData-EntityId header)"
            )),
        };
    }
    // A server that does not return the record still says where it is.
    let record = created
        .record
        .unwrap_or_else(|| json!({"id": id, "url": created.url}));
    output::record(&mut stdout, format, &record, &[])
}

/// `d365 update`.
pub(crate) async fn update(
    connection: &Connection,
    format: OutputFormat,
    args: &KeyedWriteArgs,
) -> anyhow::Result<()> {
    let key = parse_key(&args.key.key)?;
    let changes = read_json(&args.data.data)?;
    let options = match &args.if_match {
        Some(etag) => RequestOptions::new().if_match(etag.clone()),
        None => RequestOptions::new(),
    };
    connection
        .client
        .update(&args.key.entity_set, key, &changes, &options)
        .await?;
    output::facts(
        &mut std::io::stdout().lock(),
        format,
        &[("updated", json!(args.key.key))],
    )
}

/// `d365 upsert`.
pub(crate) async fn upsert(
    connection: &Connection,
    format: OutputFormat,
    args: &UpsertArgs,
) -> anyhow::Result<()> {
    let key = parse_key(&args.key.key)?;
    let record = read_json(&args.data.data)?;
    let mode = if args.create_only {
        UpsertMode::CreateOnly
    } else if args.update_only {
        UpsertMode::UpdateOnly
    } else {
        UpsertMode::CreateOrUpdate
    };
    connection
        .client
        .upsert(
            &args.key.entity_set,
            key,
            &record,
            mode,
            &RequestOptions::new(),
        )
        .await?;
    output::facts(
        &mut std::io::stdout().lock(),
        format,
        &[("upserted", json!(args.key.key))],
    )
}

/// `d365 delete`.
pub(crate) async fn delete(
    connection: &Connection,
    format: OutputFormat,
    args: &KeyArgs,
) -> anyhow::Result<()> {
    let key = parse_key(&args.key)?;
    connection
        .client
        .delete(&args.entity_set, key, &RequestOptions::new())
        .await?;
    output::facts(
        &mut std::io::stdout().lock(),
        format,
        &[("deleted", json!(args.key))],
    )
}
