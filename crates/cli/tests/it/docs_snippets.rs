//! Every shell snippet of `docs/` and the READMEs, run with this build's `d365` on `PATH`
//! against a running emulator, so the pages cannot drift from the program.
//!
//! A fence whose language is `sh`, `bash` or `shell` runs (`bash -euo pipefail`). Two tags
//! keep a snippet from running, and each is counted and listed in the test's output:
//! `sh,ignore-offline` (it needs a real tenant or the network) and `sh,no-run` (it is slow
//! or changes the machine: `cargo install`, benchmarks, a server that runs until Ctrl-C,
//! `sudo`). Any other tag is an error, so a typo cannot silently skip a snippet.
//!
//! Each snippet runs in a fresh temporary directory that is also `HOME`, with a private
//! d365 configuration directory, `$CONNECTION` and `D365_CONNECTION_STRING` set to the
//! emulator's client-secret connection string, and that string on standard input (what a
//! person would type at a prompt). Rust snippets of the crate READMEs are doctests (each
//! library's `lib.rs` includes its README); [`every_readme_with_rust_is_a_doctest`] checks
//! that none is left out.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{RunningEmulator, temp_config};

/// How long one snippet may run before it is stopped and reported as failed.
const SNIPPET_LIMIT: Duration = Duration::from_secs(120);

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/cli is two levels below the root")
        .to_path_buf()
}

/// The Markdown pages whose snippets are checked: the README, `docs/**`, every crate README.
fn pages() -> Vec<PathBuf> {
    fn markdown_under(dir: &Path, found: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                markdown_under(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                found.push(path);
            }
        }
    }
    let root = root();
    let mut pages = vec![root.join("README.md")];
    markdown_under(&root.join("docs"), &mut pages);
    let mut crates: Vec<_> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap().path().join("README.md"))
        .filter(|readme| readme.is_file())
        .collect();
    crates.sort();
    pages.extend(crates);
    pages
}

/// What a shell fence's tags ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    Run,
    IgnoreOffline,
    NoRun,
}

/// One fenced code block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snippet {
    /// `docs/cli.md:120`.
    place: String,
    /// The fence's language (`sh`, `rust`, …), lowercased.
    language: String,
    /// The tags after the language.
    tags: Vec<String>,
    body: String,
}

/// The fenced code blocks of `text` (fences of three or more backticks).
fn snippets(place: &str, text: &str) -> Vec<Snippet> {
    let mut found = Vec::new();
    let mut open: Option<(usize, String, Snippet)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        match &mut open {
            None if ticks >= 3 => {
                let info = trimmed[ticks..].trim();
                let mut words = info.split(',').map(|word| word.trim().to_lowercase());
                let language = words.next().unwrap_or_default();
                open = Some((
                    ticks,
                    "`".repeat(ticks),
                    Snippet {
                        place: format!("{place}:{}", index + 1),
                        language,
                        tags: words.filter(|word| !word.is_empty()).collect(),
                        body: String::new(),
                    },
                ));
            }
            Some((open_ticks, fence, _))
                if ticks >= *open_ticks && trimmed.trim_end() == fence.as_str() =>
            {
                found.push(open.take().expect("open").2);
            }
            Some((_, _, snippet)) => {
                snippet.body.push_str(line);
                snippet.body.push('\n');
            }
            None => {}
        }
    }
    assert!(open.is_none(), "{place}: a code fence is never closed");
    found
}

fn is_shell(snippet: &Snippet) -> bool {
    matches!(snippet.language.as_str(), "sh" | "bash" | "shell")
}

fn disposition(snippet: &Snippet) -> Disposition {
    let mut disposition = Disposition::Run;
    for tag in &snippet.tags {
        disposition = match tag.as_str() {
            "ignore-offline" => Disposition::IgnoreOffline,
            "no-run" => Disposition::NoRun,
            other => panic!(
                "{}: unknown tag `{other}` on a shell snippet (use `ignore-offline` or `no-run`)",
                snippet.place
            ),
        };
    }
    disposition
}

#[test]
fn finds_fences_their_languages_and_tags() {
    let text = "intro\n```sh\nd365 whoami\n```\n\n````sh,ignore-offline\naz login\n```\n````\n```rust,no_run\nfn main() {}\n```\n";
    let found = snippets("page.md", text);
    assert_eq!(found.len(), 3);
    assert_eq!(found[0].place, "page.md:2");
    assert_eq!(found[0].body, "d365 whoami\n");
    assert_eq!(disposition(&found[0]), Disposition::Run);
    assert_eq!(found[1].tags, ["ignore-offline"]);
    assert_eq!(
        found[1].body, "az login\n```\n",
        "a longer fence holds a shorter one"
    );
    assert_eq!(disposition(&found[1]), Disposition::IgnoreOffline);
    assert!(!is_shell(&found[2]));
}

#[test]
#[should_panic(expected = "unknown tag `ignore-ofline`")]
fn a_misspelt_tag_is_an_error_not_a_skip() {
    let found = snippets("page.md", "```sh,ignore-ofline\nd365 whoami\n```\n");
    disposition(&found[0]);
}

