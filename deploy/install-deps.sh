#!/usr/bin/env bash
# Installs every Debian 12 package the project needs to build, test and run.
# Idempotent: does nothing (and needs no network) when all are present.
set -euo pipefail
PACKAGES=(
  g++ cmake make pkg-config
  libssl-dev openssl
  libboost1.81-dev libboost-system1.81-dev
  libldap-dev ldap-utils slapd
  libyaml-cpp-dev libfmt-dev
  libpsl-dev publicsuffix
  libgtest-dev googletest
  curl haproxy wrk golang-cfssl libnss3-tools
  certmonger strongswan-pki libstrongswan-standard-plugins libstrongswan-extra-plugins
  sqlite3 python3 python3-yaml
  iproute2
  clang-format clang-tidy-19
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# slapd's postinst would create a default instance; we never use it and it is not started here.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
