//! The checks a release runs before anything is edited, and `--dry-run` runs alone: every
//! crate packages in publish order, each package carries its licences and README, the
//! public API is semver-compatible with the previous release, and the crates build with
//! the MSRV their own `rust-version` declares (crates that declare a newer one than the
//! workspace's are checked with that toolchain, in a group of their own).
//!
//! [`checks`] decides which checks run and which are skipped — and why — from what the
//! machine has ([`Tools`]); it is pure and unit-tested. A skipped check is printed with its
//! reason and listed in the summary, never silently left out.

use crate::cmd::Cmd;

use super::semver::ReleaseType;

/// Files every published package must contain (`cargo package --list`).
pub(crate) const REQUIRED_FILES: &[&str] = &["LICENSE-MIT", "LICENSE-APACHE", "README.md"];

/// What the machine offers the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tools {
    /// `cargo semver-checks --version` succeeds.
    pub(crate) semver_checks: bool,
    /// The MSRVs whose toolchain is installed (`rustup run <msrv> cargo --version`
    /// succeeds).
    pub(crate) msrv_toolchains: Vec<String>,
    /// `rustup run nightly cargo --version` succeeds: docs.rs builds with nightly.
    pub(crate) nightly: bool,
}

/// The crates that declare one `rust-version`, in publish order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MsrvGroup {
    /// The `rust-version` (`1.89`).
    pub(crate) rust_version: String,
    /// Its crates, in publish order.
    pub(crate) crates: Vec<String>,
}

/// Groups `publish_order` by each crate's `rust-version` (`rust_version_of`), the groups in
/// the order their first crate publishes.
pub(crate) fn msrv_groups(
    publish_order: &[String],
    rust_version_of: impl Fn(&str) -> String,
) -> Vec<MsrvGroup> {
    let mut groups: Vec<MsrvGroup> = Vec::new();
    for name in publish_order {
        let version = rust_version_of(name);
        match groups
            .iter_mut()
            .find(|group| group.rust_version == version)
        {
            Some(group) => group.crates.push(name.clone()),
            None => groups.push(MsrvGroup {
                rust_version: version,
                crates: vec![name.clone()],
            }),
        }
    }
    groups
}

/// What a check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Run this command (program and arguments); a failure stops the release.
    Command(Vec<String>),
    /// `cargo package --list -p <crate>` for each crate: each must list [`REQUIRED_FILES`].
    PackageContents(Vec<String>),
    /// Not run, for this reason (printed, and listed in the summary).
    Skipped(String),
}

/// One named check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) action: Action,
}

/// The release being checked, as far as the checks care.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    /// The publishable crates in dependency order.
    pub(crate) publish_order: &'a [String],
    /// The crates by the `rust-version` each declares.
    pub(crate) msrv_groups: &'a [MsrvGroup],
    /// The previous release's tag, if there is one.
    pub(crate) baseline_tag: Option<&'a str>,
    /// What kind of release this is after the previous one.
    pub(crate) release_type: ReleaseType,
}

fn words<const N: usize>(words: [&str; N]) -> Vec<String> {
    words.iter().map(|&word| word.to_owned()).collect()
}

fn with_packages(mut command: Vec<String>, crates: &[String]) -> Vec<String> {
    for name in crates {
        command.push("--package".to_owned());
        command.push(name.clone());
    }
    command
}

