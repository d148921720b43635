//! The workspace's packages as `cargo metadata --no-deps` describes them: names, versions,
//! whether they publish, and what they depend on.

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd::Cmd;

/// How a package depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DependencyKind {
    /// `[dependencies]`.
    Normal,
    /// `[build-dependencies]`.
    Build,
    /// `[dev-dependencies]`.
    Dev,
}

/// One declared dependency of a workspace package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dependency {
    /// The depended-on package's name (not its rename).
    pub(crate) name: String,
    /// Which table declares it.
    pub(crate) kind: DependencyKind,
}

/// A member of the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkspacePackage {
    /// The package name.
    pub(crate) name: String,
    /// Its version.
    pub(crate) version: String,
    /// Whether `cargo publish` may publish it (`publish` is not `false`).
    pub(crate) publishable: bool,
    /// Its `rust-version`, when it declares one (inherited from the workspace or its own).
    pub(crate) rust_version: Option<String>,
    /// Its declared dependencies, every kind.
    pub(crate) dependencies: Vec<Dependency>,
}

/// Reads the workspace members from `cargo metadata`.
pub(crate) fn workspace_packages() -> Result<Vec<WorkspacePackage>> {
    let json = Cmd::cargo(["metadata", "--format-version", "1", "--no-deps", "--locked"]).read()?;
    parse_workspace_packages(&json)
}

/// Parses the JSON `cargo metadata --no-deps` prints (without deps, `packages` holds exactly
/// the workspace members).
fn parse_workspace_packages(json: &str) -> Result<Vec<WorkspacePackage>> {
    let metadata: Value = serde_json::from_str(json).context("parsing cargo metadata")?;
    let Some(packages) = metadata["packages"].as_array() else {
        bail!("cargo metadata has no `packages` array");
    };
    packages.iter().map(parse_package).collect()
}

fn parse_package(package: &Value) -> Result<WorkspacePackage> {
    let text = |field: &str| {
        package[field]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("a package in cargo metadata has no `{field}`"))
    };
    let name = text("name")?;
    // `publish`: null = any registry; [] = `publish = false`; [..] = those registries.
    let publishable = package["publish"]
        .as_array()
        .is_none_or(|registries| !registries.is_empty());
    let dependencies = package["dependencies"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|dependency| {
            let kind = match dependency["kind"].as_str() {
                None => DependencyKind::Normal,
                Some("build") => DependencyKind::Build,
                Some("dev") => DependencyKind::Dev,
                Some(other) => bail!("{name}: unknown dependency kind `{other}`"),
            };
            let dependency_name = dependency["name"]
                .as_str()
                .with_context(|| format!("{name}: a dependency without a name"))?;
            Ok(Dependency {
                name: dependency_name.to_owned(),
                kind,
            })
        })
        .collect::<Result<_>>()?;
    Ok(WorkspacePackage {
        version: text("version")?,
        rust_version: package["rust_version"].as_str().map(str::to_owned),
        name,
        publishable,
        dependencies,
    })
}

/// Every example of the workspace's packages, as `(package, example)` in metadata order.
pub(crate) fn workspace_examples() -> Result<Vec<(String, String)>> {
    let json = Cmd::cargo(["metadata", "--format-version", "1", "--no-deps", "--locked"]).read()?;
    parse_examples(&json)
}

fn parse_examples(json: &str) -> Result<Vec<(String, String)>> {
    let metadata: Value = serde_json::from_str(json).context("parsing cargo metadata")?;
    let Some(packages) = metadata["packages"].as_array() else {
        bail!("cargo metadata has no `packages` array");
    };
    let mut examples = Vec::new();
    for package in packages {
        let name = package["name"]
            .as_str()
            .context("a package without a name")?;
        for target in package["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let is_example = target["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == "example"));
            if is_example {
                let example = target["name"].as_str().context("a target without a name")?;
                examples.push((name.to_owned(), example.to_owned()));
            }
        }
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_examples_by_package() {
        let json = r#"{"packages": [
            {"name": "d365-webapi", "targets": [
                {"name": "d365_webapi", "kind": ["lib"]},
                {"name": "batch", "kind": ["example"]},
                {"name": "it", "kind": ["test"]}]},
            {"name": "xtask", "targets": [{"name": "xtask", "kind": ["bin"]}]}
        ]}"#;
        assert_eq!(
            parse_examples(json).unwrap(),
            [("d365-webapi".to_owned(), "batch".to_owned())]
        );
    }

    #[test]
    fn reads_names_versions_publishability_and_dependency_kinds() {
        let json = r#"{"packages": [
            {"name": "a", "version": "0.1.0", "publish": null, "dependencies": [
                {"name": "b", "kind": null, "rename": "bee"},
                {"name": "c", "kind": "dev"},
                {"name": "cc", "kind": "build"}]},
            {"name": "xtask", "version": "0.0.0", "publish": [], "dependencies": []},
            {"name": "internal", "version": "1.0.0", "publish": ["my-registry"], "dependencies": []}
        ]}"#;
        let packages = parse_workspace_packages(json).unwrap();
        assert_eq!(packages.len(), 3);
        assert_eq!(packages[0].name, "a");
        assert_eq!(packages[0].version, "0.1.0");
        assert!(packages[0].publishable);
        assert_eq!(
            packages[0].dependencies,
            [
                Dependency {
                    name: "b".into(),
                    kind: DependencyKind::Normal
                },
                Dependency {
                    name: "c".into(),
                    kind: DependencyKind::Dev
                },
                Dependency {
                    name: "cc".into(),
                    kind: DependencyKind::Build
                },
            ]
        );
        assert!(!packages[1].publishable, "publish = false");
        assert!(packages[2].publishable, "publishes to a named registry");
    }
}
