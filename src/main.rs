use clap::Parser;
use ftpsync::exit_codes::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = ftpsync::cli::Cli::parse();
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
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
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
            eprintln!("ftpsync: {e:#}");
            ExitCode::Fatal.into()
        }
    }
}
