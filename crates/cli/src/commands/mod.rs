//! One module per command; [`run`] dispatches. Commands print through `output` and return
//! `anyhow` errors whose typed causes decide the exit code.

pub(crate) mod auth;
mod batch;
mod config;
mod data;
mod demo;
mod emulator;
mod import;
pub(crate) mod login;
mod metadata;
mod profile;
mod request;
mod token;

use crate::cli::{AuthCommand, Cli, Command, ConfigCommand};
use crate::connection::Connection;

/// Runs the command `cli` names.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    crate::output::set_csv_formula_guard(global.csv_formula_guard);
    if let Some(query) = &global.query {
        crate::output::set_query(query)?;
    }
    match cli.command {
        Command::Demo => demo::run(global).await,
        Command::Emulator(args) => emulator::run(&args, global.output).await,
        Command::Profile(command) => profile::run(global, command),
        Command::Config(ConfigCommand::Show) => config::show(global),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut crate::cli::command(),
                "d365",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(crate::cli::command()).render(&mut page)?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &page)?;
            Ok(())
        }
        Command::Auth(AuthCommand::Compare) => auth::compare(global).await,
        Command::Auth(AuthCommand::Doctor) => auth::doctor(global).await,
        Command::Auth(AuthCommand::Grants) => auth::grants(global),
        Command::Auth(AuthCommand::Status) => login::status(global).await,
        Command::Login(args) => login::login(global, &args).await,
        Command::Logout => login::logout(global).await,
        command => {
            let connection = Connection::resolve(global).await?;
            crate::timing::phase("connection ready");
            match command {
                Command::Whoami => token::whoami(&connection, global.output).await,
                Command::Token { raw } => token::token(&connection, global.output, raw).await,
                Command::Get(args) => data::get(&connection, global.output, &args).await,
                Command::Fetchxml(args) => data::fetch_xml(&connection, global.output, &args).await,
                Command::Tables => metadata::tables(&connection, global.output).await,
                Command::Columns(args) => {
                    metadata::columns(&connection, global.output, &args).await
                }
                Command::Create(args) => data::create(&connection, global.output, &args).await,
                Command::Update(args) => data::update(&connection, global.output, &args).await,
                Command::Upsert(args) => data::upsert(&connection, global.output, &args).await,
                Command::Delete(args) => data::delete(&connection, global.output, &args).await,
                Command::Batch(args) => batch::run(&connection, global.output, &args).await,
                Command::Import(args) => import::run(&connection, global.output, &args).await,
                Command::Request(args) => request::run(&connection, global.output, &args).await,
                Command::Demo
                | Command::Emulator(_)
                | Command::Profile(_)
                | Command::Config(_)
                | Command::Completions { .. }
                | Command::Man
                | Command::Login(_)
                | Command::Logout
                | Command::Auth(_) => unreachable!("handled above"),
            }
        }
    }
}
