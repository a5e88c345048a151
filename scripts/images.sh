#!/usr/bin/env bash
# Builds Shoal's container image from deployments/Dockerfile with podman, on a
# host that cannot pull from a container registry: the Dockerfile's base
# images (build arguments) are replaced by local ones made here from Debian's
# packages, once, and kept in podman's image store.
#
#   scripts/images.sh            build localhost/shoal:dev (and the bases)
#   scripts/images.sh bases      only the local base images
#   eval "$(scripts/images.sh env)"   CONTAINERS_CONF for podman commands
#
# The local bases stand in for the public images the Dockerfile names:
#   localhost/shoal-base/debian:bookworm   debootstrap minbase + this host's CA
#                                          bundle (for gcr.io/distroless/cc)
#   localhost/shoal-base/node:20-bookworm  + this host's Node.js 20 and npm
#   localhost/shoal-base/golang:<go>-bookworm  + gcc and this host's Go
# They carry this host's CA bundle so that npm and the Go module proxy work
# behind the same TLS-intercepting proxy the host may sit behind.
set -euo pipefail
cd "$(dirname "$0")/.."

export CONTAINERS_CONF=$PWD/deployments/podman/containers.conf
if [ "${1:-}" = env ]; then
	echo "export CONTAINERS_CONF=$CONTAINERS_CONF"
	exit 0
fi

need=()
for cmd in podman runc debootstrap; do
	command -v "$cmd" >/dev/null || need+=("$cmd")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "images: installing podman, runc and debootstrap (Debian packages)" >&2
	scripts/apt-install.sh podman runc debootstrap
fi

go_version=$(go env GOVERSION) # go1.26.8
debian=localhost/shoal-base/debian:bookworm
node=localhost/shoal-base/node:20-bookworm
golang=localhost/shoal-base/golang:${go_version#go}-bookworm

have() { podman image exists "$1"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! have "$debian"; then
	echo "images: $debian (debootstrap, about a minute)" >&2
	debootstrap --variant=minbase --include=ca-certificates bookworm "$work/rootfs" \
		"${SHOAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 ||
		{ tail -20 "$work/debootstrap.log" >&2; exit 1; }
	cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
	rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
	tar -C "$work/rootfs" -c . | podman import -q - "$debian" >/dev/null
	rm -rf "$work/rootfs"
fi

if ! have "$node"; then
	echo "images: $node (this host's Node.js $(node --version))" >&2
	mkdir -p "$work/node"
	# The files of the host's Node.js: /usr/bin/node and npm's module tree.
	tar -C / -c -h usr/bin/node usr/lib/node_modules/npm | tar -C "$work/node" -x
	cat >"$work/node/Containerfile" <<-EOT
		FROM $debian
		COPY usr /usr
		RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/bin/npm \
		 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/bin/npx
		ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
	EOT
	podman build -q -t "$node" "$work/node" >/dev/null
fi

if ! have "$golang"; then
	echo "images: $golang (gcc from Debian, this host's $go_version)" >&2
	mkdir -p "$work/go"
	cat >"$work/go/Containerfile" <<-EOT
		FROM $debian
		RUN apt-get update -qq \
		 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null \
		 && rm -rf /var/lib/apt/lists/*
		RUN cp -a /host-go /usr/local/go
		ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOPATH=/go
	EOT
	podman build -q -v "$(go env GOROOT):/host-go:ro" -t "$golang" "$work/go" >/dev/null
fi

[ "${1:-}" = bases ] && exit 0

# The Dockerfile's cache mounts (RUN --mount=type=cache) start out as this
# host's Go module, Go build and npm caches, which make test has filled already:
# otherwise a cold build downloads every module and npm package again. The
# image's content does not change (the same go.sum and package-lock.json
# are checked). Buildah keeps a cache mount without an id under
# $TMPDIR/buildah-cache (podman 4.3; later releases add -UID) plus the
# target path; a cache that exists there already is left alone.
seed_cache() { # TARGET HOSTDIR
	local dir at
	mkdir -p "$2"
	for dir in buildah-cache buildah-cache-"$(id -u)"; do
		at=${TMPDIR:-/var/tmp}/$dir$1
		[ -e "$at" ] || [ -L "$at" ] || { mkdir -p "$(dirname "$at")" && ln -s "$2" "$at"; }
	done
}
seed_cache /go/pkg/mod "$(go env GOMODCACHE)"
# The Go build cache too: the Dockerfile builds with -trimpath, whose cache
# keys leave out source directories, so the packages make test compiled
# (it builds with -trimpath as well) are hits inside the container.
seed_cache /root/.cache/go-build "$(go env GOCACHE)"
command -v npm >/dev/null && seed_cache /root/.npm "$(npm config get cache)"

echo "images: localhost/shoal:dev from deployments/Dockerfile" >&2
podman build -f deployments/Dockerfile --format docker \
	--build-arg NODE_IMAGE="$node" \
	--build-arg GO_IMAGE="$golang" \
	--build-arg RUNTIME_IMAGE="$debian" \
	-t localhost/shoal:dev .
# Each changed source tree leaves the previous build's untagged images
# behind (most of a gigabyte): those older than three days go, so that the
# store stays bounded while recent layers keep the next build warm.
podman image prune -f --filter until=72h >/dev/null
