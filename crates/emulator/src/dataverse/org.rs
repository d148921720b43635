//! The organization model: one organization, its root business unit, system users
//! (application users by app id, users by Entra object id) and security roles with
//! per-table create/read/write/delete privileges. Who calls is decided here (and answered,
//! by WhoAmI): no system user → 0x80072560; a role without the privilege → 0x80040220.

use std::collections::HashMap;

use axum::http::StatusCode;
use rusqlite::OptionalExtension as _;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

use super::errors::{ApiError, ApiResult};
use super::response::{DvResponse, Ordered};
use super::schema::{Schema, Table};
use super::store::{Db, target_column};

/// Fixed ids of the organization, so docs and tests can name them.
pub(crate) mod ids {
    pub(crate) const ORGANIZATION_ID: &str = "d3650000-0e90-4000-8000-000000000001";
    pub(crate) const BUSINESS_UNIT_ID: &str = "d3650000-b0b0-4000-8000-000000000001";
    pub(crate) const SYSTEM_ADMINISTRATOR_ROLE_ID: &str = "d3650000-a01e-4000-8000-000000000001";
    pub(crate) const READ_ONLY_ROLE_ID: &str = "d3650000-a01e-4000-8000-000000000002";
    pub(crate) const SYSTEM_ADMINISTRATOR: &str = "System Administrator";
    pub(crate) const READ_ONLY: &str = "Emulator Read Only";
}

/// A table operation that needs a privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Create,
    Read,
    Write,
    Delete,
}

impl Access {
    fn letter(self) -> char {
        match self {
            Self::Create => 'c',
            Self::Read => 'r',
            Self::Write => 'w',
            Self::Delete => 'd',
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Read => "Read",
            Self::Write => "Write",
            Self::Delete => "Delete",
        }
    }
}

/// Who a token stands for.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    App { client_id: String },
    User { object_id: String },
}

/// The system user making a request, with the union of its roles' privileges.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) user_id: String,
    pub(crate) business_unit_id: String,
    pub(crate) organization_id: String,
    /// Table logical name (or `*`) → privilege letters (`crwd`).
    privileges: HashMap<String, String>,
}

impl Caller {
    pub(crate) fn require(&self, table: &Table, access: Access) -> ApiResult<()> {
        let letter = access.letter();
        let granted = [table.logical_name.as_str(), "*"].iter().any(|name| {
            self.privileges
                .get(*name)
                .is_some_and(|p| p.contains(letter))
        });
        if granted {
            Ok(())
        } else {
            Err(ApiError::privilege_denied(
                &self.user_id,
                &format!("prv{}{}", access.verb(), table.logical_name),
                &table.logical_name,
            ))
        }
    }
}

/// The WhoAmI function's answer: the caller's system user, business unit and organization.
pub(crate) fn who_am_i(caller: &Caller, api_root: &str) -> DvResponse {
    let mut body = Ordered::default();
    body.push(
        "@odata.context",
        Value::String(format!(
            "{api_root}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
        )),
    );
    body.push(
        "BusinessUnitId",
        Value::String(caller.business_unit_id.clone()),
    );
    body.push("UserId", Value::String(caller.user_id.clone()));
    body.push(
        "OrganizationId",
        Value::String(caller.organization_id.clone()),
    );
    DvResponse::json(StatusCode::OK, &body)
}

/// The version the emulated organization reports: a Dataverse online build (Web API v9.2).
pub(crate) const ONLINE_VERSION: &str = "9.2.25121.180";

/// `RetrieveVersion()`: `{"@odata.context": …, "Version": "9.2.…"}`, as Dataverse answers.
pub(crate) fn retrieve_version(api_root: &str, version: &str) -> DvResponse {
    let mut body = Ordered::default();
    body.push(
        "@odata.context",
        Value::String(format!(
            "{api_root}$metadata#Microsoft.Dynamics.CRM.RetrieveVersionResponse"
        )),
    );
    body.push("Version", Value::String(version.to_owned()));
    DvResponse::json(StatusCode::OK, &body)
}

/// A security role as stored.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) privileges: HashMap<String, String>,
}

impl Role {
    pub(crate) fn to_json(&self) -> Value {
        json!({"roleid": self.id, "name": self.name, "privileges": self.privileges})
    }
}

