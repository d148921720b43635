//! `$filter`: a lexer for OData literals (shared with key segments), a recursive-descent
//! parser (`or` < `and` < `not` < comparisons and functions, parentheses) and the translation
//! into a parameterized SQL condition, type-checked against the table as Dataverse does.
//! The parser refuses more than [`MAX_FILTER_DEPTH`] levels of nesting and
//! [`MAX_FILTER_TERMS`] conditions, so no query can exhaust the stack or SQLite's limits.

use rusqlite::types::Value as Sql;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::dataverse::errors::{ApiError, ApiResult};
use crate::dataverse::odata::{MAX_FILTER_DEPTH, MAX_FILTER_TERMS};
use crate::dataverse::schema::{Kind, Table};
use crate::dataverse::store::{format_time, ident};

/// A literal in a filter or a key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Null,
    String(String),
    Int(i64),
    Decimal(f64),
    Bool(bool),
    Guid(String),
    /// Normalized to the stored form (`2024-01-02T03:04:05Z`).
    DateTime(String),
}

impl Literal {
    fn edm(&self) -> &'static str {
        match self {
            Self::Null => "Edm.Null",
            Self::String(_) => "Edm.String",
            Self::Int(v) if i32::try_from(*v).is_ok() => "Edm.Int32",
            Self::Int(_) => "Edm.Int64",
            Self::Decimal(_) => "Edm.Decimal",
            Self::Bool(_) => "Edm.Boolean",
            Self::Guid(_) => "Edm.Guid",
            Self::DateTime(_) => "Edm.DateTimeOffset",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Lit(Literal),
    Open,
    Close,
    Comma,
    Equals,
    Open2,
    Close2,
}

/// Parses a date-time or date literal into the stored form.
pub(crate) fn normalize_datetime(text: &str) -> Option<String> {
    if let Ok(value) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(format_time(value));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, format)
        .ok()
        .map(|date| format_time(date.midnight().assume_utc()))
}

fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

pub(crate) fn parse_guid(text: &str) -> Option<String> {
    let text = text.trim().trim_start_matches('{').trim_end_matches('}');
    is_guid(text).then(|| text.to_ascii_lowercase())
}

