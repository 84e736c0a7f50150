use clap::Parser;
use ftpsync::exit_codes::ExitCode;
use ftpsync::report::{self, OutputMode, Reporter};

fn main() -> std::process::ExitCode {
    exit_on_panic();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match ftpsync::cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return ftpsync::cli::usage_error(&e, &args).into(),
    };
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "ftpsync=debug,warn",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FTPSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(report::LogWriter)
        // Colours are escape sequences too: the writer would escape them.
        .with_ansi(false)
        .with_target(false)
        .init();
    let mode = OutputMode {
        quiet: cli.quiet,
        json: cli.json,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(ftpsync::run(cli)),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            Reporter::new(mode).fatal(&report::error_line(&e, &args), ExitCode::Fatal);
            ExitCode::Fatal.into()
        }
    }
}

/// A panic in any thread ends the process at once (after the usual message), exit code 101:
/// otherwise the tasks waiting on the one that panicked would wait forever.
fn exit_on_panic() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        print(info);
        std::process::exit(101);
    }));
}
