#!/usr/bin/env python3
"""End-to-end: enrollments through haproxy while instances of a real cluster fail.

`deploy/cluster.sh up 3` (a master and two clones, each in a network namespace of its own when
this machine allows it), then 1000 enrollments at concurrency 16 through haproxy's HTTPS front,
each with an Idempotency-Key and at most one retry (same key) after a connection error, a
timeout or a 5xx; a key refused because its home directory is the frozen one is asked again every
second until that directory is back (a key is claimed only in its home). Meanwhile instance 2's
ca-server is killed with SIGKILL and started again, instance 3's slapd is frozen (SIGSTOP) for
20 s, and then the slapd of whichever instance is the CRL master is frozen for 20 s (twice its
lease: another instance takes the role over, and the old master must not come back under its old
epoch); certificates are revoked during each fault and after the last; a relying party polls the
CRL through the balancer every 200 ms and checks OCSP for a good and a revoked certificate.

Asserts: every enrollment succeeds within two attempts; the p99 of one attempt stays under
2 x directory.timeout_ms (of a whole enrollment, retry included, under twice that, leaving out
the keys that waited for their home directory); no serial is
issued twice; every issued certificate reaches every instance's directory (30 s allowed); the CRL
number seen through the balancer never decreases; no two different CRLs carry one number (through
the balancer or from any instance); the final CRL lists every revocation; every OCSP answer is right.

Always ends with `cluster.sh down` (finally + atexit; with CA_KEEP_TEST_DIRS set it keeps the
folder and its logs). Python standard library and the openssl and ldapsearch commands only.

Environment: CA_BIN_DIR (ca-server, ca-clone), CA_SOURCE_DIR (the repository); optional
CA_E2E_ENROLLMENTS (1000), CA_E2E_CONCURRENCY (16), CA_E2E_MIN_LOAD_SECONDS (58: the
enrollments are paced over at least this long so that the faults happen during the load),
CA_E2E_NO_NETNS=1 (instances on 127.0.0.1 even where namespaces work).
"""

import atexit
import concurrent.futures
import datetime
import http.client
import json
import math
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

SOURCE_DIR = os.environ.get("CA_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLUSTER_SH = os.path.join(SOURCE_DIR, "deploy", "cluster.sh")
ENROLLMENTS = int(os.environ.get("CA_E2E_ENROLLMENTS", "1000"))
CONCURRENCY = int(os.environ.get("CA_E2E_CONCURRENCY", "16"))
MIN_LOAD_SECONDS = float(os.environ.get("CA_E2E_MIN_LOAD_SECONDS", "58"))
PROFILE = "testServerCert"  # installed by `cluster.sh up --test-profiles`: auth none

# The faults, in seconds from the start of the load.
KILL_INSTANCE, KILL_AT, RESTART_AFTER = 2, 3.0, 5.0
FREEZE_INSTANCE, FREEZE_AT, FREEZE_FOR = 3, 10.0, 20.0
CRL_MASTER_FREEZE_AT, CRL_MASTER_FREEZE_FOR = 32.0, 20.0  # the lease is 10 s in cluster.sh

ATTEMPT_SOCKET_TIMEOUT = 20.0  # well above the bound asserted, so that the bound measures the server
CRL_POLL_SECONDS = 0.2
OCSP_POLL_SECONDS = 1.0
REPLICATION_WAIT_SECONDS = 30.0
HOME_WAIT_SECONDS = 45.0  # how long a key refused for its frozen home directory is asked again (a freeze: 20 s)
# Revocations during the load: while instance 2 is down, while 3's directory is frozen, while the CRL
# master's directory is frozen, and after it thawed.
REVOKE_AT = (6.0, 20.0, 42.0, 55.0)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values, p):
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def run(argv, check=True, timeout=None):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {r.returncode}:\n{r.stdout.decode(errors='replace')}")
    return r


def read_yaml_scalar(path, section, key, default):
    """A `key: value` under a top-level `section:` of a YAML file written by yaml.safe_dump."""
    current = None
    with open(path) as f:
        for line in f:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line.startswith(" "):
                current = line.split(":", 1)[0].strip()
                continue
            if current == section and line.startswith("  ") and not line.startswith("   "):
                k, _, v = line.strip().partition(":")
                if k == key:
                    v = v.strip().strip("'\"")
                    return v if v else default
    return default


def serial_number(text):
    return int(text, 16)


# --- The cluster ---------------------------------------------------------------------------------


class Cluster:
    def __init__(self, work):
        self.work = work
        self.info = None
        self.down_done = False
        self.env = dict(os.environ)
        if "CA_BIN_DIR" not in self.env:
            self.env["CA_BIN_DIR"] = os.path.join(SOURCE_DIR, "build", "bin")

    def sh(self, *args, check=True, timeout=600):
        argv = [CLUSTER_SH, *args, "--work", self.work]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env, timeout=timeout)
        out = r.stdout.decode(errors="replace")
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited with {r.returncode}:\n{out}")
        return r.returncode, out

    def up(self, count):
        args = ["up", str(count), "--test-profiles"]
        if os.environ.get("CA_E2E_NO_NETNS") == "1":
            args.append("--no-netns")
        _, out = self.sh(*args, timeout=900)
        print(out, flush=True)
        with open(os.path.join(self.work, "cluster.json")) as f:
            self.info = json.load(f)

    def down(self, keep):
        if self.down_done:
            return
        self.down_done = True
        args = ["down"] + (["--keep-work"] if keep else [])
        try:
            code, out = self.sh(*args, check=False, timeout=300)
            print(out, flush=True)
            if code != 0:
                print(f"cluster.sh down exited with {code}", flush=True)
        except Exception as e:  # noqa: BLE001 - the clean-up must not hide the test's own failure
            print(f"cluster.sh down failed: {e}", flush=True)

    @property
    def instances(self):
        return self.info["instances"]

    @property
    def ca_file(self):
        return self.info["ca_certificate"]

    def balancer(self, kind):
        u = urllib.parse.urlsplit(self.info["haproxy"][f"{kind}_url"])
        return u.hostname, u.port


