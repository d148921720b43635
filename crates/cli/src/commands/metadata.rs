//! `d365 tables` and `d365 columns TABLE`: the organization's table and column definitions,
//! read from the metadata Web API, one row per table or column in any output format.

use serde_json::{Value, json};

use crate::cli::{ColumnsArgs, OutputFormat};
use crate::connection::Connection;
use crate::output;

/// `d365 tables`: every table that is not private, by logical name.
pub(crate) async fn tables(connection: &Connection, format: OutputFormat) -> anyhow::Result<()> {
    let tables = connection.client.tables().await?;
    let rows: Vec<Value> = tables
        .iter()
        .map(|table| {
            json!({
                "logical_name": table.logical_name,
                "entity_set": table.entity_set_name,
                "primary_id": table.primary_id_attribute,
                "primary_name": table.primary_name_attribute,
                "display_name": table.display_name,
                "ownership": table.ownership_type,
                "custom": table.is_custom_entity,
            })
        })
        .collect();
    let columns = [
        "logical_name",
        "entity_set",
        "primary_id",
        "primary_name",
        "display_name",
    ]
    .map(str::to_owned);
    output::records_with_columns(&mut std::io::stdout().lock(), format, &rows, &columns)
}

/// `d365 columns TABLE`: its columns, with the options of choice columns as `value=label`.
pub(crate) async fn columns(
    connection: &Connection,
    format: OutputFormat,
    args: &ColumnsArgs,
) -> anyhow::Result<()> {
    let columns = connection.client.columns(&args.table).await.map_err(|error| {
        let not_found = error.kind() == d365_webapi::ErrorKind::NotFound;
        let error = anyhow::Error::from(error);
        if not_found {
            error.context(format!(
                "no table has the logical name `{}` (`d365 tables` lists them; logical names are singular, such as `account`)",
                args.table
            ))
        } else {
            error
        }
    })?;
    let rows: Vec<Value> = columns
        .iter()
        .map(|column| {
            let options: Vec<String> = column
                .options
                .iter()
                .map(|option| format!("{}={}", option.value, option.label.as_deref().unwrap_or("")))
                .collect();
            json!({
                "logical_name": column.logical_name,
                "type": column.attribute_type,
                "required": column.required_level,
                "writable": column.is_writable(),
                "display_name": column.display_name,
                "max_length": column.max_length,
                "targets": (!column.targets.is_empty()).then(|| column.targets.join(",")),
                "options": (!options.is_empty()).then(|| options.join("; ")),
            })
        })
        .collect();
    let first = [
        "logical_name",
        "type",
        "required",
        "writable",
        "display_name",
    ]
    .map(str::to_owned);
    output::records_with_columns(&mut std::io::stdout().lock(), format, &rows, &first)
}
