//! Bulk operations: `CreateMultiple`, `UpdateMultiple` and `UpsertMultiple`, the actions bound
//! to a table's entity set that write many rows of one table in one request. Each target
//! needs the table's logical name in `@odata.type`; the client reads it from the metadata
//! once per table ([`Client::table_for_entity_set`]) and adds it, so callers pass plain rows.
//!
//! On a standard table Dataverse applies a bulk request whole or not at all, so an error
//! leaves nothing half-written. A request that may have been applied (a connection that
//! broke after sending) is not replayed: it fails with
//! [`ErrorKind::MaybeApplied`](crate::ErrorKind::MaybeApplied), and an upsert by key is the
//! way to send it again safely.

use http::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::pipeline::{Prepared, Replay};
use crate::{Client, Guid, Literal, RecordKey, WebApiError};

/// The most rows one bulk request takes here. Dataverse sets no hard limit but advises
/// starting near 1,000 rows and sending fewer when requests time out; larger inputs are
/// split by the caller (as `d365 import` does), so a failure names the chunk it stopped at.
pub const MAX_BULK_ROWS: usize = 1_000;

const NAMESPACE: &str = "Microsoft.Dynamics.CRM";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateMultipleResponse {
    ids: Vec<Guid>,
}

impl Client {
    /// Creates rows of one table in one request (`CreateMultiple`) and returns their ids in
    /// the order of `rows`.
    ///
    /// ```no_run
    /// # async fn run(client: d365_webapi::Client) -> Result<(), d365_webapi::WebApiError> {
    /// use serde_json::json;
    ///
    /// let ids = client
    ///     .create_multiple("accounts", &[json!({"name": "Contoso"}), json!({"name": "Fabrikam"})])
    ///     .await?;
    /// assert_eq!(ids.len(), 2);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`WebApiError::InvalidInput`] for a row that is not an object or more than
    /// [`MAX_BULK_ROWS`] rows; else [`WebApiError`] as Dataverse answered (nothing created).
    pub async fn create_multiple(
        &self,
        entity_set: &str,
        rows: &[Value],
    ) -> Result<Vec<Guid>, WebApiError> {
        let targets = self.targets(entity_set, rows, |_, _| Ok(())).await?;
        let answer = self
            .bulk_action(entity_set, "CreateMultiple", targets)
            .await?
            .ok_or_else(|| WebApiError::Decode("CreateMultiple answered without its Ids".into()))?;
        let response: CreateMultipleResponse = serde_json::from_value(answer)
            .map_err(|error| WebApiError::Decode(format!("CreateMultiple's answer: {error}")))?;
        Ok(response.ids)
    }

    /// Updates rows of one table in one request (`UpdateMultiple`). Each row names its
    /// record by the table's primary key column (`accountid`) and carries only the columns
    /// to change.
    ///
    /// # Errors
    ///
    /// [`WebApiError::InvalidInput`] for a row without its primary key; else [`WebApiError`]
    /// as Dataverse answered (nothing updated), such as 404 for a row that does not exist.
    pub async fn update_multiple(
        &self,
        entity_set: &str,
        rows: &[Value],
    ) -> Result<(), WebApiError> {
        let table = self.table_for_entity_set(entity_set).await?;
        let primary = table.primary_id_attribute.clone();
        let targets = self
            .targets(entity_set, rows, |index, row| {
                match row.get(&primary).and_then(Value::as_str) {
                    Some(id) if id.parse::<Guid>().is_ok() => Ok(()),
                    _ => Err(WebApiError::InvalidInput(format!(
                        "row {index} has no primary key `{primary}`: UpdateMultiple needs the id of each record it changes"
                    ))),
                }
            })
            .await?;
        self.bulk_action(entity_set, "UpdateMultiple", targets)
            .await?;
        Ok(())
    }

