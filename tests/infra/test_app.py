"""``app.py`` as the CDK CLI runs it: context in CDK_CONTEXT_JSON, no network, no Docker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.infra.conftest import NO_BUNDLING, ROOT, cdk_json_context


def _run_app(context: dict[str, object], outdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(outdir),
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False, timeout=120)


def test_app_synthesizes_the_stack_with_nag_enabled(tmp_path: Path, recipient_key: str) -> None:
    key_file = tmp_path / "ops.asc"
    key_file.write_text(recipient_key)
    context = {**cdk_json_context(), **NO_BUNDLING, "backstop:recipients": [f"file:{key_file}"]}

    result = _run_app(context, tmp_path / "out")

    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "out" / "Backstop.template.json").read_text())
    assert "BackupBucket" in template["Resources"]


def test_app_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    result = _run_app({**cdk_json_context(), **NO_BUNDLING}, tmp_path / "out")

    assert result.returncode == 1
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("Backstop configuration")]
    assert line.startswith("Backstop configuration error: backstop:recipients: ")
