#!/usr/bin/env python3
"""Cold start of the built artifact, as Lambda runs it. A script, not a test:

    .ci/template-checks          # or: sam build (needs python3.12 on PATH)
    .venv/bin/python tests/bench/bench_coldstart.py [--runs 9]

Each sample is a fresh `python3.12 -I -S` that sees only what Lambda's would: the function's
code directory (.aws-sam/build/ApiFunction), the layer (.aws-sam/build/CoreLayer/python) and
the runtime's boto3 (installed once, compiled, into .aws-sam/bench-runtime, as the managed
runtime ships it). Data: 7 days of 1m bars of one symbol in a moto server in this process,
read with the partner API function's own credentials (IAM enforced). Measured in ONE run,
interleaved, medians:

  - import of fastapi + mangum alone (from the built artifact)           the baseline of issue 12
  - import of the handler module (partner_api.app)
  - import + first request (/api/candles, 10,080 bars) of the handler    issue 16 item 2
    (clients made during init), and the same with the clients made by the first request (before)
  - import + first request of the floor: boto3 + one S3 client, GET the stored day objects,
    decode, encode the same answer
  - the same handler figures from a copy of the build without its .pyc files (read-only, as
    Lambda's /var/task): what shipping bytecode saves.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
RUNTIME = ROOT / ".aws-sam" / "bench-runtime"
sys.path.insert(0, str(ROOT / "local"))
SYMBOL = "BTCUSD-OTC"
BARS = 10_080

PROBE = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = {paths!r}
    started = time.perf_counter()
    {imports}
    imported = time.perf_counter()
    {request}
    done = time.perf_counter()
    print(imported - started, done - imported)
    """
)

HANDLER_REQUEST = textwrap.dedent(
    """
    import json
    event = json.loads({event!r})
    class Ctx:
        function_name = "ApiFunction"; memory_limit_in_mb = 512; aws_request_id = "cold"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
        def get_remaining_time_in_millis(self): return 10000
    answer = handler(event, Ctx())
    assert answer["statusCode"] == 200, answer["statusCode"]
    assert json.loads(answer["body"])["count"] >= {bars}
    """
)

FLOOR_REQUEST = textwrap.dedent(
    """
    s3 = boto3.client("s3")
    bars = []
    for key in {keys!r}:
        doc = orjson.loads(gzip.decompress(s3.get_object(Bucket={bucket!r}, Key=key)["Body"].read()))
        bars.extend(doc["bars"])
    body = orjson.dumps({{"candles": [{{"time": b[0], "open": b[1], "high": b[2], "low": b[3], "close": b[4]}} for b in bars]}})
    assert len(bars) >= {bars}
    """
)


def python312() -> str:
    """A python3.12 that runs (a pyenv shim may exist and fail), as .ci/template-checks finds it."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which("python3.12"), *map(str, sorted(pyenv.glob("versions/3.12*/bin/python3.12")))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
            return candidate
    raise SystemExit("error: python3.12 is needed (Lambda's runtime): put one on PATH")


def runtime_boto3(python: str) -> Path:
    """boto3 as Lambda's managed runtime ships it: outside the artifact, compiled."""
    marker = RUNTIME / ".ready"
    if not marker.exists():
        shutil.rmtree(RUNTIME, ignore_errors=True)
        lock = (ROOT / "infra/collector/requirements.txt").read_text()
        pins = [
            line.split(" ")[0]
            for line in lock.splitlines()
            if line.split("==")[0]
            in ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
        ]
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--no-deps", "--target", str(RUNTIME), *pins], check=True
        )
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(RUNTIME)], check=True)
        marker.touch()
    return RUNTIME