fn syntax(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("0x80060888", message)
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    aliases: &'a [(String, String)],
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn tokens(mut self) -> ApiResult<Vec<Token>> {
        let mut tokens = Vec::new();
        while let Some(token) = self.next_token()? {
            tokens.push(token);
        }
        Ok(tokens)
    }

    fn next_token(&mut self) -> ApiResult<Option<Token>> {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
        let Some(first) = trimmed.chars().next() else {
            return Ok(None);
        };
        let single = match first {
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            ',' => Some(Token::Comma),
            '=' => Some(Token::Equals),
            '[' => Some(Token::Open2),
            ']' => Some(Token::Close2),
            _ => None,
        };
        if let Some(token) = single {
            self.pos += 1;
            return Ok(Some(token));
        }
        if first == '\'' {
            let mut value = String::new();
            let mut chars = trimmed[1..].char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().map(|(_, c)| *c) == Some('\'') {
                        chars.next();
                        value.push('\'');
                        continue;
                    }
                    self.pos += i + 2;
                    return Ok(Some(Token::Lit(Literal::String(value))));
                }
                value.push(c);
            }
            return Err(syntax(format!(
                "There is an unterminated string literal at position {} in '{}'.",
                self.pos, self.text
            )));
        }
        if first == '@' {
            let end = trimmed
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@'))
                .unwrap_or(trimmed.len());
            let name = &trimmed[..end];
            self.pos += end;
            let value = self
                .aliases
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| syntax(format!("The parameter alias '{name}' has no value.")))?;
            let tokens = Lexer {
                text: value,
                pos: 0,
                aliases: &[],
            }
            .tokens()?;
            return match tokens.as_slice() {
                [Token::Lit(lit)] => Ok(Some(Token::Lit(lit.clone()))),
                _ => Err(syntax(format!(
                    "The parameter alias '{name}' is not a literal."
                ))),
            };
        }
        let word_end = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_.:-+/{}".contains(c)))
            .unwrap_or(trimmed.len());
        let word = &trimmed[..word_end];
        if word.len() >= 36
            && is_guid(&word[..36])
            && !word[36..].starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            self.pos += 36;
            return Ok(Some(Token::Lit(Literal::Guid(
                word[..36].to_ascii_lowercase(),
            ))));
        }
        if word.len() >= 10
            && word.as_bytes()[4] == b'-'
            && word[..4].bytes().all(|b| b.is_ascii_digit())
        {
            if let Some(value) = normalize_datetime(word) {
                self.pos += word_end;
                return Ok(Some(Token::Lit(Literal::DateTime(value))));
            }
            return Err(syntax(format!(
                "'{word}' is not a valid date-time literal."
            )));
        }
        if first.is_ascii_digit()
            || (first == '-' && trimmed[1..].starts_with(|c: char| c.is_ascii_digit()))
        {
            let end = trimmed[1..]
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E'))
                .map_or(trimmed.len(), |i| i + 1);
            let number = &trimmed[..end];
            let mut consumed = end;
            // OData type suffixes: 1.5M (decimal), 10L (int64), 1.5d / 1.5f.
            if trimmed[end..].starts_with(['M', 'm', 'L', 'l', 'd', 'D', 'f', 'F']) {
                consumed += 1;
            }
            self.pos += consumed;
            let literal = if let Ok(int) = number.parse::<i64>() {
                Literal::Int(int)
            } else {
                number
                    .parse::<f64>()
                    .map(Literal::Decimal)
                    .map_err(|_| syntax(format!("'{number}' is not a valid number.")))?
            };
            return Ok(Some(Token::Lit(literal)));
        }
        let end = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '/'))
            .unwrap_or(trimmed.len());
        if end == 0 {
            return Err(syntax(format!(
                "Syntax error: character '{first}' is not valid at position {} in '{}'.",
                self.pos, self.text
            )));
        }
        let word = &trimmed[..end];
        self.pos += end;
        // An enum literal, `Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'`: its value.
        if word.contains('.') && self.rest().starts_with('\'') {
            return match self.next_token()? {
                Some(Token::Lit(Literal::String(value))) => {
                    Ok(Some(Token::Lit(Literal::String(value))))
                }
                _ => Err(syntax(format!(
                    "'{word}' is not followed by an enum value."
                ))),
            };
        }
        Ok(Some(match word {
            "null" => Token::Lit(Literal::Null),
            "true" => Token::Lit(Literal::Bool(true)),
            "false" => Token::Lit(Literal::Bool(false)),
            _ => Token::Ident(word.to_owned()),
        }))
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }

    fn flipped(self) -> Self {
        match self {
            Self::Gt => Self::Lt,
            Self::Ge => Self::Le,
            Self::Lt => Self::Gt,
            Self::Le => Self::Ge,
            other => other,
        }
    }

    fn kind_name(self) -> &'static str {
        match self {
            Self::Eq => "Equal",
            Self::Ne => "NotEqual",
            Self::Gt => "GreaterThan",
            Self::Ge => "GreaterThanOrEqual",
            Self::Lt => "LessThan",
            Self::Le => "LessThanOrEqual",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
        }
    }
}

/// A string function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Contains,
    StartsWith,
    EndsWith,
}

/// A parsed condition. FetchXML conditions translate into the same tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        property: String,
        op: Op,
        value: Literal,
    },
    Func {
        func: Func,
        property: String,
        value: String,
    },
    /// A raw SQL `LIKE` pattern (FetchXML `like`).
    Like {
        property: String,
        pattern: String,
    },
    In {
        property: String,
        values: Vec<Literal>,
    },
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    text: String,
    /// Open parentheses and `not`s around the current position.
    depth: usize,
    /// Comparisons and function calls so far.
    terms: usize,
}

