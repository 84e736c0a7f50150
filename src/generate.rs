//! `ftpsync --generate KIND`: shell completions (clap_complete) and the man page (clap_mangen),
//! made from the command line's own definition, as ripgrep does, so they never drift from it.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, Generate};

/// Writes what `kind` asks for to `out`.
pub(crate) fn generate(kind: Generate, out: &mut dyn Write) -> std::io::Result<()> {
    let mut command = Cli::command();
    let shell = match kind {
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
        Generate::CompletePowershell => Shell::PowerShell,
        Generate::Man => return clap_mangen::Man::new(command).render(out),
    };
    clap_complete::generate(shell, &mut command, "ftpsync", out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(kind: Generate) -> String {
        let mut out = Vec::new();
        generate(kind, &mut out).expect("generated");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn completions_know_every_long_option() {
        let bash = text(Generate::CompleteBash);
        for option in [
            "--delete",
            "--checksum",
            "--ca-file",
            "--watch",
            "--generate",
        ] {
            assert!(
                bash.contains(option),
                "{option} missing from bash completions"
            );
        }
        assert!(text(Generate::CompleteZsh).starts_with("#compdef ftpsync"));
        assert!(text(Generate::CompleteFish).contains("complete -c ftpsync"));
        assert!(text(Generate::CompletePowershell).contains("Register-ArgumentCompleter"));
    }

    #[test]
    fn the_man_page_has_options_urls_passwords_exit_codes_and_examples() {
        let man = text(Generate::Man);
        assert!(
            man.starts_with(".ie") || man.contains(".TH ftpsync"),
            "{man}"
        );
        for needle in [
            "\\-\\-delete",
            "ftpes://",
            "FTPSYNC_PASSWORD",
            "Exit codes",
            "Examples",
        ] {
            assert!(man.contains(needle), "{needle} missing from the man page");
        }
    }
}
