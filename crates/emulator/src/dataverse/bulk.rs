//! Bulk operations: `CreateMultiple`, `UpdateMultiple` and `UpsertMultiple`, actions bound to
//! an entity set (`POST /accounts/Microsoft.Dynamics.CRM.CreateMultiple` with `Targets`, each
//! carrying `@odata.type`), all or nothing as on a standard table (an SQLite savepoint around
//! the whole request); and `BulkDelete`, an asynchronous job: the request answers with the
//! `JobId` of an `asyncoperation` row (Ready / Waiting For Resources), and the job runs after
//! the response, in chunks that let other requests in between, to Completed / Succeeded (or
//! Failed), which a client polls at `asyncoperations(<JobId>)`.

use axum::http::StatusCode;
use rusqlite::types::Value as Sql;
use serde_json::{Map, Value, json};

use super::errors::{ApiError, ApiResult};
use super::odata::filter::{
    Expr, Func, Literal, Op, normalize_datetime, parse_guid, too_deep, too_many_terms,
};
use super::odata::path::{self, Key};
use super::odata::query::Plan;
use super::odata::{MAX_FILTER_DEPTH, MAX_FILTER_TERMS, MAX_IN_VALUES};
use super::org::Access;
use super::records::{insert_at_key, insert_record, update_record};
use super::request::{Call, Ctx};
use super::response::{DvResponse, Ordered};
use super::schema::{Kind, Schema, Table};
use super::store::{Db, format_time, now_text};

/// The most `Targets` one `*Multiple` request may carry. Dataverse documents no cap for
/// standard tables (it suggests about 1,000 per request); the emulator bounds the work of one
/// request here.
pub(crate) const MAX_TARGETS: usize = 10_000;

/// The most queries one `BulkDelete` may carry.
pub(crate) const MAX_QUERIES: usize = 100;

/// How many rows a running bulk delete removes while it holds the store.
const DELETE_CHUNK: usize = 500;

const NS: &str = "Microsoft.Dynamics.CRM.";

fn payload_error(set: &str, detail: &str) -> ApiError {
    ApiError::bad_request(
        "0x80048d19",
        format!(
            "Error identified in Payload provided by the user for Entity :'{set}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : Microsoft.OData.ODataException: {detail}"
        ),
    )
}

/// Runs `work` inside a savepoint: all of it, or none of it.
fn atomically<T>(db: &mut Db, work: impl FnOnce(&mut Db) -> ApiResult<T>) -> ApiResult<T> {
    db.conn.execute_batch("SAVEPOINT d365_bulk")?;
    match work(db) {
        Ok(value) => {
            db.conn.execute_batch("RELEASE d365_bulk")?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = db
                .conn
                .execute_batch("ROLLBACK TO d365_bulk; RELEASE d365_bulk")
            {
                tracing::error!(%rollback, "rolling back a bulk operation failed");
            }
            Err(err)
        }
    }
}

