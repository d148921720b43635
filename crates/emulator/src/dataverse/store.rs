//! The SQLite store: one SQL table per Dataverse table (typed columns, a unique index per
//! alternate key, an index per lookup), plus the organization's security roles. In memory by
//! default, or a file that survives a restart. Only the thread holding the lock touches the
//! connection; callers reach it through `spawn_blocking`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params_from_iter};

use super::schema::{Kind, Schema, Table};
use crate::error::EmulatorError;

/// Quotes an SQL identifier. Names come from the validated schema (lower-case letters,
/// digits, `_`), so quoting is only a guard against keywords.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

#[derive(Debug)]
pub(crate) struct Store {
    db: Mutex<Db>,
}

#[derive(Debug)]
pub(crate) struct Db {
    pub(crate) conn: Connection,
    version: i64,
    /// Bulk deletes submitted by the request being answered, run after its response.
    pub(crate) pending_jobs: Vec<super::bulk::BulkDeleteJob>,
}

fn store_error(err: rusqlite::Error) -> EmulatorError {
    EmulatorError::Store(err.to_string())
}

impl Store {
    pub(crate) fn open(path: Option<&Path>, schema: &Schema) -> Result<Self, EmulatorError> {
        let conn = match path {
            Some(path) => Connection::open(path),
            None => Connection::open_in_memory(),
        }
        .map_err(store_error)?;
        // Inserts and updates of one shape (a bulk request's rows) reuse one prepared
        // statement: preparing each took as long as the insert itself.
        conn.set_prepared_statement_cache_capacity(128);
        if path.is_some() {
            conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                .map_err(store_error)?;
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS _d365_role (
                 roleid TEXT PRIMARY KEY NOT NULL,
                 name TEXT NOT NULL UNIQUE COLLATE NOCASE,
                 privileges TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS _d365_userrole (
                 systemuserid TEXT NOT NULL,
                 roleid TEXT NOT NULL,
                 PRIMARY KEY (systemuserid, roleid));",
        )
        .map_err(store_error)?;
        let mut version = 0;
        for table in &schema.tables {
            create_table(&conn, table).map_err(store_error)?;
            let max: Option<i64> = conn
                .query_row(
                    &format!(
                        "SELECT MAX(versionnumber) FROM {}",
                        ident(&table.logical_name)
                    ),
                    [],
                    |row| row.get(0),
                )
                .map_err(store_error)?;
            version = version.max(max.unwrap_or(0));
        }
        Ok(Self {
            db: Mutex::new(Db {
                conn,
                version,
                pending_jobs: Vec::new(),
            }),
        })
    }

    // A panic in one request leaves SQLite consistent (statements are atomic), so a poisoned
    // lock is not a reason to refuse every later request.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn create_table(conn: &Connection, table: &Table) -> rusqlite::Result<()> {
    let name = ident(&table.logical_name);
    let mut columns = Vec::new();
    for column in &table.columns {
        let sql = match &column.kind {
            Kind::PrimaryId => format!("{} TEXT PRIMARY KEY NOT NULL", ident(&column.name)),
            kind => format!("{} {}", ident(&column.name), kind_sql(kind)),
        };
        columns.push(sql);
        if matches!(column.kind, Kind::Lookup(_)) {
            columns.push(format!("{} TEXT", ident(&target_column(&column.name))));
        }
    }
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {name} ({})",
        columns.join(", ")
    ))?;
    // A data file written with an older schema file gets the new columns.
    let existing: Vec<String> = conn
        .prepare(&format!("PRAGMA table_info({name})"))?
        .query_map([], |row| row.get::<_, String>(1))?
        .collect::<Result<_, _>>()?;
    for column in &table.columns {
        let mut wanted = vec![(column.name.clone(), kind_sql(&column.kind))];
        if matches!(column.kind, Kind::Lookup(_)) {
            wanted.push((target_column(&column.name), "TEXT"));
        }
        for (column_name, sql_type) in wanted {
            if !existing.contains(&column_name) {
                conn.execute_batch(&format!(
                    "ALTER TABLE {name} ADD COLUMN {} {sql_type}",
                    ident(&column_name)
                ))?;
            }
        }
        if matches!(column.kind, Kind::Lookup(_)) {
            conn.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS {} ON {name} ({})",
                ident(&format!("ix_{}_{}", table.logical_name, column.name)),
                ident(&column.name)
            ))?;
        }
    }
    for key in &table.keys {
        let columns: Vec<String> = key.columns.iter().map(|c| ident(c)).collect();
        conn.execute_batch(&format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {name} ({})",
            ident(&format!("ak_{}_{}", table.logical_name, key.name)),
            columns.join(", ")
        ))?;
    }
    Ok(())
}

