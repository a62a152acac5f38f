"""Given the keys table cannot be read (deleted, or access denied), when a request without a key
arrives, then the API answers 503 `unavailable`, never 200 as if no key existed (open mode comes
only from a keys table that exists and is empty) and never a 500."""

from __future__ import annotations

import boto3
import pytest
from unit_helpers import get

pytestmark = pytest.mark.security


def _refuse_scans_with(code: str):
    from botocore.awsrequest import AWSResponse
    from tradowix_bot.server import aws

    def refuse(**_):
        error = {"Error": {"Code": code, "Message": "refused"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("https://dynamodb", 400, {}, None), error

    aws.resource("dynamodb").meta.client.meta.events.register("before-call.dynamodb.Scan", refuse)


def test_an_empty_keys_table_is_open_mode(api):
    assert get("/api/symbols").status == 200


def test_a_deleted_keys_table_is_503_not_open(api):
    boto3.client("dynamodb").delete_table(TableName=api["KeysTable"])
    answer = get("/api/symbols")
    assert answer.status == 503 and answer.json()["error"] == "unavailable"


@pytest.mark.parametrize("code", ["AccessDeniedException", "UnrecognizedClientException"])
def test_an_unreadable_keys_table_is_503_not_open_and_not_500(api, code):
    _refuse_scans_with(code)
    answer = get("/api/symbols")
    assert answer.status == 503 and answer.json()["error"] == "unavailable"
    assert "Retry-After".lower() in answer.headers
