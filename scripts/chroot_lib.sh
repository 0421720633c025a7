# Helpers of the scripts that build and use Debian chroots (build_oracle.sh; pack_caffe_gpu.sh runs in the GPU
# image's build stage with in_chroot). Source it; the functions work on the chroot folder $ROOT. Needs root.

ready_or_root() {  # ready_or_root STAMP CONTENT NAME: exit 0 ("NAME: ready at $ROOT") when the file STAMP
  # holds CONTENT (the chroot is built); otherwise go on building, which needs root (exit 2 without)
  if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
    echo "$3: ready at $ROOT"
    exit 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "$3: building $ROOT needs root (debootstrap, chroot); run as root, or point to a built chroot" >&2
    exit 2
  fi
}

need_debootstrap() {  # install debootstrap on the host when it is missing
  if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
}

new_chroot() {  # new_chroot SUITE: a minimal Debian SUITE (main) in $ROOT unless one is there;
  # non-zero when debootstrap fails (its log: $ROOT.debootstrap.log)
  [ -x "$ROOT/usr/bin/apt-get" ] && return 0
  rm -rf "$ROOT"
  mkdir -p "$(dirname "$ROOT")"
  debootstrap --variant=minbase "$1" "$ROOT" >"$ROOT.debootstrap.log" 2>&1
}

in_chroot() {  # in_chroot COMMAND...: run inside $ROOT with a private /proc that disappears with the process
  unshare --mount --propagation private sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$ROOT" "$@"
}
