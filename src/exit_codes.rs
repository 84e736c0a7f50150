//! The process exit codes, in one place: what each means to a script, and how a run's outcome maps
//! to one.

/// How a run ended, as a script sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything was mirrored (or, with `--dry-run`, planned).
    Success,
    /// The run finished, but some items failed; the rest was done and each failure was listed.
    PartialFailure,
    /// Nothing was done: a usage, configuration, connection or login error.
    Fatal,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

impl ExitCode {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::PartialFailure => 1,
            ExitCode::Fatal => 2,
            ExitCode::Interrupted => 130,
        }
    }

    /// The code of a run that finished, from whether it was interrupted and how many items failed.
    pub fn of_run(interrupted: bool, failed: usize) -> ExitCode {
        if interrupted {
            ExitCode::Interrupted
        } else if failed > 0 {
            ExitCode::PartialFailure
        } else {
            ExitCode::Success
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// The table printed in `--help` and copied in the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    everything mirrored
  1    finished, but some items failed (the rest was done; each failure is listed)
  2    nothing done: usage, configuration, connection or login error
  130  interrupted (Ctrl-C or SIGTERM)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_numbers() {
        assert_eq!(ExitCode::Success.code(), 0);
        assert_eq!(ExitCode::PartialFailure.code(), 1);
        assert_eq!(ExitCode::Fatal.code(), 2);
        assert_eq!(ExitCode::Interrupted.code(), 130);
    }

    #[test]
    fn interruption_wins_over_failures() {
        assert_eq!(ExitCode::of_run(true, 3), ExitCode::Interrupted);
        assert_eq!(ExitCode::of_run(false, 3), ExitCode::PartialFailure);
        assert_eq!(ExitCode::of_run(false, 0), ExitCode::Success);
    }

    #[test]
    fn help_table_lists_every_code() {
        for code in [0, 1, 2, 130] {
            assert!(EXIT_CODES_HELP.contains(&format!("  {code} ")));
        }
    }
}
