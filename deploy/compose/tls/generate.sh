#!/bin/sh
# Makes the files deploy/compose/tls.yml needs, in DIR (default: this directory), replacing any
# there: a throw-away CA (ca.crt), the exporter's certificate for the Compose service names
# (tls.crt, tls.key), a random scrape password (password, read by Prometheus) and the exporter's
# web config with that password's bcrypt hash (web.yml). All git-ignored.
#
#   sh deploy/compose/tls/generate.sh [DIR]
#
# Running it again rotates everything; then `docker compose kill -s HUP exporter` (Prometheus
# re-reads the password and CA files by itself). Needs openssl, and python3 with bcrypt or
# htpasswd (apache2-utils) for the hash. The files are world-readable so that the containers'
# users (65532, nobody) can read them: a demo CA, for a laptop. Bring your own for anything else.
set -eu
dir=${1:-$(dirname "$0")}
mkdir -p "$dir" && cd "$dir"
umask 022
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=citrix-cloud-exporter demo CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$tmp/ca.key" -out ca.crt 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=exporter" \
  -keyout tls.key -out "$tmp/tls.csr" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:exporter,DNS:localhost,IP:127.0.0.1" \
  "extendedKeyUsage=serverAuth" "basicConstraints=critical,CA:FALSE" > "$tmp/ext"
openssl x509 -req -in "$tmp/tls.csr" -CA ca.crt -CAkey "$tmp/ca.key" -CAcreateserial \
  -CAserial "$tmp/ca.srl" -days 90 -extfile "$tmp/ext" -out tls.crt 2>/dev/null

password=$(openssl rand -hex 24)
if python3 -c 'import bcrypt' 2>/dev/null; then
  hash=$(python3 -c 'import bcrypt, sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(10)).decode())' "$password")
elif command -v htpasswd >/dev/null; then
  hash=$(htpasswd -nbBC 10 "" "$password" | tr -d ':\n')
else
  echo "generate.sh: need python3 with bcrypt (pip install bcrypt) or htpasswd" >&2
  exit 1
fi
printf '%s' "$password" > password
cat > web.yml <<WEB
# The exporter's web config (exporter-toolkit format), made by generate.sh.
tls_server_config:
  cert_file: /etc/citrix-cloud-exporter/tls/tls.crt
  key_file: /etc/citrix-cloud-exporter/tls/tls.key
  min_version: TLS12
basic_auth_users:
  prometheus: $hash
WEB
chmod 0644 ca.crt tls.crt tls.key password web.yml
echo "made ca.crt tls.crt tls.key password web.yml in $(pwd)"
