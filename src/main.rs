//! The `ftpsync` command: parses the command line and hands it to [`ftpsync::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    exit_on_panic();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let args = match ftpsync::cli::with_profile(&args) {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    let cli = match ftpsync::cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return ftpsync::cli::usage_error(&e, &args).into(),
    };
    ftpsync::run(cli, &args).into()
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
