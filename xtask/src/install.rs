//! Installing the third-party programs the tests run against (interop peers), pinned and
//! idempotent, under `target/interop`.
//!
//! What to install is the data table [`TOOLS`]: adding a package of a kind that already
//! exists is one entry. Everything lands under one directory whose absolute path the tests
//! receive as `D365_INTEROP_DIR`:
//!
//! - `node/` — an npm prefix (`node/node_modules/<package>`),
//! - `venv/` — a Python virtual environment (`venv/bin/python`).
//!
//! Debian packages (servers the tests start, such as `redis-server`) are the exception:
//! they are installed system-wide with `apt-get`, and the tests find their programs on
//! `PATH`.
//!
//! The libraries `cargo xtask bench --peers` measures d365 against are [`PEERS`], installed
//! the same way under their own directory, `target/bench-peers` ([`peers_dir`]), whose path
//! the process bench receives as `D365_BENCH_PEERS`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cmd::{Cmd, target_dir};

/// The environment variable that tells tests where [`TOOLS`] are installed.
pub(crate) const INTEROP_DIR_VAR: &str = "D365_INTEROP_DIR";

/// Where a tool comes from, which decides how it is installed and how "already installed"
/// is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A package from the npm registry, into the `node/` prefix.
    Npm,
    /// A package from PyPI, into the `venv/` virtual environment.
    Pip,
    /// A Debian package, installed system-wide with `apt-get` (with `sudo -n` when not
    /// root). Debian's archive keeps only the current build of each package, so these are
    /// not pinned: their `version` is [`DISTRIBUTION_VERSION`].
    Apt,
}

/// The `version` of a [`Source::Apt`] tool: whatever the distribution release ships.
pub(crate) const DISTRIBUTION_VERSION: &str = "distribution";

/// One pinned tool the tests need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    /// Where it comes from.
    pub(crate) source: Source,
    /// The package name in that registry.
    pub(crate) package: &'static str,
    /// The exact version to install ([`DISTRIBUTION_VERSION`] for Debian packages).
    pub(crate) version: &'static str,
}

/// Every tool the tests need, pinned.
pub(crate) const TOOLS: &[Tool] = &[
    // A standards-following OAuth 2.0 / OIDC server: our grant flows against a peer that is
    // not our own emulator. 8.2.3 is the newest release whose `engines` include Node 20, the
    // machine's Node (9.x asks for Node >= 22.12).
    Tool {
        source: Source::Npm,
        package: "oauth2-mock-server",
        version: "8.2.3",
    },
    // An unmodified third-party Dataverse client, pointed at our emulator's Web API.
    Tool {
        source: Source::Npm,
        package: "dynamics-web-api",
        version: "2.5.0",
    },
    // Microsoft's token library for Node: the DynamicsWebApi scenario gets its tokens with
    // it (secret, certificate, password) instead of a hand-rolled token request.
    Tool {
        source: Source::Npm,
        package: "@azure/msal-node",
        version: "7.2.4",
    },
    // Microsoft's own clients, pointed at our emulator: it must satisfy them unmodified.
    Tool {
        source: Source::Pip,
        package: "msal",
        version: "1.39.0",
    },
    Tool {
        source: Source::Pip,
        package: "azure-identity",
        version: "1.27.0",
    },
    // Microsoft's Python Dataverse SDK (`from PowerPlatform.Dataverse.client import
    // DataverseClient`), which takes an azure-identity credential.
    Tool {
        source: Source::Pip,
        package: "PowerPlatform-Dataverse-Client",
        version: "1.1.0",
    },
    // A real Redis for the Redis token store's tests (d365-token-store-redis), which start
    // it on a random loopback port.
    Tool {
        source: Source::Apt,
        package: "redis-server",
        version: DISTRIBUTION_VERSION,
    },
    // A real browser for the browser sign-in's end-to-end test (d365 login against the
    // emulator's sign-in page), driven headless through WebDriver.
    Tool {
        source: Source::Apt,
        package: "chromium",
        version: DISTRIBUTION_VERSION,
    },
    Tool {
        source: Source::Apt,
        package: "chromium-driver",
        version: DISTRIBUTION_VERSION,
    },
];

/// The libraries `cargo xtask bench --peers` runs beside d365, pinned: what a user would
/// pick instead of d365 for the same jobs (issue 25).
pub(crate) const PEERS: &[Tool] = &[
    // Tokens: Microsoft's MSAL for Node.js (7.x supports Node 20, the machine's Node).
    Tool {
        source: Source::Npm,
        package: "@azure/msal-node",
        version: "7.2.4",
    },
    // Export: the most used third-party Dataverse client for JavaScript (`retrieveAll`).
    Tool {
        source: Source::Npm,
        package: "dynamics-web-api",
        version: "2.5.0",
    },
    // Tokens: MSAL for Python and azure-identity (the same versions the interop tests use).
    Tool {
        source: Source::Pip,
        package: "msal",
        version: "1.39.0",
    },
    Tool {
        source: Source::Pip,
        package: "azure-identity",
        version: "1.27.0",
    },
    // Export: Microsoft's Python Dataverse SDK (`client.records.get` pages).
    Tool {
        source: Source::Pip,
        package: "PowerPlatform-Dataverse-Client",
        version: "1.1.0",
    },
];

