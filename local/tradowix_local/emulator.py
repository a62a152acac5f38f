"""The data services of the local stack: moto's server in this process by default (no Docker,
nothing to install), or endpoints the user runs (LocalStack, DynamoDB Local, ...).

- `--endpoint URL` / AWS_ENDPOINT_URL: every service there.
- AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SSM, AWS_ENDPOINT_URL_DYNAMODB (what boto3 itself reads):
  that service there, the others on the embedded emulator; e.g. S3 and SSM on LocalStack while
  DynamoDB stays embedded (free LocalStack's DynamoDB needs a download).
- An external service that does not answer stops the stack with one line naming it.

The embedded emulator checks every request against template.yaml's IAM (iam.py): each principal
gets credentials of its own, made at start; nobody else's credentials are accepted.
Creates the S3 buckets and DynamoDB tables that template.yaml declares.
"""

from __future__ import annotations

import os

import boto3

from .template import Template

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# The services the stack uses, with the name boto3's service-specific endpoint variable uses.
SERVICES = {"s3": "S3", "dynamodb": "DYNAMODB", "ssm": "SSM"}
SERVICE_NAMES = {"s3": "S3", "dynamodb": "DynamoDB", "ssm": "SSM"}


def service_endpoint_variable(service: str) -> str:
    return f"AWS_ENDPOINT_URL_{SERVICES[service]}"


class EmbeddedServer:
    """moto's threaded server with the IAM check in front of it, and `middleware` (the local
    stack's journal) between the two: only requests IAM lets through reach it."""

    def __init__(self, host: str, iam, middleware=None):
        from moto.server import ThreadedMotoServer

        class _Server(ThreadedMotoServer):
            def _server_entry(self) -> None:
                from moto.moto_server.werkzeug_app import (
                    DomainDispatcherApplication,
                    MotoRequestHandler,
                    create_backend_app,
                )
                from werkzeug.serving import make_server

                from .iam import IamMiddleware

                app = DomainDispatcherApplication(create_backend_app)
                if middleware is not None:
                    app = middleware(app)
                self._server = make_server(
                    self._ip_address,
                    self._port,
                    IamMiddleware(app, iam) if iam is not None else app,
                    True,
                    request_handler=MotoRequestHandler,
                )
                self._server_ready_event.set()
                self._server.serve_forever()

        self._server = _Server(ip_address=host, port=0, verbose=False)

    def start(self) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()


