#!/usr/bin/env bash
# Offline stand-ins for the public images docker-compose.yml builds from and runs, so that the compose test
# (tests/deployment/test_compose_run.py) runs with Podman on a machine that reaches Debian's and PyPI's
# package registries but no image registry.
#
#   bash tools/standin-images.sh [--rebuild]
#
# Which images: the Python base in the Dockerfile's FROM, and the images of docker-compose.yml's services
# that are not built here: Prometheus and Redis have stand-ins; Grafana has none (nothing packages it for
# Debian), and the compose test does not start it. Each stand-in is Debian's package of the program on a
# Debian root file system (debootstrap, cached in $STANDIN_CACHE), tagged with the public image's name:
#  - docker.io/library/python:TAG: Debian's Python in a virtualenv at /usr/local (python and pip on PATH,
#    as in the official image), trusting this machine's CA certificates, so that `pip install` works;
#  - docker.io/prom/prometheus:TAG: this machine's prometheus (Debian's, a Go binary needing only libc), and
#    wget for its healthcheck;
#  - docker.io/library/redis:TAG: Debian's redis-server and redis-cli.
# A stand-in is not the real image: the versions are Debian's (Python 3.11.2, Prometheus 2.42, Redis 7.0).
#
# Does nothing when the compose test will not use Podman (a Docker engine and no Podman); else configures
# Podman (below) and builds no stand-in for an image its registry would serve. An image that exists is kept: a second run takes seconds.
# --rebuild builds them all again (after a change to a recipe below), from the cached root file system, and
# moves their names only once each is built.
# Building needs root (debootstrap, rootful Podman): about 4 minutes the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
rebuild=false
case ${1:-} in
  "") ;;
  --rebuild) rebuild=true ;;
  *) echo "usage: bash tools/standin-images.sh [--rebuild]" >&2; exit 64 ;;
esac
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
CACHE=${STANDIN_CACHE:-/var/cache/smart-grid-standins}
has() { command -v "$1" >/dev/null 2>&1; }

# The compose test picks Podman when it is installed, else Docker (test_compose_run.engine()).
if ! has podman; then
  if has docker && ! docker --version 2>/dev/null | grep -qi podman && docker info >/dev/null 2>&1; then
    exit 0
  fi
  bash tools/system-packages.sh standins
fi

# Podman as it runs here, whatever the distribution's defaults (a drop-in, so /etc/containers/containers.conf
# is left as it is): runc, the runtime installed with it; netavark, so that service names resolve on compose
# networks (the default here is CNI, without DNS); no default ulimits, since Podman's default raises the
# containers' open files above what a machine like this one allows ("error setting rlimit type 7").
if [ "$(id -u)" = 0 ]; then
  conf=/etc/containers/containers.conf.d/50-smart-grid-load-balancer.conf
  wanted='# Written by smart-grid-load-balancer tools/standin-images.sh: Podman as its compose test runs it.
[containers]
default_ulimits = []
[network]
network_backend = "netavark"
[engine]
runtime = "runc"'
  if [ "$(cat "$conf" 2>/dev/null)" != "$wanted" ]; then
    mkdir -p "$(dirname "$conf")"
    printf '%s\n' "$wanted" >"$conf"
    echo "podman configured: $conf"
  fi
fi

# An image reference as Podman names it: python:3.11 -> docker.io/library/python:3.11.
full_name() {
  local ref=$1
  if [[ $ref != */* ]]; then
    ref="docker.io/library/$ref"
  elif [[ ${ref%%/*} != *.* && ${ref%%/*} != *:* && ${ref%%/*} != localhost ]]; then
    ref="docker.io/$ref"
  fi
  [[ ${ref##*/} == *[:@]* ]] || ref="$ref:latest"
  printf '%s\n' "$ref"
}

# The first FROM of the Dockerfile that is not one of its own stages.
python_image=$(awk 'toupper($1) == "FROM" {
    n = 2; while ($n ~ /^--/) n++
    if (!($n in stage)) { print $n; exit }
    if (toupper($(n + 1)) == "AS") stage[$(n + 2)] = 1
  }' Dockerfile)
