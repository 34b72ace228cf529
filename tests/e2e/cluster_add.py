#!/usr/bin/env python3
"""End-to-end: `deploy/cluster.sh add` after the master is lost.

`deploy/cluster.sh up 2` (a master and a clone, each in a network namespace of its own when this
machine allows it). The master's ca-server and slapd are killed for good. `cluster.sh add` then
refuses (nobody who registers clones is running) and says to promote; `ca-clone promote` makes
clone1 the registrar, `ca-clone remove` retires the lost master (the drill in docs/cloning.md:
until then, single-use claims whose home is its directory are refused), and `cluster.sh add` adds
clone2: prepared on clone1, spawned against it, in a namespace of its own, behind haproxy.

Asserts: the refusal names promote; clone2 is in cluster.json and haproxy sees it UP; clone2
answers an enrollment itself, and enrollments through haproxy succeed; what clone2 issued reaches
clone1's directory; clone1's /readyz stays 200 while clone2 joins (a new peer's first change is
not a lag).

Always ends with `cluster.sh down`. Environment as tests/e2e/cluster_faults.py (CA_BIN_DIR,
CA_SOURCE_DIR, CA_KEEP_TEST_DIRS, CA_E2E_NO_NETNS).
"""

import atexit
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_faults as cf  # noqa: E402  (the cluster, HTTP and directory helpers)

REPLICATION_WAIT_SECONDS = 30.0


class ReadyWatcher(threading.Thread):
    """GET /readyz of one instance every 100 ms; remembers every answer that was not 200."""

    def __init__(self, ctx, instance):
        super().__init__(daemon=True)
        self.ctx, self.instance = ctx, instance
        self.stop_event = threading.Event()
        self.polls = 0
        self.not_ready = []

    def run(self):
        while not self.stop_event.is_set():
            try:
                status, body = cf.https_request(self.ctx, self.instance["address"], self.instance["https_port"], "GET",
                                                "/readyz", timeout=3)
            except OSError as e:
                status, body = 0, str(e).encode()
            self.polls += 1
            if status != 200:
                self.not_ready.append(f"{status}: {body[:300].decode(errors='replace')}")
            self.stop_event.wait(0.1)

    def stop(self):
        self.stop_event.set()
        self.join(10)


def enroll_once(ctx, host, port, csr):
    e = cf.Enrollment(0, csr)
    cf.enroll(e, ctx, host, port, time.monotonic())
    return e


