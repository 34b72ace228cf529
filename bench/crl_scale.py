#!/usr/bin/env python3
"""What one revocation burst costs with N revoked certificates and 3 instances.

The CRL master publishes a new CRL after every (debounced) burst of revocations, stores it in the
directory entry cn=MasterCRL,ou=crlIssuingPoints,ou=ca,o=pki-ca, and that entry replicates to every
directory. This measures, for the ca-server binaries in --bin, what one burst costs once the CA
has --revoked revoked certificates:

  1. `deploy/cluster.sh up 3 --test-profiles` in a folder under /tmp (network namespaces when
     possible), with the binaries of --bin (CA_BIN_DIR); then crl.update_interval_seconds: 86400
     (no scheduled full CRL during the run) and crl.lease_seconds: 30 (the product's default;
     cluster.sh sets 10 for failover drills) on every instance, and a restart;
  2. seeds --revoked caCertificateRecord entries with caCertStatus REVOKED into instance 1's
     directory with `ldapadd -c` (--streams processes in parallel, as the directory manager, over
     its unix socket), every record carrying the DER of one certificate the CA really issued and a
     16-byte serial 0x7f... far above the serials the CA issues; waits until every directory holds
     them (a binary search per ldapadd stream, then one count per directory);
  3. restarts the ca-servers (the CRL lease holder first), so that the CRL master loads the revoked
     index, and waits until every instance serves one full CRL with >= N entries;
  4. measures the quiet byte rates and the cost of one renewal of the CRL master's lease (it lives
     in the CRL entry, which replication carries whole), then runs --bursts bursts, each started
     just after a lease renewal: revoke --burst-size certificates (enrolled before the seeding)
     through the agent API on the CRL master, poll /crl/MasterCRL-delta.crl (and the full CRL's
     ETag) of every instance over plain HTTP until each lists them, wait until the byte counters
     settle.

Per burst: time from each revocation's HTTP 200 until the serial is served (per instance, max);
pages each slapd dirtied (write_bytes of /proc/<slapd>/io, after an fdatasync of its data.mdb);
bytes each non-master instance received (host side of its veth in namespace mode; the slapd's
rchar, also in the JSON, otherwise); the sizes of the full and delta CRL served; whether the full
CRL's ETag changed. Every instance writes a heartbeat twice a second, replicated everywhere, so
byte figures are given net of the quiet rate measured before the bursts.

  bench/crl_scale.py --bin ../before/bin --revoked 1000000 --json bench/results/crl_scale_before.json
  bench/crl_scale.py --compare bench/results/crl_scale_before.json bench/results/crl_scale_after.json

Progress goes to stderr, the table to stdout. The cluster is removed on exit (also on failure and
Ctrl-C) unless --keep. Needs root for namespaces (else --no-netns is implied by cluster.sh),
haproxy, slapd, ldapadd/ldapsearch, openssl, python3-yaml.
"""
import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mesh_replication as mesh  # noqa: E402  (cluster.sh driving, enrollment, directory access)

CLUSTER = mesh.CLUSTER
run = mesh.run
SEED_PREFIX = 0x7F  # high byte of every seeded serial; the CA's own serials are far below
SEED_ISSUER = "crl-scale-seed"  # caIssuedBy of seeded records
UPDATE_INTERVAL = 86400  # crl.update_interval_seconds during the measurement (= default validity)
LEASE_SECONDS = 30  # crl.lease_seconds: the product's default (cluster.sh sets 10 for failover drills)
FULL, DELTA = "/crl/MasterCRL.crl", "/crl/MasterCRL-delta.crl"
CRL_ENTRY = f"cn=MasterCRL,ou=crlIssuingPoints,ou=ca,{mesh.SUFFIX}"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- DER: just enough to read serials out of a CRL ----------------------------------------------

