"""How the backup function learns whom to encrypt for: one SSM parameter per public key.

Armored public keys are too large for Lambda's 4 KB environment, and a custom resource to write
them to S3 would be one more function to own. An ``AWS::SSM::Parameter`` per key is a native
CloudFormation resource: standard tier up to 4 KB, advanced tier up to 8 KB (chosen by size).
The function gets the parameter names in its environment and reads them once per container.
Public keys are not secrets; SecureString is not needed (and CloudFormation cannot create it).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import SSM_STANDARD_MAX


class RecipientKeys(Construct):
    """The recipients' armored OpenPGP public keys, as SSM parameters."""

    def __init__(self, scope: Construct, id_: str, *, keys: tuple[str, ...]) -> None:
        super().__init__(scope, id_)
        self.parameters = [
            ssm.StringParameter(
                self, f"Key{i}", string_value=key,
                description=f"Backstop backup recipient public key {i + 1} of {len(keys)}",
                tier=ssm.ParameterTier.STANDARD if len(key.encode()) <= SSM_STANDARD_MAX
                else ssm.ParameterTier.ADVANCED)
            for i, key in enumerate(keys)]

    def names(self) -> str:
        """Comma-separated parameter names, for the function environment."""
        return ",".join(p.parameter_name for p in self.parameters)

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """GetParameters, the one call the functions make (CDK's grant_read would add
        DescribeParameters, which works only on "*", and calls nothing here uses)."""
        if self.parameters:
            iam.Grant.add_to_principal(grantee=grantee, actions=["ssm:GetParameters"],
                                       resource_arns=[p.parameter_arn for p in self.parameters])
