"""The embedded emulator's DynamoDB answers at 1,000 WebSocket connections (issue 16).

    .venv/bin/python tests/bench/bench_emulator.py [--connections 1000] [--runs 3]

Scans the connections table holding one meta item and one subscription per connection (the live
publisher's key check does this every 10 s) and prints the CPU of a whole scan with the
emulator's direct serializer (local/tradowix_local/moto_speed.py) and with moto's own, and their
ratio, measured in one run. The answers are byte-identical (tests/unit/test_local_emulator_speed.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "local"))
sys.path.insert(0, str(ROOT / "tests" / "unit"))


def fill(client, name: str, connections: int) -> None:
    requests = []
    for i in range(connections):
        cid = {"S": f"bench-{i:05d}"}
        meta = {
            "connection_id": cid,
            "sk": {"S": "meta"},
            "key_id": {"S": "k"},
            "connected_at": {"N": "1764600000"},
        }
        sub = {
            "connection_id": cid,
            "sk": {"S": "sub#EURUSD-OTC#60"},
            "symbol": {"S": "EURUSD-OTC"},
            "timeframe": {"N": "60"},
            "since": {"N": "1764600000"},
        }
        requests += [{"PutRequest": {"Item": meta}}, {"PutRequest": {"Item": sub}}]
    for start in range(0, len(requests), 25):
        client.batch_write_item(RequestItems={name: requests[start : start + 25]})


def scan_cpu(client, name: str) -> float:
    started = time.process_time()  # this process: the emulator's server threads and the client
    kwargs: dict = {}
    while True:
        page = client.scan(TableName=name, **kwargs)
        if "LastEvaluatedKey" not in page:
            return time.process_time() - started
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from local_emulator import embedded_emulator
    from moto.core.serialize import BaseJSONSerializer
    from tradowix_local import moto_speed

    with embedded_emulator() as stack:
        client, name = stack.emulator.client("dynamodb"), stack.names["ConnectionsTable"]
        fill(client, name, args.connections)
        direct = min(scan_cpu(client, name) for _ in range(args.runs))
        shortcut = BaseJSONSerializer._serialize_type_structure
        BaseJSONSerializer._serialize_type_structure = moto_speed._generic
        try:
            generic = min(scan_cpu(client, name) for _ in range(args.runs))
        finally:
            BaseJSONSerializer._serialize_type_structure = shortcut
    print(
        f"scan of {2 * args.connections} items (best of {args.runs}, CPU s): direct {direct:.3f}, "
        f"moto's serializer {generic:.3f}, ratio {direct / generic:.2f}x   load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