/// The `Targets` of a `*Multiple` body: objects of this table, each with `@odata.type`.
fn targets(call: &Call<'_>, table: &Table) -> ApiResult<Vec<Map<String, Value>>> {
    let set = &table.entity_set;
    let body = call.request.json_object()?;
    let Some(Value::Array(targets)) = body.get("Targets") else {
        return Err(payload_error(
            set,
            "The parameter 'Targets' in the request payload is not a valid parameter for the operation, or is missing: send {\"Targets\": [ … ]}.",
        ));
    };
    if targets.is_empty() {
        return Err(ApiError::bad_request(
            "0x80040203",
            "Targets must contain at least one record.",
        ));
    }
    if targets.len() > MAX_TARGETS {
        return Err(ApiError::bad_request(
            "0x80040203",
            format!(
                "The request has {} Targets; the d365 emulator takes at most {MAX_TARGETS} in one request. Send them in several requests (Dataverse recommends about 1,000 each).",
                targets.len()
            ),
        ));
    }
    let expected = format!("{NS}{}", table.logical_name);
    let mut out = Vec::with_capacity(targets.len());
    for (index, target) in targets.iter().enumerate() {
        let Value::Object(target) = target else {
            return Err(payload_error(
                set,
                &format!("Target {index} is not an object."),
            ));
        };
        match target.get("@odata.type").and_then(Value::as_str) {
            Some(kind) if kind.trim_start_matches('#') == expected => {}
            Some(kind) => {
                return Err(payload_error(
                    set,
                    &format!(
                        "Target {index} has '@odata.type' '{kind}'; every target of a request to '{set}' must be '{expected}' (one table per request)."
                    ),
                ));
            }
            None => {
                return Err(payload_error(
                    set,
                    &format!(
                        "Target {index} has no '@odata.type'; each target needs \"@odata.type\": \"{expected}\"."
                    ),
                ));
            }
        }
        out.push(target.clone());
    }
    Ok(out)
}

/// `POST /{set}/Microsoft.Dynamics.CRM.{action}`.
pub(crate) fn multiple(
    call: &Call<'_>,
    db: &mut Db,
    table: &Table,
    action: &str,
) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    if super::schema::BULK_MESSAGES.contains(&action)
        && !table.bulk_messages.iter().any(|message| message == action)
    {
        // The service's answer for a message the table has no processor for (our reading:
        // the text Dataverse gives; its code is the generic one).
        return Err(ApiError::bad_request(
            "0x80040216",
            format!(
                "The '{action}' method does not support entities of type '{}'. MessageProcessorCache returned MessageProcessor.Empty.",
                table.logical_name
            ),
        ));
    }
    match action {
        "CreateMultiple" => {
            ctx.caller.require(table, Access::Create)?;
            let targets = targets(call, table)?;
            let ids = atomically(db, |db| {
                targets
                    .iter()
                    .map(|target| insert_record(ctx, db, table, target, Vec::new()))
                    .collect::<ApiResult<Vec<_>>>()
            })?;
            let mut body = Ordered::default();
            body.push(
                "@odata.context",
                Value::String(format!(
                    "{}$metadata#{NS}CreateMultipleResponse",
                    ctx.api_root
                )),
            );
            body.push("Ids", json!(ids));
            Ok(DvResponse::json(StatusCode::OK, &body))
        }
        "UpdateMultiple" => {
            ctx.caller.require(table, Access::Write)?;
            let targets = targets(call, table)?;
            atomically(db, |db| {
                for target in &targets {
                    let id = target
                        .get(&table.primary_id)
                        .and_then(Value::as_str)
                        .and_then(parse_guid)
                        .ok_or_else(|| {
                            ApiError::bad_request(
                                "0x80040203",
                                format!(
                                    "Each target of UpdateMultiple needs its primary key '{}'.",
                                    table.primary_id
                                ),
                            )
                        })?;
                    if !db.exists(table, &id)? {
                        return Err(ApiError::record_not_found(&table.logical_name, &id));
                    }
                    update_record(ctx, db, table, &id, target)?;
                }
                Ok(())
            })?;
            Ok(DvResponse::empty(StatusCode::NO_CONTENT))
        }
        "UpsertMultiple" => {
            ctx.caller.require(table, Access::Create)?;
            ctx.caller.require(table, Access::Write)?;
            let targets = targets(call, table)?;
            atomically(db, |db| {
                for target in &targets {
                    upsert_one(ctx, db, table, target)?;
                }
                Ok(())
            })?;
            Ok(DvResponse::empty(StatusCode::NO_CONTENT))
        }
        "DeleteMultiple" => Err(ApiError::bad_request(
            "0x80040216",
            "DeleteMultiple has not yet been implemented.",
        )),
        _ => Err(ApiError::segment_not_found(&format!("{NS}{action}"))),
    }
}

