#!/usr/bin/env bash
# Builds the rig's binaries from pinned Go modules into a cache outside the repository:
#   ${DATAMANAGER_RIG_CACHE:-~/.cache/datamanager-rig}/<component>-<version>/bin/
# A component is rebuilt only when its pinned version changes (its directory name is the cache key).
# MariaDB comes from Debian packages and is installed here too when missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${DATAMANAGER_RIG_CACHE:-$HOME/.cache/datamanager-rig}
mkdir -p "$cache"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

say() { printf '[rig-build] %s\n' "$*" >&2; }

# Runs "go build" in a throw-away wrapper module: $1 = destination dir, $2 = go.mod body, rest = build args.

kubernetes() {
  local dest="$cache/kubernetes-$KUBERNETES_VERSION"
  [ -x "$dest/bin/kubectl" ] && [ -x "$dest/bin/kube-apiserver" ] && return 0
  say "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBERNETES_VERSION (cold: ~6-10 min on 2 cores)"
  local work; work=$(mktemp -d)
  go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" >/dev/null
  local src; src=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  {
    echo "module datamanager.local/rig/kubernetes"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    # Every staging module the upstream go.mod points at a local path gets its published tag instead.
    sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$src/go.mod" |
      while read -r mod; do echo "	$mod => $mod $KUBERNETES_STAGING_VERSION"; done
    echo ")"
  } > "$work/go.mod"
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  local major minor
  major=$(echo "$KUBERNETES_VERSION" | sed -E 's/^v([0-9]+)\..*/\1/')
  minor=$(echo "$KUBERNETES_VERSION" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  (
    cd "$work"
    go mod tidy
    mkdir -p "$dest.tmp/bin"
    go build -trimpath -ldflags "$ldflags" -o "$dest.tmp/bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  )
  rm -rf "$work" "$dest"; mv "$dest.tmp" "$dest"
}

etcd() {
  local dest="$cache/etcd-$ETCD_VERSION"
  [ -x "$dest/bin/etcd" ] && return 0
  say "building etcd $ETCD_VERSION (~3 min)"
  local work; work=$(mktemp -d)
  cat > "$work/go.mod" <<GOMOD
module datamanager.local/rig/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3/etcdmain"
GO
  cat > "$work/main.go" <<'GO'
// Command etcd is etcd's own main, built from the published server module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  rm "$work/tools.go"
  (cd "$work" && go mod tidy && mkdir -p "$dest.tmp/bin" && go build -trimpath -ldflags "-s -w" -o "$dest.tmp/bin/etcd" .)
  rm -rf "$work" "$dest"; mv "$dest.tmp" "$dest"
}

ferretdb() {
  local dest="$cache/ferretdb-$FERRETDB_VERSION"
  [ -x "$dest/bin/ferretdb" ] && return 0
  say "building FerretDB $FERRETDB_VERSION (~5 min)"
  local work; work=$(mktemp -d)
  cat > "$work/go.mod" <<GOMOD
module datamanager.local/rig/ferretdb

go 1.26.0

require github.com/FerretDB/FerretDB $FERRETDB_VERSION
GOMOD
  # FerretDB's main reads build/version/version.txt embedded at build time; the module zip lacks a
  # generated value, so the wrapper's main calls the library entry point with telemetry disabled.
  cat > "$work/main.go" <<'GO'
// Command ferretdb starts FerretDB through its embeddable package, so no generated version file is needed.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "address to listen on")
	state := flag.String("sqlite-url", "file:data/", "SQLite backend directory URL")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Handler:  "sqlite",
		SQLiteURL: *state,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
GO
  (cd "$work" && go mod tidy && mkdir -p "$dest.tmp/bin" && go build -trimpath -ldflags "-s -w" -o "$dest.tmp/bin/ferretdb" .)
  rm -rf "$work" "$dest"; mv "$dest.tmp" "$dest"
}

nats_server() {
  local dest="$cache/nats-server-$NATS_SERVER_VERSION"
  [ -x "$dest/bin/nats-server" ] && return 0
  say "building nats-server $NATS_SERVER_VERSION (~1 min)"
  mkdir -p "$dest.tmp/bin"
  GOBIN="$dest.tmp/bin" go install -trimpath "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

helm() {
  local dest="$cache/helm-$HELM_VERSION"
  [ -x "$dest/bin/helm" ] && return 0
  say "building helm $HELM_VERSION (~3 min)"
  mkdir -p "$dest.tmp/bin"
  GOBIN="$dest.tmp/bin" go install -trimpath \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

# ArgoCD's own code as a test driver (tests/rig/argocd-check/, see its main.go). The cache key also holds a
# hash of the driver's source, so editing the driver rebuilds it. The v2 module's go.mod pins its Kubernetes
# libraries with replace directives, which only the main module can apply: the wrapper copies them.
argocd_check() {
  local src="$here/argocd-check" key
  key=$(argocd_check_key)
  local dest="$cache/argocd-check-$ARGOCD_VERSION-$key"
  [ -x "$dest/bin/argocd-check" ] && return 0
  say "building argocd-check from github.com/argoproj/argo-cd/v2 $ARGOCD_VERSION (~3 min)"
  local work; work=$(mktemp -d)
  local mod; mod=$(go mod download -json "github.com/argoproj/argo-cd/v2@$ARGOCD_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  {
    echo "module datamanager.local/rig/argocd-check"
    echo
    echo "go 1.26.0"
    echo
    echo "require github.com/argoproj/argo-cd/v2 $ARGOCD_VERSION"
    echo
    sed -n '/^replace (/,/^)/p' "$mod/go.mod"
  } > "$work/go.mod"
  cp "$src/main.go" "$work/"
  # A copy of the module (without its docs and manifests) with one file added to its controller/cache
  # package that exports two unexported functions (Go refuses overlays of files in the module cache).
  echo "replace github.com/argoproj/argo-cd/v2 => ./argo-cd" >> "$work/go.mod"
  cp -r "$mod" "$work/argo-cd" && chmod -R u+w "$work/argo-cd"
  rm -rf "$work/argo-cd/docs" "$work/argo-cd/kustomize" "$work/argo-cd/manifests"
  cp "$src/cache_export.go.in" "$work/argo-cd/controller/cache/zz_rig_export.go"
  (cd "$work" && go mod tidy && mkdir -p "$dest.tmp/bin" &&
    go build -trimpath -ldflags "-s -w" -o "$dest.tmp/bin/argocd-check" .)
  rm -rf "$work" "$dest"; mv "$dest.tmp" "$dest"
}

argocd_check_key() {
  cat "$here/argocd-check/main.go" "$here/argocd-check/cache_export.go.in" | sha256sum | cut -c1-12
}

# ArgoCD itself (one binary: the application controller and the repo-server by ARGOCD_BINARY_NAME) and its
# Application and AppProject CRDs, for the e2e test that syncs argocd/application.yaml on the rig.
argocd() {
  local dest="$cache/argocd-$ARGOCD_VERSION"
  [ -x "$dest/bin/argocd" ] && return 0
  say "building argocd $ARGOCD_VERSION (application controller, repo-server; ~8 min)"
  local work; work=$(mktemp -d)
  local mod; mod=$(go mod download -json "github.com/argoproj/argo-cd/v2@$ARGOCD_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  {
    echo "module datamanager.local/rig/argocd"
    echo
    echo "go 1.26.0"
    echo
    echo "require github.com/argoproj/argo-cd/v2 $ARGOCD_VERSION"
    echo
    sed -n '/^replace (/,/^)/p' "$mod/go.mod"
  } > "$work/go.mod"
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/argoproj/argo-cd/v2/cmd"
GO
  (cd "$work" && go mod tidy && mkdir -p "$dest.tmp/bin" "$dest.tmp/crds" &&
    go build -trimpath -ldflags "-s -w -X github.com/argoproj/argo-cd/v2/common.version=${ARGOCD_VERSION#v}" \
      -o "$dest.tmp/bin/argocd" github.com/argoproj/argo-cd/v2/cmd)
  cp "$mod/manifests/crds/application-crd.yaml" "$mod/manifests/crds/appproject-crd.yaml" "$dest.tmp/crds/"
  rm -rf "$work" "$dest"; mv "$dest.tmp" "$dest"
}

promtool() {
  local dest="$cache/promtool-$PROMETHEUS_VERSION"
  [ -x "$dest/bin/promtool" ] && return 0
  say "building promtool from github.com/prometheus/prometheus $PROMETHEUS_VERSION (~3 min)"
  local work; work=$(mktemp -d)
  cat > "$work/go.mod" <<GOMOD
module datamanager.local/rig/promtool

go 1.26.0

require github.com/prometheus/prometheus $PROMETHEUS_VERSION
GOMOD
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
GO
  (cd "$work" && go mod tidy && mkdir -p "$dest.tmp/bin" &&
    go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
      -o "$dest.tmp/bin/promtool" github.com/prometheus/prometheus/cmd/promtool)
  rm -rf "$work" "$dest"; mv "$dest.tmp" "$dest"
}

helm_docs() {
  local dest="$cache/helm-docs-$HELM_DOCS_VERSION"
  [ -x "$dest/bin/helm-docs" ] && return 0
  say "building helm-docs $HELM_DOCS_VERSION (~1 min)"
  mkdir -p "$dest.tmp/bin"
  GOBIN="$dest.tmp/bin" go install -trimpath -ldflags "-s -w" "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

mariadb() {
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] && return 0
  say "installing $MARIADB_DEBIAN_PACKAGE from Debian packages (~1 min)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "$MARIADB_DEBIAN_PACKAGE" >/dev/null
  # The package starts a system instance; the rig runs its own, so stop the packaged one.
  (service mariadb stop || true) >/dev/null 2>&1
}

redis() {
  command -v redis-server >/dev/null 2>&1 && return 0
  say "installing $REDIS_DEBIAN_PACKAGE from Debian packages (ArgoCD's cache; ~1 min)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "$REDIS_DEBIAN_PACKAGE" >/dev/null
  # The package starts a system instance; the test starts its own, so stop the packaged one.
  (service redis-server stop || true) >/dev/null 2>&1
}

libfaketime() {
  # the exactly-once tests run an operator replica whose wall clock is skewed (LD_PRELOAD)
  ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 && return 0
  say "installing libfaketime from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends libfaketime >/dev/null
}

# Podman, Buildah and runc build the image and run the process node's pods as containers (container mode).
# Only where apt-get exists; elsewhere the rig runs pods as processes and says why (docs/rig.md).
container_tools() {
  local missing=()
  for tool in $CONTAINER_DEBIAN_PACKAGES; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || { say "no apt-get: not installing ${missing[*]} (pods run as processes)"; return 0; }
  say "installing ${missing[*]} from Debian packages (~1 min)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # golang-github-containers-common: the default seccomp profile (/usr/share/containers/seccomp.json)
  apt-get install -y -qq --no-install-recommends "${missing[@]}" golang-github-containers-common >/dev/null
}

# The image's base where no registry is reachable: Python from Debian packages (mmdebstrap), one base for
# the runtime and one with python3-venv for the build stage, cached as tarballs and imported into Podman.
# Prints the two tags: BASE_IMAGE=... BUILD_IMAGE=...
image_base_key() {
  printf '%s %s %s' "$IMAGE_BASE_SUITE" "$IMAGE_BASE_PACKAGES" "$IMAGE_BUILD_BASE_PACKAGES" | sha256sum | cut -c1-12
}

image_base() {
  local key; key=$(image_base_key)
  local dest="$cache/image-base-$IMAGE_BASE_SUITE-$key"
  if [ ! -s "$dest/runtime.tar" ] || [ ! -s "$dest/build.tar" ]; then
    command -v mmdebstrap >/dev/null 2>&1 || { echo "image_base: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; return 1; }
    say "building the image's Debian $IMAGE_BASE_SUITE base (runtime and build) with mmdebstrap (~1-2 min)"
    mkdir -p "$dest.tmp"
    local name packages
    for name in runtime build; do
      packages=$IMAGE_BASE_PACKAGES; [ "$name" = build ] && packages=$IMAGE_BUILD_BASE_PACKAGES
      # essential variant + merged /usr without the usrmerge package (which pulls in Perl), no recommends,
      # no documentation: what Python needs to run and nothing else
      SOURCE_DATE_EPOCH=0 mmdebstrap --quiet --variant=essential \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --include="$packages" --aptopt='Apt::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        "$IMAGE_BASE_SUITE" "$dest.tmp/$name.tar" >"$dest.tmp/$name.log" 2>&1 ||
        { tail -n 30 "$dest.tmp/$name.log" >&2; echo "image_base: mmdebstrap failed" >&2; return 1; }
    done
    rm -rf "$dest"; mv "$dest.tmp" "$dest"
  fi
  local runtime="localhost/datamanager-base:$IMAGE_BASE_SUITE-$key" build="localhost/datamanager-build-base:$IMAGE_BASE_SUITE-$key"
  podman image exists "$runtime" || podman import --quiet "$dest/runtime.tar" "$runtime" >/dev/null
  podman image exists "$build" || podman import --quiet "$dest/build.tar" "$build" >/dev/null
  echo "BASE_IMAGE=$runtime BUILD_IMAGE=$build"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(mariadb libfaketime nats_server etcd ferretdb helm kubernetes container_tools promtool helm_docs argocd_check argocd redis)
for t in "${targets[@]}"; do "$t"; done
say "all built: $cache"