# --- HTTP ----------------------------------------------------------------------------------------


def https_request(ca_context, host, port, method, path, body=None, headers=None, timeout=ATTEMPT_SOCKET_TIMEOUT):
    """One request on a fresh connection (haproxy balances connections): (status, body bytes)."""
    conn = http.client.HTTPSConnection(host, port, context=ca_context, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def http_get(host, port, path, timeout=5.0):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def make_csrs(directory, names):
    """One P-256 key and CSR per name (openssl req), a few at a time; returns {name: csr PEM}."""

    def one(name):
        key, csr = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.csr")
        run(["openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", key,
             "-out", csr, "-subj", f"/CN={name}.e2e.example.com"])
        with open(csr) as f:
            return name, f.read()

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, names))


# --- Enrollment with one retry -------------------------------------------------------------------


class Enrollment:
    def __init__(self, index, csr):
        self.index = index
        self.csr = csr
        self.key = str(uuid.uuid4())
        self.attempts = []  # (start offset s, seconds, outcome) where outcome is "ok" or why not
        self.serial = None
        self.certificate = None
        self.error = None
        self.waited_for_home = False  # refused while its key's home directory was frozen

    @property
    def seconds(self):
        return sum(a[1] for a in self.attempts)


def classify(status, body):
    """(ok, retryable, outcome text) of one answer."""
    if status == 201:
        try:
            answer = json.loads(body)
            if answer.get("serial") and answer.get("certificate"):
                return True, False, "ok"
        except ValueError:
            pass
        return False, False, "201 without a certificate"
    text = body[:200].decode(errors="replace").replace("\n", " ")
    if status >= 500:
        return False, True, f"HTTP {status}: {text}"
    return False, False, f"HTTP {status}: {text}"


def enroll(e, ctx, host, port, t0):
    body = json.dumps({"profile_id": PROFILE, "csr": e.csr}).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": e.key}
    for attempt in range(2):
        start = time.monotonic()
        try:
            status, answer = https_request(ctx, host, port, "POST", "/ca/rest/certrequests", body, headers)
            ok, retryable, outcome = classify(status, answer)
        except TimeoutError as x:
            ok, retryable, outcome, answer = False, True, f"timeout: {x}", b""
        except (OSError, http.client.HTTPException) as x:
            ok, retryable, outcome, answer = False, True, f"connection: {type(x).__name__}: {x}", b""
        e.attempts.append((start - t0, time.monotonic() - start, outcome))
        if ok:
            parsed = json.loads(answer)
            e.serial, e.certificate = parsed["serial"], parsed["certificate"]
            return e
        if not retryable or attempt == 1:
            e.error = outcome
            break
    # An Idempotency-Key whose home directory is the frozen one is refused (503) on every instance
    # until that directory is back: a key is claimed only in its home, never elsewhere. Such a
    # client waits (Retry-After) and asks again with the same key.
    home_deadline = time.monotonic() + HOME_WAIT_SECONDS
    while e.error and "home directory" in e.error and time.monotonic() < home_deadline:
        e.waited_for_home = True
        time.sleep(1)
        start = time.monotonic()
        try:
            status, answer = https_request(ctx, host, port, "POST", "/ca/rest/certrequests", body, headers)
            ok, _, outcome = classify(status, answer)
        except (OSError, http.client.HTTPException) as x:
            ok, outcome, answer = False, f"connection: {type(x).__name__}: {x}", b""
        e.attempts.append((start - t0, time.monotonic() - start, outcome))
        if ok:
            parsed = json.loads(answer)
            e.serial, e.certificate, e.error = parsed["serial"], parsed["certificate"], None
        elif "home directory" not in outcome:
            e.error = outcome
    return e


# --- Relying parties -----------------------------------------------------------------------------


def openssl_crl(ca_file, der, scratch, *args):
    """`openssl crl -inform DER ARGS -CAfile ca_file` on a DER CRL; (exit code, output)."""
    fd, path = tempfile.mkstemp(dir=scratch, suffix=".crl")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(der)
        r = run(["openssl", "crl", "-inform", "DER", "-in", path, "-noout", *args, "-CAfile", ca_file], check=False)
    finally:
        os.unlink(path)
    return r.returncode, r.stdout.decode(errors="replace")


def crl_number(ca_file, der, scratch):
    """The CRL number of a DER CRL whose signature checks against ca_file, or (None, why not)."""
    code, out = openssl_crl(ca_file, der, scratch, "-crlnumber")
    if code != 0 or "verify OK" not in out or "crlNumber=" not in out:
        return None, f"openssl crl: {out.strip()[:200]}"
    return int(out.split("crlNumber=", 1)[1].split()[0], 16), ""


