"""The template's IAM, enforced by the local stack as AWS enforces it.

Every principal that runs code gets credentials of its own, made when the stack starts: each
function's role (ApiFunction, WsFunction, AdminFunction), the collector's task role
(CollectorTaskRole: its policy and the live publisher's) and the owner (the stack itself and
the CLI; unrestricted, as the account's admin). Every request to the embedded emulator and to
the local @connections API is checked here, in the server, before it is served:

1. the SigV4 signature, against the secret of the access key it names (unknown key, bad
   signature, missing signature or a clock off by more than 15 minutes: refused, as AWS does);
2. the AWS actions the request is (`dynamodb:UpdateItem`, `s3:PutObject`, ...) and the ARN of
   each resource it touches;
3. the role's statements from template.yaml (`Template.roles()`: SAM policy templates expanded
   by aws-sam-translator, inline statements, managed policies): allowed only if a statement
   allows it and none denies it.

A refused call gets AWS's answer (DynamoDB/SSM 400 AccessDeniedException, S3 403 AccessDenied,
@connections 403) with AWS's sentence naming the principal, the action and the resource; the
stack logs it too, because callers may swallow it. Why in the server (not a botocore hook in
each process): one check covers every process and client (functions, collector, publisher, CLI,
AWS CLI), and the emulator then refuses anyone without the stack's credentials.
"""

from __future__ import annotations

import collections
import datetime as dt
import fnmatch
import hmac
import io
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import orjson

from .template import ACCOUNT_ID, Template

OWNER = "owner"
MAX_CLOCK_SKEW_SECONDS = 15 * 60
MAX_CACHED_DECISIONS = 20_000


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str

    @classmethod
    def new(cls) -> Credentials:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        return cls("LKIA" + "".join(secrets.choice(alphabet) for _ in range(16)), secrets.token_urlsafe(30))

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


@dataclass(frozen=True)
class Call:
    """One AWS action on one resource, as IAM evaluates it."""

    action: str  # service:Operation
    resource: str  # ARN, or "*" for actions without resource-level permissions


@dataclass(frozen=True)
class Denial:
    principal: str
    principal_arn: str
    action: str
    resource: str
    at: float = field(default_factory=time.time)

    @property
    def message(self) -> str:
        return (
            f"User: {self.principal_arn} is not authorized to perform: {self.action} on resource: "
            f"{self.resource} because no identity-based policy allows the {self.action} action"
        )


@dataclass(frozen=True)
class Refusal:
    """The HTTP answer AWS gives instead of serving the request."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    denial: Denial | None = None


class SignedRequest:
    """What the check needs of an HTTP request (WSGI and ASGI servers fill it in)."""

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes):
        self.method = method.upper()
        self.url = url  # scheme://host/path?query exactly as sent (percent-encoded)
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        parts = urlsplit(url)
        self.path, self.query = parts.path, parts.query
        self.params = parse_qs(parts.query, keep_blank_values=True)
        auth = self.headers.get("authorization", "")
        match = re.match(
            r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
            r"SignedHeaders=([^,]+),\s*Signature=([0-9a-f]+)",
            auth,
        )
        self.signed = match is not None
        self.access_key, self.day, self.region, self.service, signed_headers, self.signature = (
            match.groups() if match else ("", "", "", "", "", "")
        )
        self.signed_headers = signed_headers.split(";") if signed_headers else []
        if not self.service:  # unsigned: tell the service from the request's shape
            target = self.headers.get("x-amz-target", "")
            self.service = (
                "dynamodb"
                if target.startswith("DynamoDB")
                else "ssm"
                if target.startswith("AmazonSSM")
                else "s3"
            )


# -- the policy -------------------------------------------------------------------------------
def _matches(pattern: str, value: str, *, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)  # IAM wildcards: * and ?


def _any(patterns, value: str, *, case: bool = True) -> bool:
    return any(_matches(p, value, case=case) for p in ([patterns] if isinstance(patterns, str) else patterns))


def _condition_holds(condition: dict, context: dict[str, str]) -> bool:
    """The condition operators our templates use; any other operator does not hold (an Allow
    then does not apply: fail closed)."""
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            wanted = [wanted] if isinstance(wanted, str) else wanted
            actual = context.get(key)
            if operator == "StringEquals":
                if actual is None or actual not in wanted:
                    return False
            elif operator == "StringLike":
                if actual is None or not any(_matches(w, actual) for w in wanted):
                    return False
            else:
                return False
    return True


def _statement_applies(statement: dict, call: Call, context: dict[str, str]) -> bool:
    if "Action" in statement and not _any(statement["Action"], call.action, case=False):
        return False
    if "NotAction" in statement and _any(statement["NotAction"], call.action, case=False):
        return False
    if "Resource" in statement and not _any(statement["Resource"], call.resource):
        return False
    if "NotResource" in statement and _any(statement["NotResource"], call.resource):
        return False
    return _condition_holds(statement.get("Condition", {}), context)


def allowed(statements: list[dict], call: Call, context: dict[str, str] | None = None) -> bool:
    """IAM's identity-policy evaluation: an explicit Deny wins, else an Allow is needed."""
    context = context or {}
    applying = [s for s in statements if _statement_applies(s, call, context)]
    if any(s.get("Effect") == "Deny" for s in applying):
        return False
    return any(s.get("Effect") == "Allow" for s in applying)


