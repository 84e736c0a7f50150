//! Simple commands on paths (`MKD`, `DELE`, `RMD`) several at a time: in one write where the
//! connection pipelines, their replies read in order (one round trip for all of them), one after
//! the other otherwise. Creating the folders of a new tree or deleting many files then costs a
//! round trip per batch rather than per path.

use suppaftp::Status;

use super::error::FtpError;
use super::pipeline::reply;
use super::{op, Connection};

/// A command that takes a path and changes nothing but it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathCommand {
    /// Create the folder.
    Mkd,
    /// Delete the file.
    Dele,
    /// Remove the empty folder.
    Rmd,
}

impl PathCommand {
    fn verb(self) -> &'static str {
        match self {
            PathCommand::Mkd => "MKD",
            PathCommand::Dele => "DELE",
            PathCommand::Rmd => "RMD",
        }
    }

    fn success(self) -> Status {
        match self {
            PathCommand::Mkd => Status::PathCreated,
            PathCommand::Dele | PathCommand::Rmd => Status::RequestedFileActionOk,
        }
    }
}

impl Connection {
    /// Runs `commands` and returns their outcomes in order. After an error that breaks the
    /// connection, the commands not answered get that error too (they may or may not have been
    /// carried out).
    pub(crate) async fn run_many(
        &mut self,
        commands: &[(PathCommand, String)],
    ) -> Vec<Result<(), FtpError>> {
        if !self.can_pipeline() || commands.len() < 2 {
            let mut out = Vec::with_capacity(commands.len());
            for (command, path) in commands {
                out.push(self.run_one(*command, path).await);
            }
            return out;
        }
        let lines: String = commands
            .iter()
            .map(|(command, path)| format!("{} {path}\r\n", command.verb()))
            .collect();
        if let Err(e) = self.stream.send(&lines, self.timeout).await {
            return commands.iter().map(|_| Err(e.clone())).collect();
        }
        let mut out = Vec::with_capacity(commands.len());
        let mut broken: Option<FtpError> = None;
        for (command, path) in commands {
            if let Some(e) = &broken {
                out.push(Err(e.clone()));
                continue;
            }
            let operation = op(command.verb(), path);
            let answer = reply(
                &mut self.stream,
                &operation,
                &[command.success()],
                self.timeout,
            )
            .await
            .map(|_| ());
            if let Err(e) = &answer {
                if e.breaks_connection() {
                    broken = Some(e.clone());
                }
            }
            out.push(answer);
        }
        out
    }

    async fn run_one(&mut self, command: PathCommand, path: &str) -> Result<(), FtpError> {
        match command {
            PathCommand::Mkd => self.mkdir(path).await,
            PathCommand::Dele => self.delete(path).await,
            PathCommand::Rmd => self.rmdir(path).await,
        }
    }
}
