# shellcheck shell=bash
# Test hosts made of Linux network namespaces: one namespace per instance, each with one veth
# pair whose outer end is enslaved to a bridge in the host namespace. The bridge carries an
# address too, so programs in the host namespace (haproxy, curl, the tests) reach every instance.
#
#   namespace <tag>-1 : eth0 <prefix>.11/24 ──veth <tag>-v1──┐
#   namespace <tag>-2 : eth0 <prefix>.12/24 ──veth <tag>-v2──┼── bridge <tag>-br <prefix>.1/24
#   ...                                                       ┘   (host namespace)
#
# Every name starts with <tag>, made from the work folder, so that two clusters (two work
# folders) never share a namespace, a link or a subnet. Interface names stay within the
# kernel's 15 characters: the tag has 7, and up to 999 instances fit.
# Sourced by deploy/cluster.sh.

# net_tag WORK_DIR: "ca" and 5 hex digits of a hash of the folder.
net_tag() { printf 'ca%s' "$(printf '%s' "$1" | sha256sum | cut -c1-5)"; }

net_bridge() { printf '%s-br' "$1"; }
net_namespace() { printf '%s-%s' "$1" "$2"; }
net_veth() { printf '%s-v%s' "$1" "$2"; }
# Address of instance I in subnet PREFIX (three octets): .11, .12, ...; the bridge has .1.
net_address() { printf '%s.%s' "$1" $((10 + $2)); }

# True when this process may make network namespaces (root, or CAP_SYS_ADMIN + CAP_NET_ADMIN,
# and a kernel and ip(8) that support them): found by making one and removing it at once.
net_available() {
  local probe
  probe="$(net_namespace "$1" probe)"
  command -v ip >/dev/null 2>&1 || return 1
  ip netns add "$probe" >/dev/null 2>&1 || return 1
  ip netns del "$probe" >/dev/null 2>&1 || true
  # A bridge too: some containers allow namespaces but not bridges.
  if ! ip link add "$(net_bridge "$1")x" type bridge >/dev/null 2>&1; then return 1; fi
  ip link del "$(net_bridge "$1")x" >/dev/null 2>&1 || true
  return 0
}

# net_pick_subnet TAG: a /24 in 10.128.0.0/10 that no route or address of this host overlaps,
# starting from one derived from the tag; prints its first three octets.
net_pick_subnet() {
  python3 - "$1" "$(ip -4 -o route show table all 2>/dev/null)" "$(ip -4 -o addr show 2>/dev/null)" <<'EOF'
import hashlib, ipaddress, sys
tag, routes, addrs = sys.argv[1:]
taken = []
for line in (routes + "\n" + addrs).splitlines():
    for word in line.split():
        try:
            net = ipaddress.ip_network(word, strict=False)
        except ValueError:
            continue
        if net.prefixlen > 0:  # not "default"
            taken.append(net)
start = int(hashlib.sha256(tag.encode()).hexdigest()[:6], 16)
for k in range(64 * 256):
    n = (start + k) % (64 * 256)
    candidate = ipaddress.ip_network(f"10.{128 + n // 256}.{n % 256}.0/24")
    if not any(candidate.overlaps(t) for t in taken):
        print(f"10.{128 + n // 256}.{n % 256}")
        sys.exit(0)
sys.exit("no free /24 in 10.128.0.0/10")
EOF
}

# net_create TAG PREFIX COUNT: the bridge, then one namespace and veth pair per instance.
net_create() {
  local tag="$1" prefix="$2" count="$3" i bridge
  bridge="$(net_bridge "$tag")"
  ip link add "$bridge" type bridge
  ip addr add "$prefix.1/24" dev "$bridge"
  ip link set "$bridge" up
  for i in $(seq "$count"); do net_add_host "$tag" "$prefix" "$i"; done
}

# net_add_host TAG PREFIX I: instance I's namespace and veth pair, on the existing bridge.
net_add_host() {
  local tag="$1" prefix="$2" i="$3" ns veth
  ns="$(net_namespace "$tag" "$i")"
  veth="$(net_veth "$tag" "$i")"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # The inner end is made inside the namespace directly, under its final name.
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" master "$(net_bridge "$tag")"
  ip link set "$veth" up
  ip -n "$ns" addr add "$(net_address "$prefix" "$i")/24" dev eth0
  ip -n "$ns" link set eth0 up
}

# net_destroy TAG: removes whatever is left of TAG's namespaces, veths and bridge. Removing a
# namespace removes its veth pair, but the kernel does that asynchronously; deleting the outer
# ends first makes the removal complete when this returns. Idempotent.
net_destroy() {
  local tag="$1" ns link
  while read -r link; do
    [ -n "$link" ] && ip link del "$link" 2>/dev/null || true
  done < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^$tag-v[0-9]+$" || true)
  while read -r ns; do
    [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
  done < <(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$tag-([0-9]+|probe)$" || true)
  ip link del "$(net_bridge "$tag")" 2>/dev/null || true
}

# net_leftovers TAG: the names of TAG's namespaces and links that still exist (empty: none).
net_leftovers() {
  {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$1-" || true
    ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^$1-" || true
  } | tr '\n' ' '
}
