"""Backstop's CDK constructs: one per capability, composed by ``infra.stack``."""
