#!/bin/sh
# One JSON line: what a participant (and the tests) need to see which instance answered.
printf 'Content-Type: application/json\r\n\r\n'
printf '{"app":"hello","version":"%s","hostname":"%s","greeting":"%s"}\n' \
  "$VERSION" "$(hostname)" "${GREETING:-hello}"