# -- what a request does ----------------------------------------------------------------------
_DYNAMODB_ITEM_OPS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "Get": "GetItem"}


def _table_arn(region: str, table: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def _json_target(request: SignedRequest) -> tuple[str, dict]:
    """(operation, body) of a JSON protocol request (DynamoDB, SSM): X-Amz-Target names it."""
    operation = request.headers.get("x-amz-target", "").rpartition(".")[2]
    try:
        body = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError:
        body = {}
    return operation, body if isinstance(body, dict) else {}


def dynamodb_calls(request: SignedRequest, region: str) -> list[Call]:
    operation, body = _json_target(request)
    action = f"dynamodb:{operation}"
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Call(action, _table_arn(region, t)) for t in sorted(body.get("RequestItems", {}))]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        calls = []
        for item in body.get("TransactItems", []):
            for kind, spec in item.items():
                op = _DYNAMODB_ITEM_OPS.get(kind, "ConditionCheckItem")
                calls.append(Call(f"dynamodb:{op}", _table_arn(region, spec.get("TableName", ""))))
        return calls
    if "TableName" in body:
        return [Call(action, _table_arn(region, body["TableName"], body.get("IndexName")))]
    if "ResourceArn" in body:
        return [Call(action, body["ResourceArn"])]
    return [Call(action, "*")]  # ListTables, DescribeLimits, ...