/// The checks for `target` on a machine with `tools`, in the order they run.
pub(crate) fn checks(target: &Target<'_>, tools: &Tools) -> Vec<Check> {
    let mut checks = vec![
        Check {
            name: "package",
            // `--no-verify`: the crates are not on crates.io yet at this version, and
            // `cargo package` resolves each crate's workspace dependencies through a local
            // overlay of the packages it made before (cargo 1.90+); the build is the MSRV
            // check's job and, on a real release, `cargo publish --dry-run`'s.
            action: Action::Command(with_packages(
                words([
                    "cargo",
                    "package",
                    "--no-verify",
                    "--locked",
                    "--allow-dirty",
                ]),
                target.publish_order,
            )),
        },
        Check {
            name: "package contents",
            action: Action::PackageContents(target.publish_order.to_vec()),
        },
    ];
    let semver = match (target.baseline_tag, tools.semver_checks) {
        (None, _) => Action::Skipped(
            "no earlier release tag (v*) to compare against: this is the first release".to_owned(),
        ),
        (Some(tag), false) => Action::Skipped(format!(
            "cargo-semver-checks is not installed, so the API was not compared with {tag} \
             (install it with `cargo install cargo-semver-checks --locked`)"
        )),
        (Some(tag), true) => Action::Command(with_packages(
            vec![
                "cargo".to_owned(),
                "semver-checks".to_owned(),
                "check-release".to_owned(),
                "--baseline-rev".to_owned(),
                tag.to_owned(),
                "--release-type".to_owned(),
                target.release_type.as_str().to_owned(),
            ],
            target.publish_order,
        )),
    };
    checks.push(Check {
        name: "semver",
        action: semver,
    });
    for group in target.msrv_groups {
        let msrv = &group.rust_version;
        let action = if tools.msrv_toolchains.contains(msrv) {
            // Libraries and binaries only: dev-dependencies may need a newer Rust, and users
            // never build them.
            Action::Command(with_packages(
                vec![
                    "rustup".to_owned(),
                    "run".to_owned(),
                    msrv.clone(),
                    "cargo".to_owned(),
                    "check".to_owned(),
                    "--locked".to_owned(),
                    "--lib".to_owned(),
                    "--bins".to_owned(),
                ],
                &group.crates,
            ))
        } else {
            Action::Skipped(format!(
                "the Rust {msrv} toolchain (rust-version of {}) is not installed, so their MSRV \
                 was not checked (install it with `rustup toolchain install {msrv} --profile minimal`)",
                group.crates.join(", ")
            ))
        };
        checks.push(Check {
            name: "msrv",
            action,
        });
    }
    // docs.rs builds every feature with nightly and `--cfg docsrs` (the crates'
    // `[package.metadata.docs.rs]`), which labels feature-gated items; stable cannot.
    let docs = if tools.nightly {
        let mut command = words([
            "env",
            "RUSTDOCFLAGS=--cfg docsrs -D warnings",
            "rustup",
            "run",
            "nightly",
            "cargo",
            "doc",
            "--no-deps",
            "--all-features",
            "--locked",
            "--target-dir",
            "target/docsrs",
        ]);
        command = with_packages(command, target.publish_order);
        Action::Command(command)
    } else {
        Action::Skipped(
            "no nightly toolchain, so the docs.rs build (nightly, --cfg docsrs, all features) \
             was not run (install it with `rustup toolchain install nightly --profile minimal`)"
                .to_owned(),
        )
    };
    checks.push(Check {
        name: "docs.rs",
        action: docs,
    });
    checks
}

/// The required files `listing` (`cargo package --list`) lacks.
pub(crate) fn missing_files(listing: &str) -> Vec<&'static str> {
    REQUIRED_FILES
        .iter()
        .copied()
        .filter(|required| !listing.lines().any(|line| line.trim() == *required))
        .collect()
}

