//! The ADO.NET connection string grammar that .NET's `DbConnectionStringBuilder` follows,
//! and so the ServiceClient: `key=value` pairs separated by `;`, keys trimmed (`==` in a
//! key is a literal `=`), unquoted values trimmed and running to the next `;`, values
//! quoted with `'` or `"` (the enclosing quote doubled inside), empty pairs skipped.
//!
//! This layer knows nothing about which keys exist. Its errors carry positions and raw key
//! names; the caller decides which names are safe to show (a key name is shown only when it
//! is a known key, since a misquoted secret can leak into an unknown "key").

/// One `key=value` pair as written.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RawPair {
    /// The key, trimmed, with `==` turned into `=`; case as written.
    pub(crate) key: String,
    /// The value: unquoted and trimmed, or the text between the quotes.
    pub(crate) value: String,
}

/// Why the text is not a connection string. Holds no value text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// 1-based character position where the offending pair (or character) starts.
    pub(crate) position: usize,
    /// What is wrong.
    pub(crate) problem: SyntaxProblem,
    /// The key of the pair being read, if its key was complete (raw, not shown unless known).
    pub(crate) key: Option<String>,
    /// The key of the pair before, if any (raw, not shown unless known).
    pub(crate) previous_key: Option<String>,
}

/// The kinds of syntax error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyntaxProblem {
    /// Text with no `=` before the end of the string.
    KeyWithoutEquals,
    /// A `;` inside a key: usually an unquoted value with `;` before it.
    SemicolonInKey,
    /// `=value` with nothing before the `=`.
    EmptyKey,
    /// A control character outside quotes.
    ControlCharacter,
    /// A quoted value whose closing quote is missing.
    UnclosedQuote,
    /// Text after a closing quote, before the next `;`.
    TextAfterQuote,
    /// An unquoted value that ends with a quote character.
    UnquotedValueEndsWithQuote,
}