def _parameter_arn(region: str, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:aws:ssm:{region}:{ACCOUNT_ID}:parameter/{name.lstrip('/')}"


def ssm_calls(request: SignedRequest, region: str) -> list[Call]:
    operation, body = _json_target(request)
    action = f"ssm:{operation}"
    names = body.get("Names") or ([body["Name"]] if "Name" in body else [])
    if "Path" in body:
        names = [body["Path"]]
    if names:
        return [Call(action, _parameter_arn(region, n)) for n in names]
    return [Call(action, f"arn:aws:ssm:{region}:{ACCOUNT_ID}:*")]  # DescribeParameters, ...


_S3_BUCKET_READS = {
    "lifecycle": "GetLifecycleConfiguration",
    "location": "GetBucketLocation",
    "versions": "ListBucketVersions",
    "uploads": "ListBucketMultipartUploads",
    "policy": "GetBucketPolicy",
    "acl": "GetBucketAcl",
    "encryption": "GetEncryptionConfiguration",
    "tagging": "GetBucketTagging",
    "versioning": "GetBucketVersioning",
    "notification": "GetBucketNotification",
    "ownershipControls": "GetBucketOwnershipControls",
    "publicAccessBlock": "GetBucketPublicAccessBlock",
}
_S3_BUCKET_WRITES = {
    "lifecycle": "PutLifecycleConfiguration",
    "policy": "PutBucketPolicy",
    "acl": "PutBucketAcl",
    "encryption": "PutEncryptionConfiguration",
    "tagging": "PutBucketTagging",
    "versioning": "PutBucketVersioning",
    "notification": "PutBucketNotification",
    "ownershipControls": "PutBucketOwnershipControls",
    "publicAccessBlock": "PutBucketPublicAccessBlock",
}


def s3_calls(request: SignedRequest) -> list[Call]:
    path = request.path.lstrip("/")
    bucket, _, key = path.partition("/")
    bucket, key = unquote(bucket), unquote(key)
    sub = set(request.params)
    method = request.method
    if not bucket:
        return [Call("s3:ListAllMyBuckets", "arn:aws:s3:::*")]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if method == "POST" and "delete" in sub:  # DeleteObjects: s3:DeleteObject per key
            keys = re.findall(rb"<Key>(.*?)</Key>", request.body or b"", re.S)
            return [Call("s3:DeleteObject", f"{bucket_arn}/{k.decode()}") for k in keys]
        if method in ("GET", "HEAD"):
            named = [_S3_BUCKET_READS[s] for s in sub if s in _S3_BUCKET_READS]
            return [Call(f"s3:{named[0] if named else 'ListBucket'}", bucket_arn)]
        if method == "PUT":
            named = [_S3_BUCKET_WRITES[s] for s in sub if s in _S3_BUCKET_WRITES]
            return [Call(f"s3:{named[0] if named else 'CreateBucket'}", bucket_arn)]
        if method == "DELETE":
            named = [_S3_BUCKET_WRITES[s] for s in sub if s in _S3_BUCKET_WRITES]
            return [Call(f"s3:{named[0] if named else 'DeleteBucket'}", bucket_arn)]
        return [Call(f"s3:{method}Bucket", bucket_arn)]
    object_arn = f"{bucket_arn}/{key}"
    if method in ("GET", "HEAD"):
        if "tagging" in sub:
            return [Call("s3:GetObjectTagging", object_arn)]
        if "acl" in sub:
            return [Call("s3:GetObjectAcl", object_arn)]
        return [Call("s3:GetObjectVersion" if "versionId" in sub else "s3:GetObject", object_arn)]
    if method == "PUT":
        if "tagging" in sub:
            return [Call("s3:PutObjectTagging", object_arn)]
        if "acl" in sub:
            return [Call("s3:PutObjectAcl", object_arn)]
        calls = [Call("s3:PutObject", object_arn)]
        source = request.headers.get("x-amz-copy-source")
        if source:
            calls.append(Call("s3:GetObject", f"arn:aws:s3:::{unquote(source.lstrip('/')).split('?')[0]}"))
        return calls
    if method == "DELETE":
        return [Call("s3:AbortMultipartUpload" if "uploadId" in sub else "s3:DeleteObject", object_arn)]
    return [Call("s3:PutObject", object_arn)]  # POST: multipart upload steps


# The IAM prefix of services whose signing name differs from it.
_IAM_PREFIX = {"monitoring": "cloudwatch"}


def other_calls(request: SignedRequest) -> list[Call]:
    """Any other service (STS, CloudFormation, CloudWatch, ...) by its operation, on "*": our
    templates give these no resource-level permissions. The operation is in X-Amz-Target (JSON
    protocols), in the path (Smithy RPC v2: /service/<S>/operation/<Op>) or Action= (query)."""
    operation = request.headers.get("x-amz-target", "").rpartition(".")[2]
    if not operation and "/operation/" in request.path:
        operation = request.path.rpartition("/")[2]
    if not operation:
        params = parse_qs((request.body or b"").decode("utf-8", "replace")) or request.params
        operation = (params.get("Action") or [""])[0]
    return [Call(f"{_IAM_PREFIX.get(request.service, request.service)}:{operation}", "*")]


# -- answers ----------------------------------------------------------------------------------
_JSON_SERVICES = {"dynamodb": "application/x-amz-json-1.0", "ssm": "application/x-amz-json-1.1"}


def _refusal(request: SignedRequest, code: str, message: str, denial: Denial | None = None) -> Refusal:
    request_id = uuid.uuid4().hex.upper()
    service = request.service
    if service in _JSON_SERVICES:
        type_name = f"com.amazon.coral.service#{code}" if service == "dynamodb" else code
        body = orjson.dumps({"__type": type_name, "message": message})
        headers = [
            ("Content-Type", _JSON_SERVICES[service]),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", code),
        ]
        return Refusal(400, headers, body, denial)
    if service == "execute-api":
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
        ]
        return Refusal(403, headers, orjson.dumps({"message": message}), denial)
    if service == "s3":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id[:16]}</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id[:16])]
        return Refusal(403, headers, b"" if request.method == "HEAD" else xml, denial)
    xml = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return Refusal(403, [("Content-Type", "text/xml")], xml, denial)


