//! The command line's shape: global options (where the connection comes from, the output
//! format, verbosity) and every command with its arguments, as clap derives them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Microsoft Dataverse from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "d365",
    version,
    about = "Microsoft Dataverse / Dynamics 365 from the command line",
    long_about = "Microsoft Dataverse / Dynamics 365 from the command line.\n\nA connection comes from --emulator, --connection-string (or D365_CONNECTION_STRING), a profile (--profile, D365_PROFILE, or the one chosen with `d365 profile use`), or the azure-identity environment variables with D365_URL. To sign in as a person (with MFA) instead, add --grant device-code. Try it offline: `d365 demo`."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The command line's definition, ending its help with the exit codes of
/// [`exit::TABLE`](crate::exit::TABLE) (a list for `-h`, the table for `--help`): what
/// parsing, completions and manual pages use.
pub(crate) fn command() -> clap::Command {
    use clap::CommandFactory as _;
    Cli::command()
        .after_help(crate::exit::help_text())
        .after_long_help(crate::exit::long_help_text())
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// A ServiceClient-style connection string, or `-` to read it from standard input.
    /// Secrets in it are never printed, but every local user sees a command line in the
    /// process list: prefer `-c -`, --connection-string-file, D365_CONNECTION_STRING or a
    /// profile for one that holds a secret.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "D365_CONNECTION_STRING",
        hide_env_values = true
    )]
    pub(crate) connection_string: Option<String>,
    /// Read the connection string from this file.
    #[arg(
        long,
        global = true,
        env = "D365_CONNECTION_STRING_FILE",
        value_name = "FILE"
    )]
    pub(crate) connection_string_file: Option<PathBuf>,
    /// Whether --connection-string came from the command line (where `ps` shows it), not
    /// the environment; set after parsing.
    #[arg(skip)]
    pub(crate) connection_string_on_command_line: bool,
    /// Where each setting's value came from (flag, environment, default); set after
    /// parsing, read by the connection's precedence and `d365 config show`.
    #[arg(skip)]
    pub(crate) origins: Origins,
    /// A saved profile (see `d365 profile`).
    #[arg(long, short = 'p', global = true, env = "D365_PROFILE")]
    pub(crate) profile: Option<String>,
    /// Start the embedded emulator for this one command and connect to it.
    #[arg(long, global = true)]
    pub(crate) emulator: bool,
    /// Sign in with this grant instead of the one the connection describes, keeping its
    /// client id and tenant: `device-code` (open the page it prints, type the code, sign
    /// in with MFA; later commands reuse the token file). `d365 auth grants` lists them all.
    #[arg(
        long,
        global = true,
        env = "D365_GRANT",
        value_name = "NAME",
        value_parser = parse_grant_name
    )]
    pub(crate) grant: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
    /// A JMESPath expression applied to the JSON a command would print (see
    /// https://jmespath.org), such as `[].name` or `value[?statecode==`0`].accountid`; its
    /// result is printed in the output format (`-o tsv` for plain lines).
    #[arg(long, global = true, value_name = "JMESPATH")]
    pub(crate) query: Option<String>,
    /// More logs on stderr: -v for d365's debug logs, -vv for everything.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Do not read or write the token cache file.
    #[arg(long, global = true)]
    pub(crate) no_token_cache: bool,
    /// The most one request may take, in seconds, its retries and waits included.
    #[arg(
        long,
        global = true,
        env = "D365_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub(crate) timeout: u64,
    /// How often a throttled or failed request is retried (0: never).
    #[arg(
        long,
        global = true,
        env = "D365_MAX_RETRIES",
        value_name = "N",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(0..=100)
    )]
    pub(crate) max_retries: u32,
    /// The most pages `get --all`, `get --out` and `fetchxml --all` follow; reaching it is
    /// an error, so a server that pages forever cannot keep d365 busy forever.
    #[arg(
        long,
        global = true,
        env = "D365_MAX_PAGES",
        value_name = "N",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(crate) max_pages: u32,
    /// The Web API version to speak (`v8.2`), instead of asking an on-premises server
    /// (`RetrieveVersion`); online it is always v9.2.
    #[arg(long, global = true, env = "D365_API_VERSION", value_name = "VERSION")]
    pub(crate) api_version: Option<String>,
    /// In CSV output, prefix a `'` to text cells that start with `=`, `+`, `-`, `@`, a tab
    /// or a carriage return, so a spreadsheet shows them instead of running them as
    /// formulas. Off by default: CSV is exact data for scripts.
    #[arg(long, global = true)]
    pub(crate) csv_formula_guard: bool,
}

