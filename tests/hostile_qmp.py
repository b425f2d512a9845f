#!/usr/bin/env python3
"""A QMP peer that answers like QEMU 7.2 with a guest that answers every second, except in the ways
tests/collectd_hostile.sh needs it to misbehave, one way per socket:

  hostile_qmp.py SOCKET:MODE ...

SOCKET is a path (created 0600, removed at exit); MODE is one of
  normal   last-update is the wall clock while polling is on
  back     ... but an hour back from 4 s to 8 s after polling was turned on
  huge     last-update 2^34 + seconds since polling was turned on (beyond collectd's cdtime_t)
  ahead    last-update a year ahead of the wall clock, frozen
  flap     every other guest-stats is an error whose desc holds a newline and escape sequences
  fail     every guest-stats is an error
  bigstat  stat-total-memory is 18446744073709551614
  double   stat-total-memory is twice the normal one
Prints "ready" once every socket listens; runs until SIGTERM/SIGINT. Understands what the plugin
sends (qmp_capabilities, qom-get/qom-set of the balloon's two properties) and nothing more."""
import asyncio
import json
import os
import signal
import sys
import time

BALLOON = "/machine/peripheral/balloon0"
GIB = 1 << 30
HOSTILE_DESC = "bad\nFAKE: collectd[1]: forged line\x1b[31m\u009b2J\u2028end"


class Guest:
    def __init__(self, mode):
        self.mode = mode
        self.interval = 0
        self.polling_since = None
        self.stats_reads = 0

    def last_update(self):
        now = time.time()
        if self.interval <= 0 or self.polling_since is None:
            return 0
        since = now - self.polling_since
        if self.mode == "back" and 4 <= since < 8:
            return int(now) - 3600
        if self.mode == "huge":
            return (1 << 34) + int(since)
        if self.mode == "ahead":
            return int(self.polling_since) + 365 * 86400
        return int(now)

    def stats(self):
        total = GIB
        if self.mode == "bigstat":
            total = (1 << 64) - 2
        elif self.mode == "double":
            total = 2 * GIB
        free = GIB // 2 + int(time.time()) % 1000 * 4096
        return {
            "stat-swap-in": 0, "stat-swap-out": 4096, "stat-major-faults": 3, "stat-minor-faults": 1000,
            "stat-free-memory": free, "stat-total-memory": total, "stat-available-memory": free + 4096,
            "stat-disk-caches": 65536, "stat-htlb-pgalloc": 0, "stat-htlb-pgfail": 0,
        }


def answer(guest, msg):
    cmd = msg.get("execute")
    args = msg.get("arguments", {})
    if cmd == "qmp_capabilities":
        return {"return": {}}
    if cmd in ("qom-get", "qom-set") and args.get("path") != BALLOON:
        return {"error": {"class": "DeviceNotFound", "desc": "Device '%s' not found" % args.get("path")}}
    if cmd == "qom-get" and args.get("property") == "guest-stats-polling-interval":
        return {"return": guest.interval}
    if cmd == "qom-set" and args.get("property") == "guest-stats-polling-interval":
        guest.interval = int(args.get("value", 0))
        if guest.interval > 0 and guest.polling_since is None:
            guest.polling_since = time.time()
        return {"return": {}}
    if cmd == "qom-get" and args.get("property") == "guest-stats":
        guest.stats_reads += 1
        if guest.mode == "fail" or (guest.mode == "flap" and guest.stats_reads % 2 == 0):
            return {"error": {"class": "GenericError", "desc": HOSTILE_DESC}}
        return {"return": {"stats": guest.stats(), "last-update": guest.last_update()}}
    return {"error": {"class": "CommandNotFound", "desc": "The command %s has not been found" % cmd}}


async def serve(guest, reader, writer):
    greeting = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},
                        "capabilities": ["oob"]}}
    writer.write((json.dumps(greeting) + "\r\n").encode())
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            reply = answer(guest, json.loads(line))
            writer.write((json.dumps(reply) + "\r\n").encode())
            await writer.drain()
    except (ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(specs):
    servers, paths = [], []
    os.umask(0o177)
    for spec in specs:
        path, mode = spec.rsplit(":", 1)
        guest = Guest(mode)
        servers.append(await asyncio.start_unix_server(
            lambda r, w, g=guest: serve(g, r, w), path=path))
        paths.append(path)
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    for p in paths:
        os.unlink(p)


if __name__ == "__main__":
    asyncio.run(main([os.fsdecode(a) for a in sys.argv[1:]]))
