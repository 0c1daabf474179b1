#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, etcd, helm, the kstatus helper, actionlint,
# promtool and Prometheus, and krew (with krew's manifest validator) from their Go modules into
# $BIN_DIR (default .cache/bin); with names as arguments (e.g. `build-binaries.sh kstatus`),
# only those.
# Go's module and build caches make a second build take seconds; a binary is rebuilt only
# when its wrapper module (go.mod, go.sum, *.go) or its build flags changed since the last build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin_dir=${BIN_DIR:-$here/../../.cache/bin}
mkdir -p "$bin_dir"
bin_dir=$(cd "$bin_dir" && pwd)
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

module_version() { # module version as required in go.mod
  awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$1/go.mod"
}

wanted() { [ ${#selected[@]} -eq 0 ] || [[ " ${selected[*]} " == *" $1 "* ]]; }
selected=("$@")
for name in "${selected[@]}"; do
  [ -d "$here/gobuild/$name" ] || { echo "build-binaries: no wrapper module $name" >&2; exit 2; }
done

build() { # name, package, ldflags, [wrapper module directory under gobuild/, default: name]
  local name=$1 package=$2 ldflags=$3 src=$here/gobuild/${4:-$1}
  wanted "$name" || wanted "${4:-$1}" || return 0  # a wrapper module's name builds all its binaries
  local stamp
  # The stamp covers what the binary is made of: the wrapper module and the flags it is built with.
  stamp=$( (cat "$src"/go.mod "$src"/go.sum $(ls "$src"/*.go 2>/dev/null); echo "$package $ldflags") |
    sha256sum | cut -c1-16)
  if [ -x "$bin_dir/$name" ] && [ "$(cat "$bin_dir/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "build-binaries: $name is up to date"
    return
  fi
  echo "build-binaries: building $name (the first build compiles a few thousand packages; later ones are cached)"
  local start=$SECONDS
  # go build -v names each package as it compiles it: print a running count as progress.
  (cd "$src" && go build -v -trimpath -ldflags "$ldflags" -o "$bin_dir/$name.tmp" "$package") 2>&1 |
    awk -v n="$name" '{c++} c % 200 == 0 {printf "build-binaries: %s: %d packages compiled\n", n, c; fflush()} /\.go:[0-9]+/ {print; fflush()}'
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "build-binaries: $name failed" >&2; exit 1; }
  mv "$bin_dir/$name.tmp" "$bin_dir/$name"
  echo "$stamp" > "$bin_dir/$name.stamp"
  echo "build-binaries: $name built in $((SECONDS - start)) s"
}

kube=$(module_version "$here/gobuild/kube-apiserver" k8s.io/kubernetes)
minor=$(echo "$kube" | cut -d. -f2)
kube_version_flags="-s -w \
  -X k8s.io/component-base/version.gitVersion=$kube \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=$minor \
  -X k8s.io/component-base/version.gitTreeState=clean \
  -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
build kube-apiserver . "$kube_version_flags"
# Garbage collection and namespace deletion in the tests: the same k8s.io/kubernetes release
# (test_binaries.py checks that both wrapper modules require the same one).
build kube-controller-manager . "$kube_version_flags"

build etcd . "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$(module_version "$here/gobuild/etcd" go.etcd.io/etcd/server/v3)"

# helm's release flags (its Makefile): the version, and the Kubernetes version `helm template` and
# `helm lint` assume without --kube-version, derived from client-go's (v0.34 -> 1.34). Without them
# helm assumes v1.20.0 and refuses charts that require a newer Kubernetes.
helm=$(module_version "$here/gobuild/helm" helm.sh/helm/v3)
client_go=$(module_version "$here/gobuild/helm" k8s.io/client-go)
k8s_major=$(($(echo "${client_go#v}" | cut -d. -f1) + 1))
k8s_minor=$(echo "$client_go" | cut -d. -f2)
build helm helm.sh/helm/v3/cmd/helm "-s -w \
  -X helm.sh/helm/v3/internal/version.version=$helm \
  -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$k8s_major \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$k8s_major \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"

# kstatus as Flux computes it (sigs.k8s.io/cli-utils), for the GitOps health tests.
build kstatus . "-s -w"

build actionlint github.com/rhysd/actionlint/cmd/actionlint "-s -w"

# promtool checks and unit-tests the chart's alert rules; Prometheus scrapes the operator in the
# live check of the dashboard's and alerts' queries. One wrapper module pins both.
prometheus=$(module_version "$here/gobuild/prometheus" github.com/prometheus/prometheus)
prometheus_ldflags="-s -w -X github.com/prometheus/common/version.Version=$prometheus"
build promtool github.com/prometheus/prometheus/cmd/promtool "$prometheus_ldflags" prometheus
build prometheus github.com/prometheus/prometheus/cmd/prometheus "$prometheus_ldflags" prometheus

# krew's tests only: install the plugin archive from a local file, validate the manifest.
krew=$(module_version "$here/gobuild/krew" sigs.k8s.io/krew)
build krew sigs.k8s.io/krew/cmd/krew "-s -w -X sigs.k8s.io/krew/internal/version.gitTag=$krew"
build validate-krew-manifest sigs.k8s.io/krew/cmd/validate-krew-manifest "-s -w" krew
