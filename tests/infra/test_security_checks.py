"""cdk-nag AwsSolutionsChecks and cfn-lint over the synthesized stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config import BackstopConfig
from tests.infra.conftest import NO_BUNDLING, cdk_json_context

# CDK adds DependsOn the function's role next to the GetAtt on it; the duplicate ordering is
# harmless and not ours to remove (it comes back at synth).
CFN_LINT_IGNORED = ["W3005"]


def _nag_findings(config: BackstopConfig, outdir: Path) -> list[str]:
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from infra.stack import BackstopStack

    flags = {k: v for k, v in cdk_json_context().items() if not k.startswith("backstop:")}
    app = cdk.App(context={**flags, **NO_BUNDLING}, outdir=str(outdir))
    BackstopStack(app, config.stack_name, config=config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    try:
        app.synth()
    except RuntimeError as exc:
        assert "ValidationFailed" in str(exc)
        report = json.loads((outdir / "validation-report.json").read_text())
        return sorted(f"{v['ruleName']} @ {c['constructPath']}"
                      for plugin in report["pluginReports"] for v in plugin["violations"]
                      for c in v["violatingConstructs"])
    return []


def test_aws_solutions_checks_have_no_unacknowledged_findings(
        config: BackstopConfig, tmp_path: Path) -> None:
    assert _nag_findings(config, tmp_path) == []


def test_the_checks_really_run_and_every_acknowledgement_has_a_reason(
        config: BackstopConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the acknowledgements the same stack must fail, or the test above proves nothing.
    import infra.nag

    reasons: dict[str, str] = {}
    monkeypatch.setattr(infra.nag, "acknowledge",
                        lambda scope, rule, reason: reasons.setdefault(rule, reason))
    findings = _nag_findings(config, tmp_path)
    assert any(f.startswith("AwsSolutions-L1 @ ") for f in findings), findings
    assert any(f.startswith("AwsSolutions-DDB3 @ ") for f in findings), findings
    assert {f.split(" @ ")[0] for f in findings} == set(reasons)
    assert all(len(reason.split()) >= 8 for reason in reasons.values()), reasons


def test_cfn_lint_is_clean(template: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "Backstop.template.json"
    path.write_text(json.dumps(template))
    cfn_lint = str(Path(sys.executable).with_name("cfn-lint"))
    result = subprocess.run([cfn_lint, "--ignore-checks", *CFN_LINT_IGNORED, "--", str(path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
