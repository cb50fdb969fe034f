"""Shared fixtures: the data sets in ../shared/data and the `recsys` binary.

The binary is `RECSYS_BIN`, else the release build of this workspace. Tests
that need it or the shared data are skipped when they are missing, except
under CI=true, where they fail: CI builds both before running pytest.
"""

import os
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
ML100K = SHARED / "data" / "ml-100k"
SYNTH = ROOT / "data" / "synth-small.csv"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing (CI must provide it)")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def recsys_bin() -> str:
    b = os.environ.get("RECSYS_BIN") or str(ROOT / "target" / "release" / "recsys")
    if not os.path.exists(b):
        b = shutil.which("recsys") or b
    if not os.path.exists(b):
        _missing(f"the recsys binary ({b}; build it with `cargo build --release`)")
    return b


@pytest.fixture(scope="session")
def ml100k() -> pathlib.Path:
    if not (ML100K / "u1.base").exists():
        _missing(f"{ML100K}")
    return ML100K