def run_test(cluster, scratch):
    failures = []
    cf.log(f"cluster.sh up 2 in {cluster.work}")
    cluster.up(2)
    ctx = ssl.create_default_context(cafile=cluster.ca_file)
    master, clone1 = cluster.instances

    cf.log("the master is lost: its ca-server and its slapd are killed")
    cluster.sh("kill", "1", "--with-directory")

    code, out = cluster.sh("add", check=False)
    if code != 3 or "promote" not in out:
        failures.append(f"add without a running registrar: exit {code}, expected 3 naming promote:\n{out}")

    cf.log("ca-clone promote on clone1")
    ca_clone = os.path.join(cluster.env["CA_BIN_DIR"], "ca-clone")
    argv = [ca_clone, "promote", "--config", clone1["config"]]
    if clone1["namespace"]:
        argv = ["ip", "netns", "exec", clone1["namespace"], *argv]
    print(cf.run(argv, timeout=120).stdout.decode(errors="replace"), flush=True)
    # The drill's next step (docs/cloning.md): the lost master is retired, so that nothing waits for
    # its directory any more (single-use claims whose home it was are refused until then).
    cf.log("ca-clone remove of the lost master")
    # Retiring needs an administrator: the person's certificate `init` made on the first instance.
    argv = [ca_clone, "remove", "--config", clone1["config"], "--instance-id", "master",
            "--cert", master["admin_certificate"], "--key", master["admin_key"]]
    if clone1["namespace"]:
        argv = ["ip", "netns", "exec", clone1["namespace"], *argv]
    print(cf.run(argv, timeout=120).stdout.decode(errors="replace"), flush=True)

    watcher = ReadyWatcher(ctx, clone1)
    watcher.start()
    cf.log("cluster.sh add")
    started = time.monotonic()
    try:
        _, out = cluster.sh("add", timeout=600)
    finally:
        watcher.stop()
    print(out, flush=True)
    cf.log(f"add took {time.monotonic() - started:.1f} s")
    with open(os.path.join(cluster.work, "cluster.json")) as f:
        cluster.info = json.load(f)
    names = [i["name"] for i in cluster.instances]
    if names != ["master", "clone1", "clone2"]:
        return failures + [f"cluster.json lists {names} after add"]
    clone2 = cluster.instances[2]
    if "registered with clone1" not in out:
        failures.append("add did not register the new clone with the promoted clone1")
    if clone1["namespace"] and (not clone2["namespace"] or clone2["namespace"] == clone1["namespace"]):
        failures.append(f"clone2 is not in a namespace of its own: {clone2['namespace']}")
    if watcher.not_ready:
        failures.append(f"clone1 was not ready {len(watcher.not_ready)} time(s) of {watcher.polls} while clone2 "
                        f"joined: {watcher.not_ready[:3]}")
    else:
        cf.log(f"clone1 stayed ready: {watcher.polls} polls of /readyz")

    csr_dir = os.path.join(scratch, "csr")
    os.makedirs(csr_dir)
    csrs = cf.make_csrs(csr_dir, ["direct"] + [f"balanced{i}" for i in range(6)])
    issued = []
    direct = enroll_once(ctx, clone2["address"], clone2["https_port"], csrs["direct"])
    if direct.error:
        failures.append(f"clone2 did not issue: {direct.error}")
    else:
        issued.append(cf.serial_number(direct.serial))
    host, port = cluster.balancer("https")
    for i in range(6):
        e = enroll_once(ctx, host, port, csrs[f"balanced{i}"])
        if e.error:
            failures.append(f"enrollment {i} through haproxy: {e.error}")
        else:
            issued.append(cf.serial_number(e.serial))

    # haproxy names the client in a PROXY v2 header: the instances log the client (127.0.0.1, where
    # this test runs), not haproxy's own address on the bridge, for the enrollments it carried.
    if clone1["namespace"]:
        time.sleep(1.5)  # the access log is written at least once a second
        peers = set()
        for inst in (clone1, clone2):
            path = os.path.join(inst["dir"], "logs", "access.log")
            if os.path.exists(path):
                with open(path) as f:
                    for line in f:
                        entry = json.loads(line)
                        if entry.get("path") == "/ca/rest/certrequests":
                            peers.add(entry.get("peer", ""))
        if not any(p.startswith("127.0.0.1") for p in peers):
            failures.append(f"no enrollment through haproxy was logged with the client's address: peers {sorted(peers)}")
        else:
            cf.log(f"enrollments logged with their clients' addresses: {sorted(peers)}")

    # Every certificate reaches the directories of both running instances (the mesh).
    deadline = time.monotonic() + REPLICATION_WAIT_SECONDS
    while True:
        missing = {}
        for inst in (clone1, clone2):
            found, error = cf.directory_serials(cluster, inst)
            missing[inst["name"]] = error if found is None else len(set(issued) - found)
        if all(m == 0 for m in missing.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    if any(m != 0 for m in missing.values()):
        failures.append(f"certificates missing after {REPLICATION_WAIT_SECONDS:.0f} s: {missing}")
    else:
        cf.log(f"{len(issued)} certificates in both directories")
    return failures


def main():
    for tool in ("openssl", "ldapsearch", "haproxy", "curl"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            print(f"{tool} is not installed (deploy/install-deps.sh)")
            return 1
    keep = bool(os.environ.get("CA_KEEP_TEST_DIRS"))
    scratch = tempfile.mkdtemp(prefix="ca-e2e-add-")
    cluster = cf.Cluster(os.path.join(scratch, "cluster"))
    cleaned = False

    def clean_up():
        nonlocal cleaned
        if cleaned:
            return
        cleaned = True
        cluster.down(keep)
        if keep:
            print(f"kept {scratch} (logs in {cluster.work}/logs)", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    atexit.register(clean_up)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wall_start = time.monotonic()
    failures = ["the test did not finish"]
    try:
        failures = run_test(cluster, scratch)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        failures = [str(e)]
    finally:
        if failures and cluster.info:
            cf.print_logs(cluster)
        clean_up()
        print(f"total time, set-up and clean-up included: {time.monotonic() - wall_start:.0f} s", flush=True)
    for f in failures:
        print(f"FAILED: {f}", flush=True)
    print("PASSED" if not failures else f"{len(failures)} failure(s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