def _tlv(der, pos):
    """(tag, start of contents, end of contents) of the DER element at pos."""
    tag = der[pos]
    n = der[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(der[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n


def crl_entries(der):
    """(start, end) of revokedCertificates' contents in a DER CRL (empty range when absent)."""
    _, pos, _ = _tlv(der, 0)  # CertificateList
    _, pos, tbs_end = _tlv(der, pos)  # TBSCertList
    tag, _, end = _tlv(der, pos)
    if tag == 0x02:  # version
        pos = end
    for _ in range(3):  # signature, issuer, thisUpdate
        pos = _tlv(der, pos)[2]
    tag, _, end = _tlv(der, pos) if pos < tbs_end else (None, 0, 0)
    if tag in (0x17, 0x18):  # nextUpdate
        pos = end
    tag, start, end = _tlv(der, pos) if pos < tbs_end else (None, 0, 0)
    return (start, end) if tag == 0x30 else (0, 0)


def crl_serials(der):
    """Every serial number (int) a DER CRL lists."""
    pos, end = crl_entries(der)
    out = []
    while pos < end:
        _, cpos, cend = _tlv(der, pos)
        _, spos, send = _tlv(der, cpos)
        out.append(int.from_bytes(der[spos:send], "big", signed=True))
        pos = cend
    return out


def crl_entry_count(der):
    pos, end = crl_entries(der)
    n = 0
    while pos < end:
        pos = _tlv(der, pos)[2]
        n += 1
    return n


# --- The cluster -------------------------------------------------------------------------------

class Cluster:
    """A cluster made by deploy/cluster.sh in `work`, with the binaries in `bin_dir`."""

    def __init__(self, work, bin_dir, no_netns, keep):
        self.work, self.keep, self.no_netns = work, keep, no_netns
        self.env = dict(os.environ, CA_BIN_DIR=bin_dir)
        self.info = None

    def cluster_sh(self, *args, check=True):
        r = run([CLUSTER, *args, "--work", self.work], env=self.env)
        if check and r.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(args)} failed:\n{r.stdout.decode(errors='replace')[-3000:]}")
        return r

    def up(self, size):
        self.cluster_sh("up", str(size), "--test-profiles", *(["--no-netns"] if self.no_netns else []))
        with open(os.path.join(self.work, "cluster.json")) as f:
            self.info = json.load(f)
        return self.info

    def down(self):
        r = self.cluster_sh("down", *(["--keep-work"] if self.keep else []), check=False)
        if r.returncode != 0:
            log(f"cluster.sh down exited {r.returncode}:\n{r.stdout.decode(errors='replace')[-2000:]}")

    @property
    def instances(self):
        return self.info["instances"]

    def server_pid(self, inst):
        return read_pid(inst["pid_file"], inst["config"])

    def slapd_pid(self, inst):
        return read_pid(inst["slapd_pid_file"], os.path.join(inst["dir"], "slapd", "slapd.d"))

    def set_crl_options(self, **options):
        """Sets crl.<key> in every instance's configuration (read at the next start)."""
        for inst in self.instances:
            with open(inst["config"]) as f:
                c = yaml.safe_load(f)
            c.setdefault("crl", {}).update(options)
            with open(inst["config"], "w") as f:
                f.write("# crl options set by bench/crl_scale.py (the comments of the original are gone).\n")
                yaml.safe_dump(c, f, sort_keys=False)

    def stop(self, inst, timeout=120):
        pid = self.server_pid(inst)
        if not pid:
            return
        self.cluster_sh("kill", str(inst["index"]), "--signal", "TERM")
        deadline = time.monotonic() + timeout
        while self.server_pid(inst) == pid or self.slapd_pid(inst):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{inst['name']} did not stop within {timeout} s of SIGTERM")
            time.sleep(0.2)

    def start(self, inst):
        self.cluster_sh("start", str(inst["index"]), "--no-wait")


def read_pid(path, needle):
    """The PID in `path` if that process runs a command line naming `needle` (as cluster.sh checks)."""
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return pid if needle in cmdline and state not in ("Z", "X") else None


# --- HTTP --------------------------------------------------------------------------------------

class CrlClient:
    """Conditional GETs of one instance's CRLs over plain HTTP, on one keep-alive connection."""

    def __init__(self, inst):
        self.inst = inst
        self.conn = None

    def get(self, path, etag=None, body=True, timeout=60):
        """(status, etag, content length, body or None). With body=False a 200's body is not read
        (the connection is closed instead): for watching a large CRL's ETag."""
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.inst["address"], self.inst["http_port"], timeout=timeout)
                self.conn.request("GET", path, headers={"If-None-Match": etag} if etag else {})
                r = self.conn.getresponse()
                length = int(r.getheader("Content-Length") or 0)
                tag = r.getheader("ETag")
                if r.status == 200 and not body:
                    self.close()
                    return r.status, tag, length, None
                data = r.read()
                return r.status, tag, length, data if r.status == 200 else None
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def etag(self, path):
        """The ETag of what is served at path, without its body (If-None-Match: * gets a 304)."""
        try:
            return self.get(path, "*", body=False)[1]
        except (OSError, http.client.HTTPException):
            return None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def full_etag(inst):
    c = CrlClient(inst)
    try:
        return c.etag(FULL)
    finally:
        c.close()


def metric(inst, name):
    try:
        c = http.client.HTTPConnection(inst["address"], inst["http_port"], timeout=5)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
    except (OSError, http.client.HTTPException):
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def agent_context(info):
    master = info["instances"][0]
    ctx = ssl.create_default_context(cafile=info["ca_certificate"])
    ctx.check_hostname = False
    ctx.load_cert_chain(master["agent_certificate"], master["agent_key"])
    return ctx


def revoke(inst, ctx, serial_hex):
    """Revokes through the agent API; returns the monotonic time of the 200."""
    c = http.client.HTTPSConnection(inst["address"], inst["https_port"], context=ctx, timeout=60)
    try:
        c.request("POST", f"/ca/rest/agent/certs/{serial_hex}/revoke", body=json.dumps({"reason": "keyCompromise"}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        t = time.monotonic()
        if r.status != 200:
            raise RuntimeError(f"revoke {serial_hex}: HTTP {r.status} {data[:200]!r}")
        return t
    finally:
        c.close()


# --- Seeding -----------------------------------------------------------------------------------

def _mix(x):
    """splitmix64: the pseudo-random bits of seeded record i, recomputable for any i."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def seed_serial(stream, i):
    """16-byte serial (127 bits, as crl_bench's): 0x7f, stream, 48-bit index, 64 random bits."""
    return f"{SEED_PREFIX:02x}{stream:02x}{i:012x}{_mix(stream << 48 | i):016x}"


# Reasons as crl_bench.cpp draws them (30 % unspecified: no reasonCode in the CRL entry).
REASONS = [(30, 0), (15, 1), (2, 2), (15, 3), (25, 4), (13, 5)]


def seed_ldif(stream, i, cert_b64, subject, issuer, now):
    serial = seed_serial(stream, i)
    r = _mix(~(stream << 48 | i) & 0xFFFFFFFFFFFFFFFF)
    pick, reason = r % 100, 0
    for weight, code in REASONS:
        if pick < weight:
            reason = code
            break
        pick -= weight
    revoked = now - 3600 - (r >> 8) % (365 * 86400)
    gt = lambda t: time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))
    lines = [
        f"dn: cn={serial},{mesh.CERTIFICATES}",
        "objectClass: caCertificateRecord",
        f"cn: {serial}",
        f"caSerialNumber: {serial:0>40}",
        "caCertStatus: REVOKED",
        f"userCertificate;binary:: {cert_b64}",
        f"caSubjectDN: {subject}",
        f"caIssuerDN: {issuer}",
        f"caNotBefore: {gt(revoked - 86400)}",
        f"caNotAfter: {gt(now + 365 * 86400)}",
        f"caIssuedAt: {gt(revoked - 86400)}",
        f"caIssuedBy: {SEED_ISSUER}",
        "caProfileId: testServerCert",
        f"caRevokedOn: {gt(revoked)}",
        f"caRevocationReason: {reason}",
        "caRevokedBy: bench/crl_scale.py",
        # In the past, as for any old revocation: the CRL master's refresh (caModifiedAt >= last
        # refresh - 5 s) does not pick these up one poll at a time; the restart loads them all.
        f"caModifiedAt: {gt(revoked)}",
    ]
    if reason == 1 and r & 1:
        lines.append(f"caInvalidityDate: {gt(revoked - 86400)}")
    return "\n".join(lines) + "\n\n"


def stream_sizes(n, streams):
    return [n // streams + (1 if s < n % streams else 0) for s in range(streams)]


def seeded_prefix(inst, stream, size):
    """How many of stream's records (added in order) the directory holds: a binary search on cn."""
    def present(i):
        r = run(["ldapsearch", "-LLL", *mesh.directory_args(inst), "-b", mesh.CERTIFICATES, "-s", "one",
                 f"(cn={seed_serial(stream, i)})", "1.1"])
        return b"dn:" in r.stdout
    lo, hi = 0, size  # records [0, lo) are there, [hi, size) are not
    if size and present(size - 1):
        return size
    while lo < hi:
        mid = (lo + hi) // 2
        if present(mid):
            lo = mid + 1
        else:
            hi = mid
    return lo


def count_revoked(inst):
    return mesh.count_records(inst, "(&(objectClass=caCertificateRecord)(caCertStatus=REVOKED))")


def seed(cluster, n, streams, cert_der, subject, issuer, timeout):
    """Adds n revoked records to instance 1's directory, then waits until every directory holds
    them. Returns timings."""
    first = cluster.instances[0]
    cert_b64 = base64.b64encode(cert_der).decode()
    now = int(time.time())
    sizes = stream_sizes(n, streams)
    added = [0] * streams
    errors = []
    procs = []
    t0 = time.monotonic()

    def feed(s, proc):
        try:
            for i in range(sizes[s]):
                proc.stdin.write(seed_ldif(s, i, cert_b64, subject, issuer, now).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass

    def count_output(s, proc):
        for line in proc.stdout:
            if line.startswith(b"adding new entry"):
                added[s] += 1

    def collect_errors(proc):
        for line in proc.stderr:
            if len(errors) < 20:
                errors.append(line.decode(errors="replace").rstrip())
            elif len(errors) == 20:
                errors.append("...")

    threads = []
    for s in range(streams):
        p = subprocess.Popen(["ldapadd", "-c", *mesh.directory_args(first)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
        for target, args in ((feed, (s, p)), (count_output, (s, p)), (collect_errors, (p,))):
            t = threading.Thread(target=target, args=args, daemon=True)
            t.start()
            threads.append(t)
    try:
        last = 0
        while any(p.poll() is None for p in procs):
            time.sleep(1)
            if time.monotonic() - last >= 10:
                last = time.monotonic()
                el = last - t0
                done = sum(added)
                log(f"seeding: {done:,}/{n:,} sent to {first['name']} in {el:.0f} s ({done / max(el, 1e-9):,.0f}/s)")
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"seeding did not finish within {timeout} s ({sum(added):,} of {n:,} added)")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for t in threads:
        t.join(timeout=5)
    t_added = time.monotonic() - t0
    failed = [p.returncode for p in procs if p.returncode != 0]
    if failed:
        log(f"ldapadd exited {failed}; its first errors:\n  " + "\n  ".join(errors))
    log(f"seeding: ldapadd done in {t_added:.0f} s ({n / max(t_added, 1e-9):,.0f} adds/s)")

    # Replication: each stream's records arrive in order, so a binary search per stream tells
    # how far each directory is; then one exact count per directory.
    while True:
        behind = {}
        for inst in cluster.instances:
            have = sum(seeded_prefix(inst, s, sizes[s]) for s in range(streams))
            if have < n:
                behind[inst["name"]] = have
        el = time.monotonic() - t0
        if not behind:
            break
        log("replication: " + ", ".join(f"{k} holds {v:,}/{n:,}" for k, v in behind.items()) + f" ({el:.0f} s)")
        if el > timeout:
            raise RuntimeError(f"replication of the seeded records did not finish within {timeout} s: {behind}")
        time.sleep(5)
    t_replicated = time.monotonic() - t0
    log(f"seeding: every directory holds the last seeded record after {t_replicated:.0f} s; counting")
    counts = {}
    for inst in cluster.instances:
        tc = time.monotonic()
        counts[inst["name"]] = count_revoked(inst)
        log(f"  {inst['name']}: {counts[inst['name']]:,} revoked records (search {time.monotonic() - tc:.1f} s)")
    short = {k: v for k, v in counts.items() if v < n}
    if short:
        raise RuntimeError(f"directories hold fewer than {n:,} revoked records: {short}")
    return {"records": n, "streams": streams, "ldapadd_seconds": round(t_added, 1),
            "replicated_seconds": round(t_replicated, 1), "adds_per_second": round(n / max(t_added, 1e-9)),
            "revoked_counts": counts, "ldapadd_errors": errors[:20]}


# --- Restart and first CRL ---------------------------------------------------------------------

def wait_served(cluster, inst, n, old_etag, want_etag, timeout):
    """Waits until inst serves a full CRL with >= n entries: the one tagged want_etag, or any
    but old_etag when want_etag is None. Returns (etag, size, entries)."""
    client = CrlClient(inst)
    deadline = time.monotonic() + timeout
    etag, next_note = None, time.monotonic() + 30
    try:
        while True:
            if not cluster.server_pid(inst):
                raise RuntimeError(f"{inst['name']}'s ca-server exited; see {inst['log']}")
            try:
                status, tag, _, der = client.get(FULL, etag)
            except (OSError, http.client.HTTPException):
                status, tag, der = None, None, None
            if status == 200:
                etag = tag
                count = crl_entry_count(der)
                if count >= n and (tag == want_etag if want_etag else tag != old_etag):
                    return tag, len(der), count
                log(f"  {inst['name']} serves {tag} with {count:,} entries; waiting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{inst['name']} serves no CRL with >= {n:,} entries after {timeout} s")
            if time.monotonic() > next_note:
                log(f"  still waiting for {inst['name']}'s CRL (HTTP {status})")
                next_note += 30
            time.sleep(1)
    finally:
        client.close()


def current_lease(inst):
    """The CRL lease as the directory holds it: the epoch entry (cn=epoch-N below the issuing
    point) with the highest epoch, as {"caCrlMaster": ..., "caLeaseExpires": ..., "caCrlEpoch": N}."""
    r = run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", *mesh.directory_args(inst), "-b", CRL_ENTRY, "-s", "one",
             "(&(caCrlMaster=*)(caCrlEpoch=*))", "caCrlMaster", "caLeaseExpires", "caCrlEpoch"])
    best, entry = None, {}
    for line in r.stdout.decode(errors="replace").splitlines() + [""]:
        if not line.strip():
            if entry.get("caCrlEpoch") and (best is None or int(entry["caCrlEpoch"]) > int(best["caCrlEpoch"])):
                best = entry
            entry = {}
            continue
        key, _, value = line.partition(":")
        entry[key] = value.strip()
    return best or {}


def lease_holder(inst):
    return current_lease(inst).get("caCrlMaster")


def crl_masters(cluster):
    return [i["name"] for i in cluster.instances if metric(i, "ca_crl_master") == 1]


def restart_all(cluster, n, timeout):
    """Restarts every ca-server; returns the CRL master's instance and timings.

    The instance that held the CRL lease stops last and starts first, and the others only once it
    serves its new CRL (with >= n entries): a restarted instance reads the lease from its own
    directory before replication has caught up, and one that finds its own (released) lease there
    carries on as CRL master, next to the one that took the lease meanwhile (seen with these
    binaries: two masters, both publishing CRL 5)."""
    holder = lease_holder(cluster.instances[0])
    order = sorted(cluster.instances, key=lambda i: i["name"] != holder)
    etags = {inst["name"]: full_etag(inst) for inst in cluster.instances}
    for inst in reversed(order):
        log(f"stopping {inst['name']}")
        cluster.stop(inst)
    out, want = {}, None
    for inst in order:
        t0 = time.monotonic()
        cluster.start(inst)
        log(f"started {inst['name']}; waiting until it serves a new CRL with >= {n:,} entries")
        etag, size, count = wait_served(cluster, inst, n, etags[inst["name"]], want, timeout)
        want = want or etag
        out[inst["name"]] = {"seconds": round(time.monotonic() - t0, 1), "etag": etag, "bytes": size, "entries": count}
        log(f"  {inst['name']} serves {etag}: {count:,} entries, {size:,} bytes, {out[inst['name']]['seconds']} s after its start")
    # One CRL master, twice in a row 2 s apart.
    deadline, last = time.monotonic() + 120, None
    while True:
        masters = crl_masters(cluster)
        if len(masters) == 1 and masters == last:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no single CRL master after the restart: {masters}")
        last = masters
        time.sleep(2)
    master = next(i for i in cluster.instances if i["name"] == masters[0])
    return master, {"lease_holder_before": holder, "order": [i["name"] for i in order], "instances": out}


# --- Byte counters -----------------------------------------------------------------------------
#
# write_bytes of /proc/<pid>/io counts a page when the process makes it dirty, not again while it
# stays dirty. The directories run without fsync (directory.durability: group), so pages written a
# moment ago are usually still dirty and a rewrite of them would not count. Each measuring window
# therefore starts with an fdatasync of every data.mdb (pages clean): from then on every page
# slapd writes counts once, which is what the disk will get.

KEYS = ("slapd_write_bytes", "slapd_rchar", "ns_rx_bytes")


def proc_io(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                k, v = line.split(":")
                out[k] = int(v)
    except (OSError, ValueError, TypeError):
        return None
    return out


def counters(cluster):
    """Per instance: pages its slapd dirtied, bytes its slapd read (sockets included: replication
    and its own ca-server's requests), and bytes its namespace received (veth; netns mode only)."""
    snap = []
    for inst in cluster.instances:
        io = proc_io(cluster.slapd_pid(inst)) or {}
        snap.append({"slapd_write_bytes": io.get("write_bytes"), "slapd_rchar": io.get("rchar"),
                     "ns_rx_bytes": mesh.rx_bytes(cluster.info, inst["index"])})
    return snap


def clean_snapshot(cluster):
    """fdatasync of every directory's data file, then (time, counters)."""
    for inst in cluster.instances:
        fd = os.open(os.path.join(inst["dir"], "slapd", "data", "data.mdb"), os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
    return time.monotonic(), counters(cluster)


def diff(after, before):
    return [{k: (a[k] - b[k] if a[k] is not None and b[k] is not None else None) for k in KEYS}
            for a, b in zip(after, before)]


# What a counter may move by in a second once things have settled. Heartbeats alone move the
# received bytes by ~16 kB/s; pages dirtied after an fdatasync by up to ~0.6 MB/s (every commit
# takes fresh pages).
SETTLED = {"slapd_write_bytes": 2 << 20, "slapd_rchar": 256 << 10, "ns_rx_bytes": 256 << 10}


def settle(cluster, quiet=1.0, timeout=120):
    """Waits until no counter moved more than SETTLED over `quiet` seconds; returns (time, counters)."""
    history = [(time.monotonic(), counters(cluster))]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = time.monotonic()
        history.append((now, counters(cluster)))
        old = [h for h in history if h[0] <= now - quiet]
        if old and all(v is None or v <= SETTLED[k] * quiet
                       for d in diff(history[-1][1], old[-1][1]) for k, v in d.items()):
            return history[-1]
    log(f"warning: the byte counters did not settle within {timeout} s")
    return history[-1]


# --- The CRL master lease ----------------------------------------------------------------------
#
# The lease lives in one entry per epoch below the issuing point (cn=epoch-N: caCrlMaster,
# caLeaseExpires), apart from the CRLs; the master renews its epoch's entry every lease_seconds / 3.
# Bursts are started just after a renewal, so that their windows hold none; the cost of a renewal is
# measured on its own.

def lease_expiry(inst):
    return current_lease(inst).get("caLeaseExpires")


def wait_renewal(master, timeout):
    """Waits until the lease's expiry changes; returns the new value (None on timeout)."""
    first = lease_expiry(master)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = lease_expiry(master)
        if now != first:
            return now
    return None


def idle_costs(cluster, master, cycles=2):
    """Counters' rate between lease renewals, and the cost of one renewal (net of that rate)."""
    period = LEASE_SECONDS / 3
    rates, renewals = [], []
    for _ in range(cycles):
        wait_renewal(master, period + 5)
        settle(cluster)
        ta, a = clean_snapshot(cluster)
        lease_a = lease_expiry(master)
        time.sleep(max(1.0, min(5.0, period - 4.0)))
        tb, b = time.monotonic(), counters(cluster)
        if lease_expiry(master) != lease_a:
            log("  a lease renewal fell into the quiet window; again")
            continue
        rate = [{k: (v or 0) / (tb - ta) for k, v in d.items()} for d in diff(b, a)]
        rates.append(rate)
        tc, c = clean_snapshot(cluster)
        if wait_renewal(master, period + 5) is None:
            log("  no lease renewal seen")
            continue
        td, d = settle(cluster)
        renewals.append([{k: round((v or 0) - rate[i][k] * (td - tc)) for k, v in x.items()}
                         for i, x in enumerate(diff(d, c))])
    med = lambda rows: [{k: statistics.median(r[i][k] for r in rows) for k in KEYS} for i in range(len(rows[0]))]
    return (med(rates) if rates else None), (med(renewals) if renewals else None)


# --- One burst ---------------------------------------------------------------------------------

def watch_instance(inst, serials, full_before, found, stop, poll):
    """Polls inst's delta CRL until it lists every serial; found[serial] = monotonic time first
    seen. Every 0.5 s also the full CRL's ETag: a new full CRL is served with its delta (both
    switch together), and if after 2 s the delta still does not list a serial, the new full CRL
    is read instead."""
    client = CrlClient(inst)
    delta_etag, full_changed = None, None
    pending = set(serials)
    next_full = 0.0
    try:
        while pending and not stop.is_set():
            try:
                status, tag, _, der = client.get(DELTA, delta_etag)
                now = time.monotonic()
                if status == 200:
                    delta_etag = tag
                    for s in pending.intersection(crl_serials(der)):
                        found[s] = now
                    pending.difference_update(found)
                if pending and now >= next_full:
                    next_full = now + 0.5
                    if full_changed is None:
                        status, tag, _, _ = client.get(FULL, full_before, body=False)
                        if status == 200:
                            full_changed = (now, tag)
                            continue  # read the delta again at once
                    elif now - full_changed[0] > 2:
                        status, tag, _, der = client.get(FULL)
                        if status == 200 and tag == full_changed[1]:
                            for s in pending.intersection(crl_serials(der)):
                                found[s] = full_changed[0]
                            pending.difference_update(found)
                        full_changed = (now, tag)
            except (OSError, http.client.HTTPException) as e:
                found.setdefault("errors", []).append(str(e))
            time.sleep(poll)
    finally:
        client.close()


def burst(cluster, master, ctx, serials, quiet_rate, renewal_cost, timeout, poll):
    wait_renewal(master, LEASE_SECONDS / 3 + 5)
    settle(cluster)
    full_before = {inst["name"]: full_etag(inst) for inst in cluster.instances}
    lease_before = lease_expiry(master)
    t_before, before = clean_snapshot(cluster)
    numbers = [int(s, 16) for s in serials]
    found = {inst["name"]: {} for inst in cluster.instances}
    stop = threading.Event()
    watchers = [threading.Thread(target=watch_instance, daemon=True,
                                 args=(inst, numbers, full_before[inst["name"]], found[inst["name"]], stop, poll))
                for inst in cluster.instances]
    for w in watchers:
        w.start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(serials))) as pool:
        t_ok = dict(zip(numbers, pool.map(lambda s: revoke(master, ctx, s), serials)))
    deadline = time.monotonic() + timeout
    for w in watchers:
        w.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    for w in watchers:
        w.join()
    served = {}
    for inst in cluster.instances:
        got = found[inst["name"]]
        lat = [got[s] - t_ok[s] for s in numbers if s in got]
        served[inst["name"]] = round(max(lat) * 1000, 1) if len(lat) == len(numbers) else None
    t_after, after = settle(cluster)
    renewed = lease_expiry(master) != lease_before
    window = t_after - t_before
    raw = diff(after, before)
    net = [{k: (None if v is None else round(v - quiet_rate[i][k] * window
                                             - (renewal_cost[i][k] if renewed and renewal_cost else 0)))
            for k, v in d.items()} for i, d in enumerate(raw)]
    names = [inst["name"] for inst in cluster.instances]
    full_after = {inst["name"]: full_etag(inst) for inst in cluster.instances}
    c = CrlClient(master)
    try:
        full_size = c.get(FULL, body=False)[2]
        delta_size = c.get(DELTA, body=False)[2]
    finally:
        c.close()
    return {
        "revocations": len(serials),
        "serials": serials,
        "served_ms": served,
        "served_all_ms": max(served.values()) if all(v is not None for v in served.values()) else None,
        "window_seconds": round(window, 2),
        "lease_renewed_in_window": renewed,
        "bytes_raw": dict(zip(names, raw)),
        "bytes_net": dict(zip(names, net)),
        "full_crl_bytes": full_size,
        "delta_crl_bytes": delta_size,
        "full_etag_before": full_before,
        "full_etag_after": full_after,
        "full_etag_changed": any(full_before[k] != full_after[k] for k in names),
        "poll_errors": {k: v.get("errors", [])[:5] for k, v in found.items() if v.get("errors")},
    }


# --- Output ------------------------------------------------------------------------------------

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def median_row(rows):
    names = list(rows[0]["bytes_net"])
    return {
        "revocations": med(r["revocations"] for r in rows),
        "served_all_ms": med(r["served_all_ms"] for r in rows),
        "served_ms": {n: med(r["served_ms"][n] for r in rows) for n in names},
        "bytes_net": {n: {k: med(r["bytes_net"][n][k] for r in rows) for k in KEYS} for n in names},
        "full_crl_bytes": med(r["full_crl_bytes"] for r in rows),
        "delta_crl_bytes": med(r["delta_crl_bytes"] for r in rows),
        "full_etag_changed": f"{sum(1 for r in rows if r['full_etag_changed'])}/{len(rows)}",
    }


def fmt_bytes(v):
    if v is None:
        return "-"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.1f} MB"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.1f} kB"
    return f"{v:.0f} B"


def rx_key(res):
    return "ns_rx_bytes" if res["mode"] == "netns" else "slapd_rchar"


def table(results):
    """One table over one or more result documents: a row per burst, the median, and the cost of
    one lease renewal (no revocation)."""
    head = ["run", "burst", "revoked", "served by all ms", "served ms (1/2/3)", "dir. written (1/2/3)",
            "received by replicas", "full CRL", "delta CRL", "full ETag changed"]
    lines = []
    ms = lambda v: "-" if v is None else f"{v:,.0f}"
    for res in results:
        names = [i["name"] for i in res["instances"]]
        replicas = [n for n in names if n != res["crl_master"]]
        rows = [(str(k + 1), r) for k, r in enumerate(res["bursts"])]
        if res["bursts"]:
            rows.append(("median", median_row(res["bursts"])))
        for label, r in rows:
            b = r["bytes_net"]
            changed = r["full_etag_changed"]
            lines.append([
                res["label"], label + ("*" if r.get("lease_renewed_in_window") else ""), f"{r['revocations']:g}",
                ms(r["served_all_ms"]), " / ".join(ms(r["served_ms"][n]) for n in names),
                " / ".join(fmt_bytes(b[n]["slapd_write_bytes"]) for n in names),
                " / ".join(fmt_bytes(b[n][rx_key(res)]) for n in replicas),
                fmt_bytes(r["full_crl_bytes"]), fmt_bytes(r["delta_crl_bytes"]),
                changed if isinstance(changed, str) else ("yes" if changed else "no"),
            ])
        if res.get("lease_renewal"):
            rn = res["lease_renewal"]
            lines.append([res["label"], "lease renewal", "0", "-", "-",
                          " / ".join(fmt_bytes(x["slapd_write_bytes"]) for x in rn),
                          " / ".join(fmt_bytes(rn[names.index(n)][rx_key(res)]) for n in replicas),
                          "-", "-", "-"])
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(head)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(l, widths))) + " |"
            for l in lines]
    notes = [""]
    for res in results:
        s = res["seed"]
        rx = ("what the replica's network namespace received (host side of its veth)" if res["mode"] == "netns"
              else "bytes the replica's slapd read (rchar; no namespaces, so no interface of its own)")
        quiet = res.get("quiet_rate")
        notes.append(
            f"{res['label']}: bin {res['bin']}, {res['revoked']:,} revoked records seeded in "
            f"{s['ldapadd_seconds']:.0f} s (in every directory after {s['replicated_seconds']:.0f} s); CRL master "
            f"{res['crl_master']}; mode {res['mode']}; instances 1/2/3 = {', '.join(i['name'] for i in res['instances'])}; "
            f"received = {rx}" + (("; quiet rates, B/s, disk 1/2/3: " + " / ".join(f"{q['slapd_write_bytes']:,.0f}" for q in quiet)
                                   + ", received: " + " / ".join(f"{quiet[[i['name'] for i in res['instances']].index(n)][rx_key(res)]:,.0f}"
                                                                 for n in [i['name'] for i in res['instances']] if n != res['crl_master']))
                                  if quiet else ""))
    notes.append("lease renewal = what one renewal of the CRL master's lease costs with no revocation at all (net of "
                 "the quiet rate); the master renews every lease_seconds / 3 = "
                 + " / ".join(f"{r.get('crl_options', {}).get('lease_seconds', LEASE_SECONDS) / 3:.0f} s" for r in results) + ".")
    notes.append("served = from the revocation's HTTP 200 until the instance serves a CRL listing the serial "
                 f"(delta or full, polled every ~20 ms). Bytes: net of the quiet rate over each window; dir. written = "
                 "pages each slapd dirtied (write_bytes after an fdatasync of data.mdb); '*' = a lease renewal fell "
                 "into the window (its cost, last row, subtracted). Raw deltas in the JSON.")
    return "\n".join(out + notes)


