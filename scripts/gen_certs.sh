#!/usr/bin/env bash
# Writes a private CA and two certificates it signs, for TLS and mTLS between voxcache's
# services and clients (tests, compose, a local stack):
#
#   scripts/gen_certs.sh DIR [DAYS] [CN...]
#
#   DIR/ca.pem                 the CA certificate: clients trust it (--tls-ca, VOXCACHE_TLS_CA),
#                              and servers verify client certificates with it (--tls-client-ca)
#   DIR/server.pem server.key  the services' certificate (serverAuth; names localhost, 127.0.0.1,
#                              ::1, embedder, synthesizer): --tls-cert / --tls-key
#   DIR/client.pem client.key  a client certificate (clientAuth, CN voxcache-client): the SDK,
#                              CLI, examples, and the Synthesizer's channel to the Embedder
#   DIR/client-CN.pem .key     one more client certificate per extra CN argument: with
#                              `--auth mtls` the CN is the caller's tenant (e.g. acme, synthesizer)
#
# DAYS defaults to 30. Keys are mode 0600 (the CA key is deleted: nothing more can be
# signed, so a leaked folder cannot mint new client certificates). Never commit DIR:
# .gitignore keeps *.key and certs/ out. This is for development and tests; production
# certificates come from your own CA.
set -euo pipefail
dir=${1:?usage: scripts/gen_certs.sh DIR [DAYS] [CN...]}
days=${2:-30}
shift $(( $# >= 2 ? 2 : $# ))
extra=("$@")
command -v openssl >/dev/null || { echo "gen_certs: openssl is missing (scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$dir"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
  -subj "/CN=voxcache development CA" -keyout "$work/ca.key" -out "$work/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

issue() {  # NAME CN EXTENSIONS
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$work/$1.key" -out "$work/$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$work/$1.ext"
  openssl x509 -req -in "$work/$1.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days "$days" -extfile "$work/$1.ext" -out "$work/$1.pem" 2>/dev/null
}
issue server voxcache-server "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1,DNS:embedder,DNS:synthesizer"
issue client voxcache-client "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

names=(ca.pem server.pem server.key client.pem client.key)
for cn in "${extra[@]}"; do
  [[ $cn =~ ^[a-z0-9][a-z0-9_-]{0,62}$ ]] || { echo "gen_certs: CN '$cn' is not a tenant id (a-z 0-9 _ -)" >&2; exit 1; }
  issue "client-$cn" "$cn" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  names+=("client-$cn.pem" "client-$cn.key")
done
for name in "${names[@]}"; do
  install -m "$([[ $name == *.key ]] && echo 600 || echo 644)" "$work/$name" "$dir/$name"
done
echo "gen_certs: CA, server and client certificates in $dir (valid $days days)"
