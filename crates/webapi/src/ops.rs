//! The operations: WhoAmI, retrieve, create, update, upsert, delete, associate,
//! functions and actions, and raw requests. Each builds a [`Prepared`] request and reads
//! the answer; sending and retrying is the pipeline's job.

use crate::guid::Guid;
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::WebApiError;
use crate::options::{RequestOptions, alias_value, with_query};
use crate::pipeline::{Answer, Prepared, Replay};
use crate::query::{Literal, RecordKey};

/// The caller, as `WhoAmI` reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct WhoAmI {
    /// The caller's `systemuserid`.
    #[serde(rename = "UserId")]
    pub user_id: Guid,
    /// The caller's business unit.
    #[serde(rename = "BusinessUnitId")]
    pub business_unit_id: Guid,
    /// The organization.
    #[serde(rename = "OrganizationId")]
    pub organization_id: Guid,
}

/// What a create returned.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Created {
    /// The new record's id, from `OData-EntityId` (or the id chosen by the caller).
    pub id: Option<Guid>,
    /// The record's URL, from `OData-EntityId`.
    pub url: Option<String>,
    /// The record, when `return_representation` was asked for.
    pub record: Option<serde_json::Value>,
}

/// What an upsert may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpsertMode {
    /// Create or update.
    #[default]
    CreateOrUpdate,
    /// Create only: fails with 412 when the record exists (`If-None-Match: *`).
    CreateOnly,
    /// Update only: fails with 404 when the record does not exist (`If-Match: *`).
    UpdateOnly,
}

/// The annotations that bring formatted values (choice labels, formatted money and dates,
/// lookup names) and the lookup annotations (`lookuplogicalname`,
/// `associatednavigationproperty`): for [`Query::annotations`](crate::Query::annotations)
/// and the FetchXML calls; read them with [`formatted_value`].
pub const FORMATTED_VALUES: &str = "OData.Community.Display.V1.FormattedValue,\
Microsoft.Dynamics.CRM.lookuplogicalname,Microsoft.Dynamics.CRM.associatednavigationproperty";

/// The formatted value of `column` in a record read with formatted values.
#[must_use]
pub fn formatted_value<'r>(record: &'r serde_json::Value, column: &str) -> Option<&'r str> {
    record
        .get(format!(
            "{column}@OData.Community.Display.V1.FormattedValue"
        ))
        .and_then(serde_json::Value::as_str)
}

/// The record's `@odata.etag`.
#[must_use]
pub fn etag(record: &serde_json::Value) -> Option<&str> {
    record
        .get("@odata.etag")
        .and_then(serde_json::Value::as_str)
}

/// The id at the end of an `OData-EntityId` URL: `…/accounts(00000000-…)`.
pub(crate) fn id_from_entity_url(url: &str) -> Option<Guid> {
    let inner = url.rsplit_once('(')?.1.strip_suffix(')')?;
    inner.parse().ok()
}

fn entity_path(entity_set: &str, key: &RecordKey) -> Result<String, WebApiError> {
    let valid = !entity_set.is_empty()
        && entity_set
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(WebApiError::InvalidInput(format!(
            "`{entity_set}` is not an entity set name (letters, digits and `_`, such as `accounts`)"
        )));
    }
    Ok(format!("{entity_set}{}", key.to_segment()))
}

impl Client {
    /// Who the caller is.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]: no token, or Dataverse refused (e.g. 403 `0x80072560` when the
    /// application has no application user in this environment).
    pub async fn who_am_i(&self) -> Result<WhoAmI, WebApiError> {
        let answer = self
            .send_get(Prepared::new(
                Method::GET,
                self.url("WhoAmI")?,
                Replay::Safe,
            ))
            .await?;
        decode(&answer)
    }

    /// Retrieves a record by id or alternate key.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; a missing record is [`ErrorKind::NotFound`](crate::ErrorKind::NotFound).
    pub async fn retrieve(
        &self,
        entity_set: &str,
        key: impl Into<RecordKey>,
        options: &RequestOptions,
    ) -> Result<serde_json::Value, WebApiError> {
        let key = key.into();
        let path = with_query(&entity_path(entity_set, &key)?, &options.query_string());
        let request = self.apply_options(
            options,
            Prepared::new(Method::GET, self.url(&path)?, Replay::Safe),
            &[],
        )?;
        self.send_get(request).await?.json()
    }