fn parse_privileges(text: &str) -> HashMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Finds the caller's system user; 403 0x80072560 when there is none (or it is disabled).
pub(crate) fn resolve(db: &Db, principal: &Principal) -> ApiResult<Caller> {
    let (column, value) = match principal {
        Principal::App { client_id } => ("applicationid", client_id.to_ascii_lowercase()),
        Principal::User { object_id } => (
            "azureactivedirectoryobjectid",
            object_id.to_ascii_lowercase(),
        ),
    };
    let found: Option<(String, Option<String>, Option<i64>)> = db
        .conn
        .prepare_cached(&format!(
            "SELECT systemuserid, businessunitid, isdisabled FROM systemuser WHERE {column} = ?1"
        ))?
        .query_row([value], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    let Some((user_id, business_unit, disabled)) = found else {
        return Err(ApiError::not_a_member());
    };
    if disabled == Some(1) {
        return Err(ApiError::not_a_member());
    }
    let mut privileges: HashMap<String, String> = HashMap::new();
    let mut statement = db.conn.prepare_cached(
        "SELECT r.privileges FROM _d365_userrole u JOIN _d365_role r ON r.roleid = u.roleid WHERE u.systemuserid = ?1",
    )?;
    let rows = statement.query_map([&user_id], |row| row.get::<_, String>(0))?;
    for text in rows {
        for (table, letters) in parse_privileges(&text?) {
            privileges.entry(table).or_default().push_str(&letters);
        }
    }
    Ok(Caller {
        user_id,
        business_unit_id: business_unit.unwrap_or_else(|| ids::BUSINESS_UNIT_ID.to_owned()),
        organization_id: ids::ORGANIZATION_ID.to_owned(),
        privileges,
    })
}

/// A system user to create.
#[derive(Debug, Clone)]
pub(crate) struct NewUser {
    pub(crate) id: String,
    pub(crate) full_name: String,
    pub(crate) application_id: Option<String>,
    pub(crate) object_id: Option<String>,
    pub(crate) domain_name: Option<String>,
    pub(crate) roles: Vec<String>,
}

/// Creates the organization, its business unit and the two built-in roles when absent.
pub(crate) fn seed_organization(db: &mut Db, schema: &Schema, name: &str) -> rusqlite::Result<()> {
    let organization = table(schema, "organization");
    if !db.exists(organization, ids::ORGANIZATION_ID)? {
        db.insert(
            organization,
            ids::ORGANIZATION_ID,
            &[("name".into(), Sql::Text(name.to_owned()))],
        )?;
    }
    let business_unit = table(schema, "businessunit");
    if !db.exists(business_unit, ids::BUSINESS_UNIT_ID)? {
        db.insert(
            business_unit,
            ids::BUSINESS_UNIT_ID,
            &[("name".into(), Sql::Text(name.to_owned()))],
        )?;
    }
    for (id, role, privileges) in [
        (
            ids::SYSTEM_ADMINISTRATOR_ROLE_ID,
            ids::SYSTEM_ADMINISTRATOR,
            r#"{"*":"crwd"}"#,
        ),
        (ids::READ_ONLY_ROLE_ID, ids::READ_ONLY, r#"{"*":"r"}"#),
    ] {
        db.conn.execute(
            "INSERT OR IGNORE INTO _d365_role (roleid, name, privileges) VALUES (?1, ?2, ?3)",
            [id, role, privileges],
        )?;
    }
    Ok(())
}

fn table<'a>(schema: &'a Schema, name: &str) -> &'a Table {
    schema
        .by_name(name)
        .unwrap_or_else(|| unreachable!("built-in table {name} is always in the schema"))
}

/// Why an organization change was refused (admin API).
#[derive(Debug, thiserror::Error)]
pub(crate) enum OrgError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0}")]
    Invalid(String),
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
}

pub(crate) fn role_id(db: &Db, name_or_id: &str) -> Result<String, OrgError> {
    db.conn
        .query_row(
            "SELECT roleid FROM _d365_role WHERE name = ?1 OR roleid = lower(?1)",
            [name_or_id],
            |row| row.get(0),
        )
        .optional()?
        .ok_or_else(|| OrgError::NotFound(format!("role '{name_or_id}'")))
}

/// Adds a system user (skipped when one with that id exists: seeding is idempotent).
pub(crate) fn add_user(db: &mut Db, schema: &Schema, user: &NewUser) -> Result<(), OrgError> {
    let systemuser = table(schema, "systemuser");
    if db.exists(systemuser, &user.id)? {
        return Ok(());
    }
    for (column, value) in [
        ("applicationid", &user.application_id),
        ("azureactivedirectoryobjectid", &user.object_id),
    ] {
        if let Some(value) = value {
            let taken: bool = db
                .conn
                .prepare(&format!("SELECT 1 FROM systemuser WHERE {column} = ?1"))?
                .exists([value])?;
            if taken {
                return Err(OrgError::Duplicate(format!(
                    "a system user with {column} {value}"
                )));
            }
        }
    }
    let role_ids = user
        .roles
        .iter()
        .map(|r| role_id(db, r))
        .collect::<Result<Vec<_>, _>>()?;
    let text = |v: &Option<String>| v.clone().map_or(Sql::Null, Sql::Text);
    let values = vec![
        ("fullname".to_owned(), Sql::Text(user.full_name.clone())),
        ("applicationid".to_owned(), text(&user.application_id)),
        (
            "azureactivedirectoryobjectid".to_owned(),
            text(&user.object_id),
        ),
        ("domainname".to_owned(), text(&user.domain_name)),
        ("internalemailaddress".to_owned(), text(&user.domain_name)),
        ("isdisabled".to_owned(), Sql::Integer(0)),
        (
            "accessmode".to_owned(),
            Sql::Integer(if user.application_id.is_some() { 4 } else { 0 }),
        ),
        (
            "businessunitid".to_owned(),
            Sql::Text(ids::BUSINESS_UNIT_ID.to_owned()),
        ),
        (
            target_column("businessunitid"),
            Sql::Text("businessunit".to_owned()),
        ),
    ];
    db.insert(systemuser, &user.id, &values)?;
    for role in role_ids {
        db.conn.execute(
            "INSERT OR IGNORE INTO _d365_userrole (systemuserid, roleid) VALUES (?1, ?2)",
            [&user.id, &role],
        )?;
    }
    Ok(())
}

