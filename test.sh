#!/usr/bin/env bash
# Installs what the tests need (if missing), builds the workspace and runs every test:
# the unit tests of all crates and the integration tests in tests/ (which run programs
# natively and in rvisor and compare). Works as root without a terminal (CI=true).
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# gcc + libc6-dev build the static C test programs; busybox-static provides /bin/busybox
# and /usr/share/doc/busybox-static, which the tests read; python3 and perl are real
# dynamically linked programs the tests run; sqlite3, git, procps (ps) and bsdutils
# (script) are what the filesystem and terminal tests run in the sandbox; containerd (with
# ctr), runc and umoci drive and check the OCI runtime. (runsc is only for the bench.)
# The networking tests run Debian's nginx, redis and ping in the sandbox and load them from
# the host with curl, wrk and redis-benchmark over a veth pair (iproute2); strace checks
# which socket syscalls the sandbox makes.
missing=()
command -v gcc >/dev/null || missing+=(gcc)
installed libc6-dev || missing+=(libc6-dev)
installed busybox-static || missing+=(busybox-static)
installed python3 || missing+=(python3)
installed perl || missing+=(perl)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v git >/dev/null || missing+=(git)
command -v ps >/dev/null || missing+=(procps)
command -v script >/dev/null || missing+=(bsdutils)
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
command -v umoci >/dev/null || missing+=(umoci)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
command -v curl >/dev/null || missing+=(curl)
command -v ip >/dev/null || missing+=(iproute2)
[ -x /usr/bin/ping ] || missing+=(iputils-ping)
command -v strace >/dev/null || missing+=(strace)
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "test.sh: installing ${missing[*]}"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "test.sh: cargo not found: install Rust (rustup)" >&2; exit 1; }

# The integration tests run target/release/rvisor, which `cargo test` does not build.
cargo build --release --workspace
# Doc tests are left out (the crates have none), so the runner's last lines are real tests.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --no-fail-fast --lib --bins --tests 2>&1 | tee "$log" || status=$?
# One closing line over all test binaries.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
