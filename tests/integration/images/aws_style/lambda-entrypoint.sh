#!/bin/sh
# The shape of AWS base images' entrypoint: the handler is CMD's first argument, and the
# runtime client is started against AWS_LAMBDA_RUNTIME_API (RIE only when it is unset).
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  echo "AWS_LAMBDA_RUNTIME_API is not set and this test image has no emulator" 1>&2
  exit 1
fi
exec /var/runtime/bootstrap
