"""Shared test helpers."""
from __future__ import annotations

import shutil

import pytest

from cnn_lab import export


def chromium_or_skip() -> str:
    """The Chromium that prints the PDF, or skip the test saying what to install
    (`make setup` installs it where this user may; scripts/system-deps.sh)."""
    exe = export.find_chromium()
    if exe is None:
        pytest.skip(export.INSTALL_HINT)
    return exe


def pdftotext_or_skip() -> str:
    exe = shutil.which("pdftotext")
    if exe is None:
        pytest.skip("no pdftotext (Debian/Ubuntu: apt-get install poppler-utils)")
    return exe