/// A `--grant` value: the name of a grant this build registers.
fn parse_grant_name(name: &str) -> Result<String, String> {
    d365_connect::Registry::enabled()
        .named(name)
        .map(|grant| grant.name().to_owned())
        .map_err(|error| error.to_string())
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// An aligned table for people.
    Table,
    /// A JSON document for scripts.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values, no header row: one line per row, columns in `--select` order
    /// (tabs, line breaks and backslashes in a value escaped as `\t`, `\n`, `\\`).
    Tsv,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Walk the classic set-up on the embedded emulator, end to end.
    Demo,
    /// Who the connection signs in as (the WhoAmI function).
    Whoami,
    /// Get a token and show its expiry and claims.
    Token {
        /// Print the token itself (it is a secret: handle it as one).
        #[arg(long)]
        raw: bool,
    },
    /// Sign a person in once, in the browser (or with a code), and remember it in a
    /// profile: later commands run without a prompt while the refresh token lives.
    Login(LoginArgs),
    /// Forget a remembered sign-in: its tokens and its profile (and the token file's key
    /// when no profile is left).
    Logout,
    /// Compare grants and diagnose connections.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Query an entity set.
    #[command(visible_alias = "query")]
    Get(GetArgs),
    /// Run a FetchXML query.
    Fetchxml(FetchXmlArgs),
    /// List the tables (logical name, entity set, primary key and name), from the metadata.
    Tables,
    /// List a table's columns: type, whether required and writable, choice options.
    Columns(ColumnsArgs),
    /// Create a record.
    Create(WriteArgs),
    /// Update a record (never creates).
    Update(KeyedWriteArgs),
    /// Create or update a record by key.
    Upsert(UpsertArgs),
    /// Delete a record.
    Delete(KeyArgs),
    /// Send a $batch described in a JSON file.
    Batch(BatchArgs),
    /// Load rows into a table from a CSV, JSON lines or JSON file.
    ///
    /// Values are converted with the table's metadata and sent in bulk requests, several at
    /// once; a checkpoint beside the file lets a run stopped by Ctrl-C, a kill or the network
    /// continue where it stopped; rows the service refuses go to a rejects file (exit code 1).
    Import(ImportArgs),
    /// Send any Web API request (like `az rest`).
    Request(RequestArgs),
    /// Run the local Entra ID and Dataverse emulator until Ctrl-C.
    ///
    /// It prints its address and a connection string for each seeded identity; with
    /// `-o json` they come as one JSON line, for scripts that start it in the background.
    Emulator(EmulatorArgs),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `d365 man > d365.1 && man ./d365.1`.
    Man,
    /// Manage saved connection profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Show the effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `d365 auth …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuthCommand {
    /// Every configured grant against the same organization, side by side.
    Compare,
    /// The grants this build can sign in with, and the settings each reads.
    Grants,
    /// Every saved profile: who is signed in, until when, and where the tokens are kept.
    Status,
    /// Check the connection step by step and say how to fix what fails.
    Doctor,
}

