#!/usr/bin/env bash
# Installs the Debian tools the benchmark needs, if missing: HAProxy (the comparison proxy) and
# h2load from nghttp2-client (the load generator: C, so it does not compete like a Node client).
set -euo pipefail
need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]} (Debian packages)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# sed, not head: head exits after one line and the writer then dies of SIGPIPE, which pipefail
# turns into a failed bench (exit 141) now and then.
haproxy -v | sed -n 1p >&2
h2load --version 2>&1 | sed -n 1p >&2
