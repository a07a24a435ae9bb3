use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use presence::cli::{Cli, LogFormat};

fn plain_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        if field.name() == "message" {
            write!(writer, "{value:?}")
        } else {
            write!(writer, "{field}={value:?}")
        }
    })
    .delimited(" ")
}

fn main() -> ExitCode {
    let cli = Cli::parse_with_config().unwrap_or_else(|error| error.exit());
    let filter = EnvFilter::try_from_env("PRESENCE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn"));
    // Lines go to standard error through a thread of their own, which writes whatever has
    // queued up at once; up to 128 000 lines wait for it, and past that new lines are dropped
    // rather than hold up the requests that log them. The guard, dropped when `main` returns,
    // writes out what is left.
    let (writer, _written_at_exit) =
        tracing_appender::non_blocking(std::io::BufWriter::new(std::io::stderr()));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match cli.log_format {
        LogFormat::Text if std::io::stderr().is_terminal() => log.init(),
        // Fields written plainly: the default formatter styles every field name, which costs
        // as much as the rest of the line even with colours off.
        LogFormat::Text => log.with_ansi(false).fmt_fields(plain_fields()).init(),
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
