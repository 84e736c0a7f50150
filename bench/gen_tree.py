#!/usr/bin/env python3
"""Deterministic test trees for the ftpsync benchmark (stdlib only).

    gen_tree.py gen KIND DEST [--seed N]       create DEST (must not exist) as tree KIND
    gen_tree.py mutate SRC DEST [--seed N]     DEST = hard-linked copy of SRC, then "after changes"
    gen_tree.py stats DIR                      files, folders and bytes of DIR, as JSON

KIND is one of:
  site   ~3,000 small files (100 B .. 500 KB, skewed towards small) in ~300 folders, a few
         dotfiles (.htaccess, .well-known/)
  deep   hundreds of folders (600, up to 12 levels, many of them empty), few files (40)
  large  4 x 128 MiB
  seed   the original program's test set: 90 files of similar size (~200-300 KB) in 24 folders,
         plus one 40 MiB video at the end of the tree (zz-video/)
  scale  100,000 files (100 B .. 4 KB) in 10,000 folders

Everything (names, sizes, bytes, modification times to the nanosecond) follows from KIND and the
seed. Contents are pseudo-random bytes, so a transfer in ASCII mode (LF -> CRLF) shows up in a
diff. Modification times are fixed dates (June 2025 .. June 2026), not "now".

mutate: changes 5% of the files (new content of a different size, new modification time: July
2026 onwards), adds 20 (sizes drawn from the tree's own files; 5 of them in a new folder) and
deletes 20, all chosen by the seed. Trees with few files change at least one and add/delete at
most a quarter of them (large: 1 changed, 1 added, 1 deleted). Changed and deleted files are
replaced/unlinked in DEST only: SRC is left intact although DEST starts as hard links to it.
Prints a JSON summary (changed/added/deleted counts and bytes) on stdout.
"""

import argparse
import json
import math
import os
import random
import subprocess
import sys

GEN_VERSION = 1

MTIME_BASE = 1748736000  # 2025-06-01T00:00:00Z
MTIME_SPAN = 365 * 86400
MUTATE_MTIME_BASE = 1751328000 + 400 * 86400  # 2026-08-05, later than every generated file

WORDS = ["about", "assets", "blog", "img", "css", "js", "fonts", "media", "news", "docs", "api", "static", "archive", "team", "products", "support", "legal", "press", "events", "gallery", "downloads", "vendor", "lib", "icons", "themes", "partials", "uploads", "cache", "data", "reports", "help", "faq", "contact", "shop", "cart", "user", "admin", "files", "photos", "videos", "audio", "posts", "pages", "tags", "category", "2019", "2020", "2021", "2022", "2023", "2024", "2025", "en", "de", "fr", "es", "it"]

EXTS_BY_SIZE = [  # (max size, extensions)
    (2_000, ["txt", "json", "svg", "css", "ico", "xml"]),
    (20_000, ["html", "css", "js", "svg", "json", "md"]),
    (120_000, ["png", "jpg", "js", "woff2", "gif", "html"]),
    (10**12, ["jpg", "png", "pdf", "webp", "zip", "mp3"]),
]


def ext_for(size, rng):
    for limit, exts in EXTS_BY_SIZE:
        if size <= limit:
            return rng.choice(exts)
    return "bin"


def write_file(path, size, rng, mtime_ns):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 8 << 20)
            f.write(rng.randbytes(n))
            left -= n
    os.utime(path, ns=(mtime_ns, mtime_ns))


def gen_mtime(rng):
    return (MTIME_BASE + rng.randrange(MTIME_SPAN)) * 10**9 + rng.randrange(10**9)


def skewed_size(rng, lo, hi, power):
    """Log-uniform between lo and hi, with u**power pushing the mass towards lo."""
    u = rng.random() ** power
    return round(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))


