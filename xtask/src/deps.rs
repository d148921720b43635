//! The dependency-boundary check (`cargo xtask deps`): each crate stands alone.
//!
//! The rules are the table [`RULES`]. For each rule the package's normal and build
//! dependency tree is resolved *for that package alone* with `cargo tree -p` — the way a
//! user who depends on just that crate gets it, so feature unification across the workspace
//! cannot hide a violation (the workspace-wide `cargo metadata` resolve graph would). Every
//! package in the tree is then checked against the rule; a violation names the crate, the
//! forbidden dependency and the path through which it arrived.

use std::collections::BTreeSet;
use std::fmt;

use anyhow::{Context, Result, bail};

use crate::cmd::Cmd;
use crate::grant_names;
use crate::metadata;

/// Crates a library must never pull into its users' builds: servers, storage, command-line
/// parsing, application error handling, log output, certificate generation, test and
/// benchmark frameworks.
const LIBRARY_FORBIDDEN: &[&str] = &[
    "axum",
    "axum-core",
    "rusqlite",
    "libsqlite3-sys",
    "clap",
    "clap_builder",
    "anyhow",
    "tracing-subscriber",
    "rcgen",
    "insta",
    "criterion",
];

/// The grant crates: each depends on auth-core alone, and only `d365-connect` brings them
/// in, each behind its own feature.
const GRANT_CRATES: &[&str] = &[
    "d365-auth-client-credentials",
    "d365-auth-ropc",
    "d365-auth-device-code",
    "d365-auth-authorization-code",
    "d365-auth-azure-cli",
    "d365-auth-managed-identity",
    "d365-auth-windows",
];

/// Workspace members with no boundary to keep: they may depend on anything.
const UNRESTRICTED: &[&str] = &["d365-cli", "d365-e2e", "xtask"];

/// Which features a rule resolves its package with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Features {
    /// The package's default features.
    Default,
    /// `--no-default-features`.
    NoDefault,
}

/// One boundary: what `package`'s non-dev dependency tree, resolved with `features`, must
/// not contain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    /// The workspace package the rule is about.
    pub(crate) package: &'static str,
    /// The features its tree is resolved with.
    pub(crate) features: Features,
    /// Third-party packages that must not appear anywhere in the tree.
    pub(crate) forbidden: &'static [&'static str],
    /// The only `d365-*` packages that may appear in the tree (besides the package itself).
    pub(crate) allowed_internal: &'static [&'static str],
    /// Why, for the failure message.
    pub(crate) reason: &'static str,
}

/// The boundaries of DESIGN.md "Each crate stands alone".
pub(crate) const RULES: &[Rule] = &[
    Rule {
        package: "d365-auth-core",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &[],
        reason: "auth-core is the foundation: it depends on no other d365 crate",
    },
    Rule {
        package: "d365-auth-client-credentials",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &["d365-auth-core"],
        reason: "a grant crate depends on auth-core alone",
    },
    Rule {
        package: "d365-auth-ropc",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &["d365-auth-core"],
        reason: "a grant crate depends on auth-core alone",
    },
    Rule {
        package: "d365-auth-device-code",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &["d365-auth-core"],
        reason: "a grant crate depends on auth-core alone; device code is the worked example of adding one (docs/extending.md)",
    },
    Rule {
        package: "d365-auth-authorization-code",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &["d365-auth-core"],
        reason: "a grant crate depends on auth-core alone",
    },
    Rule {
        package: "d365-auth-azure-cli",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &["d365-auth-core"],
        reason: "a grant crate depends on auth-core alone",
    },
    Rule {
        package: "d365-auth-managed-identity",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &["d365-auth-core"],
        reason: "a grant crate depends on auth-core alone",
    },
    Rule {
        package: "d365-auth-windows",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &["d365-auth-core"],
        reason: "a grant crate depends on auth-core alone, Windows sign-in too (its ConnectionAuthenticator is auth-core's)",
    },
    Rule {
        package: "d365-webapi",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &["d365-auth-core"],
        reason: "webapi knows only the token abstraction, not how a token is obtained: configuration belongs to d365-connect",
    },
    Rule {
        package: "d365-connect",
        features: Features::NoDefault,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &["d365-auth-core"],
        reason: "without features, connect knows no grant: each comes with its feature",
    },
    Rule {
        package: "d365-connect",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &[
            "d365-auth-core",
            GRANT_CRATES[0],
            GRANT_CRATES[1],
            GRANT_CRATES[2],
            GRANT_CRATES[3],
            GRANT_CRATES[4],
            GRANT_CRATES[5],
            GRANT_CRATES[6],
            "d365-webapi",
        ],
        reason: "connect brings the grant crates and webapi, and nothing else of d365",
    },
    Rule {
        package: "d365-token-store-redis",
        features: Features::Default,
        forbidden: LIBRARY_FORBIDDEN,
        allowed_internal: &["d365-auth-core"],
        reason: "a token store depends on auth-core alone, like a grant",
    },
    Rule {
        package: "d365-test-support",
        features: Features::Default,
        forbidden: &[],
        allowed_internal: &[],
        reason: "the test support is a dev-dependency of every crate, so it depends on none of them",
    },
    Rule {
        package: "d365-emulator",
        features: Features::Default,
        forbidden: &[],
        allowed_internal: &[],
        reason: "the emulator shares no code with the client crates",
    },
];

