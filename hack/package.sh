#!/usr/bin/env bash
# Builds release tarballs of the procstar agent and client for Linux:
#
#   OUTDIR/procstar-VERSION-linux-ARCH.tar.gz   one per ARCH
#   OUTDIR/SHA256SUMS                           sha256sum -c compatible
#
# Each tarball unpacks to procstar-VERSION-linux-ARCH/ with bin/procstar,
# bin/procctl, deploy/* (systemd unit, env file, README) and LICENSE/README.md
# when the repository has them.
#
# Usage: hack/package.sh [OUTDIR]        (OUTDIR defaults to dist/)
# Environment:
#   ARCHES   GOARCH values to build, space separated (default: amd64 arm64)
#   VERSION  version string (default: git describe --tags --always --dirty,
#            or "devel" outside a git checkout)
#   GO       the go command (default: go)
#   OFFLINE  1: never touch the network (GOPROXY=off); the module cache must
#            hold every dependency, as it does after any `go build ./...`
#
# Static binaries (CGO_ENABLED=0), -trimpath, version and commit stamped
# into procstar.dev/procstar/internal/version.
set -euo pipefail
umask 022 # the tarball's directories and files are world-readable

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

outdir=${1:-dist}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

GO=${GO:-go}
arches=${ARCHES:-amd64 arm64}
if [[ -z ${arches// /} ]]; then
	echo "package.sh: ARCHES is empty" >&2
	exit 2
fi
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
commit=$(git rev-parse HEAD 2>/dev/null || true)
# A version becomes part of file names: refuse anything odd.
if [[ ! $version =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; then
	echo "package.sh: bad version string: '$version'" >&2
	exit 2
fi

if [[ ${OFFLINE:-} == 1 ]]; then
	export GOPROXY=off GOFLAGS="${GOFLAGS:-} -mod=readonly"
fi

# Both binaries read their version from internal/version.
pkg=procstar.dev/procstar/internal/version
ldflags="-s -w -X $pkg.Version=$version -X $pkg.GitCommit=$commit"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarballs=()
for arch in $arches; do
	case $arch in
	amd64 | arm64 | 386 | arm | ppc64le | s390x | riscv64 | loong64 | mips64le) ;;
	*)
		echo "package.sh: unsupported GOARCH: '$arch'" >&2
		exit 2
		;;
	esac
	name=procstar-$version-linux-$arch
	dir=$work/$name
	mkdir -p "$dir/bin" "$dir/deploy"
	for cmd in procstar procctl; do
		CGO_ENABLED=0 GOOS=linux GOARCH=$arch "$GO" build -trimpath \
			-ldflags "$ldflags" -o "$dir/bin/$cmd" "./cmd/$cmd"
	done
	cp deploy/* "$dir/deploy/"
	for f in LICENSE README.md; do
		if [[ -f $f ]]; then
			cp "$f" "$dir/"
		fi
	done
	chmod 0755 "$dir/bin/"*
	chmod 0644 "$dir/deploy/"*
	# Reproducible archive: fixed owner, sorted names, one mtime.
	mtime=$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)
	tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner \
		--mtime="$mtime" -cf - "$name" | gzip -n -9 >"$outdir/$name.tar.gz"
	tarballs+=("$name.tar.gz")
	echo "$outdir/$name.tar.gz"
done

(cd "$outdir" && sha256sum "${tarballs[@]}" >SHA256SUMS)
echo "$outdir/SHA256SUMS"
