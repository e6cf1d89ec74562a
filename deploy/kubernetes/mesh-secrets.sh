#!/usr/bin/env bash
# The credentials all control plane replicas share, made once per mesh with openssl:
#   - the mesh CA: a self-signed ECDSA P-256 root (10 years), DIR/ca.pem, and its PKCS#8 key,
#     DIR/ca.key (0600): every replica signs workload certificates with it (--ca-cert/--ca-key);
#   - the admin token (skein-admin.<43 url-safe base64 chars>), DIR/admin-token (0600), which
#     every replica accepts for API changes (the CLI sends it: SKEIN_TOKEN or --admin-token-file).
#
#   mesh-secrets.sh --out DIR                 write the files only
#   mesh-secrets.sh --out DIR --apply         also create the Secrets skein-ca and
#                                             skein-admin-token in skein-system (kubectl)
# Options: --trust-domain TD (in the CA's name only; default skein.local), --namespace NS.
# Existing files in DIR are kept (run it again to apply the same credentials elsewhere);
# delete them to make new ones. Keep DIR somewhere safe, or delete it once applied.
set -euo pipefail

out= apply=0 td=skein.local ns=skein-system
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --trust-domain) td="$2"; shift 2 ;;
    --namespace) ns="$2"; shift 2 ;;
    --apply) apply=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "mesh-secrets.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "mesh-secrets.sh: --out DIR is required" >&2; exit 2; }
command -v openssl >/dev/null || { echo "mesh-secrets.sh: needs openssl" >&2; exit 2; }
umask 077
mkdir -p "$out"

if [ ! -s "$out/ca.key" ] || [ ! -s "$out/ca.pem" ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$out/ca.key.ec"
  openssl pkcs8 -topk8 -nocrypt -in "$out/ca.key.ec" -out "$out/ca.key"
  rm -f "$out/ca.key.ec"
  openssl req -x509 -new -key "$out/ca.key" -sha256 -days 3650 -subj "/O=skein/CN=skein root CA ($td)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out "$out/ca.pem"
  chmod 0644 "$out/ca.pem"
  echo "mesh-secrets.sh: made the mesh CA $out/ca.pem (key $out/ca.key)" >&2
fi
if [ ! -s "$out/admin-token" ]; then
  printf 'skein-admin.%s\n' "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')" > "$out/admin-token"
  echo "mesh-secrets.sh: made the admin token $out/admin-token" >&2
fi

if [ "$apply" = 1 ]; then
  kubectl -n "$ns" create secret generic skein-ca --from-file=ca.pem="$out/ca.pem" --from-file=ca.key="$out/ca.key" --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n "$ns" create secret generic skein-admin-token --from-file=admin-token="$out/admin-token" --dry-run=client -o yaml | kubectl apply -f -
  echo "mesh-secrets.sh: Secrets $ns/skein-ca and $ns/skein-admin-token applied" >&2
fi