_UNKNOWN_KEY = {
    "s3": ("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
    "execute-api": ("UnrecognizedClientException", "The security token included in the request is invalid."),
}
_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)


# -- the checker ------------------------------------------------------------------------------
class LocalIam:
    def __init__(self, template: Template, *, log=None):
        self.template = template
        self.region = template.region
        self.roles = template.roles()
        self.credentials: dict[str, Credentials] = {
            name: Credentials.new() for name in [OWNER, *sorted(self.roles)]
        }
        self._by_key = {c.access_key: name for name, c in self.credentials.items()}
        self._log = log
        self._lock = threading.Lock()
        self.denials: collections.deque[Denial] = collections.deque(maxlen=200)
        # The template's policies do not change while the stack runs: each role's decision on a
        # (action, resource) is evaluated once (the publisher's @connections POSTs repeat the
        # same few thousand), not once per request. Bounded; cleared when full.
        self._decisions: dict[tuple[str, Call], bool] = {}
        self._api_id: str | None = None

    def principal_arn(self, principal: str) -> str:
        if principal == OWNER:
            return f"arn:aws:iam::{ACCOUNT_ID}:root"
        role = self.roles[principal].role_arn.rpartition("/")[2]
        return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/{principal}"

    def principal_of(self, access_key: str) -> str | None:
        return self._by_key.get(access_key)

    def secret_of(self, access_key: str) -> str | None:
        """The secret of one of the stack's access keys (for a server that checks SigV4 itself)."""
        principal = self._by_key.get(access_key)
        return self.credentials[principal].secret_key if principal else None

    def check_policy(self, request: SignedRequest) -> Refusal | None:
        """For a request whose signature was already verified: its principal's permission only."""
        principal = self.principal_of(request.access_key)
        if principal is None:
            return _refusal(
                request,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        denial = self.authorize(principal, self.calls(request))
        if denial is not None:
            code = "AccessDenied" if request.service == "s3" else "AccessDeniedException"
            return _refusal(request, code, denial.message, denial)
        return None

    def authorize(self, principal: str, calls: list[Call]) -> Denial | None:
        """The first call the principal's policy does not allow, or None."""
        if principal == OWNER:
            return None
        statements = self.roles[principal].statements
        for call in calls:
            if call.action in ("sts:GetCallerIdentity",):  # needs no permission on AWS either
                continue
            decision = self._decisions.get((principal, call))
            if decision is None:
                decision = allowed(statements, call)
                if len(self._decisions) >= MAX_CACHED_DECISIONS:
                    self._decisions.clear()
                self._decisions[(principal, call)] = decision
            if not decision:
                denial = Denial(principal, self.principal_arn(principal), call.action, call.resource)
                with self._lock:
                    self.denials.append(denial)
                if self._log:
                    self._log(f"AccessDenied: {principal} {call.action} on {call.resource}")
                return denial
        return None

    def calls(self, request: SignedRequest) -> list[Call]:
        if request.service == "dynamodb":
            return dynamodb_calls(request, self.region)
        if request.service == "ssm":
            return ssm_calls(request, self.region)
        if request.service == "s3":
            return s3_calls(request)
        if request.service == "execute-api":
            return [Call("execute-api:ManageConnections", self.connections_arn(request))]
        return other_calls(request)

    def connections_arn(self, request: SignedRequest) -> str:
        """arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/@connections/<id>"""
        if self._api_id is None:  # the template's, fixed while the stack runs
            self._api_id = self.template.physical_name(self.template.websocket_api().logical_id)
        api_id = self._api_id
        path = unquote(request.path).lstrip("/")
        return f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{api_id}/" + path.replace(
            "@connections", f"{request.method}/@connections", 1
        )

    def check(self, request: SignedRequest, *, now: float | None = None) -> Refusal | None:
        """None when the request may be served; else AWS's refusal."""
        if not request.signed:
            if request.service == "s3":
                return _refusal(request, "AccessDenied", "Access Denied")
            code = "MissingAuthenticationTokenException"
            if request.service == "execute-api":
                code = "ForbiddenException"
            return _refusal(request, code, "Missing Authentication Token")
        principal = self.principal_of(request.access_key)
        if principal is None:
            code, message = _UNKNOWN_KEY.get(
                request.service,
                ("UnrecognizedClientException", "The security token included in the request is invalid."),
            )
            return _refusal(request, code, message)
        secret = self.credentials[principal].secret_key
        amz_date = request.headers.get("x-amz-date", "")
        try:
            signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            return _refusal(request, "IncompleteSignatureException", "X-Amz-Date is missing or malformed")
        now = time.time() if now is None else now
        if abs(now - signed_at) > MAX_CLOCK_SKEW_SECONDS:
            if request.service == "s3":
                return _refusal(
                    request,
                    "RequestTimeTooSkewed",
                    "The difference between the request time and the current time is too large.",
                )
            return _refusal(
                request,
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier or later than 15 min",
            )
        if not hmac.compare_digest(_signature(request, secret), request.signature):
            code = "SignatureDoesNotMatch" if request.service == "s3" else "InvalidSignatureException"
            return _refusal(request, code, _BAD_SIGNATURE)
        denial = self.authorize(principal, self.calls(request))
        if denial is not None:
            code = "AccessDenied" if request.service == "s3" else "AccessDeniedException"
            return _refusal(request, code, denial.message, denial)
        return None


