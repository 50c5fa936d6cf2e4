#!/usr/bin/env bash
# The library as other projects get it. CTest's `install_consumer` runs this after the build:
#   1. the library alone: configures with CNN_BUILD_CLI=OFF CNN_BUILD_TESTS=OFF while CLI11,
#      GoogleTest, Google Benchmark and cpp-httplib cannot be found (configure fails if any is
#      looked for), and so does a project that uses it by add_subdirectory with the defaults;
#      configure only, since compiling the library again would prove nothing the main build has
#      not (the CLI options change no flag of the library);
#   2. `cmake --install <build> --prefix <scratch>`: exactly the expected files, public headers
#      that include only the standard library, nlohmann/json and each other (never stb, OpenBLAS
#      or apps/), no path of this checkout or build in the CMake package or cnn.pc;
#   3. examples/consumer built with find_package(cnn 0.1) through CMAKE_PREFIX_PATH, without
#      stb's or OpenBLAS's include directories, run; the version file refuses 0.2 and 1.0;
#   4. the same main.cpp built with g++ and `pkg-config --cflags --libs cnn`, run;
#   5. `cpack -G DEB`: the package's files and Depends (dpkg-shlibdeps), every dependency
#      installed on this machine, and the unpacked usr/bin/cnn run.
# CNN_INSTALL_TEST_FULL=1 also builds and installs the library-alone configuration and builds
# the consumer against that (a few more minutes on 2 cores).
# Usage: tests/install.sh <source dir> <build dir> <scratch dir (emptied)>
set -euo pipefail
src=$(realpath "$1")
build=$(realpath "$2")
work=$3
rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")

