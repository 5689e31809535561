# Shared by scripts/demo, scripts/test and scripts/fuzz: install what is missing, build.
SFL_PACKAGES="gcc pkg-config meson ninja-build libuv1-dev libprotobuf-c-dev protobuf-c-compiler
libsodium-dev libopenblas-dev zlib1g-dev libinih-dev libcmocka-dev dataset-fashion-mnist gzip
clang libclang-rt-14-dev"

sfl_install_deps() {
    local missing=()
    for p in $SFL_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "seedfl: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq >&2 || return 1
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2 || return 1
}

# sfl_build DIR [MESON SETUP ARGS...]: configure once, then build
sfl_build() {
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log" >&2; return 1; }
    fi
    ninja -C "$dir" >"$dir.build.log" 2>&1 || { tail -n 40 "$dir.build.log" >&2; return 1; }
}