    /// Retrieves a record into your type.
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve`], and [`WebApiError::Decode`] when the record does not fit `T`.
    pub async fn retrieve_as<T: DeserializeOwned>(
        &self,
        entity_set: &str,
        key: impl Into<RecordKey>,
        options: &RequestOptions,
    ) -> Result<T, WebApiError> {
        let record = self.retrieve(entity_set, key, options).await?;
        serde_json::from_value(record).map_err(|error| WebApiError::Decode(error.to_string()))
    }

    /// Retrieves a record only if it changed since `etag` was read: `None` when unchanged (304).
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve`].
    pub async fn retrieve_if_changed(
        &self,
        entity_set: &str,
        key: impl Into<RecordKey>,
        etag: &str,
        options: &RequestOptions,
    ) -> Result<Option<serde_json::Value>, WebApiError> {
        let options = options.clone().if_none_match(etag);
        let key = key.into();
        let path = with_query(&entity_path(entity_set, &key)?, &options.query_string());
        let request = self.apply_options(
            &options,
            Prepared::new(Method::GET, self.url(&path)?, Replay::Safe),
            &[],
        )?;
        let answer = self.send_get(request).await?;
        if answer.status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        answer.json().map(Some)
    }

    /// Creates a record (`POST`). The id comes from `OData-EntityId`, or the record
    /// itself with [`RequestOptions::return_representation`].
    ///
    /// A create is retried only when Dataverse said it did not apply it (429, 503, no
    /// connection); use [`Client::create_with_id`] to retry through broken connections too.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; [`ErrorKind::MaybeApplied`](crate::ErrorKind::MaybeApplied) when the
    /// connection broke after sending.
    pub async fn create(
        &self,
        entity_set: &str,
        record: &serde_json::Value,
        options: &RequestOptions,
    ) -> Result<Created, WebApiError> {
        let path = with_query(&entity_path_only(entity_set)?, &options.query_string());
        let request = self.apply_options(
            options,
            Prepared::new(Method::POST, self.url(&path)?, Replay::Unsafe).json_body(record),
            &[],
        )?;
        let answer = self.execute(request).await?;
        created(&answer, None)
    }

    /// Creates a record with the id you choose, safely retried through any failure: it is
    /// sent as `PATCH {set}({id})` with `If-None-Match: *`, so a replay of a create that was
    /// applied answers 412, which is read as success. Never creates the record twice.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; [`ErrorKind::PreconditionFailed`](crate::ErrorKind::PreconditionFailed)
    /// when a record with this id already existed before the call.
    pub async fn create_with_id(
        &self,
        entity_set: &str,
        id: Guid,
        record: &serde_json::Value,
        options: &RequestOptions,
    ) -> Result<Created, WebApiError> {
        let path = with_query(
            &entity_path(entity_set, &RecordKey::Id(id))?,
            &options.query_string(),
        );
        let options = options.clone().if_none_match("*");
        let request = self.apply_options(
            &options,
            Prepared::new(
                Method::PATCH,
                self.url(&path)?,
                Replay::DetectsDuplicate(StatusCode::PRECONDITION_FAILED),
            )
            .json_body(record),
            &[],
        )?;
        let answer = self.execute(request).await?;
        created(&answer, Some(id))
    }

    /// Updates a record: only the columns in `changes`. It never creates a record: unless
    /// `options` has its own `If-Match` (an ETag), `If-Match: *` is sent.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; 404 when the record does not exist, 412 when the ETag is stale.
    pub async fn update(
        &self,
        entity_set: &str,
        key: impl Into<RecordKey>,
        changes: &serde_json::Value,
        options: &RequestOptions,
    ) -> Result<Option<serde_json::Value>, WebApiError> {
        let options = if options.has_if_match() {
            options.clone()
        } else {
            options.clone().if_match("*")
        };
        self.patch(entity_set, &key.into(), changes, &options).await
    }

    /// Creates or updates a record by key; [`UpsertMode`] restricts it to one of the two.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; 412 for `CreateOnly` on an existing record, 404 for `UpdateOnly`
    /// on a missing one.
    pub async fn upsert(
        &self,
        entity_set: &str,
        key: impl Into<RecordKey>,
        record: &serde_json::Value,
        mode: UpsertMode,
        options: &RequestOptions,
    ) -> Result<Option<serde_json::Value>, WebApiError> {
        let options = match mode {
            UpsertMode::CreateOrUpdate => options.clone(),
            UpsertMode::CreateOnly => options.clone().if_none_match("*"),
            UpsertMode::UpdateOnly => options.clone().if_match("*"),
        };
        self.patch(entity_set, &key.into(), record, &options).await
    }

    async fn patch(
        &self,
        entity_set: &str,
        key: &RecordKey,
        body: &serde_json::Value,
        options: &RequestOptions,
    ) -> Result<Option<serde_json::Value>, WebApiError> {
        let path = with_query(&entity_path(entity_set, key)?, &options.query_string());
        let request = self.apply_options(
            options,
            Prepared::new(Method::PATCH, self.url(&path)?, Replay::Unsafe).json_body(body),
            &[],
        )?;
        let answer = self.execute(request).await?;
        if answer.body.is_empty() {
            Ok(None)
        } else {
            answer.json().map(Some)
        }
    }

    /// Deletes a record. Retried through broken connections: a replay that finds the record
    /// gone (404) means the earlier attempt deleted it.
    ///
    /// # Errors
    ///
    /// [`WebApiError`]; 404 when the record did not exist.
    pub async fn delete(
        &self,
        entity_set: &str,
        key: impl Into<RecordKey>,
        options: &RequestOptions,
    ) -> Result<(), WebApiError> {
        let path = entity_path(entity_set, &key.into())?;
        let request = self.apply_options(
            options,
            Prepared::new(
                Method::DELETE,
                self.url(&path)?,
                Replay::DetectsDuplicate(StatusCode::NOT_FOUND),
            ),
            &[],
        )?;
        self.execute(request).await.map(|_| ())
    }

    /// Associates two records through a collection-valued navigation property
    /// (`POST {set}({key})/{navigation}/$ref`).
    ///
    /// # Errors
    ///
    /// [`WebApiError`].
    pub async fn associate(
        &self,
        entity_set: &str,
        key: impl Into<RecordKey>,
        navigation: &str,
        target_set: &str,
        target: impl Into<RecordKey>,
    ) -> Result<(), WebApiError> {
        let (key, target) = (key.into(), target.into());
        // Adding to a collection twice fails (duplicate association): not replayable.
        self.send_reference(
            Method::POST,
            Replay::Unsafe,
            entity_set,
            &key,
            navigation,
            target_set,
            &target,
        )
        .await
    }

    /// Sets a single-valued navigation property (a lookup) to a record
    /// (`PUT {set}({key})/{navigation}/$ref`).
    ///
    /// # Errors
    ///
    /// [`WebApiError`].
    pub async fn set_reference(
        &self,
        entity_set: &str,
        key: impl Into<RecordKey>,
        navigation: &str,
        target_set: &str,
        target: impl Into<RecordKey>,
    ) -> Result<(), WebApiError> {
        let (key, target) = (key.into(), target.into());
        // Setting a lookup to the same record twice leaves the same state: replayable.
        self.send_reference(
            Method::PUT,
            Replay::Safe,
            entity_set,
            &key,
            navigation,
            target_set,
            &target,
        )
        .await
    }

    /// `{method} {set}({key})/{navigation}/$ref` with `{"@odata.id": target URL}`.
    #[allow(clippy::too_many_arguments)]
    async fn send_reference(
        &self,
        method: Method,
        replay: Replay,
        entity_set: &str,
        key: &RecordKey,
        navigation: &str,
        target_set: &str,
        target: &RecordKey,
    ) -> Result<(), WebApiError> {
        let path = format!("{}/{navigation}/$ref", entity_path(entity_set, key)?);
        let target_url = self.url(&entity_path(target_set, target)?)?;
        let body = serde_json::json!({ "@odata.id": target_url.as_str() });
        self.execute(Prepared::new(method, self.url(&path)?, replay).json_body(&body))
            .await
            .map(|_| ())
    }

    /// Removes an association: from a collection (`target` given) or a single-valued
    /// navigation property (`target` `None`).
    ///
    /// # Errors
    ///
    /// [`WebApiError`].
    pub async fn disassociate(
        &self,
        entity_set: &str,
        key: impl Into<RecordKey>,
        navigation: &str,
        target: Option<RecordKey>,
    ) -> Result<(), WebApiError> {
        let base = entity_path(entity_set, &key.into())?;
        let path = match target {
            Some(target) => format!("{base}/{navigation}{}/$ref", target.to_segment()),
            None => format!("{base}/{navigation}/$ref"),
        };
        self.execute(Prepared::new(
            Method::DELETE,
            self.url(&path)?,
            Replay::DetectsDuplicate(StatusCode::NOT_FOUND),
        ))
        .await
        .map(|_| ())
    }

    /// Calls a function (`GET`), unbound (`RetrieveVersion`) or bound
    /// (`accounts(…)/Microsoft.Dynamics.CRM.X`), with parameters passed as aliases.
    ///
    /// # Errors
    ///
    /// [`WebApiError`].
    pub async fn function(
        &self,
        name: &str,
        parameters: &[(&str, Literal)],
    ) -> Result<serde_json::Value, WebApiError> {
        let names = parameters
            .iter()
            .enumerate()
            .map(|(index, (parameter, _))| format!("{parameter}=@p{index}"))
            .collect::<Vec<_>>()
            .join(",");
        let aliases = parameters
            .iter()
            .enumerate()
            .map(|(index, (_, value))| format!("@p{index}={}", alias_value(&value.to_odata())))
            .collect::<Vec<_>>()
            .join("&");
        let path = with_query(&format!("{name}({names})"), &aliases);
        self.send_get(Prepared::new(Method::GET, self.url(&path)?, Replay::Safe))
            .await?
            .json()
    }

    /// Calls an action (`POST`), unbound or bound, with a JSON body. Returns its response,
    /// if it has one.
    ///
    /// # Errors
    ///
    /// [`WebApiError`].
    pub async fn action(
        &self,
        name: &str,
        parameters: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, WebApiError> {
        let answer = self
            .execute(
                Prepared::new(Method::POST, self.url(name)?, Replay::Unsafe).json_body(parameters),
            )
            .await?;
        if answer.body.is_empty() {
            Ok(None)
        } else {
            answer.json().map(Some)
        }
    }

    /// Sends any request under the API root (like `az rest`): `path` relative to
    /// `/api/data/v9.2/`, or an absolute URL on this organization. GETs are retried as
    /// reads; other methods only when Dataverse said the request was not applied.
    ///
    /// # Errors
    ///
    /// [`WebApiError`] for error statuses too.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<RawResponse, WebApiError> {
        let replay = if method == Method::GET {
            Replay::Safe
        } else {
            Replay::Unsafe
        };
        let mut request = Prepared::new(method, self.url(path)?, replay);
        if let Some(body) = body {
            request = request.json_body(body);
        }
        let answer = self.execute(request).await?;
        Ok(RawResponse {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        })
    }
}