/// One target of `UpsertMultiple`: by its relative `@odata.id` (a key), else by the primary
/// key in the body, else a create.
fn upsert_one(
    ctx: &Ctx<'_>,
    db: &mut Db,
    table: &Table,
    target: &Map<String, Value>,
) -> ApiResult<()> {
    let key = match target.get("@odata.id").and_then(Value::as_str) {
        Some(reference) => {
            if reference.contains("://") || reference.starts_with('/') {
                return Err(payload_error(
                    &table.entity_set,
                    &format!(
                        "The '@odata.id' '{reference}' must be relative to the service root, such as \"{}(<key>)\".",
                        table.entity_set
                    ),
                ));
            }
            let segments = path::segments(reference);
            let [segment] = segments.as_slice() else {
                return Err(payload_error(
                    &table.entity_set,
                    &format!("'{reference}' is not a record reference."),
                ));
            };
            if segment.name != table.entity_set {
                return Err(payload_error(
                    &table.entity_set,
                    &format!("'{reference}' is not a record of '{}'.", table.entity_set),
                ));
            }
            let text = segment.key.as_deref().ok_or_else(|| {
                payload_error(&table.entity_set, &format!("'{reference}' has no key."))
            })?;
            Some(path::resolve_key(db, table, text)?)
        }
        None => target
            .get(&table.primary_id)
            .and_then(Value::as_str)
            .and_then(parse_guid)
            .map(|id| Key {
                id: Some(id),
                values: Vec::new(),
            }),
    };
    let Some(key) = key else {
        insert_record(ctx, db, table, target, Vec::new())?;
        return Ok(());
    };
    match &key.id {
        Some(id) if db.exists(table, id)? => update_record(ctx, db, table, id, target),
        _ => {
            // Dataverse's create path refuses a key column given both in @odata.id and in
            // the body, with its generic error.
            if key
                .values
                .iter()
                .any(|(column, _)| target.contains_key(column))
            {
                return Err(ApiError::bad_request(
                    "0x80040216",
                    "An unexpected error occurred.",
                ));
            }
            insert_at_key(ctx, db, table, &key, target).map(|_| ())
        }
    }
}

// ---------------------------------------------------------------------------------------
// BulkDelete.

/// One query of a bulk delete: the table and its condition.
#[derive(Debug, Clone)]
pub(crate) struct DeleteQuery {
    table: String,
    condition: Option<Expr>,
}

/// A submitted bulk delete, run after the response that created it.
#[derive(Debug, Clone)]
pub(crate) struct BulkDeleteJob {
    pub(crate) job_id: String,
    queries: Vec<DeleteQuery>,
    /// Rows created after the job was submitted are kept.
    submitted: String,
}

