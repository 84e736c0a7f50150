"""The pull cells (bench.py --pull): each tool mirrors a server folder to an empty local folder,
then runs again with nothing changed, then once more after the server-side folder was changed
(gen_tree.py mutate, with deletions).

The server folder is filled straight on the server's disk (files copied with their times, owned
by the server's user), so every tool starts from the same remote tree. The tools, at 8
connections each:
- ftpsync URL LOCAL (a URL first means pull), with --delete;
- lftp `mirror --delete` (no -R);
- rclone `sync remote:path LOCAL`.
Each run is checked: `diff -r` of the server folder against the local one, and the downloads the
server logged while it ran (the remote side must see no upload).
"""

import os
import pwd
import shutil
import time
from pathlib import Path

PULL_OPS = ["pull-first", "pull-rerun", "pull-mutate"]


def pull_argv(push_argv, tool):
    """The same tool's command for the other direction: source and destination swapped (and
    lftp's `mirror -R` made a `mirror`)."""
    argv = list(push_argv)
    if tool in ("ftpsync", "rclone"):
        argv[-2], argv[-1] = argv[-1], argv[-2]
        return argv
    if tool == "lftp":
        script = argv[-1]
        commands = script.split("; ")
        for i, c in enumerate(commands):
            if c.startswith("mirror -R "):
                words = c.split(" ")
                local, remote = words[-2], words[-1]
                commands[i] = " ".join(["mirror"] + words[2:-2] + [remote, local])
        argv[-1] = "; ".join(commands)
        return argv
    raise ValueError(tool)


def fill_remote(tree, server_dir, user):
    """`tree` copied into the (empty) server folder with its modification times, owned by the
    server's user."""
    pw = pwd.getpwnam(user)
    shutil.copytree(tree, server_dir, symlinks=True, dirs_exist_ok=True)
    for root, dirs, files in os.walk(server_dir):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
    # copytree sets the folders' times before their files go in: set them again.
    for root, dirs, _ in os.walk(tree, topdown=False):
        for name in dirs:
            src = os.path.join(root, name)
            dst = os.path.join(server_dir, os.path.relpath(src, tree))
            st = os.lstat(src)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def replace_remote(tree, server_dir, user):
    """The server folder made to hold exactly `tree` (the mutated tree: some files changed,
    added and removed)."""
    for child in list(Path(server_dir).iterdir()):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    fill_remote(tree, server_dir, user)


def empty_local(path):
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def pull_cells(b, ctx, inst, rtt, tree, base, mutated, info, tools, reps):
    """Runs the pull operations of one server, RTT and tree for every tool, `reps` times; returns
    {(tool, op): [cell, ...]}. `b` is the bench module (its measuring and checking functions)."""
    nfiles = info["stats"]["files"]
    changes = info["mutation"]["changed"] + info["mutation"]["added"]
    runs = {}
    for rep in range(reps):
        for tool in tools:
            b.log(f"pull: {inst.server}, {rtt} ms, {tree}, {tool}" + (f" (run {rep + 1}/{reps})" if reps > 1 else ""))
            remote_rel = f"bench/{inst.server}/r{rtt}/{tree}/pull-{tool}"
            server_dir = b.prepare_remote(inst, remote_rel)
            fill_remote(base, server_dir, inst.user)
            local = empty_local(Path(ctx["workdir"]) / "pull-local" / tool)
            for op in PULL_OPS:
                if op == "pull-mutate":
                    replace_remote(mutated, server_dir, inst.user)
                expected = {"pull-first": nfiles, "pull-rerun": 0, "pull-mutate": changes}[op]
                cell = run_pull_op(b, ctx, inst, rtt, tree, tool, op, local, remote_rel, server_dir, expected)
                runs.setdefault((tool, op), []).append(cell)
            shutil.rmtree(server_dir, ignore_errors=True)
            shutil.rmtree(local, ignore_errors=True)
    return runs