/// Runs the checks in order; returns the skipped ones as `name: reason` lines.
pub(crate) fn run(checks: &[Check]) -> anyhow::Result<Vec<String>> {
    let mut skipped = Vec::new();
    for check in checks {
        println!("==> release check: {}", check.name);
        match &check.action {
            Action::Command(command) => {
                let (program, args) = command.split_first().expect("a command has a program");
                let cmd = if program == "cargo" {
                    Cmd::cargo(args)
                } else {
                    Cmd::new(program).args(args)
                };
                cmd.run()?;
            }
            Action::PackageContents(crates) => {
                let mut problems = Vec::new();
                for name in crates {
                    let listing = Cmd::cargo([
                        "package",
                        "--list",
                        "--locked",
                        "--allow-dirty",
                        "--package",
                        name,
                    ])
                    .read()?;
                    let missing = missing_files(&listing);
                    if !missing.is_empty() {
                        problems.push(format!("{name} lacks {}", missing.join(", ")));
                    }
                }
                anyhow::ensure!(
                    problems.is_empty(),
                    "published packages must carry {}: {}",
                    REQUIRED_FILES.join(", "),
                    problems.join("; ")
                );
                println!("every package carries {}", REQUIRED_FILES.join(", "));
            }
            Action::Skipped(reason) => {
                println!("SKIPPED {}: {reason}", check.name);
                skipped.push(format!("{}: {reason}", check.name));
            }
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Vec<String> {
        vec!["d365-auth-core".to_owned(), "d365-webapi".to_owned()]
    }

    fn groups(order: &[String]) -> Vec<MsrvGroup> {
        msrv_groups(order, |_| "1.89".to_owned())
    }

    fn target<'a>(
        order: &'a [String],
        groups: &'a [MsrvGroup],
        baseline: Option<&'a str>,
    ) -> Target<'a> {
        Target {
            publish_order: order,
            msrv_groups: groups,
            baseline_tag: baseline,
            release_type: ReleaseType::Minor,
        }
    }

    fn all_tools() -> Tools {
        Tools {
            semver_checks: true,
            msrv_toolchains: vec!["1.89".to_owned(), "1.93".to_owned()],
            nightly: true,
        }
    }

    fn command(check: &Check) -> String {
        match &check.action {
            Action::Command(words) => words.join(" "),
            other => panic!("{}: not a command: {other:?}", check.name),
        }
    }

    fn skipped(check: &Check) -> &str {
        match &check.action {
            Action::Skipped(reason) => reason,
            other => panic!("{}: not skipped: {other:?}", check.name),
        }
    }

    #[test]
    fn with_every_tool_every_check_runs_in_publish_order() {
        let order = order();
        let groups = groups(&order);
        let checks = checks(&target(&order, &groups, Some("v0.1.0")), &all_tools());
        let names: Vec<_> = checks.iter().map(|check| check.name).collect();
        assert_eq!(
            names,
            ["package", "package contents", "semver", "msrv", "docs.rs"]
        );
        assert_eq!(
            command(&checks[0]),
            "cargo package --no-verify --locked --allow-dirty \
             --package d365-auth-core --package d365-webapi"
        );
        assert_eq!(checks[1].action, Action::PackageContents(order.clone()));
        assert_eq!(
            command(&checks[2]),
            "cargo semver-checks check-release --baseline-rev v0.1.0 --release-type minor \
             --package d365-auth-core --package d365-webapi"
        );
        assert_eq!(
            command(&checks[3]),
            "rustup run 1.89 cargo check --locked --lib --bins \
             --package d365-auth-core --package d365-webapi"
        );
        assert_eq!(
            command(&checks[4]),
            "env RUSTDOCFLAGS=--cfg docsrs -D warnings rustup run nightly cargo doc --no-deps \
             --all-features --locked --target-dir target/docsrs \
             --package d365-auth-core --package d365-webapi"
        );
    }

    #[test]
    fn crates_with_a_newer_rust_version_are_checked_with_their_own_toolchain() {
        let order: Vec<String> = [
            "d365-auth-core",
            "d365-auth-windows",
            "d365-webapi",
            "d365-cli",
        ]
        .map(str::to_owned)
        .to_vec();
        let groups = msrv_groups(&order, |name| {
            if matches!(name, "d365-auth-windows" | "d365-cli") {
                "1.93"
            } else {
                "1.89"
            }
            .to_owned()
        });
        let mut tools = all_tools();
        let all = checks(&target(&order, &groups, Some("v0.1.0")), &tools);
        let msrv: Vec<String> = all
            .iter()
            .filter(|check| check.name == "msrv")
            .map(command)
            .collect();
        assert_eq!(
            msrv,
            [
                "rustup run 1.89 cargo check --locked --lib --bins --package d365-auth-core --package d365-webapi",
                "rustup run 1.93 cargo check --locked --lib --bins --package d365-auth-windows --package d365-cli",
            ]
        );
        tools.msrv_toolchains.retain(|version| version == "1.89");
        let some = checks(&target(&order, &groups, Some("v0.1.0")), &tools);
        let last = some.iter().rfind(|check| check.name == "msrv").unwrap();
        assert!(
            skipped(last)
                .contains("Rust 1.93 toolchain (rust-version of d365-auth-windows, d365-cli)")
        );
    }

    #[test]
    fn a_first_release_skips_semver_and_says_why() {
        let order = order();
        let groups = groups(&order);
        let checks = checks(&target(&order, &groups, None), &all_tools());
        assert!(skipped(&checks[2]).contains("first release"));
    }

    #[test]
    fn missing_tools_are_skipped_with_how_to_install_them() {
        let order = order();
        let groups = groups(&order);
        let none = Tools {
            semver_checks: false,
            msrv_toolchains: Vec::new(),
            nightly: false,
        };
        let checks = checks(&target(&order, &groups, Some("v0.1.0")), &none);
        let semver = skipped(&checks[2]);
        assert!(
            semver.contains("cargo-semver-checks is not installed"),
            "{semver}"
        );
        assert!(semver.contains("v0.1.0"));
        assert!(semver.contains("cargo install cargo-semver-checks --locked"));
        let docs = skipped(&checks[4]);
        assert!(docs.contains("rustup toolchain install nightly"), "{docs}");
        let msrv = skipped(&checks[3]);
        assert!(msrv.contains("Rust 1.89 toolchain"), "{msrv}");
        assert!(msrv.contains("rustup toolchain install 1.89 --profile minimal"));
        // Packaging never depends on a tool.
        assert_eq!(checks[0].name, "package");
        assert!(matches!(checks[0].action, Action::Command(_)));
    }

    #[test]
    fn package_contents_must_list_both_licences_and_the_readme() {
        let complete = "Cargo.toml\nLICENSE-APACHE\nLICENSE-MIT\nREADME.md\nsrc/lib.rs\n";
        assert!(missing_files(complete).is_empty());
        assert_eq!(
            missing_files("Cargo.toml\nREADME.md\nsrc/LICENSE-MIT\n"),
            ["LICENSE-MIT", "LICENSE-APACHE"],
            "a licence elsewhere in the package does not count"
        );
        assert_eq!(missing_files(""), REQUIRED_FILES);
    }
}
