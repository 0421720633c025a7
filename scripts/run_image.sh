#!/usr/bin/env bash
# Run a dynsal image as `docker run --rm` does, with or without a Docker daemon:
#
#   bash scripts/run_image.sh localhost/dynsal:cpu predict --net stsmax --weights /models/stsconvnet.caffemodel clip.mp4
#
# The image's ENTRYPOINT (dynsal) gets ARGS (none: the image's CMD), as the image's USER (1000) in its
# WORKDIR (/data), with the current folder at /data and the models folder ($DYNSAL_MODELS, default
# ~/.cache/dynsal/models, made when missing) at /models; `--gpus all` where Docker sees an NVIDIA GPU.
# The exit status is dynsal's.
#
# With `docker info` failing, buildah runs it (chroot isolation, overlay storage, the image from the
# default containers storage, never pulled): `buildah run` applies USER and WORKDIR but not ENTRYPOINT or
# CMD, which are read from the image and put in front here; the container is removed afterwards. The
# image's VOLUME entries are dropped from the working container first: buildah sets up a volume for each,
# and one trial saw it race the bind mount onto the same path (an empty /data in 3 of 6 runs; not seen again
# in 18 runs here), while the bind mounts are what those volumes are for. Buildah passes no GPU in: a GPU image runs in CPU mode there.
set -euo pipefail
exec 3>&1  # the container's stdout, while its stderr goes through the filter at the end
ENTRYPOINT=()  # --entrypoint PROG: run PROG instead of the image's ENTRYPOINT, as docker run does
if [ "${1:-}" = "--entrypoint" ] && [ $# -ge 2 ]; then ENTRYPOINT=("$2"); shift 2; fi
[ $# -ge 1 ] || { echo "usage: bash scripts/run_image.sh [--entrypoint PROG] IMAGE [ARGS...]" >&2; exit 2; }
IMAGE="$1"
shift
MODELS="${DYNSAL_MODELS:-$HOME/.cache/dynsal/models}"
mkdir -p "$MODELS"
MOUNTS=(-v "$PWD:/data" -v "$(cd "$MODELS" && pwd):/models")

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  gpus=()
  if docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}' | grep -qw nvidia \
     && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    gpus=(--gpus all)
  fi
  tty=()
  if [ -t 0 ] && [ -t 1 ]; then tty=(-it); fi
  entrypoint=()
  if [ ${#ENTRYPOINT[@]} -gt 0 ]; then entrypoint=(--entrypoint "${ENTRYPOINT[0]}"); fi
  exec docker run --rm "${tty[@]}" "${gpus[@]}" "${entrypoint[@]}" "${MOUNTS[@]}" "$IMAGE" "$@"
fi

store() { buildah --storage-driver overlay "$@"; }
command -v buildah >/dev/null || { echo "run_image: neither a Docker daemon nor buildah here (apt-get install buildah, or bash scripts/build_image.sh cpu installs it)" >&2; exit 1; }
store inspect --type image "$IMAGE" >/dev/null 2>&1 \
  || { echo "run_image: no image $IMAGE in the local containers storage (bash scripts/build_image.sh cpu or gpu builds localhost/dynsal:cpu or :gpu)" >&2; exit 1; }
ctr="$(store from --pull-never --quiet "$IMAGE")"
trap 'store rm "$ctr" >/dev/null' EXIT
config() { store inspect --type container --format "{{range .OCIv1.Config.$1}}{{.}}{{\"\\n\"}}{{end}}" "$ctr"; }
if [ ${#ENTRYPOINT[@]} -gt 0 ]; then entrypoint=("${ENTRYPOINT[@]}"); else mapfile -t entrypoint < <(config Entrypoint); fi
# shellcheck disable=SC2016  # a Go template, not a shell expansion
mapfile -t volumes < <(store inspect --type container --format '{{range $path, $_ := .OCIv1.Config.Volumes}}{{$path}}{{"\n"}}{{end}}' "$ctr")
for volume in "${volumes[@]}"; do
  [ -n "$volume" ] && store config --volume "$volume-" "$ctr"
done
command=("$@")
if [ $# -eq 0 ] && [ ${#ENTRYPOINT[@]} -eq 0 ]; then mapfile -t command < <(config Cmd); fi
# buildah reports a non-zero exit in lines of its own ("subprocess exited with status N", "Error: exit
# status N"); docker run adds nothing to the command's own output, so they are dropped (only those lines).
set +e
store run --isolation chroot "${MOUNTS[@]}" "$ctr" -- "${entrypoint[@]}" "${command[@]}" 2>&1 1>&3 3>&- \
  | grep --line-buffered -v -E '^(subprocess exited with status [0-9]+|Error: exit status [0-9]+)$' >&2 3>&-
status=${PIPESTATUS[0]}
exit "$status"
