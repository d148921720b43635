//! `cargo xtask release <version> [--dry-run]`: check the release (every crate packages in
//! dependency order with its licences and README, semver against the previous release tag,
//! the MSRV — see [`checks`]), bump the version, cut the changelog, verify that every crate
//! packages and builds, commit "Release X.Y.Z" and tag `vX.Y.Z`. `--dry-run` prints the plan
//! and runs the checks, and changes nothing.
//!
//! [`plan`] decides everything from the inputs (pure, unit-tested, including every
//! refusal); [`run`] gathers the inputs from git, the files and cargo, prints the plan and,
//! unless it is a dry run, carries it out. Publishing to crates.io stays a separate, human
//! step after pushing the tag.

mod changelog;
mod checks;
mod date;
mod diff;
mod manifest;
mod order;
mod semver;

use std::cmp::Ordering;
use std::fs;
use std::time::SystemTime;

use anyhow::{Context, Result, bail, ensure};

use crate::cmd::{Cmd, project_root};
use crate::metadata::{self, WorkspacePackage};
use semver::Version;

/// The files a release edits, relative to the workspace root.
const MANIFEST: &str = "Cargo.toml";
const CHANGELOG: &str = "CHANGELOG.md";
const LOCKFILE: &str = "Cargo.lock";

/// What `cargo xtask release` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReleaseArgs {
    /// The version to release, as typed.
    pub(crate) version: String,
    /// Print the plan and change nothing.
    pub(crate) dry_run: bool,
    /// Plan even from a dirty work tree (only with `dry_run`).
    pub(crate) allow_dirty: bool,
}

/// Everything a release reads.
#[derive(Debug, Clone)]
struct Inputs {
    /// `git status --porcelain`.
    status: String,
    /// The root Cargo.toml.
    manifest: String,
    /// CHANGELOG.md.
    changelog: String,
    /// The workspace members.
    packages: Vec<WorkspacePackage>,
    /// Whether the release's tag already exists.
    tag_exists: bool,
    /// Today, `YYYY-MM-DD` in UTC.
    date: String,
}

/// A file the release rewrites.
#[derive(Debug, Clone)]
struct FileEdit {
    path: &'static str,
    old: String,
    new: String,
}

/// A decided release.
#[derive(Debug, Clone)]
struct Plan {
    current: Version,
    version: Version,
    edits: Vec<FileEdit>,
    publish_order: Vec<String>,
}

impl Plan {
    fn tag(&self) -> String {
        format!("v{}", self.version)
    }

    fn message(&self) -> String {
        format!("Release {}", self.version)
    }

    /// The commands that follow the file edits and check them; they change nothing but
    /// Cargo.lock, so a failure can be undone by restoring the files.
    fn verification_commands(&self) -> Vec<Cmd> {
        vec![
            // The lockfile records the workspace crates' versions.
            Cmd::cargo(["update", "--workspace"]),
            // Packages each crate and builds it against the others' packages (a local
            // overlay, so crates not yet on crates.io at this version still resolve).
            Cmd::cargo([
                "publish",
                "--workspace",
                "--dry-run",
                "--locked",
                "--allow-dirty",
            ]),
        ]
    }

    /// The commands that record the release in git, after verification.
    fn commit_commands(&self) -> Vec<Cmd> {
        vec![
            Cmd::new("git").args(["add", "--", MANIFEST, LOCKFILE, CHANGELOG]),
            Cmd::new("git").args(["commit", "--quiet", "--message", &self.message()]),
            Cmd::new("git").args([
                "tag",
                "--annotate",
                &self.tag(),
                "--message",
                &self.message(),
            ]),
        ]
    }