fn kind_sql(kind: &Kind) -> &'static str {
    match kind {
        Kind::String { .. } => "TEXT COLLATE NOCASE",
        Kind::PrimaryId | Kind::Guid | Kind::Lookup(_) | Kind::DateTime => "TEXT",
        Kind::Int | Kind::BigInt | Kind::Bool | Kind::OptionSet(_) => "INTEGER",
        Kind::Decimal | Kind::Money => "REAL",
    }
}

/// The hidden column holding the logical name of a lookup's target table.
pub(crate) fn target_column(column: &str) -> String {
    format!("{column}__target")
}

/// `2024-01-02T03:04:05Z`: the one stored form of a date-time, so text order is time order.
pub(crate) fn now_text() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

pub(crate) fn format_time(value: time::OffsetDateTime) -> String {
    let value = value.to_offset(time::UtcOffset::UTC);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    value.format(format).unwrap_or_default()
}

/// A row as stored: values in the table's column order, then each lookup's target.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) values: Vec<Sql>,
    pub(crate) targets: Vec<Option<String>>,
    /// Primary names of lookup targets, when asked for (FormattedValue).
    pub(crate) lookup_names: Vec<Option<String>>,
}

impl Row {
    pub(crate) fn get(&self, table: &Table, column: &str) -> Option<&Sql> {
        table
            .columns
            .iter()
            .position(|c| c.name == column)
            .map(|i| &self.values[i])
    }

    pub(crate) fn version(&self, table: &Table) -> i64 {
        match self.get(table, "versionnumber") {
            Some(Sql::Integer(v)) => *v,
            _ => 0,
        }
    }
}

/// `SELECT` list for a whole row: the columns, then lookup targets, then (optionally) the
/// primary name of each lookup's target.
pub(crate) fn select_list(schema: &Schema, table: &Table, alias: &str, names: bool) -> String {
    let mut list: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("{alias}.{}", ident(&c.name)))
        .collect();
    for column in &table.columns {
        if let Kind::Lookup(_) = column.kind {
            list.push(format!("{alias}.{}", ident(&target_column(&column.name))));
        }
    }
    if names {
        for column in &table.columns {
            if let Kind::Lookup(targets) = &column.kind {
                let mut cases = Vec::new();
                for target in targets {
                    if let Some(t) = schema.by_name(&target.table) {
                        cases.push(format!(
                            "WHEN '{}' THEN (SELECT x.{} FROM {} x WHERE x.{} = {alias}.{})",
                            t.logical_name,
                            ident(&t.primary_name),
                            ident(&t.logical_name),
                            ident(&t.primary_id),
                            ident(&column.name)
                        ));
                    }
                }
                list.push(format!(
                    "CASE {alias}.{} {} END",
                    ident(&target_column(&column.name)),
                    cases.join(" ")
                ));
            }
        }
    }
    list.join(", ")
}

pub(crate) fn read_row(
    table: &Table,
    row: &rusqlite::Row<'_>,
    names: bool,
) -> rusqlite::Result<Row> {
    let n = table.columns.len();
    let lookups = table
        .columns
        .iter()
        .filter(|c| matches!(c.kind, Kind::Lookup(_)))
        .count();
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        values.push(row.get::<_, Sql>(i)?);
    }
    let mut targets = Vec::with_capacity(lookups);
    for i in 0..lookups {
        targets.push(row.get::<_, Option<String>>(n + i)?);
    }
    let mut lookup_names = Vec::new();
    if names {
        for i in 0..lookups {
            lookup_names.push(row.get::<_, Option<String>>(n + lookups + i)?);
        }
    }
    Ok(Row {
        values,
        targets,
        lookup_names,
    })
}

impl Db {
    /// Reserves `count` consecutive version numbers and returns the first.
    pub(crate) fn reserve_versions(&mut self, count: u64) -> i64 {
        let first = self.version + 1;
        self.version += i64::try_from(count).unwrap_or(i64::MAX / 2);
        first
    }