/// Runs `body` with bash in `dir`; returns its combined output, or why it failed.
fn run_snippet(body: &str, dir: &Path, config: &Path, connection: &str) -> Result<String, String> {
    let d365 = assert_cmd::cargo::cargo_bin("d365");
    let bin_dir = d365.parent().expect("the binary is in a directory");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let output_file = dir.join(".snippet-output");
    let mut child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", body])
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env("D365_CONFIG_DIR", config)
        .env("D365_TOKEN_CACHE", config.join("tokens.json"))
        .env("D365_TOKEN_KEY_STORE", "file")
        .env("NO_COLOR", "1")
        .env("CONNECTION", connection)
        .env("D365_CONNECTION_STRING", connection)
        .env_remove("D365_PROFILE")
        .env_remove("D365_URL")
        .env_remove("D365_GRANT")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&output_file).unwrap())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&output_file)
                .unwrap(),
        ))
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().expect("piped");
        // A snippet that never reads its input closes the pipe first: that is fine.
        let _ = writeln!(stdin, "{connection}");
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SNIPPET_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&output_file).unwrap_or_default();
    match status {
        Some(status) if status.success() => Ok(output),
        Some(status) => Err(format!("{status}\n{output}")),
        None => Err(format!(
            "still running after {} s: stopped\n{output}",
            SNIPPET_LIMIT.as_secs()
        )),
    }
}

#[test]
// The report of what ran and what was skipped is this test's output (shown with --nocapture).
#[allow(clippy::print_stdout)]
fn every_shell_snippet_in_the_docs_runs_against_the_emulator() {
    let emulator_config = temp_config("snippets-emulator");
    let emulator = RunningEmulator::start(&emulator_config);
    let root = root();
    let mut ran = Vec::new();
    let mut ignored_offline = Vec::new();
    let mut not_run = Vec::new();
    let mut failures = Vec::new();
    for page in pages() {
        let relative = page.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&page).unwrap();
        for snippet in snippets(&relative, &text).iter().filter(|s| is_shell(s)) {
            match disposition(snippet) {
                Disposition::IgnoreOffline => ignored_offline.push(snippet.place.clone()),
                Disposition::NoRun => not_run.push(snippet.place.clone()),
                Disposition::Run => {
                    let dir = temp_config("snippet");
                    let config = dir.join("config");
                    std::fs::create_dir(&config).unwrap();
                    match run_snippet(&snippet.body, &dir, &config, &emulator.connection_string) {
                        Ok(_) => ran.push(snippet.place.clone()),
                        Err(why) => {
                            failures.push(format!("{}:\n{}\n{why}", snippet.place, snippet.body));
                        }
                    }
                }
            }
        }
    }
    emulator.stop();
    println!(
        "docs snippets: {} ran, {} failed, {} ignore-offline, {} no-run",
        ran.len(),
        failures.len(),
        ignored_offline.len(),
        not_run.len()
    );
    println!("  ran: {}", ran.join(", "));
    println!(
        "  ignore-offline (need a real tenant): {}",
        ignored_offline.join(", ")
    );
    println!(
        "  no-run (slow or change the machine): {}",
        not_run.join(", ")
    );
    assert!(
        failures.is_empty(),
        "{} shell snippet(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(ran.len() >= 3, "the docs have runnable snippets: {ran:?}");
}

#[test]
fn every_readme_with_rust_is_a_doctest() {
    let root = root();
    for readme in pages()
        .into_iter()
        .filter(|page| page.starts_with(root.join("crates")))
    {
        let text = std::fs::read_to_string(&readme).unwrap();
        let place = readme.strip_prefix(&root).unwrap().display().to_string();
        let rust = snippets(&place, &text)
            .into_iter()
            .filter(|snippet| {
                snippet.language == "rust" && !snippet.tags.iter().any(|tag| tag == "ignore")
            })
            .count();
        if rust == 0 {
            continue;
        }
        let lib = readme.with_file_name("src").join("lib.rs");
        let lib_text = std::fs::read_to_string(&lib)
            .unwrap_or_else(|_| panic!("{place} has Rust snippets but its crate has no lib.rs"));
        assert!(
            lib_text.contains("#[doc = include_str!(\"../README.md\")]"),
            "{place}: {rust} Rust snippet(s), but {} does not include the README as doctests",
            lib.display()
        );
    }
}

/// Pages of `docs/` whose Rust snippets are not yet doctests, and why. Shrink, never grow.
const DOCS_NOT_YET_DOCTESTS: &[(&str, &str)] = &[];

#[test]
fn every_docs_page_with_rust_is_a_doctest_of_some_crate() {
    let root = root();
    let libraries: Vec<String> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path().join("src/lib.rs")).ok())
        .collect();
    let mut unchecked = Vec::new();
    for page in pages()
        .into_iter()
        .filter(|page| page.starts_with(root.join("docs")))
    {
        let place = page.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&page).unwrap();
        let rust = snippets(&place, &text)
            .into_iter()
            .filter(|snippet| {
                snippet.language == "rust" && !snippet.tags.iter().any(|tag| tag == "ignore")
            })
            .count();
        let included = format!("include_str!(\"../../../{place}\")");
        if rust > 0 && !libraries.iter().any(|lib| lib.contains(&included)) {
            unchecked.push(place);
        }
    }
    let allowed: Vec<&str> = DOCS_NOT_YET_DOCTESTS
        .iter()
        .map(|(page, _)| *page)
        .collect();
    assert_eq!(
        unchecked, allowed,
        "pages with Rust snippets that no crate's lib.rs includes as doctests"
    );
}
