//! `-L` for a pull: remote symbolic links followed, each becoming a local file or folder with
//! its target's content. What a link points to is read from the listing (`name -> target` in
//! LIST and STAT lines, `OS.unix=slink:target` in MLSD) and resolved within the listed tree, so
//! only a target inside the remote folder is ever followed: an absolute target (a path on the
//! server's disk, which FTP paths need not match), one that climbs out of the remote folder,
//! one the listing does not show (missing, excluded, or reached through another link) and a
//! folder holding the link itself (a loop) are reported and skipped. The files are then
//! downloaded by the link's own path: the server's file system follows it, to the target this
//! check found.

use crate::engine::plan::{Protected, RemoteTree};
use crate::ftp::listing::{EntryKind, RemoteEntry};
use crate::local::is_below;

/// Most links followed one after the other (a link to a link...) to reach a file or folder.
const MAX_HOPS: usize = 40;

/// Most folder links nested inside the content of other folder links.
const MAX_NESTING: usize = 8;

/// What following the links did: the tree with every link replaced by its target's content, the
/// links skipped (with why), and what must stay protected below the followed folders.
#[derive(Debug, Default)]
pub(crate) struct Followed {
    pub(crate) tree: RemoteTree,
    pub(crate) skipped: Vec<(String, &'static str)>,
    pub(crate) protected: Vec<String>,
}

/// Follows every symbolic link of `tree` (see the module's header); `excluded` says whether a
/// path (and whether it is a folder) is excluded, for what a followed folder brings in.
pub(crate) fn follow(
    tree: RemoteTree,
    protected: &Protected,
    excluded: &dyn Fn(&str, bool) -> bool,
) -> Followed {
    let mut out = Followed::default();
    let links: Vec<(String, Option<String>)> = tree
        .iter()
        .filter(|(_, e)| e.kind == EntryKind::Symlink)
        .map(|(rel, e)| (rel.clone(), e.link.clone()))
        .collect();
    out.tree = tree
        .iter()
        .filter(|(_, e)| e.kind != EntryKind::Symlink)
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    let mut walk = Walk {
        tree: &tree,
        protected,
        excluded,
        out: &mut out,
    };
    for (rel, target) in links {
        walk.link(&rel, &rel, target.as_deref(), 0);
    }
    out
}

struct Walk<'a> {
    /// The tree as listed.
    tree: &'a RemoteTree,
    protected: &'a Protected,
    excluded: &'a dyn Fn(&str, bool) -> bool,
    out: &'a mut Followed,
}

impl Walk<'_> {
    /// Puts what the link at `physical` (listed with `target`) points to at `dest`.
    fn link(&mut self, dest: &str, physical: &str, target: Option<&str>, nesting: usize) {
        let (found, entry) = match resolve(self.tree, physical, target) {
            Ok(found) => found,
            Err(why) => return self.out.skipped.push((dest.to_string(), why)),
        };
        let name = dest.rsplit('/').next().unwrap_or(dest);
        let renamed = RemoteEntry {
            name: name.to_string(),
            link: None,
            ..entry.clone()
        };
        match entry.kind {
            EntryKind::File => {
                self.out.tree.insert(dest.to_string(), renamed);
            }
            // Following it would enter a folder it lies in (where it is, or where it is copied).
            EntryKind::Dir
                if dest == found || is_below(dest, &found) || is_below(physical, &found) =>
            {
                self.out.skipped.push((
                    dest.to_string(),
                    "it points to a folder holding it (a loop)",
                ))
            }
            EntryKind::Dir if nesting >= MAX_NESTING => self.out.skipped.push((
                dest.to_string(),
                "folder links nested too deep inside each other",
            )),
            EntryKind::Dir => {
                self.out.tree.insert(dest.to_string(), renamed);
                if self.protected.covers(&found) {
                    self.out.protected.push(dest.to_string());
                }
                self.copy_folder(dest, &found, nesting);
            }
            EntryKind::Symlink | EntryKind::Other => self
                .out
                .skipped
                .push((dest.to_string(), "it points to neither a file nor a folder")),
        }
    }

    /// The content of the folder `found` (as listed) put below `dest`, links in it followed.
    fn copy_folder(&mut self, dest: &str, found: &str, nesting: usize) {
        let below = format!("{found}/");
        let inside: Vec<(&String, &RemoteEntry)> = self
            .tree
            .range::<String, _>(below.clone()..)
            .take_while(|(k, _)| k.starts_with(&below))
            .collect();
        for (k, e) in inside {
            let mapped = format!("{dest}/{}", &k[below.len()..]);
            let is_dir = e.kind == EntryKind::Dir;
            if (self.excluded)(&mapped, is_dir) {
                continue;
            }
            if self.protected.covers(k) {
                self.out.protected.push(mapped.clone());
            }
            if e.kind == EntryKind::Symlink {
                self.link(&mapped, k, e.link.as_deref(), nesting + 1);
            } else {
                self.out.tree.insert(mapped, e.clone());
            }
        }
    }
}

