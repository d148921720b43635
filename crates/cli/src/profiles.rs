//! Saved connection profiles: `profiles.toml` in the d365 config directory holds names,
//! URLs and redacted summaries; the connection strings themselves, secrets included, live
//! in `secrets.toml` beside it, never printed back. Both files are mode 0600 and replaced
//! atomically through a temporary file created exclusively beside them (never through a
//! symlink); reading refuses anything but a regular file and caps the size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::exit::UsageError;

/// The d365 config directory: `$D365_CONFIG_DIR`, `$XDG_CONFIG_HOME/d365`, `~/.config/d365`
/// (or `%APPDATA%\d365` on Windows).
pub(crate) fn config_dir() -> PathBuf {
    let from = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = from("D365_CONFIG_DIR") {
        return dir;
    }
    if let Some(dir) = from("XDG_CONFIG_HOME") {
        return dir.join("d365");
    }
    if let Some(dir) = from("APPDATA") {
        return dir.join("d365");
    }
    from("HOME")
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".config")
        .join("d365")
}

/// What `profiles.toml` holds about a profile: nothing secret.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ProfileInfo {
    pub(crate) url: String,
    pub(crate) auth_type: String,
    /// The connection string with every secret replaced by `***`.
    pub(crate) summary: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ProfilesFile {
    pub(crate) current: Option<String>,
    #[serde(default)]
    pub(crate) profiles: BTreeMap<String, ProfileInfo>,
}

/// A profile ready to connect with.
pub(crate) struct Profile {
    pub(crate) name: String,
    pub(crate) connection_string: String,
}

fn profiles_path(dir: &Path) -> PathBuf {
    dir.join("profiles.toml")
}

fn secrets_path(dir: &Path) -> PathBuf {
    dir.join("secrets.toml")
}

/// The most a profiles or secrets file may hold: far more than any set of profiles needs.
const MAX_FILE_LEN: u64 = 4 * 1024 * 1024;

/// The file's text, `None` when it does not exist; anything but a regular file, a file
/// over [`MAX_FILE_LEN`] or one that is not UTF-8 is refused (naming the file only).
fn read_text(path: &Path) -> anyhow::Result<Option<String>> {
    let Some(bytes) = d365_auth_core::store::read_private_file(path, MAX_FILE_LEN)
        .with_context(|| format!("cannot read {}", path.display()))?
    else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))
}

pub(crate) fn read_profiles(dir: &Path) -> anyhow::Result<ProfilesFile> {
    let path = profiles_path(dir);
    match read_text(&path)? {
        Some(text) => toml::from_str(&text)
            .with_context(|| format!("{} is not a valid profiles file", path.display())),
        None => Ok(ProfilesFile::default()),
    }
}

fn read_secrets(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let path = secrets_path(dir);
    match read_text(&path)? {
        // The error names the file only: its text holds secrets.
        Some(text) => toml::from_str(&text)
            .map_err(|_| anyhow::anyhow!("{} is not a valid secrets file", path.display())),
        None => Ok(BTreeMap::new()),
    }
}

/// Replaces `path` with `text` through [`d365_auth_core::store::replace_private_file`]: a new
/// `0600` file created exclusively beside it, synced, renamed over it; a symlink at
/// `path` is replaced, never written through.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    d365_auth_core::store::replace_private_file(path, text.as_bytes())
        .with_context(|| format!("cannot replace {}", path.display()))
}

fn write_profiles(dir: &Path, file: &ProfilesFile) -> anyhow::Result<()> {
    write_atomically(&profiles_path(dir), &toml::to_string_pretty(file)?)
}

fn write_secrets(dir: &Path, secrets: &BTreeMap<String, String>) -> anyhow::Result<()> {
    write_atomically(&secrets_path(dir), &toml::to_string_pretty(secrets)?)
}

fn check_name(name: &str) -> Result<(), UsageError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err(UsageError(format!(
            "`{name}` is not a profile name: use letters, digits, `-`, `_` and `.`"
        )))
    }
}

/// What [`add`] does with a profile of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Refuse (exit 4): `profile add` without `--force`.
    Refuse,
    /// Replace it: `profile add --force`, and `login`, which signs the profile in again.
    Replace,
}

/// Saves a profile: `info` in `profiles.toml`, the connection string in `secrets.toml`.
pub(crate) fn add(
    dir: &Path,
    name: &str,
    connection_string: &str,
    info: ProfileInfo,
    make_current: bool,
    existing: Existing,
) -> anyhow::Result<()> {
    check_name(name)?;
    let mut profiles = read_profiles(dir)?;
    if existing == Existing::Refuse
        && let Some(old) = profiles.profiles.get(name)
    {
        return Err(crate::exit::Failed {
            code: crate::exit::NOT_FOUND_OR_CONFLICT,
            message: format!(
                "a profile `{name}` exists already (for {}): add --force to replace it, or choose another name",
                old.url
            ),
        }
        .into());
    }
    let mut secrets = read_secrets(dir)?;
    secrets.insert(name.to_owned(), connection_string.to_owned());
    profiles.profiles.insert(name.to_owned(), info);
    if make_current || profiles.current.is_none() {
        profiles.current = Some(name.to_owned());
    }
    // Secrets first: a profile listed without its secret would not work.
    write_secrets(dir, &secrets)?;
    write_profiles(dir, &profiles)
}

