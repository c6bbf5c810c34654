#!/usr/bin/env bash
# The Debian packages a make target needs beyond Python's, installed when they are missing.
#
#   bash tools/system-packages.sh [test|up|standins]      (default: test)
#
#   test      everything `make test` runs (see PACKAGES below for which test needs what)
#   up        what `make up` cannot run without: a Python that makes virtualenvs. Redis and Prometheus are
#             optional there: without them it says so and runs the rest (tools/run_local.py).
#   standins  what tools/standin-images.sh needs to build its images
#
# Every program there: nothing printed, status 0, no apt call. Some missing, as root with apt-get: installs
# exactly the packages that provide them. Otherwise: one message naming them, status 2, nothing installed.
set -euo pipefail
# iptables, runc and debootstrap live in sbin, which a user's PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
group=${1:-test}
PYTHON=${PYTHON:-python3}

has() { command -v "$1" >/dev/null 2>&1; }
# Podman's helpers are found in its own folders, not on PATH.
podman_helper() { [ -x "/usr/lib/podman/$1" ] || [ -x "/usr/libexec/podman/$1" ] || has "$1"; }

# Whether the Debian package is there, judged by the program the tests run from it.
present() {
  case $1 in
    make) has make ;;
    python3) has "$PYTHON" ;;
    # `python -m venv` (the Makefile's first step): Debian ships ensurepip apart, in python3-venv.
    python3-venv) "$PYTHON" -c 'import ensurepip' 2>/dev/null ;;
    git) has git ;;                                   # tests/unit/test_bench.py commits in a scratch repository
    prometheus) has prometheus && has promtool ;;     # test_monitoring.py runs it; test_monitoring_config.py promtool
    chromium) [ -x /usr/bin/chromium ] ;;             # test_live_page.py drives it through Playwright
    kubernetes-client) has kubectl ;;                 # test_kubernetes.py renders with `kubectl kustomize`
    redis-server) has redis-server ;;                 # test_idempotency_redis.py
    nodejs) has node ;;                               # test_grafana_types.py type-checks the dashboard ...
    npm) has npm ;;                                   # ... with @grafana/schema and tsc, installed by npm ci
    util-linux) has unshare ;;                        # test_hostile.py gives a balancer its own /etc/hosts ...
    mount) has mount ;;                               # ... with `unshare --mount` and `mount --bind`
    podman) has podman ;;                             # test_compose_run.py builds and runs docker-compose.yml
    runc) has runc ;;                                 # the runtime tools/standin-images.sh configures Podman with
    netavark) podman_helper netavark ;;               # compose networks ...
    aardvark-dns) podman_helper aardvark-dns ;;       # ... where service names resolve
    iptables) has iptables ;;                         # netavark sets up container networks with it
    catatonit) podman_helper catatonit ;;             # Podman's init (`init: true`, pods' infra containers)
    debootstrap) has debootstrap ;;                   # the stand-ins' Debian root file system
    *) echo "system-packages.sh: no check for package $1" >&2; exit 1 ;;
  esac
}

# A Docker engine that answers (not Podman's docker command) runs the compose test when Podman is absent
# (tests/deployment/test_compose_run.py); then Podman and the stand-ins' tools are not needed.
docker_engine() {
  has docker && ! docker --version 2>/dev/null | grep -qi podman && docker info >/dev/null 2>&1
}

podman_stack=(podman runc netavark aardvark-dns catatonit iptables)
case $group in
  up) wanted=(python3 python3-venv) ;;
  standins) wanted=("${podman_stack[@]}" debootstrap prometheus) ;;
  test)
    wanted=(make python3 python3-venv git prometheus chromium kubernetes-client redis-server nodejs npm util-linux mount)
    if has podman || ! docker_engine; then wanted+=("${podman_stack[@]}" debootstrap); fi
    ;;
  *) echo "usage: bash tools/system-packages.sh [test|up|standins]" >&2; exit 64 ;;
esac

missing=()
for package in "${wanted[@]}"; do
  present "$package" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

target="make $group"
[ "$group" = standins ] && target="tools/standin-images.sh"
if [ "$(id -u)" != 0 ] || ! has apt-get; then
  if has apt-get; then
    echo "$target needs: sudo apt-get install -y ${missing[*]}" >&2
  else
    echo "$target needs these Debian packages (or your system's equivalents): ${missing[*]}" >&2
  fi
  exit 2
fi

echo "installing for $target: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian starts the services it installs: prometheus's and redis-server's would take :9090 and :6379, the
# suite's own ports. policy-rc.d (Debian's switch for that) keeps them stopped during this install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

still=()
for package in "${missing[@]}"; do
  present "$package" || still+=("$package")
done
if [ ${#still[@]} -gt 0 ]; then
  echo "installed, yet still missing what the tests run from: ${still[*]}" >&2
  exit 1
fi
if [ -d /run/systemd/system ]; then
  for service in prometheus redis-server; do
    if [[ " ${missing[*]} " == *" $service "* ]]; then
      echo "note: Debian enabled $service's own service (not started now); it would take the suite's port at" \
        "the next boot: systemctl disable $service"
    fi
  done
fi
