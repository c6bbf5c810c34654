#!/usr/bin/env bash
# An offline stand-in for the Redis image docker-compose.yml pulls, beside ../shared/containers/standin-images.sh
# (which makes the Python and Prometheus ones): Debian's redis-server on the stand-in Debian image, tagged as
# the public image, so that the compose test can start Redis where no image registry is reachable. On a
# machine that reaches Docker Hub the real image is pulled instead, and this is not needed.
set -euo pipefail
cd "$(dirname "$0")/.."
image=$(awk '/^  redis:/ {found=1} found && /^    image:/ {print $2; exit}' docker-compose.yml)
case "$image" in */*) ;; *) image="docker.io/library/$image" ;; esac
podman image exists "$image" && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/Containerfile" <<'CONTAINERFILE'
FROM localhost/standin-debian:bookworm
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data
WORKDIR /data
CMD ["redis-server"]
CONTAINERFILE
podman build -q --network host -t "$image" "$work" >/dev/null
echo "stand-in ready: $image"
