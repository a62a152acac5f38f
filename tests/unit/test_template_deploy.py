"""Given template.yaml as `sam deploy` reads it, then the defects only a real deploy would show
are gone: route changes reach the WebSocket stage, a collector image without network settings
is refused before anything is created, a collector that cannot start rolls back within
minutes, every function and API keeps logs for a bounded time, and the owner's alarms exist."""

from __future__ import annotations

import copy

import pytest
from tradowix_local.template import Template, _logical_refs


@pytest.fixture(scope="module")
def template() -> Template:
    return Template()


def of_type(doc: dict, kind: str) -> dict:
    return {k: v for k, v in doc["Resources"].items() if v["Type"] == kind}


def stages_reached_by_route_changes(doc: dict) -> dict[str, bool]:
    """For each WebSocket API: do its routes reach every stage on deploy? Only AutoDeploy does:
    a Deployment resource is created once and CloudFormation never redeploys it when routes change."""
    apis = {
        k
        for k, v in of_type(doc, "AWS::ApiGatewayV2::Api").items()
        if v["Properties"].get("ProtocolType") == "WEBSOCKET"
    }
    out = {}
    for api in apis:
        stages = [
            s
            for s in of_type(doc, "AWS::ApiGatewayV2::Stage").values()
            if api in _logical_refs(s["Properties"]["ApiId"])
        ]
        out[api] = bool(stages) and all(s["Properties"].get("AutoDeploy") is True for s in stages)
    return out


def test_websocket_route_changes_reach_the_stage_on_deploy(template):
    assert stages_reached_by_route_changes(template.doc) == {"WsApi": True}


def test_a_route_added_to_a_stage_without_auto_deploy_is_caught(template):
    # given the template as a deploy without AutoDeploy would have it, plus a new route
    doc = copy.deepcopy(template.doc)
    for stage in of_type(doc, "AWS::ApiGatewayV2::Stage").values():
        stage["Properties"].pop("AutoDeploy", None)
    doc["Resources"]["WsNewRoute"] = copy.deepcopy(doc["Resources"]["WsPingRoute"])
    # then the check says the new route would never go live
    assert stages_reached_by_route_changes(doc) == {"WsApi": False}


# -- the collector's Fargate service ----------------------------------------------------------
def evaluate_rule_function(value, parameters: dict):
    """CloudFormation's rule-specific functions, as far as the template uses them."""
    if isinstance(value, list):
        return [evaluate_rule_function(v, parameters) for v in value]
    if not hasattr(value, "name"):
        return value
    name, arg = value.name, value.value
    if name == "Ref":
        return parameters[arg]
    args = evaluate_rule_function(arg, parameters)
    if name == "Equals":
        return args[0] == args[1]
    if name == "Not":
        return not args[0]
    if name == "Contains":
        return args[1] in args[0]
    raise AssertionError(f"rule function Fn::{name} is not modelled here")


def refused_by_rules(template: Template, **given) -> list[str]:
    """What CloudFormation says when it refuses these parameter values (empty: accepted)."""
    parameters = dict(template.parameters)
    parameters["CollectorSubnetIds"] = [s for s in parameters["CollectorSubnetIds"].split(",")]
    parameters.update(given)
    refusals = []
    for rule in template.doc.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate_rule_function(rule["RuleCondition"], parameters):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate_rule_function(assertion["Assert"], parameters):
                refusals.append(assertion["AssertDescription"])
    return refusals


def test_a_collector_image_without_network_settings_is_refused_before_anything_is_created(template):
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/tradowix-collector:1"
    assert refused_by_rules(template) == []  # no collector: nothing to check
    refusals = refused_by_rules(template, CollectorImageUri=image)
    assert any("CollectorVpcId" in r for r in refusals) and any("CollectorSubnetIds" in r for r in refusals)
    only_vpc = refused_by_rules(template, CollectorImageUri=image, CollectorVpcId="vpc-0abc1234")
    assert len(only_vpc) == 1 and "CollectorSubnetIds" in only_vpc[0]
    complete = refused_by_rules(
        template,
        CollectorImageUri=image,
        CollectorVpcId="vpc-0abc1234",
        CollectorSubnetIds=["subnet-0abc1234"],
    )
    assert complete == []


def test_a_collector_that_cannot_start_rolls_back_and_runs_on_the_images_platform(template):
    service = template.doc["Resources"]["CollectorService"]["Properties"]
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }
    task = template.doc["Resources"]["CollectorTaskDefinition"]["Properties"]
    assert task["RuntimePlatform"] == {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"}


# -- logs ---------------------------------------------------------------------------------------
def retention_of(template: Template, value) -> int | None:
    (group,) = _logical_refs(value)
    resource = template.doc["Resources"][group]
    assert resource["Type"] == "AWS::Logs::LogGroup"
    retention = resource["Properties"].get("RetentionInDays")
    return int(template.resolve(retention)) if retention is not None else None


def test_every_function_and_both_apis_log_to_groups_with_retention(template):
    resources = template.doc["Resources"]
    for name in template.of_type("AWS::Serverless::Function"):
        group = resources[name]["Properties"].get("LoggingConfig", {}).get("LogGroup")
        assert group is not None, f"{name} logs to a group kept forever"
        assert retention_of(template, group) == 14, name
    http_api = resources["HttpApi"]["Properties"]["AccessLogSettings"]
    ws_stage = resources["WsStage"]["Properties"]["AccessLogSettings"]
    for settings in (http_api, ws_stage):
        assert "$context.requestId" in settings["Format"]
        assert retention_of(template, settings["DestinationArn"]) == 14
    assert template.resolve(resources["CollectorLogGroup"]["Properties"]["RetentionInDays"]) == "14"


# -- alarms -------------------------------------------------------------------------------------
def test_the_owner_is_alarmed_about_what_matters(template):
    alarms = {
        template.resolve(a["Properties"]["AlarmName"]): a["Properties"]
        for a in template.of_type("AWS::CloudWatch::Alarm").values()
    }
    prefix = template.stack_name + "-"
    assert set(alarms) == {
        prefix + name
        for name in (
            "data-stopped",
            "collector-not-running",
            "lambda-errors",
            "api-5xx-rate",
            "dynamodb-throttling",
        )
    }
    assert alarms[prefix + "data-stopped"]["MetricName"] == "StalestSymbolSeconds"
    assert (
        alarms[prefix + "collector-not-running"]["TreatMissingData"] == "breaching"
    )  # silence is the symptom
    # every alarm notifies the optional topic (or the topic made for AlarmEmail)
    for props in alarms.values():
        assert "NotifyAlarms" in str(props["AlarmActions"].value)