# Images of the compose file's services (and x- anchors) that have no `build:`.
compose_images=$(awk '
  function flush() { if (image != "" && !build) print image; image = ""; build = 0 }
  /^[^ #]/ { flush(); top = $1 }
  top == "services:" && /^  [^ #]/ { flush() }
  /^ +build:/ { build = 1 }
  /^ +image:/ { image = $2; gsub(/["\047]/, "", image) }
  END { flush() }' docker-compose.yml)

images=()
for ref in "$python_image" $compose_images; do
  image=$(full_name "$ref")
  [[ " ${images[*]} " == *" $image "* ]] || images+=("$image")
done

# Whether an image's registry answers (any HTTP status will do: an answer means pulls can work).
registry_answers() {
  local host=${1%%/*}
  [ "$host" = docker.io ] && host=registry-1.docker.io
  has python3 || return 1
  python3 - "$host" <<'PY' 2>/dev/null
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(f"https://{sys.argv[1]}/v2/", timeout=5)
except urllib.error.HTTPError:
    pass
PY
}

recipe() {
  case ${1%:*} in
    docker.io/library/python) echo python ;;
    docker.io/prom/prometheus) echo prometheus ;;
    docker.io/library/redis) echo redis ;;
    *) echo none ;;
  esac
}

todo=()
nothing=()
for image in "${images[@]}"; do
  [ "$(recipe "$image")" != none ] && $rebuild && { todo+=("$image"); continue; }
  podman image exists "$image" && continue
  if [ "$(recipe "$image")" = none ]; then
    nothing+=("$image")
  elif ! registry_answers "$image"; then
    todo+=("$image")
  fi
done
[ ${#todo[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "no registry serves ${todo[*]}: their stand-ins are built by root (debootstrap) for root's Podman," \
    "so run this and the compose test as root (sudo bash tools/standin-images.sh)" >&2
  exit 2
fi
bash tools/system-packages.sh standins
started=$SECONDS
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9  # one build at a time on this machine

# The Debian release named in the Python tag (python:3.11.10-slim-bookworm), else bookworm.
suite=$(grep -oE 'bullseye|bookworm|trixie' <<<"${python_image##*:}" || echo bookworm)
base="localhost/standin-debian:$suite"
rootfs="$CACHE/rootfs-$suite"
if { $rebuild || ! podman image exists "$base"; } && [ ! -e "$rootfs/.complete" ]; then
  echo "debootstrap: Debian $suite with Python into $rootfs (once, a few minutes)"
  mirror=$( (grep -rhE '^(URIs:|deb )' /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null || true) \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n 1 | tr -d ' ')
  rm -rf "$rootfs" "$rootfs.partial"
  if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,wget "$suite" \
    "$rootfs.partial" "${mirror:-http://deb.debian.org/debian}" >"$CACHE/debootstrap.log" 2>&1; then
    tail -n 20 "$CACHE/debootstrap.log" >&2
    exit 1
  fi
  # Like the public slim images: no package lists nor downloaded packages.
  rm -rf "$rootfs.partial"/var/lib/apt/lists/* "$rootfs.partial"/var/cache/apt/archives/*.deb
  touch "$rootfs.partial/.complete"
  mv "$rootfs.partial" "$rootfs"
fi
if $rebuild || ! podman image exists "$base"; then
  echo "importing $base from $rootfs"
  tar -C "$rootfs" --exclude=./.complete -c . | podman import -q - "$base" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# This machine's CA certificates, which may include a proxy's: pip and apt inside the builds go out through
# the same network.
bundle=/etc/ssl/certs/ca-certificates.crt
if [ -f "$bundle" ]; then cp "$bundle" "$work/"; else podman run --rm "$base" cat "$bundle" >"$work/ca-certificates.crt"; fi

containerfile() {
  case $1 in
    python)
      cat <<CONTAINERFILE
FROM $base
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /usr/local
ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
CONTAINERFILE
      ;;
    prometheus)
      cp "$(command -v prometheus)" "$work/prometheus"
      cat <<CONTAINERFILE
FROM $base
COPY prometheus /bin/prometheus
RUN mkdir -p /prometheus /etc/prometheus && chown 65534:65534 /prometheus
USER 65534
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
CONTAINERFILE
      ;;
    redis)
      cat <<CONTAINERFILE
FROM $base
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN apt-get update -qq \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \\
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data
WORKDIR /data
CMD ["redis-server"]
CONTAINERFILE
      ;;
  esac
}

for image in "${todo[@]}"; do
  ! $rebuild && podman image exists "$image" && continue  # built meanwhile by another run
  echo "building stand-in for $image"
  kind=$(recipe "$image")
  containerfile "$kind" >"$work/Containerfile.$kind"
  if ! podman build --network host -f "$work/Containerfile.$kind" -t "$image" "$work" >"$work/build.log" 2>&1; then
    tail -n 30 "$work/build.log" >&2
    exit 1
  fi
  if [ "$kind" = python ]; then  # the tag's Python version, and Debian's
    asked=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"${image##*:}")
    found=$(podman run --rm "$image" python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [ "$asked" = "$found" ] || echo "note: the stand-in for $image runs Python $found, not $asked"
  fi
done
for image in "${nothing[@]}"; do
  echo "no stand-in for $image (no Debian package of it; the compose test does not start it)"
done
echo "stand-ins ready in $((SECONDS - started)) s: ${todo[*]}"