/// Replaces a user's roles.
pub(crate) fn set_roles(db: &mut Db, user_id: &str, roles: &[String]) -> Result<(), OrgError> {
    let exists: bool = db
        .conn
        .prepare("SELECT 1 FROM systemuser WHERE systemuserid = ?1")?
        .exists([user_id])?;
    if !exists {
        return Err(OrgError::NotFound(format!("system user '{user_id}'")));
    }
    let role_ids = roles
        .iter()
        .map(|r| role_id(db, r))
        .collect::<Result<Vec<_>, _>>()?;
    db.conn.execute(
        "DELETE FROM _d365_userrole WHERE systemuserid = ?1",
        [user_id],
    )?;
    for role in role_ids {
        db.conn.execute(
            "INSERT INTO _d365_userrole (systemuserid, roleid) VALUES (?1, ?2)",
            [user_id, &role],
        )?;
    }
    Ok(())
}

pub(crate) fn remove_user(db: &mut Db, schema: &Schema, user_id: &str) -> Result<(), OrgError> {
    let systemuser = table(schema, "systemuser");
    if !db.delete(systemuser, user_id)? {
        return Err(OrgError::NotFound(format!("system user '{user_id}'")));
    }
    db.conn.execute(
        "DELETE FROM _d365_userrole WHERE systemuserid = ?1",
        [user_id],
    )?;
    Ok(())
}

pub(crate) fn roles(db: &Db) -> Result<Vec<Role>, OrgError> {
    let mut statement = db
        .conn
        .prepare("SELECT roleid, name, privileges FROM _d365_role ORDER BY name")?;
    let rows = statement.query_map([], |row| {
        Ok(Role {
            id: row.get(0)?,
            name: row.get(1)?,
            privileges: parse_privileges(&row.get::<_, String>(2)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds a role; privileges map a table logical name (or `*`) to letters from `crwd`.
pub(crate) fn add_role(
    db: &mut Db,
    schema: &Schema,
    id: &str,
    name: &str,
    privileges: &HashMap<String, String>,
) -> Result<(), OrgError> {
    for (table, letters) in privileges {
        if table != "*" && schema.by_name(table).is_none() {
            return Err(OrgError::Invalid(format!("unknown table '{table}'")));
        }
        if letters.is_empty() || !letters.chars().all(|c| "crwd".contains(c)) {
            return Err(OrgError::Invalid(format!(
                "privileges of '{table}' must be letters from 'crwd', not '{letters}'"
            )));
        }
    }
    let taken: bool = db
        .conn
        .prepare("SELECT 1 FROM _d365_role WHERE name = ?1 OR roleid = ?2")?
        .exists([name, id])?;
    if taken {
        return Err(OrgError::Duplicate(format!("role '{name}'")));
    }
    let text = serde_json::to_string(privileges).unwrap_or_else(|_| "{}".into());
    db.conn.execute(
        "INSERT INTO _d365_role (roleid, name, privileges) VALUES (?1, ?2, ?3)",
        [id, name, &text],
    )?;
    Ok(())
}

/// Every system user with its role names (admin API).
pub(crate) fn users(db: &Db) -> Result<Vec<Value>, OrgError> {
    let mut statement = db.conn.prepare(
        "SELECT u.systemuserid, u.fullname, u.applicationid, u.azureactivedirectoryobjectid, u.domainname, u.isdisabled,
                (SELECT group_concat(r.name, '|') FROM _d365_userrole ur JOIN _d365_role r ON r.roleid = ur.roleid WHERE ur.systemuserid = u.systemuserid)
         FROM systemuser u ORDER BY u.fullname",
    )?;
    let rows = statement.query_map([], |row| {
        let roles: Option<String> = row.get(6)?;
        Ok(json!({
            "systemuserid": row.get::<_, String>(0)?,
            "fullname": row.get::<_, Option<String>>(1)?,
            "application_id": row.get::<_, Option<String>>(2)?,
            "object_id": row.get::<_, Option<String>>(3)?,
            "domainname": row.get::<_, Option<String>>(4)?,
            "disabled": row.get::<_, Option<i64>>(5)? == Some(1),
            "roles": roles.map(|r| r.split('|').map(str::to_owned).collect::<Vec<_>>()).unwrap_or_default(),
        }))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
