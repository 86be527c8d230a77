# test_san_harness.py: the ASan hooks of tests/tandemtest.py catch a report
# (a heap overflow in a child process) and name it; skipped (with the reason)
# outside a --enable-sanitizers=address build.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import shutil
import subprocess
import sys

import tandemtest
from tandemtest import TAP

t = TAP()
if not tandemtest.SAN_PRELOAD:
    print("1..0 # SKIP not an ASan build (configure --enable-sanitizers=address)")
    sys.exit(0)

t.ok(tandemtest.SAN_PRELOAD in os.environ.get("LD_PRELOAD", "").split(":"),
     "the script runs with the ASan runtime preloaded", os.environ.get("LD_PRELOAD"))
t.eq(tandemtest.san_reports(), "", "no report before the overflow")
r = subprocess.run([sys.executable, "-c",
                    "import ctypes; c = ctypes.CDLL(None); "
                    "c.malloc.restype = ctypes.c_void_p; p = c.malloc(4); "
                    "c.memset(ctypes.c_void_p(p), 0, 64)"],
                   capture_output=True, text=True)
t.ok(r.returncode != 0, "the overflowing child is stopped", r)
reports = tandemtest.san_reports()
t.contains(reports, "ERROR: AddressSanitizer: heap-buffer-overflow",
           "its report is found in the script's report directory")
t.contains(reports, "WRITE of size 64", "the report names the access")
tandemtest._san_reported.clear()   # expected: the directory may go at exit
r = subprocess.run(["qemu-img", "--version"], capture_output=True, text=True)
t.ok(r.returncode == 0 and shutil.which("qemu-img").startswith(tandemtest.SAN_REPORT_DIR),
     "qemu-img runs through the wrapper without the runtime", r)
t.done()
