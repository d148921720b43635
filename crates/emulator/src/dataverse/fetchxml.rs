//! FetchXML through `GET /{entityset}?fetchXml=…`, for a basic subset: `<attribute>`,
//! `<all-attributes>`, `<order>`, nested `<filter type="and|or">` with `<condition>`
//! (eq, ne, neq, gt, ge, lt, le, like, not-like, begins-with, ends-with, null, not-null, in,
//! not-in), `count`/`page`/`paging-cookie`, `top` and `returntotalrecordcount`. Rows omit
//! null columns; paging answers carry `fetchxmlpagingcookie` and `morerecords` when asked.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::errors::{ApiError, ApiResult};
use super::odata::filter::{
    Expr, Func, Literal, Op, normalize_datetime, parse_guid, too_deep, too_many_terms,
};
use super::odata::json::{Shape, record};
use super::odata::paging;
use super::odata::query::{CollectionRequest, MAX_PAGE, Plan, SortKey};
use super::odata::{
    FETCH_PAGING_COOKIE, FORMATTED, MAX_FILTER_DEPTH, MAX_FILTER_TERMS, MAX_IN_VALUES, MAX_SELECT,
    MORE_RECORDS, TOTAL_COUNT,
};
use super::response::{Collection, DvResponse, Ordered};
use super::schema::{Kind, Schema, Table};
use super::store::Db;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("0x80041102", message)
}

/// The OData property of a FetchXML attribute name (lookups are `_x_value` in OData).
fn property(table: &Table, attribute: &str) -> ApiResult<String> {
    let column = table.column(attribute).ok_or_else(|| {
        ApiError::bad_request(
            "0x80041103",
            format!(
                "'{}' entity doesn't contain attribute with Name = '{attribute}'.",
                table.logical_name
            ),
        )
    })?;
    Ok(Table::property_name(column))
}

fn literal(kind: &Kind, text: &str) -> ApiResult<Literal> {
    let bad = || {
        invalid(format!(
            "The value '{text}' is not valid for the attribute type."
        ))
    };
    Ok(match kind {
        Kind::String { .. } => Literal::String(text.to_owned()),
        Kind::Int | Kind::BigInt | Kind::OptionSet(_) => {
            Literal::Int(text.trim().parse().map_err(|_| bad())?)
        }
        Kind::Decimal | Kind::Money => Literal::Decimal(text.trim().parse().map_err(|_| bad())?),
        Kind::Bool => Literal::Bool(matches!(text.trim(), "1" | "true")),
        Kind::DateTime => Literal::DateTime(normalize_datetime(text.trim()).ok_or_else(bad)?),
        Kind::PrimaryId | Kind::Guid | Kind::Lookup(_) => {
            Literal::Guid(parse_guid(text).ok_or_else(bad)?)
        }
    })
}

