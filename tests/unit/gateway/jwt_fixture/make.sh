#!/usr/bin/env bash
# Makes this directory's fixture with OpenSSL, an implementation independent of lrun's: an RSA
# key (key.pem, deleted after: no private key is kept), its public half as a JSON Web Key Set
# (jwks.json),
# and RS256 tokens signed by `openssl dgst -sha256 -sign` (tokens.json). Run it again for new ones.
set -euo pipefail
cd "$(dirname "$0")"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem 2>/dev/null
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
modulus=$(openssl rsa -in key.pem -noout -modulus | cut -d= -f2 | xxd -r -p | b64url)
printf '{"keys": [{"kty": "RSA", "kid": "openssl-1", "use": "sig", "alg": "RS256", "n": "%s", "e": "AQAB"}]}\n' "$modulus" > jwks.json
sign() {  # claims JSON -> token
  local head body
  head=$(printf '{"alg":"RS256","typ":"JWT","kid":"openssl-1"}' | b64url)
  body=$(printf '%s' "$1" | b64url)
  printf '%s.%s.%s' "$head" "$body" "$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -sign key.pem | b64url)"
}
valid=$(sign '{"iss":"https://issuer.example","aud":"lrun-tests","sub":"ana","scope":"orders.read profile","iat":1700000000,"exp":4102444800,"groups":["a","b"]}')
expired=$(sign '{"iss":"https://issuer.example","aud":"lrun-tests","sub":"ana","iat":1700000000,"exp":1700000600}')
client=$(sign '{"iss":"https://issuer.example","client_id":"lrun-tests","sub":"svc","iat":1700000000,"exp":4102444800}')
printf '{"valid": "%s", "expired": "%s", "client_id": "%s"}\n' "$valid" "$expired" "$client" > tokens.json
rm -f key.pem
