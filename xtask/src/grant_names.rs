//! The grant-neutrality check, part of `cargo xtask deps`: the crates every grant builds
//! on — auth-core, webapi, the token stores — name no grant in their code. A grant's
//! knowledge lives in its own crate; a name like `DeviceCode` or `user_realm` in
//! auth-core means a new grant would have to change the foundation.
//!
//! The check reads the Rust source of those crates, drops comments and string literals
//! (documentation may mention grants as examples, and wire values such as `grant_type`
//! strings belong to whoever sends them), and looks for identifiers that contain a grant's
//! name, in any case and with or without underscores.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::cmd::project_root;

/// The crates that must stay grant-neutral, by directory under `crates/`.
const NEUTRAL_CRATES: &[&str] = &["auth-core", "webapi", "token-store-redis"];

/// What an identifier must not contain once lower-cased and stripped of underscores: the
/// grants d365 has or plans, and the knowledge that belongs to one of them.
const GRANT_WORDS: &[&str] = &[
    "clientcredentials",
    "ropc",
    "usernamepassword",
    "userrealm",
    "federateduser",
    "devicecode",
    "deviceauthorization",
    "authorizationcode",
    "authcode",
    "pkce",
    "managedidentity",
    "azurecli",
    "workloadidentity",
    "integratedwindows",
    "ntlm",
    "kerberos",
];

/// One identifier that names a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The file, relative to the workspace root.
    pub(crate) file: PathBuf,
    /// 1-based line.
    pub(crate) line: usize,
    /// The identifier.
    pub(crate) identifier: String,
    /// The grant word it contains.
    pub(crate) word: &'static str,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: `{}` names a grant (`{}`)",
            self.file.display(),
            self.line,
            self.identifier,
            self.word
        )
    }
}

/// Fails with every grant name found in the grant-neutral crates.
pub(crate) fn check() -> Result<()> {
    let root = project_root();
    let mut findings = Vec::new();
    let mut files = 0;
    for name in NEUTRAL_CRATES {
        let dir = root.join("crates").join(name).join("src");
        for file in rust_files(&dir)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let relative = file.strip_prefix(&root).unwrap_or(&file).to_path_buf();
            findings.extend(
                scan(&text)
                    .into_iter()
                    .map(|(line, identifier, word)| Finding {
                        file: relative.clone(),
                        line,
                        identifier,
                        word,
                    }),
            );
            files += 1;
        }
    }
    println!(
        "    grant names in {}: {files} files, {}",
        NEUTRAL_CRATES.join(", "),
        if findings.is_empty() { "none" } else { "FOUND" }
    );
    if !findings.is_empty() {
        let list: Vec<String> = findings.iter().map(ToString::to_string).collect();
        bail!(
            "{} grant name(s) in crates that must not know any grant; move the code to the grant's crate, or give it a name that says what it does for every grant:\n  {}",
            findings.len(),
            list.join("\n  ")
        );
    }
    Ok(())
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The identifiers of `source` (comments and literals removed) that contain a grant
/// word: `(line, identifier, word)`.
pub(crate) fn scan(source: &str) -> Vec<(usize, String, &'static str)> {
    let code = strip_comments_and_literals(source);
    let mut found = Vec::new();
    for (index, line) in code.lines().enumerate() {
        for identifier in identifiers(line) {
            let folded = identifier.to_ascii_lowercase().replace('_', "");
            if let Some(word) = GRANT_WORDS.iter().find(|word| folded.contains(*word)) {
                found.push((index + 1, identifier.to_owned(), *word));
            }
        }
    }
    found
}

/// The identifiers of a line of code.
fn identifiers(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

/// `source` with comments, string, byte-string and char literals replaced by spaces; line
/// breaks are kept so line numbers stay true.
fn strip_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"…", r#"…"#, br"…": ends at a quote followed by as many hashes.
            i += chars[i..].iter().position(|&c| c == '"').unwrap_or(0) + 1;
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&c| c == '#') {
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            i += if c == 'b' { 2 } else { 1 };
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    blank(&mut out, c);
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The number of `#` of a raw string starting at `i` (`r"`, `r#"`, `br"`), if one does
/// and `r` is not the end of an identifier.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let starts_word = i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_');
    if !starts_word {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some(hashes)
}

/// Whether the `'` at `i` opens a char literal rather than a lifetime (`'a`, `'static`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    matches!(
        (chars.get(i + 1), chars.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_naming_a_grant_are_found_in_any_spelling() {
        let source = "pub enum ConfigError {\n    FederatedUser,\n}\nfn device_code_endpoint() {}\nlet ROPC_SCOPE = 1;\nstruct AzureCliToken;\n";
        let found: Vec<(usize, String)> = scan(source)
            .into_iter()
            .map(|(line, identifier, _)| (line, identifier))
            .collect();
        assert_eq!(
            found,
            [
                (2, "FederatedUser".to_owned()),
                (4, "device_code_endpoint".to_owned()),
                (5, "ROPC_SCOPE".to_owned()),
                (6, "AzureCliToken".to_owned()),
            ]
        );
    }

    #[test]
    fn comments_strings_and_chars_may_mention_grants() {
        let source = r###"
//! The device code grant is an example here.
/// `ClientCredentials` in a doc comment.
/* a block comment: user_realm /* nested: ropc */ still comment */
let grant_type = "client_credentials";
let raw = r#"device_code "quoted" inside"#;
let bytes = b"managed_identity";
let c = '"'; let tick = '\''; fn lifetime<'a>(x: &'a str) {}
let escaped = "a \" device_code";
"###;
        assert_eq!(scan(source), []);
    }

    #[test]
    fn code_after_a_literal_is_still_read() {
        let source = "let s = \"x\"; let user_realm = s; let t = r#\"y\"#; DeviceCode::new()";
        let found: Vec<String> = scan(source)
            .into_iter()
            .map(|(_, identifier, _)| identifier)
            .collect();
        assert_eq!(found, ["user_realm", "DeviceCode"]);
    }
}