class Builder:
    def __init__(self, dest, rng):
        self.dest = dest
        self.rng = rng
        self.dirs = [""]  # relative paths, "" = root
        self.files = []  # (rel, size)
        self.names = {"": set()}

    def unique(self, parent, base, ext=""):
        taken = self.names.setdefault(parent, set())
        name = base + (("." + ext) if ext else "")
        i = 2
        while name in taken:
            name = f"{base}-{i}" + (("." + ext) if ext else "")
            i += 1
        taken.add(name)
        return name

    def add_dir(self, parent, base):
        name = self.unique(parent, base)
        rel = f"{parent}/{name}" if parent else name
        self.dirs.append(rel)
        self.names[rel] = set()
        return rel

    def add_file(self, parent, base, ext, size):
        name = self.unique(parent, base, ext)
        rel = f"{parent}/{name}" if parent else name
        self.files.append((rel, size))
        return rel

    def materialize(self):
        os.makedirs(self.dest)
        for d in self.dirs[1:]:
            os.makedirs(os.path.join(self.dest, d), exist_ok=True)
        for rel, size in self.files:
            write_file(os.path.join(self.dest, rel), size, self.rng, gen_mtime(self.rng))
        # Folder times last (creating entries changes them), deepest first.
        for d in sorted(self.dirs, key=lambda p: -p.count("/")):
            t = gen_mtime(self.rng)
            os.utime(os.path.join(self.dest, d) if d else self.dest, ns=(t, t))


