#!/usr/bin/env bash
# `make image`: builds the Dockerfile into ${IMAGE:-localhost/datamanager:dev} with Docker where its daemon
# answers, else Podman, else Buildah (BUILDER=podman|buildah chooses). The base is BASE_IMAGE/BUILD_IMAGE when given; else the Dockerfile's
# public Python base when it can be pulled; else (no registry reachable) a base built from Debian packages
# (tests/rig/build.sh image_base, cached in ~/.cache/datamanager-rig). Prints the image's size at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${IMAGE:-localhost/datamanager:dev}
public_base=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)
say() { printf '[image] %s\n' "$*" >&2; }

# BUILDER=podman picks Podman over a working Docker (the rig's node runs images from Podman's storage)
if [ "${BUILDER:-}" != podman ] && [ "${BUILDER:-}" != buildah ] && command -v docker >/dev/null 2>&1 &&
   docker info >/dev/null 2>&1; then
  builder=(docker build)
  tool=docker
elif [ "${BUILDER:-}" != buildah ] && command -v podman >/dev/null 2>&1; then
  tool=podman
  # runc: podman's default runtime (crun) refuses this host's cgroups v1; open files no more than the host's
  # own limit (podman's default, 1048576, needs CAP_SYS_RESOURCE where the host's is lower)
  builder=(podman --runtime runc build --ulimit "nofile=$(ulimit -n):$(ulimit -Hn)")
elif command -v buildah >/dev/null 2>&1; then
  tool=buildah
  builder=(buildah --runtime runc build)
else
  say "no container builder: install Docker, or Podman (apt-get install podman buildah runc mmdebstrap)"
  exit 1
fi

args=()
if [ -n "${BASE_IMAGE:-}" ]; then
  args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "BUILD_IMAGE=${BUILD_IMAGE:-$BASE_IMAGE}")
elif $tool pull --quiet "$public_base" >/dev/null 2>&1; then
  say "base: $public_base"
else
  say "$public_base cannot be pulled (no registry reachable): using a base built from Debian packages"
  bases=$(tests/rig/build.sh image_base)
  for pair in $bases; do args+=(--build-arg "$pair"); done
  say "base: $bases"
  # the build stage's pip reaches PyPI through the host's network and trusts the host's CA bundle
  # (a proxy's CA, when there is one)
  if [ "$tool" != docker ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    args+=(--network host --volume /etc/ssl/certs:/etc/ssl/certs:ro)
  fi
fi

version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' datamanager/__init__.py)
revision=$(git rev-parse HEAD 2>/dev/null || true)
start=$(date +%s)
"${builder[@]}" "${args[@]}" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  --tag "$image" --file Dockerfile .
size=$($tool image inspect --format '{{.Size}}' "$image")
say "built $image in $(( $(date +%s) - start ))s with $tool: $(( size / 1000000 )) MB"