class Emulator:
    def __init__(
        self,
        endpoint: str | None = None,
        host: str = "127.0.0.1",
        *,
        template: Template | None = None,
        service_endpoints: dict[str, str] | None = None,
        enforce_iam: bool = True,
        log=None,
        middleware=None,
    ):
        self.external = endpoint
        self.host = host
        self.template = template
        # boto3's per-service variables, then what the caller names (e.g. --localstack's).
        service_endpoints = {
            **{
                s: os.environ[service_endpoint_variable(s)]
                for s in SERVICES
                if os.environ.get(service_endpoint_variable(s))
            },
            **(service_endpoints or {}),
        }
        # Where each service lives: the user's endpoint, else the embedded emulator ("" until started).
        self.service_endpoints = {s: service_endpoints.get(s) or endpoint or "" for s in SERVICES}
        self.enforce_iam = enforce_iam
        self.middleware = middleware  # e.g. the local stack's journal (journal.py)
        self.iam = None  # LocalIam once started with the embedded emulator
        self._log = log
        self._server: EmbeddedServer | None = None
        self._server_url: str | None = None
        self.endpoint_url = endpoint or ""

    @property
    def embedded(self) -> bool:
        """Every service on the embedded emulator (nothing the user runs)."""
        return self.external is None and not self.external_services()

    def external_services(self) -> list[str]:
        return [s for s in SERVICES if self._user_endpoint(s)]

    def _user_endpoint(self, service: str) -> bool:
        return bool(self.service_endpoints[service]) and self.service_endpoints[service] != self.embedded_url

    @property
    def embedded_url(self) -> str | None:
        return self._server_url if self._server is not None else None

    def embeds(self, service: str) -> bool:
        return self.embedded_url is not None and self.service_endpoints[service] == self.embedded_url

    def start(self) -> str:
        if self.external is None:  # at least one service (all, by default) on the embedded emulator
            import logging

            from .moto_memory import keep_moto_memory_bounded

            keep_moto_memory_bounded(self._log)  # moto keeps what it ever made; the stack runs for days
            from .moto_speed import serialize_attribute_values_directly

            serialize_attribute_values_directly(self._log)  # DynamoDB items without moto's slow walk

            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per emulator call is noise
            if self.enforce_iam:
                from .iam import LocalIam

                self.iam = LocalIam(self.template or Template(), log=self._log)
            self._server = EmbeddedServer(self.host, self.iam, self.middleware)
            self._server_url = self._server.start()
            self.endpoint_url = self._server_url
            for service in SERVICES:
                self.service_endpoints[service] = self.service_endpoints[service] or self._server_url
        os.environ["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        credentials = self.owner_environment()
        for name, value in credentials.items():
            if self.iam is not None or name not in os.environ:
                os.environ[name] = value
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint_url
        for service in SERVICES:
            if self._user_endpoint(service):
                os.environ[service_endpoint_variable(service)] = self.service_endpoints[service]
        self.check_external_services()
        return self.endpoint_url

    def describe(self) -> str:
        """One line: where each service lives."""
        places: dict[str, list[str]] = {}
        for service in SERVICES:
            where = (
                f"the embedded emulator ({self.embedded_url}, IAM enforced)"
                if self.embeds(service)
                else f"{self.service_endpoints[service]} (yours)"
            )
            places.setdefault(where, []).append(SERVICE_NAMES[service])
        return "; ".join(f"{' and '.join(names)} on {where}" for where, names in places.items())

    def owner_environment(self) -> dict[str, str]:
        """The credentials of the stack itself and the CLI (the owner: unrestricted)."""
        if self.iam is not None:
            from .iam import OWNER

            return self.iam.credentials[OWNER].env()
        return {k: v for k, v in LOCAL_CREDENTIALS.items() if k != "AWS_DEFAULT_REGION"}

    def principal_environment(self, principal: str) -> dict[str, str]:
        """The credentials a function or the collector runs with (its role's, from the template)."""
        if self.iam is None:
            return {}
        return self.iam.credentials[principal].env()

    def endpoint_environment(self) -> dict[str, str]:
        """AWS_ENDPOINT_URL and the per-service endpoints, for processes that talk to this stack."""
        env = {"AWS_ENDPOINT_URL": self.endpoint_url}
        for service in SERVICES:
            if self._user_endpoint(service):
                env[service_endpoint_variable(service)] = self.service_endpoints[service]
        return env

    def check_external_services(self) -> None:
        """One clear line naming the service that does not answer, before anything is created."""
        from botocore.config import Config

        config = Config(connect_timeout=3, read_timeout=20, retries={"max_attempts": 1})
        probes = {
            "s3": lambda c: c.list_buckets(),
            "dynamodb": lambda c: c.list_tables(Limit=1),
            "ssm": lambda c: c.describe_parameters(MaxResults=1),
        }
        for service in self.external_services() if self.external is None else list(SERVICES):
            url = self.service_endpoints[service]
            try:
                probes[service](self.client(service, config=config))
            except Exception as exc:  # noqa: BLE001 - reported as one line, whatever it is
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise SystemExit(
                    f"error: {SERVICE_NAMES[service]} at {url} does not work: {reason[:300]}. "
                    f"Point {service_endpoint_variable(service)} at an endpoint that serves "
                    f"{SERVICE_NAMES[service]}, or leave it unset to use the embedded emulator."
                ) from None

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self, service: str, config=None):
        """A client with the owner's credentials (the stack's own work: resources, snapshots)."""
        credentials = self.owner_environment() if self.iam is not None else {}
        return boto3.client(
            service,
            endpoint_url=self.service_endpoints.get(service) or self.endpoint_url,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id=credentials.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
            config=config,
        )


def create_resources(emulator: Emulator, template: Template) -> dict[str, str]:
    """Create (idempotently) every bucket and table of the template. Returns logical id → name."""
    names: dict[str, str] = {}
    s3 = emulator.client("s3")
    existing_buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for logical_id, res in template.of_type("AWS::S3::Bucket").items():
        name = template.physical_name(logical_id)
        names[logical_id] = name
        if name not in existing_buckets:
            s3.create_bucket(Bucket=name)
        props = template.resolve(res.get("Properties", {}))
        rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": r.get("Id", "rule"),
                            "Status": r.get("Status", "Enabled"),
                            "Filter": {"Prefix": r.get("Prefix", "")},
                            "Expiration": {"Days": int(r["ExpirationInDays"])},
                        }
                        for r in rules
                        if "ExpirationInDays" in r
                    ]
                },
            )
    ddb = emulator.client("dynamodb")
    existing_tables = set(ddb.list_tables().get("TableNames", []))
    for logical_id, res in template.of_type("AWS::DynamoDB::Table").items():
        name = template.physical_name(logical_id)
        names[logical_id] = name
        if name in existing_tables:
            continue
        props = template.resolve(res["Properties"])
        kwargs = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        ddb.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    return names
