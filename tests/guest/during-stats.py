#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Host side of the stats guest test (run.sh --during, while t-stats.sh runs in
the guest): waits for each "=== STATS-MARK N" on the live console, takes a
`thunderpass stats --json` snapshot at once (by socket, and once by the
server's PID), and checks that the counters moved by what the guest did:

  mark 1  a client is connected and guest RAM is mapped for DMA (QEMU maps all
          of it at connect: at least the 512 MiB run.sh gives the guest)
  mark 2  BAR0 trapped reads grew by exactly reads= (the guest's devmem reads),
          no BAR0 write, no BAR1 access trapped (it is mapped)
  mark 3  MSI-X interrupts raised grew by exactly irqs= (the guest handler's
          count), all on vector 0 (tpselftest's CE_VECTOR), none dropped, no
          other interrupt type; BAR0 took trapped reads and writes

A snapshot must be taken before the guest moves on (it waits tp.settle
seconds after a mark); one taken too late fails the test rather than
comparing the wrong numbers. Environment from run.sh: TP_CONSOLE_LOG,
TP_SOCKET, TP_SERVER, TP_SERVER_PID, TP_TMP. Also validates each snapshot
against tests/cli/stats.schema.json.
"""
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
import schema  # noqa: E402

CONSOLE = os.environ["TP_CONSOLE_LOG"]
SOCKET = os.environ["TP_SOCKET"]
SERVER = os.environ["TP_SERVER"]
PID = os.environ.get("TP_SERVER_PID", "")
with open(os.path.join(HERE, "..", "cli", "stats.schema.json")) as f:
    SCHEMA = json.load(f)
GUEST_RAM = 512 << 20
problems = []


def console():
    try:
        with open(CONSOLE, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def wait_mark(n, timeout=240):
    """The words of mark n as a dict, or None when the guest ended without it."""
    pat = re.compile(r"=== STATS-MARK %d(.*)" % n)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = console()
        m = pat.search(text)
        if m:
            return dict(w.split("=", 1) for w in m.group(1).split() if "=" in w)
        if "=== POWEROFF" in text or "RESULT:" in text:
            return None
        time.sleep(0.05)
    return None


def snapshot(n, target=SOCKET):
    p = subprocess.run([SERVER, "stats", target, "--json"], capture_output=True, text=True, timeout=10)
    if p.returncode:
        raise SystemExit(f"during-stats: stats at mark {n} failed: {p.stderr.strip()}")
    doc = json.loads(p.stdout)
    errs = schema.check(doc, SCHEMA)
    if errs:
        problems.append(f"mark {n}: the snapshot breaks the schema: {errs[:3]}")
    if re.search(r"=== STATS-MARK %d\b" % (n + 1), console()) or "RESULT:" in console():
        problems.append(f"mark {n}: the snapshot came after the guest moved on (raise tp.settle)")
    doc["bar"] = {r["name"]: r for r in doc["regions"]}
    return doc


def expect(n, what, got, want):
    ok = got == want
    print(f"during-stats: mark {n}: {what} = {got}" + ("" if ok else f", want {want}  FAIL"))
    if not ok:
        problems.append(f"mark {n}: {what} = {got}, want {want}")


def main():
    if wait_mark(1) is None:
        raise SystemExit("during-stats: the guest never reached mark 1")
    s1 = snapshot(1)
    expect(1, "client connected", s1["client"]["connected"], True)
    expect(1, "guest RAM mapped for DMA (>= 512 MiB)", s1["dma"]["bytes_mapped"] >= GUEST_RAM, True)
    print(f"during-stats: mark 1: DMA {s1['dma']['maps_live']} regions, "
          f"{s1['dma']['bytes_mapped'] >> 20} MiB mapped")

    m2 = wait_mark(2)
    if m2 is None:
        raise SystemExit("during-stats: the guest never reached mark 2")
    s2 = snapshot(2)
    b1, b2 = s1["bar"]["BAR0"], s2["bar"]["BAR0"]
    expect(2, "BAR0 trapped reads added", b2["trapped_reads"] - b1["trapped_reads"], int(m2["reads"]))
    expect(2, "BAR0 trapped writes added", b2["trapped_writes"] - b1["trapped_writes"], 0)
    expect(2, "BAR1 trapped accesses (it is mapped)",
           s2["bar"]["BAR1"]["trapped_reads"] + s2["bar"]["BAR1"]["trapped_writes"], 0)
    if PID:
        by_pid = snapshot(2, PID)
        expect(2, "the same counters through the server's PID", by_pid["bar"]["BAR0"]["trapped_reads"],
               b2["trapped_reads"])
    human = subprocess.run([SERVER, "stats", SOCKET], capture_output=True, text=True, timeout=10)
    print("during-stats: `thunderpass stats` at mark 2:")
    for line in human.stdout.splitlines():
        print("  " + line)

    m3 = wait_mark(3)
    if m3 is None:
        print("during-stats: no mark 3 (no tpselftest.ko in the guest): interrupts not checked")
    else:
        s3 = snapshot(3)
        x2, x3 = s2["irqs"]["msix"], s3["irqs"]["msix"]
        expect(3, "MSI-X raised added", x3["total"] - x2["total"], int(m3["irqs"]))
        expect(3, "MSI-X vector 0 added", x3["raised"][0] - x2["raised"][0], int(m3["irqs"]))
        expect(3, "MSI and INTx raised added",
               s3["irqs"]["msi"]["total"] + s3["irqs"]["intx"]["total"]
               - s2["irqs"]["msi"]["total"] - s2["irqs"]["intx"]["total"], 0)
        expect(3, "interrupts dropped", s3["irqs"]["dropped"], 0)
        expect(3, "IOMMU faults added", s3["iommu"]["faults"] - s2["iommu"]["faults"], 0)
        expect(3, "BAR0 trapped writes grew", s3["bar"]["BAR0"]["trapped_writes"] > b2["trapped_writes"], True)
        print(f"during-stats: mark 3: {x3['total'] - x2['total']} MSI-X interrupts for "
              f"{m3.get('jobs', '?')} jobs; BAR0 +{s3['bar']['BAR0']['trapped_reads'] - b2['trapped_reads']} "
              f"reads, +{s3['bar']['BAR0']['trapped_writes'] - b2['trapped_writes']} writes")
    if problems:
        for p in problems:
            print("during-stats: FAIL " + p)
        sys.exit(1)
    print("during-stats: the counters agree with what the guest did")


if __name__ == "__main__":
    main()
