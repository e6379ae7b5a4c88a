#!/bin/sh
# Build the gateway's image without a Docker daemon or a registry: a Debian bookworm root
# filesystem (mmdebstrap) with python3, the package and its dependencies installed in a
# venv at /opt/gateway (wheels built here, on the same Python 3.11 ABI), committed with
# buildah as an OCI image; same entry point, user and command as deploy/Dockerfile.
#
#   deploy/build-image.sh [IMAGE_NAME]          # default: traefikservice-asgi:latest
#   -> the image in buildah's local storage (vfs driver) and deploy/build/image.oci.tar
#
# Needs: apt-get install -y buildah mmdebstrap (root), a python3.11 with pip.
set -eu
name=${1:-traefikservice-asgi:latest}
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/deploy/build"
python=${PYTHON:-python3}
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
rm -rf "$out" && mkdir -p "$out/wheels"

"$python" -m pip wheel --quiet --wheel-dir "$out/wheels" "$here"

mmdebstrap --quiet --variant=apt --include=python3,python3-venv,ca-certificates \
  --customize-hook="mkdir -p \"\$1/tmp/wheels\"" \
  --customize-hook="copy-in $out/wheels /tmp" \
  --customize-hook='chroot "$1" python3 -m venv /opt/gateway' \
  --customize-hook='chroot "$1" env -i PATH=/usr/bin:/bin /opt/gateway/bin/pip install --quiet --no-index --find-links /tmp/wheels traefikservice-asgi' \
  --customize-hook='rm -rf "$1/tmp/wheels" "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
  --customize-hook='chroot "$1" useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway' \
  bookworm "$out/rootfs.tar" http://deb.debian.org/debian

ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$out/rootfs.tar" /
buildah config --user 10001:10001 --port 8000 --workingdir / \
  --env PATH=/opt/gateway/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --entrypoint '["/opt/gateway/bin/traefikservice-asgi"]' \
  --cmd 'serve --kubernetes --host 0.0.0.0 --port 8000' "$ctr"
buildah commit --quiet "$ctr" "$name"
buildah push --quiet "$name" "oci-archive:$out/image.oci.tar:$name"
rm -f "$out/rootfs.tar"
echo "built $name ($out/image.oci.tar)"
