#!/usr/bin/python3
"""A foreign ICE agent for interop tests: aioice (Debian python3-aioice),
speaking ice-probe's description format through files.

    aioice_peer.py LOCAL REMOTE offer|answer [STUN_HOST:PORT] [TIMEOUT_S]

Gathers (with a STUN server if given), writes its description to LOCAL
(temp file + rename), polls REMOTE for the peer's, runs the checks
(controlling when `offer`), prints one JSON line with the outcome, keeps
answering checks for 3 s so the peer can finish, and exits 0 when
connected, 1 when not. It never answers ice-probe's channel protocol.
"""

import asyncio
import json
import os
import sys
import time

import aioice


def description(conn, role):
    return {
        "type": "ice-description",
        "version": 1,
        "ufrag": conn.local_username,
        "pwd": conn.local_password,
        "candidates": ["candidate:" + c.to_sdp() for c in conn.local_candidates],
        "end_of_candidates": True,
        "role": role,
        "agent": "aioice " + aioice.__version__,
    }


async def read_remote(path, deadline):
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                line = f.readline()
            if line.strip():
                return json.loads(line)
        except FileNotFoundError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no description in {path}")


async def main():
    local, remote, role = sys.argv[1], sys.argv[2], sys.argv[3]
    stun = None
    if len(sys.argv) > 4 and sys.argv[4]:
        host, port = sys.argv[4].rsplit(":", 1)
        stun = (host, int(port))
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 10.0
    deadline = time.monotonic() + timeout

    conn = aioice.Connection(ice_controlling=(role == "offer"), stun_server=stun, use_ipv6=False)
    await conn.gather_candidates()
    tmp = local + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(description(conn, role)) + "\n")
    os.rename(tmp, local)

    peer = await read_remote(remote, deadline)
    conn.remote_username = peer["ufrag"]
    conn.remote_password = peer["pwd"]
    for c in peer.get("candidates", []):
        c = c[len("candidate:"):] if c.startswith("candidate:") else c
        await conn.add_remote_candidate(aioice.Candidate.from_sdp(c))
    await conn.add_remote_candidate(None)
    result = {"agent": "aioice", "role": role, "connected": False}
    try:
        await asyncio.wait_for(conn.connect(), max(0.1, deadline - time.monotonic()))
        pair = conn._nominated.get(1)
        result["connected"] = True
        if pair is not None:
            result["local"] = f"{pair.local_candidate.host}:{pair.local_candidate.port}"
            result["remote"] = f"{pair.remote_addr[0]}:{pair.remote_addr[1]}"
        # Keep answering checks (and ignoring the channel's HELLO) while
        # the peer finishes.
        await asyncio.sleep(3)
    except Exception as e:  # noqa: BLE001 - reported, not raised
        result["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(result), flush=True)
    await conn.close()
    return 0 if result["connected"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