/// Makes `name` the current profile.
pub(crate) fn set_current(dir: &Path, name: &str) -> anyhow::Result<()> {
    let mut profiles = read_profiles(dir)?;
    if !profiles.profiles.contains_key(name) {
        return Err(UsageError(format!(
            "there is no profile `{name}`: see `d365 profile list`"
        ))
        .into());
    }
    profiles.current = Some(name.to_owned());
    write_profiles(dir, &profiles)
}

/// Removes a profile and its secret.
pub(crate) fn remove(dir: &Path, name: &str) -> anyhow::Result<()> {
    let mut profiles = read_profiles(dir)?;
    if profiles.profiles.remove(name).is_none() {
        return Err(UsageError(format!(
            "there is no profile `{name}`: see `d365 profile list`"
        ))
        .into());
    }
    if profiles.current.as_deref() == Some(name) {
        profiles.current = None;
    }
    let mut secrets = read_secrets(dir)?;
    secrets.remove(name);
    write_profiles(dir, &profiles)?;
    write_secrets(dir, &secrets)
}

/// The profile to connect with: `name` if given, else the current one, else none.
pub(crate) fn selected(name: Option<&str>) -> anyhow::Result<Option<Profile>> {
    let dir = config_dir();
    let profiles = read_profiles(&dir)?;
    let name = match name {
        Some(name) => name.to_owned(),
        None => match profiles.current {
            Some(current) => current,
            None => return Ok(None),
        },
    };
    if !profiles.profiles.contains_key(&name) {
        return Err(UsageError(format!(
            "there is no profile `{name}`: see `d365 profile list`"
        ))
        .into());
    }
    let connection_string = read_secrets(&dir)?.remove(&name).ok_or_else(|| {
        UsageError(format!(
            "the secrets of profile `{name}` are missing from {}: add the profile again",
            secrets_path(&dir).display()
        ))
    })?;
    Ok(Some(Profile {
        name,
        connection_string,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(url: &str) -> ProfileInfo {
        ProfileInfo {
            url: url.to_owned(),
            auth_type: "ClientSecret".to_owned(),
            summary: format!("AuthType=ClientSecret;Url={url};ClientSecret=***"),
        }
    }

    #[test]
    fn profiles_round_trip_and_secrets_stay_private() {
        let dir = std::env::temp_dir().join(format!("d365-profiles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        add(
            &dir,
            "dev",
            "AuthType=ClientSecret;Url=https://dev.crm.dynamics.com;ClientSecret=SECRET-1",
            info("https://dev.crm.dynamics.com"),
            false,
            Existing::Refuse,
        )
        .unwrap();
        add(
            &dir,
            "prod",
            "AuthType=ClientSecret;Url=https://prod.crm.dynamics.com;ClientSecret=SECRET-2",
            info("https://prod.crm.dynamics.com"),
            false,
            Existing::Refuse,
        )
        .unwrap();
        let refused = add(
            &dir,
            "prod",
            "AuthType=ClientSecret;Url=https://other.crm.dynamics.com;ClientSecret=SECRET-X",
            info("https://other.crm.dynamics.com"),
            false,
            Existing::Refuse,
        )
        .unwrap_err();
        assert!(refused.to_string().contains("--force"), "{refused}");
        assert_eq!(
            crate::exit::code_for(&refused),
            crate::exit::NOT_FOUND_OR_CONFLICT
        );
        assert_eq!(
            read_secrets(&dir).unwrap()["prod"],
            "AuthType=ClientSecret;Url=https://prod.crm.dynamics.com;ClientSecret=SECRET-2",
            "a refused add leaves the profile as it was"
        );
        let profiles = read_profiles(&dir).unwrap();
        assert_eq!(
            profiles.current.as_deref(),
            Some("dev"),
            "the first profile becomes current"
        );
        assert_eq!(profiles.profiles.len(), 2);
        let public = std::fs::read_to_string(profiles_path(&dir)).unwrap();
        assert!(!public.contains("SECRET-"), "{public}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(secrets_path(&dir))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        set_current(&dir, "prod").unwrap();
        assert!(set_current(&dir, "nope").is_err());
        remove(&dir, "prod").unwrap();
        let profiles = read_profiles(&dir).unwrap();
        assert_eq!(profiles.current, None);
        assert!(
            !std::fs::read_to_string(secrets_path(&dir))
                .unwrap()
                .contains("SECRET-2")
        );
        assert!(check_name("a b").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Found on `main`: the temporary file had a predictable name and was opened with
    /// create + truncate, so a symlink planted there sent the secrets to its target, mode
    /// 0666.
    #[cfg(unix)]
    #[test]
    fn secrets_never_go_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("d365-profiles-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stolen = dir.join("stolen");
        for name in [
            format!(".secrets.toml.{}.tmp", std::process::id()),
            "secrets.toml".to_owned(),
        ] {
            std::os::unix::fs::symlink(&stolen, dir.join(name)).unwrap();
        }
        add(
            &dir,
            "dev",
            "AuthType=ClientSecret;Url=https://dev.crm.dynamics.com;ClientSecret=SECRET-3",
            info("https://dev.crm.dynamics.com"),
            false,
            Existing::Replace,
        )
        .unwrap();
        assert!(!stolen.exists(), "nothing was written through a symlink");
        let secrets = secrets_path(&dir);
        assert!(std::fs::symlink_metadata(&secrets).unwrap().is_file());
        assert_eq!(
            std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
