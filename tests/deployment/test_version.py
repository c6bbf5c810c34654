"""One version: grid_common.__version__. What must spell it out elsewhere agrees with it."""

from __future__ import annotations

import re
import tomllib

import yaml

from grid_common import __version__
from grid_common.openapi import document
from tools.topology import ROOT

KUSTOMIZE_BASE = ROOT / "deploy" / "kubernetes" / "base" / "kustomization.yaml"


def test_the_package_reads_its_version_from_grid_common():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "grid_common.__version__"}


def test_every_api_document_carries_the_version():
    assert document("t", "d", {})["info"]["version"] == __version__


def test_the_kubernetes_manifests_deploy_this_release():
    images = yaml.safe_load(KUSTOMIZE_BASE.read_text())["images"]
    assert {image["name"] for image in images} == {
        f"smart-grid-load-balancer/{n}" for n in ("substation", "balancer", "gateway", "ocpp")
    }
    assert {image["newTag"] for image in images} == {__version__}


def test_the_version_is_written_nowhere_else():
    """A copy of the version anywhere else would drift: the CHANGELOG is history, and the base kustomization is
    checked above."""
    allowed = {ROOT / "grid_common" / "__init__.py", KUSTOMIZE_BASE, ROOT / "CHANGELOG.md"}
    tracked = [
        path
        for folder in (
            "grid_common",
            "substation_service",
            "load_balancer",
            "charge_request_service",
            "deploy",
            "monitoring",
        )
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".json", ".html", ".toml"}
    ] + [ROOT / "docker-compose.yml", ROOT / "Dockerfile", ROOT / "pyproject.toml"]
    written = re.compile(rf"(?<![\w.]){re.escape(__version__)}(?![\w.])")
    copies = [path for path in tracked if path not in allowed and written.search(path.read_text())]
    assert copies == []
