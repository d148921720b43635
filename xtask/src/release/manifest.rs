//! Reading and bumping the release version in the root `Cargo.toml`, as a line-based text
//! edit that keeps every other byte (formatting, comments, order) as it was.
//!
//! Two places carry the version: `version` in `[workspace.package]` (every crate inherits
//! it) and the `version` of each internal `d365-*` entry in `[workspace.dependencies]` (the
//! requirement published crates state for one another).

use anyhow::{Context, Result, bail, ensure};

use super::semver::Version;

const PACKAGE_TABLE: &str = "workspace.package";
const DEPENDENCIES_TABLE: &str = "workspace.dependencies";
const INTERNAL_PREFIX: &str = "d365-";

/// The version in `[workspace.package]`.
pub(crate) fn workspace_version(manifest: &str) -> Result<Version> {
    let mut found = None;
    for_each_line(manifest, |table, line| {
        if table == PACKAGE_TABLE && key_of(line) == Some("version") {
            found = string_field(line, "version").map(|(start, end)| line[start..end].to_owned());
        }
        None
    });
    let text = found
        .with_context(|| format!("Cargo.toml has no `version = \"…\"` in [{PACKAGE_TABLE}]"))?;
    Version::parse(&text).context("the version in Cargo.toml [workspace.package]")
}

/// The `rust-version` in `[workspace.package]` (the MSRV every crate inherits), as written.
pub(crate) fn workspace_rust_version(manifest: &str) -> Result<String> {
    let mut found = None;
    for_each_line(manifest, |table, line| {
        if table == PACKAGE_TABLE && key_of(line) == Some("rust-version") {
            found =
                string_field(line, "rust-version").map(|(start, end)| line[start..end].to_owned());
        }
        None
    });
    let text = found.with_context(|| {
        format!("Cargo.toml has no `rust-version = \"…\"` in [{PACKAGE_TABLE}]")
    })?;
    ensure!(
        !text.is_empty()
            && text.split('.').count() <= 3
            && text
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())),
        "the rust-version in Cargo.toml [{PACKAGE_TABLE}] is not a Rust version: `{text}`"
    );
    Ok(text)
}

/// Sets `new` as the `[workspace.package]` version and as the version of every `d365-*`
/// entry of `[workspace.dependencies]`. Fails if either is missing, or an internal entry has
/// no `version` (a published crate cannot depend on a path alone).
pub(crate) fn bump_versions(manifest: &str, new: &Version, unpublished: &[&str]) -> Result<String> {
    let new = new.to_string();
    let mut package_versions = 0;
    let mut internal_entries = 0;
    let mut unversioned = Vec::new();
    let bumped = for_each_line(manifest, |table, line| {
        let key = key_of(line)?;
        if table == PACKAGE_TABLE && key == "version" {
            package_versions += 1;
            return replace_string_field(line, "version", &new);
        }
        if table == DEPENDENCIES_TABLE && key.trim_matches('"').starts_with(INTERNAL_PREFIX) {
            // A workspace member that is never published (a dev-dependency such as
            // d365-test-support) may be a path alone: cargo strips such dev-dependencies
            // when it packages a crate.
            if unpublished.contains(&key.trim_matches('"'))
                && string_field(line, "version").is_none()
            {
                return None;
            }
            internal_entries += 1;
            let replaced = replace_string_field(line, "version", &new);
            if replaced.is_none() {
                unversioned.push(key.to_owned());
            }
            return replaced;
        }
        None
    });
    ensure!(
        package_versions == 1,
        "expected one `version = \"…\"` line in Cargo.toml [{PACKAGE_TABLE}], found {package_versions}"
    );
    ensure!(
        internal_entries > 0,
        "Cargo.toml [{DEPENDENCIES_TABLE}] has no `{INTERNAL_PREFIX}*` entries to bump"
    );
    if !unversioned.is_empty() {
        bail!(
            "Cargo.toml [{DEPENDENCIES_TABLE}]: {} need a `version = \"…\"` on the entry's line \
             (one-line inline table) so the release can bump it",
            unversioned.join(", ")
        );
    }
    Ok(bumped)
}

/// Calls `edit(table, line)` for every line (without its line ending) with the name of the
/// table it is in ("" before the first header); a `Some` result replaces the line. Returns
/// the edited text with the original line endings.
fn for_each_line(manifest: &str, mut edit: impl FnMut(&str, &str) -> Option<String>) -> String {
    let mut table = String::new();
    let mut out = String::with_capacity(manifest.len() + 64);
    for raw in manifest.split_inclusive('\n') {
        let ending_len = if raw.ends_with("\r\n") {
            2
        } else {
            usize::from(raw.ends_with('\n'))
        };
        let (line, ending) = raw.split_at(raw.len() - ending_len);
        if let Some(name) = table_header(line) {
            name.clone_into(&mut table);
        }
        match edit(&table, line) {
            Some(replaced) => out.push_str(&replaced),
            None => out.push_str(line),
        }
        out.push_str(ending);
    }
    out
}

/// The table name of a `[table]` or `[[array]]` header line.
fn table_header(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let inner = line.strip_prefix('[')?;
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    let end = inner.find(']')?;
    Some(inner[..end].trim())
}

/// The key of a `key = value` line (not a comment or header).
fn key_of(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') || trimmed.starts_with('[') {
        return None;
    }
    let (key, _) = trimmed.split_once('=')?;
    Some(key.trim())
}