/// `POST /BulkDelete`.
pub(crate) fn bulk_delete(call: &Call<'_>, db: &mut Db) -> ApiResult<DvResponse> {
    let ctx = call.ctx;
    let body = call.request.json_object()?;
    let missing = |name: &str| {
        ApiError::bad_request(
            "0x80040203",
            format!("BulkDelete needs the parameter '{name}'."),
        )
    };
    let Some(Value::Array(query_set)) = body.get("QuerySet") else {
        return Err(missing("QuerySet"));
    };
    if query_set.is_empty() || query_set.len() > MAX_QUERIES {
        return Err(ApiError::bad_request(
            "0x80040203",
            format!("QuerySet must hold between 1 and {MAX_QUERIES} queries."),
        ));
    }
    let job_name = body
        .get("JobName")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("JobName"))?
        .to_owned();
    if !body
        .get("SendEmailNotification")
        .is_some_and(Value::is_boolean)
    {
        return Err(missing("SendEmailNotification"));
    }
    for list in ["ToRecipients", "CCRecipients"] {
        if !body.get(list).is_some_and(Value::is_array) {
            return Err(missing(list));
        }
    }
    match body.get("RecurrencePattern").and_then(Value::as_str) {
        Some("") => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "0x80040203",
                "The d365 emulator runs bulk deletes once: send \"RecurrencePattern\": \"\".",
            ));
        }
        None => return Err(missing("RecurrencePattern")),
    }
    if !body.get("StartDateTime").is_some_and(Value::is_string) {
        return Err(missing("StartDateTime"));
    }
    let mut queries = Vec::new();
    for query in query_set {
        let query = read_query(ctx.schema, query)?;
        let table = ctx
            .schema
            .by_name(&query.table)
            .ok_or_else(|| unknown_entity(&query.table))?;
        ctx.caller.require(table, Access::Delete)?;
        // Type-check the condition now, so the job cannot fail on it later.
        if let Some(condition) = &query.condition {
            super::odata::filter::to_sql(condition, table, &mut Vec::new())?;
        }
        queries.push(query);
    }
    let jobs = ctx
        .schema
        .by_name("asyncoperation")
        .ok_or_else(|| ApiError::internal("the asyncoperation table is missing"))?;
    let mut record = Map::new();
    record.insert("name".into(), json!(job_name));
    record.insert("operationtype".into(), json!(13));
    let job_id = insert_record(ctx, db, jobs, &record, Vec::new())?;
    db.pending_jobs.push(BulkDeleteJob {
        job_id: job_id.clone(),
        queries,
        submitted: now_text(),
    });
    let mut response = Ordered::default();
    response.push(
        "@odata.context",
        Value::String(format!("{}$metadata#{NS}BulkDeleteResponse", ctx.api_root)),
    );
    response.push("JobId", Value::String(job_id));
    Ok(DvResponse::json(StatusCode::OK, &response))
}

fn unknown_entity(name: &str) -> ApiError {
    ApiError::bad_request(
        "0x80041102",
        format!(
            "The entity with a name = '{name}' with namemapping = 'Logical' was not found in the MetadataCache."
        ),
    )
}

fn bad_query(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("0x80040203", detail)
}

/// A `Microsoft.Dynamics.CRM.QueryExpression` of a `QuerySet`.
fn read_query(schema: &Schema, query: &Value) -> ApiResult<DeleteQuery> {
    let entity = query
        .get("EntityName")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_query("Each query of a QuerySet needs 'EntityName'."))?;
    let table = schema
        .by_name(entity)
        .ok_or_else(|| unknown_entity(entity))?;
    let mut terms = 0;
    let condition = match query.get("Criteria") {
        None | Some(Value::Null) => None,
        Some(criteria) => read_filter(table, criteria, 1, &mut terms)?,
    };
    Ok(DeleteQuery {
        table: table.logical_name.clone(),
        condition,
    })
}

/// A `FilterExpression`: `FilterOperator`, `Conditions`, nested `Filters`.
fn read_filter(
    table: &Table,
    filter: &Value,
    depth: usize,
    terms: &mut usize,
) -> ApiResult<Option<Expr>> {
    if depth > MAX_FILTER_DEPTH {
        return Err(too_deep("BulkDelete criteria"));
    }
    let or = match filter.get("FilterOperator").and_then(Value::as_str) {
        None | Some("And" | "and" | "0") => false,
        Some("Or" | "or" | "1") => true,
        Some(other) => {
            return Err(bad_query(format!(
                "'{other}' is not a FilterOperator (And, Or)."
            )));
        }
    };
    let mut items = Vec::new();
    for condition in filter
        .get("Conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        *terms += 1;
        if *terms > MAX_FILTER_TERMS {
            return Err(too_many_terms("BulkDelete criteria"));
        }
        items.push(read_condition(table, condition)?);
    }
    for nested in filter
        .get("Filters")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(expr) = read_filter(table, nested, depth + 1, terms)? {
            items.push(expr);
        }
    }
    Ok(match items.len() {
        0 => None,
        1 => items.pop(),
        _ if or => Some(Expr::Or(items)),
        _ => Some(Expr::And(items)),
    })
}

