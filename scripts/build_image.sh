#!/usr/bin/env bash
# Build dynsal's Docker image and tag it in the local image store:
#
#   bash scripts/build_image.sh cpu       # docker/Dockerfile.cpu -> localhost/dynsal:cpu
#   bash scripts/build_image.sh gpu       # docker/Dockerfile -> localhost/dynsal:gpu (CUDA Caffe + torch)
#   bash scripts/build_image.sh gpu-build # its build stage (--target build) -> localhost/dynsal:gpu-build: the
#                                         # CUDA 13 build environment scripts/pack_caffe_gpu.sh compiles in
#
# Environment: CUDA_ARCH_BIN / CUDA_ARCH_PTX, when set, are passed to the GPU image's build as build arguments
# (CI: CUDA_ARCH_BIN=90, machine code for one architecture, to save compile time; unset: the Dockerfile's set).
#
# - dynsal goes in as a wheel built here first (build/image-wheel/, from a copy of the package files, so
#   the checkout gets no build/ or egg-info of setuptools'; by $PYTHON, else .venv/bin/python, else python3),
#   bind-mounted into the one RUN that installs it:
#   no PyPI for dynsal itself, and neither the wheel nor the source stays in a layer.
# - `docker build` where a Docker daemon answers (`docker info`), else buildah (apt-get installed where
#   missing) with overlay storage, chroot isolation and --layers (unchanged steps come from its cache), in
#   the default containers storage: `buildah from localhost/dynsal:cpu` finds the result.
# - A FROM image that is neither in the local store nor pullable (these machines reach no registry) is
#   replaced by a stand-in made from the same Debian release: debootstrap --variant=minbase, trimmed as
#   Debian's official slim images are, tagged with the FROM line's exact name (one line says so). A base given
#   as `ARG BASE=NAME[@sha256:DIGEST]` (docker/Dockerfile) is read from that default; a stand-in cannot match a
#   digest, so it is tagged NAME and the build gets `--build-arg BASE=NAME`. Its root
#   file system is cached in $DYNSAL_IMAGE_CACHE (default /var/cache/dynsal/images) under a hash of its
#   recipe, and the stand-in image carries that hash as its label dynsal.stand-in (so do images built on it): a second build reuses both.
# - A step that reaches PyPI or an HTTPS archive gets the host's CA bundle as the build secret `host_ca`
#   (`RUN --mount=type=secret,id=host_ca`) where the Dockerfile asks for it and the host has one: a secret
#   is mounted for that step only and is never stored in a layer.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${DYNSAL_IMAGE_CACHE:-/var/cache/dynsal/images}"
WHEELS="build/image-wheel"  # relative to the repository: the build context
HOST_CA=/etc/ssl/certs/ca-certificates.crt
# the Python that builds the wheel: $PYTHON, else the project's environment (scripts/install_dev.sh: .venv, with
# setuptools>=77 from the test extra, so no PyPI), else python3 (pip then fetches setuptools in isolation)
PYTHON="${PYTHON:-}"
TARGET=()  # --target STAGE: build only up to that stage

say() { echo "build_image: $*" >&2; }
die() { say "$*"; exit "${2:-1}"; }

case "${1:-}" in
  cpu) DOCKERFILE=docker/Dockerfile.cpu; TAG=localhost/dynsal:cpu ;;
  gpu) DOCKERFILE=docker/Dockerfile; TAG=localhost/dynsal:gpu ;;
  gpu-build) DOCKERFILE=docker/Dockerfile; TAG=localhost/dynsal:gpu-build; TARGET=(--target build) ;;
  *) die "usage: bash scripts/build_image.sh cpu|gpu|gpu-build" 2 ;;
esac
cd "$REPO"
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

build_wheel() {  # dynsal's wheel into $WHEELS (only it), built offline where the host's setuptools allows
  local src
  src="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf '$src'" RETURN
  tar --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml setup.py README.md LICENSE NOTICE MANIFEST.in \
    dynsal | tar -C "$src" -xf -
  rm -rf "$WHEELS"
  mkdir -p "$WHEELS"
  # zip timestamps fixed (SOURCE_DATE_EPOCH, 1980-01-01: the zip format's first day), so the same sources give
  # the same wheel, the same SHA-256 and a build taken wholly from cache
  export SOURCE_DATE_EPOCH=315532800
  "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$WHEELS" "$src" 2>/dev/null \
    || "$PYTHON" -m pip wheel -q --no-deps -w "$WHEELS" "$src" \
    || die "building dynsal's wheel failed ($PYTHON -m pip wheel --no-deps $src)"
  local wheel
  wheel="$(echo "$WHEELS"/dynsal-*.whl)"
  BUILD_ARGS+=(--build-arg "DYNSAL_WHEEL_SHA256=$(sha256sum "$wheel" | cut -d' ' -f1)")
  say "dynsal wheel: $wheel"
}

base_image() {  # the first FROM's image (ARG BASE's default for `FROM ${BASE}`), as the container tools name it
  local name
  name="$(awk 'toupper($1) == "FROM" { print $2; exit }' "$DOCKERFILE")"
  # shellcheck disable=SC2016  # the Dockerfile's text, not a shell expansion
  case "$name" in
    '${BASE}'|'$BASE') name="$(sed -n 's/^ARG BASE=//p' "$DOCKERFILE" | head -1)" ;;
  esac
  case "$name" in
    */*/*|localhost/*) echo "$name" ;;
    */*) case "${name%%/*}" in *.*|*:*) echo "$name" ;; *) echo "docker.io/$name" ;; esac ;;
    *) echo "docker.io/library/$name" ;;
  esac
}

