#!/usr/bin/env bash
# Builds Kubernetes' own control plane (kube-apiserver, kube-controller-manager, kube-scheduler)
# and etcd from their Go modules, pinned in tests/cluster/controlplane/go.mod, into a cache folder
# keyed by the Kubernetes version and the module sums; reuses the folder when it is complete.
# Also takes KServe's InferenceService CRD from its Go module (crds/). Prints the folder.
# CLOUDML_K8S_CACHE overrides the cache root.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
module="$here/controlplane"
version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2}' "$module/go.mod")"
[ -n "$version" ] || { echo "build.sh: no k8s.io/kubernetes version in $module/go.mod" >&2; exit 1; }
kserve=v0.20.0  # github.com/kserve/kserve: its CRDs (config/crd/full)
sums="$( (cat "$module/go.mod" "$module/go.sum" "$module/etcd/main.go"; echo "$kserve") | sha256sum | cut -c1-12)"
root="${CLOUDML_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jupyter-cloudml/control-plane}"
dest="$root/$version-$sums"
binaries=(kube-apiserver kube-controller-manager kube-scheduler etcd)

crd=crds/serving.kserve.io_inferenceservices.yaml
complete() {
  for b in "${binaries[@]}"; do [ -x "$dest/$b" ] || return 1; done
  [ -s "$dest/$crd" ]
}
if complete; then echo "$dest"; exit 0; fi

command -v go >/dev/null || { echo "build.sh: Go is needed to build the control plane" >&2; exit 1; }
mkdir -p "$root"
work="$(mktemp -d "$root/.build-XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$SECONDS
minor="${version#v1.}"; minor="${minor%%.*}"
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
(
  cd "$module"
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
  go build -trimpath -ldflags "$ldflags" -o "$work/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
  go build -trimpath -ldflags "-s -w" -o "$work/etcd" ./etcd
  kserve_dir="$(go mod download -json "github.com/kserve/kserve@$kserve" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  mkdir -p "$work/crds"
  cp "$kserve_dir/config/crd/full/$(basename "$crd")" "$work/$crd"
) >&2
rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
for old in "$root"/v*; do [ "$old" = "$dest" ] || rm -rf "$old"; done  # other pins' builds
echo "build.sh: built ${binaries[*]} $version in $((SECONDS - start)) s, $(du -sh "$dest" | cut -f1) in $dest" >&2
echo "$dest"