/// A `ConditionExpression`: `AttributeName`, `Operator`, `Values` (plain values or
/// `{"Value": …, "Type": "System.Guid"}`).
fn read_condition(table: &Table, condition: &Value) -> ApiResult<Expr> {
    let attribute = condition
        .get("AttributeName")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_query("Each condition needs 'AttributeName'."))?;
    let column = table
        .column(attribute)
        .ok_or_else(|| ApiError::unknown_property(attribute, &table.logical_name))?;
    let property = Table::property_name(column);
    let operator = condition
        .get("Operator")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_query("Each condition needs 'Operator'."))?;
    let values: Vec<Literal> = condition
        .get("Values")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|v| literal(&column.kind, v.get("Value").unwrap_or(v)))
        .collect::<ApiResult<_>>()?;
    if values.len() > MAX_IN_VALUES {
        return Err(bad_query(format!(
            "A condition may hold at most {MAX_IN_VALUES} values."
        )));
    }
    let one = || {
        values
            .first()
            .cloned()
            .ok_or_else(|| bad_query(format!("The operator '{operator}' needs one value.")))
    };
    let compare = |op| -> ApiResult<Expr> {
        Ok(Expr::Compare {
            property: property.clone(),
            op,
            value: one()?,
        })
    };
    let text = || match one()? {
        Literal::String(text) => Ok(text),
        _ => Err(bad_query(format!(
            "The operator '{operator}' needs a string value."
        ))),
    };
    Ok(match operator {
        "Equal" => compare(Op::Eq)?,
        "NotEqual" => compare(Op::Ne)?,
        "GreaterThan" => compare(Op::Gt)?,
        "GreaterEqual" => compare(Op::Ge)?,
        "LessThan" => compare(Op::Lt)?,
        "LessEqual" => compare(Op::Le)?,
        "Null" => Expr::Compare {
            property,
            op: Op::Eq,
            value: Literal::Null,
        },
        "NotNull" => Expr::Compare {
            property,
            op: Op::Ne,
            value: Literal::Null,
        },
        "In" => Expr::In { property, values },
        "NotIn" => Expr::Not(Box::new(Expr::In { property, values })),
        "Like" => Expr::Like {
            property,
            pattern: text()?,
        },
        "NotLike" => Expr::Not(Box::new(Expr::Like {
            property,
            pattern: text()?,
        })),
        "BeginsWith" => Expr::Func {
            func: Func::StartsWith,
            property,
            value: text()?,
        },
        "EndsWith" => Expr::Func {
            func: Func::EndsWith,
            property,
            value: text()?,
        },
        other => {
            return Err(bad_query(format!(
                "The condition operator '{other}' is not supported by the d365 emulator's BulkDelete (Equal, NotEqual, GreaterThan, GreaterEqual, LessThan, LessEqual, Null, NotNull, In, NotIn, Like, NotLike, BeginsWith, EndsWith)."
            )));
        }
    })
}

/// A condition value as a literal of the column's type.
fn literal(kind: &Kind, value: &Value) -> ApiResult<Literal> {
    let bad = || bad_query(format!("The value {value} does not fit the column's type."));
    Ok(match (kind, value) {
        (_, Value::Null) => Literal::Null,
        (Kind::PrimaryId | Kind::Guid | Kind::Lookup(_), Value::String(s)) => {
            Literal::Guid(parse_guid(s).ok_or_else(bad)?)
        }
        (Kind::DateTime, Value::String(s)) => {
            Literal::DateTime(normalize_datetime(s).ok_or_else(bad)?)
        }
        (Kind::Bool, Value::Bool(b)) => Literal::Bool(*b),
        (_, Value::String(s)) => Literal::String(s.clone()),
        (_, Value::Number(n)) => match n.as_i64() {
            Some(i) => Literal::Int(i),
            None => Literal::Decimal(n.as_f64().ok_or_else(bad)?),
        },
        (_, Value::Bool(b)) => Literal::Bool(*b),
        _ => return Err(bad()),
    })
}