/// Splits `input` into pairs, in order (duplicates kept; the caller resolves them).
pub(crate) fn split(input: &str) -> Result<Vec<RawPair>, SyntaxError> {
    let chars: Vec<char> = input.chars().collect();
    let n = chars.len();
    let mut pairs: Vec<RawPair> = Vec::new();
    let mut i = 0;
    loop {
        while i < n && (chars[i] == ';' || chars[i].is_whitespace()) {
            i += 1;
        }
        if i >= n {
            return Ok(pairs);
        }
        let previous_key = pairs.last().map(|pair| pair.key.clone());
        let error = |position: usize, problem: SyntaxProblem, key: Option<String>| SyntaxError {
            position: position + 1,
            problem,
            key,
            previous_key: previous_key.clone(),
        };
        let start = i;

        // The key runs to a single `=`; `==` is a literal `=`.
        let mut key = String::new();
        loop {
            let Some(&c) = chars.get(i) else {
                return Err(error(start, SyntaxProblem::KeyWithoutEquals, None));
            };
            match c {
                '=' if chars.get(i + 1) == Some(&'=') => {
                    key.push('=');
                    i += 2;
                }
                '=' => {
                    i += 1;
                    break;
                }
                ';' => return Err(error(start, SyntaxProblem::SemicolonInKey, None)),
                c if c.is_control() && !c.is_whitespace() => {
                    return Err(error(i, SyntaxProblem::ControlCharacter, None));
                }
                c => {
                    key.push(c);
                    i += 1;
                }
            }
        }
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(error(start, SyntaxProblem::EmptyKey, None));
        }

        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        let value_start = i;
        let value = match chars.get(i) {
            None => String::new(),
            Some(';') => {
                i += 1;
                String::new()
            }
            Some(&quote @ ('\'' | '"')) => {
                i += 1;
                let mut value = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(error(value_start, SyntaxProblem::UnclosedQuote, Some(key)));
                    };
                    i += 1;
                    if c == quote {
                        if chars.get(i) == Some(&quote) {
                            value.push(quote);
                            i += 1;
                        } else {
                            break;
                        }
                    } else {
                        value.push(c);
                    }
                }
                while i < n && chars[i].is_whitespace() {
                    i += 1;
                }
                match chars.get(i) {
                    None => {}
                    Some(';') => i += 1,
                    Some(_) => {
                        return Err(error(i, SyntaxProblem::TextAfterQuote, Some(key)));
                    }
                }
                value
            }
            Some(_) => {
                let mut value = String::new();
                while let Some(&c) = chars.get(i) {
                    i += 1;
                    if c == ';' {
                        break;
                    }
                    if c.is_control() && !c.is_whitespace() {
                        return Err(error(i - 1, SyntaxProblem::ControlCharacter, Some(key)));
                    }
                    value.push(c);
                }
                let value = value.trim_end().to_owned();
                if value.ends_with(['\'', '"']) {
                    return Err(error(
                        value_start,
                        SyntaxProblem::UnquotedValueEndsWithQuote,
                        Some(key),
                    ));
                }
                value
            }
        };
        pairs.push(RawPair { key, value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Vec<(String, String)> {
        split(input)
            .unwrap_or_else(|error| panic!("{input:?}: {error:?}"))
            .into_iter()
            .map(|pair| (pair.key, pair.value))
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn valid_inputs_split_as_ado_net_does() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("  ;; ; ", &[]),
            ("a=b", &[("a", "b")]),
            ("a=b;", &[("a", "b")]),
            (" a = b ; c=d;;", &[("a", "b"), ("c", "d")]),
            ("Service Uri = https://x ", &[("Service Uri", "https://x")]),
            ("Secret=a=b=c", &[("Secret", "a=b=c")]),
            ("k=it's", &[("k", "it's")]),
            ("k='a;b'", &[("k", "a;b")]),
            ("k=\"it's\"", &[("k", "it's")]),
            ("k='it''s'", &[("k", "it's")]),
            ("k=\"say \"\"hi\"\"\"", &[("k", "say \"hi\"")]),
            ("k=' padded ' ; j=x", &[("k", " padded "), ("j", "x")]),
            ("k=;j=", &[("k", ""), ("j", "")]),
            ("k=''", &[("k", "")]),
            ("a==b=c", &[("a=b", "c")]),
            ("==x=1", &[("=x", "1")]),
            ("k=a b  c", &[("k", "a b  c")]),
            ("k=1;k=2", &[("k", "1"), ("k", "2")]),
            ("k=x\n;\nj=y\r\n", &[("k", "x"), ("j", "y")]),
        ];
        for (input, expected) in cases {
            assert_eq!(ok(input), pairs(expected), "{input:?}");
        }
    }

    #[test]
    fn invalid_inputs_say_where() {
        let cases: &[(&str, SyntaxProblem, usize)] = &[
            ("a=b;c", SyntaxProblem::KeyWithoutEquals, 5),
            ("=b", SyntaxProblem::EmptyKey, 1),
            ("  =b", SyntaxProblem::EmptyKey, 3),
            ("k='abc", SyntaxProblem::UnclosedQuote, 3),
            ("k=\"abc'", SyntaxProblem::UnclosedQuote, 3),
            ("k='a'b;", SyntaxProblem::TextAfterQuote, 6),
            ("k=abc';", SyntaxProblem::UnquotedValueEndsWithQuote, 3),
            ("Password=a;b;Url=x", SyntaxProblem::SemicolonInKey, 12),
            ("k=a\u{1}b", SyntaxProblem::ControlCharacter, 4),
        ];
        for (input, problem, position) in cases {
            let error = split(input).err().expect("an error");
            assert_eq!(
                (error.problem, error.position),
                (*problem, *position),
                "{input:?}"
            );
        }
        let error = split("Password=a;b;Url=x").err().expect("an error");
        assert_eq!(error.previous_key.as_deref(), Some("Password"));
    }
}