def fetch_crls(host, port, timeout=3):
    """The full and the delta CRL one place serves: (status, full DER, delta DER or b"")."""
    status, full = http_get(host, port, "/crl/MasterCRL.crl", timeout=timeout)
    if status != 200:
        return status, b"", b""
    delta_status, delta = http_get(host, port, "/crl/MasterCRL-delta.crl", timeout=timeout)
    return status, full, delta if delta_status == 200 else b""


def newest_crl_number(ca_file, full, delta, scratch):
    """The newest number of a full CRL and its delta (revocations between full CRLs go in deltas)."""
    number, why = crl_number(ca_file, full, scratch)
    if number is None or not delta:
        return number, why
    delta_number, _ = crl_number(ca_file, delta, scratch)
    return max(number, delta_number or 0), ""


CRL_BYTES = {}  # CRL number -> the DER first seen with it, by any watcher


class CrlWatcher(threading.Thread):
    """GET the full and the delta CRL from one place every `interval` s; records the newest number."""

    def __init__(self, name, base_url, ca_file, scratch, t0, interval):
        super().__init__(daemon=True)
        u = urllib.parse.urlsplit(base_url)
        self.name, self.host, self.port = name, u.hostname, u.port
        self.ca_file, self.scratch, self.t0, self.interval = ca_file, scratch, t0, interval
        self.stop_event = threading.Event()
        self.samples = []  # (offset s, CRL number)
        self.errors = []  # (offset s, what)
        self.by_number = {}  # CRL number -> DER: one number, one CRL
        self.conflicts = []  # (offset s, number): two different CRLs carried it

    def run(self):
        while not self.stop_event.wait(self.interval):
            at = time.monotonic() - self.t0
            try:
                status, full, delta = fetch_crls(self.host, self.port)
            except (OSError, http.client.HTTPException) as x:
                self.errors.append((at, f"{type(x).__name__}: {x}"))
                continue
            if status != 200:
                self.errors.append((at, f"HTTP {status}"))
                continue
            number, why = newest_crl_number(self.ca_file, full, delta, self.scratch)
            if number is None:
                self.errors.append((at, why))
            else:
                self.samples.append((at, number))
                self.record(at, full)
                if delta:
                    self.record(at, delta)

    def record(self, at, der):
        number, _ = crl_number(self.ca_file, der, self.scratch)
        if number is None:
            return
        seen = CRL_BYTES.setdefault(number, der)  # shared by every watcher: instances must agree too
        if seen != der:
            self.conflicts.append((at, number))

    def decreases(self):
        return [(a[0], a[1], b[0], b[1]) for a, b in zip(self.samples, self.samples[1:]) if b[1] < a[1]]

    def changes(self):
        """(offset s, number) each time the number served changes."""
        out = []
        for at, n in self.samples:
            if not out or out[-1][1] != n:
                out.append((at, n))
        return out


def crl_entries(ca_file, der, scratch):
    """{serial (int): removeFromCRL (bool)} of a DER CRL, read by `openssl crl -text`."""
    if not der:
        return {}
    _, out = openssl_crl(ca_file, der, scratch, "-text")
    entries, current = {}, None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Serial Number:"):
            current = int(line.split(":", 1)[1].strip(), 16)
            entries[current] = False
        elif line == "Remove From CRL" and current is not None:
            entries[current] = True
        elif line.startswith("Signature Algorithm") and current is not None:
            current = None
    return entries


