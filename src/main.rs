use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use presence::cli::{Cli, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse_with_config().unwrap_or_else(|error| error.exit());
    let filter = EnvFilter::try_from_env("PRESENCE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => log.json().init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()).map_err(anyhow::Error::from) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
