"""Read template.yaml: resources, function handlers and their environment, API routes.

Intrinsic functions are resolved to local physical names, so the local stack creates what
the template declares (never a second hand-written list) and gives handlers the same
environment variables they get on AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"
# AWS managed policies the template attaches, as far as they matter to our principals (the
# rest of what they allow is CloudWatch Logs, which the local stack does not emulate).
AWS_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
}


class _Tag:
    def __init__(self, name: str, value):
        self.name, self.value = name, value


class _Loader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.Loader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return _Tag(suffix, value)


_Loader.add_multi_constructor("!", _construct)


@dataclass
class Route:
    method: str  # "ANY" or an HTTP method
    path: str  # API Gateway path template: /api/{proxy+}
    function: str  # logical id

    def pattern(self) -> re.Pattern:
        regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Function:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int
    events: list[dict] = field(default_factory=list)


class Template:
    def __init__(
        self, path: Path = TEMPLATE_PATH, stack_name: str = "tradowix-local", region: str = "us-east-1"
    ):
        self.path = path
        self.doc = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass
        self.stack_name = stack_name
        self.region = region
        self.resources: dict = self.doc.get("Resources", {})
        self.parameters = {k: str(v.get("Default", "")) for k, v in self.doc.get("Parameters", {}).items()}

    # -- naming --------------------------------------------------------------------------
    def physical_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}".lower()

    def of_type(self, type_name: str) -> dict[str, dict]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == type_name}

    # -- intrinsics ----------------------------------------------------------------------
    def resolve(self, value, overrides: dict[str, str] | None = None):
        overrides = overrides or {}
        if isinstance(value, _Tag):
            return self._intrinsic(value.name, value.value, overrides)
        if isinstance(value, dict) and len(value) == 1:
            ((k, v),) = value.items()
            if k == "Ref" or k.startswith("Fn::"):
                return self._intrinsic(k.replace("Fn::", ""), v, overrides)
        if isinstance(value, dict):
            return {k: self.resolve(v, overrides) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, overrides) for v in value]
        return value

    def _ref(self, name: str, overrides: dict[str, str]) -> str:
        if name in overrides:
            return overrides[name]
        if name in self.parameters:
            return self.parameters[name]
        if name == "AWS::Region":
            return self.region
        if name == "AWS::StackName":
            return self.stack_name
        if name == "AWS::AccountId":
            return ACCOUNT_ID
        if name == "AWS::Partition":
            return "aws"
        if name == "AWS::URLSuffix":
            return "amazonaws.com"
        if name == "AWS::NoValue":
            return None
        if name in self.resources:
            return self.physical_name(name)
        raise KeyError(f"template.yaml: cannot resolve Ref {name}")

    def _intrinsic(self, name: str, arg, overrides: dict[str, str]):
        if name == "Ref":
            return self._ref(arg, overrides)
        if name == "Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1], overrides))
            return re.sub(
                r"\$\{([\w:.]+)\}",
                lambda m: str(extra.get(m.group(1)) or self._sub_name(m.group(1), overrides)),
                text,
            )
        if name == "GetAtt":
            logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.attribute(logical, attr)
        if name == "Join":
            sep, items = arg
            return sep.join(str(self.resolve(i, overrides)) for i in items)
        if name == "If":
            return self.resolve(arg[2], overrides)  # conditions are off locally
        return None

    def attribute(self, logical_id: str, attr: str) -> str:
        """Fn::GetAtt, as AWS fills it in for the resource types whose ARNs our policies name."""
        name = self.physical_name(logical_id)
        kind = self.resources.get(logical_id, {}).get("Type", "")
        if attr == "Arn":
            arns = {
                "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{self.region}:{ACCOUNT_ID}:table/{name}",
                "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
                "AWS::Serverless::Function": f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}",
                "AWS::Lambda::Function": f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}",
                "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
                "AWS::Logs::LogGroup": f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{name}:*",
                "AWS::SNS::Topic": f"arn:aws:sns:{self.region}:{ACCOUNT_ID}:{name}",
            }
            if kind in arns:
                return arns[kind]
        return f"arn:aws:local:{self.region}:{ACCOUNT_ID}:{name}/{attr}"

    def _sub_name(self, name: str, overrides: dict[str, str]) -> str:
        if "." in name:
            return self._intrinsic("GetAtt", name, overrides)
        return self._ref(name, overrides)

    # -- functions and routes ------------------------------------------------------------
    def functions(self, overrides: dict[str, str] | None = None) -> dict[str, Function]:
        glob = self.doc.get("Globals", {}).get("Function", {})
        overrides = overrides or {}
        out = {}
        for logical_id, res in self.of_type("AWS::Serverless::Function").items():
            props = res.get("Properties", {})
            env = dict(glob.get("Environment", {}).get("Variables", {}))
            env.update(props.get("Environment", {}).get("Variables", {}))
            out[logical_id] = Function(
                logical_id=logical_id,
                code_dir=(self.path.parent / props["CodeUri"]).resolve(),
                handler=props.get("Handler", glob.get("Handler", "")),
                environment={
                    k: overrides[k] if k in overrides else str(self.resolve(v, overrides))
                    for k, v in env.items()
                },  # an override named like a variable replaces it locally (WS_URL, ...)
                timeout=int(props.get("Timeout", glob.get("Timeout", 3))),
                memory=int(props.get("MemorySize", glob.get("MemorySize", 128))),
                events=list(props.get("Events", {}).values()),
            )
        return out

    def http_routes(self) -> list[Route]:
        routes = []
        for fn in self.functions({k: "" for k in self.resources}).values():
            for event in fn.events:
                if event.get("Type") == "HttpApi":
                    props = event.get("Properties", {})
                    routes.append(
                        Route(props.get("Method", "ANY").upper(), props.get("Path", "/"), fn.logical_id)
                    )
        # API Gateway picks the most specific route: exact paths before greedy ones.
        routes.sort(key=lambda r: ("{proxy+}" in r.path or "+}" in r.path, -len(r.path)))
        return routes

    def output(self, name: str, overrides: dict[str, str] | None = None) -> str:
        return self.resolve(self.doc["Outputs"][name]["Value"], overrides)

    # -- IAM ------------------------------------------------------------------------------
    def roles(self) -> dict[str, RolePolicy]:
        """Every IAM role `sam deploy` creates from this template, with the statements it is
        allowed, resolved to local names: a function's role holds its SAM policy templates
        (expanded by aws-sam-translator, as `sam deploy` does) and inline statements; a role's
        managed policies are taken from the template. Keyed by what runs under the role: the
        function's logical id, or the role's own (CollectorTaskRole)."""
        transformed = self._sam_transformed()
        functions = {f"{fn}Role": fn for fn in self.of_type("AWS::Serverless::Function")}
        out = {}
        for role_id, role in transformed["Resources"].items():
            if role.get("Type") != "AWS::IAM::Role":
                continue
            props = role.get("Properties", {})
            statements: list[dict] = []
            for policy in props.get("Policies", []):
                statements += _listed(policy["PolicyDocument"].get("Statement", []))
            for arn in props.get("ManagedPolicyArns", []):
                ref = arn.get("Ref") if isinstance(arn, dict) else None
                if ref and ref in transformed["Resources"]:
                    document = transformed["Resources"][ref]["Properties"]["PolicyDocument"]
                    statements += _listed(document.get("Statement", []))
                else:
                    statements += AWS_MANAGED_POLICIES.get(self.resolve(arn), [])
            principal = functions.get(role_id, role_id)
            out[principal] = RolePolicy(
                principal=principal,
                role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{self.physical_name(role_id)}",
                statements=[_drop_no_value(self.resolve(st)) for st in statements],
            )
        return out

    def _sam_transformed(self) -> dict:
        import boto3
        from samtranslator.parser.parser import Parser
        from samtranslator.translator.translator import Translator
        from samtranslator.yaml_helper import yaml_parse

        doc = yaml_parse(self.path.read_text())
        for res in doc.get("Resources", {}).values():  # code locations do not matter to IAM
            props = res.get("Properties") or {}
            for key in ("CodeUri", "ContentUri"):
                if key in props:
                    props[key] = "s3://local/code.zip"
        translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=self.region))
        return translator.translate(
            doc, parameter_values={}, get_managed_policy_map=lambda: {"AWSLambdaBasicExecutionRole": _BASIC}
        )

    # -- WebSocket API -------------------------------------------------------------------
    def websocket_apis(self) -> list[WebSocketApi]:
        apis = []
        for api_id, api in self.of_type("AWS::ApiGatewayV2::Api").items():
            props = api.get("Properties", {})
            if props.get("ProtocolType") != "WEBSOCKET":
                continue

            def belongs(res: dict, api_id: str = api_id) -> bool:
                return api_id in _logical_refs(res.get("Properties", {}).get("ApiId"))

            integrations = {}  # integration logical id -> function logical id
            for integ_id, integ in self.of_type("AWS::ApiGatewayV2::Integration").items():
                if belongs(integ):
                    uri = integ["Properties"].get("IntegrationUri")
                    fns = [
                        r
                        for r in _logical_refs(uri)
                        if self.resources.get(r, {}).get("Type", "").endswith("::Function")
                    ]
                    if fns:
                        integrations[integ_id] = fns[0]
            routes = {}
            for route in self.of_type("AWS::ApiGatewayV2::Route").values():
                if belongs(route):
                    target = [
                        r for r in _logical_refs(route["Properties"].get("Target")) if r in integrations
                    ]
                    if target:
                        routes[str(route["Properties"]["RouteKey"])] = integrations[target[0]]
            stages = [
                self.resolve(s["Properties"]["StageName"])
                for s in self.of_type("AWS::ApiGatewayV2::Stage").values()
                if belongs(s)
            ]
            apis.append(
                WebSocketApi(
                    logical_id=api_id,
                    route_selection_expression=str(
                        props.get("RouteSelectionExpression", "$request.body.action")
                    ),
                    stage=str(stages[0]) if stages else "$default",
                    routes=routes,
                )
            )
        return apis

    def websocket_api(self) -> WebSocketApi | None:
        """The template's WebSocket API (the first one), or None when it declares none."""
        apis = self.websocket_apis()
        return apis[0] if apis else None