def delta_base(ca_file, der, scratch):
    """The full CRL number a delta CRL completes (its Delta CRL Indicator), or None."""
    if not der:
        return None
    _, out = openssl_crl(ca_file, der, scratch, "-text")
    lines = [line.strip() for line in out.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("X509v3 Delta CRL Indicator") and i + 1 < len(lines):
            try:
                return int(lines[i + 1], 10)
            except ValueError:
                return None
    return None


def crl_lists(ca_file, full, delta, scratch, serial):
    """True when the full CRL, completed by its delta CRL, lists `serial` (an int). A delta of
    another base (the two GETs straddled a switch to a new CRL) completes nothing: not listed yet."""
    full_number, _ = crl_number(ca_file, full, scratch)
    if delta and delta_base(ca_file, delta, scratch) != full_number:
        return False
    in_delta = crl_entries(ca_file, delta, scratch)
    if serial in in_delta:
        return not in_delta[serial]
    return crl_entries(ca_file, full, scratch).get(serial) is False


def wait_for_one_crl(cluster, scratch, revoked_serial, seconds=30):
    """Waits until every instance serves one CRL, and one that lists `revoked_serial`; its number."""
    deadline = time.monotonic() + seconds
    while True:
        numbers = {}
        for inst in cluster.instances:
            u = urllib.parse.urlsplit(inst["http_url"])
            try:
                status, full, delta = fetch_crls(u.hostname, u.port)
                listed = status == 200 and crl_lists(cluster.ca_file, full, delta, scratch, revoked_serial)
                numbers[inst["name"]] = newest_crl_number(cluster.ca_file, full, delta, scratch)[0] if listed else None
            except (OSError, http.client.HTTPException):
                numbers[inst["name"]] = None
        if len(set(numbers.values())) == 1 and None not in numbers.values():
            return next(iter(numbers.values()))
        if time.monotonic() > deadline:
            raise RuntimeError(f"after {seconds} s the instances do not all serve one CRL listing "
                               f"{revoked_serial:#x} (None: not listed): {numbers}")
        time.sleep(0.5)


def ocsp_status(ca_file, cert_file, url, timeout=5):
    """(status or None, detail) from `openssl ocsp` against url, with the response signature checked."""
    try:
        r = run(["openssl", "ocsp", "-issuer", ca_file, "-cert", cert_file, "-url", url, "-CAfile", ca_file,
                 "-timeout", str(timeout)], check=False, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return None, "openssl ocsp did not finish"
    out = r.stdout.decode(errors="replace")
    status = None
    for line in out.splitlines():
        if line.startswith(cert_file + ":"):
            status = line.split(":", 1)[1].strip()
    if r.returncode != 0 or status is None or "Response verify OK" not in out:
        return None, out.strip().replace("\n", " | ")[:300]
    return status, ""


class OcspWatcher(threading.Thread):
    """`openssl ocsp` through the balancer for a good and a revoked certificate, every second."""

    def __init__(self, cluster, expectations, t0):
        super().__init__(daemon=True)
        host, port = cluster.balancer("http")
        self.url = f"http://{host}:{port}/ocsp"
        self.ca_file = cluster.ca_file
        self.expectations = expectations  # [(cert file, expected status)]
        self.t0 = t0
        self.stop_event = threading.Event()
        self.right = 0
        self.wrong = []  # (offset, file, expected, got)
        self.unanswered = []  # (offset, file, detail)

    def run(self):
        while not self.stop_event.wait(OCSP_POLL_SECONDS):
            for cert_file, expected in self.expectations:
                at = time.monotonic() - self.t0
                got, detail = ocsp_status(self.ca_file, cert_file, self.url)
                if got is None:
                    self.unanswered.append((at, os.path.basename(cert_file), detail))
                elif got != expected:
                    self.wrong.append((at, os.path.basename(cert_file), expected, got))
                else:
                    self.right += 1


# --- Faults --------------------------------------------------------------------------------------


class FaultSchedule(threading.Thread):
    def __init__(self, cluster, t0):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.t0 = t0
        self.events = []  # (offset s, what, seconds it took, ok, output)

    def at(self, offset, what, *args):
        delay = self.t0 + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        start = time.monotonic()
        try:
            code, out = self.cluster.sh(*args, check=False, timeout=300)
        except subprocess.TimeoutExpired:
            code, out = -1, "timed out"
        self.events.append((start - self.t0, what, time.monotonic() - start, code == 0, out.strip()))
        log(f"fault: {what}: {'done' if code == 0 else f'FAILED ({code})'} in {time.monotonic() - start:.1f} s")

    def run(self):
        steps = sorted([
            (KILL_AT, f"SIGKILL instance {KILL_INSTANCE}'s ca-server", ("kill", str(KILL_INSTANCE), "--signal", "KILL")),
            (KILL_AT + RESTART_AFTER, f"start instance {KILL_INSTANCE} again", ("start", str(KILL_INSTANCE))),
            (FREEZE_AT, f"SIGSTOP instance {FREEZE_INSTANCE}'s slapd", ("freeze", str(FREEZE_INSTANCE))),
            (FREEZE_AT + FREEZE_FOR, f"SIGCONT instance {FREEZE_INSTANCE}'s slapd", ("thaw", str(FREEZE_INSTANCE))),
        ])
        # `start` waits for the instance to answer: run each step on its own thread at its time.
        threads = [threading.Thread(target=self.at, args=(offset, what, *args)) for offset, what, args in steps]
        threads.append(threading.Thread(target=self.freeze_crl_master))
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def freeze_crl_master(self):
        """Freezes the directory of the instance that is the CRL master at that moment (asked of each
        instance's /metrics), then thaws it: the role moves, and must not split the CRLs."""
        delay = self.t0 + CRL_MASTER_FREEZE_AT - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        holder = crl_master_instance(self.cluster)
        if holder is None:
            self.events.append((time.monotonic() - self.t0, "find the CRL master", 0.0, False, "no instance says it is"))
            return
        self.crl_master = holder
        self.at(CRL_MASTER_FREEZE_AT, f"SIGSTOP the CRL master's (instance {holder}) slapd", "freeze", str(holder))
        self.at(CRL_MASTER_FREEZE_AT + CRL_MASTER_FREEZE_FOR, f"SIGCONT instance {holder}'s slapd", "thaw", str(holder))


def crl_master_instance(cluster):
    """The number (1-based) of the instance whose /metrics says it holds the CRL lease, or None."""
    for number, inst in enumerate(cluster.instances, start=1):
        u = urllib.parse.urlsplit(inst["http_url"])
        try:
            status, body = http_get(u.hostname, u.port, "/metrics", timeout=3)
        except (OSError, http.client.HTTPException):
            continue
        if status == 200 and any(line.strip() == "ca_crl_master 1" for line in body.decode(errors="replace").splitlines()):
            return number
    return None


class Revoker(threading.Thread):
    """Revokes certificates issued during the load, through the balancer, at REVOKE_AT seconds (one
    while the killed instance is down, one while the directory is frozen): the CRL then changes
    while the faults last, which is what "the CRL number never decreases" has to survive."""

    def __init__(self, agent_ctx, host, port, enrollments, t0):
        super().__init__(daemon=True)
        self.agent_ctx, self.host, self.port, self.enrollments, self.t0 = agent_ctx, host, port, enrollments, t0
        self.revoked = []  # (t, serial text)
        self.failures = []

    def run(self):
        used = set()
        for offset in REVOKE_AT:
            delay = self.t0 + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            target = next((e for e in self.enrollments if e.serial and e.index not in used), None)
            if target is None:
                self.failures.append(f"t={offset} s: nothing issued yet to revoke")
                continue
            used.add(target.index)
            deadline = time.monotonic() + 15
            last = None
            while time.monotonic() < deadline:  # an instance may be down or the record not there yet
                try:
                    status, body = https_request(self.agent_ctx, self.host, self.port, "POST",
                                                 f"/ca/rest/agent/certs/{target.serial}/revoke",
                                                 json.dumps({"reason": "keyCompromise"}).encode(),
                                                 {"Content-Type": "application/json"}, timeout=10)
                except (OSError, http.client.HTTPException) as x:
                    status, body = 0, str(x).encode()
                last = (status, body[:200])
                if status in (200, 409):  # 409: revoked already (an earlier attempt's answer was lost)
                    self.revoked.append((time.monotonic() - self.t0, target.serial))
                    log(f"revoked {target.serial} during the load (t={offset} s)")
                    break
                time.sleep(0.3)
            else:
                self.failures.append(f"t={offset} s: revocation of {target.serial}: {last}")


# --- Directory contents --------------------------------------------------------------------------


def directory_serials(cluster, instance):
    """Every caSerialNumber in one instance's directory, read as its ca-server does (unix socket)."""
    config = instance["config"]
    suffix = read_yaml_scalar(config, "directory", "suffix", "o=pki-ca")
    bind_dn = read_yaml_scalar(config, "directory", "bind_dn", "") or f"cn=Directory Manager,{suffix}"
    url = "ldapi://" + urllib.parse.quote(instance["ldapi_socket"], safe="")
    r = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-o", "nettimeout=10", "-x", "-H", url, "-D", bind_dn, "-y",
             instance["directory_password_file"], "-b", f"ou=certificateRepository,ou=ca,{suffix}", "-s", "one",
             "(objectClass=caCertificateRecord)", "caSerialNumber"], check=False, timeout=60)
    if r.returncode != 0:
        return None, r.stdout.decode(errors="replace").strip()[:300]
    found = set()
    for line in r.stdout.decode().splitlines():
        if line.startswith("caSerialNumber: "):
            found.add(serial_number(line.split(": ", 1)[1]))
    return found, ""


