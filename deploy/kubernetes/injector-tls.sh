#!/usr/bin/env bash
# The sidecar injector's serving certificate: a private CA (ECDSA P-256, 10 years) and a
# certificate for skein-injector.<namespace>.svc (1 year), made with openssl.
#
#   injector-tls.sh --out DIR            write DIR/ca.pem, DIR/tls.crt, DIR/tls.key (0600) only
#   injector-tls.sh --out DIR --apply    also (kubectl) create or replace the Secret
#                                        skein-injector-tls and put ca.pem into the caBundle of
#                                        both webhooks of MutatingWebhookConfiguration
#                                        skein-sidecar-injector
# Options: --namespace NS (default skein-system), --service NAME (default skein-injector),
#          --days N (serving certificate lifetime, default 365).
# Run it again before the certificate expires (the injector re-reads the mounted Secret every
# minute; the kubelet refreshes a Secret volume within about a minute). With cert-manager
# instead, see deploy/README.md.
set -euo pipefail

ns=skein-system svc=skein-injector out= apply=0 days=365
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) ns="$2"; shift 2 ;;
    --service) svc="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --apply) apply=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "injector-tls.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "injector-tls.sh: --out DIR is required" >&2; exit 2; }
command -v openssl >/dev/null || { echo "injector-tls.sh: needs openssl" >&2; exit 2; }
mkdir -p "$out"
umask 077
host="$svc.$ns.svc"

openssl ecparam -name prime256v1 -genkey -noout -out "$out/ca.key.ec"
openssl pkcs8 -topk8 -nocrypt -in "$out/ca.key.ec" -out "$out/ca.key"
openssl req -x509 -new -key "$out/ca.key" -sha256 -days 3650 -subj "/CN=skein injector CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$out/ca.pem"

openssl ecparam -name prime256v1 -genkey -noout -out "$out/tls.key.ec"
openssl pkcs8 -topk8 -nocrypt -in "$out/tls.key.ec" -out "$out/tls.key"
openssl req -new -key "$out/tls.key" -subj "/CN=$host" -out "$out/tls.csr"
printf 'subjectAltName=DNS:%s,DNS:%s.%s,DNS:%s.%s.svc.cluster.local\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
  "$host" "$svc" "$ns" "$svc" "$ns" > "$out/tls.ext"
openssl x509 -req -in "$out/tls.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial -sha256 -days "$days" \
  -extfile "$out/tls.ext" -out "$out/tls.crt" 2>/dev/null
rm -f "$out/ca.key.ec" "$out/tls.key.ec" "$out/tls.csr" "$out/tls.ext" "$out/ca.srl"
# The CA key is not needed again (a new run makes a new CA): keep nothing that can sign.
rm -f "$out/ca.key"
chmod 0644 "$out/ca.pem" "$out/tls.crt"
echo "injector-tls.sh: wrote $out/ca.pem, $out/tls.crt, $out/tls.key for DNS:$host" >&2

if [ "$apply" = 1 ]; then
  kubectl -n "$ns" create secret tls skein-injector-tls --cert="$out/tls.crt" --key="$out/tls.key" --dry-run=client -o yaml | kubectl apply -f -
  ca=$(base64 < "$out/ca.pem" | tr -d '\n')
  kubectl patch mutatingwebhookconfiguration skein-sidecar-injector --type=json -p \
    "[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca\"},{\"op\":\"replace\",\"path\":\"/webhooks/1/clientConfig/caBundle\",\"value\":\"$ca\"}]"
  echo "injector-tls.sh: Secret $ns/skein-injector-tls and the webhook's caBundle updated" >&2
fi
