#!/usr/bin/env bash
# Builds a runnable image of drill from a binary built here, with no registry: the binary,
# the libraries it links (ldd), a non-root user (10001) and CA certificates, imported with
# `docker import`. The Dockerfile at the repository's root is the one for a real registry.
#
#   scripts/image.sh [BINARY] [TAG]     (default: target/release/drill, else target/debug/drill; drill:local)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-}
if [ -z "$BIN" ]; then
  if [ -x target/release/drill ]; then BIN=target/release/drill; else BIN=target/debug/drill; fi
fi
TAG=${2:-drill:local}
if [ ! -x "$BIN" ]; then
  echo "scripts/image.sh: no binary at $BIN; build one first (cargo build --release -p drill-cli)" >&2
  exit 2
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/var/lib/drill" "$root/etc/drill"
chmod 1777 "$root/tmp"
cp "$BIN" "$root/usr/local/bin/drill"
for lib in $(ldd "$BIN" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
done
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
echo 'drill:x:10001:10001:drill:/var/lib/drill:/usr/sbin/nologin' > "$root/etc/passwd"
echo 'drill:x:10001:' > "$root/etc/group"
chown 10001:10001 "$root/var/lib/drill"
tar -C "$root" -c . | docker import \
  -c 'USER 10001:10001' -c 'WORKDIR /var/lib/drill' -c 'ENV HOME=/var/lib/drill' \
  -c 'EXPOSE 8090' -c 'ENTRYPOINT ["/usr/local/bin/drill"]' -c 'CMD ["--help"]' \
  - "$TAG" >/dev/null
echo "$TAG (from $BIN)"
