#!/usr/bin/env python3
"""Replication lag and write amplification of the replication mesh, for 3 and 5 instances.

For each size N: `deploy/cluster.sh up N` (every instance in its own network namespace, joined by
a bridge), then on instance 1 directly (not through haproxy):
  - lag: sequential enrollments; after each 201, how long until every other directory holds the
    certificate record (ldapsearch over each directory's unix socket, polled in parallel);
  - burst: enrollments at concurrency 8; time from the last answer until every directory holds all;
  - amplification: bytes each instance's network interface received during the burst, per
    enrollment (instance 1 also receives the clients' requests), from the host side of its veth.
Prints one table. Usage: bench/mesh_replication.py [--sizes 3,5] [--lag-samples 30] [--burst 300]
Needs root (namespaces), build/bin (or CA_BIN_DIR), haproxy, slapd, ldapsearch, openssl.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(ROOT, "deploy", "cluster.sh")


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, **kw)


def make_csrs(directory, count):
    def one(i):
        key, csr = os.path.join(directory, f"m{i}.key"), os.path.join(directory, f"m{i}.csr")
        run(["openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout",
             key, "-out", csr, "-subj", f"/CN=mesh{i}.bench.example.com"])
        with open(csr) as f:
            return f.read()

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(count)))


def enrollment(instance, ctx, csr):
    """POST /ca/rest/certrequests (profile testServerCert) on the instance; the 201's JSON."""
    u = urllib.parse.urlsplit(instance["https_url"])
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
    try:
        body = json.dumps({"profile_id": "testServerCert", "csr": csr})
        conn.request("POST", "/ca/rest/certrequests", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        if r.status != 201:
            raise RuntimeError(f"enrollment: HTTP {r.status} {data[:200]!r}")
        return json.loads(data)
    finally:
        conn.close()


def enroll(instance, ctx, csr):
    return enrollment(instance, ctx, csr)["serial"]


SUFFIX = "o=pki-ca"
CERTIFICATES = f"ou=certificateRepository,ou=ca,{SUFFIX}"


def directory_args(instance):
    """URL and bind arguments of the instance's own directory for ldapsearch/ldapadd: its unix
    socket (reachable from any namespace) as the directory manager."""
    url = "ldapi://" + urllib.parse.quote(instance["ldapi_socket"], safe="")
    return ["-x", "-H", url, "-D", f"cn=Directory Manager,{SUFFIX}", "-y", instance["directory_password_file"]]


def has_serial(instance, serial_hex):
    """Whether the instance's directory holds the certificate record (ldapsearch on its socket)."""
    number = int(serial_hex, 16)
    r = run(["ldapsearch", "-LLL", *directory_args(instance), "-b", CERTIFICATES, "-s", "one",
             f"(&(objectClass=caCertificateRecord)(caSerialNumber={number:040x}))", "1.1"])
    return r.returncode == 0 and b"dn:" in r.stdout


def count_records(instance, filter="(objectClass=caCertificateRecord)"):
    r = run(["ldapsearch", "-LLL", *directory_args(instance), "-b", CERTIFICATES, "-s", "one", filter, "1.1"])
    return r.stdout.count(b"dn:")


def rx_bytes(info, index):
    if not info.get("tag") or info.get("mode") != "netns":
        return None
    # The host side of instance i's veth: what it sends is what the namespace receives.
    path = f"/sys/class/net/{info['tag']}-v{index}/statistics/tx_bytes"
    try:
        with open(path) as f:
            return int(f.read())
    except OSError:
        return None


def measure(size, work, csrs, lag_samples, burst):
    up = run([CLUSTER, "up", str(size), "--work", work, "--test-profiles"])
    if up.returncode != 0:
        sys.exit(f"cluster.sh up {size} failed:\n{up.stdout.decode(errors='replace')[-3000:]}")
    try:
        with open(os.path.join(work, "cluster.json")) as f:
            info = json.load(f)
        instances = info["instances"]
        ctx = ssl.create_default_context(cafile=info["ca_certificate"])
        ctx.check_hostname = False
        first, others = instances[0], instances[1:]
        # The mesh forms within the instances' 5 s topology check: wait for it (every directory
        # consuming from every other), measured as one enrollment seen everywhere.
        time.sleep(12)
        next_csr = iter(csrs)
        lags = []
        for _ in range(lag_samples):
            serial = enroll(first, ctx, next(next_csr))
            t0 = time.monotonic()
            seen = {}

            def watch(inst):
                while not has_serial(inst, serial):
                    if time.monotonic() - t0 > 30:
                        return
                seen[inst["index"]] = time.monotonic() - t0

            threads = [threading.Thread(target=watch, args=(i,)) for i in others]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if len(seen) == len(others):
                lags.append(max(seen.values()))
        before = [rx_bytes(info, i["index"]) for i in instances]
        base = [count_records(i) for i in instances]
        t_start = time.monotonic()
        batch = [next(next_csr) for _ in range(burst)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda c: enroll(first, ctx, c), batch))
        t_done = time.monotonic()
        target = base[0] + burst
        while True:
            counts = [count_records(i) for i in instances]
            if all(c >= target for c in counts) or time.monotonic() - t_done > 120:
                break
            time.sleep(0.05)
        converged = time.monotonic() - t_done
        time.sleep(1)
        after = [rx_bytes(info, i["index"]) for i in instances]
        per_enrollment = [None if b is None or a is None else (a - b) / burst for b, a in zip(before, after)]
        return {
            "size": size, "mode": info.get("mode"), "lag_p50": statistics.median(lags) if lags else None,
            "lag_p99": sorted(lags)[max(0, int(len(lags) * 0.99) - 1)] if lags else None,
            "lag_max": max(lags) if lags else None, "burst_seconds": t_done - t_start, "converged": converged,
            "rx_per_enrollment": per_enrollment,
        }
    finally:
        run([CLUSTER, "down", "--work", work])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="3,5")
    p.add_argument("--lag-samples", type=int, default=30)
    p.add_argument("--burst", type=int, default=300)
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="ca-mesh-bench-") as tmp:
        csrs = make_csrs(tmp, a.lag_samples + a.burst)
        rows = [measure(n, os.path.join(tmp, f"cluster{n}"), csrs, a.lag_samples, a.burst) for n in sizes]
    print()
    print(f"Replication mesh: {a.lag_samples} single enrollments and a burst of {a.burst} (concurrency 8) on instance 1")
    print(f"{'instances':>9} | {'lag p50':>8} | {'lag p99':>8} | {'lag max':>8} | {'burst':>7} | "
          f"{'all caught up':>13} | bytes received per enrollment, by instance")
    for r in rows:
        ms = lambda v: "-" if v is None else f"{v * 1000:.1f} ms"
        rx = ", ".join("-" if v is None else f"{v / 1024:.1f} KiB" for v in r["rx_per_enrollment"])
        print(f"{r['size']:>9} | {ms(r['lag_p50']):>8} | {ms(r['lag_p99']):>8} | {ms(r['lag_max']):>8} | "
              f"{r['burst_seconds']:>6.1f}s | {r['converged'] * 1000:>10.0f} ms | {rx}")
    print("lag: from the 201 on instance 1 until every other directory holds the record (ldapsearch polling, "
          "~5 ms resolution); mode:", rows[0]["mode"])


if __name__ == "__main__":
    main()