def gen_site(b):
    rng = b.rng
    # ~300 folders: grow a tree, preferring shallow parents.
    while len(b.dirs) < 300:
        parent = rng.choice(b.dirs[: max(1, len(b.dirs) // 2 + 12)])
        if parent.count("/") >= 4:
            continue
        b.add_dir(parent, rng.choice(WORDS))
    wk = b.add_dir("", ".well-known")
    b.add_file(wk, "security", "txt", 380)
    b.add_file("", ".htaccess", "", 1200)
    for d in rng.sample(b.dirs[1:], 6):
        b.add_file(d, ".htaccess", "", skewed_size(rng, 100, 3000, 1.0))
    # ~3,000 files; folders get uneven weights.
    weights = [rng.random() ** 2 + 0.05 for _ in b.dirs]
    while len(b.files) < 3000:
        d = rng.choices(b.dirs, weights)[0]
        size = skewed_size(rng, 100, 500_000, 1.6)
        b.add_file(d, rng.choice(WORDS), ext_for(size, rng), size)


def gen_deep(b):
    rng = b.rng
    while len(b.dirs) < 600:
        # Prefer extending the most recent folders: long chains, up to 12 levels.
        parent = rng.choice(b.dirs[-30:] if rng.random() < 0.7 else b.dirs)
        if parent.count("/") >= 11:
            parent = rng.choice(b.dirs[:20])
        b.add_dir(parent, rng.choice(WORDS))
    b.add_file("", ".htaccess", "", 400)
    for d in rng.sample(b.dirs, 39):
        size = skewed_size(rng, 100, 200_000, 1.5)
        b.add_file(d, rng.choice(WORDS), ext_for(size, rng), size)


def gen_large(b):
    for i in range(4):
        b.add_file("", f"large-{i}", "bin", 128 << 20)


def gen_seed(b):
    rng = b.rng
    tops = [b.add_dir("", f"{i + 1:02d}-{rng.choice(WORDS)}") for i in range(6)]
    for i, t in enumerate(tops):
        for j in range(3 if i < 5 else 2):  # 6 + 17 folders, + zz-video = 24
            b.add_dir(t, f"{rng.choice(WORDS)}-{j + 1}")
    last = b.add_dir("", "zz-video")
    folders = b.dirs[1:]  # 24
    assert len(folders) == 24, len(folders)
    for i in range(90):
        d = folders[i % 24] if i < 48 else rng.choice(folders)
        b.add_file(d, f"IMG_{1000 + i}", rng.choice(["jpg", "jpg", "png"]), rng.randint(200_000, 300_000))
    b.add_file(last, "zz-final-cut", "mp4", 40 << 20)


def gen_scale(b):
    rng = b.rng
    tops = [b.add_dir("", f"d{i:03d}") for i in range(100)]
    for t in tops:
        for j in range(99):
            b.add_dir(t, f"s{j:02d}")
    for d in b.dirs[1:]:  # 10,000 folders, 10 files each
        for k in range(10):
            size = skewed_size(rng, 100, 4000, 1.3)
            b.add_file(d, f"f{k}", ext_for(size, rng), size)


KINDS = {"site": gen_site, "deep": gen_deep, "large": gen_large, "seed": gen_seed, "scale": gen_scale}


def cmd_gen(kind, dest, seed):
    if os.path.exists(dest):
        sys.exit(f"gen_tree: {dest} already exists")
    rng = random.Random(f"ftpsync-bench:{kind}:{seed}:{GEN_VERSION}")
    b = Builder(dest, rng)
    KINDS[kind](b)
    b.materialize()
    print(json.dumps(tree_stats(dest)))


def walk_files(root):
    files, dirs = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel
        if rel:
            dirs.append(rel)
        for fn in sorted(filenames):
            files.append(f"{rel}/{fn}" if rel else fn)
    return sorted(files), sorted(dirs)


def tree_stats(root):
    files, dirs = walk_files(root)
    size = sum(os.lstat(os.path.join(root, f)).st_size for f in files)
    return {"files": len(files), "folders": len(dirs), "bytes": size}


def cmd_mutate(src, dest, seed):
    if os.path.exists(dest):
        sys.exit(f"gen_tree: {dest} already exists")
    subprocess.run(["cp", "-al", src, dest], check=True)
    files, dirs = walk_files(dest)
    rng = random.Random(f"ftpsync-bench:mutate:{seed}:{GEN_VERSION}:{len(files)}")
    n = len(files)
    n_change = max(1, round(0.05 * n))
    n_add = min(20, max(1, n // 4))
    n_del = min(20, max(1, n // 4))
    picked = rng.sample(files, n_change + n_del)
    changed, deleted = sorted(picked[:n_change]), sorted(picked[n_change:])
    sizes = [os.lstat(os.path.join(dest, f)).st_size for f in files]
    out = {"changed": 0, "changed_bytes": 0, "added": 0, "added_bytes": 0, "deleted": 0}
    t0 = MUTATE_MTIME_BASE
    for i, rel in enumerate(changed):
        path = os.path.join(dest, rel)
        old = os.lstat(path).st_size
        new = max(1, int(old * rng.uniform(0.8, 1.25)))
        if new == old:
            new += 1
        tmp = path + ".mutate-tmp"
        write_file(tmp, new, rng, (t0 + 60 * i) * 10**9 + rng.randrange(10**9))
        os.replace(tmp, path)  # a new inode: SRC keeps its version
        out["changed"] += 1
        out["changed_bytes"] += new
    for rel in deleted:
        os.unlink(os.path.join(dest, rel))
        out["deleted"] += 1
    parents = [""] + dirs
    new_dir_parent = rng.choice(parents)
    new_dir = f"{new_dir_parent}/added-folder" if new_dir_parent else "added-folder"
    os.makedirs(os.path.join(dest, new_dir))
    for i in range(n_add):
        parent = new_dir if i < min(5, n_add) and n_add >= 5 else rng.choice(parents)
        size = rng.choice(sizes)
        name = f"added-{i:02d}.{ext_for(size, rng)}"
        write_file(os.path.join(dest, parent, name), size, rng,
                   (t0 + 86400 + 60 * i) * 10**9 + rng.randrange(10**9))
        out["added"] += 1
        out["added_bytes"] += size
    if n_add < 5:  # keep the new folder non-empty only when it got files; else drop it
        try:
            os.rmdir(os.path.join(dest, new_dir))
        except OSError:
            pass
    out.update({"after": tree_stats(dest)})
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("kind", choices=sorted(KINDS))
    g.add_argument("dest")
    g.add_argument("--seed", type=int, default=1)
    m = sub.add_parser("mutate")
    m.add_argument("src")
    m.add_argument("dest")
    m.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("stats")
    s.add_argument("dir")
    a = ap.parse_args()
    if a.cmd == "gen":
        cmd_gen(a.kind, a.dest, a.seed)
    elif a.cmd == "mutate":
        cmd_mutate(a.src, a.dest, a.seed)
    else:
        print(json.dumps(tree_stats(a.dir)))


if __name__ == "__main__":
    main()
