#!/usr/bin/env python3
"""CDK entry point: load the configuration from context, build the Backstop stack.

    cdk synth                                   # defaults from cdk.json
    cdk deploy -c backstop:config_file=prod.json
    cdk deploy -c backstop:rpo_hours=12
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import load_config, raw_from_context
from infra.config_values import ConfigurationError
from infra.stack import BackstopStack


def build(app: cdk.App, *, base_dir: Path | None = None) -> BackstopStack:
    """Build the stack from the app's context; raises ConfigurationError on a bad value."""
    base = base_dir or Path.cwd()
    config = load_config(raw_from_context(app.node.try_get_context, base_dir=base),
                         base_dir=base)
    env = cdk.Environment(account=config.account, region=config.region)
    stack = BackstopStack(app, config.stack_name, config=config, env=env)
    # Unsuppressed findings fail the synth: the security review runs on every build.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack


def main() -> int:
    app = cdk.App()
    try:
        build(app)
    except ConfigurationError as exc:
        print(f"Backstop configuration error: {exc}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