/// What the link at `physical` (relative to the root), pointing to `target`, reaches in `tree`:
/// its path and entry (a file or a folder, links on the way followed), or why it is not
/// followed.
fn resolve<'t>(
    tree: &'t RemoteTree,
    physical: &str,
    target: Option<&str>,
) -> Result<(String, &'t RemoteEntry), &'static str> {
    let mut at = physical.to_string();
    let mut target = target;
    for _ in 0..MAX_HOPS {
        let text = target
            .filter(|t| !t.is_empty())
            .ok_or("the listing does not say where it points")?;
        if text.starts_with('/') {
            return Err("it points to an absolute path, which may lie outside the remote folder");
        }
        let mut parts: Vec<&str> = at.split('/').collect();
        parts.pop();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop().ok_or("it points outside the remote folder")?;
                }
                name => parts.push(name),
            }
        }
        if parts.is_empty() {
            return Err("it points to the remote folder itself (a loop)");
        }
        let rel = parts.join("/");
        let entry = tree.get(&rel).ok_or(
            "its target is not in the listing (missing, excluded, or behind another link)",
        )?;
        if entry.kind != EntryKind::Symlink {
            return Ok((rel, entry));
        }
        target = entry.link.as_deref();
        at = rel;
    }
    Err("too many links one after the other")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use EntryKind::{Dir, File, Symlink};

    /// A tree for tests, from its paths separated by spaces: `dir/` a folder, `name->target` a
    /// link (`name->` one whose listing shows no target), any other a file.
    fn tree_of(spec: &str) -> RemoteTree {
        fn entry(token: &str) -> (&str, EntryKind, Option<&str>) {
            match token.split_once("->") {
                Some((rel, target)) => (rel, Symlink, Some(target).filter(|t| !t.is_empty())),
                None => match token.strip_suffix('/') {
                    Some(rel) => (rel, Dir, None),
                    None => (token, File, None),
                },
            }
        }
        spec.split_whitespace()
            .map(entry)
            .map(|(rel, kind, link)| {
                let entry = RemoteEntry {
                    name: rel.rsplit('/').next().unwrap().to_string(),
                    kind,
                    size: 3,
                    mtime: None,
                    link: link.map(str::to_string),
                };
                (rel.to_string(), entry)
            })
            .collect()
    }

    /// Follows the links of the tree `spec` describes (see [`tree_of`]).
    fn followed(spec: &str) -> Followed {
        follow(tree_of(spec), &Protected::default(), &|_, _| false)
    }

    fn kinds(f: &Followed) -> Vec<(&str, EntryKind)> {
        f.tree.iter().map(|(k, e)| (k.as_str(), e.kind)).collect()
    }

    #[test]
    fn links_inside_the_folder_become_their_targets() {
        let f = followed("d/ d/f d/sub/ d/sub/g ldir->d lfile->./d/../d/f chain->lfile d/sub/back->../f d/sub/loop->..");
        let loop_why = "it points to a folder holding it (a loop)";
        let skipped = vec![
            ("d/sub/loop".to_string(), loop_why),
            ("ldir/sub/loop".to_string(), loop_why),
        ];
        assert_eq!(f.skipped, skipped);
        let tree = kinds(&f);
        for (rel, kind) in [
            ("ldir", Dir),
            ("ldir/f", File),
            ("ldir/sub/g", File),
            ("ldir/sub/back", File),
            ("d/sub/back", File),
            ("lfile", File),
            ("chain", File),
        ] {
            assert!(tree.contains(&(rel, kind)), "{rel}: {tree:?}");
        }
        assert_eq!(f.tree["lfile"].name, "lfile");
        assert!(f
            .tree
            .values()
            .all(|e| e.kind != Symlink && e.link.is_none()));
    }

    #[test]
    fn links_outside_unknown_or_looping_are_skipped_with_why() {
        let f = followed("a/ a/up->.. a/self->../a a/out->../../etc/passwd abs->/etc/passwd dangling->nothing unknown-> ring1->ring2 ring2->ring1 b/ b/to_c->../c c/ c/to_b->../b");
        let why: BTreeMap<&str, &str> = f.skipped.iter().map(|(k, w)| (k.as_str(), *w)).collect();
        assert!(why["a/up"].contains("remote folder itself"), "{why:?}");
        assert!(why["a/self"].contains("loop"), "{why:?}");
        assert!(why["a/out"].contains("outside"), "{why:?}");
        assert!(why["abs"].contains("absolute"), "{why:?}");
        assert!(why["dangling"].contains("not in the listing"), "{why:?}");
        assert!(why["unknown"].contains("does not say"), "{why:?}");
        assert!(why["ring1"].contains("too many"), "{why:?}");
        // b/to_c brings c in, whose link back to b is a loop there (and the other way round).
        assert!(why["b/to_c/to_b"].contains("loop"), "{why:?}");
        assert!(why["c/to_b/to_c"].contains("loop"), "{why:?}");
        assert!(f.tree.contains_key("b/to_c"));
        for skipped in why.keys() {
            assert!(!f.tree.contains_key(*skipped), "{skipped}");
        }
    }

    #[test]
    fn what_a_followed_folder_brings_in_is_filtered_and_stays_protected() {
        let mut protected = Protected::default();
        protected.insert("d/unlisted".to_string());
        let tree = tree_of("d/ d/keep.txt d/skip.log d/unlisted/ l->d");
        let f = follow(tree, &protected, &|rel, _| rel.ends_with(".log"));
        assert!(f.tree.contains_key("l/keep.txt"));
        assert!(!f.tree.contains_key("l/skip.log"));
        assert_eq!(f.protected, vec!["l/unlisted".to_string()]);
    }
}