def _signature(request: SignedRequest, secret: str) -> str:
    """SigV4 of the request as received, computed by botocore's own signer."""
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import ReadOnlyCredentials

    credentials = ReadOnlyCredentials(request.access_key, secret, None)
    signer = (S3SigV4Auth if request.service == "s3" else SigV4Auth)(
        credentials, request.service, request.region
    )
    headers = {name: request.headers.get(name, "") for name in request.signed_headers}
    aws_request = AWSRequest(method=request.method, url=request.url, data=request.body, headers=headers)
    aws_request.context["timestamp"] = request.headers.get("x-amz-date", "")
    canonical = signer.canonical_request(aws_request)
    return signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)


class IamMiddleware:
    """WSGI middleware in front of moto's server: checks every request before moto sees it."""

    def __init__(self, app, iam: LocalIam):
        self.app = app
        self.iam = iam

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        if not raw.startswith("/"):  # an absolute URI
            raw = "/" + raw.split("/", 3)[-1] if raw.count("/") >= 3 else "/"
        url = f"http://{environ.get('HTTP_HOST', 'localhost')}{raw}"
        refusal = self.iam.check(SignedRequest(environ["REQUEST_METHOD"], url, headers, body))
        if refusal is None:
            return self.app(environ, start_response)
        reason = {400: "Bad Request", 403: "Forbidden"}[refusal.status]
        start_response(
            f"{refusal.status} {reason}", [*refusal.headers, ("Content-Length", str(len(refusal.body)))]
        )
        return [refusal.body]