/// Runs every rule, then the grant-name check, and fails with all violations found.
pub(crate) fn check() -> Result<()> {
    check_every_member_has_a_rule()?;
    check_boundaries()?;
    grant_names::check()
}

/// Runs every rule and fails with all violations found.
fn check_boundaries() -> Result<()> {
    let mut violations = Vec::new();
    for rule in RULES {
        let tree = Cmd::cargo(tree_args(rule)).read()?;
        let tree =
            parse_tree(&tree).with_context(|| format!("reading the tree of {}", rule.package))?;
        let found = evaluate(rule, &tree)?;
        println!(
            "    {} ({}): {} packages, {}",
            rule.package,
            rule.features,
            tree.iter()
                .map(|node| node.name.as_str())
                .collect::<BTreeSet<_>>()
                .len(),
            if found.is_empty() { "ok" } else { "VIOLATED" }
        );
        violations.extend(found);
    }
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
        bail!(
            "{} dependency boundary violation(s):\n  {}",
            violations.len(),
            list.join("\n  ")
        );
    }
    Ok(())
}

/// Fails if a workspace member is neither covered by a rule nor listed as unrestricted, so a
/// new crate (a new grant, say) cannot silently escape the check.
fn check_every_member_has_a_rule() -> Result<()> {
    let members = metadata::workspace_packages()?;
    let uncovered: Vec<&str> = members
        .iter()
        .map(|member| member.name.as_str())
        .filter(|name| {
            !RULES.iter().any(|rule| rule.package == *name) && !UNRESTRICTED.contains(name)
        })
        .collect();
    if !uncovered.is_empty() {
        bail!(
            "no dependency rule for {}: add one to RULES (or to UNRESTRICTED) in xtask/src/deps.rs",
            uncovered.join(", ")
        );
    }
    Ok(())
}

/// `cargo tree` arguments listing `rule.package`'s normal and build dependencies for every
/// target platform, one package per line prefixed by its depth.
fn tree_args(rule: &Rule) -> Vec<&'static str> {
    let mut args = vec![
        "tree",
        "--locked",
        "--package",
        rule.package,
        "--edges",
        "no-dev",
        "--target",
        "all",
        "--prefix",
        "depth",
        "--format",
        "{p}",
    ];
    if rule.features == Features::NoDefault {
        args.push("--no-default-features");
    }
    args
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Default => "default features",
            Self::NoDefault => "no default features",
        })
    }
}

/// One line of `cargo tree --prefix depth`: a package at a depth below the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeNode {
    /// 0 for the root, 1 for its direct dependencies, and so on.
    pub(crate) depth: usize,
    /// The package name.
    pub(crate) name: String,
    /// The package as cargo shows it (`name vX.Y.Z`), for paths in messages.
    pub(crate) label: String,
}

/// Parses `cargo tree --prefix depth --format {p}` output: `<depth><name> v<version>[ (…)]`
/// per line. Repeated subtrees are elided by cargo (`(*)`), but every package in the tree
/// is shown expanded once, so a forbidden package is always found with a path to it.
pub(crate) fn parse_tree(text: &str) -> Result<Vec<TreeNode>> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let (depth, rest) = line.split_at(digits);
            let depth = depth
                .parse()
                .with_context(|| format!("no depth prefix in cargo tree line `{line}`"))?;
            let mut words = rest.split_whitespace();
            let name = words
                .next()
                .with_context(|| format!("no package in cargo tree line `{line}`"))?;
            let label = match words.next() {
                Some(version) => format!("{name} {version}"),
                None => name.to_owned(),
            };
            Ok(TreeNode {
                depth,
                name: name.to_owned(),
                label,
            })
        })
        .collect()
}

/// A package in a tree that its rule forbids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The package the rule is about.
    pub(crate) package: &'static str,
    /// The features the tree was resolved with.
    pub(crate) features: Features,
    /// The forbidden package.
    pub(crate) forbidden: String,
    /// From the package to the forbidden one, each as `name vX.Y.Z`.
    pub(crate) path: Vec<String>,
    /// The rule's reason.
    pub(crate) reason: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) must not depend on {} ({}); it arrives through: {}",
            self.package,
            self.features,
            self.forbidden,
            self.reason,
            self.path.join(" -> ")
        )
    }
}

