//! `cleave-admin`: parses the command line and runs it; see `cleave_admin::cli`.

use std::process::ExitCode;

use clap::Parser;
use cleave_admin::cli::{run, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    // CLEAVE_LOG_FORMAT=json: one JSON object per line, with the request span's fields.
    if std::env::var("CLEAVE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().with_current_span(true).init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let cleave_admin::error::AdminError::Invalid(problems) = &e {
                for p in problems.iter() {
                    eprintln!("  {p}");
                }
            }
            ExitCode::from(e.exit_code())
        }
    }
}