    /// Creates or updates rows of one table in one request (`UpsertMultiple`), each found by
    /// the alternate key made of the columns `key` (such as `["accountnumber"]`): their
    /// values move from the row into its `@odata.id`, as Dataverse requires. With an empty
    /// `key`, rows are found by their primary key, and rows without one are created.
    ///
    /// Sending the same rows again leaves the same records, so an upsert is the safe way to
    /// resend a load whose outcome is unknown.
    ///
    /// # Errors
    ///
    /// [`WebApiError::InvalidInput`] for a row missing a key column or with a key value that
    /// is not text, a number or a boolean; else [`WebApiError`] as Dataverse answered
    /// (nothing written).
    pub async fn upsert_multiple(
        &self,
        entity_set: &str,
        key: &[&str],
        rows: &[Value],
    ) -> Result<(), WebApiError> {
        let targets = self
            .targets(entity_set, rows, |index, row| {
                if key.is_empty() {
                    return Ok(());
                }
                let mut columns = Vec::with_capacity(key.len());
                for column in key {
                    let value = row.remove(*column).ok_or_else(|| {
                        WebApiError::InvalidInput(format!(
                            "row {index} has no value for the key column `{column}`"
                        ))
                    })?;
                    columns.push(((*column).to_owned(), key_literal(index, column, &value)?));
                }
                let reference =
                    format!("{entity_set}{}", RecordKey::Alternate(columns).to_segment());
                row.insert("@odata.id".to_owned(), Value::String(reference));
                Ok(())
            })
            .await?;
        self.bulk_action(entity_set, "UpsertMultiple", targets)
            .await?;
        Ok(())
    }

    /// The rows as targets: objects with the table's `@odata.type`, after `shape` checked or
    /// changed each (with its index).
    async fn targets(
        &self,
        entity_set: &str,
        rows: &[Value],
        mut shape: impl FnMut(usize, &mut Map<String, Value>) -> Result<(), WebApiError>,
    ) -> Result<Vec<Value>, WebApiError> {
        if rows.len() > MAX_BULK_ROWS {
            return Err(WebApiError::InvalidInput(format!(
                "{} rows in one bulk request; send at most {MAX_BULK_ROWS} at a time",
                rows.len()
            )));
        }
        let table = self.table_for_entity_set(entity_set).await?;
        let odata_type = format!("{NAMESPACE}.{}", table.logical_name);
        rows.iter()
            .enumerate()
            .map(|(index, row)| {
                let Value::Object(row) = row else {
                    return Err(WebApiError::InvalidInput(format!(
                        "row {index} is not a JSON object"
                    )));
                };
                let mut target = row.clone();
                shape(index, &mut target)?;
                target.insert("@odata.type".to_owned(), Value::String(odata_type.clone()));
                Ok(Value::Object(target))
            })
            .collect()
    }

    /// `POST {set}/Microsoft.Dynamics.CRM.{action}` with `{"Targets": targets}`.
    async fn bulk_action(
        &self,
        entity_set: &str,
        action: &str,
        targets: Vec<Value>,
    ) -> Result<Option<Value>, WebApiError> {
        if targets.is_empty() {
            // Nothing to send; Dataverse would refuse an empty Targets anyway.
            return Ok(Some(serde_json::json!({"Ids": []})));
        }
        let path = format!("{entity_set}/{NAMESPACE}.{action}");
        let body = serde_json::json!({ "Targets": targets });
        let request =
            Prepared::new(Method::POST, self.url(&path)?, Replay::Unsafe).json_body(&body);
        let answer = self.execute(request).await?;
        if answer.body.is_empty() {
            Ok(None)
        } else {
            answer.json().map(Some)
        }
    }
}

/// A key column's JSON value as the literal of an `@odata.id` key.
pub(crate) fn key_literal(
    index: usize,
    column: &str,
    value: &Value,
) -> Result<Literal, WebApiError> {
    match value {
        Value::String(text) => Ok(Literal::String(text.clone())),
        Value::Bool(flag) => Ok(Literal::Bool(*flag)),
        Value::Number(number) => Ok(number.as_i64().map_or_else(
            || Literal::Decimal(number.as_f64().unwrap_or_default()),
            Literal::Int,
        )),
        _ => Err(WebApiError::InvalidInput(format!(
            "row {index}: the key column `{column}` is {value}; a key value is text, a number or a boolean"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_values_become_odata_literals() {
        assert_eq!(
            key_literal(0, "accountnumber", &json!("A'1")).unwrap(),
            Literal::String("A'1".into())
        );
        assert_eq!(key_literal(0, "n", &json!(7)).unwrap(), Literal::Int(7));
        assert!(key_literal(3, "n", &json!(null)).is_err());
        assert!(key_literal(3, "n", &json!({"a": 1})).is_err());
    }
}