/// Where a running job is.
#[derive(Debug)]
pub(crate) enum Progress {
    /// More rows may match: run another chunk.
    More,
    /// Done (or the job was rolled back with its request and no longer exists).
    Done,
}

fn set_job_state(
    db: &mut Db,
    schema: &Schema,
    job_id: &str,
    values: Vec<(String, Sql)>,
) -> ApiResult<()> {
    let jobs = schema
        .by_name("asyncoperation")
        .ok_or_else(|| ApiError::internal("the asyncoperation table is missing"))?;
    db.update(jobs, job_id, &values)?;
    Ok(())
}

/// Runs one chunk of a bulk delete: the first call marks the job In Progress; the last marks
/// it Succeeded (or Failed, with the error as its message).
pub(crate) fn run_chunk(
    db: &mut Db,
    schema: &Schema,
    job: &BulkDeleteJob,
    started: bool,
) -> Progress {
    match chunk(db, schema, job, started) {
        Ok(progress) => progress,
        Err(err) => {
            let now = Sql::Text(now_text());
            let failed = set_job_state(
                db,
                schema,
                &job.job_id,
                vec![
                    ("statecode".into(), Sql::Integer(3)),
                    ("statuscode".into(), Sql::Integer(31)),
                    ("message".into(), Sql::Text(err.message.clone())),
                    ("friendlymessage".into(), Sql::Text(err.message)),
                    ("completedon".into(), now),
                ],
            );
            if let Err(err) = failed {
                tracing::error!(message = %err.message, "recording a failed bulk delete failed");
            }
            Progress::Done
        }
    }
}

fn chunk(db: &mut Db, schema: &Schema, job: &BulkDeleteJob, started: bool) -> ApiResult<Progress> {
    let jobs = schema
        .by_name("asyncoperation")
        .ok_or_else(|| ApiError::internal("the asyncoperation table is missing"))?;
    if !db.exists(jobs, &job.job_id)? {
        return Ok(Progress::Done);
    }
    if !started {
        set_job_state(
            db,
            schema,
            &job.job_id,
            vec![
                ("statecode".into(), Sql::Integer(2)),
                ("statuscode".into(), Sql::Integer(20)),
                ("startedon".into(), Sql::Text(now_text())),
            ],
        )?;
    }
    let mut budget = DELETE_CHUNK;
    for query in &job.queries {
        let table = schema
            .by_name(&query.table)
            .ok_or_else(|| unknown_entity(&query.table))?;
        let created_before = Expr::Compare {
            property: "createdon".into(),
            op: Op::Le,
            value: Literal::DateTime(job.submitted.clone()),
        };
        let condition = match &query.condition {
            Some(condition) => Expr::And(vec![condition.clone(), created_before]),
            None => created_before,
        };
        let plan = Plan {
            table,
            condition: Some(condition),
            restrict: Vec::new(),
            order: Vec::new(),
            limit: budget,
            cursor: None,
            offset: 0,
            names: false,
        };
        let page = plan.run(db, schema)?;
        for row in &page.rows {
            if let Some(Sql::Text(id)) = row.get(table, &table.primary_id) {
                db.delete(table, id)?;
                budget -= 1;
            }
        }
        if page.more || budget == 0 {
            return Ok(Progress::More);
        }
    }
    set_job_state(
        db,
        schema,
        &job.job_id,
        vec![
            ("statecode".into(), Sql::Integer(3)),
            ("statuscode".into(), Sql::Integer(30)),
            (
                "completedon".into(),
                Sql::Text(format_time(time::OffsetDateTime::now_utc())),
            ),
        ],
    )?;
    Ok(Progress::Done)
}
