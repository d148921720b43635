//! Cutting a release in CHANGELOG.md (Keep a Changelog 1.1.0 format): the content of
//! `## [Unreleased]` moves under a new `## [X.Y.Z] - YYYY-MM-DD` heading, an empty
//! Unreleased section stays on top, and the link references at the bottom follow.

use anyhow::{Context, Result, bail, ensure};

use super::semver::Version;

/// Returns `changelog` with the Unreleased changes released as `version` on `date`
/// (`YYYY-MM-DD`). Refuses a changelog without an Unreleased section, with nothing in it,
/// or that already has a section for `version`.
pub(crate) fn release(changelog: &str, version: &Version, date: &str) -> Result<String> {
    let lines: Vec<&str> = changelog.lines().collect();
    let unreleased = lines
        .iter()
        .position(|line| is_unreleased_heading(line))
        .context("CHANGELOG.md has no `## [Unreleased]` heading")?;
    let version_heading = format!("## [{version}]");
    ensure!(
        !lines.iter().any(|line| line.trim_end() == version_heading
            || line.starts_with(&format!("{version_heading} "))),
        "CHANGELOG.md already has a section for {version}"
    );
    let end = lines[unreleased + 1..]
        .iter()
        .position(|line| line.starts_with("## ") || link_reference(line).is_some())
        .map_or(lines.len(), |offset| unreleased + 1 + offset);
    let body = trim_blank_lines(&lines[unreleased + 1..end]);
    let has_entries = body.iter().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#') && !line.starts_with("<!--")
    });
    ensure!(
        has_entries,
        "the [Unreleased] section of CHANGELOG.md is empty: list the changes in {version} there first"
    );

    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 6);
    out.extend(lines[..=unreleased].iter().map(|line| (*line).to_owned()));
    out.push(String::new());
    out.push(format!("{version_heading} - {date}"));
    out.push(String::new());
    out.extend(body.iter().map(|line| (*line).to_owned()));
    let rest = trim_leading_blank_lines(&lines[end..]);
    if !rest.is_empty() {
        out.push(String::new());
        out.extend(rest.iter().map(|line| (*line).to_owned()));
    }
    update_link_references(&mut out, version)?;

    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

/// `## [Unreleased]`, in any letter case.
fn is_unreleased_heading(line: &str) -> bool {
    line.trim_end().eq_ignore_ascii_case("## [unreleased]")
}

/// The label and target of a Markdown link reference definition line (`[label]: url`).
fn link_reference(line: &str) -> Option<(&str, &str)> {
    let (label, rest) = line.strip_prefix('[')?.split_once(']')?;
    Some((label, rest.strip_prefix(':')?.trim()))
}

/// Points `[Unreleased]` at the changes since `version` and adds a `[version]` reference
/// below it, when the changelog has link references at all.
///
/// `[Unreleased]: <base>/compare/<previous>...HEAD` becomes
/// `[Unreleased]: <base>/compare/v<version>...HEAD` plus
/// `[<version>]: <base>/compare/<previous>...v<version>`; any other `[Unreleased]` target
/// (a first release) yields `[<version>]: <base>/releases/tag/v<version>`.
fn update_link_references(lines: &mut Vec<String>, version: &Version) -> Result<()> {
    let Some(index) = lines.iter().position(|line| {
        link_reference(line).is_some_and(|(label, _)| label.eq_ignore_ascii_case("unreleased"))
    }) else {
        return Ok(());
    };
    let (label, url) = link_reference(&lines[index]).expect("found as a link reference");
    let label = label.to_owned();
    let tag = format!("v{version}");
    let (base, version_url) = match url.split_once("/compare/") {
        Some((base, range)) => {
            let Some(previous) = range.strip_suffix("...HEAD") else {
                bail!(
                    "CHANGELOG.md: cannot read the range of `[{label}]: {url}` (expected …/compare/<tag>...HEAD)"
                );
            };
            (
                base.to_owned(),
                format!("{base}/compare/{previous}...{tag}"),
            )
        }
        None => {
            let base = ["/commits/", "/tree/", "/releases/"]
                .iter()
                .find_map(|marker| url.split_once(marker).map(|(base, _)| base))
                .unwrap_or(url)
                .trim_end_matches('/')
                .to_owned();
            let version_url = format!("{base}/releases/tag/{tag}");
            (base, version_url)
        }
    };
    lines[index] = format!("[{label}]: {base}/compare/{tag}...HEAD");
    lines.insert(index + 1, format!("[{version}]: {version_url}"));
    Ok(())
}

