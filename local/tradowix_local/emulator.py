"""The data-service emulator: moto's server in this process by default (no Docker, nothing to
install), or any endpoint the user runs (LocalStack, …) via AWS_ENDPOINT_URL / --endpoint.
Creates the S3 buckets and DynamoDB tables that template.yaml declares."""

from __future__ import annotations

import os

import boto3

from .template import Template

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _moto_server(host: str, middleware):
    """moto's threaded server, with `middleware` (a WSGI app wrapper) around its app."""
    from moto.server import ThreadedMotoServer

    class _Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )
            from werkzeug.serving import make_server

            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(
                self._ip_address,
                self._port,
                middleware(app) if middleware is not None else app,
                True,
                request_handler=MotoRequestHandler,
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return _Server(ip_address=host, port=0, verbose=False)


class Emulator:
    def __init__(self, endpoint: str | None = None, host: str = "127.0.0.1", *, middleware=None):
        self.external = endpoint
        self.host = host
        self.middleware = middleware  # e.g. the local stack's journal (journal.py)
        self._server = None
        self.endpoint_url = endpoint or ""

    @property
    def embedded(self) -> bool:
        return self.external is None

    def start(self) -> str:
        if self.external is None:
            import logging

            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per emulator call is noise

            self._server = _moto_server(self.host, self.middleware)
            self._server.start()
            host, port = self._server.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
        for name, value in LOCAL_CREDENTIALS.items():
            if self.embedded or name not in os.environ:
                os.environ[name] = value
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint_url
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self, service: str):
        return boto3.client(
            service, endpoint_url=self.endpoint_url, region_name=os.environ["AWS_DEFAULT_REGION"]
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