/// The directory every interop tool is installed under (absolute): `target/interop`, or
/// `$CARGO_TARGET_DIR/interop`.
pub(crate) fn interop_dir() -> PathBuf {
    target_dir().join("interop")
}

/// The directory the bench peers are installed under (absolute): `target/bench-peers`.
pub(crate) fn peers_dir() -> PathBuf {
    target_dir().join("bench-peers")
}

/// Installs every tool in [`TOOLS`] that is not already present at its pinned version.
/// Prints one line per tool; a failed install is an error.
pub(crate) fn install_all() -> Result<()> {
    install_into(&interop_dir(), TOOLS)
}

/// Installs every tool of `tools` not already present under `dir` at its pinned version.
pub(crate) fn install_into(dir: &Path, tools: &[Tool]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for source in [Source::Npm, Source::Pip, Source::Apt] {
        let mut missing = Vec::new();
        for tool in tools.iter().filter(|tool| tool.source == source) {
            if is_installed(dir, tool) {
                println!("    {} {} already installed", tool.package, tool.version);
            } else {
                missing.push(*tool);
            }
        }
        if !missing.is_empty() {
            install(dir, source, &missing)?;
            for tool in &missing {
                anyhow::ensure!(
                    is_installed(dir, tool),
                    "{} {} is still not installed after a successful install command",
                    tool.package,
                    tool.version
                );
            }
        }
    }
    Ok(())
}

/// Whether `tool` is present under `dir` at exactly its pinned version.
fn is_installed(dir: &Path, tool: &Tool) -> bool {
    match tool.source {
        Source::Npm => npm_installed_version(dir, tool.package).as_deref() == Some(tool.version),
        Source::Pip => pip_is_installed(dir, tool),
        Source::Apt => apt_is_installed(tool.package),
    }
}

/// Installs `tools` (all from `source`) with one command.
fn install(dir: &Path, source: Source, tools: &[Tool]) -> Result<()> {
    match source {
        Source::Npm => Cmd::new("npm")
            .args(["install", "--prefix"])
            .arg(dir.join("node"))
            .args(["--no-audit", "--no-fund", "--save-exact"])
            .args(
                tools
                    .iter()
                    .map(|tool| format!("{}@{}", tool.package, tool.version)),
            )
            .run(),
        Source::Pip => {
            let venv = dir.join("venv");
            if !venv.join("bin/python").exists() {
                Cmd::new("python3").args(["-m", "venv"]).arg(&venv).run()?;
            }
            Cmd::new(venv.join("bin/pip"))
                .args([
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--quiet",
                ])
                .args(
                    tools
                        .iter()
                        .map(|tool| format!("{}=={}", tool.package, tool.version)),
                )
                .run()
        }
        Source::Apt => {
            let packages = tools.iter().map(|tool| tool.package);
            apt_get(["update", "-qq"])?;
            apt_get(
                ["install", "-y", "-qq", "--no-install-recommends"]
                    .into_iter()
                    .chain(packages),
            )
        }
    }
}

/// `apt-get <args>`, non-interactive; through `sudo -n` unless we are root.
fn apt_get<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let is_root = Cmd::new("id").arg("-u").read()?.trim() == "0";
    let command = if is_root {
        Cmd::new("apt-get")
    } else {
        Cmd::new("sudo").args(["-n", "apt-get"])
    };
    command
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
}

/// Whether the Debian package `package` is installed, by `dpkg-query`; on a machine
/// without dpkg, whether a program of that name is on `PATH` (installed some other way).
fn apt_is_installed(package: &str) -> bool {
    let probe = std::process::Command::new("dpkg-query")
        .args(["--show", "--showformat=${Status}", package])
        .stderr(std::process::Stdio::null())
        .output();
    match probe {
        Ok(output) => dpkg_status_is_installed(&String::from_utf8_lossy(&output.stdout)),
        Err(_) => std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join(package).is_file())
        }),
    }
}

/// Whether a `dpkg-query --showformat=${Status}` answer means "installed" (not merely
/// known, removed, or half-configured).
fn dpkg_status_is_installed(status: &str) -> bool {
    status.trim() == "install ok installed"
}

/// The version of an npm package installed under `dir/node`, from its `package.json`.
fn npm_installed_version(dir: &Path, package: &str) -> Option<String> {
    let manifest = dir
        .join("node/node_modules")
        .join(package)
        .join("package.json");
    let text = fs::read_to_string(manifest).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("version")?.as_str().map(str::to_owned)
}