    /// The plan as a person reads it: versions, each file change as a diff, each command.
    fn render(&self) -> String {
        let versions = if self.current == self.version {
            format!(
                "{} (its first release: no version bump; tag {})",
                self.version,
                self.tag()
            )
        } else {
            format!("{} -> {} (tag {})", self.current, self.version, self.tag())
        };
        let mut out = format!(
            "release {versions}\npublish order: {}\n\n",
            self.publish_order.join(", ")
        );
        for edit in &self.edits {
            out.push_str(&diff::unified(edit.path, &edit.old, &edit.new));
            out.push('\n');
        }
        out.push_str("commands:\n");
        for command in self
            .verification_commands()
            .into_iter()
            .chain(self.commit_commands())
        {
            out.push_str(&format!("  $ {command}\n"));
        }
        out.push_str(&format!(
            "then, to publish: git push origin HEAD {tag} && cargo publish --workspace --locked\n",
            tag = self.tag()
        ));
        out
    }
}

/// Refuses a dirty work tree (`status` is `git status --porcelain`), unless a dry run
/// allows it.
fn check_clean(args: &ReleaseArgs, status: &str) -> Result<()> {
    ensure!(
        status.trim().is_empty() || (args.allow_dirty && args.dry_run),
        "refusing to release from a dirty work tree; commit or stash these first:\n{}",
        status.trim_end()
    );
    Ok(())
}

/// Decides the release of `args.version` from `inputs`, or refuses it.
fn plan(args: &ReleaseArgs, inputs: &Inputs) -> Result<Plan> {
    check_clean(args, &inputs.status)?;
    let version = Version::parse(&args.version)?;
    let current = manifest::workspace_version(&inputs.manifest)?;
    ensure!(
        !inputs.tag_exists,
        "refusing to release {version}: tag v{version} already exists"
    );
    // A new workspace starts at the version it will first release (0.1.0): that release
    // cuts the changelog and tags without a bump. Untagged, with no changelog section for
    // it (checked by `changelog::release`), the current version was never released.
    ensure!(
        version == current || version.precedence(&current) == Ordering::Greater,
        "refusing to release {version}: it is not greater than the current version {current} \
         (to release {current} itself, it must be untagged and have no CHANGELOG.md section)"
    );

    let publish_order = order::publish_order(&inputs.packages)?;
    ensure!(
        !publish_order.is_empty(),
        "the workspace has no publishable crate"
    );
    let current_text = current.to_string();
    let stray: Vec<String> = inputs
        .packages
        .iter()
        .filter(|package| package.publishable && package.version != current_text)
        .map(|package| format!("{} {}", package.name, package.version))
        .collect();
    if !stray.is_empty() {
        bail!(
            "every published crate must have the workspace version {current} \
             (`version.workspace = true`), but: {}",
            stray.join(", ")
        );
    }

    let unpublished: Vec<&str> = inputs
        .packages
        .iter()
        .filter(|package| !package.publishable)
        .map(|package| package.name.as_str())
        .collect();
    let edits = vec![
        FileEdit {
            path: MANIFEST,
            new: manifest::bump_versions(&inputs.manifest, &version, &unpublished)?,
            old: inputs.manifest.clone(),
        },
        FileEdit {
            path: CHANGELOG,
            new: changelog::release(&inputs.changelog, &version, &inputs.date)?,
            old: inputs.changelog.clone(),
        },
    ]
    .into_iter()
    .filter(|edit| edit.new != edit.old)
    .collect();
    Ok(Plan {
        current,
        version,
        edits,
        publish_order,
    })
}

/// The newest `v*` tag reachable from HEAD: the previous release, if any.
fn previous_release_tag() -> Result<Option<String>> {
    let tags = Cmd::new("git")
        .args([
            "tag",
            "--list",
            "v*",
            "--merged",
            "HEAD",
            "--sort=-v:refname",
        ])
        .read()?;
    Ok(tags
        .lines()
        .next()
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned))
}

