#!/usr/bin/env bash
# Put gpg, gpg-agent and gpgconf into <out>/bin, and tell them where they live.
#
# gpg starts gpg-agent (restores need it for the private key) from its compiled-in bindir,
# /usr/bin on Amazon Linux, which the Lambda runtime does not have. A gpgconf.ctl beside
# gpgconf with rootdir=<where the layer is mounted> makes every GnuPG tool look in
# <rootdir>/bin instead. Lambda mounts layers at /opt; the restore image copies them there too.
#
#     install-gpg.sh <out> [rootdir]        # rootdir defaults to /opt
set -euo pipefail

OUT="${1:?usage: install-gpg.sh <out> [rootdir]}"
ROOTDIR="${2:-/opt}"
mkdir -p "$OUT/bin"
for tool in gpg gpg-agent gpgconf; do
    cp "$(command -v "$tool")" "$OUT/bin/"
done
printf 'rootdir=%s\n' "$ROOTDIR" > "$OUT/bin/gpgconf.ctl"
