# Sourced by tests/container/run.sh and tests/fresh/run.sh: the packages podman needs here (the
# recipe in shared/container-recipe.md) and the debian:bookworm-slim base image, made once with
# debootstrap (nothing preinstalled, like a fresh machine) and cached as a tar.
#
#   podman_packages_install [EXTRA...]
#
# Installs what is missing of podman, its runtime and networking, debootstrap, and EXTRA.
podman_packages_install() {
  local need=(podman runc catatonit fuse-overlayfs netavark aardvark-dns uidmap debootstrap "$@")
  local missing=() p
  for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
#
#   base_image_load CACHE WORK [PREFIX...]
#
# Loads the image into the podman the caller configured (CONTAINERS_CONF/CONTAINERS_STORAGE_CONF),
# making and caching it first when CACHE has none. WORK is a folder of the caller's for the root
# filesystem. PREFIX runs debootstrap (e.g. nsenter into a mount namespace of the caller's, where
# its chroot mounts stay); without one it runs in a private mount namespace of its own.
# Returns non-zero, with the reason on stderr, when it cannot.
base_image_load() {
  local cache=$1 work=$2 mirror rootfs
  shift 2
  local prefix=("$@")
  [ ${#prefix[@]} -gt 0 ] || prefix=(unshare --mount --propagation private)
  mkdir -p "$cache"
  if [ -s "$cache/debian-bookworm-slim.tar" ]; then
    timeout 300 podman load -q -i "$cache/debian-bookworm-slim.tar" >/dev/null || return 1
    echo "base image loaded from $cache"
  else
    command -v debootstrap >/dev/null || { echo "base image: debootstrap is not installed" >&2; return 1; }
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$work/rootfs
    timeout 600 "${prefix[@]}" debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
      >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; echo "base image: debootstrap failed" >&2; return 1; }
    # apt in the image uses the host's sources (deb822); debootstrap's sources.list would repeat them
    cp /etc/apt/sources.list.d/*.sources "$rootfs/etc/apt/sources.list.d/" 2>/dev/null &&
      rm -f "$rootfs/etc/apt/sources.list"
    rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
      "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
    tar --numeric-owner -C "$rootfs" -c . | timeout 300 podman import -q - debian:bookworm-slim >/dev/null || return 1
    rm -rf "$rootfs"
    timeout 300 podman save -q -o "$cache/debian-bookworm-slim.tar.tmp" debian:bookworm-slim || return 1
    mv "$cache/debian-bookworm-slim.tar.tmp" "$cache/debian-bookworm-slim.tar"
    echo "base image built with debootstrap and cached in $cache"
  fi
  timeout 60 podman tag debian:bookworm-slim docker.io/library/debian:bookworm-slim
}