/// The byte range of the string value of `key = "…"` in `line`, where `key` starts the line
/// or follows `{`, `,` or whitespace (so `rust-version` is not `version`).
fn string_field(line: &str, key: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(offset) = line[from..].find(key) {
        let start = from + offset;
        from = start + key.len();
        let boundary_before = line[..start]
            .chars()
            .next_back()
            .is_none_or(|c| c == '{' || c == ',' || c.is_whitespace());
        let after = line[from..].trim_start();
        let Some(value) = after.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        if !boundary_before || !value.starts_with('"') {
            continue;
        }
        let value_start = line.len() - value.len() + 1;
        let value_end = value_start + line[value_start..].find('"')?;
        return Some((value_start, value_end));
    }
    None
}

/// `line` with the string value of `key` replaced by `new`, or `None` without such a field.
fn replace_string_field(line: &str, key: &str, new: &str) -> Option<String> {
    let (start, end) = string_field(line, key)?;
    Some(format!("{}{new}{}", &line[..start], &line[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"[workspace]
members = ["crates/*"]

[workspace.package]
version = "0.1.0"   # the release version
edition = "2024"
rust-version = "1.89"

[workspace.dependencies]
# Internal crates.
d365-auth-core = { path = "crates/auth-core", version = "0.1.0" }
d365-webapi = { path = "crates/webapi", version="0.1.0", default-features = false }

tokio = { version = "1.48", default-features = false }
serde = "1"

[dependencies]
d365-auth-core = { version = "0.0.1" }
"#;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn an_unpublished_member_may_be_a_path_alone() {
        let manifest = "[workspace.package]\nversion = \"0.1.0\"\n\n[workspace.dependencies]\n\
            d365-auth-core = { path = \"crates/auth-core\", version = \"0.1.0\" }\n\
            d365-test-support = { path = \"crates/test-support\" }\n";
        let bumped = bump_versions(manifest, &v("0.2.0"), &["d365-test-support"]).unwrap();
        assert!(
            bumped
                .contains("d365-auth-core = { path = \"crates/auth-core\", version = \"0.2.0\" }")
        );
        assert!(bumped.contains("d365-test-support = { path = \"crates/test-support\" }\n"));
        assert!(
            bump_versions(manifest, &v("0.2.0"), &[]).is_err(),
            "a published member needs a version"
        );
    }

    #[test]
    fn reads_the_workspace_rust_version() {
        let manifest = "[workspace.package]\nversion = \"0.1.0\"\nrust-version = \"1.89\"\n\n[dependencies]\nrust-version = \"9\"\n";
        assert_eq!(workspace_rust_version(manifest).unwrap(), "1.89");
        assert!(workspace_rust_version("[workspace.package]\nversion = \"0.1.0\"\n").is_err());
        let bad = "[workspace.package]\nrust-version = \"stable\"\n";
        assert!(
            workspace_rust_version(bad)
                .unwrap_err()
                .to_string()
                .contains("not a Rust version: `stable`")
        );
    }

    #[test]
    fn reads_the_workspace_package_version() {
        assert_eq!(workspace_version(MANIFEST).unwrap(), v("0.1.0"));
        assert!(workspace_version("[workspace.package]\nedition = \"2024\"\n").is_err());
        assert!(workspace_version("[package]\nversion = \"1.0.0\"\n").is_err());
    }

    #[test]
    fn bumps_the_package_version_and_internal_entries_only() {
        let bumped = bump_versions(MANIFEST, &v("0.2.0"), &[]).unwrap();
        let expected = MANIFEST
            .replace(
                r#"version = "0.1.0"   # the release"#,
                r#"version = "0.2.0"   # the release"#,
            )
            .replace(
                r#"auth-core", version = "0.1.0" }"#,
                r#"auth-core", version = "0.2.0" }"#,
            )
            .replace(r#"version="0.1.0""#, r#"version="0.2.0""#);
        assert_eq!(bumped, expected);
        assert!(bumped.contains(r#"rust-version = "1.89""#));
        assert!(bumped.contains(r#"tokio = { version = "1.48""#));
        assert!(
            bumped.contains(r#"d365-auth-core = { version = "0.0.1" }"#),
            "other tables stay"
        );
        assert_eq!(workspace_version(&bumped).unwrap(), v("0.2.0"));
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let crlf = MANIFEST.replace('\n', "\r\n");
        let bumped = bump_versions(&crlf, &v("1.0.0"), &[]).unwrap();
        assert_eq!(bumped.matches("\r\n").count(), crlf.matches("\r\n").count());
        assert_eq!(bumped.matches('\n').count(), crlf.matches('\n').count());
    }

    #[test]
    fn refuses_an_internal_entry_without_a_version() {
        let manifest = MANIFEST.replace(
            r#"d365-auth-core = { path = "crates/auth-core", version = "0.1.0" }"#,
            r#"d365-auth-core = { path = "crates/auth-core" }"#,
        );
        let error = bump_versions(&manifest, &v("0.2.0"), &[]).unwrap_err();
        assert!(
            error.to_string().contains("d365-auth-core need a `version"),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_manifest_without_the_version_or_internal_entries() {
        let no_package_version = MANIFEST.replace("version = \"0.1.0\"   #", "# version =");
        assert!(bump_versions(&no_package_version, &v("0.2.0"), &[]).is_err());
        let no_internal =
            "[workspace.package]\nversion = \"0.1.0\"\n[workspace.dependencies]\nserde = \"1\"\n";
        assert!(bump_versions(no_internal, &v("0.2.0"), &[]).is_err());
    }

    #[test]
    fn finds_only_whole_keys() {
        assert_eq!(string_field(r#"rust-version = "1.89""#, "version"), None);
        let line = r#"x = { path = "version", version = "1.0" }"#;
        let (start, end) = string_field(line, "version").unwrap();
        assert_eq!(&line[start..end], "1.0");
    }
}
