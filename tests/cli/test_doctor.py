# SPDX-License-Identifier: MIT
"""thunderpass doctor, end to end through the binary ($TP_BIN):

- the healthy model: every stage ok, exit 0, the JSON valid against the
  documented schema (doctor.schema.json, docs/doctor.md), the human output
  in stage order;
- the model with each fault (--model-fault NAME): the right stage fails or
  warns with the right advice, and every other stage is still reported (with
  "skipped: ..." where it needs what failed);
- the QEMU stage against fake QEMUs (too old, no vfio-user-pci, missing) and,
  when the test bed is there, the real QEMU 11;
- the vfio host checks against a fake sysfs tree (wrong driver, group not
  viable, ready);
- bad usage: exit 2.
"""
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import schema  # noqa: E402

BIN = os.environ.get("TP_BIN", "build/thunderpass")
TOP = os.environ.get("TP_TOP", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "doctor.schema.json")) as f:
    SCHEMA = json.load(f)
STAGES = ["host", "identity", "link", "bars", "reset", "dma-irq", "qemu"]

FAKE_QEMU = """#!/bin/sh
# A stand-in QEMU for the doctor's QEMU stage.
case "$1" in
--version) echo "QEMU emulator version {version} (fake)"; echo "Copyright (c) 2003-2026";;
*) echo 'name "pcie-root-port", bus PCI, desc "PCI Express Root Port"'
   {vfio}echo 'name "vfio-user-pci", bus PCI, desc "VFIO over socket PCI device assignment"';;
esac
"""


def backend_built(name):
    out = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
    return any(line.split()[:1] == [name] for line in out.split("backends:")[-1].splitlines())


def write_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, stat.S_IRWXU)
    return path


