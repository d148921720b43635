//! `$expand`: `primarycontactid($select=fullname),contact_customer_accounts($select=fullname;
//! $filter=…;$orderby=…;$top=5;$expand=…)`, `primarycontactid/$ref`, and the metadata API's
//! `Attributes($select=LogicalName)`, `OptionSet`. Parsed into a tree once, bounded: at most
//! [`MAX_EXPANDS`] navigation properties in the whole tree (Dataverse's limit of 15) and
//! [`MAX_EXPAND_DEPTH`] levels, so no query can make the parser or the answer unbounded.

use crate::dataverse::errors::{ApiError, ApiResult};

/// Dataverse's limit of `$expand` options (navigation properties) in one query.
pub(crate) const MAX_EXPANDS: usize = 15;
/// How deeply `$expand` may nest.
pub(crate) const MAX_EXPAND_DEPTH: usize = 10;

/// One navigation property to expand, with the query options inside its parentheses.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ExpandItem {
    pub(crate) name: String,
    /// `nav/$ref`: only the reference (`@odata.id`).
    pub(crate) is_ref: bool,
    pub(crate) select: Option<String>,
    pub(crate) filter: Option<String>,
    pub(crate) orderby: Option<String>,
    pub(crate) top: Option<String>,
    pub(crate) expand: Vec<ExpandItem>,
}

impl ExpandItem {
    /// The `@odata.context` form of this item: `name(select,nested(…))`.
    pub(crate) fn context(&self) -> String {
        format!(
            "{}({})",
            self.name,
            context_list(self.select.as_deref(), &self.expand)
        )
    }
}

/// `a,b,nav(x,y)`: the selected names and the expanded navigation properties, as
/// `@odata.context` lists them.
pub(crate) fn context_list(select: Option<&str>, expand: &[ExpandItem]) -> String {
    let mut items: Vec<String> = select
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    items.extend(expand.iter().map(ExpandItem::context));
    items.join(",")
}

fn syntax(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("0x80060888", message)
}

/// Splits `text` at `separator` outside parentheses and single-quoted strings.
fn split_top(text: &str, separator: char) -> ApiResult<Vec<&str>> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut start = 0;
    for (index, ch) in text.char_indices() {
        match ch {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    syntax(format!("Unbalanced parentheses in '$expand={text}'."))
                })?;
            }
            c if c == separator && !quoted && depth == 0 => {
                parts.push(&text[start..index]);
                start = index + ch.len_utf8();
            }
            _ => {}
        }
    }
    if depth != 0 || quoted {
        return Err(syntax(format!(
            "Unbalanced parentheses or quotes in '$expand={text}'."
        )));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

struct Parser {
    count: usize,
}

impl Parser {
    fn items(&mut self, text: &str, depth: usize) -> ApiResult<Vec<ExpandItem>> {
        if depth > MAX_EXPAND_DEPTH {
            return Err(syntax(format!(
                "$expand nests more than {MAX_EXPAND_DEPTH} levels deep."
            )));
        }
        let mut items = Vec::new();
        for part in split_top(text, ',')? {
            let part = part.trim();
            if part.is_empty() {
                return Err(syntax(format!(
                    "An empty item was found in '$expand={text}'."
                )));
            }
            self.count += 1;
            if self.count > MAX_EXPANDS {
                return Err(syntax(format!(
                    "The query has more than {MAX_EXPANDS} $expand options; Dataverse allows at most {MAX_EXPANDS} in one query."
                )));
            }
            items.push(self.item(part, depth)?);
        }
        Ok(items)
    }

    fn item(&mut self, text: &str, depth: usize) -> ApiResult<ExpandItem> {
        let (head, options) = match text.find('(') {
            Some(open) if text.ends_with(')') => {
                (&text[..open], Some(&text[open + 1..text.len() - 1]))
            }
            Some(_) => return Err(syntax(format!("Syntax error in '$expand' item '{text}'."))),
            None => (text, None),
        };
        let head = head.trim();
        let (name, is_ref) = match head.strip_suffix("/$ref") {
            Some(name) => (name, true),
            None => (head, false),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(syntax(format!(
                "'{head}' is not a navigation property name in '$expand'."
            )));
        }
        let mut item = ExpandItem {
            name: name.to_owned(),
            is_ref,
            ..ExpandItem::default()
        };
        let Some(options) = options else {
            return Ok(item);
        };
        if is_ref && !options.trim().is_empty() {
            return Err(syntax("Query options cannot follow '$ref' in '$expand'."));
        }
        for option in split_top(options, ';')? {
            let option = option.trim();
            if option.is_empty() {
                continue;
            }
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| syntax(format!("'{option}' is not a query option in '$expand'.")))?;
            let slot = match key.trim() {
                "$select" => &mut item.select,
                "$filter" => &mut item.filter,
                "$orderby" => &mut item.orderby,
                "$top" => &mut item.top,
                "$expand" => {
                    if !item.expand.is_empty() {
                        return Err(syntax("'$expand' is given twice inside one $expand item."));
                    }
                    item.expand = self.items(value, depth + 1)?;
                    continue;
                }
                other => {
                    return Err(syntax(format!(
                        "The query option '{other}' is not supported inside $expand; use $select, $filter, $orderby, $top or $expand."
                    )));
                }
            };
            if slot.is_some() {
                return Err(syntax(format!(
                    "'{}' is given twice inside one $expand item.",
                    key.trim()
                )));
            }
            *slot = Some(value.to_owned());
        }
        Ok(item)
    }
}

/// Parses a (decoded) `$expand` value.
pub(crate) fn parse(text: &str) -> ApiResult<Vec<ExpandItem>> {
    Parser { count: 0 }.items(text, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_trees_parse() {
        let items = parse(
            "primarycontactid($select=fullname,jobtitle),contact_customer_accounts($select=fullname;$filter=startswith(fullname,'a,b');$orderby=fullname desc;$top=5;$expand=parentcustomerid_account($select=name)),parentaccountid/$ref",
        )
        .expect("parses");
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].select.as_deref(), Some("fullname,jobtitle"));
        assert_eq!(
            items[1].filter.as_deref(),
            Some("startswith(fullname,'a,b')")
        );
        assert_eq!(items[1].top.as_deref(), Some("5"));
        assert_eq!(items[1].expand[0].name, "parentcustomerid_account");
        assert!(items[2].is_ref);
        assert_eq!(
            context_list(Some("name"), &items),
            "name,primarycontactid(fullname,jobtitle),contact_customer_accounts(fullname,parentcustomerid_account(name)),parentaccountid()"
        );
    }

    #[test]
    fn bad_and_oversized_expands_are_refused() {
        let sixteen = vec!["a"; 16].join(",");
        let deep = "a($expand=".repeat(12) + "a" + &")".repeat(12);
        for (text, fragment) in [
            ("a($skip=1)", "not supported inside $expand"),
            ("a(", "Unbalanced"),
            ("a/$ref($select=x)", "$ref"),
            ("a,,b", "empty item"),
            ("a b", "not a navigation property"),
            (sixteen.as_str(), "at most 15"),
            (deep.as_str(), "levels deep"),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.code, "0x80060888");
            assert!(err.message.contains(fragment), "{text}: {}", err.message);
        }
    }
}