def run_pull_op(b, ctx, inst, rtt, tree, tool, op, local, remote_rel, server_dir, expected):
    ctx["seq"] = ctx.get("seq", 0) + 1
    tag = f"{ctx['seq']:04d}-{inst.server}-r{rtt}-{tree}-{tool}-{op}"
    out, err = ctx["logdir"] / f"{tag}.out", ctx["logdir"] / f"{tag}.err"
    argv = pull_argv(b.tool_argv(tool, inst, local, remote_rel, ctx), tool)
    os.sync()
    offsets = inst.log_sizes()
    m = b.run_measured(argv, out, err, ctx["timeout"], b.tool_env(tool, inst, ctx))
    time.sleep(0.2)  # let the server finish its log line for the last transfer
    cell = {"server": inst.server, "rtt_ms": rtt, "tree": tree, "tool": tool, "op": op, **m}
    cell["server_log"] = inst.transfers_since(offsets[0], download=True)
    cell["uploads_seen"] = inst.transfers_since(offsets[0])["uploads"]
    cell["tls"] = inst.tls_since(offsets[1])
    cell["expected_uploads"] = expected  # downloads here; the report's generic name
    cell.update(b.mirror_check(server_dir, local))
    if tool == "ftpsync":
        try:
            cell["ftpsync_json"] = b.json.loads(Path(out).read_text().strip().splitlines()[-1])
        except (ValueError, IndexError, OSError):
            cell["ftpsync_json"] = None
    wrote = [f"wrote-remote({cell['uploads_seen']})"] if cell["uploads_seen"] else []
    b.judge(cell, m, err, wrote)
    down = cell["server_log"]["uploads"]
    b.log(f"  {tool:8s} {op:13s} {m['wall_s']:8.2f} s  cpu {b.num(m['cpu_s'], '7.3f')} s  "
          f"rss {b.num(m['max_rss_mb'], '7.1f')} MB  downloads {down:5d} (expected {expected})  {cell['status']}")
    if cell["status"] != "ok":
        for line in cell.get("stderr_tail", [])[-4:] + cell["diff_head"][:3]:
            b.log(f"      | {line}")
    return cell


def pull_markdown(results, fmt_ratio, num, machine_md):
    """Per server and RTT, each tool's pulls, with ftpsync's time against lftp's and rclone's."""
    labels = {"pull-first": "first pull", "pull-rerun": "nothing changed", "pull-mutate": "after changes"}
    cells = results["cells"]
    by = {(c["server"], c["rtt_ms"], c["op"], c["tool"]): c for c in cells}
    out = [("| server | RTT | operation | tool | wall s | CPU s | peak MB | downloads (expected) | "
            "ftpsync / this | status |"),
           "|---|---|---|---|---:|---:|---:|---:|---:|---|"]
    for c in cells:
        f = by.get((c["server"], c["rtt_ms"], c["op"], "ftpsync"))
        ratio = fmt_ratio(f["wall_s"], c["wall_s"]) if f and c["tool"] != "ftpsync" else ""
        out.append(f"| {c['server']} | {c['rtt_ms']} ms | {labels[c['op']]} | {c['tool']} | {c['wall_s']:.2f} | "
                   f"{num(c['cpu_s'], '.3f')} | {num(c['max_rss_mb'], '.1f')} | "
                   f"{c['server_log']['uploads']} ({c['expected_uploads']}) | {ratio} | {c['status']} |")
    out.append("")
    out.append("Each tool mirrors the server folder (the site tree, copied on the server's disk with its "
               "times) to an empty local folder at 8 connections, runs again with nothing changed, then "
               "after the server folder was mutated (files changed, added and removed; `--delete` or its "
               "equivalent). \"downloads\" are counted from the server's transfer log; a run that "
               "uploaded anything is flagged `wrote-remote`. 0 ms cells are the median of the runs. "
               "`ftpsync / this` is ftpsync's wall time divided by the other tool's: under 1, ftpsync "
               "is faster.\n")
    out.append(machine_md(results))
    return "\n".join(out)