    pub(crate) fn next_version(&mut self) -> i64 {
        self.version += 1;
        self.version
    }

    pub(crate) fn fetch(
        &self,
        schema: &Schema,
        table: &Table,
        id: &str,
        names: bool,
    ) -> rusqlite::Result<Option<Row>> {
        let sql = format!(
            "SELECT {} FROM {} t WHERE t.{} = ?1",
            select_list(schema, table, "t", names),
            ident(&table.logical_name),
            ident(&table.primary_id)
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let mut rows = statement.query([id])?;
        match rows.next()? {
            Some(row) => read_row(table, row, names).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn exists(&self, table: &Table, id: &str) -> rusqlite::Result<bool> {
        let sql = format!(
            "SELECT 1 FROM {} WHERE {} = ?1",
            ident(&table.logical_name),
            ident(&table.primary_id)
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        statement.exists([id])
    }

    /// The id of the row whose key columns have these values.
    pub(crate) fn find_by_key(
        &self,
        table: &Table,
        key: &[(String, Sql)],
    ) -> rusqlite::Result<Option<String>> {
        let conditions: Vec<String> = key
            .iter()
            .enumerate()
            .map(|(i, (column, _))| format!("{} = ?{}", ident(column), i + 1))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            ident(&table.primary_id),
            ident(&table.logical_name),
            conditions.join(" AND ")
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let mut rows = statement.query(params_from_iter(key.iter().map(|(_, v)| v)))?;
        match rows.next()? {
            Some(row) => row.get(0).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn insert(
        &mut self,
        table: &Table,
        id: &str,
        values: &[(String, Sql)],
    ) -> rusqlite::Result<()> {
        let now = now_text();
        let version = self.next_version();
        let mut columns = vec![
            ident(&table.primary_id),
            ident("createdon"),
            ident("modifiedon"),
            ident("versionnumber"),
        ];
        let mut params = vec![
            Sql::Text(id.to_owned()),
            Sql::Text(now.clone()),
            Sql::Text(now),
            Sql::Integer(version),
        ];
        for (column, value) in values {
            columns.push(ident(column));
            params.push(value.clone());
        }
        let placeholders: Vec<String> = (1..=params.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            ident(&table.logical_name),
            columns.join(", "),
            placeholders.join(", ")
        );
        self.conn
            .prepare_cached(&sql)?
            .execute(params_from_iter(params.iter()))?;
        Ok(())
    }

    pub(crate) fn update(
        &mut self,
        table: &Table,
        id: &str,
        values: &[(String, Sql)],
    ) -> rusqlite::Result<()> {
        let version = self.next_version();
        let mut sets = vec![
            format!("{} = ?1", ident("modifiedon")),
            format!("{} = ?2", ident("versionnumber")),
        ];
        let mut params = vec![Sql::Text(now_text()), Sql::Integer(version)];
        for (column, value) in values {
            params.push(value.clone());
            sets.push(format!("{} = ?{}", ident(column), params.len()));
        }
        params.push(Sql::Text(id.to_owned()));
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = ?{}",
            ident(&table.logical_name),
            sets.join(", "),
            ident(&table.primary_id),
            params.len()
        );
        self.conn
            .prepare_cached(&sql)?
            .execute(params_from_iter(params.iter()))?;
        Ok(())
    }

    /// Deletes a row and clears the lookups that pointed at it (Dataverse's "remove link").
    pub(crate) fn delete(&mut self, table: &Table, id: &str) -> rusqlite::Result<bool> {
        let deleted = self.conn.execute(
            &format!(
                "DELETE FROM {} WHERE {} = ?1",
                ident(&table.logical_name),
                ident(&table.primary_id)
            ),
            [id],
        )? > 0;
        if deleted {
            for nav in &table.collections {
                let version = self.next_version();
                self.conn.execute(
                    &format!(
                        "UPDATE {t} SET {c} = NULL, {ct} = NULL, versionnumber = ?1 WHERE {c} = ?2 AND {ct} = ?3",
                        t = ident(&nav.table),
                        c = ident(&nav.column),
                        ct = ident(&target_column(&nav.column)),
                    ),
                    rusqlite::params![version, id, table.logical_name],
                )?;
            }
        }
        Ok(deleted)
    }
}