/// Whether the venv under `dir` has `tool` at its pinned version: pip records an installed
/// distribution as `site-packages/<normalized name>-<version>.dist-info`.
fn pip_is_installed(dir: &Path, tool: &Tool) -> bool {
    let Ok(lib_entries) = fs::read_dir(dir.join("venv/lib")) else {
        return false;
    };
    let wanted = dist_info_name(tool.package, tool.version);
    lib_entries.flatten().any(|python_dir| {
        python_dir
            .path()
            .join("site-packages")
            .join(&wanted)
            .is_dir()
    })
}

/// The `.dist-info` directory name pip writes for a distribution (PEP 427 / PEP 503
/// normalization: lower case, runs of `-`, `_`, `.` become `_`).
fn dist_info_name(package: &str, version: &str) -> String {
    let mut name = String::with_capacity(package.len());
    for c in package.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !name.ends_with('_') {
                name.push('_');
            }
        } else {
            name.push(c.to_ascii_lowercase());
        }
    }
    format!("{name}-{version}.dist-info")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_info_names_are_normalized() {
        assert_eq!(
            dist_info_name("azure-identity", "1.27.0"),
            "azure_identity-1.27.0.dist-info"
        );
        assert_eq!(dist_info_name("MSAL", "1.39.0"), "msal-1.39.0.dist-info");
        assert_eq!(
            dist_info_name("PowerPlatform-Dataverse-Client", "1.1.0"),
            "powerplatform_dataverse_client-1.1.0.dist-info"
        );
        assert_eq!(dist_info_name("a.-_b", "1"), "a_b-1.dist-info");
        assert_eq!(
            dist_info_name("PowerPlatform-Dataverse-Client", "1.1.0"),
            "powerplatform_dataverse_client-1.1.0.dist-info"
        );
    }

    #[test]
    fn every_tool_is_pinned_to_an_exact_version() {
        for tool in TOOLS.iter().chain(PEERS) {
            if tool.source == Source::Apt {
                assert_eq!(
                    tool.version, DISTRIBUTION_VERSION,
                    "{} is a Debian package: it follows the distribution",
                    tool.package
                );
                continue;
            }
            assert!(
                !tool.version.is_empty()
                    && tool.version.chars().all(|c| c.is_ascii_digit() || c == '.'),
                "{} must be pinned to an exact version, not {:?}",
                tool.package,
                tool.version
            );
        }
    }

    #[test]
    fn dpkg_status_means_installed_only_when_fully_installed() {
        assert!(dpkg_status_is_installed("install ok installed"));
        assert!(dpkg_status_is_installed("install ok installed\n"));
        for status in [
            "",
            "deinstall ok config-files",
            "install ok half-configured",
            "install ok unpacked",
        ] {
            assert!(!dpkg_status_is_installed(status), "{status:?}");
        }
    }

    #[test]
    fn the_redis_store_tests_get_a_redis_server_from_debian() {
        let redis = TOOLS
            .iter()
            .find(|tool| tool.package == "redis-server")
            .expect("redis-server is in TOOLS");
        assert_eq!(redis.source, Source::Apt);
    }

    #[test]
    fn detects_installed_versions_from_the_files_the_installers_write() {
        let dir = std::env::temp_dir().join(format!("xtask-install-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let npm = Tool {
            source: Source::Npm,
            package: "oauth2-mock-server",
            version: "9.3.0",
        };
        let pip = Tool {
            source: Source::Pip,
            package: "azure-identity",
            version: "1.27.0",
        };
        assert!(!is_installed(&dir, &npm));
        assert!(!is_installed(&dir, &pip));

        let package_dir = dir.join("node/node_modules/oauth2-mock-server");
        fs::create_dir_all(&package_dir).unwrap();
        fs::write(package_dir.join("package.json"), r#"{"version": "9.2.0"}"#).unwrap();
        assert!(
            !is_installed(&dir, &npm),
            "an older version is not the pinned one"
        );
        fs::write(package_dir.join("package.json"), r#"{"version": "9.3.0"}"#).unwrap();
        assert!(is_installed(&dir, &npm));

        let site = dir.join("venv/lib/python3.11/site-packages");
        fs::create_dir_all(site.join("azure_identity-1.26.0.dist-info")).unwrap();
        assert!(
            !is_installed(&dir, &pip),
            "an older version is not the pinned one"
        );
        fs::create_dir_all(site.join("azure_identity-1.27.0.dist-info")).unwrap();
        assert!(is_installed(&dir, &pip));

        // A scoped npm package lives in a folder per scope.
        let scoped = Tool {
            source: Source::Npm,
            package: "@azure/msal-node",
            version: "7.2.4",
        };
        assert!(!is_installed(&dir, &scoped));
        let scoped_dir = dir.join("node/node_modules/@azure/msal-node");
        fs::create_dir_all(&scoped_dir).unwrap();
        fs::write(scoped_dir.join("package.json"), r#"{"version": "7.2.4"}"#).unwrap();
        assert!(is_installed(&dir, &scoped));

        fs::remove_dir_all(&dir).unwrap();
    }
}