/// Gathers the inputs, prints the plan, runs the checks, and carries the plan out unless
/// `args.dry_run`.
pub(crate) fn run(args: &ReleaseArgs) -> Result<()> {
    ensure!(
        !args.allow_dirty || args.dry_run,
        "--allow-dirty is only for --dry-run: a release is cut from a clean work tree"
    );
    let root = project_root();
    let read =
        |path: &str| fs::read_to_string(root.join(path)).with_context(|| format!("reading {path}"));
    let status = Cmd::new("git").args(["status", "--porcelain"]).read()?;
    // Refuse a dirty tree before reading anything else, so that is the message one gets.
    check_clean(args, &status)?;
    let tag_ref = format!("refs/tags/v{}", args.version);
    let inputs = Inputs {
        status,
        manifest: read(MANIFEST)?,
        changelog: read(CHANGELOG)?,
        packages: metadata::workspace_packages()?,
        tag_exists: Cmd::new("git")
            .args(["rev-parse", "--quiet", "--verify", &tag_ref])
            .succeeds()?,
        date: date::utc_date(SystemTime::now()),
    };
    let plan = plan(args, &inputs)?;
    print!("{}", plan.render());

    let msrv = manifest::workspace_rust_version(&inputs.manifest)?;
    let baseline_tag = previous_release_tag()?;
    let release_type = baseline_tag
        .as_deref()
        .and_then(|tag| Version::parse(tag.trim_start_matches('v')).ok())
        .map_or(semver::ReleaseType::Patch, |previous| {
            plan.version.release_type_after(&previous)
        });
    let msrv_groups = checks::msrv_groups(&plan.publish_order, |name| {
        inputs
            .packages
            .iter()
            .find(|package| package.name == name)
            .and_then(|package| package.rust_version.clone())
            .unwrap_or_else(|| msrv.clone())
    });
    let tools = checks::Tools {
        semver_checks: Cmd::cargo(["semver-checks", "--version"])
            .succeeds()
            .unwrap_or(false),
        msrv_toolchains: msrv_groups
            .iter()
            .map(|group| group.rust_version.clone())
            .filter(|version| {
                Cmd::new("rustup")
                    .args(["run", version, "cargo", "--version"])
                    .env("RUSTUP_AUTO_INSTALL", "0")
                    .succeeds()
                    .unwrap_or(false)
            })
            .collect(),
        nightly: Cmd::new("rustup")
            .args(["run", "nightly", "cargo", "--version"])
            .env("RUSTUP_AUTO_INSTALL", "0")
            .succeeds()
            .unwrap_or(false),
    };
    let checks = checks::checks(
        &checks::Target {
            publish_order: &plan.publish_order,
            msrv_groups: &msrv_groups,
            baseline_tag: baseline_tag.as_deref(),
            release_type,
        },
        &tools,
    );
    let skipped = checks::run(&checks)?;
    let skipped_line = if skipped.is_empty() {
        "no check was skipped".to_owned()
    } else {
        format!("SKIPPED checks:\n  {}", skipped.join("\n  "))
    };
    if args.dry_run {
        println!("{skipped_line}\ndry run: the checks passed; nothing was changed");
        return Ok(());
    }
    println!("{skipped_line}");

    let lockfile = read(LOCKFILE)?;
    let restore = || -> Result<()> {
        for edit in &plan.edits {
            fs::write(root.join(edit.path), &edit.old)
                .with_context(|| format!("restoring {}", edit.path))?;
        }
        fs::write(root.join(LOCKFILE), &lockfile).context("restoring Cargo.lock")
    };
    for edit in &plan.edits {
        fs::write(root.join(edit.path), &edit.new)
            .with_context(|| format!("writing {}", edit.path))?;
    }
    // Until the commit, a failure puts the files back as they were (the tree was clean).
    for command in plan.verification_commands() {
        if let Err(error) = command.run() {
            restore()?;
            return Err(error
                .context("release aborted; Cargo.toml, Cargo.lock and CHANGELOG.md are restored"));
        }
    }
    for command in plan.commit_commands() {
        command.run()?;
    }
    println!("released {} as tag {}", plan.version, plan.tag());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{Dependency, DependencyKind};

    const MANIFEST_TEXT: &str = "[workspace.package]\nversion = \"0.1.0\"\n\n\
        [workspace.dependencies]\nd365-auth-core = { path = \"crates/auth-core\", version = \"0.1.0\" }\n";
    const CHANGELOG_TEXT: &str = "# Changelog\n\n## [Unreleased]\n\n### Added\n- WhoAmI.\n\n\
        ## [0.1.0] - 2026-10-01\n\n- First.\n";

    fn args(version: &str) -> ReleaseArgs {
        ReleaseArgs {
            version: version.to_owned(),
            dry_run: false,
            allow_dirty: false,
        }
    }

    fn package(name: &str, version: &str, publishable: bool, deps: &[&str]) -> WorkspacePackage {
        WorkspacePackage {
            name: name.to_owned(),
            version: version.to_owned(),
            publishable,
            rust_version: None,
            dependencies: deps
                .iter()
                .map(|name| Dependency {
                    name: (*name).to_owned(),
                    kind: DependencyKind::Normal,
                })
                .collect(),
        }
    }

    fn inputs() -> Inputs {
        Inputs {
            status: String::new(),
            manifest: MANIFEST_TEXT.to_owned(),
            changelog: CHANGELOG_TEXT.to_owned(),
            packages: vec![
                package("d365-webapi", "0.1.0", true, &["d365-auth-core"]),
                package("d365-auth-core", "0.1.0", true, &[]),
                package("xtask", "0.0.0", false, &[]),
            ],
            tag_exists: false,
            date: "2026-11-23".to_owned(),
        }
    }

    fn refusal(args: &ReleaseArgs, inputs: &Inputs) -> String {
        plan(args, inputs).unwrap_err().to_string()
    }

    #[test]
    fn plans_the_edits_the_commands_and_the_publish_order() {
        let plan = plan(&args("0.2.0"), &inputs()).unwrap();
        assert_eq!(plan.publish_order, ["d365-auth-core", "d365-webapi"]);
        assert!(plan.edits[0].new.contains("version = \"0.2.0\"\n"));
        assert!(
            plan.edits[1]
                .new
                .contains("## [Unreleased]\n\n## [0.2.0] - 2026-11-23\n\n### Added\n")
        );
        let rendered = plan.render();
        for expected in [
            "release 0.1.0 -> 0.2.0 (tag v0.2.0)",
            "publish order: d365-auth-core, d365-webapi",
            "--- a/Cargo.toml\n+++ b/Cargo.toml\n",
            "-version = \"0.1.0\"\n+version = \"0.2.0\"\n",
            "--- a/CHANGELOG.md\n",
            "+## [0.2.0] - 2026-11-23\n",
            "$ cargo update --workspace\n",
            "$ cargo publish --workspace --dry-run --locked --allow-dirty\n",
            "$ git add -- Cargo.toml Cargo.lock CHANGELOG.md\n",
            "$ git commit --quiet --message 'Release 0.2.0'\n",
            "$ git tag --annotate v0.2.0 --message 'Release 0.2.0'\n",
        ] {
            assert!(
                rendered.contains(expected),
                "missing {expected:?} in:\n{rendered}"
            );
        }
    }

    #[test]
    fn refuses_a_dirty_tree_unless_a_dry_run_allows_it() {
        let dirty = Inputs {
            status: " M crates/webapi/src/lib.rs\n".to_owned(),
            ..inputs()
        };
        let message = refusal(&args("0.2.0"), &dirty);
        assert!(
            message.starts_with("refusing to release from a dirty work tree"),
            "{message}"
        );
        assert!(message.contains("crates/webapi/src/lib.rs"));
        let dry_run_allowing = ReleaseArgs {
            dry_run: true,
            allow_dirty: true,
            ..args("0.2.0")
        };
        assert!(plan(&dry_run_allowing, &dirty).is_ok());
        let dry_run_only = ReleaseArgs {
            dry_run: true,
            ..args("0.2.0")
        };
        assert!(
            plan(&dry_run_only, &dirty).is_err(),
            "a dry run alone still refuses"
        );
    }

    #[test]
    fn refuses_an_invalid_or_not_greater_version() {
        assert!(refusal(&args("v0.2.0"), &inputs()).contains("is not a semantic version"));
        assert!(refusal(&args("0.2"), &inputs()).contains("is not a semantic version"));
        for not_greater in ["0.0.9", "0.1.0-rc.1", "0.1.0+build"] {
            assert_eq!(
                refusal(&args(not_greater), &inputs()),
                format!(
                    "refusing to release {not_greater}: it is not greater than the current version 0.1.0 \
                     (to release 0.1.0 itself, it must be untagged and have no CHANGELOG.md section)"
                )
            );
        }
        assert!(
            refusal(&args("0.1.0"), &inputs())
                .contains("CHANGELOG.md already has a section for 0.1.0"),
            "the current version, already in the changelog, was released"
        );
        assert!(plan(&args("0.1.1-rc.1"), &inputs()).is_ok());
        assert!(plan(&args("1.0.0"), &inputs()).is_ok());
    }

    #[test]
    fn the_first_release_of_the_current_version_tags_it_without_a_bump() {
        let first = Inputs {
            changelog: "# Changelog\n\n## [Unreleased]\n\n### Added\n- Everything.\n".to_owned(),
            ..inputs()
        };
        let plan = plan(&args("0.1.0"), &first).unwrap();
        assert_eq!(
            plan.edits.iter().map(|edit| edit.path).collect::<Vec<_>>(),
            [CHANGELOG],
            "Cargo.toml already carries 0.1.0"
        );
        assert!(plan.edits[0].new.contains("## [0.1.0] - 2026-11-23\n"));
        let rendered = plan.render();
        assert!(
            rendered
                .starts_with("release 0.1.0 (its first release: no version bump; tag v0.1.0)\n"),
            "{rendered}"
        );
        assert!(!rendered.contains("Cargo.toml\n+++"), "{rendered}");
        let tagged = Inputs {
            tag_exists: true,
            ..first
        };
        assert!(refusal(&args("0.1.0"), &tagged).contains("tag v0.1.0 already exists"));
    }

    #[test]
    fn refuses_an_existing_tag() {
        let tagged = Inputs {
            tag_exists: true,
            ..inputs()
        };
        assert!(refusal(&args("0.2.0"), &tagged).contains("tag v0.2.0 already exists"));
    }

    #[test]
    fn refuses_an_empty_unreleased_section() {
        let empty = Inputs {
            changelog: "## [Unreleased]\n\n## [0.1.0] - 2026-10-01\n- First.\n".to_owned(),
            ..inputs()
        };
        assert!(
            refusal(&args("0.2.0"), &empty)
                .contains("[Unreleased] section of CHANGELOG.md is empty")
        );
    }

    #[test]
    fn a_dry_run_refuses_a_changelog_without_entries_too() {
        let dry_run = ReleaseArgs {
            dry_run: true,
            ..args("0.2.0")
        };
        for changelog in [
            "# Changelog\n\n## [Unreleased]\n\n### Added\n\n## [0.1.0] - 2026-10-01\n- First.\n",
            "# Changelog\n\n## [Unreleased]\n<!-- nothing yet -->\n",
        ] {
            let empty = Inputs {
                changelog: changelog.to_owned(),
                ..inputs()
            };
            let message = refusal(&dry_run, &empty);
            assert!(
                message.contains("[Unreleased] section of CHANGELOG.md is empty"),
                "{message}"
            );
        }
        let without = Inputs {
            changelog: "# Changelog\n\n## [0.1.0] - 2026-10-01\n- First.\n".to_owned(),
            ..inputs()
        };
        assert!(refusal(&dry_run, &without).contains("no `## [Unreleased]` heading"));
    }

    #[test]
    fn refuses_a_published_crate_off_the_workspace_version() {
        let mut stray = inputs();
        stray
            .packages
            .push(package("d365-auth-ropc", "0.0.5", true, &[]));
        assert!(refusal(&args("0.2.0"), &stray).contains("but: d365-auth-ropc 0.0.5"));
    }
}
