#!/usr/bin/env bash
# Makes a DEVELOPMENT certificate authority and certificates for a Weir cluster with openssl
# (docs/security.md). Not for production: the CA key sits next to the certificates.
#   deploy/gen-certs.sh OUTDIR [NAME ...]
# Writes OUTDIR/ca.pem and ca.key, and for each NAME (default: jobmanager taskmanager client)
# NAME.pem and NAME.key, valid for localhost, 127.0.0.1 and every host in $WEIR_CERT_HOSTS
# (space-separated names or IPv4 addresses), plus OUTDIR/token (a random bearer token) if it
# does not exist. Existing files are kept, so it can be run again to add names.
set -euo pipefail
out="${1:?usage: $0 OUTDIR [NAME ...]}"
shift
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(jobmanager taskmanager client)
mkdir -p "$out"
chmod 700 "$out"
if [ ! -f "$out/ca.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=weir development CA" \
    -keyout "$out/ca.key" -out "$out/ca.pem" 2>/dev/null
fi
san="DNS:localhost,IP:127.0.0.1"
for h in ${WEIR_CERT_HOSTS:-}; do
  if [[ "$h" =~ ^[0-9.]+$ ]]; then san="$san,IP:$h"; else san="$san,DNS:$h"; fi
done
for n in "${names[@]}"; do
  [ -f "$out/$n.pem" ] && continue
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout "$out/$n.key" -out "$out/$n.csr" 2>/dev/null
  ext=$(mktemp)
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "$san" >"$ext"
  openssl x509 -req -in "$out/$n.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial \
    -days 825 -extfile "$ext" -out "$out/$n.pem" 2>/dev/null
  rm -f "$ext" "$out/$n.csr"
done
if [ ! -f "$out/token" ]; then
  (umask 077 && openssl rand -hex 32 >"$out/token")
fi
chmod 600 "$out"/*.key "$out/token"
echo "certificates for ${names[*]} and a token in $out"
