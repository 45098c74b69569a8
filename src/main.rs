//! The `skiff` binary: parses the command line and runs the chosen role.
//!
//! Errors end the process with their message on stderr and exit code 1;
//! clap's own usage errors keep clap's exit code (2).

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use skiff::cli::{Cli, Command};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Version => {
            println!("{}", skiff::cli::version_text());
            ExitCode::SUCCESS
        }
        Command::SimNodes(args) => skiff::sim_nodes::run(args),
        Command::Kubectl(args) => skiff::cli::tools::kubectl(args),
        Command::Ctr(args) => skiff::cli::tools::ctr(args),
        Command::CheckConfig => skiff::cli::check_config::main(),
        Command::Certificate(args) => skiff::cli::certificate::main(args),
        Command::Agent(args) => {
            let sub = matches.subcommand_matches("agent").unwrap_or(&matches);
            match skiff::cli::agent::resolve(&args, sub) {
                Ok(config) => skiff::agent::remote::run(config),
                Err(e) => {
                    eprintln!("skiff agent: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token(args) => skiff::cli::token::main(args),
        Command::Proxy(args) => skiff::cli::proxy::proxy(args),
        Command::CleanupNetwork(args) => skiff::cli::proxy::cleanup_network(args),
        Command::Server(args) => {
            let sub = matches.subcommand_matches("server").unwrap_or(&matches);
            match skiff::cli::server::resolve(&args, sub) {
                Ok(config) => skiff::server::run(config),
                Err(e) => {
                    eprintln!("skiff server: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
