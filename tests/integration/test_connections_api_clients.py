"""Given the local stack's @connections API, when AWS's own clients call it (boto3's
`apigatewaymanagementapi` and the AWS CLI, with the credentials the stack gives its principals),
then they get what API Gateway answers: GetConnection's fields parsed, 403 for a wrong stage
or an unsigned request.

The AWS CLI is the machine's own (`aws` on PATH, v1 with its own botocore, outside the project
venv: awscli pins botocore exactly and would fight the project's pin). Without it, that part
skips and says so."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import threading

import httpx
import pytest
import websockets

pytestmark = pytest.mark.integration
USER_AGENT = f"conformance-bot/{secrets.token_hex(4)}"  # tells our connection from others on the stack


@pytest.fixture(scope="module")
def stack_info(local_stack):
    return json.loads((local_stack.data_dir / "local-stack.json").read_text())


@pytest.fixture(scope="module")
def open_connection(local_stack):
    """One WebSocket connection held open by a thread of its own; yields its connection id."""
    ready = threading.Event()
    done = threading.Event()

    def run():
        async def hold():
            async with websockets.connect(local_stack.ws_url, user_agent_header=USER_AGENT) as ws:
                await ws.send('{"type": "ping"}')
                await asyncio.wait_for(ws.recv(), 10)  # the pong: the connection is registered
                ready.set()
                while not done.is_set():
                    await asyncio.sleep(0.05)

        asyncio.run(hold())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield local_stack
    done.set()
    thread.join(10)


def connection_id(stack_info) -> str:
    """The id of the connection opened above: the registered one whose user agent is ours."""
    import boto3

    kwargs = aws_kwargs(stack_info)
    table = boto3.resource("dynamodb", endpoint_url=stack_info["endpoint_url"], **kwargs).Table(
        stack_info["connections_table"]
    )
    client = boto3.client(
        "apigatewaymanagementapi", endpoint_url=stack_info["ws_management_endpoint"], **kwargs
    )
    for item in table.scan()["Items"]:
        if item["sk"] != "meta":
            continue
        try:
            if (
                client.get_connection(ConnectionId=item["connection_id"])["Identity"]["UserAgent"]
                == USER_AGENT
            ):
                return item["connection_id"]
        except client.exceptions.GoneException:
            continue
    raise AssertionError("our connection is not registered")


def aws_kwargs(info) -> dict:
    env = info["aws_env"]
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def test_boto3_get_connection_post_and_refusals(open_connection, stack_info):
    import boto3
    from botocore.exceptions import ClientError

    # given a partner's open connection and boto3 pointed at the stack's management endpoint
    cid = connection_id(stack_info)
    client = boto3.client(
        "apigatewaymanagementapi", endpoint_url=stack_info["ws_management_endpoint"], **aws_kwargs(stack_info)
    )
    # when it asks for the connection
    got = client.get_connection(ConnectionId=cid)
    # then boto3 parses every documented field
    assert got["Identity"]["UserAgent"] == USER_AGENT
    assert got["Identity"]["SourceIp"] == "127.0.0.1"
    assert isinstance(got["ConnectedAt"], dt.datetime) and got["ConnectedAt"] <= got["LastActiveAt"]
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    # and a post reaches the client (200), an unknown id is GoneException
    assert (
        client.post_to_connection(ConnectionId=cid, Data=b'{"type":"status"}')["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 200
    )
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId="NoSuchConn0000=")
    # when the endpoint names another stage, or the secret is wrong: 403, as on AWS
    wrong_stage = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=stack_info["ws_management_endpoint"].rsplit("/", 1)[0] + "/prod",
        **aws_kwargs(stack_info),
    )
    with pytest.raises(wrong_stage.exceptions.ForbiddenException):
        wrong_stage.get_connection(ConnectionId=cid)
    wrong_secret = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=stack_info["ws_management_endpoint"],
        **{**aws_kwargs(stack_info), "aws_secret_access_key": "not-the-secret"},
    )
    with pytest.raises(ClientError) as refused:
        wrong_secret.post_to_connection(ConnectionId=cid, Data=b"{}")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    # and an unsigned request (no Authorization at all) is refused before it is delivered
    unsigned = httpx.post(f"{stack_info['ws_management_endpoint']}/@connections/{cid}", content=b"{}")
    assert unsigned.status_code == 403
    assert unsigned.json() == {"message": "Missing Authentication Token"}


def test_aws_cli_get_connection(open_connection, stack_info):
    aws = shutil.which("aws")
    if aws is None:
        pytest.skip("the AWS CLI is not on PATH on this machine; boto3 covered the same calls above")
    cid = connection_id(stack_info)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(stack_info["aws_env"])
    # `--connection-id=ID`, not `--connection-id ID`: an ID may start with "-" (1 in 64), which
    # the AWS CLI would take for an option
    args = ["apigatewaymanagementapi", "get-connection", f"--connection-id={cid}", "--output", "json"]

    def run(endpoint: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [aws, *args, "--endpoint-url", endpoint], env=env, capture_output=True, text=True, timeout=60
        )

    # when the AWS CLI asks the stack's management endpoint for the connection
    ok = run(stack_info["ws_management_endpoint"])
    # then it prints the fields it parsed
    assert ok.returncode == 0, ok.stderr
    got = json.loads(ok.stdout)
    assert got["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": USER_AGENT}
    assert {"ConnectedAt", "LastActiveAt"} <= set(got)
    # and another stage is refused as on AWS
    wrong = run(stack_info["ws_management_endpoint"].rsplit("/", 1)[0] + "/prod")
    assert wrong.returncode != 0 and "ForbiddenException" in wrong.stderr