fn condition(table: &Table, node: roxmltree::Node<'_, '_>) -> ApiResult<Expr> {
    let attribute = node
        .attribute("attribute")
        .ok_or_else(|| invalid("A condition needs an attribute."))?;
    let property = property(table, attribute)?;
    let kind = &table
        .column(attribute)
        .map_or(Kind::String { max_length: 0 }, |c| c.kind.clone());
    let operator = node.attribute("operator").unwrap_or("eq");
    let value = || -> ApiResult<Literal> {
        let text = node.attribute("value").ok_or_else(|| {
            invalid(format!(
                "The condition operator '{operator}' needs a value."
            ))
        })?;
        literal(kind, text)
    };
    let text_value = || node.attribute("value").unwrap_or_default().to_owned();
    let compare = |op: Op| -> ApiResult<Expr> {
        Ok(Expr::Compare {
            property: property.clone(),
            op,
            value: value()?,
        })
    };
    Ok(match operator {
        "eq" => compare(Op::Eq)?,
        "ne" | "neq" => compare(Op::Ne)?,
        "gt" => compare(Op::Gt)?,
        "ge" => compare(Op::Ge)?,
        "lt" => compare(Op::Lt)?,
        "le" => compare(Op::Le)?,
        "null" => Expr::Compare {
            property,
            op: Op::Eq,
            value: Literal::Null,
        },
        "not-null" => Expr::Compare {
            property,
            op: Op::Ne,
            value: Literal::Null,
        },
        "like" => Expr::Like {
            property,
            pattern: text_value(),
        },
        "not-like" => Expr::Not(Box::new(Expr::Like {
            property,
            pattern: text_value(),
        })),
        "begins-with" => Expr::Func {
            func: Func::StartsWith,
            property,
            value: text_value(),
        },
        "not-begin-with" => Expr::Not(Box::new(Expr::Func {
            func: Func::StartsWith,
            property,
            value: text_value(),
        })),
        "ends-with" => Expr::Func {
            func: Func::EndsWith,
            property,
            value: text_value(),
        },
        "not-end-with" => Expr::Not(Box::new(Expr::Func {
            func: Func::EndsWith,
            property,
            value: text_value(),
        })),
        "in" | "not-in" => {
            let values = node
                .children()
                .filter(|n| n.has_tag_name("value"))
                .take(MAX_IN_VALUES + 1)
                .map(|n| literal(kind, n.text().unwrap_or_default()))
                .collect::<ApiResult<Vec<_>>>()?;
            if values.len() > MAX_IN_VALUES {
                return Err(invalid(format!(
                    "The condition operator '{operator}' takes at most {MAX_IN_VALUES} values."
                )));
            }
            let expr = Expr::In { property, values };
            if operator == "in" {
                expr
            } else {
                Expr::Not(Box::new(expr))
            }
        }
        other => {
            return Err(invalid(format!(
                "The condition operator '{other}' is not supported by the d365 emulator."
            )));
        }
    })
}

/// Where a FetchXML query stands against the condition limits: how deep the current
/// `<filter>` is nested, and how many conditions were read.
#[derive(Default)]
struct Bounds {
    depth: usize,
    terms: usize,
}

fn filter(table: &Table, node: roxmltree::Node<'_, '_>, bounds: &mut Bounds) -> ApiResult<Expr> {
    if bounds.depth >= MAX_FILTER_DEPTH {
        return Err(too_deep("FetchXML"));
    }
    bounds.depth += 1;
    let items = filter_items(table, node, bounds);
    bounds.depth -= 1;
    let items = items?;
    Ok(match node.attribute("type").unwrap_or("and") {
        "or" => Expr::Or(items),
        "and" if items.is_empty() => Expr::And(vec![Expr::Compare {
            property: table.primary_id.clone(),
            op: Op::Ne,
            value: Literal::Null,
        }]),
        "and" => Expr::And(items),
        other => return Err(invalid(format!("The filter type '{other}' is not valid."))),
    })
}

fn filter_items(
    table: &Table,
    node: roxmltree::Node<'_, '_>,
    bounds: &mut Bounds,
) -> ApiResult<Vec<Expr>> {
    let mut items = Vec::new();
    for child in node.children().filter(roxmltree::Node::is_element) {
        match child.tag_name().name() {
            "condition" => {
                bounds.terms += 1;
                if bounds.terms > MAX_FILTER_TERMS {
                    return Err(too_many_terms("FetchXML"));
                }
                items.push(condition(table, child)?);
            }
            "filter" => items.push(filter(table, child, bounds)?),
            other => return Err(invalid(format!("'{other}' is not valid inside <filter>."))),
        }
    }
    Ok(items)
}

fn number(node: roxmltree::Node<'_, '_>, name: &str) -> ApiResult<Option<usize>> {
    node.attribute(name)
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| invalid(format!("The '{name}' attribute must be a number.")))
        })
        .transpose()
}

