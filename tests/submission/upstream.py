"""Upstream files for the tests that use them: read from a bare git mirror of KellerJordan/modded-nanogpt
(OPTBENCH_UPSTREAM_MIRROR, default /work/.mirror/KellerJordan+modded-nanogpt/repo) into a temporary folder, at
test time only (nothing upstream is committed). Tests skip with the reason when the mirror is not there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DEFAULT_MIRROR = "/work/.mirror/KellerJordan+modded-nanogpt/repo"
T3 = "records/track_3_optimization"
#: the README rows' files: the official baseline script, #36's log (its code section is the script; the row
#: links no separate script), and the record scripts and logs of #44, #45, #46
FILES = {
    "baseline": f"{T3}/train_gpt_simple.py",
    "36-log": f"{T3}/results/20260610_tuned_baseline_3250/263ea3c4-2b13-4adf-8a71-0410386b20e1.txt",
    "44": f"{T3}/results/20260609_soap_f1_auxb2_clean/train_gpt_clean_SOTA.py",
    "44-log": f"{T3}/results/20260609_soap_f1_auxb2_clean/H100_ff29b392-e7b7-453e-b9d5-a7dfe0605dd0.txt",
    "45": f"{T3}/results/20260611_tailema_2720_submission/train_gpt_tailema_2720.py",
    "45-log": f"{T3}/results/20260611_tailema_2720_submission/8878c81f-5f73-461f-a41e-c0887e15c1ca.txt",
    "46": f"{T3}/results/20260619_cwd_rowfloor_tailema/train_gpt_cwd_SOTA.py",
    "46-log": f"{T3}/results/20260619_cwd_rowfloor_tailema/A40_seed0_5c87fa44-7ca7-4d54-971d-d952f9b15792.txt",
}


def mirror() -> Path:
    m = Path(os.environ.get("OPTBENCH_UPSTREAM_MIRROR", DEFAULT_MIRROR))
    if not (m / "HEAD").is_file():
        pytest.skip(f"no upstream mirror at {m} (set OPTBENCH_UPSTREAM_MIRROR to a bare git clone of "
                    "KellerJordan/modded-nanogpt)")
    return m


def upstream_file(key: str, dest: Path) -> Path:
    """FILES[key] written to dest/<its file name> (skips without the mirror)."""
    m = mirror()
    path = FILES[key]
    p = subprocess.run(["git", "-C", str(m), "show", f"HEAD:{path}"], capture_output=True, timeout=60)
    if p.returncode != 0:
        pytest.skip(f"{path} is not in the mirror at {m}: {p.stderr.decode(errors='replace').strip()}")
    out = dest / Path(path).name
    out.write_bytes(p.stdout)
    return out
