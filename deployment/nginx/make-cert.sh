#!/usr/bin/env bash
# Makes a self-signed TLS certificate for the hub with the names agents and browsers use to reach
# it (subjectAltName: every DNS name and IP address given), and prints its SHA-256 fingerprint to
# compare when you first trust it. Agents pin it with hub.ca_file (copy the .crt to each Pi).
#   deployment/nginx/make-cert.sh OUT_DIR NAME... [--days N]
#   deployment/nginx/make-cert.sh /etc/labrig/tls hub.lab.example 192.168.10.5
# Writes OUT_DIR/hub.crt and OUT_DIR/hub.key (mode 600); refuses to overwrite them.
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR NAME... [--days N]   (NAME: a DNS name or an IP address)" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
out=$1; shift
days=825
names=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --days) [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage; days=$2; shift 2 ;;
    -*) usage ;;
    *) names+=("$1"); shift ;;
  esac
done
[[ ${#names[@]} -gt 0 ]] || usage
command -v openssl >/dev/null || { echo "make-cert: openssl is missing: apt-get install openssl" >&2; exit 1; }

san=""
for n in "${names[@]}"; do
  if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="${san:+,}IP:$n"; else san+="${san:+,}DNS:$n"; fi
done

mkdir -p "$out"
crt="$out/hub.crt"
key="$out/hub.key"
if [[ -e $crt || -e $key ]]; then echo "make-cert: $crt or $key exists; remove them first to make a new pair" >&2; exit 1; fi

umask 077
# An EC P-256 key: small, fast on a Pi, accepted everywhere. CA:TRUE so agents can pin it as their CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$days" \
  -keyout "$key" -out "$crt" -subj "/CN=${names[0]}" \
  -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,digitalSignature,keyCertSign" -addext "extendedKeyUsage=serverAuth"
chmod 644 "$crt"

echo "certificate: $crt"
echo "key:         $key"
echo "names:       $san"
openssl x509 -in "$crt" -noout -fingerprint -sha256
