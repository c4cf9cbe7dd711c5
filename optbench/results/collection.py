"""Every results.json under a folder, a file or any fsspec URL, read and validated, with the run log beside each:
what the leaderboard is built from. Files that do not validate are returned with the reason, never raised."""

from __future__ import annotations

import json
import os
import posixpath

import fsspec

from optbench.errors import OptbenchError
from optbench.results.schema import Results, parse_results

LOG_NAMES = ("train_log.txt", "log.txt")  # the run log a record links to, first found in its folder


def collect_records(source: str | os.PathLike) -> tuple[list[tuple[str, Results, str]], list[tuple[str, str]]]:
    """(records as (relpath, Results, log link), skipped as (relpath, reason)); paths relative to the source root."""
    src = os.fspath(source)
    try:
        fs, root = fsspec.core.url_to_fs(src)
    except (ValueError, ImportError) as e:
        raise OptbenchError(f"{src}: cannot open as a folder or fsspec URL ({e})") from None
    root = root.rstrip("/") or "/"
    if fs.isfile(root):
        files = [root]
        root = posixpath.dirname(root)
        all_files = set(files)
    else:
        if not fs.isdir(root):
            raise OptbenchError(f"{src}: no such folder")
        all_files = set(fs.find(root))
        files = sorted(p for p in all_files if posixpath.basename(p) == "results.json")
    records, skipped = [], []
    for p in files:
        rel = posixpath.relpath(p, root)
        try:
            with fs.open(p, "r", encoding="utf-8") as f:
                data = json.load(f)
            r = parse_results(data, rel)
        except OptbenchError as e:
            skipped.append((rel, str(e).split("\n", 1)[-1].strip().replace("\n  ", "; ")))
            continue
        except (ValueError, OSError) as e:
            skipped.append((rel, f"not readable JSON ({e.__class__.__name__})"))
            continue
        folder = posixpath.dirname(p)
        log = rel
        for name in LOG_NAMES:
            cand = posixpath.join(folder, name)
            if cand in all_files:
                log = posixpath.relpath(cand, root)
                break
        records.append((rel, r, log))
    return records, skipped