# -- WebSocket API (API Gateway v2, ProtocolType WEBSOCKET) -----------------------------------
@dataclass
class WebSocketApi:
    logical_id: str
    route_selection_expression: str  # e.g. $request.body.type
    stage: str
    routes: dict[str, str]  # route key ($connect, subscribe, ...) -> function logical id


_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


@dataclass
class RolePolicy:
    principal: str  # what runs under the role: ApiFunction, WsFunction, CollectorTaskRole, ...
    role_arn: str
    statements: list[dict]


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _drop_no_value(value):
    """Remove what `!Ref AWS::NoValue` (resolved as None) leaves behind."""
    if isinstance(value, dict):
        return {k: _drop_no_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_no_value(v) for v in value if v is not None]
    return value


def _logical_refs(value) -> list[str]:
    """Logical ids a raw (unresolved) template value refers to: Ref, GetAtt, ${...} in Sub."""
    if isinstance(value, _Tag):
        if value.name == "Ref":
            return [value.value]
        if value.name == "GetAtt":
            return [value.value.split(".")[0] if isinstance(value.value, str) else value.value[0]]
        if value.name == "Sub":
            text = value.value if isinstance(value.value, str) else value.value[0]
            return [m.split(".")[0] for m in re.findall(r"\$\{([\w:.]+)\}", text)]
        return _logical_refs(value.value)
    if isinstance(value, dict):
        if len(value) == 1:
            ((k, v),) = value.items()
            if k in ("Ref", "Fn::GetAtt", "Fn::Sub"):
                return _logical_refs(_Tag(k.replace("Fn::", ""), v))
        return [r for v in value.values() for r in _logical_refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _logical_refs(v)]
    return []
