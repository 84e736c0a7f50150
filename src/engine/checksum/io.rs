//! The `--checksum` jobs on one worker's connection: reading the manifest (and telling "no
//! such file" from "cannot read it"), writing it (temporary name, size check, rename), and
//! asking the server for a file's hash.

use crate::engine::job::WorkerContext;
use crate::ftp::digest::{Algorithm, HashCommand};
use crate::ftp::{Connection, FtpError};
use crate::manifest;
use crate::temp_name::{is_temp_name, temp_path};

/// The manifest at `path`: None when there is no such file. A refused RETR (whatever the code:
/// servers differ) counts as "no such file" only when the folder's listing agrees and the
/// server has no size for it (a folder it may not list shows nothing, yet SIZE finds a file in
/// it): a manifest that exists but cannot be read is an error, never a first deploy.
pub(crate) async fn fetch(
    ctx: &WorkerContext,
    conn: &mut Connection,
    path: &str,
) -> Result<Option<Vec<u8>>, FtpError> {
    match conn.download_capped(path, manifest::MAX_BYTES).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.code().is_some() && !e.breaks_connection() => {
            let listed = listed_names(ctx, conn, path).await?;
            if listed.contains(&name_of(path).to_string()) || has_size(conn, path).await? {
                return Err(e);
            }
            // A write that stopped between deleting the old manifest and renaming the new one
            // into place (servers that rename over no file) leaves the only copy here.
            match complete_copy(conn, path, listed).await? {
                Some(copy) => Err(FtpError::Reply {
                    operation: format!("RETR {path}"),
                    code: 550,
                    text: format!(
                        "no such file, but {copy:?} beside it holds a copy written by a run that stopped before renaming it; rename it to {:?} (or delete it to deploy as if for the first time)",
                        name_of(path)
                    ),
                }),
                None => Ok(None),
            }
        }
        Err(e) => Err(e),
    }
}

/// Whether the server gives `path` a size (SIZE): then there is a file, listed or not. A
/// refusal (or no SIZE at all) says nothing more.
async fn has_size(conn: &mut Connection, path: &str) -> Result<bool, FtpError> {
    match conn.size(path).await {
        Ok(size) => Ok(size.is_some()),
        Err(e) if e.is_permanent() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The last part of `path`.
fn name_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// Whether `listed` is a temporary copy of the file `name` (`.NAME.TOKEN.ftpsync-tmp`).
fn is_copy_of(listed: &str, name: &str) -> bool {
    is_temp_name(listed) && listed.starts_with(&format!(".{name}."))
}

/// The first of the temporary copies of the manifest `path` among `listed` (its folder's
/// names) that holds a whole manifest; copies cut short (a run stopped while storing one) are
/// not the manifest's last word.
async fn complete_copy(
    conn: &mut Connection,
    path: &str,
    listed: Vec<String>,
) -> Result<Option<String>, FtpError> {
    let folder = path.strip_suffix(name_of(path)).unwrap_or("");
    for copy in listed.into_iter().filter(|n| is_copy_of(n, name_of(path))) {
        match conn
            .download_capped(&format!("{folder}{copy}"), manifest::MAX_BYTES)
            .await
        {
            Ok(bytes) if manifest::Manifest::parse(&bytes).is_ok() => return Ok(Some(copy)),
            Ok(_) => {}
            Err(e) if e.code().is_some() && !e.breaks_connection() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The names in the parent folder of `path`. A folder that cannot be listed for good (550: it
/// does not exist) holds nothing.
async fn listed_names(
    ctx: &WorkerContext,
    conn: &mut Connection,
    path: &str,
) -> Result<Vec<String>, FtpError> {
    let parent = match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((parent, _)) => parent,
        None => "",
    };
    // Data-connection listings (no STAT): this is rare, and must not disturb the quirks.
    let listed = conn.list(parent, false, ctx.quirks.stat_for_mlsd()).await;
    match listed {
        Ok(listing) => Ok(listing.parsed.entries.into_iter().map(|e| e.name).collect()),
        Err(e) if e.is_permanent() => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Stores `bytes` at `path`: under a temporary name, renamed into place only once the server
/// confirmed the transfer and reports the right size. A missing parent folder is created (a
/// `--manifest` outside the remote folder, on the first deploy).
pub(crate) async fn put(
    ctx: &WorkerContext,
    conn: &mut Connection,
    path: &str,
    bytes: &[u8],
) -> Result<(), FtpError> {
    let temp = temp_path(path, &ctx.run_token);
    let stored = match conn.upload_bytes(&temp, bytes).await {
        Err(e) if e.code() == Some(550) || e.code() == Some(553) => match path.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => {
                conn.mkdir_all(parent).await?;
                conn.upload_bytes(&temp, bytes).await
            }
            _ => Err(e),
        },
        other => other,
    };
    if let Err(e) = stored {
        if !e.breaks_connection() {
            // Nothing was renamed: what the transfer left is only a temporary file.
            let _ = conn.delete(&temp).await;
        }
        return Err(e);
    }
    let committed = commit(conn, &temp, path, bytes.len() as u64).await;
    if let Err((e, only_copy)) = &committed {
        if !e.breaks_connection() && !only_copy {
            let _ = conn.delete(&temp).await;
        }
    }
    committed.map_err(|(e, _)| e)
}

/// Checks the temporary copy's size and renames it into place, as [`crate::engine::upload`]
/// does for the user's files, but telling (`true`) when the rename failed after the old
/// manifest was deleted (servers that rename over no file): the temporary copy is then the
/// only one, and must stay.
async fn commit(
    conn: &mut Connection,
    temp: &str,
    path: &str,
    size: u64,
) -> Result<(), (FtpError, bool)> {
    let stored = conn.size(temp).await.map_err(|e| (e, false))?;
    if let Some(stored) = stored.filter(|&stored| stored != size) {
        let operation = format!("STOR {path}");
        let e = FtpError::SizeMismatch {
            operation,
            stored,
            expected: size,
        };
        return Err((e, false));
    }
    match conn.rename(temp, path).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_permanent() => {
            conn.delete(path).await.ok();
            conn.rename(temp, path).await.map_err(|e| (e, true))
        }
        Err(e) => Err((e, false)),
    }
}

/// The server's hash of the remote file `path`, with the algorithm; None when the server
/// computes none (no `HASH` or `X...` command in FEAT).
pub(crate) async fn hash(
    conn: &mut Connection,
    path: &str,
) -> Result<Option<(Algorithm, Vec<u8>)>, FtpError> {
    let Some(how): Option<HashCommand> = conn.features.hash else {
        return Ok(None);
    };
    let digest = conn.remote_hash(path, how).await?;
    Ok(Some((how.algorithm(), digest)))
}
