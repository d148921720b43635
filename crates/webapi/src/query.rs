//! OData query building: [`Literal`]s written the way the Web API parses them (quotes
//! doubled in strings, bare GUIDs, ISO dates, enum members), [`Filter`] expressions, and
//! the [`Query`] builder for `$select/$filter/$orderby/$top/$count/$expand`.

use crate::guid::Guid;
use std::fmt::Write as _;

/// A value in a filter or a key, written as OData literal syntax.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Literal {
    /// `'text'`, single quotes doubled.
    String(String),
    /// A GUID, written bare (`00000000-0000-0000-0000-000000000000`).
    Guid(Guid),
    /// An integer.
    Int(i64),
    /// A decimal number.
    Decimal(f64),
    /// `true` / `false`.
    Bool(bool),
    /// A date and time in ISO 8601 (`2026-01-31T12:00:00Z`), written bare.
    DateTime(String),
    /// A date (`2026-01-31`), written bare.
    Date(String),
    /// `null`.
    Null,
    /// An enum member: `Microsoft.Dynamics.CRM.{type}'{member}'`.
    Enum {
        /// The enum type, such as `Microsoft.Dynamics.CRM.AccountCategoryCode`.
        type_name: String,
        /// The member name.
        member: String,
    },
}

impl Literal {
    /// A date-time literal; `value` must be ISO 8601 (`YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`).
    ///
    /// # Errors
    ///
    /// When `value` is not in that form.
    pub fn date_time(value: &str) -> Result<Self, String> {
        let valid = value.len() >= 20
            && value.as_bytes()[4] == b'-'
            && value.as_bytes()[7] == b'-'
            && value.as_bytes()[10] == b'T'
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || b"-:T.Z+".contains(&b));
        if valid {
            Ok(Self::DateTime(value.to_owned()))
        } else {
            Err(format!(
                "`{value}` is not an ISO 8601 date-time such as 2026-01-31T12:00:00Z"
            ))
        }
    }

    /// The OData text of the value.
    #[must_use]
    pub fn to_odata(&self) -> String {
        match self {
            Self::String(text) => format!("'{}'", text.replace('\'', "''")),
            Self::Guid(id) => id.to_string(),
            Self::Int(n) => n.to_string(),
            Self::Decimal(n) => {
                let text = n.to_string();
                if text.contains('.') || text.contains('e') {
                    text
                } else {
                    format!("{text}.0")
                }
            }
            Self::Bool(b) => b.to_string(),
            Self::DateTime(text) | Self::Date(text) => text.clone(),
            Self::Null => "null".to_owned(),
            Self::Enum { type_name, member } => {
                format!("{type_name}'{}'", member.replace('\'', "''"))
            }
        }
    }
}

impl From<&str> for Literal {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl From<String> for Literal {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<Guid> for Literal {
    fn from(value: Guid) -> Self {
        Self::Guid(value)
    }
}

impl From<i64> for Literal {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<i32> for Literal {
    fn from(value: i32) -> Self {
        Self::Int(i64::from(value))
    }
}

impl From<f64> for Literal {
    fn from(value: f64) -> Self {
        Self::Decimal(value)
    }
}

impl From<bool> for Literal {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

/// A `$filter` expression; combine with [`and`](Filter::and), [`or`](Filter::or) and `!`.
///
/// # Examples
///
/// ```
/// use d365_webapi::Filter;
///
/// let filter = Filter::eq("name", "O'Neil & Sons")
///     .and(Filter::gt("revenue", 1_000_000))
///     .or(!Filter::contains("name", "contoso"));
/// assert_eq!(
///     filter.as_str(),
///     "((name eq 'O''Neil & Sons' and revenue gt 1000000) or not (contains(name,'contoso')))"
/// );
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Filter(String);

impl Filter {
    fn compare(field: &str, op: &str, value: impl Into<Literal>) -> Self {
        Self(format!("{field} {op} {}", value.into().to_odata()))
    }

    /// `field eq value`.
    pub fn eq(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, "eq", value)
    }

    /// `field ne value`.
    pub fn ne(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, "ne", value)
    }

    /// `field gt value`.
    pub fn gt(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, "gt", value)
    }

    /// `field ge value`.
    pub fn ge(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, "ge", value)
    }