/// `d365 login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The organization URL, such as https://contoso.crm.dynamics.com (default: D365_URL).
    #[arg(long, env = "D365_URL")]
    pub(crate) url: Option<String>,
    /// The directory (tenant); discovered from the organization when not given.
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// A host speaking Entra ID's protocol other than the organization's cloud's (another
    /// cloud, the d365 emulator).
    #[arg(long, value_name = "URL")]
    pub(crate) authority_host: Option<String>,
    /// The complete authority, such as an on-premises AD FS (https://adfs.contoso.com/adfs);
    /// discovered from the organization when not given.
    #[arg(long, value_name = "URL", conflicts_with_all = ["tenant", "authority_host"])]
    pub(crate) authority: Option<String>,
    /// The application (client) id: a public client with a http://localhost redirect URI
    /// (default: the Azure CLI's public client, as azure-identity uses; required for AD FS).
    #[arg(long)]
    pub(crate) client_id: Option<String>,
    /// The account to preselect, such as ana@contoso.onmicrosoft.com.
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Sign in with a code on any device instead of a browser here (SSH, containers).
    #[arg(long)]
    pub(crate) device_code: bool,
    /// Do not open a browser: print the sign-in address to open by hand.
    #[arg(long)]
    pub(crate) no_browser: bool,
    /// Where the token file's key is kept (see `d365 auth status`).
    #[arg(long, value_enum, env = "D365_TOKEN_KEY_STORE")]
    pub(crate) key_store: Option<crate::token_key::KeyStoreChoice>,
}

/// `d365 get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The entity set, such as `accounts`.
    pub(crate) entity_set: String,
    /// One record instead of a query: its id, or `column=value[,column=value]` for an
    /// alternate key (values in single quotes are always strings).
    #[arg(
        value_name = "ID_OR_KEY",
        conflicts_with_all = ["filter", "orderby", "top", "all", "page_size", "count", "out"]
    )]
    pub(crate) key: Option<String>,
    /// Columns, comma-separated; table, CSV and TSV columns follow this order.
    #[arg(long, short = 's', value_delimiter = ',')]
    pub(crate) select: Vec<String>,
    /// An OData filter, such as "statecode eq 0".
    #[arg(long, short = 'f')]
    pub(crate) filter: Option<String>,
    /// Sort, such as "name asc" (repeatable).
    #[arg(long)]
    pub(crate) orderby: Vec<String>,
    /// At most this many rows, with --all and --out too.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) top: Option<u32>,
    /// Every page, not only the first.
    #[arg(long)]
    pub(crate) all: bool,
    /// Rows per page, 1 to 5000 (Dataverse's most).
    #[arg(long, value_parser = parse_page_size)]
    pub(crate) page_size: Option<u32>,
    /// Also print the total count (capped at 5000 by Dataverse).
    #[arg(long)]
    pub(crate) count: bool,
    /// Include formatted values (choice labels, lookup names, formatted money and dates):
    /// shown as `label (value)` in tables and CSV, as `column@OData.Community.Display.V1.FormattedValue` in JSON.
    #[arg(long)]
    pub(crate) formatted: bool,
    /// Write the rows to this file (jsonl or csv by --output), with a progress bar.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// The most rows Dataverse returns in one page (`odata.maxpagesize`).
pub(crate) const MAX_PAGE_SIZE: u32 = 5000;

/// A `--page-size`: 1 to [`MAX_PAGE_SIZE`], refused with the reason otherwise.
fn parse_page_size(text: &str) -> Result<u32, String> {
    let size: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of rows"))?;
    match size {
        0 => Err("a page holds at least 1 row".to_owned()),
        1..=MAX_PAGE_SIZE => Ok(size),
        _ => Err(format!(
            "Dataverse returns at most {MAX_PAGE_SIZE} rows per page (odata.maxpagesize), so a larger page size cannot be honoured; use --all (or --out FILE) to get every page"
        )),
    }
}

/// `d365 fetchxml`.
#[derive(Debug, Args)]
pub(crate) struct FetchXmlArgs {
    /// The entity set, such as `accounts`.
    pub(crate) entity_set: String,
    /// The FetchXML, or @FILE to read it from a file.
    pub(crate) fetch_xml: String,
    /// Every page (paging cookies), not only the first.
    #[arg(long)]
    pub(crate) all: bool,
    /// Include formatted values (choice labels, lookup names, formatted money and dates).
    #[arg(long)]
    pub(crate) formatted: bool,
}

