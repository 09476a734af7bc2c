#!/usr/bin/env bash
# Makes a development CA and one certificate per name, for Weir's TLS (docs/security-data-plane.md).
#   deploy/gen-certs.sh OUTDIR [NAME ...]     (default names: jobmanager taskmanager client)
# Writes OUTDIR/ca.pem, OUTDIR/ca.key and, for each NAME, OUTDIR/NAME.pem and OUTDIR/NAME.key:
# EC P-256 keys, certificates signed by the CA for 825 days, CN=NAME, SAN DNS:localhost,
# DNS:NAME, IP:127.0.0.1 (usable as server and client certificates). An existing ca.pem/ca.key
# in OUTDIR is reused, so more names can be added later. Keys are mode 600.
# For development and tests only: a production cluster uses certificates from its own CA.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 OUTDIR [NAME ...]" >&2
  exit 2
fi
out=$1
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(jobmanager taskmanager client)
command -v openssl >/dev/null || { echo "gen-certs: openssl not found (apt install openssl)" >&2; exit 1; }
mkdir -p "$out"
umask 077
if [ ! -f "$out/ca.pem" ] || [ ! -f "$out/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=weir development CA" -keyout "$out/ca.key" -out "$out/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
fi
for n in "${names[@]}"; do
  case "$n" in
    ca|*/*|"") echo "gen-certs: bad name '$n'" >&2; exit 2 ;;
  esac
  ext=$(mktemp)
  printf 'subjectAltName=DNS:localhost,DNS:%s,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' "$n" > "$ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$n" \
    -keyout "$out/$n.key" -out "$out/$n.csr" 2>/dev/null
  openssl x509 -req -in "$out/$n.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial \
    -days 825 -extfile "$ext" -out "$out/$n.pem" 2>/dev/null
  rm -f "$out/$n.csr" "$ext"
done
rm -f "$out/ca.srl"
chmod 644 "$out"/*.pem
echo "gen-certs: CA and ${names[*]} in $out" >&2