    /// `field lt value`.
    pub fn lt(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, "lt", value)
    }

    /// `field le value`.
    pub fn le(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, "le", value)
    }

    /// `field eq null`.
    #[must_use]
    pub fn is_null(field: &str) -> Self {
        Self::compare(field, "eq", Literal::Null)
    }

    /// `contains(field,'text')`.
    #[must_use]
    pub fn contains(field: &str, text: &str) -> Self {
        Self(format!(
            "contains({field},{})",
            Literal::from(text).to_odata()
        ))
    }

    /// `startswith(field,'text')`.
    #[must_use]
    pub fn starts_with(field: &str, text: &str) -> Self {
        Self(format!(
            "startswith({field},{})",
            Literal::from(text).to_odata()
        ))
    }

    /// `endswith(field,'text')`.
    #[must_use]
    pub fn ends_with(field: &str, text: &str) -> Self {
        Self(format!(
            "endswith({field},{})",
            Literal::from(text).to_odata()
        ))
    }

    /// Filter text written by hand, used as is.
    pub fn raw(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// `(self and other)`.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self(format!("({} and {})", self.0, other.0))
    }

    /// `(self or other)`.
    #[must_use]
    pub fn or(self, other: Self) -> Self {
        Self(format!("({} or {})", self.0, other.0))
    }

    /// The expression text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Not for Filter {
    type Output = Self;

    /// `not (self)`.
    fn not(self) -> Self {
        Self(format!("not ({})", self.0))
    }
}

/// Sort direction for `$orderby`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Order {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// A query on an entity set.
///
/// # Examples
///
/// ```
/// use d365_webapi::{Filter, Order, Query};
///
/// let query = Query::new("accounts")
///     .select(["name", "revenue"])
///     .filter(Filter::eq("statecode", 0))
///     .order_by("name", Order::Asc)
///     .top(50)
///     .count()
///     .expand("primarycontactid", Query::nested().select(["fullname"]));
/// assert_eq!(
///     query.to_query_string(),
///     "$select=name,revenue&$filter=statecode%20eq%200&$orderby=name%20asc&$top=50&$count=true&$expand=primarycontactid($select=fullname)"
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use]
pub struct Query {
    pub(crate) entity_set: String,
    select: Vec<String>,
    filters: Vec<Filter>,
    order_by: Vec<(String, Order)>,
    top: Option<u32>,
    count: bool,
    expand: Vec<(String, Query)>,
    pub(crate) page_size: Option<u32>,
    pub(crate) annotations: Option<String>,
}

impl Query {
    /// A query on `entity_set` (the plural set name, such as `accounts`).
    pub fn new(entity_set: impl Into<String>) -> Self {
        Self {
            entity_set: entity_set.into(),
            ..Self::default()
        }
    }

    /// The options of an `$expand` (no entity set).
    pub fn nested() -> Self {
        Self::default()
    }