/// Runs the FetchXML query `xml` (the `fetchXml` option of `request`) against `table`, the
/// entity set of the URL; `request` also gives the `Prefer` header and the service root.
pub(crate) fn execute(
    db: &Db,
    schema: &Schema,
    table: &Table,
    xml: &str,
    request: &CollectionRequest<'_>,
) -> ApiResult<DvResponse> {
    let (prefer, api_root) = (request.prefer, request.origin.api_root);
    let document = roxmltree::Document::parse(xml)
        .map_err(|err| invalid(format!("The FetchXML is not well-formed XML: {err}")))?;
    let fetch = document.root_element();
    if fetch.tag_name().name() != "fetch" {
        return Err(invalid("The FetchXML root element must be <fetch>."));
    }
    if fetch.attribute("aggregate") == Some("true") {
        return Err(invalid(
            "Aggregate FetchXML is not supported by the d365 emulator.",
        ));
    }
    let entity = fetch
        .children()
        .find(|n| n.has_tag_name("entity"))
        .ok_or_else(|| invalid("The FetchXML has no <entity>."))?;
    if entity.attribute("name") != Some(table.logical_name.as_str()) {
        return Err(invalid(format!(
            "The entity name in the FetchXML must be '{}' for the entity set '{}'.",
            table.logical_name, table.entity_set
        )));
    }
    let mut select = Some(Vec::new());
    let mut order = Vec::new();
    let mut conditions = Vec::new();
    let mut bounds = Bounds::default();
    for child in entity.children().filter(roxmltree::Node::is_element) {
        match child.tag_name().name() {
            "attribute" => {
                let name = child
                    .attribute("name")
                    .ok_or_else(|| invalid("<attribute> needs a name."))?;
                let property = property(table, name)?;
                if let Some(list) = &mut select {
                    if list.len() >= MAX_SELECT {
                        return Err(invalid(format!(
                            "A FetchXML query may name at most {MAX_SELECT} attributes."
                        )));
                    }
                    list.push(property);
                }
            }
            "all-attributes" => select = None,
            "order" => {
                let name = child
                    .attribute("attribute")
                    .ok_or_else(|| invalid("<order> needs an attribute."))?;
                let property = property(table, name)?;
                order.push(SortKey {
                    column: name.to_owned(),
                    property,
                    descending: child.attribute("descending") == Some("true"),
                });
            }
            "filter" => conditions.push(filter(table, child, &mut bounds)?),
            "link-entity" => {
                return Err(invalid(
                    "<link-entity> is not supported by the d365 emulator.",
                ));
            }
            other => return Err(invalid(format!("'{other}' is not valid inside <entity>."))),
        }
    }
    let top = number(fetch, "top")?;
    let count = number(fetch, "count")?;
    if top.is_some() && (count.is_some() || fetch.attribute("page").is_some()) {
        return Err(invalid(
            "The top attribute can't be specified with paging attribute page or count.",
        ));
    }
    let page_size = top.or(count).unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let page = number(fetch, "page")?.unwrap_or(1).max(1);
    let cursor = fetch
        .attribute("paging-cookie")
        .filter(|c| !c.is_empty())
        .and_then(paging::parse_inner)
        .filter(|c| c.page + 1 == u32::try_from(page).unwrap_or(0));
    let offset = if cursor.is_some() {
        0
    } else {
        (page - 1)
            .checked_mul(page_size)
            .ok_or_else(|| invalid("The page attribute is too large."))?
    };
    let plan = Plan {
        table,
        condition: match conditions.len() {
            0 => None,
            1 => conditions.pop(),
            _ => Some(Expr::And(conditions)),
        },
        restrict: Vec::new(),
        order,
        limit: page_size,
        cursor,
        offset,
        names: prefer.wants(FORMATTED),
    };
    let result = plan.run(db, schema)?;
    let mut head = Ordered::default();
    head.push(
        "@odata.context",
        Value::String(format!("{api_root}$metadata#{}", table.entity_set)),
    );
    if fetch.attribute("returntotalrecordcount") == Some("true") && prefer.wants(TOTAL_COUNT) {
        head.push(
            format!("@{TOTAL_COUNT}"),
            json!(plan.count(db, MAX_PAGE)?.min(MAX_PAGE)),
        );
    }
    if result.more && top.is_none() {
        if prefer.wants(FETCH_PAGING_COOKIE)
            && let Some(last) = result.rows.last()
        {
            let cursor = plan.cursor_after(last);
            let first = result
                .rows
                .first()
                .and_then(|r| r.get(table, &table.primary_id))
                .and_then(paging::cookie_value);
            let page_number = u32::try_from(page).unwrap_or(u32::MAX);
            let inner = paging::inner_cookie(page_number, &cursor, first.as_deref());
            head.push(
                format!("@{FETCH_PAGING_COOKIE}"),
                Value::String(paging::fetch_annotation(
                    page_number.saturating_add(1),
                    &inner,
                )),
            );
        }
        if prefer.wants(MORE_RECORDS) {
            head.push(format!("@{MORE_RECORDS}"), Value::Bool(true));
        }
    }
    let shape = Shape {
        select: select.as_deref(),
        prefer,
        omit_nulls: true,
    };
    let rows = result
        .rows
        .iter()
        .map(|row| record(table, row, shape))
        .collect();
    Ok(DvResponse::json(StatusCode::OK, &Collection { head, rows }))
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::dataverse::odata::query::Origin;
    use crate::dataverse::odata::{Prefer, QueryOptions};
    use crate::dataverse::store::Store;
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    fn config() -> Config {
        Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        }
    }

    /// Escapes text for an XML attribute or element.
    fn xml_escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }

    fn number_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{1,3}",
            "[0-9]{15,25}",
            Just("-1".to_owned()),
            Just("0".to_owned()),
            ".{0,4}",
        ]
    }

    fn attribute_name() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec![
                "name",
                "revenue",
                "numberofemployees",
                "creditonhold",
                "lastonholdtime",
                "primarycontactid",
                "accountid",
                "nosuchcolumn",
            ])
            .prop_map(str::to_owned),
            ".{0,6}",
        ]
    }

    fn condition_xml() -> impl Strategy<Value = String> {
        (
            attribute_name(),
            proptest::sample::select(vec![
                "eq", "ne", "neq", "gt", "ge", "lt", "le", "null", "not-null", "like",
                "not-like", "begins-with", "not-begin-with", "ends-with", "not-end-with", "in",
                "not-in", "between",
            ]),
            proptest::option::of(".{0,12}"),
            proptest::collection::vec(".{0,8}", 0..3),
        )
            .prop_map(|(attribute, operator, value, values)| {
                let value = value.map_or_else(String::new, |v| {
                    format!(" value=\"{}\"", xml_escape(&v))
                });
                let values: String = values
                    .iter()
                    .map(|v| format!("<value>{}</value>", xml_escape(v)))
                    .collect();
                format!(
                    "<condition attribute=\"{}\" operator=\"{operator}\"{value}>{values}</condition>",
                    xml_escape(&attribute)
                )
            })
    }

    fn filter_xml() -> impl Strategy<Value = String> {
        let leaf = (
            proptest::sample::select(vec!["and", "or", "xor"]),
            proptest::collection::vec(condition_xml(), 0..3),
        )
            .prop_map(|(kind, conditions)| {
                format!("<filter type=\"{kind}\">{}</filter>", conditions.concat())
            });
        leaf.prop_recursive(3, 12, 3, |inner| {
            (
                proptest::sample::select(vec!["and", "or"]),
                proptest::collection::vec(prop_oneof![inner, condition_xml()], 0..3),
            )
                .prop_map(|(kind, items)| {
                    format!("<filter type=\"{kind}\">{}</filter>", items.concat())
                })
        })
    }

    fn fetch_xml() -> impl Strategy<Value = String> {
        (
            proptest::option::of(number_text()),
            proptest::option::of(number_text()),
            proptest::option::of(number_text()),
            proptest::option::of(".{0,30}"),
            proptest::collection::vec(
                prop_oneof![
                    attribute_name()
                        .prop_map(|n| format!("<attribute name=\"{}\"/>", xml_escape(&n))),
                    Just("<all-attributes/>".to_owned()),
                    (attribute_name(), any::<bool>()).prop_map(|(n, d)| format!(
                        "<order attribute=\"{}\" descending=\"{d}\"/>",
                        xml_escape(&n)
                    )),
                    filter_xml(),
                ],
                0..5,
            ),
        )
            .prop_map(|(top, count, page, cookie, children)| {
                let attribute = |name: &str, value: Option<String>| {
                    value.map_or_else(String::new, |v| format!(" {name}=\"{}\"", xml_escape(&v)))
                };
                format!(
                    "<fetch{}{}{}{}><entity name=\"account\">{}</entity></fetch>",
                    attribute("top", top),
                    attribute("count", count),
                    attribute("page", page),
                    attribute("paging-cookie", cookie),
                    children.concat()
                )
            })
    }

    /// Runs `xml` against an empty accounts table.
    fn run(xml: &str) -> ApiResult<DvResponse> {
        let schema = Schema::build(&[]).expect("schema");
        let table = schema.by_set("accounts").expect("accounts");
        let store = Store::open(None, &schema).expect("store");
        let db = store.lock();
        let request = CollectionRequest {
            options: &QueryOptions::default(),
            prefer: &Prefer::default(),
            origin: Origin {
                api_root: "http://127.0.0.1/api/data/v9.2/",
                path: "accounts",
            },
            expansion: None,
        };
        execute(&db, &schema, table, xml, &request)
    }

    /// One condition inside `depth` nested `<filter type="kind">`s.
    fn nested(depth: usize, kind: &str) -> String {
        format!(
            "<fetch><entity name=\"account\">{}<condition attribute=\"name\" operator=\"eq\" value=\"x\"/>{}</entity></fetch>",
            format!("<filter type=\"{kind}\">").repeat(depth),
            "</filter>".repeat(depth)
        )
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn fetchxml_never_panics_on_text(text in any::<String>()) {
            let _ = run(&text);
        }

        #[test]
        fn fetchxml_never_panics_on_generated_queries(xml in fetch_xml()) {
            let _ = run(&xml);
        }

        /// Deep `<filter>` nesting: without the depth limit, a few hundred levels overflow
        /// the stack of the thread that translates the query. (From one level: a
        /// `<condition>` outside any `<filter>` is not FetchXML, and is refused as such.)
        #[test]
        fn deep_filters_are_refused_never_overflowing(depth in 1_usize..3000, or in any::<bool>()) {
            let outcome = run(&nested(depth, if or { "or" } else { "and" }));
            prop_assert_eq!(outcome.is_ok(), depth <= MAX_FILTER_DEPTH);
        }
    }

    #[test]
    fn the_reported_crash_is_a_400() {
        assert!(run(&nested(3000, "and")).is_err());
        let Err(error) = run(&nested(500, "and")) else {
            panic!("500 nested filters were accepted");
        };
        assert_eq!(error.status, 400);
        assert!(
            error.message.contains("more than 100 levels"),
            "{}",
            error.message
        );
        assert!(run(&nested(MAX_FILTER_DEPTH, "and")).is_ok());
        let many = format!(
            "<fetch><entity name=\"account\"><filter type=\"or\">{}</filter></entity></fetch>",
            "<condition attribute=\"name\" operator=\"eq\" value=\"x\"/>"
                .repeat(MAX_FILTER_TERMS + 1)
        );
        assert!(run(&many).is_err());
    }
}
