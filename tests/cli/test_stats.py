# SPDX-License-Identifier: MIT
"""thunderpass stats against a running `thunderpass serve` ($TP_BIN), driven
by a small vfio-user client written here (so that the test knows exactly
what the client did): BAR0 reads, posted and waited writes, a DMA_MAP of a
memfd, MSI-X eventfds, copy-engine jobs that raise vectors 0 and 3. The
counters `stats` reports must move with each step and agree with what the
client did; the JSON must hold to stats.schema.json (docs/doctor.md); the
control socket comes and goes with the server, with the same permissions.
"""
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import schema  # noqa: E402

BIN = os.environ.get("TP_BIN", "build/thunderpass")
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "stats.schema.json")) as f:
    SCHEMA = json.load(f)

VERSION, DMA_MAP, SET_IRQS, REGION_READ, REGION_WRITE = 1, 2, 8, 9, 10
NO_REPLY, ERROR = 0x10, 0x20
CAPS = (b'{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576,'
        b'"pgsizes":4096,"max_dma_maps":65535}}')
CE = 0xF00000
CE_LEN, CE_FLAGS, CE_DOORBELL, CE_STATUS, CE_INTR_STATUS, CE_INTR_ENABLE, CE_VECTOR = (
    0x20, 0x24, 0x40, 0x44, 0x48, 0x4C, 0x5C)
IOVA, GUEST = 0x100000000, 8 << 20