    /// Columns to return (`$select`); fewer columns make faster queries.
    pub fn select<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.select.extend(columns.into_iter().map(Into::into));
        self
    }

    /// A filter; several are joined with `and`.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filters.push(filter);
        self
    }

    /// Raw filter text, joined with `and` to the others.
    pub fn filter_raw(self, text: impl Into<String>) -> Self {
        self.filter(Filter::raw(text))
    }

    /// A sort key; several sort in order.
    pub fn order_by(mut self, column: impl Into<String>, order: Order) -> Self {
        self.order_by.push((column.into(), order));
        self
    }

    /// At most this many rows (`$top`). Dataverse ignores it when a page size is set.
    pub fn top(mut self, top: u32) -> Self {
        self.top = Some(top);
        self
    }

    /// Ask for `@odata.count` (capped at 5000 by Dataverse).
    pub fn count(mut self) -> Self {
        self.count = true;
        self
    }

    /// Expand a navigation property with its own options.
    pub fn expand(mut self, navigation: impl Into<String>, options: Query) -> Self {
        self.expand.push((navigation.into(), options));
        self
    }

    /// Annotations to ask for with every page (`Prefer: odata.include-annotations`): `*`, or a
    /// comma list such as `OData.Community.Display.V1.FormattedValue`.
    pub fn annotations(mut self, annotations: impl Into<String>) -> Self {
        self.annotations = Some(annotations.into());
        self
    }

    /// Include formatted values (choice labels, formatted money and dates, lookup names) and
    /// the lookup annotations (`lookuplogicalname`, `associatednavigationproperty`); read
    /// them with [`formatted_value`](crate::formatted_value).
    pub fn formatted_values(self) -> Self {
        self.annotations(crate::FORMATTED_VALUES)
    }

    /// Rows per page (`Prefer: odata.maxpagesize`, at most 5000).
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size.clamp(1, 5000));
        self
    }

    /// The entity set queried.
    #[must_use]
    pub fn entity_set(&self) -> &str {
        &self.entity_set
    }

    fn options(&self, separator: &str, encode: bool) -> String {
        let value = |text: &str| {
            if encode {
                encode_query_value(text)
            } else {
                text.to_owned()
            }
        };
        let mut parts = Vec::new();
        if !self.select.is_empty() {
            parts.push(format!("$select={}", value(&self.select.join(","))));
        }
        if !self.filters.is_empty() {
            let joined = self
                .filters
                .iter()
                .map(Filter::as_str)
                .collect::<Vec<_>>()
                .join(" and ");
            parts.push(format!("$filter={}", value(&joined)));
        }
        if !self.order_by.is_empty() {
            let keys = self
                .order_by
                .iter()
                .map(|(column, order)| {
                    format!(
                        "{column} {}",
                        if *order == Order::Asc { "asc" } else { "desc" }
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            parts.push(format!("$orderby={}", value(&keys)));
        }
        if let Some(top) = self.top {
            parts.push(format!("$top={top}"));
        }
        if self.count {
            parts.push("$count=true".to_owned());
        }
        if !self.expand.is_empty() {
            let items = self
                .expand
                .iter()
                .map(|(navigation, options)| {
                    let inner = options.options(";", false);
                    if inner.is_empty() {
                        navigation.clone()
                    } else {
                        format!("{navigation}({inner})")
                    }
                })
                .collect::<Vec<_>>()
                .join(",");
            parts.push(format!("$expand={}", value(&items)));
        }
        parts.join(separator)
    }

    /// The query string (without `?`), percent-encoded.
    #[must_use]
    pub fn to_query_string(&self) -> String {
        self.options("&", true)
    }

    /// The relative URL: `entity_set?options`.
    #[must_use]
    pub fn to_relative_url(&self) -> String {
        let options = self.to_query_string();
        if options.is_empty() {
            self.entity_set.clone()
        } else {
            format!("{}?{options}", self.entity_set)
        }
    }
}

/// Percent-encodes a query option value, keeping the characters OData expressions use
/// literally (so URLs stay readable) and encoding the ones that would end or alter the
/// option (`&`, `#`, `+`, `%`, spaces, quotes are kept: doubled quotes are how OData escapes).
pub(crate) fn encode_query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~,()':@$/*!=;".contains(&byte);
        if keep {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// How a record is addressed: by id, or by an alternate key of one or more columns.
///
/// # Examples
///
/// ```
/// use d365_webapi::RecordKey;
///
/// let by_id = RecordKey::id("00000000-0000-0000-0000-000000000001".parse().unwrap());
/// assert_eq!(by_id.to_segment(), "(00000000-0000-0000-0000-000000000001)");
/// let by_key = RecordKey::alternate([("firstname", "Joe".into()), ("emailaddress1", "joe@example.com".into())]);
/// assert_eq!(by_key.to_segment(), "(firstname='Joe',emailaddress1='joe%40example.com')");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RecordKey {
    /// The primary key.
    Id(Guid),
    /// An alternate key: its columns and values.
    Alternate(Vec<(String, Literal)>),
}

impl RecordKey {
    /// By primary key.
    #[must_use]
    pub fn id(id: Guid) -> Self {
        Self::Id(id)
    }

    /// By an alternate key.
    pub fn alternate<I, S>(columns: I) -> Self
    where
        I: IntoIterator<Item = (S, Literal)>,
        S: Into<String>,
    {
        Self::Alternate(
            columns
                .into_iter()
                .map(|(name, value)| (name.into(), value))
                .collect(),
        )
    }

    /// The URL segment: `(id)` or `(col='value',…)`, percent-encoded.
    #[must_use]
    pub fn to_segment(&self) -> String {
        match self {
            Self::Id(id) => format!("({id})"),
            Self::Alternate(columns) => {
                let parts = columns
                    .iter()
                    .map(|(name, value)| format!("{name}={}", encode_key_value(&value.to_odata())))
                    .collect::<Vec<_>>()
                    .join(",");
                format!("({parts})")
            }
        }
    }
}

impl From<Guid> for RecordKey {
    fn from(id: Guid) -> Self {
        Self::Id(id)
    }
}

/// Key values sit in the path: encode everything but unreserved characters and quotes.
fn encode_key_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~'".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_written_as_odata_parses_them() {
        let guid: Guid = "6c1d2e3f-0000-0000-0000-00000000a001".parse().unwrap();
        let cases: Vec<(Literal, &str)> = vec![
            ("plain".into(), "'plain'"),
            ("O'Neil".into(), "'O''Neil'"),
            ("''".into(), "''''''"),
            ("".into(), "''"),
            ("a&b=c#d+e%f".into(), "'a&b=c#d+e%f'"),
            ("ünïcode ✓".into(), "'ünïcode ✓'"),
            (guid.into(), "6c1d2e3f-0000-0000-0000-00000000a001"),
            (42.into(), "42"),
            ((-7_i64).into(), "-7"),
            (2.5.into(), "2.5"),
            (3.0.into(), "3.0"),
            (true.into(), "true"),
            (Literal::Null, "null"),
            (
                Literal::date_time("2026-01-31T12:00:00Z").unwrap(),
                "2026-01-31T12:00:00Z",
            ),
            (Literal::Date("2026-01-31".into()), "2026-01-31"),
            (
                Literal::Enum {
                    type_name: "Microsoft.Dynamics.CRM.Color".into(),
                    member: "Red".into(),
                },
                "Microsoft.Dynamics.CRM.Color'Red'",
            ),
        ];
        for (literal, expected) in cases {
            assert_eq!(literal.to_odata(), expected, "{literal:?}");
        }
        assert!(Literal::date_time("31/01/2026").is_err());
        assert!(Literal::date_time("2026-01-31 12:00").is_err());
    }

    #[test]
    fn query_values_are_encoded_so_they_cannot_end_the_option() {
        let query = Query::new("accounts").filter(Filter::eq("name", "A&B #1 + 100% 'x'"));
        let text = query.to_query_string();
        assert_eq!(
            text,
            "$filter=name%20eq%20'A%26B%20%231%20%2B%20100%25%20''x'''"
        );
        let decoded: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            decoded,
            vec![(
                "$filter".to_owned(),
                "name eq 'A&B #1 + 100% ''x'''".to_owned()
            )]
        );
    }

    #[test]
    fn nested_expand_uses_semicolons() {
        let query = Query::new("accounts").expand(
            "contact_customer_accounts",
            Query::nested()
                .select(["fullname"])
                .filter(Filter::starts_with("fullname", "A"))
                .top(5),
        );
        assert_eq!(
            query.to_query_string(),
            "$expand=contact_customer_accounts($select=fullname;$filter=startswith(fullname,'A');$top=5)"
        );
        assert_eq!(Query::new("accounts").to_relative_url(), "accounts");
    }

    #[test]
    fn several_filters_and_orders_join() {
        let query = Query::new("contacts")
            .filter(Filter::is_null("parentcustomerid"))
            .filter_raw("statecode eq 0")
            .order_by("lastname", Order::Asc)
            .order_by("createdon", Order::Desc);
        assert_eq!(
            query.to_query_string(),
            "$filter=parentcustomerid%20eq%20null%20and%20statecode%20eq%200&$orderby=lastname%20asc,createdon%20desc"
        );
    }

    #[test]
    fn compound_keys_encode_values() {
        let key = RecordKey::alternate([
            ("accountnumber", Literal::from("A/1 2")),
            ("_primarycontactid_value", Literal::Guid(Guid::nil())),
        ]);
        assert_eq!(
            key.to_segment(),
            "(accountnumber='A%2F1%202',_primarycontactid_value=00000000-0000-0000-0000-000000000000)"
        );
    }
}