/// `d365 columns`.
#[derive(Debug, Args)]
pub(crate) struct ColumnsArgs {
    /// The table's logical name, such as `account` (`d365 tables` lists them).
    pub(crate) table: String,
}

/// A record's JSON: inline, or @FILE.
#[derive(Debug, Args)]
pub(crate) struct DataArg {
    /// The record as JSON, or @FILE to read it from a file.
    #[arg(long, short = 'd')]
    pub(crate) data: String,
}

/// `d365 create`.
#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// The entity set, such as `accounts`.
    pub(crate) entity_set: String,
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// Print the created record, not only its id (JSON output always does).
    #[arg(long)]
    pub(crate) return_record: bool,
}

/// A record by key: a GUID, or `column=value[,column=value]` for an alternate key.
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// The entity set, such as `accounts`.
    pub(crate) entity_set: String,
    /// A GUID, or `column=value[,column=value]` (values in single quotes are always strings).
    pub(crate) key: String,
}

/// `d365 update`.
#[derive(Debug, Args)]
pub(crate) struct KeyedWriteArgs {
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// Only if the record still has this ETag.
    #[arg(long)]
    pub(crate) if_match: Option<String>,
}

/// `d365 upsert`.
#[derive(Debug, Args)]
pub(crate) struct UpsertArgs {
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// Fail if the record exists.
    #[arg(long, conflicts_with = "update_only")]
    pub(crate) create_only: bool,
    /// Fail if the record does not exist.
    #[arg(long)]
    pub(crate) update_only: bool,
}

/// `d365 batch`.
#[derive(Debug, Args)]
pub(crate) struct BatchArgs {
    /// A JSON file: {"continue_on_error": bool, "requests": [{"method","url","body"?,"change_set"?}]}.
    pub(crate) file: PathBuf,
}

/// `d365 import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The table: its logical name (`account`) or entity set (`accounts`).
    pub(crate) table: String,
    /// The input: a CSV file with a header row, JSON lines, or a JSON array of objects;
    /// `-` for standard input (with --format).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// The input's format (default: from the file's extension: .csv, .jsonl/.ndjson, .json).
    #[arg(long, value_enum)]
    pub(crate) format: Option<InputFormat>,
    /// Create or update each row found by this alternate key's columns (comma-separated),
    /// so loading the same file again changes nothing; without it every row is created.
    #[arg(long, value_name = "KEY", value_delimiter = ',')]
    pub(crate) upsert: Vec<String>,
    /// Convert and check every row (columns, values, lookup syntax) and send nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Forget the checkpoint of an earlier, unfinished import of this file and start over.
    #[arg(long)]
    pub(crate) restart: bool,
    /// Rows per bulk request to start with (halved after a timeout or a 413), 1 to 1000.
    #[arg(long, value_name = "ROWS", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub(crate) chunk_size: Option<u16>,
    /// Where rows the service refuses go (default: beside the input, `FILE.rejects.csv` or
    /// `FILE.rejects.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub(crate) rejects: Option<PathBuf>,
}

/// The format of an import's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum InputFormat {
    /// Comma-separated values with a header row of column names.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One JSON array of objects (read one object at a time).
    Json,
}

/// `d365 request`.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// The HTTP method.
    pub(crate) method: String,
    /// A path under the API root (`accounts?$top=1`), the same from the organization's
    /// root with any version (`/api/data/v9.2/accounts`, `api/data/v9.0/WhoAmI`), or an
    /// absolute URL on the organization.
    pub(crate) path: String,
    /// A JSON body, or @FILE.
    #[arg(long, short = 'd')]
    pub(crate) data: Option<String>,
    /// Print the status line and the response headers before the body (as `curl -i`).
    #[arg(long, short = 'i')]
    pub(crate) include: bool,
}