class Doctor(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="tp-doctor-")
        d = cls.tmp.name
        cls.qemu = write_exe(os.path.join(d, "qemu-good"), FAKE_QEMU.format(version="11.0.0", vfio=""))
        cls.qemu_old = write_exe(os.path.join(d, "qemu-old"), FAKE_QEMU.format(version="9.2.0", vfio=""))
        cls.qemu_novfio = write_exe(os.path.join(d, "qemu-novfio"),
                                    FAKE_QEMU.format(version="10.1.0", vfio=": "))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_doctor(self, *args, qemu=None, json_out=True):
        cmd = [BIN, "doctor"]
        if qemu is not False:
            cmd += ["--qemu", qemu or self.qemu]
        cmd += list(args)
        if json_out:
            cmd.append("--json")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if not json_out:
            return p, None
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            self.fail(f"{cmd}: no JSON on stdout (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
        errors = schema.check(doc, SCHEMA)
        self.assertEqual(errors, [], f"{cmd}: the JSON breaks the schema")
        self.assertEqual([s["stage"] for s in doc["stages"]], STAGES, "every stage, in order")
        self.assertEqual(doc["exit"], p.returncode)
        counts = {k: sum(1 for s in doc["stages"] if s["status"] == k) for k in doc["summary"]}
        self.assertEqual(counts, doc["summary"])
        return p, {s["stage"]: s for s in doc["stages"]}

    def expect(self, st, stage, status, *words):
        s = st[stage]
        self.assertEqual(s["status"], status, f"{stage}: {s}")
        text = s["seen"] + " | " + s["advice"]
        for w in words:
            self.assertIn(w, text, f"{stage}: {w!r} not in {text!r}")

    # ---- the healthy model

    def test_healthy(self):
        p, st = self.run_doctor()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for name in STAGES:
            self.expect(st, name, "ok")
        self.assertEqual(st["link"]["facts"]["current_width"], 4)
        self.assertEqual(st["link"]["facts"]["max_width"], 16)
        self.assertEqual(st["link"]["facts"]["thunderbolt"], "yes")
        self.assertIn("Thunderbolt 3/4 dock", st["link"]["seen"])
        self.assertEqual(st["identity"]["facts"]["chip"], "GB202")
        self.assertEqual(st["identity"]["facts"]["boot0"], "0x1b2000a1")
        self.assertEqual(st["bars"]["facts"]["bar0_mapping"], "trapped")
        self.assertEqual(st["bars"]["facts"]["bar1_mapping"], "mapped")
        self.assertEqual(st["bars"]["facts"]["bar1_size"], 256 << 20)
        self.assertEqual(st["bars"]["facts"]["rebar_bar1_max"], 32 << 30)
        self.assertTrue(st["reset"]["facts"]["no_flr_quirk"])
        self.assertIn("quirk_no_flr", st["reset"]["seen"])
        self.assertEqual(st["dma-irq"]["facts"]["dma"], "ok")
        self.assertEqual(st["dma-irq"]["facts"]["irq"], "ok")
        self.assertTrue(st["qemu"]["facts"]["vfio_user_pci"])
        self.assertEqual(st["qemu"]["facts"]["version"], "11.0.0")

    def test_human(self):
        p, _ = self.run_doctor(json_out=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        firsts = [line.split()[0] for line in p.stdout.splitlines() if line[:1].isalpha()]
        self.assertEqual([w for w in firsts if w in STAGES], STAGES)
        for name in STAGES:
            self.assertRegex(p.stdout, rf"(?m)^{name} +OK ")
        self.assertIn("summary: 7 ok, 0 warn, 0 fail, 0 skipped: nothing failed", p.stdout)

    def test_options_and_name(self):
        p, st = self.run_doctor("--device", "gpu7", "-o", "vram=1G")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(st["host"]["facts"]["device"], "gpu7")
        self.assertEqual(st["bars"]["facts"]["bar1_size"], 1 << 30)

    # ---- faults: the right stage, the right advice, the others still reported

    def test_off_bus(self):
        p, st = self.run_doctor("--model-fault", "off-bus")
        self.assertEqual(p.returncode, 1)
        self.expect(st, "host", "ok", "injected fault: off-bus")
        self.expect(st, "identity", "fail", "all-ones", "fell off the bus", "Re-seat the Thunderbolt cable")
        for name in ("link", "bars", "reset", "dma-irq"):
            self.expect(st, name, "skip", "skipped: device not responding")
        self.expect(st, "qemu", "ok")

    def test_bars_unassigned(self):
        p, st = self.run_doctor("--model-fault", "bars-unassigned")
        self.assertEqual(p.returncode, 1)
        self.expect(st, "identity", "warn", "10de:2b85", "BAR0 has no address")
        self.expect(st, "link", "ok")
        self.expect(st, "bars", "fail", "UNASSIGNED", "BAR0, BAR1, BAR3", "pci=realloc")
        self.assertEqual(st["bars"]["facts"]["bar1_mapping"], "unassigned")
        self.expect(st, "reset", "ok")
        self.expect(st, "dma-irq", "skip", "BAR0 is unassigned")
        self.expect(st, "qemu", "ok")

    def test_link_x1_gen1(self):
        p, st = self.run_doctor("--model-fault", "link-x1-gen1")
        self.assertEqual(p.returncode, 0, "a warning is not a failure")
        self.expect(st, "link", "warn", "x1 at 2.5 GT/s", "Thunderbolt cable", "x4")
        self.assertEqual(st["link"]["facts"]["current_width"], 1)
        self.assertEqual(st["link"]["facts"]["current_speed_gts"], "2.5")
        for name in ("host", "identity", "bars", "reset", "dma-irq", "qemu"):
            self.expect(st, name, "ok")

    def test_dma_broken(self):
        p, st = self.run_doctor("--model-fault", "dma-broken")
        self.assertEqual(p.returncode, 1)
        self.expect(st, "dma-irq", "fail", "DMA fault", "source fault", "IOMMU", "interrupts work")
        self.assertEqual(st["dma-irq"]["facts"]["dma"], "fault")
        for name in ("host", "identity", "link", "bars", "reset", "qemu"):
            self.expect(st, name, "ok")

    def test_no_irq(self):
        p, st = self.run_doctor("--model-fault", "no-irq", "--irq-timeout", "300")
        self.assertEqual(p.returncode, 1)
        self.expect(st, "dma-irq", "fail", "DMA works", "no interrupt", "Interrupts do not reach")
        self.assertEqual(st["dma-irq"]["facts"]["dma"], "ok")
        self.assertEqual(st["dma-irq"]["facts"]["irq"], "none")
        for name in ("host", "identity", "link", "bars", "reset", "qemu"):
            self.expect(st, name, "ok")

    def test_no_flr_return(self):
        p, st = self.run_doctor("--model-fault", "no-flr-return")
        self.assertEqual(p.returncode, 1)
        self.expect(st, "reset", "fail", "0x0001", "did not come back", "Power-cycle",
                    "secondary-bus")
        self.expect(st, "dma-irq", "skip", "did not come back from the reset")
        for name in ("host", "identity", "link", "bars", "qemu"):
            self.expect(st, name, "ok")

    def test_fault_option_spelling(self):
        """-o fault=NAME is the same as --model-fault NAME."""
        p, st = self.run_doctor("-o", "fault=link-x1-gen1")
        self.expect(st, "link", "warn")

    # ---- QEMU

    def test_qemu_old(self):
        p, st = self.run_doctor(qemu=self.qemu_old)
        self.assertEqual(p.returncode, 1)
        self.expect(st, "qemu", "fail", "9.2.0", "older than 10.1", "Install QEMU 10.1")
        self.expect(st, "dma-irq", "ok")

    def test_qemu_without_vfio_user(self):
        p, st = self.run_doctor(qemu=self.qemu_novfio)
        self.assertEqual(p.returncode, 1)
        self.expect(st, "qemu", "fail", "does not list vfio-user-pci", "CONFIG_VFIO_USER_PCI")

    def test_qemu_missing(self):
        p, st = self.run_doctor(qemu=os.path.join(self.tmp.name, "no-such-qemu"))
        self.assertEqual(p.returncode, 1)
        self.expect(st, "qemu", "fail", "no QEMU found", "--qemu")

    def test_qemu_from_path(self):
        bindir = os.path.join(self.tmp.name, "bin")
        os.makedirs(bindir, exist_ok=True)
        write_exe(os.path.join(bindir, "qemu-system-x86_64"), FAKE_QEMU.format(version="10.2.1", vfio=""))
        write_exe(os.path.join(bindir, "qemu-system-aarch64"), FAKE_QEMU.format(version="10.2.1", vfio=""))
        env = dict(os.environ, PATH=bindir + ":" + os.environ.get("PATH", ""))
        p = subprocess.run([BIN, "doctor", "--json"], capture_output=True, text=True, env=env, timeout=60)
        st = {s["stage"]: s for s in json.loads(p.stdout)["stages"]}
        self.expect(st, "qemu", "ok", "10.2.1")
        self.assertTrue(st["qemu"]["facts"]["path"].startswith(bindir))

    def test_qemu_testbed(self):
        real = os.path.join(TOP, ".cache", "testbed", "bin", "qemu-system-x86_64")
        if not os.access(real, os.X_OK):
            self.skipTest("no test bed QEMU (tests/guest/testbed.sh)")
        p, st = self.run_doctor(qemu=real)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.expect(st, "qemu", "ok", "has vfio-user-pci")

    # ---- vfio (planned backend): the host checks against a fake sysfs

    def fake_sysfs(self, drivers):
        root = tempfile.mkdtemp(prefix="sys-", dir=self.tmp.name)
        sysfs = os.path.join(root, "sys")
        for i, (dev, drv) in enumerate(drivers.items()):
            d = os.path.join(sysfs, "devices", "pci0000:00", "0000:00:01.0", dev)
            os.makedirs(d)
            with open(os.path.join(d, "vendor"), "w") as f:
                f.write("0x10de\n")
            with open(os.path.join(d, "device"), "w") as f:
                f.write("0x2b85\n" if i == 0 else "0x22e8\n")
            with open(os.path.join(d, "removable"), "w") as f:
                f.write("removable\n")
            os.makedirs(os.path.join(sysfs, "bus", "pci", "drivers", drv or "none"), exist_ok=True)
            if drv:
                os.symlink(os.path.join(sysfs, "bus", "pci", "drivers", drv), os.path.join(d, "driver"))
            g = os.path.join(sysfs, "kernel", "iommu_groups", "7", "devices")
            os.makedirs(g, exist_ok=True)
            os.symlink(d, os.path.join(g, dev))
            os.symlink(os.path.join(sysfs, "kernel", "iommu_groups", "7"), os.path.join(d, "iommu_group"))
            os.makedirs(os.path.join(sysfs, "bus", "pci", "devices"), exist_ok=True)
            os.symlink(d, os.path.join(sysfs, "bus", "pci", "devices", dev))
        return sysfs

    def run_vfio(self, drivers, device="0000:01:00.0"):
        sysfs = self.fake_sysfs(drivers)
        return self.run_doctor("--backend", "vfio", "--device", device, "--sysfs", sysfs)

    def test_vfio_wrong_driver(self):
        p, st = self.run_vfio({"0000:01:00.0": "nvidia", "0000:01:00.1": "snd_hda_intel"})
        self.assertEqual(p.returncode, 1)
        self.expect(st, "host", "fail", "bound to nvidia", "driverctl set-override 0000:01:00.0 vfio-pci")
        for name in ("identity", "link", "bars", "reset", "dma-irq"):
            self.expect(st, name, "skip", "no backend reached the device")

    def test_vfio_group_not_viable(self):
        p, st = self.run_vfio({"0000:01:00.0": "vfio-pci", "0000:01:00.1": "snd_hda_intel"})
        self.assertEqual(p.returncode, 1)
        self.expect(st, "host", "fail", "IOMMU group 7 is not viable", "0000:01:00.1 is bound to snd_hda_intel")

    def test_vfio_ready(self):
        p, st = self.run_vfio({"0000:01:00.0": "vfio-pci", "0000:01:00.1": None})
        self.assertEqual(st["host"]["facts"]["iommu_group"], "7")
        if backend_built("vfio"):
            # The fake sysfs passes; the real backend then cannot open a device
            # this host does not have, and says so at the same stage.
            self.assertEqual(p.returncode, 1)
            self.expect(st, "host", "fail", "bound to vfio-pci", "group 7 is viable (2 devices)",
                        "the vfio backend could not open the device")
        else:
            self.assertEqual(p.returncode, 0)
            self.expect(st, "host", "warn", "bound to vfio-pci", "group 7 is viable (2 devices)",
                        "not built into this thunderpass")
        for name in ("identity", "link", "bars", "reset", "dma-irq"):
            self.expect(st, name, "skip", "no backend reached the device")

    def test_vfio_no_device(self):
        p, st = self.run_vfio({"0000:01:00.0": "vfio-pci"}, device="0000:09:00.0")
        self.assertEqual(p.returncode, 1)
        self.expect(st, "host", "fail", "no PCI device 0000:09:00.0", "lspci")

    def test_unbuilt_backend(self):
        if backend_built("darwin"):
            self.skipTest("the darwin backend is built here")
        p, st = self.run_doctor("--backend", "darwin")
        self.assertEqual(p.returncode, 1)
        self.expect(st, "host", "fail", "not built", "--backend model")
        self.assertIn("everything", st["host"]["not_checked"])

    def test_proxy(self):
        """Through the proxy backend to a model served by another thunderpass: the
        generic stages and the copy-engine test run on the far device."""
        if not backend_built("proxy"):
            self.skipTest("no proxy backend in this build")
        d = tempfile.mkdtemp(dir=self.tmp.name)
        os.chmod(d, 0o700)
        sock = os.path.join(d, "up.sock")
        up = subprocess.Popen([BIN, "serve", "--socket", sock, "--log-level", "error"])
        try:
            for _ in range(200):
                if os.path.exists(sock):
                    break
                time.sleep(0.02)
            p, st = self.run_doctor("--backend", "proxy", "-o", "socket=" + sock)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.expect(st, "host", "ok", "proxy backend connected")
            self.expect(st, "identity", "ok", "GB202")
            self.expect(st, "link", "ok", "assumed")
            self.expect(st, "bars", "ok")
            self.expect(st, "reset", "ok")
            self.assertIn("the reset itself", st["reset"]["not_checked"])
            self.expect(st, "dma-irq", "ok", "MSI-X vector 0 raised")
        finally:
            up.terminate()
            up.wait(10)
        p, st = self.run_doctor("--backend", "proxy", "-o", "socket=" + sock, "-o", "connect-wait=100")
        self.assertEqual(p.returncode, 1)
        self.expect(st, "host", "fail", "could not open", "Start the other vfio-user server")

    def test_schema_catches(self):
        """The checker is not vacuous: broken documents are refused."""
        p, _ = self.run_doctor()
        good = json.loads(p.stdout)
        breakers = [
            lambda d: d["stages"][0].update(status="bogus"),
            lambda d: d["stages"][1].pop("advice"),
            lambda d: d["stages"][2].update(advice=""),
            lambda d: d["stages"][3]["facts"].update(x=[1]),
            lambda d: d.update(exit=True),
            lambda d: d.update(extra=1),
            lambda d: d["stages"].pop(),
            lambda d: d.update(schema="thunderpass-doctor/2"),
        ]
        for i, brk in enumerate(breakers):
            doc = json.loads(json.dumps(good))
            brk(doc)
            self.assertNotEqual(schema.check(doc, SCHEMA), [], f"breaker {i} went unnoticed")

    # ---- bad usage: 2

    def test_usage(self):
        cases = [
            ["--backend", "nope"],
            ["--model-fault", "nope"],
            ["--model-fault", "off-bus", "-o", "fault=none"],
            ["--backend", "vfio", "--model-fault", "off-bus"],
            ["--backend", "vfio"],
            ["--irq-timeout", "0"],
            ["-o", "novalue"],
            ["stray"],
            ["--no-such-option"],
        ]
        for args in cases:
            p = subprocess.run([BIN, "doctor", "--qemu", self.qemu] + args, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 2, f"{args}: {p.stdout}{p.stderr}")
        p = subprocess.run([BIN, "doctor", "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--model-fault", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
