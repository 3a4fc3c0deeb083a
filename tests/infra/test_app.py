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


def test_what_the_cdk_app_imports_is_in_the_documented_install() -> None:
    # docs/deploy.md installs requirements.txt only; every third-party module app.py and
    # infra/ import must come from it, or `cdk synth` fails on a fresh machine.
    import ast
    import importlib.metadata
    import re

    sources = [ROOT / "app.py", *(ROOT / "infra").glob("*.py")]
    modules = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    pinned = {_name(re.split(r"[\[=]", line)[0])
              for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    installed = pinned | {_name(re.split(r"[\s\[<>=!~;(]", r)[0])
                          for d in pinned for r in importlib.metadata.requires(d) or []
                          if "extra ==" not in r}
    distributions = importlib.metadata.packages_distributions()
    missing = {m for m in modules - {"infra", "backstop"} if m in distributions
               and not {_name(d) for d in distributions[m]} & installed}
    assert "cdk_nag" in modules
    assert not missing, f"imported by the CDK app but not in requirements.txt: {missing}"


def _name(distribution: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", distribution.strip()).lower()