/// The answer to [`Client::request`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RawResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

fn entity_path_only(entity_set: &str) -> Result<String, WebApiError> {
    entity_path(entity_set, &RecordKey::Alternate(Vec::new()))
        .map(|path| path.trim_end_matches("()").to_owned())
}

fn created(answer: &Answer, chosen: Option<Guid>) -> Result<Created, WebApiError> {
    let url = answer.header("odata-entityid").map(str::to_owned);
    let id = chosen.or_else(|| url.as_deref().and_then(id_from_entity_url));
    let record = if answer.body.is_empty() {
        None
    } else {
        Some(answer.json()?)
    };
    Ok(Created { id, url, record })
}

fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T, WebApiError> {
    serde_json::from_slice(&answer.body).map_err(|error| WebApiError::Decode(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_entity_urls() {
        let id = id_from_entity_url(
            "https://contoso.crm.dynamics.com/api/data/v9.2/accounts(6c1d2e3f-0000-0000-0000-00000000a001)",
        );
        assert_eq!(
            id.unwrap().to_string(),
            "6c1d2e3f-0000-0000-0000-00000000a001"
        );
        assert_eq!(
            id_from_entity_url("https://x/api/data/v9.2/accounts(accountnumber='A1')"),
            None
        );
    }

    #[test]
    fn entity_set_names_are_checked() {
        assert!(entity_path("accounts", &RecordKey::Id(Guid::nil())).is_ok());
        for bad in ["", "accounts?x=1", "accounts/../x", "acc ounts"] {
            assert!(
                entity_path(bad, &RecordKey::Id(Guid::nil())).is_err(),
                "{bad}"
            );
        }
        assert_eq!(entity_path_only("contacts").unwrap(), "contacts");
    }

    #[test]
    fn formatted_values_and_etags_are_read() {
        let record = serde_json::json!({
            "@odata.etag": "W/\"1\"",
            "statecode": 0,
            "statecode@OData.Community.Display.V1.FormattedValue": "Active",
        });
        assert_eq!(formatted_value(&record, "statecode"), Some("Active"));
        assert_eq!(etag(&record), Some("W/\"1\""));
    }
}