/// Checks one resolved tree against its rule: every forbidden package found, once, with the
/// first path through which it arrives.
pub(crate) fn evaluate(rule: &Rule, tree: &[TreeNode]) -> Result<Vec<Violation>> {
    match tree.first() {
        Some(root) if root.depth == 0 && root.name == rule.package => {}
        _ => bail!(
            "the tree for {} does not start with that package",
            rule.package
        ),
    }
    let mut path: Vec<&str> = Vec::new();
    let mut reported = BTreeSet::new();
    let mut violations = Vec::new();
    for node in tree {
        if node.depth > path.len() {
            bail!(
                "cargo tree line `{}` is deeper than its parent in {}'s tree",
                node.label,
                rule.package
            );
        }
        path.truncate(node.depth);
        path.push(&node.label);
        if node.depth == 0 {
            continue;
        }
        let name = node.name.as_str();
        let is_forbidden = rule.forbidden.contains(&name)
            || (name.starts_with("d365-")
                && name != rule.package
                && !rule.allowed_internal.contains(&name));
        if is_forbidden && reported.insert(name) {
            violations.push(Violation {
                package: rule.package,
                features: rule.features,
                forbidden: name.to_owned(),
                path: path.iter().map(|&label| label.to_owned()).collect(),
                reason: rule.reason,
            });
        }
    }
    Ok(violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORE_RULE: Rule = RULES[0];

    fn rule_for(package: &str, features: Features) -> Rule {
        *RULES
            .iter()
            .find(|rule| rule.package == package && rule.features == features)
            .expect("a rule for the package")
    }

    /// A synthetic tree in `cargo tree --prefix depth --format {p}` form.
    fn tree(text: &str) -> Vec<TreeNode> {
        parse_tree(text).unwrap()
    }

    #[test]
    fn parses_depth_name_and_version_ignoring_markers() {
        let nodes = tree(
            "0d365-auth-core v0.1.0 (/work/crates/auth-core)\n\
             1async-trait v0.1.92 (proc-macro)\n\
             12syn v2.0.0 (*)\n",
        );
        assert_eq!(
            nodes,
            [
                TreeNode {
                    depth: 0,
                    name: "d365-auth-core".into(),
                    label: "d365-auth-core v0.1.0".into()
                },
                TreeNode {
                    depth: 1,
                    name: "async-trait".into(),
                    label: "async-trait v0.1.92".into()
                },
                TreeNode {
                    depth: 12,
                    name: "syn".into(),
                    label: "syn v2.0.0".into()
                },
            ]
        );
        assert!(parse_tree("serde v1.0.0").is_err(), "no depth prefix");
    }

    #[test]
    fn a_clean_tree_passes() {
        let nodes = tree(
            "0d365-auth-core v0.1.0\n\
             1reqwest v0.13.0\n\
             2tokio v1.0.0\n\
             1serde v1.0.0\n",
        );
        assert_eq!(evaluate(&CORE_RULE, &nodes).unwrap(), []);
    }

    #[test]
    fn a_forbidden_crate_is_reported_with_the_path_it_arrived_through() {
        let nodes = tree(
            "0d365-auth-core v0.1.0\n\
             1reqwest v0.13.0\n\
             2tokio v1.0.0\n\
             1helper v0.2.0\n\
             2middle v0.3.0\n\
             3axum v0.8.0\n\
             1axum v0.8.0 (*)\n",
        );
        let violations = evaluate(&CORE_RULE, &nodes).unwrap();
        assert_eq!(violations.len(), 1, "each forbidden crate is reported once");
        assert_eq!(violations[0].forbidden, "axum");
        assert_eq!(
            violations[0].path,
            [
                "d365-auth-core v0.1.0",
                "helper v0.2.0",
                "middle v0.3.0",
                "axum v0.8.0"
            ]
        );
        let message = violations[0].to_string();
        assert!(message.starts_with("d365-auth-core (default features) must not depend on axum"));
        assert!(message.ends_with(
            "through: d365-auth-core v0.1.0 -> helper v0.2.0 -> middle v0.3.0 -> axum v0.8.0"
        ));
    }

    #[test]
    fn every_library_rule_forbids_the_application_crates() {
        let nodes_with =
            |package: &str, bad: &str| tree(&format!("0{package} v0.1.0\n1{bad} v1.0.0\n"));
        // The emulator is a server and the test support a test helper: neither is a library.
        let libraries = RULES
            .iter()
            .filter(|rule| !["d365-emulator", "d365-test-support"].contains(&rule.package));
        for rule in libraries {
            for bad in LIBRARY_FORBIDDEN {
                let violations = evaluate(rule, &nodes_with(rule.package, bad)).unwrap();
                assert_eq!(violations.len(), 1, "{} must forbid {bad}", rule.package);
            }
        }
    }

    #[test]
    fn auth_core_may_depend_on_no_other_d365_crate() {
        let nodes = tree("0d365-auth-core v0.1.0\n1d365-webapi v0.1.0\n");
        let violations = evaluate(&CORE_RULE, &nodes).unwrap();
        assert_eq!(violations[0].forbidden, "d365-webapi");
    }

    #[test]
    fn grant_crates_may_depend_on_auth_core_and_no_other_d365_crate() {
        for flow in GRANT_CRATES {
            let rule = rule_for(flow, Features::Default);
            let ok = tree(&format!("0{flow} v0.1.0\n1d365-auth-core v0.1.0\n"));
            assert_eq!(evaluate(&rule, &ok).unwrap(), []);
            let other_flow = GRANT_CRATES.iter().find(|other| *other != flow).unwrap();
            let bad = tree(&format!(
                "0{flow} v0.1.0\n1d365-auth-core v0.1.0\n1{other_flow} v0.1.0\n"
            ));
            assert_eq!(evaluate(&rule, &bad).unwrap()[0].forbidden, *other_flow);
        }
    }

    #[test]
    fn the_redis_token_store_may_depend_on_auth_core_alone() {
        let rule = rule_for("d365-token-store-redis", Features::Default);
        let ok = tree(
            "0d365-token-store-redis v0.1.0\n1d365-auth-core v0.1.0\n1redis v1.8.1\n1aes-gcm v0.11.1\n",
        );
        assert_eq!(evaluate(&rule, &ok).unwrap(), []);
        let bad = tree("0d365-token-store-redis v0.1.0\n1d365-webapi v0.1.0\n1anyhow v1.0.0\n");
        let forbidden: Vec<_> = evaluate(&rule, &bad)
            .unwrap()
            .into_iter()
            .map(|violation| violation.forbidden)
            .collect();
        assert_eq!(forbidden, ["d365-webapi", "anyhow"]);
    }

    #[test]
    fn webapi_never_reaches_a_grant_and_connect_only_with_its_features() {
        let nodes = tree(
            "0d365-webapi v0.1.0\n\
             1d365-auth-core v0.1.0\n\
             1d365-auth-ropc v0.1.0\n\
             2d365-auth-core v0.1.0 (*)\n",
        );
        let webapi = rule_for("d365-webapi", Features::Default);
        assert_eq!(
            evaluate(&webapi, &nodes).unwrap()[0].forbidden,
            "d365-auth-ropc"
        );

        let connect = tree(
            "0d365-connect v0.1.0\n\
             1d365-auth-core v0.1.0\n\
             1d365-auth-ropc v0.1.0\n\
             2d365-auth-core v0.1.0 (*)\n\
             1d365-webapi v0.1.0\n",
        );
        let with_defaults = rule_for("d365-connect", Features::Default);
        assert_eq!(evaluate(&with_defaults, &connect).unwrap(), []);
        let without = rule_for("d365-connect", Features::NoDefault);
        let violations = evaluate(&without, &connect).unwrap();
        let forbidden: Vec<_> = violations.iter().map(|v| v.forbidden.as_str()).collect();
        assert_eq!(forbidden, ["d365-auth-ropc", "d365-webapi"]);
        assert!(violations[0].to_string().contains("(no default features)"));
    }

    #[test]
    fn the_emulator_may_use_server_crates_but_no_d365_crate() {
        let rule = rule_for("d365-emulator", Features::Default);
        let servers =
            tree("0d365-emulator v0.1.0\n1axum v0.8.0\n1rusqlite v0.37.0\n1rcgen v0.14.0\n");
        assert_eq!(evaluate(&rule, &servers).unwrap(), []);
        let client = tree("0d365-emulator v0.1.0\n1d365-auth-core v0.1.0\n");
        assert_eq!(
            evaluate(&rule, &client).unwrap()[0].forbidden,
            "d365-auth-core"
        );
    }

    #[test]
    fn a_tree_for_another_package_or_with_a_gap_is_an_error() {
        assert!(evaluate(&CORE_RULE, &tree("0d365-webapi v0.1.0\n")).is_err());
        assert!(evaluate(&CORE_RULE, &tree("0d365-auth-core v0.1.0\n2serde v1.0.0\n")).is_err());
        assert!(evaluate(&CORE_RULE, &[]).is_err());
    }

    #[test]
    fn no_default_features_is_passed_to_cargo_tree() {
        let without = rule_for("d365-connect", Features::NoDefault);
        assert!(tree_args(&without).contains(&"--no-default-features"));
        assert!(!tree_args(&CORE_RULE).contains(&"--no-default-features"));
    }
}
