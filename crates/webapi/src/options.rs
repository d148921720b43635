//! [`RequestOptions`]: per-request settings — columns, expansions, annotations,
//! conditional headers, impersonation, plug-in bypass, duplicate detection, solution —
//! turned into the query options and headers Dataverse reads.

use crate::guid::Guid;
use http::{HeaderName, HeaderValue};

use crate::error::WebApiError;
use crate::pipeline::Prepared;
use crate::query::{Query, encode_query_value};

/// Per-request options.
///
/// # Examples
///
/// ```
/// use d365_webapi::RequestOptions;
///
/// let options = RequestOptions::new()
///     .select(["name", "revenue"])
///     .formatted_values()
///     .impersonate_object_id("3f2504e0-4f89-11d3-9a0c-0305e82c3301".parse().unwrap())
///     .bypass_custom_plugins();
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
#[must_use]
pub struct RequestOptions {
    select: Vec<String>,
    expand: Vec<(String, Query)>,
    annotations: Option<String>,
    if_match: Option<String>,
    if_none_match: Option<String>,
    caller_object_id: Option<Guid>,
    caller_id: Option<Guid>,
    bypass_custom_plugins: bool,
    duplicate_detection: bool,
    solution: Option<String>,
    return_representation: bool,
}

impl RequestOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Columns to return.
    pub fn select<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.select.extend(columns.into_iter().map(Into::into));
        self
    }

    /// Expand a navigation property.
    pub fn expand(mut self, navigation: impl Into<String>, options: Query) -> Self {
        self.expand.push((navigation.into(), options));
        self
    }

    /// Annotations to include (`*`, or a comma list such as
    /// `OData.Community.Display.V1.FormattedValue`).
    pub fn annotations(mut self, annotations: impl Into<String>) -> Self {
        self.annotations = Some(annotations.into());
        self
    }

    /// Include formatted values (option set labels, formatted money and dates, lookup names)
    /// and the lookup annotations: [`FORMATTED_VALUES`](crate::FORMATTED_VALUES).
    pub fn formatted_values(self) -> Self {
        self.annotations(crate::FORMATTED_VALUES)
    }

    /// `If-Match`: an ETag (act only if unchanged) or `*` (only if it exists).
    pub fn if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }

    /// `If-None-Match`: an ETag (retrieve only if changed) or `*` (only if absent).
    pub fn if_none_match(mut self, etag: impl Into<String>) -> Self {
        self.if_none_match = Some(etag.into());
        self
    }

    /// Act as the user with this Entra object id (`CallerObjectId`, preferred).
    pub fn impersonate_object_id(mut self, object_id: Guid) -> Self {
        self.caller_object_id = Some(object_id);
        self
    }

    /// Act as the user with this systemuserid (`MSCRMCallerID`, legacy).
    pub fn impersonate_user(mut self, system_user_id: Guid) -> Self {
        self.caller_id = Some(system_user_id);
        self
    }

    /// Skip custom synchronous plug-ins (needs the `prvBypassCustomPlugins` privilege).
    pub fn bypass_custom_plugins(mut self) -> Self {
        self.bypass_custom_plugins = true;
        self
    }

    /// Turn duplicate detection on (Dataverse leaves it off for Web API requests).
    pub fn detect_duplicates(mut self) -> Self {
        self.duplicate_detection = true;
        self
    }

    /// Add solution components created by this request to this unmanaged solution.
    pub fn solution(mut self, unique_name: impl Into<String>) -> Self {
        self.solution = Some(unique_name.into());
        self
    }

    /// Ask creates and updates to return the record (`Prefer: return=representation`).
    pub fn return_representation(mut self) -> Self {
        self.return_representation = true;
        self
    }

    pub(crate) fn returns_representation(&self) -> bool {
        self.return_representation
    }

    pub(crate) fn has_if_match(&self) -> bool {
        self.if_match.is_some()
    }

    /// The query string for `$select`/`$expand` (empty when neither is set).
    pub(crate) fn query_string(&self) -> String {
        let mut query = Query::nested().select(self.select.iter().cloned());
        for (navigation, options) in &self.expand {
            query = query.expand(navigation.clone(), options.clone());
        }
        query.to_query_string()
    }

    /// Adds the headers, with any extra `Prefer` values (such as a page size).
    pub(crate) fn apply(
        &self,
        mut request: Prepared,
        extra_prefer: &[String],
    ) -> Result<Prepared, WebApiError> {
        let mut prefer: Vec<String> = extra_prefer.to_vec();
        if self.return_representation {
            prefer.push("return=representation".to_owned());
        }
        if let Some(annotations) = &self.annotations {
            prefer.push(format!("odata.include-annotations=\"{annotations}\""));
        }
        let mut set = |name: &'static str, value: &str| -> Result<(), WebApiError> {
            let value = HeaderValue::from_str(value).map_err(|_| {
                WebApiError::InvalidInput(format!("the {name} header cannot hold `{value}`"))
            })?;
            request.headers.insert(HeaderName::from_static(name), value);
            Ok(())
        };
        if !prefer.is_empty() {
            set("prefer", &prefer.join(","))?;
        }
        if let Some(etag) = &self.if_match {
            set("if-match", etag)?;
        }
        if let Some(etag) = &self.if_none_match {
            set("if-none-match", etag)?;
        }
        if let Some(id) = self.caller_object_id {
            set("callerobjectid", &id.to_string())?;
        }
        if let Some(id) = self.caller_id {
            set("mscrmcallerid", &id.to_string())?;
        }
        if self.bypass_custom_plugins {
            set("mscrm.bypasscustompluginexecution", "true")?;
        }
        if self.duplicate_detection {
            set("mscrm.suppressduplicatedetection", "false")?;
        }
        if let Some(solution) = &self.solution {
            set("mscrm.solutionuniquename", solution)?;
        }
        Ok(request)
    }
}

/// `?query` appended to `path` when `query` is not empty.
pub(crate) fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else if path.contains('?') {
        format!("{path}&{query}")
    } else {
        format!("{path}?{query}")
    }
}

/// Percent-encodes a function parameter alias value.
pub(crate) fn alias_value(text: &str) -> String {
    encode_query_value(text)
}
