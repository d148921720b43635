//! The order in which the workspace's crates publish: a crate after every workspace crate
//! it depends on (normal and build dependencies; dev-dependencies are not needed to publish).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};

use crate::metadata::{DependencyKind, WorkspacePackage};

/// The publishable packages of `packages` in dependency order (Kahn's algorithm; ties in
/// name order, so the result is stable). A dependency cycle among them is an error, and so
/// is a publishable package that depends on an unpublishable workspace member.
pub(crate) fn publish_order(packages: &[WorkspacePackage]) -> Result<Vec<String>> {
    let members: BTreeMap<&str, &WorkspacePackage> = packages
        .iter()
        .map(|package| (package.name.as_str(), package))
        .collect();
    // For each publishable package: the publishable workspace packages it needs first.
    let mut waiting_on: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for package in packages.iter().filter(|package| package.publishable) {
        let mut needs = BTreeSet::new();
        for dependency in &package.dependencies {
            if dependency.kind == DependencyKind::Dev {
                continue;
            }
            let Some(member) = members.get(dependency.name.as_str()) else {
                continue;
            };
            if !member.publishable {
                bail!(
                    "{} depends on {}, which is not published (publish = false)",
                    package.name,
                    member.name
                );
            }
            if member.name != package.name {
                needs.insert(member.name.as_str());
            }
        }
        waiting_on.insert(&package.name, needs);
    }

    let mut order = Vec::with_capacity(waiting_on.len());
    while !waiting_on.is_empty() {
        let ready: Vec<&str> = waiting_on
            .iter()
            .filter(|(_, needs)| needs.is_empty())
            .map(|(&name, _)| name)
            .collect();
        if ready.is_empty() {
            let stuck: Vec<&str> = waiting_on.keys().copied().collect();
            bail!("dependency cycle among {}", stuck.join(", "));
        }
        for name in ready {
            waiting_on.remove(name);
            for needs in waiting_on.values_mut() {
                needs.remove(name);
            }
            order.push(name.to_owned());
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Dependency;

    fn package(name: &str, publishable: bool, deps: &[(&str, DependencyKind)]) -> WorkspacePackage {
        WorkspacePackage {
            name: name.to_owned(),
            version: "0.1.0".to_owned(),
            publishable,
            rust_version: None,
            dependencies: deps
                .iter()
                .map(|&(name, kind)| Dependency {
                    name: name.to_owned(),
                    kind,
                })
                .collect(),
        }
    }

    use DependencyKind::{Build, Dev, Normal};

    #[test]
    fn dependencies_publish_first_and_unpublished_members_are_left_out() {
        let packages = [
            package(
                "d365-cli",
                true,
                &[
                    ("d365-webapi", Normal),
                    ("d365-emulator", Normal),
                    ("clap", Normal),
                ],
            ),
            package(
                "d365-webapi",
                true,
                &[("d365-auth-core", Normal), ("d365-auth-ropc", Normal)],
            ),
            package("d365-auth-ropc", true, &[("d365-auth-core", Normal)]),
            package(
                "d365-auth-core",
                true,
                &[("serde", Normal), ("d365-emulator", Dev)],
            ),
            package("d365-emulator", true, &[("axum", Normal)]),
            package("d365-e2e", false, &[("d365-cli", Normal)]),
            package("xtask", false, &[]),
        ];
        assert_eq!(
            publish_order(&packages).unwrap(),
            [
                "d365-auth-core",
                "d365-emulator",
                "d365-auth-ropc",
                "d365-webapi",
                "d365-cli"
            ]
        );
    }

    #[test]
    fn build_dependencies_count_and_dev_dependency_cycles_do_not() {
        let packages = [
            package("a", true, &[("b", Build)]),
            package("b", true, &[("a", Dev)]),
        ];
        assert_eq!(publish_order(&packages).unwrap(), ["b", "a"]);
    }

    #[test]
    fn refuses_a_cycle() {
        let packages = [
            package("a", true, &[("b", Normal)]),
            package("b", true, &[("a", Normal)]),
            package("c", true, &[]),
        ];
        let error = publish_order(&packages).unwrap_err();
        assert_eq!(error.to_string(), "dependency cycle among a, b");
    }

    #[test]
    fn refuses_a_published_crate_that_needs_an_unpublished_one() {
        let packages = [
            package("lib", true, &[("helper", Normal)]),
            package("helper", false, &[]),
        ];
        let error = publish_order(&packages).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("lib depends on helper, which is not published")
        );
    }
}
