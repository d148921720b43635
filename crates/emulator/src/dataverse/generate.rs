//! Generated rows for load tests and benchmarks: N accounts inserted in one transaction with
//! a prepared statement (a million rows take seconds, not minutes).

use rusqlite::types::Value as Sql;

use super::schema::Schema;
use super::store::{Db, ident, now_text};

/// Inserts `count` generated accounts (`name` "Generated account 0000001", `accountnumber`
/// "G0000001", …, numbered after the ones already generated) and returns how many exist now.
pub(crate) fn accounts(db: &mut Db, schema: &Schema, count: u64) -> rusqlite::Result<u64> {
    let Some(table) = schema.by_name("account") else {
        return Ok(0);
    };
    let existing: i64 = db.conn.query_row(
        "SELECT COUNT(*) FROM account WHERE accountnumber LIKE 'G%'",
        [],
        |row| row.get(0),
    )?;
    let start = u64::try_from(existing).unwrap_or(0);
    let now = now_text();
    let first_version = db.reserve_versions(count);
    let transaction = db.conn.unchecked_transaction()?;
    {
        let sql = format!(
            "INSERT INTO {} (accountid, name, accountnumber, numberofemployees, revenue, creditonhold, industrycode, statecode, statuscode, createdon, modifiedon, versionnumber) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 1, ?8, ?8, ?9)",
            ident(&table.logical_name)
        );
        let mut statement = transaction.prepare(&sql)?;
        for n in start + 1..=start + count {
            statement.execute(rusqlite::params![
                uuid::Uuid::new_v4().to_string(),
                format!("Generated account {n:07}"),
                format!("G{n:07}"),
                i64::try_from(n % 5000).unwrap_or(0),
                Sql::Real((n % 1000) as f64 * 1000.0),
                i64::from(n % 7 == 0),
                i64::try_from(n % 8 + 1).unwrap_or(1),
                now,
                first_version + i64::try_from(n - start).unwrap_or(0) - 1,
            ])?;
        }
    }
    transaction.commit()?;
    Ok(start + count)
}
