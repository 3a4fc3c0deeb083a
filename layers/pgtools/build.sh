#!/usr/bin/env bash
# Build the pgtools Lambda layer: PostgreSQL client tools (pg_dump, pg_restore, psql) and gpg
# for Amazon Linux 2023, the OS of the python3.12 Lambda runtime.
#
# CDK runs this at deploy time inside the AL2023 SAM build image (see infra/functions.py), with
# this folder mounted at /asset-input and the layer written to /asset-output. Lambda unpacks a
# layer under /opt, so binaries land in /opt/bin (on PATH) and libraries in /opt/lib (on
# LD_LIBRARY_PATH).
#
# The client tools are built from source because AL2023's packages lag behind the newest
# PostgreSQL major; pg_dump can dump every older server, never a newer one.
set -euo pipefail

PG_VERSION="${PG_VERSION:?set PG_VERSION, e.g. 18.1}"
OUT="${OUT:-/asset-output}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# bison, flex and perl generate sources that PostgreSQL 17+ tarballs no longer ship prebuilt;
# pkg-config finds zstd, lz4 and OpenSSL for configure.
dnf install -y -q --allowerasing gcc make tar bzip2 findutils bison flex perl pkgconf-pkg-config \
    libzstd-devel lz4-devel openssl-devel zlib-devel gnupg2 >/dev/null

cd "$WORK"
base="https://ftp.postgresql.org/pub/source/v${PG_VERSION}"
curl -fsSLO "${base}/postgresql-${PG_VERSION}.tar.bz2"
curl -fsSLO "${base}/postgresql-${PG_VERSION}.tar.bz2.sha256"
sha256sum --check --status "postgresql-${PG_VERSION}.tar.bz2.sha256"
tar xjf "postgresql-${PG_VERSION}.tar.bz2"
cd "postgresql-${PG_VERSION}"

./configure --quiet --prefix=/opt --without-readline --without-icu --without-perl \
    --without-python --with-zstd --with-lz4 --with-openssl
for dir in src/bin/pg_dump src/bin/psql src/interfaces/libpq; do
    make -s -j"$(nproc)" -C "$dir"
    make -s -C "$dir" install DESTDIR="$WORK/stage"
done

mkdir -p "$OUT/bin" "$OUT/lib"
for tool in pg_dump pg_restore pg_dumpall psql; do
    cp "$WORK/stage/opt/bin/$tool" "$OUT/bin/"
done
cp -P "$WORK"/stage/opt/lib/libpq.so* "$OUT/lib/"
# gpg with its agent (and gpgconf, which stops the agent when the library's throwaway keyring
# is closed), told by gpgconf.ctl that they live in /opt/bin.
bash "$(dirname "$0")/install-gpg.sh" "$OUT" /opt

# Copy the shared libraries the tools need, except glibc and the libraries the runtime itself
# ships and Python links against (shadowing those from /opt/lib could break the runtime).
skip='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libssl|libcrypto|libz)\.'
for binary in "$OUT"/bin/pg_* "$OUT"/bin/psql "$OUT"/bin/gpg*; do
    [[ "$binary" == *.ctl ]] && continue
    ldd "$binary" | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
    name="$(basename "$lib")"
    if ! [[ "$name" =~ $skip ]] && [[ ! -e "$OUT/lib/$name" ]]; then
        cp -L "$lib" "$OUT/lib/$name"
    fi
done
strip --strip-unneeded "$OUT"/bin/pg_* "$OUT"/bin/psql "$OUT"/bin/gpg "$OUT"/bin/gpg-agent \
    "$OUT"/bin/gpgconf "$OUT"/lib/*.so* 2>/dev/null || true

# Smoke test inside the build image: the copied tools run from the layer directories.
LD_LIBRARY_PATH="$OUT/lib" "$OUT/bin/pg_dump" --version
LD_LIBRARY_PATH="$OUT/lib" "$OUT/bin/gpg" --version | head -1
# and gpg finds its agent in the layer once mounted (rootdir is /opt there)
grep -qx 'rootdir=/opt' "$OUT/bin/gpgconf.ctl"
