#!/usr/bin/env bash
# Runs libzmq 4.3.5's own C++ test suite (tests/test_*.cpp with Unity) against
#   (a) stock libzmq 4.3.5, the one bundled in the pyzmq 27.3.0 wheel (baseline,
#       for information only: it never fails this script), and
#   (b) ferromq's libzmq.so.5, checked against ci/libzmq-expected-failures.txt.
# Each variant compiles the tests against its own zmq.h (libzmq's for the
# baseline, ours for ferromq) and links -lzmq from its own prefix with an rpath.
# One JUnit testcase per test binary: id libzmq::test_NAME. A test passes when
# its binary exits 0; exit 77 is automake's "skipped"; a non-zero exit, a
# crash, a timeout or a build failure is a failure.
#
# Usage: scripts/libzmq-tests.sh [WORKDIR]       (default target/libzmq-tests)
# Environment:
#   FERROMQ_PREFIX        reuse a prefix staged by scripts/stage-libzmq.sh
#                         (otherwise ferromq is staged into WORKDIR/prefix)
#   LIBZMQ_TEST_TIMEOUT   seconds per test binary (default 120)
#   LIBZMQ_TEST_IDLE      seconds without output after which a test is killed
#                         as hung (default 10; 0 turns this off)
#   LIBZMQ_TESTS          space-separated subset of tests to build and run
#   LIBZMQ_BASELINE=0     skip the baseline (stock libzmq) build and run
# Writes WORKDIR/libzmq-stock.xml and WORKDIR/libzmq-ferromq.xml, per-test logs
# in WORKDIR/{stock,ferromq}/log/, and exits with ci/compare-results.py's status.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${1:-target/libzmq-tests}
mkdir -p "$work" && work=$(cd "$work" && pwd)
py=${FERROMQ_PYTHON:-python3}
timeout_s=${LIBZMQ_TEST_TIMEOUT:-120}  # per test binary
idle_s=${LIBZMQ_TEST_IDLE:-10}         # a test printing nothing for this long is hung (0: off)
zmq_src_crate=zeromq-src-0.3.6+4.3.5   # dev-dependency of crates/ferromq-capi
pyzmq_version=27.3.0                   # its wheel bundles libzmq 4.3.5
started=$SECONDS

# ---------------------------------------------------------------------------
# libzmq 4.3.5's source, from the zeromq-src crate in cargo's registry.
find_vendor() {
  compgen -G "${CARGO_HOME:-$HOME/.cargo}/registry/src/*/$zmq_src_crate/vendor" | head -1 || true
}
vendor=$(find_vendor)
if [ -z "$vendor" ]; then
  cargo fetch --quiet
  vendor=$(find_vendor)
fi
[ -n "$vendor" ] && [ -f "$vendor/tests/testutil.cpp" ] || { echo "libzmq source ($zmq_src_crate) not found" >&2; exit 1; }
echo "libzmq source: $vendor"

