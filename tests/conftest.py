"""Shared fixtures: in-process moto for unit tests (integration tests start a real stack)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions" / "api"))

# Unit tests never talk to a real AWS account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def aws_env(monkeypatch):
    """moto in-process with the template's resources created; yields their names."""
    from moto import mock_aws
    from tradowix_bot import aws
    from tradowix_local.template import Template

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    template = Template()
    with mock_aws():
        aws.reset()
        import boto3

        names = {}
        for logical_id in template.of_type("AWS::S3::Bucket"):
            names[logical_id] = template.physical_name(logical_id)
            boto3.client("s3").create_bucket(Bucket=names[logical_id])
        for logical_id, res in template.of_type("AWS::DynamoDB::Table").items():
            names[logical_id] = template.physical_name(logical_id)
            props = template.resolve(res["Properties"])
            kwargs = {k: props[k] for k in ("AttributeDefinitions", "KeySchema") if k in props}
            if props.get("GlobalSecondaryIndexes"):
                kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            boto3.client("dynamodb").create_table(
                TableName=names[logical_id], BillingMode="PAY_PER_REQUEST", **kwargs
            )
        fn = template.functions()["ApiFunction"]
        for k, v in fn.environment.items():
            monkeypatch.setenv(k, v)
        yield names
        aws.reset()
