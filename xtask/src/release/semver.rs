//! Semantic versions (semver.org 2.0.0): parsing with its exact grammar, and precedence.

use std::cmp::Ordering;
use std::fmt;

use anyhow::{Result, bail, ensure};

/// A parsed `MAJOR.MINOR.PATCH[-PRE][+BUILD]` version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<Identifier>,
    build: Vec<String>,
}

/// One dot-separated pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identifier {
    Numeric(u64),
    Alphanumeric(String),
}

/// What kind of release one version is after another, as cargo-semver-checks names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReleaseType {
    Major,
    Minor,
    Patch,
}

impl ReleaseType {
    /// The word `cargo semver-checks --release-type` takes.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Major => "major",
            Self::Minor => "minor",
            Self::Patch => "patch",
        }
    }
}

impl Version {
    /// The kind of release `self` is after `previous`: under Cargo's rules a change of the
    /// first non-zero component is breaking (`0.1.0 -> 0.2.0` is major).
    pub(crate) fn release_type_after(&self, previous: &Self) -> ReleaseType {
        let ours = [self.major, self.minor, self.patch];
        let theirs = [previous.major, previous.minor, previous.patch];
        // The index of the first non-zero component of the previous version: the breaking one.
        let breaking = theirs.iter().position(|&part| part != 0).unwrap_or(2);
        match ours
            .iter()
            .zip(theirs)
            .position(|(ours, theirs)| *ours != theirs)
        {
            Some(changed) if changed <= breaking => ReleaseType::Major,
            Some(changed) if changed == breaking + 1 && breaking < 2 => ReleaseType::Minor,
            _ => ReleaseType::Patch,
        }
    }

    /// Parses `text` strictly: no leading `v`, no whitespace, no leading zeros in numbers.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let invalid =
            || format!("`{text}` is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.0)");
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let numbers: Vec<&str> = core.split('.').collect();
        let [major, minor, patch] = numbers.as_slice() else {
            bail!(invalid());
        };
        let number = |part: &str| -> Result<u64> {
            ensure!(
                !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_digit())
                    && (part == "0" || !part.starts_with('0')),
                invalid()
            );
            part.parse().map_err(|_| anyhow::anyhow!(invalid()))
        };
        let pre = match pre {
            None => Vec::new(),
            Some(pre) => pre
                .split('.')
                .map(|part| {
                    ensure!(is_identifier(part), invalid());
                    if part.bytes().all(|b| b.is_ascii_digit()) {
                        Ok(Identifier::Numeric(number(part)?))
                    } else {
                        Ok(Identifier::Alphanumeric(part.to_owned()))
                    }
                })
                .collect::<Result<_>>()?,
        };
        let build = match build {
            None => Vec::new(),
            Some(build) => build
                .split('.')
                .map(|part| {
                    ensure!(is_identifier(part), invalid());
                    Ok(part.to_owned())
                })
                .collect::<Result<_>>()?,
        };
        Ok(Self {
            major: number(major)?,
            minor: number(minor)?,
            patch: number(patch)?,
            pre,
            build,
        })
    }

    /// Semver precedence: build metadata is ignored, a pre-release sorts before its release.
    pub(crate) fn precedence(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre_release(&self.pre, &other.pre),
            })
    }
}

/// Compares pre-release identifier lists: field by field (numbers numerically and below
/// words, words in ASCII order), and a longer list wins when one is a prefix of the other.
fn compare_pre_release(left: &[Identifier], right: &[Identifier]) -> Ordering {
    for (a, b) in left.iter().zip(right) {
        let order = match (a, b) {
            (Identifier::Numeric(a), Identifier::Numeric(b)) => a.cmp(b),
            (Identifier::Numeric(_), Identifier::Alphanumeric(_)) => Ordering::Less,
            (Identifier::Alphanumeric(_), Identifier::Numeric(_)) => Ordering::Greater,
            (Identifier::Alphanumeric(a), Identifier::Alphanumeric(b)) => a.cmp(b),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    left.len().cmp(&right.len())
}

/// A non-empty run of `[0-9A-Za-z-]`.
fn is_identifier(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (index, identifier) in self.pre.iter().enumerate() {
            f.write_str(if index == 0 { "-" } else { "." })?;
            match identifier {
                Identifier::Numeric(number) => write!(f, "{number}")?,
                Identifier::Alphanumeric(word) => f.write_str(word)?,
            }
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build.join("."))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn valid_versions_round_trip() {
        for text in [
            "0.0.0",
            "0.2.0",
            "1.10.100",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0-x-y-z.--",
            "1.0.0+20130313144700",
            "1.0.0-beta+exp.sha.5114f85",
        ] {
            assert_eq!(v(text).to_string(), text);
        }
    }

    #[test]
    fn invalid_versions_are_refused() {
        for text in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "v1.2.3",
            " 1.2.3",
            "1.2.3 ",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.-3",
            "1.2.x",
            "1.2.3-",
            "1.2.3-a..b",
            "1.2.3-01",
            "1.2.3+",
            "1.2.3+a..b",
            "1.2.3-é",
            "1.2.3+a_b",
            "99999999999999999999.0.0",
        ] {
            let error = Version::parse(text).expect_err(text);
            assert!(
                error.to_string().contains("is not a semantic version"),
                "{text}"
            );
        }
    }

    #[test]
    fn precedence_follows_the_semver_spec_example() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(
                v(pair[0]).precedence(&v(pair[1])),
                Ordering::Less,
                "{pair:?}"
            );
            assert_eq!(
                v(pair[1]).precedence(&v(pair[0])),
                Ordering::Greater,
                "{pair:?}"
            );
        }
    }

    #[test]
    fn build_metadata_does_not_change_precedence() {
        assert_eq!(v("1.0.0+a").precedence(&v("1.0.0+b")), Ordering::Equal);
        assert_eq!(v("1.0.0+a").precedence(&v("1.0.0")), Ordering::Equal);
    }
}

#[cfg(test)]
mod release_type_tests {
    use super::*;

    fn release(new: &str, old: &str) -> ReleaseType {
        Version::parse(new)
            .unwrap()
            .release_type_after(&Version::parse(old).unwrap())
    }

    #[test]
    fn breaking_is_the_first_non_zero_component() {
        assert_eq!(release("2.0.0", "1.4.2"), ReleaseType::Major);
        assert_eq!(release("1.5.0", "1.4.2"), ReleaseType::Minor);
        assert_eq!(release("1.4.3", "1.4.2"), ReleaseType::Patch);
        assert_eq!(release("0.2.0", "0.1.0"), ReleaseType::Major);
        assert_eq!(release("0.1.1", "0.1.0"), ReleaseType::Minor);
        assert_eq!(release("0.0.2", "0.0.1"), ReleaseType::Major);
        assert_eq!(release("1.0.0", "0.9.0"), ReleaseType::Major);
    }
}