/// `d365 emulator`.
#[derive(Debug, Args)]
pub(crate) struct EmulatorArgs {
    /// The port (OS-assigned when absent).
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// Serve https with a generated self-signed certificate.
    #[arg(long)]
    pub(crate) https: bool,
    /// Keep Dataverse data in this SQLite file across restarts.
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// A TOML configuration (tenants, apps, users, tables).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Write the certificate app's key and certificate (and with --https the CA) here
    /// instead of a new private directory of this emulator's own; removed when it stops.
    #[arg(long, value_name = "DIR")]
    pub(crate) credentials_dir: Option<PathBuf>,
    /// Play an on-premises Dynamics 365 server: the organization under this path
    /// (`{base}/Contoso/api/data/v9.0/`) and AD FS at `{base}/adfs` instead of Entra ID.
    #[arg(long, value_name = "ORGANIZATION", num_args = 0..=1, default_missing_value = "Contoso")]
    pub(crate) on_premises: Option<String>,
    /// With --on-premises: the server's version (8.2.2.112 plays CRM 2016 / Dynamics 365 8.2
    /// with Web API v8.0-v8.2; 9.0.2.3034 Dynamics 365 9.0 with v9.0; 9.1.0.14134 9.1).
    #[arg(long, value_name = "VERSION", requires = "on_premises")]
    pub(crate) server_version: Option<String>,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Origin {
    /// A flag on the command line.
    Flag,
    /// An environment variable (`D365_…`).
    Environment,
    /// Neither: the default, or nothing.
    #[default]
    Default,
}

/// The settings whose origin is recorded, by clap argument id.
pub(crate) const RECORDED_SETTINGS: &[&str] = &[
    "connection_string",
    "connection_string_file",
    "profile",
    "grant",
    "output",
    "timeout",
    "max_retries",
    "max_pages",
    "api_version",
];

/// The origin of each of [`RECORDED_SETTINGS`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins(std::collections::BTreeMap<&'static str, Origin>);

impl Origins {
    /// Reads the origins from clap's matches.
    pub(crate) fn from_matches(matches: &clap::ArgMatches) -> Self {
        use clap::parser::ValueSource;
        let mut origins = std::collections::BTreeMap::new();
        for id in RECORDED_SETTINGS {
            let origin = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => Origin::Flag,
                Some(ValueSource::EnvVariable) => Origin::Environment,
                _ => Origin::Default,
            };
            origins.insert(*id, origin);
        }
        Self(origins)
    }

    /// Where the setting `id` came from.
    pub(crate) fn of(&self, id: &str) -> Origin {
        self.0.get(id).copied().unwrap_or_default()
    }
}

/// `d365 config …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Every effective setting and where it came from (flag, environment, profile, default),
    /// without connecting. Secrets are never shown.
    Show,
}

/// `d365 profile …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProfileCommand {
    /// Save a connection string under a name (its secrets go to a separate 0600 file).
    Add {
        /// The profile's name.
        name: String,
        /// The connection string, or `-` to read it from standard input. Without it, d365
        /// asks for it without echo on a terminal, or reads standard input.
        #[arg(
            long,
            short = 'c',
            env = "D365_CONNECTION_STRING",
            hide_env_values = true
        )]
        connection_string: Option<String>,
        /// Whether the connection string was typed on the command line; set after parsing.
        #[arg(skip)]
        connection_string_on_command_line: bool,
        /// Make it the current profile.
        #[arg(long)]
        use_it: bool,
        /// Replace a profile of the same name (without it, an existing profile is kept
        /// and the command exits 4).
        #[arg(long)]
        force: bool,
    },
    /// List the profiles.
    List,
    /// Show a profile (secrets are never shown).
    Show {
        /// The profile's name (the current one when absent).
        name: Option<String>,
    },
    /// Make a profile the current one.
    Use {
        /// The profile's name.
        name: String,
    },
    /// Remove a profile and its secrets.
    Remove {
        /// The profile's name.
        name: String,
    },
}
