"""The restore side of the template: scratch network and security groups, IAM scoped by name
and tag, the two state machines' shape, the Fargate task, schedules and alarms."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.infra.conftest import resources
from tests.infra.test_iam import _actions, _statements
from tests.support.moto_sfn import resolve

SCRATCH = "db:backstop-scratch-*"
MACHINES = ("RestoreVerification", "ManualRestore")
# plan (15 min) + instance wait (45) + container (6 h) + deleting (30) + margin (30), in hours
WORKFLOW_HOURS = math.ceil((15 + 45 + 6 * 60 + 30 + 30) / 60)


def _text(value: Any) -> str:
    return json.dumps(value)


def _machine(template: dict[str, Any], name: str) -> dict[str, Any]:
    (machine,) = [m for lid, m in resources(template, "AWS::StepFunctions::StateMachine").items()
                  if lid.startswith(f"{name}StateMachine")]
    return machine


def _states(template: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    refs = {k: k for k in template["Resources"]} | {
        "AWS::Partition": "aws", "AWS::Region": "r", "AWS::AccountId": "1"}
    getatts = {(k, a): f"{k}.{a}" for k in template["Resources"] for a in ("Arn", "GroupId")}
    definition = resolve(_machine(template, name)["Properties"]["DefinitionString"], refs,
                         getatts)
    states: dict[str, dict[str, Any]] = json.loads(definition)["States"]
    return states


# --------------------------------------------------------------------------- IAM
def test_rds_actions_are_scoped_by_scratch_name_or_tag_and_never_rds_star(
        template: dict[str, Any]) -> None:
    rds = [(lid, s, a) for lid, s in _statements(template) for a in _actions(s)
           if a.startswith("rds:")]
    assert rds
    for lid, statement, action in rds:
        assert action != "rds:*" and statement["Resource"] != "*", (lid, action)
        resources_ = statement["Resource"]
        for resource in resources_ if isinstance(resources_, list) else [resources_]:
            text = _text(resource)
            if SCRATCH in text:
                continue
            if action == "rds:CreateDBInstance":  # the groups a new instance is created with
                assert any(k in text for k in ("subgrp:", "pg:default.postgres",
                                               "og:default:postgres-")), text
            else:  # only the sweeper lists every instance, to find the scratch ones
                assert action == "rds:DescribeDBInstances", (lid, action)
                assert lid.startswith("FunctionsScratchSweeperRole") and text.endswith(':db:*"]]}')


def test_tagging_on_create_requires_the_scratch_tag_and_sweeping_requires_it_too(
        template: dict[str, Any]) -> None:
    statements = _statements(template)
    tagging = [s for _, s in statements if "rds:AddTagsToResource" in _actions(s)]
    assert len(tagging) == 2  # one per workflow
    for statement in tagging:
        assert statement["Condition"] == {
            "StringEquals": {"aws:RequestTag/backstop:scratch": "true"}}
    (sweep,) = [s for lid, s in statements if lid.startswith("FunctionsScratchSweeperRole")
                and "rds:DeleteDBInstance" in _actions(s)]
    assert sweep["Condition"] == {"StringEquals": {"aws:ResourceTag/backstop:scratch": "true"}}
    assert SCRATCH in _text(sweep["Resource"])


def test_only_scratch_master_secrets_are_readable(template: dict[str, Any]) -> None:
    reads = [(lid, s) for lid, s in _statements(template)
             if "secretsmanager:GetSecretValue" in _actions(s) and "rds!db-" in _text(s)]
    assert {lid.split("DefaultPolicy")[0] for lid, _ in reads} == {
        "FunctionsRestoreRole", "RestoreRunnerTaskTaskRole"}
    for _, statement in reads:
        condition = statement["Condition"]["StringLike"]
        assert SCRATCH in _text(
            condition["secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn"])


def test_the_verifier_key_is_read_only_by_the_restore_side(template: dict[str, Any]) -> None:
    readers = {lid.split("DefaultPolicy")[0] for lid, s in _statements(template)
               if "secret:backstop/verifier-key-" in _text(s)}
    assert readers == {"FunctionsRestorePlanRole", "FunctionsRestoreRole",
                       "RestoreRunnerTaskTaskRole"}


# --------------------------------------------------------------------------- network
def test_scratch_instances_admit_postgres_from_the_restore_clients_only(
        template: dict[str, Any]) -> None:
    groups = resources(template, "AWS::EC2::SecurityGroup")
    instance = groups["ScratchInstanceSgF27CE446"]["Properties"]
    assert "SecurityGroupIngress" not in instance
    assert instance["SecurityGroupEgress"] == [{
        "CidrIp": "255.255.255.255/32", "Description": "Disallow all traffic",
        "FromPort": 252, "IpProtocol": "icmp", "ToPort": 86}]
    (ingress,) = resources(template, "AWS::EC2::SecurityGroupIngress").values()
    assert ingress["Properties"] | {"Description": ""} == {
        "Description": "", "FromPort": 5432, "ToPort": 5432, "IpProtocol": "tcp",
        "GroupId": {"Fn::GetAtt": ["ScratchInstanceSgF27CE446", "GroupId"]},
        "SourceSecurityGroupId": {"Fn::GetAtt": ["ScratchClientSg5FC0B322", "GroupId"]}}
    assert "SecurityGroupIngress" not in groups["ScratchClientSg5FC0B322"]["Properties"]
    (restore,) = [f["Properties"] for f in resources(template, "AWS::Lambda::Function").values()
                  if f["Properties"]["Handler"] == "handlers.restore.handler"]
    assert restore["VpcConfig"]["SecurityGroupIds"] == [
        {"Fn::GetAtt": ["ScratchClientSg5FC0B322", "GroupId"]}]


def test_own_vpc_is_private_with_flow_logs_when_no_network_is_configured(
        template: dict[str, Any]) -> None:
    (subnet_group,) = resources(template, "AWS::RDS::DBSubnetGroup").values()
    subnets = resources(template, "AWS::EC2::Subnet")
    for ref in subnet_group["Properties"]["SubnetIds"]:
        assert subnets[ref["Ref"]]["Properties"]["MapPublicIpOnLaunch"] is False
    assert len(resources(template, "AWS::EC2::NatGateway")) == 1
    (flow_log,) = resources(template, "AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "REJECT"


def test_a_configured_network_holds_the_scratch_instances(synth_with: Any) -> None:
    subnets = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    template = synth_with(network={
        "vpc_id": "vpc-0123456789abcdef0", "subnet_ids": subnets,
        "availability_zones": ["us-east-1a", "us-east-1b"],
        "security_group_ids": ["sg-0123456789abcdef0"], "egress": "nat"})
    assert not resources(template, "AWS::EC2::VPC")
    (subnet_group,) = resources(template, "AWS::RDS::DBSubnetGroup").values()
    assert subnet_group["Properties"]["SubnetIds"] == subnets
    run = _states(template, "RestoreVerification")["RunRestoreTask"]["Parameters"]
    assert run["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == subnets


# --------------------------------------------------------------------------- state machines
@pytest.mark.parametrize("name", MACHINES)
def test_every_task_catches_and_every_path_ends(template: dict[str, Any], name: str) -> None:
    states = _states(template, name)
    for state_name, state in states.items():
        if state["Type"] == "Task":
            assert state.get("Catch"), f"{state_name} has no Catch"
        if state["Type"] in ("Succeed", "Fail"):
            continue
        targets = [state.get("Next"), state.get("Default")] + [
            c["Next"] for c in state.get("Catch", []) + state.get("Choices", [])]
        assert [t for t in targets if t] and all(t in states for t in targets if t), state_name
        assert not state.get("End"), state_name
    ends = {n for n, s in states.items() if s["Type"] in ("Succeed", "Fail")}
    if name == "RestoreVerification":
        assert ends == {"Done", "RestoreTestFailed", "InputRejected", "ScratchCleanupFailed"}
    else:
        assert ends == {"Done", "RestoreFailed", "InputRejected"}


@pytest.mark.parametrize("name", MACHINES)
def test_scratch_instances_are_private_encrypted_managed_and_deletable(
        template: dict[str, Any], name: str) -> None:
    states = _states(template, name)
    create = states["CreateScratch"]
    assert create["Resource"] == "arn:aws:states:::aws-sdk:rds:createDBInstance"
    parameters = create["Parameters"]
    assert parameters["ManageMasterUserPassword"] is True
    assert not {"MasterUserPassword", "MasterUserPassword.$"} & set(parameters)
    assert (parameters["PubliclyAccessible"], parameters["DeletionProtection"],
            parameters["StorageEncrypted"], parameters["MultiAz"]) == (False, False, True, False)
    assert parameters["DbInstanceClass"] == "db.t4g.micro"
    assert parameters["EngineVersion.$"] == "$.plan.scratch.engine_version"
    assert parameters["VpcSecurityGroupIds"] == ["ScratchInstanceSgF27CE446.GroupId"]
    assert parameters["Tags"][0] == {"Key": "backstop:scratch", "Value": "true"}
    for delete in ("DeleteAfterFailure", *(("DeleteScratch",) if name != "ManualRestore"
                                           else ())):
        assert states[delete]["Parameters"]["SkipFinalSnapshot"] is True
        (retry,) = states[delete]["Retry"]
        assert retry["ErrorEquals"] == ["Rds.InvalidDbInstanceStateException"]
    wait = states["WaitForScratch"]
    assert wait["Seconds"] == 60
    ceiling = [c for c in states["ScratchAvailable?"]["Choices"]
               if c.get("Variable") == "$.poll.count"]
    assert ceiling[0]["NumericGreaterThanEquals"] == 45


def test_large_restores_run_the_same_code_as_a_fargate_task_with_sync(
        template: dict[str, Any]) -> None:
    run = _states(template, "RestoreVerification")["RunRestoreTask"]
    assert run["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    assert run["Parameters"]["LaunchType"] == "FARGATE"
    (override,) = run["Parameters"]["Overrides"]["ContainerOverrides"]
    assert {e["Name"]: e.get("Value.$") for e in override["Environment"]} == {
        "BACKSTOP_TASK_INPUT": "States.JsonToString($.runInput)",
        "BACKSTOP_TASK_TOKEN": "$$.Task.Token",
        "BACKSTOP_TASK_STARTED": "$$.State.EnteredTime"}
    assert run["TimeoutSeconds"] == 6 * 3600
    (task,) = [t for lid, t in resources(template, "AWS::ECS::TaskDefinition").items()
               if lid.startswith("RestoreRunner")]
    props = task["Properties"]
    assert (props["Cpu"], props["Memory"], props["EphemeralStorage"]) == (
        "2048", "8192", {"SizeInGiB": 200})
    assert props["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    (container,) = props["ContainerDefinitions"]
    assert container["EntryPoint"] == ["python3", "-m", "handlers.task"]
    environment = _text(container["Environment"])
    assert "BEGIN PGP" not in environment and "password" not in environment.lower()
    (cluster,) = resources(template, "AWS::ECS::Cluster").values()
    assert cluster["Properties"]["ClusterSettings"] == [
        {"Name": "containerInsights", "Value": "enabled"}]


@pytest.mark.parametrize("name", MACHINES)
def test_no_secret_reaches_the_restore_definitions(template: dict[str, Any], name: str) -> None:
    text = json.dumps(_machine(template, name)).lower()
    assert "password\"" not in text and "begin pgp" not in text
    assert "getsecretvalue" not in text


def test_restore_executions_are_bounded_and_the_sweeper_outlasts_them(
        template: dict[str, Any]) -> None:
    for name in MACHINES:
        definition = resolve(_machine(template, name)["Properties"]["DefinitionString"],
                             {k: k for k in template["Resources"]} | {
                                 "AWS::Partition": "aws", "AWS::Region": "r",
                                 "AWS::AccountId": "1"},
                             {(k, a): k for k in template["Resources"]
                              for a in ("Arn", "GroupId")})
        assert json.loads(definition)["TimeoutSeconds"] == (15 + 45 + 360 + 30 + 30) * 60
    (sweeper,) = [f["Properties"] for f in resources(template, "AWS::Lambda::Function").values()
                  if f["Properties"]["Handler"] == "handlers.sweep.handler"]
    assert sweeper["Environment"]["Variables"]["DEFAULT_KEEP_HOURS"] == str(WORKFLOW_HOURS)


# --------------------------------------------------------------------------- schedules
def _rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()]


def test_verification_runs_after_the_nights_backups(template: dict[str, Any],
                                                    synth_with: Any) -> None:
    (daily,) = [r for r in _rules(template) if r.get("ScheduleExpression") == "cron(0 5 * * ? *)"]
    (target,) = daily["Targets"]
    assert target["Arn"] == {"Ref": "RestoreVerificationStateMachineA4F3DED3"}
    assert json.loads(target["Input"]) == {"database": "quotepro", "backup_id": "latest"}
    weekly = synth_with(restore={"schedule": "weekly"})
    assert [r for r in _rules(weekly) if r.get("ScheduleExpression") == "cron(0 5 ? * SUN *)"]
    off = synth_with(restore={"schedule": "off"})
    assert not [r for r in _rules(off) if "backup_id" in _text(r.get("Targets"))]


def test_sweeper_runs_hourly_and_when_a_restore_execution_is_stopped(
        template: dict[str, Any]) -> None:
    sweeper = {"Fn::GetAtt": ["FunctionsScratchSweeper1F87708C", "Arn"]}
    (hourly,) = [r for r in _rules(template) if r.get("ScheduleExpression") == "rate(1 hour)"]
    assert hourly["Targets"][0]["Arn"] == sweeper
    (stopped,) = [r for r in _rules(template)
                  if r.get("EventPattern", {}).get("source") == ["aws.states"]]
    assert stopped["EventPattern"]["detail"] == {
        "status": ["ABORTED", "TIMED_OUT"],
        "stateMachineArn": [{"Ref": "RestoreVerificationStateMachineA4F3DED3"},
                            {"Ref": "ManualRestoreStateMachine8BC6E746"}]}
    assert stopped["Targets"][0]["Arn"] == sweeper


# --------------------------------------------------------------------------- alarms
def _alarm(template: dict[str, Any], metric: str) -> dict[str, Any]:
    (alarm,) = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
                if a["Properties"].get("MetricName") == metric]
    return alarm


def test_a_failed_restore_test_is_notified_by_its_workflow_not_by_an_alarm(
        template: dict[str, Any]) -> None:
    # one incident, one notification: the workflow's message carries the cause
    metrics = {a["Properties"].get("MetricName")
               for a in resources(template, "AWS::CloudWatch::Alarm").values()}
    assert "RestoreTestFailed" not in metrics
    assert "NotifyFailure" in _states(template, "RestoreVerification")


def test_no_successful_restore_test_within_n_days_alarms(
        template: dict[str, Any], synth_with: Any) -> None:
    alarm = _alarm(template, "VerificationAgeHours")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (48, "GreaterThanThreshold")
    # the age always exists (from when the database was first watched); a stopped check is
    # the RpoCheck alarm's one notification
    assert (alarm["Statistic"], alarm["Period"], alarm["TreatMissingData"]) == (
        "Maximum", 900, "notBreaching")
    weekly = synth_with(restore={"schedule": "weekly", "verification_max_age_days": 8})
    assert _alarm(weekly, "VerificationAgeHours")["Threshold"] == 8 * 24


def test_restore_duration_above_the_rto_alarms(template: dict[str, Any]) -> None:
    alarm = _alarm(template, "RestoreDurationMinutes")
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Statistic"]) == (
        60, "GreaterThanThreshold", "Maximum")


def test_a_scratch_instance_older_than_allowed_alarms(template: dict[str, Any]) -> None:
    alarm = _alarm(template, "ScratchInstanceAgeHours")
    assert alarm["Threshold"] == WORKFLOW_HOURS + 72 + 1
    assert (alarm["ComparisonOperator"], alarm["TreatMissingData"], alarm["Period"]) == (
        "GreaterThanThreshold", "breaching", 3600)
    assert "Dimensions" not in alarm


def test_manual_restore_failures_and_every_timeout_alarm(template: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
              if a["Properties"].get("Namespace") == "AWS/States"]
    (failed,) = alarms  # only the manual restore's: nothing else notifies about one
    assert failed["MetricName"] == "ExecutionsFailed"
    assert "ManualRestore" in _text(failed["Dimensions"])
    (timed_out,) = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm")
                    .values() if "Metrics" in a["Properties"]]
    watched = [m for m in timed_out["Metrics"] if "MetricStat" in m]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in watched} == {"ExecutionsTimedOut"}
    assert len(watched) == len(resources(template, "AWS::StepFunctions::StateMachine"))