def without_bytecode(source: Path, target: Path) -> Path:
    """A copy of the build with no .pyc, read-only (Lambda's code directory cannot be written)."""
    if target.exists():
        for path in [target, *target.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [*target.rglob("*"), target]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return target


def sample(
    python: str, paths: list[str], imports: str, request: str, env: dict, flags: list[str]
) -> tuple[float, float]:
    probe = PROBE.format(paths=paths, imports=imports, request=request)
    out = subprocess.run([python, "-I", "-S", *flags, "-c", probe], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"probe failed:\n{out.stderr[-3000:]}")
    first, second = out.stdout.strip().splitlines()[-1].split()
    return float(first), float(second)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per case (default 9)")
    args = parser.parse_args()
    if not (BUILD / "ApiFunction" / "partner_api").is_dir():
        raise SystemExit("error: no built artifact: run .ci/template-checks (or sam build) first")
    python = python312()
    runtime = runtime_boto3(python)

    from tradowix_bot.collector.synthetic_market import SyntheticMarket
    from tradowix_bot.server import aws
    from tradowix_bot.server.store import CANDLE_PREFIX, CandleStore
    from tradowix_local.emulator import Emulator, create_resources
    from tradowix_local.template import Template

    template = Template()
    emulator = Emulator(None, template=template)
    emulator.start()
    try:
        names = create_resources(emulator, template)
        aws.reset()
        end = int(time.time()) // 60 * 60
        CandleStore(names["CandlesBucket"]).write(
            SYMBOL, SyntheticMarket().bars(SYMBOL, end - BARS * 60, end)
        )
        s3 = emulator.client("s3")
        keys = sorted(
            o["Key"]
            for o in s3.list_objects_v2(Bucket=names["CandlesBucket"], Prefix=f"{CANDLE_PREFIX}{SYMBOL}/")[
                "Contents"
            ]
        )
        event = json.loads((ROOT / "tests/unit/events/candles_get.json").read_text())
        event["rawQueryString"] = f"symbol={SYMBOL}"
        event["queryStringParameters"] = {"symbol": SYMBOL}
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": emulator.endpoint_url,
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **template.functions()["ApiFunction"].environment,
            **emulator.principal_environment("ApiFunction"),
        }
        env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        built = [str(BUILD / "ApiFunction"), str(BUILD / "CoreLayer" / "python"), str(runtime)]
        plain = ROOT / ".aws-sam" / "bench-no-pyc"
        without_bytecode(BUILD / "ApiFunction", plain / "ApiFunction")
        without_bytecode(BUILD / "CoreLayer", plain / "CoreLayer")
        no_pyc = [str(plain / "ApiFunction"), str(plain / "CoreLayer" / "python"), str(runtime)]
        # -B: write no .pyc either (-I ignores PYTHONDONTWRITEBYTECODE, and root may write anywhere)

        handler_request = HANDLER_REQUEST.format(event=json.dumps(event), bars=BARS - 1)
        floor_request = FLOOR_REQUEST.format(keys=keys, bucket=names["CandlesBucket"], bars=BARS - 1)
        handler = "from partner_api.app import handler"
        cases = {  # name: (sys.path, imports, first request, interpreter flags)
            "fastapi + mangum alone (import)": (built, "import fastapi, mangum", "pass", []),
            "handler: import": (built, handler, "pass", []),
            "handler: import + first request": (built, handler, handler_request, []),
            # as before issue 16 item 2: boto3 clients made by the first request, not during init
            "handler, lazy clients: import + first request": (
                built,
                "import partner_api.context as c; c.warm = lambda: None; " + handler,
                handler_request,
                [],
            ),
            "floor: import + first request": (built, "import boto3, orjson, gzip", floor_request, []),
            "handler without .pyc: import": (no_pyc, handler, "pass", ["-B"]),
            "handler without .pyc: import + first request": (no_pyc, handler, handler_request, ["-B"]),
            "fastapi + mangum without .pyc (import)": (no_pyc, "import fastapi, mangum", "pass", ["-B"]),
        }
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.runs):  # interleaved: every case sees the same machine load
            for name, (paths, imports, request, flags) in cases.items():
                samples[name].append(sample(python, paths, imports, request, env, flags))
    finally:
        emulator.stop()
        aws.reset()

    def median(name: str, part: str = "total") -> float:
        values = samples[name]
        pick = {"import": lambda s: s[0], "request": lambda s: s[1], "total": lambda s: s[0] + s[1]}[part]
        return statistics.median(pick(s) for s in values)

    version = subprocess.run([python, "--version"], capture_output=True, text=True).stdout.strip()
    print(
        f"\ncold start of the built artifact ({BUILD.relative_to(ROOT)}), {version} -I -S, {args.runs} runs each,"
    )
    print(f"medians, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {BARS:,} bars answered\n")
    rows = [
        ("fastapi + mangum alone: import", median("fastapi + mangum alone (import)", "import")),
        ("handler module: import", median("handler: import", "import")),
        ("handler: import + first request", median("handler: import + first request")),
        ("   of which the first request", median("handler: import + first request", "request")),
        (
            "handler, clients on the first request (before): import + first request",
            median("handler, lazy clients: import + first request"),
        ),
        ("   of which the first request", median("handler, lazy clients: import + first request", "request")),
        ("floor: import + first request", median("floor: import + first request")),
        ("   of which the first request", median("floor: import + first request", "request")),
        ("without .pyc: fastapi + mangum import", median("fastapi + mangum without .pyc (import)", "import")),
        ("without .pyc: handler import", median("handler without .pyc: import", "import")),
        (
            "without .pyc: handler import + first request",
            median("handler without .pyc: import + first request"),
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for label, seconds in rows:
        print(f"{label:<{width}}  {seconds * 1000:8.1f} ms")
    base = median("fastapi + mangum alone (import)", "import")
    print()
    print(
        f"handler import / fastapi+mangum import:            {median('handler: import', 'import') / base:.2f}x"
    )
    print(
        "handler (import + first request) / floor's:       "
        f"{median('handler: import + first request') / median('floor: import + first request'):.2f}x"
    )
    print(
        "first request alone, clients at init / lazily:    "
        f"{median('handler: import + first request', 'request') / median('handler, lazy clients: import + first request', 'request'):.2f}x"
    )
    print(
        "handler import without .pyc / with:               "
        f"{median('handler without .pyc: import', 'import') / median('handler: import', 'import'):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