# Debian's slim images (debuerreotype --slimify and its minimizing config): no docs but copyrights, no man
# pages, info, lintian overrides or locales, dpkg told to skip them in later installs, apt without caches
# or translations, services never started by package scripts.
slim_trim() {
  local root="$1"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  cat >"$root/etc/apt/sources.list" <<EOF
deb http://deb.debian.org/debian $2 main
deb http://deb.debian.org/debian-security $2-security main
deb http://deb.debian.org/debian $2-updates main
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{info,linda,man}/* "$root"/usr/share/lintian/overrides/* "$root"/var/lib/apt/lists/* \
    "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log "$root"/var/log/apt/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  : >"$root/etc/machine-id"
}

make_stand_in() {  # $1: the FROM image (docker.io/library/debian:<release>-<date>-slim)
  local name="$1" tag release key rootfs tarball ctr
  tag="${name##*:}"
  release="${tag%%-*}"
  case "$name" in
    docker.io/library/debian:*) ;;
    *) die "the base $name cannot be pulled, and a stand-in can only be made for Debian's images" ;;
  esac
  key="$(printf '%s\n' "$release" "$(declare -f slim_trim make_stand_in)" | sha256sum | cut -c1-16)"
  tarball="$CACHE/debian-$release-slim-$key.tar"
  if [ "$(store inspect --type image --format '{{index .OCIv1.Config.Labels "dynsal.stand-in"}}' "$name" \
          2>/dev/null)" = "$key" ]; then
    say "the base $name cannot be pulled: using the stand-in made earlier from Debian $release ($tarball)"
    return
  fi
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || apt_install debootstrap
    mkdir -p "$CACHE"
    rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    say "debootstrap --variant=minbase $release (about a minute; log: $tarball.log)"
    debootstrap --variant=minbase "$release" "$rootfs" http://deb.debian.org/debian >"$tarball.log" 2>&1 \
      || die "debootstrap $release failed (see $tarball.log)"
    slim_trim "$rootfs" "$release"
    tar -C "$rootfs" --numeric-owner -cf "$tarball.part" .
    rm -rf "$rootfs"
    mv "$tarball.part" "$tarball"
  fi
  ctr="$(store from scratch)"
  store add "$ctr" "$tarball" / >/dev/null
  store config --cmd bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label "dynsal.stand-in=$key" "$ctr"
  store commit -q --rm "$ctr" "$name" >/dev/null
  say "the base $name cannot be pulled: using a stand-in made from Debian $release (debootstrap --variant=minbase, trimmed as the official slim image; cached in $tarball)"
}

apt_install() {
  say "apt-get install $*"
  local _
  for _ in 1 2 3 4 5 6; do
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; then return; fi
    sleep 10  # another apt may hold the dpkg lock
  done
  die "apt-get install $* failed"
}

store() { buildah --storage-driver overlay "$@"; }

build_with_docker() {
  local base secret=()
  base="$(base_image)"
  if ! docker image inspect "$base" >/dev/null 2>&1 && ! docker pull -q "$base" >/dev/null 2>&1; then
    die "docker cannot pull $base; build without a Docker daemon to use a stand-in (buildah)"
  fi
  if grep -q 'id=host_ca' "$DOCKERFILE" && [ -s "$HOST_CA" ]; then secret=(--secret "id=host_ca,src=$HOST_CA"); fi
  DOCKER_BUILDKIT=1 docker build "${secret[@]}" "${BUILD_ARGS[@]}" "${TARGET[@]}" -f "$DOCKERFILE" -t "$TAG" .
}

build_with_buildah() {
  local base secret=()
  command -v buildah >/dev/null || apt_install buildah
  base="$(base_image)"
  if ! store inspect --type image "$base" >/dev/null 2>&1 && ! store pull -q "$base" >/dev/null 2>&1; then
    make_stand_in "${base%@*}"
    stand_in=1
  elif [ -n "$(store inspect --type image --format '{{index .OCIv1.Config.Labels "dynsal.stand-in"}}' "$base")" ]; then
    make_stand_in "${base%@*}"  # an earlier stand-in: reused when its recipe is unchanged, else made again
    stand_in=1
  fi
  if [ -n "${stand_in:-}" ] && grep -q '^ARG BASE=' "$DOCKERFILE"; then BUILD_ARGS+=(--build-arg "BASE=${base%@*}"); fi
  if grep -q 'id=host_ca' "$DOCKERFILE" && [ -s "$HOST_CA" ]; then secret=(--secret "id=host_ca,src=$HOST_CA"); fi
  store bud --isolation chroot --layers --force-rm --format docker --pull-never "${secret[@]}" "${BUILD_ARGS[@]}" \
    "${TARGET[@]}" -f "$DOCKERFILE" -t "$TAG" .
}

BUILD_ARGS=()
for arg in CUDA_ARCH_BIN CUDA_ARCH_PTX; do
  if [ -n "${!arg+set}" ] && grep -q "^ARG $arg=" "$DOCKERFILE"; then BUILD_ARGS+=(--build-arg "$arg=${!arg}"); fi
done
build_wheel
started=$SECONDS
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  build_with_docker
else
  build_with_buildah
fi
say "built $TAG from $DOCKERFILE in $((SECONDS - started)) s"