def wait_for_replication(cluster, serials, deadline_seconds):
    """Seconds until every directory holds every serial (or None), and what each one misses."""
    start = time.monotonic()
    missing = {}
    while True:
        missing = {}
        for inst in cluster.instances:
            found, error = directory_serials(cluster, inst)
            missing[inst["name"]] = f"ldapsearch failed: {error}" if found is None else len(serials - found)
        if all(m == 0 for m in missing.values()):
            return time.monotonic() - start, missing
        if time.monotonic() - start > deadline_seconds:
            return None, missing
        time.sleep(1)


def rotation_changes(cluster, t0_wall):
    """haproxy's server state changes from its log: (offset from t0 s, backend/server, UP or DOWN, why)."""
    out = []
    try:
        with open(cluster.info["haproxy"]["log"], errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return out
    for line in lines:
        # 2026-11-30T17:50:27.409446+00:00 Server ca_https_instances/clone1 is DOWN, reason: ...
        words = line.split()
        if len(words) < 5 or words[1] != "Server" or words[3] != "is" or line.startswith("["):
            continue
        try:
            stamp = datetime.datetime.fromisoformat(words[0]).timestamp()
        except ValueError:
            continue
        reason = line.split("reason: ", 1)[1].split(",")[0] if "reason: " in line else ""
        out.append((stamp - t0_wall, words[2], words[4].rstrip(","), reason))
    return out


# --- The test ------------------------------------------------------------------------------------


def main():
    for tool in ("openssl", "ldapsearch", "haproxy", "curl"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            print(f"{tool} is not installed (deploy/install-deps.sh)")
            return 1
    keep = bool(os.environ.get("CA_KEEP_TEST_DIRS"))  # as the C++ tests' TempDir
    scratch = tempfile.mkdtemp(prefix="ca-e2e-")
    cluster = Cluster(os.path.join(scratch, "cluster"))
    failed = True
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
            if failed:
                print("CA_KEEP_TEST_DIRS=1 keeps the cluster's folder and its logs", flush=True)

    atexit.register(clean_up)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wall_start = time.monotonic()
    try:
        failed = run_test(cluster, scratch, wall_start)
        return 1 if failed else 0
    finally:
        clean_up()
        print(f"total time, set-up and clean-up included: {time.monotonic() - wall_start:.0f} s", flush=True)


def run_test(cluster, scratch, wall_start):
    log(f"cluster.sh up 3 in {cluster.work}")
    cluster.up(3)
    setup_seconds = time.monotonic() - wall_start
    timeout_ms = int(read_yaml_scalar(cluster.instances[0]["config"], "directory", "timeout_ms", "3000"))
    attempt_bound = 2 * timeout_ms / 1000
    enrollment_bound = 2 * attempt_bound
    ctx = ssl.create_default_context(cafile=cluster.ca_file)
    host, port = cluster.balancer("https")

    log(f"{ENROLLMENTS + 2} keys and CSRs")
    csr_dir = os.path.join(scratch, "csr")
    os.makedirs(csr_dir)
    names = [f"host{i:04d}" for i in range(ENROLLMENTS)] + ["ocsp-good", "ocsp-revoked"]
    csrs = make_csrs(csr_dir, names)

    # OCSP: a good certificate, and one revoked by the master's agent (through the balancer: TLS
    # passes through, so the agent's client certificate reaches whichever instance answers).
    expectations = []
    for name in ("ocsp-good", "ocsp-revoked"):
        e = enroll(Enrollment(name, csrs[name]), ctx, host, port, time.monotonic())
        if not e.serial:
            raise RuntimeError(f"enrollment of {name} failed: {e.error}")
        path = os.path.join(scratch, f"{name}.pem")
        with open(path, "w") as f:
            f.write(e.certificate)
        expectations.append((path, "good" if name == "ocsp-good" else "revoked", e.serial))
    master = cluster.instances[0]
    agent_ctx = ssl.create_default_context(cafile=cluster.ca_file)
    agent_ctx.load_cert_chain(master["agent_certificate"], master["agent_key"])
    revoked_serial = expectations[1][2]
    for _ in range(100):  # the record may not have reached the answering instance yet (404)
        status, body = https_request(agent_ctx, host, port, "POST", f"/ca/rest/agent/certs/{revoked_serial}/revoke",
                                     json.dumps({"reason": "keyCompromise"}).encode(),
                                     {"Content-Type": "application/json"})
        if status == 200:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"revocation of {revoked_serial}: HTTP {status} {body[:200]!r}")
    log(f"revoked {revoked_serial}; waiting until every instance's OCSP says so")
    deadline = time.monotonic() + 30
    for inst in cluster.instances:
        while True:
            got, detail = ocsp_status(cluster.ca_file, expectations[1][0], inst["http_url"] + "/ocsp")
            if got == "revoked":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{inst['name']} does not answer 'revoked' after 30 s: {got} {detail}")
            time.sleep(0.5)
    ocsp_expectations = [(path, status) for path, status, _ in expectations]
    # The revocation made a new CRL: measure from the moment every instance serves it, so that
    # what the relying party sees during the load is the faults' doing.
    crl_before = wait_for_one_crl(cluster, scratch, serial_number(revoked_serial))
    log(f"every instance serves CRL {crl_before}, which lists {revoked_serial}")

    log(f"{ENROLLMENTS} enrollments, concurrency {CONCURRENCY}, paced over at least {MIN_LOAD_SECONDS:.0f} s; "
        f"faults: SIGKILL instance {KILL_INSTANCE} at {KILL_AT:.0f} s, restart {RESTART_AFTER:.0f} s later; "
        f"SIGSTOP instance {FREEZE_INSTANCE}'s slapd at {FREEZE_AT:.0f} s for {FREEZE_FOR:.0f} s; "
        f"SIGSTOP the CRL master's slapd at {CRL_MASTER_FREEZE_AT:.0f} s for {CRL_MASTER_FREEZE_FOR:.0f} s")
    t0 = time.monotonic()
    t0_wall = time.time()
    log(f"load starts: t=0 is {time.strftime('%H:%M:%S', time.gmtime(t0_wall))}.{int(t0_wall % 1 * 1000):03d} UTC "
        "(the time zone of the ca-server logs)")
    crl = CrlWatcher("haproxy", cluster.info["haproxy"]["http_url"], cluster.ca_file, scratch, t0, CRL_POLL_SECONDS)
    # The same, from each instance directly: not asserted, it tells who served what.
    crl_direct = [CrlWatcher(i["name"], i["http_url"], cluster.ca_file, scratch, t0, 0.5) for i in cluster.instances]
    ocsp = OcspWatcher(cluster, ocsp_expectations, t0)
    faults = FaultSchedule(cluster, t0)
    enrollments = [Enrollment(i, csrs[names[i]]) for i in range(ENROLLMENTS)]
    revoker = Revoker(agent_ctx, host, port, enrollments, t0)
    for t in (crl, *crl_direct, ocsp, faults, revoker):
        t.start()
    spacing = MIN_LOAD_SECONDS / max(1, ENROLLMENTS)

    def paced(e):
        delay = t0 + e.index * spacing - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return enroll(e, ctx, host, port, t0)

    with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        list(pool.map(paced, enrollments))
    load_seconds = time.monotonic() - t0
    log(f"load done in {load_seconds:.1f} s; waiting for the fault schedule to finish")
    faults.join()
    revoker.join()
    # Every revocation made during the faults is in the CRL relying parties get through the balancer.
    lb_http = cluster.balancer("http")
    crl_lists_all, crl_final = False, None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not crl_lists_all:
        try:
            status, full, delta = fetch_crls(*lb_http)
        except OSError:
            status, full, delta = 0, b"", b""
        if status == 200:
            crl_final = newest_crl_number(cluster.ca_file, full, delta, scratch)
            crl_lists_all = all(crl_lists(cluster.ca_file, full, delta, scratch, serial_number(s)) for _, s in revoker.revoked)
        if not crl_lists_all:
            time.sleep(0.5)
    time.sleep(2)  # a few more CRL and OCSP samples after the last fault
    for t in (crl, *crl_direct, ocsp):
        t.stop_event.set()
        t.join()

    # Every attempt, for a closer look (kept with CA_KEEP_TEST_DIRS).
    with open(os.path.join(scratch, "attempts.jsonl"), "w") as f:
        for e in enrollments:
            for start, took, outcome in e.attempts:
                f.write(json.dumps({"enrollment": e.index, "start": round(start, 3), "seconds": round(took, 3),
                                    "outcome": outcome[:200], "serial": e.serial}) + "\n")
    issued = [e for e in enrollments if e.serial]
    serials = [serial_number(e.serial) for e in issued]
    log("waiting for every certificate in every directory")
    replication_seconds, missing = wait_for_replication(cluster, set(serials), REPLICATION_WAIT_SECONDS)

    # --- Figures ---
    attempts = [a for e in enrollments for a in e.attempts]
    attempt_seconds = [a[1] for a in attempts]
    # The latency bound is for enrollments that could be served: not for those whose key waited
    # for its frozen home directory (reported apart, and they must be issued once it is back).
    waited = [e for e in enrollments if e.waited_for_home]
    enrollment_seconds = [e.seconds for e in issued if not e.waited_for_home]
    retried = [e for e in enrollments if len(e.attempts) > 1]
    failed_attempts = {}
    for a in attempts:
        if a[2] != "ok":
            kind = a[2].split(":")[0] if not a[2].startswith("HTTP") else a[2][:8]
            failed_attempts[kind] = failed_attempts.get(kind, 0) + 1
    by_replica = {}
    for s in serials:
        replica = (s >> 64) & 0xFFFF  # bits 64..79 name the issuing replica (docs/ranges.md)
        by_replica[replica] = by_replica.get(replica, 0) + 1
    duplicates = len(serials) - len(set(serials))
    number_duplicates = len(serials) - len({s >> 64 for s in serials})

    def ms(v):
        return f"{v * 1000:.0f} ms"

    print()
    print("=" * 78)
    print("E2E.ClusterFaults: summary")
    print("=" * 78)
    rows = [
        ("mode", f"{cluster.info['mode']}" + (f", subnet {cluster.info['subnet']}" if cluster.info.get("subnet") else "")),
        ("cluster up (3 instances + haproxy)", f"{setup_seconds:.1f} s"),
        ("enrollments issued / asked", f"{len(issued)} / {ENROLLMENTS}"),
        ("load time / throughput", f"{load_seconds:.1f} s / {len(issued) / load_seconds:.1f} per s"),
        ("keys refused while their home directory was frozen, then",
         f"{len(waited)} ({sum(1 for e in waited if e.serial)} issued; longest wait "
         + (ms(max(e.seconds for e in waited)) if waited else "-") + ")"),
        ("enrollments retried (2nd attempt)", f"{len(retried)} ({sum(1 for e in retried if e.serial)} then issued)"),
        ("failed attempts by kind", ", ".join(f"{k}: {v}" for k, v in sorted(failed_attempts.items())) or "none"),
        ("issued per replica ID", ", ".join(f"{k}: {v}" for k, v in sorted(by_replica.items()))),
        ("attempt latency p50 / p95 / p99 / max",
         " / ".join(ms(percentile(attempt_seconds, p)) for p in (50, 95, 99)) + f" / {ms(max(attempt_seconds))}"),
        ("enrollment latency (retry incl.) p50 / p95 / p99 / max",
         " / ".join(ms(percentile(enrollment_seconds, p)) for p in (50, 95, 99))
         + (f" / {ms(max(enrollment_seconds))}" if enrollment_seconds else "")),
        ("bound: attempt p99 < 2 x timeout_ms", f"{ms(attempt_bound)} (directory.timeout_ms {timeout_ms})"),
        ("bound: enrollment p99 < 2 attempts", ms(enrollment_bound)),
        ("duplicate serials / duplicate serial numbers", f"{duplicates} / {number_duplicates}"),
        ("replication: all serials everywhere after",
         f"{replication_seconds:.1f} s" if replication_seconds is not None else f"NOT within {REPLICATION_WAIT_SECONDS:.0f} s"),
        ("missing per directory", ", ".join(f"{k}: {v}" for k, v in missing.items())),
        ("CRL samples / errors / decreases", f"{len(crl.samples)} / {len(crl.errors)} / {len(crl.decreases())}"),
        ("CRLs with one number and other bytes", str(sum(len(w.conflicts) for w in (crl, *crl_direct)))),
        ("CRL master frozen", f"instance {getattr(faults, 'crl_master', '?')} at {CRL_MASTER_FREEZE_AT:.0f} s "
                              f"for {CRL_MASTER_FREEZE_FOR:.0f} s"),
        ("CRL number before the load", str(crl_before)),
        ("CRL numbers through haproxy (changes)", ", ".join(f"{n} at {at:.1f} s" for at, n in crl.changes()) or "none"),
        *[(f"  served by {w.name} directly", ", ".join(f"{n} at {at:.1f} s" for at, n in w.changes())
           + (f" ({len(w.errors)} errors)" if w.errors else "")) for w in crl_direct],
        ("OCSP right / wrong / unanswered", f"{ocsp.right} / {len(ocsp.wrong)} / {len(ocsp.unanswered)}"),
        ("revoked during the load", ", ".join(f"{s} at {t:.1f} s" for t, s in revoker.revoked) or "none"),
        ("final CRL through haproxy lists them all", f"{'yes' if crl_lists_all else 'NO'} (CRL {crl_final})"),
    ]
    width = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print("  faults:")
    for offset, what, took, ok, out in faults.events:
        print(f"    t={offset:5.1f} s  {what:<40} {'ok' if ok else 'FAILED'} ({took:.1f} s)")
        if not ok:
            print("      " + out.replace("\n", "\n      "))

    print("  haproxy rotation (server state changes, t from the start of the load):")
    for offset, server, state, reason in rotation_changes(cluster, t0_wall):
        print(f"    t={offset:5.1f} s  {server:<28} {state:<5} {reason}")

    # Where the slow and failed attempts were, in 5-second buckets of the load.
    buckets = {}
    for start, took, outcome in attempts:
        b = int(start // 5) * 5
        n, slow, bad, worst = buckets.get(b, (0, 0, 0, 0.0))
        buckets[b] = (n + 1, slow + (took > attempt_bound / 2), bad + (outcome != "ok"), max(worst, took))
    print(f"  attempts per 5 s of load, by start time (slow: > {ms(attempt_bound / 2)}):")
    for b in range(0, max(buckets) + 5, 5) if buckets else []:
        n, slow, bad, worst = buckets.get(b, (0, 0, 0, 0.0))
        print(f"    {b:3d}-{b + 5:<3d} s  attempts {n:4d}  failed {bad:3d}  slow {slow:3d}  max {ms(worst) if n else '-'}")

    # --- Assertions ---
    problems = []
    not_issued = [e for e in enrollments if not e.serial]
    if not_issued:
        problems.append(f"{len(not_issued)} enrollment(s) failed after at most one retry (or after waiting for their "
                        f"key's home directory), e.g. "
                        + "; ".join(f"#{e.index}: {[a[2] for a in e.attempts]}" for e in not_issued[:5]))
    p99 = percentile(attempt_seconds, 99)
    if not p99 < attempt_bound:
        slowest = sorted(attempts, key=lambda a: -a[1])[:5]
        problems.append(f"attempt p99 {ms(p99)} is not below {ms(attempt_bound)}; slowest: "
                        + "; ".join(f"t={a[0]:.1f} s {ms(a[1])} {a[2][:80]}" for a in slowest))
    if enrollment_seconds and not percentile(enrollment_seconds, 99) < enrollment_bound:
        problems.append(f"enrollment p99 {ms(percentile(enrollment_seconds, 99))} is not below {ms(enrollment_bound)}")
    if duplicates or number_duplicates:
        problems.append(f"{duplicates} serial(s) issued twice, {number_duplicates} serial number(s) reused")
    if replication_seconds is None:
        problems.append(f"not every certificate reached every directory within {REPLICATION_WAIT_SECONDS:.0f} s: "
                        f"missing {missing}")
    if not crl.samples:
        problems.append(f"no CRL could be read through the balancer: {crl.errors[:3]}")
    for before_at, before, after_at, after in crl.decreases():
        problems.append(f"CRL number went backwards through the balancer: {before} at t={before_at:.1f} s, "
                        f"{after} at t={after_at:.1f} s")
    for watcher in (crl, *crl_direct):
        for at, number in watcher.conflicts:
            problems.append(f"two different CRLs carry the number {number} (seen from {watcher.name} at t={at:.1f} s)")
    if ocsp.wrong:
        problems.append(f"{len(ocsp.wrong)} wrong OCSP answer(s), e.g. {ocsp.wrong[:3]}")
    if revoker.failures:
        problems.append(f"revocations during the load failed: {revoker.failures}")
    if not crl_lists_all:
        problems.append(f"the CRL served through the balancer (number {crl_final}) does not list every certificate "
                        f"revoked during the load: {[s for _, s in revoker.revoked]}")
    if len(crl.changes()) < 2:
        problems.append("the CRL never changed during the load: the revocations did not exercise CRL publication")
    if ocsp.right == 0:
        problems.append(f"no OCSP answer through the balancer: {ocsp.unanswered[:3]}")
    if crl.errors:
        print(f"  CRL fetch errors (not failures by themselves), first ones: {crl.errors[:3]}")
    if ocsp.unanswered:
        print(f"  OCSP requests without an answer (not failures by themselves), first ones: {ocsp.unanswered[:3]}")
    if any(not ok for _, _, _, ok, _ in faults.events):
        problems.append("a fault could not be injected (see the faults above)")

    print()
    if problems:
        print("FAILED:")
        for p in problems:
            print(f"  - {p}")
        print_logs(cluster)
    else:
        print("PASSED")
    sys.stdout.flush()
    return bool(problems)


def print_logs(cluster):
    """What helps to tell why: haproxy's server state changes and the end of each ca-server log."""
    for inst in cluster.instances:
        if os.path.exists(inst["log"]):
            with open(inst["log"], errors="replace") as f:
                lines = f.readlines()
            interesting = [line.rstrip() for line in lines if " error " in line.lower() or "warn" in line.lower()]
            print(f"\n{inst['name']} ({inst['log']}): {len(lines)} lines, last warnings/errors:")
            for line in interesting[-15:]:
                print("  " + line[:240])


if __name__ == "__main__":
    sys.exit(main())