class Client:
    """Just enough of vfio-user 0.0 for the test; counts its BAR0 accesses."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(5)
        self.s.connect(path)
        self.id = 0
        self.reads = self.writes = self.posted = 0

    def close(self):
        self.s.close()

    def _recv(self, n):
        b = b""
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            if not chunk:
                raise ConnectionError("server closed the connection")
            b += chunk
        return b

    def send(self, cmd, payload=b"", fds=(), no_reply=False):
        self.id = (self.id + 1) & 0xFFFF
        msg = struct.pack("<HHIII", self.id, cmd, 16 + len(payload), NO_REPLY if no_reply else 0, 0)
        msg += payload
        if fds:
            socket.send_fds(self.s, [msg], list(fds))
        else:
            self.s.sendall(msg)
        return self.id

    def call(self, cmd, payload=b"", fds=()):
        mid = self.send(cmd, payload, fds)
        rid, rcmd, size, flags, err = struct.unpack("<HHIII", self._recv(16))
        body = self._recv(size - 16)
        assert rid == mid and rcmd == cmd, (rid, mid, rcmd, cmd)
        if flags & ERROR:
            raise OSError(err, os.strerror(err))
        return body

    def version(self):
        self.call(VERSION, struct.pack("<HH", 0, 0) + CAPS + b"\0")

    def read32(self, region, off):
        body = self.call(REGION_READ, struct.pack("<QII", off, region, 4))
        if region == 0:
            self.reads += 1
        return struct.unpack("<I", body[16:20])[0]

    def burst_reads(self, n, off=0):
        """n BAR0 reads sent back to back (replies read by a thread, so that
        neither side's socket buffer fills): as fast as the server answers."""
        def drain():
            for _ in range(n):
                _, _, size, flags, _ = struct.unpack("<HHIII", self._recv(16))
                self._recv(size - 16)
                assert not flags & ERROR
        t = threading.Thread(target=drain)
        t.start()
        req = b"".join(struct.pack("<HHIII", (self.id + 1 + i) & 0xFFFF, REGION_READ, 32, 0, 0) +
                       struct.pack("<QII", off, 0, 4) for i in range(n))
        self.id = (self.id + n) & 0xFFFF
        self.s.sendall(req)
        t.join(30)
        self.reads += n

    def write32(self, region, off, value, posted=False):
        payload = struct.pack("<QIII", off, region, 4, value)
        if posted:
            self.send(REGION_WRITE, payload, no_reply=True)
        else:
            self.call(REGION_WRITE, payload)
        if region == 0:
            self.writes += 1
            self.posted += posted

    def dma_map(self, fd, iova, size):
        self.call(DMA_MAP, struct.pack("<IIQQQ", 32, 3, 0, iova, size), [fd])

    def msix(self, vector, fd):
        self.call(SET_IRQS, struct.pack("<IIIII", 20, 0x4 | 0x20, 2, vector, 1), [fd])


class Stats(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tp-stats-")
        os.chmod(self.tmp.name, 0o700)
        self.sock = os.path.join(self.tmp.name, "tp.sock")
        self.log = open(os.path.join(self.tmp.name, "server.log"), "w+")
        self.server = subprocess.Popen([BIN, "serve", "--socket", self.sock, "--socket-mode", "0640",
                                        "--log-level", "info"], stdout=self.log, stderr=self.log)
        for _ in range(200):
            if os.path.exists(self.sock + ".ctl"):
                break
            time.sleep(0.02)
        self.assertTrue(os.path.exists(self.sock + ".ctl"), "no SOCKET.ctl")
        self.client = None

    def tearDown(self):
        if self.client:
            self.client.close()
        if self.server.poll() is None:
            self.server.terminate()
            self.server.wait(10)
        self.log.close()
        self.tmp.cleanup()

    def stats(self, *args, target=None, ok=True):
        p = subprocess.run([BIN, "stats", target or self.sock] + list(args), capture_output=True,
                           text=True, timeout=30)
        if ok:
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def snap(self, target=None):
        doc = json.loads(self.stats("--json", target=target).stdout)
        self.assertEqual(schema.check(doc, SCHEMA), [], "the snapshot breaks the schema")
        doc["bar"] = {r["name"]: r for r in doc["regions"]}
        return doc

    def bar0_agrees(self, doc):
        b = doc["bar"]["BAR0"]
        c = self.client
        self.assertEqual(b["trapped_reads"], c.reads)
        self.assertEqual(b["trapped_writes"], c.writes)
        self.assertEqual(b["posted_writes"], c.posted)
        self.assertEqual(b["waited_writes"], c.writes - c.posted)

    def ce_job(self, vector, efd):
        """A 0-byte copy-engine job that only raises vector; waits for it."""
        c = self.client
        c.write32(0, CE + CE_VECTOR, vector, posted=True)
        c.write32(0, CE + CE_LEN, 0, posted=True)
        c.write32(0, CE + CE_FLAGS, 0x20, posted=True)
        c.write32(0, CE + CE_DOORBELL, 1, posted=True)
        r, _, _ = select.select([efd], [], [], 5)
        self.assertTrue(r, f"no interrupt on MSI-X vector {vector}")
        os.eventfd_read(efd)
        self.assertEqual(c.read32(0, CE + CE_STATUS) & 0xFF01, 0)
        c.write32(0, CE + CE_INTR_STATUS, 3)  # waited: the guest's W1C

    def test_counters_follow_the_client(self):
        # No client yet: nothing counted, and the hint says so.
        doc = self.snap()
        self.assertFalse(doc["client"]["connected"])
        self.assertEqual(doc["pid"], self.server.pid)
        self.assertEqual((doc["sessions_ended"], doc["dma"]["maps_live"]), (0, 0))
        self.assertIn("no client is connected", self.stats().stdout)
        for name in ("tp.sock", "tp.sock.ctl"):
            mode = stat.S_IMODE(os.stat(os.path.join(self.tmp.name, name)).st_mode)
            self.assertEqual(mode, 0o640, f"{name}: mode {mode:o}")

        self.client = c = Client(self.sock)
        c.version()
        doc = self.snap()
        self.assertTrue(doc["client"]["connected"])
        self.assertEqual(doc["client"]["pid"], os.getpid())
        out = self.stats().stdout
        self.assertIn("no guest memory is mapped for DMA", out)

        # BAR0 reads and writes, posted and waited.
        for _ in range(37):
            self.assertEqual(c.read32(0, 0), 0x1B2000A1)
        for i in range(5):
            c.write32(0, 0x200, i, posted=True)
        for i in range(3):
            c.write32(0, 0x200, i)
        doc = self.snap()
        self.bar0_agrees(doc)
        self.assertEqual(doc["bar"]["BAR0"]["trapped_reads"], 37)
        self.assertEqual(doc["bar"]["BAR0"]["read_bytes"], 37 * 4)
        self.assertEqual(doc["bar"]["BAR1"]["trapped_reads"], 0)
        self.assertEqual(doc["bar"]["BAR1"]["mappable_bytes"], doc["bar"]["BAR1"]["size"])

        # Guest memory for DMA.
        mem = os.memfd_create("guest")
        os.ftruncate(mem, GUEST)
        c.dma_map(mem, IOVA, GUEST)
        os.close(mem)
        doc = self.snap()
        self.assertEqual(doc["dma"], {"maps_live": 1, "bytes_mapped": GUEST, "maps": 1, "unmaps": 0})
        self.assertNotIn("no guest memory", self.stats().stdout)

        # Interrupts: vector 0 three times, vector 3 once.
        e0, e3 = os.eventfd(0, os.EFD_NONBLOCK), os.eventfd(0, os.EFD_NONBLOCK)
        c.msix(0, os.dup(e0))
        c.msix(3, os.dup(e3))
        c.write32(0, CE + CE_INTR_ENABLE, 1)
        for _ in range(3):
            self.ce_job(0, e0)
        self.ce_job(3, e3)
        doc = self.snap()
        self.bar0_agrees(doc)
        msix = doc["irqs"]["msix"]
        self.assertEqual(msix["raised"], [3, 0, 0, 1, 0, 0, 0, 0, 0])
        self.assertEqual((msix["total"], msix["live"], msix["vectors"]), (4, 2, 9))
        self.assertEqual(doc["irqs"]["intx"]["total"] + doc["irqs"]["msi"]["total"], 0)
        self.assertEqual(doc["irqs"]["dropped"], 0)
        out = self.stats().stdout
        self.assertRegex(out, r"MSI-X 4 \(2 of 9 vectors live; vector 0: 3, vector 3: 1\)")
        self.assertRegex(out, rf"(?m)^BAR0 +16 MiB no +{c.reads} +{c.writes} +{c.posted} ")

        # The same through the server's PID.
        self.assertEqual(self.snap(target=str(self.server.pid))["bar"]["BAR0"]["trapped_reads"], c.reads)

        # The client goes: the session's counters are logged and start again.
        did = (c.reads, c.writes, c.posted)
        c.close()
        self.client = None
        for _ in range(100):
            doc = self.snap()
            if not doc["client"]["connected"]:
                break
            time.sleep(0.05)
        self.assertEqual(doc["sessions_ended"], 1)
        self.assertGreaterEqual(doc["resets"], 1)
        self.assertEqual(doc["dma"]["maps_live"], 0)
        self.assertEqual(doc["bar"]["BAR0"]["trapped_reads"], 0)
        self.assertEqual(doc["irqs"]["msix"]["total"], 0)
        self.log.flush()
        self.log.seek(0)
        self.assertRegex(self.log.read(), r"session stats region=0 trapped_reads=%d trapped_writes=%d "
                         r"posted_writes=%d " % did)

    def test_watch(self):
        self.client = c = Client(self.sock)
        c.version()
        w = subprocess.Popen([BIN, "stats", self.sock, "--watch", "--json", "--count", "2",
                              "--interval", "0.5"], stdout=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 0.8:
            c.read32(0, 0)
            n += 1
        out, _ = w.communicate(timeout=10)
        self.assertEqual(w.returncode, 0)
        lines = [json.loads(x) for x in out.splitlines()]
        self.assertEqual(len(lines), 2)
        for doc in lines:
            self.assertEqual(schema.check(doc, SCHEMA), [])
        bar0 = [r for r in lines[1]["rates"]["regions"] if r["index"] == 0][0]
        self.assertGreater(bar0["trapped_reads_per_s"], 0)
        self.assertGreater(lines[1]["rates"]["interval_s"], 0.3)
        # Human --watch: rates, and the hot-BAR hint when the rate is high.
        w = subprocess.Popen([BIN, "stats", self.sock, "--watch", "--count", "2", "--interval", "0.5"],
                             stdout=subprocess.PIPE, text=True)
        t0, n = time.monotonic(), 0
        while time.monotonic() - t0 < 0.8:
            c.read32(0, 0)
            n += 1
        out, _ = w.communicate(timeout=10)
        self.assertIn("reads/s", out)
        if n / 0.8 > 2 * 5000:  # only where this machine reached the rate for sure
            self.assertIn("poor performance: BAR0 takes", out)

    def test_hot_bar_hint(self):
        """Thousands of trapped accesses a second: "poor performance" at once."""
        self.client = c = Client(self.sock)
        c.version()
        t0 = time.monotonic()
        c.burst_reads(20000)
        took = time.monotonic() - t0
        out = self.stats().stdout
        self.assertRegex(out, r"(?m)^BAR0 +16 MiB no +20000 ")
        if 20000 / (took + 0.5) > 5000:  # the hint's threshold, with the connect time
            self.assertIn("poor performance: BAR0 takes", out)

    def test_server_gone_and_usage(self):
        self.assertEqual(self.stats(ok=False, target=os.path.join(self.tmp.name, "nope")).returncode, 1)
        self.assertEqual(self.stats(ok=False, target=str(os.getpid())).returncode, 1)
        self.assertEqual(subprocess.run([BIN, "stats"], capture_output=True).returncode, 2)
        self.assertEqual(subprocess.run([BIN, "stats", self.sock, "--count", "0"],
                                        capture_output=True).returncode, 2)
        self.server.send_signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(10), 0)
        self.assertFalse(os.path.exists(self.sock + ".ctl"), "SOCKET.ctl left behind")
        self.assertFalse(os.path.exists(self.sock))
        p = self.stats(ok=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is the server running?", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