/// Refuses a condition nested deeper than [`MAX_FILTER_DEPTH`]: every level is a stack frame
/// here and in the translation to SQL, so an unbounded depth would let one read-only
/// request overflow the server's stack.
pub(crate) fn too_deep(what: &str) -> ApiError {
    syntax(format!(
        "The {what} nests conditions more than {MAX_FILTER_DEPTH} levels deep; flatten it (a long chain of `and`/`or` needs no nesting)."
    ))
}

/// Refuses a condition with more than [`MAX_FILTER_TERMS`] comparisons.
pub(crate) fn too_many_terms(what: &str) -> ApiError {
    syntax(format!(
        "The {what} has more than {MAX_FILTER_TERMS} conditions; split the query, or use `in` (FetchXML) for a list of values."
    ))
}

impl Parser {
    /// Runs `inner` one level deeper, refusing to pass the depth limit.
    fn nested<T>(&mut self, inner: impl FnOnce(&mut Self) -> ApiResult<T>) -> ApiResult<T> {
        if self.depth >= MAX_FILTER_DEPTH {
            return Err(too_deep("$filter"));
        }
        self.depth += 1;
        let outcome = inner(self);
        self.depth -= 1;
        outcome
    }

    /// Counts one comparison or function call, refusing to pass the limit.
    fn term(&mut self) -> ApiResult<()> {
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return Err(too_many_terms("$filter"));
        }
        Ok(())
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w == word)
    }

    fn error(&self) -> ApiError {
        syntax(format!(
            "Syntax error at position {} in '{}'.",
            self.pos, self.text
        ))
    }

    fn or(&mut self) -> ApiResult<Expr> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> ApiResult<Expr> {
        let mut items = vec![self.unary()?];
        while self.keyword("and") {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> ApiResult<Expr> {
        if self.keyword("not") {
            self.pos += 1;
            return self.nested(|parser| Ok(Expr::Not(Box::new(parser.unary()?))));
        }
        self.primary()
    }

    fn primary(&mut self) -> ApiResult<Expr> {
        match self.next() {
            Some(Token::Open) => self.nested(|parser| {
                let inner = parser.or()?;
                match parser.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err(parser.error()),
                }
            }),
            Some(Token::Ident(name)) if self.peek() == Some(&Token::Open) => {
                self.pos += 1;
                self.term()?;
                self.function(&name)
            }
            Some(Token::Ident(property)) => {
                self.term()?;
                let op = self.operator()?;
                match self.next() {
                    Some(Token::Lit(value)) => Ok(Expr::Compare {
                        property,
                        op,
                        value,
                    }),
                    Some(Token::Ident(other)) => Err(ApiError::bad_request(
                        "0x0",
                        format!(
                            "Comparing two properties ('{property}', '{other}') is not supported."
                        ),
                    )),
                    _ => Err(self.error()),
                }
            }
            Some(Token::Lit(value)) => {
                self.term()?;
                let op = self.operator()?.flipped();
                match self.next() {
                    Some(Token::Ident(property)) => Ok(Expr::Compare {
                        property,
                        op,
                        value,
                    }),
                    _ => Err(self.error()),
                }
            }
            _ => Err(self.error()),
        }
    }

    fn operator(&mut self) -> ApiResult<Op> {
        match self.next() {
            Some(Token::Ident(word)) => Op::parse(&word).ok_or_else(|| self.error()),
            _ => Err(self.error()),
        }
    }

    fn function(&mut self, name: &str) -> ApiResult<Expr> {
        let func = match name {
            "contains" => Func::Contains,
            "startswith" => Func::StartsWith,
            "endswith" => Func::EndsWith,
            other => {
                return Err(ApiError::bad_request(
                    "0x0",
                    format!(
                        "An unknown function with name '{other}' was found. This may also be a function import or a key lookup on a navigation property, which is not allowed."
                    ),
                ));
            }
        };
        let Some(Token::Ident(property)) = self.next() else {
            return Err(self.error());
        };
        if self.next() != Some(Token::Comma) {
            return Err(self.error());
        }
        let Some(Token::Lit(Literal::String(value))) = self.next() else {
            return Err(ApiError::bad_request(
                "0x0",
                format!(
                    "No function signature for the function with name '{name}' matches the specified arguments."
                ),
            ));
        };
        if self.next() != Some(Token::Close) {
            return Err(self.error());
        }
        Ok(Expr::Func {
            func,
            property,
            value,
        })
    }
}

