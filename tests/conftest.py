"""Shared fixtures. Tests run offline: no hub lookups (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from e2gan_bench.cli import main  # noqa: E402


def cli(*args: str) -> int:
    return main([str(a) for a in args])


def one_error_line(capsys, *needles) -> str:
    """The contract for bad input: exactly one line on stderr, no traceback, naming each needle."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert str(n) in err, (n, err)
    return err


@pytest.fixture(scope="session")
def smoke_out(tmp_path_factory) -> Path:
    """The smoke suite run once end to end (real data, training, metrics, reports)."""
    out = tmp_path_factory.mktemp("smoke")
    assert cli("run", "--suite", "smoke", "--out", out) == 0
    return out