fail() {
  echo "install test: FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
libdir=$(cache CMAKE_INSTALL_LIBDIR)
includedir=$(cache CMAKE_INSTALL_INCLUDEDIR)
bindir=$(cache CMAKE_INSTALL_BINDIR)
with_cli=$(cache CNN_BUILD_CLI)
config=$(cache CMAKE_BUILD_TYPE | tr '[:upper:]' '[:lower:]')
[[ -n $libdir && -n $includedir && -n $bindir ]] || fail "$build is not a configured cnn build"
version=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/cnnConfigVersion.cmake")
[[ -n $version ]] || fail "no version in $build/cnnConfigVersion.cmake"

# --- 1. the library alone ----------------------------------------------------------------------
step "the library alone: configure without CLI11, cpp-httplib, GoogleTest, Google Benchmark"
# pkg-config sees only the library's own .pc files: a search for cpp-httplib would fail.
mkdir -p "$work/pkgconfig-lib-only"
for module in openblas stb zlib nlohmann_json; do
  pc="$(pkg-config --variable=pcfiledir "$module")/$module.pc"
  [[ -f $pc ]] || fail "pkg-config module $module not found"
  ln -s "$(realpath "$pc")" "$work/pkgconfig-lib-only/$module.pc"
done
PKG_CONFIG_LIBDIR="$work/pkgconfig-lib-only" PKG_CONFIG_PATH="" \
  cmake -S "$src" -B "$work/lib-only" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCNN_BUILD_CLI=OFF -DCNN_BUILD_TESTS=OFF -DCNN_BUILD_BENCHMARKS=OFF \
  -DCMAKE_DISABLE_FIND_PACKAGE_CLI11=ON -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON >"$work/lib-only.log" 2>&1 ||
  { cat "$work/lib-only.log" >&2; fail "the library alone does not configure"; }
if grep -E '^(CLI11_DIR|GTest_DIR|benchmark_DIR|HTTPLIB_[A-Z_]*|pkgcfg_lib_HTTPLIB[A-Za-z_-]*):' \
  "$work/lib-only/CMakeCache.txt"; then
  fail "the library-alone configuration looked for a dependency of the CLI, tests or benchmarks"
fi
grep -q 'TYPE STATIC_LIBRARY' "$work/lib-only/cmake_install.cmake" ||
  fail "the library-alone configuration does not install libcnn.a"
! grep -q 'TYPE EXECUTABLE' "$work/lib-only/cmake_install.cmake" ||
  fail "the library-alone configuration installs an executable"

step "inside another project: add_subdirectory(cnn) defaults to the library alone, cnn::cnn"
mkdir -p "$work/parent"
cat >"$work/parent/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.20)
project(parent LANGUAGES CXX)
add_subdirectory("$src" cnn)
add_executable(app "$src/examples/consumer/main.cpp")
target_link_libraries(app PRIVATE cnn::cnn)
EOF
PKG_CONFIG_LIBDIR="$work/pkgconfig-lib-only" PKG_CONFIG_PATH="" \
  cmake -S "$work/parent" -B "$work/parent/build" "${generator[@]}" \
  -DCMAKE_DISABLE_FIND_PACKAGE_CLI11=ON -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON >"$work/parent.log" 2>&1 ||
  { cat "$work/parent.log" >&2; fail "a project with add_subdirectory(cnn) does not configure"; }
for option in CNN_BUILD_CLI CNN_BUILD_TESTS CNN_BUILD_BENCHMARKS CNN_INSTALL; do
  grep -qx "$option:BOOL=OFF" "$work/parent/build/CMakeCache.txt" ||
    fail "add_subdirectory(cnn): $option is not OFF by default"
done

# --- 2. the installed files ----------------------------------------------------------------------
# check_prefix PREFIX WITH_CLI(ON|OFF)
check_prefix() {
  local prefix=$1 cli=$2
  local expected actual
  expected=$(
    [[ $cli == ON ]] && echo "$bindir/cnn"
    echo "$libdir/libcnn.a"
    echo "$libdir/cmake/cnn/cnnConfig.cmake"
    echo "$libdir/cmake/cnn/cnnConfigVersion.cmake"
    echo "$libdir/cmake/cnn/cnnTargets.cmake"
    echo "$libdir/cmake/cnn/cnnTargets-${config:-noconfig}.cmake"
    echo "$libdir/pkgconfig/cnn.pc"
    (cd "$src/include" && find cnn -type f -name '*.h') | sed "s|^|$includedir/|"
  )
  actual=$(cd "$prefix" && find . -type f -o -type l | sed 's|^\./||')
  diff <(sort <<<"$expected") <(sort <<<"$actual") >&2 ||
    fail "$prefix: the installed files differ from the expected ones (< expected, > installed)"

  # Public headers may include the standard library, nlohmann/json and each other only.
  local leaks
  leaks=$(
    cd "$prefix/$includedir" || exit 1
    grep -rnE '^\s*#\s*include' cnn |
      grep -vE '#\s*include\s*<(nlohmann/json\.hpp|[a-z_]+)>' |
      grep -vE '#\s*include\s*"cnn/[a-z0-9_/]+\.h"' || true
  )
  [[ -z $leaks ]] || fail "installed headers include something outside cnn/, nlohmann/json and std:
$leaks"
  local missing
  missing=$(cd "$prefix/$includedir" && grep -rhoE '#\s*include\s*"cnn/[a-z0-9_/]+\.h"' cnn |
    sed -E 's/.*"(.*)"/\1/' | sort -u | while read -r h; do [[ -f $h ]] || echo "$h"; done)
  [[ -z $missing ]] || fail "installed headers include headers that are not installed: $missing"

  ! grep -rlF -e "$src" -e "$build" "$prefix/$libdir/cmake" "$prefix/$libdir/pkgconfig" ||
    fail "the CMake package or cnn.pc names this checkout or build directory"
}

# build_consumer PREFIX DIR: examples/consumer through find_package, then run.
build_consumer() {
  local prefix=$1 dir=$2
  cmake -S "$src/examples/consumer" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$dir.log" 2>&1 ||
    { cat "$dir.log" >&2; fail "examples/consumer does not configure against $prefix"; }
  local found
  found=$(sed -n 's/^cnn_DIR:PATH=//p' "$dir/CMakeCache.txt")
  [[ $found -ef $prefix/$libdir/cmake/cnn ]] || fail "found cnn in $found, not in $prefix"
  cmake --build "$dir" >>"$dir.log" 2>&1 ||
    { cat "$dir.log" >&2; fail "examples/consumer does not build against $prefix"; }
  # stb and OpenBLAS are private: their include directories must not reach the consumer.
  ! grep -E '"command".*(include/stb|openblas)' "$dir/compile_commands.json" ||
    fail "stb's or OpenBLAS's include directory leaks into the consumer's compile"
  "$dir/consumer" >"$dir.out" || fail "examples/consumer failed"
  check_output "$dir.out"
}

check_output() {
  grep -qxF 'input (2, 1, 28, 28) -> logits (2, 10)' "$1" || fail "$1: no output shape (2, 10)"
  grep -qE '^predicted: [0-9] [0-9]$' "$1" || fail "$1: no predictions"
  grep -qxF 'Total params: 55,338' "$1" || fail "$1: no summary with 55,338 parameters"
  grep -qE '^ +Linear-11 +\[-1, 10\] +330$' "$1" || fail "$1: not torchsummary's 11 rows"
}

step "cmake --install $build --prefix $work/prefix"
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" ||
  fail "cmake --install failed"
check_prefix "$work/prefix" "$with_cli"

# --- 3. a CMake consumer -------------------------------------------------------------------------
step "examples/consumer with find_package(cnn 0.1 CONFIG) through CMAKE_PREFIX_PATH"
build_consumer "$work/prefix" "$work/consumer"
cat "$work/consumer.out"

step "the version file: $version answers 0.1 and refuses 0.2 and 1.0 (SameMinorVersion)"
# What find_package(cnn X.Y) asks the version file, without a project to configure.
cat >"$work/version-check.cmake" <<'EOF'
include(${F})
message("${PACKAGE_VERSION_COMPATIBLE}")
EOF
for wanted in 0.1:TRUE 0.2:FALSE 1.0:FALSE; do
  v=${wanted%:*}
  answer=$(cmake -DPACKAGE_FIND_VERSION="$v" -DPACKAGE_FIND_VERSION_MAJOR="${v%.*}" \
    -DPACKAGE_FIND_VERSION_MINOR="${v#*.}" \
    -DF="$work/prefix/$libdir/cmake/cnn/cnnConfigVersion.cmake" -P "$work/version-check.cmake" 2>&1)
  [[ $answer == "${wanted#*:}" ]] || fail "find_package(cnn $v) against $version: $answer"
done

# --- 4. a pkg-config consumer --------------------------------------------------------------------
step "main.cpp with g++ \$(pkg-config --cflags --libs cnn)"
export PKG_CONFIG_PATH="$work/prefix/$libdir/pkgconfig"
[[ $(pkg-config --modversion cnn) == "$version" ]] || fail "pkg-config --modversion cnn"
[[ $(pkg-config --variable=includedir cnn) -ef $work/prefix/$includedir ]] ||
  fail "cnn.pc's includedir is not $work/prefix/$includedir"
! pkg-config --cflags cnn | grep -q stb || fail "cnn.pc passes on stb's include directory"
# shellcheck disable=SC2046  # pkg-config's flags are meant to be split
g++ -std=c++20 -O2 "$src/examples/consumer/main.cpp" $(pkg-config --cflags --libs cnn) \
  -o "$work/consumer-pkg-config" || fail "main.cpp does not build with pkg-config's flags"
"$work/consumer-pkg-config" >"$work/consumer-pkg-config.out" || fail "the pkg-config build failed"
check_output "$work/consumer-pkg-config.out"
unset PKG_CONFIG_PATH

if [[ ${CNN_INSTALL_TEST_FULL:-0} == 1 ]]; then
  step "CNN_INSTALL_TEST_FULL: the library alone built, installed and consumed"
  cmake --build "$work/lib-only" >>"$work/lib-only.log" 2>&1 ||
    { tail -n 50 "$work/lib-only.log" >&2; fail "the library alone does not build"; }
  cmake --install "$work/lib-only" --prefix "$work/prefix-lib-only" >/dev/null
  check_prefix "$work/prefix-lib-only" OFF
  build_consumer "$work/prefix-lib-only" "$work/consumer-lib-only"
fi

# --- 5. the Debian package -----------------------------------------------------------------------
if [[ $with_cli != ON ]]; then
  echo "install test: the Debian package is made by builds with the cnn command; skipped"
  echo "install test: PASS"
  exit 0
fi
for tool in cpack dpkg-deb dpkg-shlibdeps file; do
  command -v "$tool" >/dev/null || fail "$tool is needed (bash scripts/setup.sh installs it)"
done
step "cpack -G DEB"
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/deb" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack -G DEB failed"; }
debs=("$work"/deb/*.deb)
if ((${#debs[@]} != 1)) || [[ ! -f ${debs[0]} ]]; then fail "expected one .deb in $work/deb"; fi
deb=${debs[0]}
echo "$(basename "$deb"):"
dpkg-deb -c "$deb" | awk '{print "  " $NF}'
contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
for f in "$bindir/cnn" "$libdir/libcnn.a" "$includedir/cnn/cnn.h" "$includedir/cnn/tensor.h" \
  "$libdir/cmake/cnn/cnnConfig.cmake" "$libdir/cmake/cnn/cnnConfigVersion.cmake" \
  "$libdir/cmake/cnn/cnnTargets.cmake" "$libdir/pkgconfig/cnn.pc"; do
  grep -qxF "./usr/$f" <<<"$contents" || fail "the package lacks /usr/$f"
done

dpkg-deb -f "$deb"
[[ $(dpkg-deb -f "$deb" Package) == cnn ]] || fail "package name"
[[ $(dpkg-deb -f "$deb" Version) == "$version" ]] || fail "package version"
depends=$(dpkg-deb -f "$deb" Depends)
# From dpkg-shlibdeps (the command's shared libraries) and from package.cmake (the -dev ones).
names=$(tr ',|' '\n' <<<"$depends" | awk 'NF {print $1}')
for p in libc6 libstdc++6 libgomp1 zlib1g libopenblas0 libstb0 libpng16-16 libjpeg62-turbo \
  nlohmann-json3-dev libpng-dev libjpeg62-turbo-dev; do
  grep -qxF "$p" <<<"$names" || fail "Depends lacks $p: $depends"
done
# Every dependency is installed here (one alternative of each clause, versions not compared).
IFS=',' read -ra clauses <<<"$depends"
for clause in "${clauses[@]}"; do
  ok=0
  IFS='|' read -ra alternatives <<<"$clause"
  for alt in "${alternatives[@]}"; do
    name=$(awk '{print $1}' <<<"$alt")
    dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'install ok installed' && ok=1
  done
  ((ok)) || fail "no alternative of the dependency '$clause' is installed here"
done

# `dpkg --root=DIR -i` would need a dpkg database under DIR and root, and would refuse the
# package for dependencies missing from that empty database unless forced; `dpkg-deb -x` unpacks
# the same files, and the Depends were checked against this machine's database above. What this
# does not test: apt resolving them on a fresh machine.
step "dpkg-deb -x, then the unpacked usr/bin/cnn"
dpkg-deb -x "$deb" "$work/root"
[[ $("$work/root/usr/$bindir/cnn" --version) == "cnn $version" ]] ||
  fail "usr/bin/cnn --version does not say cnn $version"
"$work/root/usr/$bindir/cnn" summary >"$work/root-summary.out" || fail "usr/bin/cnn summary failed"
grep -qxF 'Total params: 55,338' "$work/root-summary.out" || fail "usr/bin/cnn summary's table"
[[ $(PKG_CONFIG_PATH="$work/root/usr/$libdir/pkgconfig" pkg-config --variable=libdir cnn) -ef \
  $work/root/usr/$libdir ]] || fail "the package's cnn.pc does not find its own prefix"
echo "install test: PASS"
