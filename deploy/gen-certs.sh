#!/usr/bin/env bash
# Makes a DEVELOPMENT certificate authority and certificates for a Weir cluster with openssl
# (docs/security.md). Not for production: the CA key sits next to the certificates.
#   deploy/gen-certs.sh OUTDIR [NAME ...]
# Writes OUTDIR/ca.pem and ca.key, and for each NAME (default: jobmanager taskmanager client)
# NAME.pem and NAME.key, valid for localhost, 127.0.0.1 and every host in $WEIR_CERT_HOSTS
# (space-separated host names and IP addresses: the names peers dial, i.e. the advertised
# addresses of docs/deployment.md), plus OUTDIR/token (a random bearer token) if it does not
# exist. Existing files are kept, so it can be run again to add names; a certificate that lacks
# a host of WEIR_CERT_HOSTS is issued again (same key). (An IPv6 address is always re-issued:
# openssl prints it in another form.)
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
for h in $(tr ' ' '\n' <<<"${WEIR_CERT_HOSTS:-}" | tr -d '[]' | sort -u); do
  [ "$h" = localhost ] || [ "$h" = 127.0.0.1 ] && continue
  if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then
    san="$san,IP:$h"
  elif [[ "$h" =~ ^[A-Za-z0-9._*-]+$ ]]; then
    san="$san,DNS:$h"
  else
    echo "gen-certs: '$h' (WEIR_CERT_HOSTS) is neither a host name nor an IP address" >&2
    exit 2
  fi
done
# The names a certificate holds, one per line, as openssl prints them (DNS:x, IP Address:y).
cert_names() {
  openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr ',' '\n' |
    sed 's/^ *//' | sort
}
wanted=$(tr ',' '\n' <<<"$san" | sed 's/^IP:/IP Address:/' | sort)
for n in "${names[@]}"; do
  if [ -f "$out/$n.pem" ]; then
    # Kept if it names every wanted host (re-issued with the same key otherwise, e.g. after a
    # host was added to WEIR_CERT_HOSTS).
    missing=$(comm -13 <(cert_names "$out/$n.pem") <(echo "$wanted") | tr '\n' ' ')
    [ -z "${missing// /}" ] && continue
    echo "gen-certs: $n.pem lacks $missing; issuing it again" >&2
    rm -f "$out/$n.pem"
  fi
  if [ -f "$out/$n.key" ]; then
    openssl req -new -key "$out/$n.key" -subj "/CN=$n" -out "$out/$n.csr" 2>/dev/null
  else
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout "$out/$n.key" -out "$out/$n.csr" 2>/dev/null
  fi
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
