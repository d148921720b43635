//! Running external programs: one builder that echoes the command it runs and turns a
//! failure (cannot start, non-zero exit) into an error that names the command.

use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The root of the workspace: the directory above this crate's manifest.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The build directory (absolute): `$CARGO_TARGET_DIR` (relative to the workspace root
/// when relative), or `target` in the workspace root.
pub(crate) fn target_dir() -> PathBuf {
    let root = project_root();
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// The cargo that started us (`$CARGO`), so every step uses the same toolchain.
fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A command to run from the workspace root, with a human-readable rendering for logs and
/// error messages (`ENV=value program arg …`).
pub(crate) struct Cmd {
    command: Command,
    shown_env: Vec<String>,
    shown_words: Vec<String>,
}

impl Cmd {
    /// A command running `program` in the workspace root.
    pub(crate) fn new(program: impl AsRef<OsStr>) -> Self {
        let program = program.as_ref();
        let mut command = Command::new(program);
        command.current_dir(project_root());
        Self {
            command,
            shown_env: Vec::new(),
            shown_words: vec![program.to_string_lossy().into_owned()],
        }
    }

    /// `cargo <args>`, using the cargo that runs xtask.
    pub(crate) fn cargo<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Self::new(cargo_program());
        cmd.shown_words[0] = "cargo".to_owned();
        cmd.args(args)
    }

    /// Appends one argument.
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        let arg = arg.as_ref();
        self.shown_words.push(shell_word(&arg.to_string_lossy()));
        self.command.arg(arg);
        self
    }

    /// Appends several arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    /// Sets an environment variable for the child (shown in the rendering).
    pub(crate) fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        let value = value.as_ref();
        self.shown_env
            .push(format!("{key}={}", shell_word(&value.to_string_lossy())));
        self.command.env(key, value);
        self
    }

    /// Sets several environment variables.
    pub(crate) fn envs<'a>(mut self, vars: impl IntoIterator<Item = &'a (String, String)>) -> Self {
        for (key, value) in vars {
            self = self.env(key, value);
        }
        self
    }

    /// Removes an environment variable from the child's environment.
    pub(crate) fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Sends standard output to `/dev/null` (for commands whose errors are what matters).
    pub(crate) fn stdout_null(mut self) -> Self {
        self.command.stdout(Stdio::null());
        self
    }

    /// Runs with inherited standard streams; a non-zero exit is an error.
    pub(crate) fn run(mut self) -> Result<()> {
        self.announce();
        let status = self
            .command
            .status()
            .with_context(|| format!("could not start `{self}`"))?;
        if !status.success() {
            bail!("`{self}` failed: {status}");
        }
        Ok(())
    }

    /// Runs quietly and returns standard output; standard error passes through. A non-zero
    /// exit is an error.
    pub(crate) fn read(mut self) -> Result<String> {
        let output = self
            .command
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("could not start `{self}`"))?;
        if !output.status.success() {
            bail!("`{self}` failed: {}", output.status);
        }
        String::from_utf8(output.stdout)
            .with_context(|| format!("`{self}` printed non-UTF-8 output"))
    }

    /// Runs quietly and reports only whether it exited with success (for probes such as
    /// "does this tag exist").
    pub(crate) fn succeeds(mut self) -> Result<bool> {
        let status = self
            .command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("could not start `{self}`"))?;
        Ok(status.success())
    }

    /// Runs with standard output piped through this process line by line: each line is
    /// printed as it arrives and handed to `on_line`. A non-zero exit is an error.
    pub(crate) fn run_watching_stdout(mut self, mut on_line: impl FnMut(&str)) -> Result<()> {
        self.announce();
        let mut child = self
            .command
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{self}`"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut out = std::io::stdout();
        for line in BufReader::new(stdout).lines() {
            let line = line.with_context(|| format!("reading the output of `{self}`"))?;
            // A closed stdout (`| head`) must not hide the child's result.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            on_line(&line);
        }
        let status = child
            .wait()
            .with_context(|| format!("waiting for `{self}`"))?;
        if !status.success() {
            bail!("`{self}` failed: {status}");
        }
        Ok(())
    }

    fn announce(&self) {
        println!("$ {self}");
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = self.shown_env.iter().chain(&self.shown_words);
        for (index, word) in words.enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            f.write_str(word)?;
        }
        Ok(())
    }
}

/// Quotes a word for display the way a POSIX shell would need it.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%^".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_environment_program_and_quoted_arguments() {
        let cmd = Cmd::new("git")
            .args(["commit", "-m", "Release 1.2.3"])
            .env("RUSTDOCFLAGS", "-Dwarnings");
        assert_eq!(
            cmd.to_string(),
            "RUSTDOCFLAGS=-Dwarnings git commit -m 'Release 1.2.3'"
        );
    }

    #[test]
    fn shows_cargo_by_name_whatever_its_path() {
        assert_eq!(Cmd::cargo(["fmt", "--all"]).to_string(), "cargo fmt --all");
    }

    #[test]
    fn quotes_globs_and_empty_words() {
        assert_eq!(shell_word("*.snap"), "'*.snap'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
