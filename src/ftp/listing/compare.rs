//! Whether two listings of one folder, one in LIST format and one by MLSD, tell the same (see
//! `crate::ftp::list`: STAT listings stand in for MLSD only where they do).

use super::{EntryKind, RemoteEntry};

/// Whether a LIST-format listing tells the same as the MLSD listing of the same folder: the
/// same names with the same kinds, the same file sizes, and every MLSD time inside the interval
/// its LIST time stands for (so this server's LIST times are UTC and parsed right). None when
/// the folder is empty, so there is nothing to compare.
pub(crate) fn list_agrees_with_mlsd(list: &[RemoteEntry], mlsd: &[RemoteEntry]) -> Option<bool> {
    if list.is_empty() && mlsd.is_empty() {
        return None;
    }
    let by_name: std::collections::HashMap<&str, &RemoteEntry> =
        list.iter().map(|e| (e.name.as_str(), e)).collect();
    if by_name.len() != mlsd.len() {
        return Some(false);
    }
    let agree = mlsd.iter().all(|m| {
        let Some(l) = by_name.get(m.name.as_str()) else {
            return false;
        };
        let time_fits = match (l.mtime, m.mtime) {
            (Some(lt), Some(mt)) => {
                lt.unix <= mt.unix && mt.unix < lt.unix + lt.precision.seconds()
            }
            (None, None) => true,
            _ => false,
        };
        l.kind == m.kind && (m.kind != EntryKind::File || l.size == m.size) && time_fits
    });
    Some(agree)
}
