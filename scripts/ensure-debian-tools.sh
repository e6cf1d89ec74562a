#!/usr/bin/env bash
# Installs the Debian packages named as arguments that are not installed yet, with
# apt-get install -y --no-install-recommends (through sudo when not root). Tests that need a real
# tool (e.g. the Prometheus e2e test: `scripts/ensure-debian-tools.sh prometheus`; the NATS store tests: nats-server) call it, so a
# fresh clone and CI get the tool from the project's own files. Prints nothing when all are there.
set -euo pipefail
if [ $# -eq 0 ]; then echo "usage: $0 PACKAGE..." >&2; exit 2; fi
need=()
for pkg in "$@"; do
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]; then need+=("$pkg"); fi
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "ensure-debian-tools: installing ${need[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