/// Parses a `$filter` expression.
pub(crate) fn parse(text: &str, aliases: &[(String, String)]) -> ApiResult<Expr> {
    let tokens = Lexer {
        text,
        pos: 0,
        aliases,
    }
    .tokens()?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        text: text.to_owned(),
        depth: 0,
        terms: 0,
    };
    let expr = parser.or()?;
    if parser.pos != parser.tokens.len() {
        return Err(parser.error());
    }
    Ok(expr)
}

/// The inside of a key segment: one bare literal (the primary key) or `name=literal` pairs.
pub(crate) fn parse_key(text: &str) -> ApiResult<Vec<(Option<String>, Literal)>> {
    let tokens = Lexer {
        text,
        pos: 0,
        aliases: &[],
    }
    .tokens()?;
    let bad = || {
        syntax(format!(
            "Bad Request - Error in query syntax: the key '{text}' is not valid."
        ))
    };
    if let [Token::Lit(lit)] = tokens.as_slice() {
        return Ok(vec![(None, lit.clone())]);
    }
    let mut pairs = Vec::new();
    let mut rest = tokens.as_slice();
    loop {
        match rest {
            [
                Token::Ident(name),
                Token::Equals,
                Token::Lit(lit),
                tail @ ..,
            ] => {
                pairs.push((Some(name.clone()), lit.clone()));
                match tail {
                    [] => return Ok(pairs),
                    [Token::Comma, more @ ..] => rest = more,
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        }
    }
}

fn incompatible(kind: &Kind, literal: &Literal, op: Op) -> ApiError {
    ApiError::bad_request(
        "0x0",
        format!(
            "A binary operator with incompatible types was detected. Found operand types '{}' and '{}' for operator kind '{}'.",
            kind.edm(),
            literal.edm(),
            op.kind_name()
        ),
    )
}

/// Converts a literal to the stored form of a column of `kind`.
pub(crate) fn literal_to_sql(kind: &Kind, literal: &Literal, op: Op) -> ApiResult<Sql> {
    Ok(match (kind, literal) {
        (_, Literal::Null) => Sql::Null,
        (Kind::String { .. }, Literal::String(s)) => Sql::Text(s.clone()),
        (Kind::Int | Kind::BigInt | Kind::OptionSet(_), Literal::Int(i)) => Sql::Integer(*i),
        (Kind::Decimal | Kind::Money, Literal::Int(i)) => Sql::Real(*i as f64),
        (Kind::Decimal | Kind::Money, Literal::Decimal(d)) => Sql::Real(*d),
        (Kind::Bool, Literal::Bool(b)) => Sql::Integer(i64::from(*b)),
        (Kind::DateTime, Literal::DateTime(d)) => Sql::Text(d.clone()),
        (Kind::PrimaryId | Kind::Guid | Kind::Lookup(_), Literal::Guid(g)) => Sql::Text(g.clone()),
        _ => return Err(incompatible(kind, literal, op)),
    })
}

fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Translates a condition into SQL over the table aliased `t`, pushing parameters.
pub(crate) fn to_sql(expr: &Expr, table: &Table, params: &mut Vec<Sql>) -> ApiResult<String> {
    let column = |name: &str| {
        table
            .property(name)
            .map(|p| {
                (
                    format!("t.{}", ident(&p.column.name)),
                    p.column.kind.clone(),
                )
            })
            .ok_or_else(|| ApiError::unknown_property(name, &table.logical_name))
    };
    Ok(match expr {
        Expr::And(items) | Expr::Or(items) => {
            let joiner = if matches!(expr, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            let parts = items
                .iter()
                .map(|e| to_sql(e, table, params))
                .collect::<ApiResult<Vec<_>>>()?;
            format!("({})", parts.join(joiner))
        }
        Expr::Not(inner) => format!("(NOT COALESCE({}, 0))", to_sql(inner, table, params)?),
        Expr::Compare {
            property,
            op,
            value,
        } => {
            let (sql, kind) = column(property)?;
            let value = literal_to_sql(&kind, value, *op)?;
            match (op, &value) {
                (Op::Eq, Sql::Null) => format!("{sql} IS NULL"),
                (Op::Ne, Sql::Null) => format!("{sql} IS NOT NULL"),
                (Op::Ne, _) => {
                    params.push(value);
                    format!("({sql} <> ?{} OR {sql} IS NULL)", params.len())
                }
                _ => {
                    params.push(value);
                    format!("{sql} {} ?{}", op.sql(), params.len())
                }
            }
        }
        Expr::Func {
            func,
            property,
            value,
        } => {
            let (sql, kind) = column(property)?;
            if !matches!(kind, Kind::String { .. }) {
                return Err(ApiError::bad_request(
                    "0x0",
                    format!(
                        "No function signature for the function with name '{}' matches the specified arguments. The function argument types considered are '{}, Edm.String'.",
                        match func {
                            Func::Contains => "contains",
                            Func::StartsWith => "startswith",
                            Func::EndsWith => "endswith",
                        },
                        kind.edm()
                    ),
                ));
            }
            let escaped = like_escape(value);
            let pattern = match func {
                Func::Contains => format!("%{escaped}%"),
                Func::StartsWith => format!("{escaped}%"),
                Func::EndsWith => format!("%{escaped}"),
            };
            params.push(Sql::Text(pattern));
            format!("{sql} LIKE ?{} ESCAPE '\\'", params.len())
        }
        Expr::Like { property, pattern } => {
            let (sql, _) = column(property)?;
            params.push(Sql::Text(pattern.clone()));
            format!("{sql} LIKE ?{}", params.len())
        }
        Expr::In { property, values } => {
            let (sql, kind) = column(property)?;
            if values.is_empty() {
                return Ok("0".into());
            }
            let mut placeholders = Vec::new();
            for value in values {
                params.push(literal_to_sql(&kind, value, Op::Eq)?);
                placeholders.push(format!("?{}", params.len()));
            }
            format!("{sql} IN ({})", placeholders.join(", "))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::schema::Schema;

    fn sql(filter: &str) -> Result<(String, Vec<Sql>), String> {
        let schema = Schema::build(&[]).expect("schema");
        let table = schema.by_set("accounts").expect("accounts");
        let aliases = vec![("@p1".to_owned(), "'alias'".to_owned())];
        let expr = parse(filter, &aliases).map_err(|e| e.message)?;
        let mut params = Vec::new();
        let sql = to_sql(&expr, table, &mut params).map_err(|e| e.message)?;
        Ok((sql, params))
    }

    #[test]
    fn filters_translate() {
        let cases: &[(&str, &str)] = &[
            ("name eq 'O''Neil'", "t.\"name\" = ?1"),
            ("name eq null", "t.\"name\" IS NULL"),
            ("null ne name", "t.\"name\" IS NOT NULL"),
            (
                "numberofemployees gt 5 and (revenue le 10.5 or creditonhold eq true)",
                "(t.\"numberofemployees\" > ?1 AND (t.\"revenue\" <= ?2 OR t.\"creditonhold\" = ?3))",
            ),
            (
                "not contains(name,'a%b')",
                "(NOT COALESCE(t.\"name\" LIKE ?1 ESCAPE '\\', 0))",
            ),
            (
                "startswith(name,'x') or endswith(name,'y')",
                "(t.\"name\" LIKE ?1 ESCAPE '\\' OR t.\"name\" LIKE ?2 ESCAPE '\\')",
            ),
            (
                "_primarycontactid_value eq 6C1D2E3F-0000-0000-0000-00000000A001",
                "t.\"primarycontactid\" = ?1",
            ),
            (
                "lastonholdtime ge 2024-01-02T03:04:05+01:00",
                "t.\"lastonholdtime\" >= ?1",
            ),
            ("lastonholdtime lt 2024-01-02", "t.\"lastonholdtime\" < ?1"),
            ("5 lt numberofemployees", "t.\"numberofemployees\" > ?1"),
            ("name ne 'x'", "(t.\"name\" <> ?1 OR t.\"name\" IS NULL)"),
            ("name eq @p1", "t.\"name\" = ?1"),
        ];
        for (filter, expected) in cases {
            let (sql, _) = sql(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
            assert_eq!(&sql, expected, "{filter}");
        }
        let (_, params) = sql("lastonholdtime ge 2024-01-02T03:04:05+01:00").expect("ok");
        assert_eq!(params, vec![Sql::Text("2024-01-02T02:04:05Z".into())]);
        let (_, params) = sql("name eq 'O''Neil'").expect("ok");
        assert_eq!(params, vec![Sql::Text("O'Neil".into())]);
        let (_, params) =
            sql("_primarycontactid_value eq 6C1D2E3F-0000-0000-0000-00000000A001").expect("ok");
        assert_eq!(
            params,
            vec![Sql::Text("6c1d2e3f-0000-0000-0000-00000000a001".into())]
        );
    }

    #[test]
    fn bad_filters_are_refused_with_dataverse_messages() {
        let cases: &[(&str, &str)] = &[
            (
                "Name eq 'x'",
                "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'.",
            ),
            (
                "accountid eq 'x'",
                "Found operand types 'Edm.Guid' and 'Edm.String' for operator kind 'Equal'",
            ),
            ("numberofemployees eq 'x'", "'Edm.Int32' and 'Edm.String'"),
            ("contains(numberofemployees,'1')", "No function signature"),
            ("name eq 'x", "unterminated string"),
            ("name eq", "Syntax error"),
            ("(name eq 'x'", "Syntax error"),
            ("name foo 'x'", "Syntax error"),
            ("substringof('x',name)", "unknown function"),
            (
                "primarycontactid eq null",
                "Could not find a property named 'primarycontactid'",
            ),
            ("name eq @p9", "alias '@p9'"),
        ];
        for (filter, expected) in cases {
            let err = sql(filter).expect_err(filter);
            assert!(err.contains(expected), "{filter}: {err}");
        }
    }

    #[test]
    fn keys_parse() {
        assert_eq!(
            parse_key("6c1d2e3f-0000-0000-0000-00000000a001").expect("guid"),
            vec![(
                None,
                Literal::Guid("6c1d2e3f-0000-0000-0000-00000000a001".into())
            )]
        );
        assert_eq!(
            parse_key("firstname='Joe',emailaddress1='a@b.c'").expect("pairs"),
            vec![
                (Some("firstname".into()), Literal::String("Joe".into())),
                (
                    Some("emailaddress1".into()),
                    Literal::String("a@b.c".into())
                ),
            ]
        );
        assert!(parse_key("a=").is_err());
        assert!(parse_key("a='x' b='y'").is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::dataverse::schema::Schema;
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    fn config() -> Config {
        Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        }
    }

    /// Pieces of `$filter` syntax, valid and not, to glue together.
    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec![
                "name",
                "revenue",
                "numberofemployees",
                "creditonhold",
                "lastonholdtime",
                "_primarycontactid_value",
                "accountid",
                "nosuchcolumn",
                " eq ",
                " ne ",
                " gt ",
                " ge ",
                " lt ",
                " le ",
                " and ",
                " or ",
                "not ",
                "(",
                ")",
                ",",
                "null",
                "true",
                "false",
                "contains(",
                "startswith(",
                "endswith(",
                "@p1",
                "@p2",
                "'",
                "''",
                "-",
                ".",
                "/",
                "=",
                "2024-01-02",
                "2024-01-02T03:04:05Z",
                "T",
                "+01:00",
                "6C1D2E3F-0000-0000-0000-00000000A001",
                " ",
            ])
            .prop_map(str::to_owned),
            "'[^']{0,6}'",
            "-?[0-9]{1,25}(\\.[0-9]{0,5})?(e[+-]?[0-9]{1,4})?",
            ".{0,3}",
        ]
    }

    fn check(text: &str) {
        let schema = Schema::build(&[]).expect("schema");
        let table = schema.by_set("accounts").expect("accounts");
        let aliases = vec![("@p1".to_owned(), "'alias'".to_owned())];
        if let Ok(expr) = parse(text, &aliases) {
            let mut params = Vec::new();
            let _ = to_sql(&expr, table, &mut params);
        }
        let _ = parse_key(text);
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn filter_parsing_never_panics_on_text(text in any::<String>()) {
            check(&text);
        }

        #[test]
        fn filter_parsing_never_panics_on_token_soup(
            tokens in proptest::collection::vec(token(), 0..16),
        ) {
            check(&tokens.concat());
        }

        /// Deep nesting: without the depth limit, a few hundred levels overflow the stack
        /// of the thread that parses (an abort of the whole process, not a panic).
        #[test]
        fn deep_nesting_is_refused_never_overflowing(
            wrappers in proptest::collection::vec(0_u8..4, 0..3000),
        ) {
            let mut text = "name eq 'x'".to_owned();
            for wrapper in &wrappers {
                text = match wrapper {
                    0 => format!("({text})"),
                    1 => format!("not {text}"),
                    2 => format!("not ({text})"),
                    _ => format!("(name eq 'y' or {text})"),
                };
            }
            check(&text);
            let depth: usize = wrappers.iter().map(|w| if *w == 2 { 2 } else { 1 }).sum();
            if depth > MAX_FILTER_DEPTH {
                prop_assert!(parse(&text, &[]).is_err());
            }
        }
    }

    #[test]
    fn the_reported_crashes_are_400s() {
        let cases = [
            format!("{}name eq 'x'{}", "(".repeat(450), ")".repeat(450)),
            format!("{}name eq 'x'", "not ".repeat(1000)),
            format!("{}name eq 'x'", "not ".repeat(200_000)),
            vec!["name eq 'x'"; MAX_FILTER_TERMS + 1].join(" and "),
        ];
        for text in &cases {
            let error = parse(text, &[]).unwrap_err();
            assert_eq!(error.status, 400, "{}", &text[..40.min(text.len())]);
            assert!(error.message.contains("more than"), "{}", error.message);
        }
        let just_enough = format!(
            "{}name eq 'x'{}",
            "(".repeat(MAX_FILTER_DEPTH),
            ")".repeat(MAX_FILTER_DEPTH)
        );
        assert!(parse(&just_enough, &[]).is_ok());
        let many = vec!["name eq 'x'"; MAX_FILTER_TERMS].join(" or ");
        let expr = parse(&many, &[]).unwrap();
        let schema = Schema::build(&[]).expect("schema");
        let table = schema.by_set("accounts").expect("accounts");
        to_sql(&expr, table, &mut Vec::new()).unwrap();
    }
}