fn trim_leading_blank_lines<'a, 'b>(lines: &'b [&'a str]) -> &'b [&'a str] {
    let start = lines
        .iter()
        .position(|line| !line.trim().is_empty())
        .unwrap_or(lines.len());
    &lines[start..]
}

fn trim_blank_lines<'a, 'b>(lines: &'b [&'a str]) -> &'b [&'a str] {
    let lines = trim_leading_blank_lines(lines);
    let end = lines
        .iter()
        .rposition(|line| !line.trim().is_empty())
        .map_or(0, |last| last + 1);
    &lines[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
# Changelog

All notable changes to this project are documented in this file.

## [Unreleased]

### Added
- `d365 whoami`.

### Fixed
- Token cache refresh.

## [0.1.0] - 2026-10-01

### Added
- First release.

[Unreleased]: https://github.com/d365-rs/d365/compare/v0.1.0...HEAD
[0.1.0]: https://github.com/d365-rs/d365/releases/tag/v0.1.0
";

    const AFTER: &str = "\
# Changelog

All notable changes to this project are documented in this file.

## [Unreleased]

## [0.2.0] - 2026-11-23

### Added
- `d365 whoami`.

### Fixed
- Token cache refresh.

## [0.1.0] - 2026-10-01

### Added
- First release.

[Unreleased]: https://github.com/d365-rs/d365/compare/v0.2.0...HEAD
[0.2.0]: https://github.com/d365-rs/d365/compare/v0.1.0...v0.2.0
[0.1.0]: https://github.com/d365-rs/d365/releases/tag/v0.1.0
";

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn moves_unreleased_changes_under_the_new_version_and_updates_links() {
        assert_eq!(release(BEFORE, &v("0.2.0"), "2026-11-23").unwrap(), AFTER);
    }

    #[test]
    fn a_first_release_gets_a_tag_link_and_no_links_means_none_are_added() {
        let first = "# Changelog\n\n## [Unreleased]\n\n### Added\n- Everything.\n\n\
                     [Unreleased]: https://github.com/d365-rs/d365/commits/main\n";
        let released = release(first, &v("0.1.0"), "2026-11-23").unwrap();
        assert_eq!(
            released,
            "# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2026-11-23\n\n### Added\n- Everything.\n\n\
             [Unreleased]: https://github.com/d365-rs/d365/compare/v0.1.0...HEAD\n\
             [0.1.0]: https://github.com/d365-rs/d365/releases/tag/v0.1.0\n"
        );
        let no_links = "## [Unreleased]\n- Everything.\n";
        assert_eq!(
            release(no_links, &v("0.1.0"), "2026-11-23").unwrap(),
            "## [Unreleased]\n\n## [0.1.0] - 2026-11-23\n\n- Everything.\n"
        );
    }

    #[test]
    fn refuses_an_empty_unreleased_section() {
        for empty in [
            "## [Unreleased]\n\n## [0.1.0] - 2026-10-01\n- First.\n",
            "## [Unreleased]\n",
            "## [Unreleased]\n\n### Added\n\n### Fixed\n\n## [0.1.0] - 2026-10-01\n- First.\n",
            "## [Unreleased]\n\n[Unreleased]: https://example.com/compare/v0.1.0...HEAD\n",
        ] {
            let error = release(empty, &v("0.2.0"), "2026-11-23").unwrap_err();
            assert!(error.to_string().contains("is empty"), "{empty:?}: {error}");
        }
    }

    #[test]
    fn refuses_a_missing_unreleased_heading_or_an_existing_version() {
        let error = release(
            "# Changelog\n\n## [0.1.0] - 2026-10-01\n",
            &v("0.2.0"),
            "2026-11-23",
        )
        .unwrap_err();
        assert!(error.to_string().contains("no `## [Unreleased]` heading"));
        let error = release(BEFORE, &v("0.1.0"), "2026-11-23").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("already has a section for 0.1.0")
        );
    }

    #[test]
    fn inline_links_are_not_link_references() {
        assert_eq!(
            link_reference("[Keep a Changelog](https://x.y/a:b), and [c]: d"),
            None
        );
        assert_eq!(
            link_reference("[0.1.0]: https://x.y"),
            Some(("0.1.0", "https://x.y"))
        );
    }

    #[test]
    fn refuses_an_unreadable_compare_link() {
        let odd = BEFORE.replace("v0.1.0...HEAD", "v0.1.0..main");
        assert!(release(&odd, &v("0.2.0"), "2026-11-23").is_err());
    }
}