# --- Main --------------------------------------------------------------------------------------

def measure(a):
    result = {"label": a.label, "bin": os.path.abspath(a.bin), "revoked": a.revoked, "burst_size": a.burst_size,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg_before": os.getloadavg(),
              "cpus": os.cpu_count()}
    tmp = tempfile.mkdtemp(prefix="crl-scale-", dir="/tmp")
    work = a.work or os.path.join(tmp, "cluster")
    cluster = Cluster(work, a.bin, a.no_netns, a.keep)
    try:
        t0 = time.monotonic()
        log(f"cluster.sh up 3 in {work} with {a.bin}")
        info = cluster.up(3)
        result["mode"] = info["mode"]
        result["instances"] = [{"name": i["name"], "address": i["address"]} for i in cluster.instances]
        log(f"cluster up in {time.monotonic() - t0:.0f} s ({info['mode']})")
        first = cluster.instances[0]
        ca_ctx = ssl.create_default_context(cafile=info["ca_certificate"])
        ca_ctx.check_hostname = False
        csrs = mesh.make_csrs(tmp, 1 + a.bursts * a.burst_size)
        issued = [mesh.enrollment(first, ca_ctx, c) for c in csrs]
        model = issued[0]
        cert_der = ssl.PEM_cert_to_DER_cert(model["certificate"])
        to_revoke = [c["serial"] for c in issued[1:]]
        log(f"enrolled {len(issued)} certificates; seeded records carry the DER of {model['serial']} ({len(cert_der)} bytes)")
        ca_subject = subprocess.run(["openssl", "x509", "-in", info["ca_certificate"], "-noout", "-subject",
                                     "-nameopt", "RFC2253"], capture_output=True, text=True).stdout
        ca_subject = ca_subject.strip().removeprefix("subject=")
        # The CRL options from the start: seeding slows replication down, and a lease of 10 s
        # (cluster.sh's, for failover drills) then moves to a clone during the seeding.
        options = {"update_interval_seconds": UPDATE_INTERVAL, "lease_seconds": LEASE_SECONDS}
        cluster.set_crl_options(**options)
        result["crl_options"] = options
        log(f"restarting every ca-server with crl {options}")
        restart_all(cluster, 0, a.start_timeout)
        if a.revoked:
            log(f"seeding {a.revoked:,} revoked records with {a.streams} ldapadd process(es)")
            result["seed"] = seed(cluster, a.revoked, a.streams, cert_der, model["subject"], ca_subject, a.seed_timeout)
            result["seed"]["lease_holder_after"] = lease_holder(first)
            log(f"the CRL lease is held by {result['seed']['lease_holder_after']} after the seeding")
        else:
            result["seed"] = {"records": 0, "ldapadd_seconds": 0, "replicated_seconds": 0}
        log("restarting every ca-server, so that the CRL master loads the revoked index")
        master, result["restart"] = restart_all(cluster, a.revoked, a.start_timeout)
        result["crl_master"] = master["name"]
        log(f"CRL master: {master['name']}; measuring the quiet rates and the cost of a lease renewal")
        quiet, renewal = idle_costs(cluster, master)
        if quiet is None:
            raise RuntimeError("could not measure the quiet byte rates (lease renewals in every window?)")
        result["quiet_rate"], result["lease_renewal"] = quiet, renewal
        for inst, q, rn in zip(cluster.instances, quiet, renewal or [None] * 3):
            log(f"  {inst['name']}: quiet B/s disk {q['slapd_write_bytes']:,.0f}, slapd read {q['slapd_rchar']:,.0f}, "
                f"namespace rx {q['ns_rx_bytes']:,.0f}" + (f"; one lease renewal: disk {fmt_bytes(rn['slapd_write_bytes'])}, "
                f"slapd read {fmt_bytes(rn['slapd_rchar'])}, namespace rx {fmt_bytes(rn['ns_rx_bytes'])}" if rn else ""))
        agent = agent_context(info)
        result["bursts"] = []
        for k in range(a.bursts):
            serials = to_revoke[k * a.burst_size:(k + 1) * a.burst_size]
            r = burst(cluster, master, agent, serials, quiet, renewal, a.burst_timeout, a.poll_ms / 1000)
            result["bursts"].append(r)
            log(f"burst {k + 1}/{a.bursts}: served by all after {r['served_all_ms']} ms "
                f"({', '.join(f'{n} {v}' for n, v in r['served_ms'].items())}); full CRL {fmt_bytes(r['full_crl_bytes'])}, "
                f"delta {fmt_bytes(r['delta_crl_bytes'])}, full ETag changed: {r['full_etag_changed']}; disk writes "
                + " / ".join(fmt_bytes(v["slapd_write_bytes"]) for v in r["bytes_net"].values())
                + (" (a lease renewal in the window)" if r["lease_renewed_in_window"] else ""))
            if r["served_all_ms"] is None:
                log(f"  not served by every instance within {a.burst_timeout} s; the CRL lines of the logs:")
                for inst in cluster.instances:
                    with open(inst["log"], errors="replace") as f:
                        tail = [l.rstrip() for l in f if "crl" in l.lower()][-5:]
                    r.setdefault("log_tail", {})[inst["name"]] = tail
                    for l in tail:
                        log(f"    {inst['name']}: {l}")
        result["crl_log"] = {}
        for inst in cluster.instances:
            with open(inst["log"], errors="replace") as f:
                result["crl_log"][inst["name"]] = [l.rstrip() for l in f if " crl" in l][-3 * a.bursts - 6:]
        result["loadavg_after"] = os.getloadavg()
        return result
    finally:
        if a.keep:
            log(f"keeping {work} (cluster.sh down --keep-work)")
        log("cluster.sh down")
        cluster.down()
        if not (a.keep and work.startswith(tmp + os.sep)):
            shutil.rmtree(tmp, ignore_errors=True)


def interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=os.environ.get("CA_BIN_DIR", os.path.join(mesh.ROOT, "build", "bin")),
                   help="folder with ca-server and ca-clone (default: $CA_BIN_DIR or build/bin)")
    p.add_argument("--revoked", type=int, default=1_000_000, help="revoked records to seed (default 1000000)")
    p.add_argument("--bursts", type=int, default=5, help="revocation bursts to measure (default 5)")
    p.add_argument("--burst-size", type=int, default=1, help="revocations per burst (default 1)")
    p.add_argument("--json", help="write the results to this file")
    p.add_argument("--label", help="name of this run in tables (default: the --bin folder's name)")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                   help="print one table from two result files, measure nothing")
    p.add_argument("--streams", type=int, default=2, help="parallel ldapadd processes while seeding (default 2)")
    p.add_argument("--seed-timeout", type=int, default=3600, help="seconds for seeding and its replication (default 3600)")
    p.add_argument("--start-timeout", type=int, default=900,
                   help="seconds for a restarted instance to serve the seeded CRL (default 900)")
    p.add_argument("--burst-timeout", type=int, default=300, help="seconds for a burst to be served (default 300)")
    p.add_argument("--poll-ms", type=int, default=20, help="CRL polling interval per instance (default 20)")
    p.add_argument("--work", help="cluster folder, at most 80 characters (default: a new folder under /tmp)")
    p.add_argument("--no-netns", action="store_true", help="every instance on 127.0.0.1 (cluster.sh up --no-netns)")
    p.add_argument("--keep", action="store_true", help="keep the cluster's folder and logs (cluster.sh down --keep-work)")
    a = p.parse_args()
    if a.compare:
        docs = []
        for path in a.compare:
            with open(path) as f:
                docs.append(json.load(f))
        print(table(docs))
        return
    if a.revoked < 0 or a.bursts < 1 or a.burst_size < 1 or not 1 <= a.streams <= 16:
        p.error("--revoked must be >= 0; --bursts and --burst-size >= 1; --streams from 1 to 16")
    if not os.access(os.path.join(a.bin, "ca-server"), os.X_OK):
        p.error(f"{a.bin}/ca-server is missing")
    a.label = a.label or os.path.basename(os.path.normpath(a.bin))
    # SIGTERM as Ctrl-C: unwind, so that the finally clause takes the cluster down.
    signal.signal(signal.SIGTERM, interrupted)
    try:
        result = measure(a)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); the cluster was taken down")
        sys.exit(130)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
        log(f"results in {a.json}")
    print(table([result]))


if __name__ == "__main__":
    main()
