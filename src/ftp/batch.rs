//! Simple commands on paths (`MKD`, `DELE`, `RMD`, `SITE CHMOD`) several at a time: in one write where the
//! connection pipelines, their replies read in order (one round trip for all of them), one after
//! the other otherwise. Creating the folders of a new tree or deleting many files then costs a
//! round trip per batch rather than per path.

use suppaftp::Status;

use super::error::{within, FtpError};
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
    /// Set the mode of the file or folder (`--chmod`, `--perms`).
    SiteChmod(u32),
}

impl PathCommand {
    /// The command line for `path` (without its CRLF), as errors name it too.
    pub(crate) fn line(self, path: &str) -> String {
        match self {
            PathCommand::Mkd => op("MKD", path),
            PathCommand::Dele => op("DELE", path),
            PathCommand::Rmd => op("RMD", path),
            PathCommand::SiteChmod(mode) => op(&format!("SITE CHMOD {mode:03o}"), path),
        }
    }

    /// The replies that mean it was done.
    pub(crate) fn success(self) -> &'static [Status] {
        match self {
            PathCommand::Mkd => &[Status::PathCreated],
            PathCommand::Dele | PathCommand::Rmd => &[Status::RequestedFileActionOk],
            // 200 as the servers answer it; 202 ("superfluous") means the mode was not set.
            PathCommand::SiteChmod(_) => &[Status::CommandOk, Status::RequestedFileActionOk],
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
            .map(|(command, path)| format!("{}\r\n", command.line(path)))
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
            let operation = command.line(path);
            let answer = reply(
                &mut self.stream,
                &operation,
                command.success(),
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
            PathCommand::SiteChmod(mode) => self.site_chmod(path, mode).await,
        }
    }

    /// Sets the mode of `path` (`SITE CHMOD 644 path`); a reply other than 200 or 250 is Err.
    pub(crate) async fn site_chmod(&mut self, path: &str, mode: u32) -> Result<(), FtpError> {
        let command = PathCommand::SiteChmod(mode);
        let line = command.line(path);
        let sent = self
            .stream
            .ftp
            .custom_command(line.clone(), command.success());
        within(self.timeout, line, sent).await.map(|_| ())
    }
}
