#!/usr/bin/env bash
# install_embed: install switchboard from BUILD_DIR into a fresh prefix, build the embedding
# example (SOURCE_DIR/examples/embed) against that prefix exactly as a host application
# would, and run it.
#
# Usage: embed_install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }

prefix=$tmp/prefix
host_build=$tmp/build
expected='embed: handled 3 events'

step "install $build_dir into $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$tmp/install.log" ||
  { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
config=$(find "$prefix" -name switchboardConfig.cmake -print -quit)
[[ -n $config ]] || fail "no switchboardConfig.cmake under $prefix"
find "$prefix" -path '*/include/switchboard/runtime.hpp' | grep -q . ||
  fail "switchboard/runtime.hpp not installed"
find "$prefix" -path '*/include/switchboard/version.hpp' | grep -q . ||
  fail "generated switchboard/version.hpp not installed"

# The host build must see the installed package only: no package registry, no source tree.
step "configure examples/embed against $prefix"
cmake -S "$source_dir/examples/embed" -B "$host_build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log" >&2; fail "configuring the host application failed"; }

found_dir=$(sed -n 's/^switchboard_DIR:PATH=//p' "$host_build/CMakeCache.txt")
[[ $found_dir == "$prefix"/* ]] ||
  fail "find_package(switchboard) used '$found_dir', not the package installed in $prefix"

step "build embed_example"
cmake --build "$host_build" >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; fail "building the host application failed"; }

commands=$host_build/compile_commands.json
[[ -f $commands ]] || fail "no $commands"
if grep -Fq -e "$source_dir/include" -e "$build_dir/include" "$commands"; then
  grep -F -e "$source_dir/include" -e "$build_dir/include" "$commands" >&2
  fail "the host application compiled against switchboard's source or build tree"
fi
grep -Fq -- "-isystem $prefix/include" "$commands" || grep -Fq -- "-I$prefix/include" "$commands" ||
  fail "the host application did not get $prefix/include from switchboard::switchboard"

# The public headers are CAF-free: the host's compile read no header of CAF (Debian installs
# CAF under /usr/include, always on the path, so the compiler's dependency files are the proof).
deps=$(find "$host_build" -name '*.o.d' -print)
[[ -n $deps ]] || fail "no dependency files (*.o.d) in $host_build to check the includes"
if grep -h -o '[^ ]*/caf/[^ ]*' $deps | sort -u | grep .; then
  fail "the host application included CAF headers through switchboard's public headers (above)"
fi
if grep -q '^CAF_' "$host_build/CMakeCache.txt"; then
  fail "find_package(switchboard) looked for CAF; a host application must not need it"
fi

# Hidden by default: the library exports the public API, not its internal classes.
lib=$(find "$prefix" -name 'libswitchboard.so.*' -type f -print -quit)
[[ -n $lib ]] || fail "no libswitchboard.so.* under $prefix"
# (Instantiations of std:: templates over internal types stay visible, as libstdc++ declares
# its namespace with default visibility; what matters is that no function of ours is.)
exported=$(nm -DC --defined-only "$lib")
internal=$(echo "$exported" |
  grep -E '^[0-9a-f]+ [A-Za-z] (typeinfo (name )?for |vtable for )?switchboard::(actors|adapters|core|jobs|engine|ports|internal)::' |
  head -5 || true)
[[ -z $internal ]] || { echo "$internal" >&2; fail "libswitchboard exports internal symbols (above)"; }
grep -q 'switchboard::runtime::publish' <<<"$exported" ||
  fail "libswitchboard does not export switchboard::runtime::publish"
echo "== libswitchboard exports $(grep -c ' switchboard::' <<<"$exported") symbols of switchboard's public API"

# No LD_LIBRARY_PATH: the host's build RPATH must find the installed libswitchboard.
step "run embed_example"
status=0
(cd "$tmp" && timeout 60 "$host_build/embed_example") >"$tmp/run.out" 2>"$tmp/run.err" || status=$?
cat "$tmp/run.out"
if [[ $status -ne 0 ]]; then
  cat "$tmp/run.err" >&2
  fail "embed_example exited with $status (124 means it hung for 60 s)"
fi
grep -qx "$expected" "$tmp/run.out" || { cat "$tmp/run.err" >&2; fail "expected the line '$expected'"; }
ldd "$host_build/embed_example" | grep -F "libswitchboard" | grep -Fq "$prefix/" ||
  fail "embed_example did not load libswitchboard from $prefix"

echo "PASS: a host application built against the installed package runs"