# ---------------------------------------------------------------------------
# The tests upstream runs on Linux: Makefile.am's test_apps for a default
# ./configure on Linux. Conditionals are evaluated with only these true:
#   ON_LINUX, HAVE_FORK (Linux facts).
# Everything else is false, notably: ENABLE_DRAFTS (draft API), HAVE_CURVE
# (off by default: configure needs --with-libsodium), HAVE_WS/HAVE_WSS,
# BUILD_TIPC, HAVE_VMCI, BUILD_GSSAPI, VALGRIND_ENABLED, ENABLE_ASAN,
# FUZZING_ENGINE_LIB (so the *_fuzzer tests are the plain ones, which skip
# with exit 77 without their seed corpora, as upstream's do), ON_MINGW/
# ON_CYGWIN/ON_GNU, and ENABLE_STATIC, whose unittests/ test libzmq's internal
# classes through libzmq.a rather than its API.
all_tests=$("$py" - "$vendor/Makefile.am" <<'PY'
import re, sys
true = {"ON_LINUX", "HAVE_FORK"}
text = open(sys.argv[1]).read().replace("\\\n", " ")
stack, tests = [], []
for line in text.splitlines():
    words = line.split()
    if not words:
        continue
    if words[0] == "if":
        cond = words[1]
        stack.append(cond[1:] not in true if cond.startswith("!") else cond in true)
    elif words[0] == "else":
        stack[-1] = not stack[-1]
    elif words[0] == "endif":
        stack.pop()
    elif all(stack):
        m = re.match(r"test_apps\s*\+?=(.*)", line)
        if m:
            tests += [w.split("/")[-1] for w in m.group(1).split()]
print(" ".join(dict.fromkeys(tests)))
PY
)
tests=(${LIBZMQ_TESTS:-$all_tests})
[ ${#tests[@]} -gt 0 ] || { echo "no tests found in $vendor/Makefile.am" >&2; exit 1; }
echo "${#tests[@]} libzmq tests: ${tests[*]}"

# ---------------------------------------------------------------------------
# Prefixes: ferromq's (staged) and the baseline's (pyzmq wheel's libzmq).
if [ -n "${FERROMQ_PREFIX:-}" ]; then
  ferromq_prefix=$(cd "$FERROMQ_PREFIX" && pwd)
else
  scripts/stage-libzmq.sh "$work/prefix"
  ferromq_prefix=$work/prefix
fi
[ -f "$ferromq_prefix/lib/libzmq.so.5" ] && [ -f "$ferromq_prefix/include/zmq.h" ] \
  || { echo "no staged ferromq in $ferromq_prefix" >&2; exit 1; }

# Makes $work/stock-prefix: the wheel's libzmq (and the libsodium it needs,
# found through its $ORIGIN rpath) symlinked into lib/, libzmq's own zmq.h.
stage_stock() {
  local venv=$work/venv-stock sp libs lib
  if ! "$venv/bin/python" -c "import zmq, sys; sys.exit(zmq.__version__ != '$pyzmq_version')" 2>/dev/null; then
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q "pyzmq==$pyzmq_version"
  fi
  sp=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  libs=$sp/pyzmq.libs
  lib=$(compgen -G "$libs/libzmq-*.so*" | head -1)
  [ -n "$lib" ] || { echo "no libzmq in $libs" >&2; return 1; }
  rm -rf "$work/stock-prefix" && mkdir -p "$work/stock-prefix/lib" "$work/stock-prefix/include"
  ln -s "$libs"/* "$work/stock-prefix/lib/"          # incl. libzmq-HASH.so.5.2.5 (its SONAME)
  ln -s "$lib" "$work/stock-prefix/lib/libzmq.so.5"
  ln -s "$lib" "$work/stock-prefix/lib/libzmq.so"
  cp "$vendor/include/zmq.h" "$work/stock-prefix/include/zmq.h"
}

# ---------------------------------------------------------------------------
# Builds the suite for one variant in $work/$variant against $prefix:
#   tree/tests  a copy of libzmq's tests/ (they include "../include/zmq.h" and
#               "../src/stdint.hpp" relative to themselves), tree/include is a
#               symlink to PREFIX/include so that is the variant's zmq.h;
#   private/    platform.hpp (with -DZMQ_CUSTOM_PLATFORM_HPP);
#   lib/        libtestutil.a: testutil*.cpp + Unity, compiled once;
#   bin/, log/  one binary and one build log per test.
build_variant() { # variant prefix
  local variant=$1 prefix=$2 d=$work/$1
  rm -rf "$d" && mkdir -p "$d"/{tree/src,private,obj,lib,bin,log,run}
  cp -r "$vendor/tests" "$d/tree/tests"
  ln -s "$prefix/include" "$d/tree/include"
  cp "$vendor/src/stdint.hpp" "$d/tree/src/"

  # The capabilities the library was built with (upstream's platform.hpp
  # comes from the same configure run as the library): zmq_has() of the
  # library itself for the optional ones. IPC is a given on Linux and the
  # draft API is never enabled, so test_capabilities checks those.
  cat > "$d/obj/probe.c" <<'C'
#include <stdio.h>
#include <zmq.h>
int main (void)
{
    int major, minor, patch;
    zmq_version (&major, &minor, &patch);
    fprintf (stderr, "libzmq %d.%d.%d", major, minor, patch);
    const char *caps[] = {"curve", "tipc", "pgm", "norm", "gssapi", "vmci", "ipc", "draft"};
    for (int i = 0; i < 8; i++)
        if (zmq_has (caps[i]))
            printf ("%s\n", caps[i]);
    return 0;
}
C
  gcc -w -I "$prefix/include" "$d/obj/probe.c" -o "$d/bin/probe" -L "$prefix/lib" -lzmq \
    -Wl,--disable-new-dtags,-rpath,"$prefix/lib"
  local caps
  caps=$("$d/bin/probe" 2>/dev/null)
  echo "$variant: $("$d/bin/probe" 2>&1 >/dev/null) ($prefix/lib), zmq_has: $(echo $caps)"
  {
    echo "// platform.hpp for libzmq's tests on Linux (generated by scripts/libzmq-tests.sh)."
    echo "#define ZMQ_HAVE_LINUX 1"
    echo "#define ZMQ_HAVE_IPC 1           // ipc:// (and abstract @ names)"
    echo "#define ZMQ_HAVE_UIO 1           // <sys/uio.h> (test_iov)"
    echo "#define ZMQ_HAVE_SO_PEERCRED 1   // ipc peer filters (test_filter_ipc)"
    echo "#define HAVE_MKDTEMP 1           // private dirs for ipc wildcards"
    # No ZMQ_USE_EPOLL (Linux's poller): with it test_ctx_options does not
    # compile (its socket-limit check names an undeclared ctx). No drafts.
    echo "// No ZMQ_USE_EPOLL/POLL/SELECT (I/O thread poller) nor ZMQ_BUILD_DRAFT_API."
    local cap
    for cap in $caps; do
      case $cap in
        curve) echo "#define ZMQ_HAVE_CURVE 1" ;;
        tipc) echo "#define ZMQ_HAVE_TIPC 1" ;;
        pgm) echo "#define ZMQ_HAVE_OPENPGM 1" ;;
        norm) echo "#define ZMQ_HAVE_NORM 1" ;;
        gssapi) echo "#define HAVE_LIBGSSAPI_KRB5 1" ;;
        vmci) echo "#define ZMQ_HAVE_VMCI 1" ;;
      esac
    done
  } > "$d/private/platform.hpp"

  # Header dir first (ours for ferromq), then platform.hpp, then Unity.
  local cppflags="-I$prefix/include -I$d/private -I$vendor/external/unity -DZMQ_CUSTOM_PLATFORM_HPP \
-DUNITY_USE_COMMAND_LINE_ARGS -DUNITY_EXCLUDE_FLOAT"
  cat > "$d/Makefile" <<MK
# Generated by scripts/libzmq-tests.sh: libzmq's tests for the $variant variant.
CPPFLAGS = $cppflags
CXXFLAGS = -O0 -g0 -w -pthread
LDFLAGS = -pthread -L$prefix/lib -Wl,--disable-new-dtags,-rpath,$prefix/lib
LIBS = -lzmq -lpthread
TESTUTIL = testutil testutil_monitoring testutil_security testutil_unity

all: ${tests[*]/#/bin/}

obj/unity.o: $vendor/external/unity/unity.c
	gcc \$(CPPFLAGS) -O0 -w -c \$< -o \$@
obj/%.o: tree/tests/%.cpp
	g++ \$(CPPFLAGS) \$(CXXFLAGS) -c \$< -o \$@ 2>log/\$*.build.log
lib/libtestutil.a: \$(TESTUTIL:%=obj/%.o) obj/unity.o
	ar rcs \$@ \$^
# A test that fails to build leaves its log (and no binary) and the build goes on.
bin/%: tree/tests/%.cpp lib/libtestutil.a
	@g++ \$(CPPFLAGS) \$(CXXFLAGS) \$< lib/libtestutil.a -o \$@ \$(LDFLAGS) \$(LIBS) >log/\$*.build.log 2>&1 \\
	  || echo "$variant: \$* does not build: \$\$(grep -m1 'error' log/\$*.build.log)"
MK
  nice -n 10 make -s -k -j2 -C "$d" all > "$d/log/make.log" 2>&1 || true
  cat "$d/log/make.log"

  # The binaries must load this variant's library.
  local one
  if ! one=$(compgen -G "$d/bin/test_*" | head -1); then
    # Nothing built: say why (make's output, the support library's compiler
    # messages, the machine's disk and memory), then try once more serially
    # in case a parallel compiler was killed.
    echo "$variant: no test binary built; make said:" >&2
    tail -20 "$d/log/make.log" >&2
    local f
    for f in "$d"/log/testutil*.build.log; do
      [ -s "$f" ] && { echo "--- $f" >&2; head -8 "$f" >&2; }
    done
    df -h "$d" >&2 || true
    free -m >&2 || true
    echo "$variant: building again with one job" >&2
    nice -n 10 make -k -j1 -C "$d" all > "$d/log/make-retry.log" 2>&1 || true
    tail -20 "$d/log/make-retry.log" >&2
    one=$(compgen -G "$d/bin/test_*" | head -1) || { echo "$variant: no test binary built" >&2; return 1; }
  fi
  ldd "$one" | awk '$1 ~ /zmq/' || true
  local real
  # Match the library's name, not its path (the work dir may say "zmq" too).
  real=$(ldd "$one" | awk '$1 ~ /zmq/ {print $3}')
  [ "$(readlink -f "$real")" = "$(readlink -f "$prefix/lib/libzmq.so.5")" ] \
    || { echo "$variant: $one loads $real, not $prefix/lib/libzmq.so.5" >&2; return 1; }
}

# Runs one test binary from its own scratch directory, output line-buffered
# into its log; kills it after $timeout_s seconds, or as hung once its log has
# not grown for $idle_s seconds (Unity prints a line per case; upstream's
# slowest case takes ~4 s). Sets $rc, and $hung when the watchdog killed it.
run_one() { # binary rundir log idle-seconds
  local bin=$1 dir=$2 log=$3 idle=$4 pid wd
  rm -f "$log.hung"
  (cd "$dir" && exec stdbuf -oL -eL timeout -k 5 "$timeout_s" "$bin") > "$log" 2>&1 &
  pid=$!
  if [ "$idle" -gt 0 ]; then
    ( size=-1 still=0
      while sleep 1; do
        now=$(stat -c %s "$log" 2>/dev/null || echo 0)
        if [ "$now" = "$size" ]; then still=$((still + 1)); else still=0 size=$now; fi
        if [ "$still" -ge "$idle" ]; then
          # timeout(1) leads the test's process group: end that group.
          touch "$log.hung"; kill -TERM -- "-$pid" 2>/dev/null; sleep 5; kill -KILL -- "-$pid" 2>/dev/null; exit 0
        fi
      done ) &
    wd=$!
  fi
  rc=0
  { wait "$pid"; } 2>/dev/null || rc=$?  # (no "Aborted" notice from bash: the log says it)
  [ -n "${wd:-}" ] && { kill "$wd" 2>/dev/null || true; wait "$wd" 2>/dev/null || true; }
  hung=0
  [ -e "$log.hung" ] && hung=1 && rm -f "$log.hung"
  return 0
}

# Runs each test binary serially; writes $work/$variant/results.tsv
# (name, pass|fail|skip, seconds, message).
run_variant() { # variant
  local variant=$1 d=$work/$1 t t0 msg status log secs idle
  : > "$d/results.tsv"
  for t in "${tests[@]}"; do
    log=$d/log/$t.log
    if [ ! -x "$d/bin/$t" ]; then
      if [ -s "$d/log/$t.build.log" ]; then
        msg="build failed: $(grep -m1 'error' "$d/log/$t.build.log" || head -1 "$d/log/$t.build.log")"
      else # testutil (or Unity) did not build
        msg="build failed: $(cat "$d"/log/testutil*.build.log | grep -m1 'error' || echo 'libtestutil.a missing')"
      fi
      printf '%s\tfail\t0\t%s\n' "$t" "${msg//$'\t'/ }" >> "$d/results.tsv"
      cp "$d/log/$t.build.log" "$log" 2>/dev/null || echo "$msg" > "$log"
      echo "  $variant: $t FAILED ($msg)"
      continue
    fi
    rm -rf "$d/run/$t" && mkdir -p "$d/run/$t"
    t0=$EPOCHREALTIME
    idle=$idle_s
    # test_many_sockets opens sockets until the system refuses one: a single
    # silent case, long when there is no fd per socket (ferromq: 131072, ~30 s).
    [ "$t" = test_many_sockets ] && idle=0
    run_one "$d/bin/$t" "$d/run/$t" "$log" "$idle"
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    if [ "$hung" = 1 ]; then
      status=fail msg="hung: no output for ${idle_s}s, killed"
    else
      case $rc in
        0) status=pass msg="" ;;
        77) status=skip msg="skipped (exit 77)" ;;
        124|137) status=fail msg="timed out after ${timeout_s}s" ;;
        *) status=fail
           if [ "$rc" -gt 128 ]; then msg="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo ?))"
           else msg="exit status $rc"; fi ;;
      esac
    fi
    printf '%s\t%s\t%s\t%s\n' "$t" "$status" "$secs" "$msg" >> "$d/results.tsv"
    [ "$status" = fail ] && echo "  $variant: $t FAILED ($msg)"
    rm -rf "$d/run/$t"
  done
  return 0
}

# results.tsv + logs -> JUnit XML (classname libzmq: ids libzmq::test_NAME).
# A failure's message names the failed Unity cases; its text is the log's tail.
write_xml() { # variant xml
  "$py" - "$work/$1" "$2" <<'PY'
import re, sys, xml.etree.ElementTree as ET
d, out = sys.argv[1], sys.argv[2]
suite = ET.Element("testsuite", name="libzmq")
n = {"tests": 0, "failures": 0, "skipped": 0}
case_re = re.compile(r"^[^:\s]+:\d+:(\w+):(PASS|FAIL|IGNORE)(?::\s*(.*))?$")
for row in open(f"{d}/results.tsv"):
    name, status, secs, msg = row.rstrip("\n").split("\t")
    try:
        log = open(f"{d}/log/{name}.log", errors="replace").read()
    except OSError:
        log = ""
    case = ET.SubElement(suite, "testcase", classname="libzmq", name=name, time=f"{float(secs or 0):.3f}")
    n["tests"] += 1
    cases = [m.groups() for m in map(case_re.match, log.splitlines()) if m]
    failed = [c for c in cases if c[1] == "FAIL"]
    if status == "fail":
        n["failures"] += 1
        if failed:
            msg += f"; {len(failed)}/{len(cases)} cases failed: " + "; ".join(
                f"{c[0]}: {c[2] or ''}".strip() for c in failed[:3])
        f = ET.SubElement(case, "failure", message=msg[:500])
        f.text = "\n".join(log.splitlines()[-80:])
    elif status == "skip":
        n["skipped"] += 1
        ET.SubElement(case, "skipped", message=msg)
    if cases:
        ET.SubElement(case, "system-out").text = "\n".join(
            f"{c[0]}: {c[1]}" + (f": {c[2]}" if c[2] else "") for c in cases)
for k, v in n.items():
    suite.set(k, str(v))
ET.ElementTree(suite).write(out, encoding="utf-8", xml_declaration=True)
print(f"{n['tests'] - n['failures'] - n['skipped']}/{n['tests'] - n['skipped']} passed"
      + (f", {n['skipped']} skipped" if n["skipped"] else ""))
PY
}

# ---------------------------------------------------------------------------
# Baseline: any trouble here (no network for pip, ...) is only reported.
# (A subshell outside any && or || list, so that set -e holds inside it.)
stock_ok=1
if [ "${LIBZMQ_BASELINE:-1}" != 0 ]; then
  set +e
  ( set -e; stage_stock; build_variant stock "$work/stock-prefix" ); stock_ok=$?
  set -e
fi
build_variant ferromq "$ferromq_prefix"
echo "built in $((SECONDS - started))s"

if [ $stock_ok = 0 ]; then
  run_variant stock
  echo "libzmq tests on libzmq 4.3.5 (baseline): $(write_xml stock "$work/libzmq-stock.xml")"
elif [ "${LIBZMQ_BASELINE:-1}" != 0 ]; then
  echo "WARNING: baseline libzmq 4.3.5 could not be set up; running ferromq only"
fi
run_variant ferromq
echo "libzmq tests on ferromq: $(write_xml ferromq "$work/libzmq-ferromq.xml")"
echo "logs in $work/{stock,ferromq}/log; total $((SECONDS - started))s"

rc=0
"$py" ci/compare-results.py "$work/libzmq-ferromq.xml" "$root/ci/libzmq-expected-failures.txt" \
  "libzmq tests on ferromq" || rc=$?
exit $rc
