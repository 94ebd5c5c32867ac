#!/usr/bin/env bash
# The daily commands' benchmark (targets in docs/testing.md "Performance targets").
#
#   bash benches/daily.sh            # builds the release binary, then measures; ~1-2 min
#
# Not part of `cargo test`. Needs: dbus-daemon, gnome-keyring-daemon, secret-tool, python3
# (with venv) and curl; hyperfine if installed (`apt-get install hyperfine`), otherwise a
# plain timing loop. Python's `keyring` package is installed into target/bench/venv on first
# use (pip; the SecretService backend pulls in secretstorage and jeepney).
#
# It starts, in throwaway XDG dirs: a private dbus-daemon, an unlocked headless
# gnome-keyring (the recipe of tests/it/support/keyring.rs), and an auto-approving sandbox; sets
# up a verified sandbox profile with the release binary; copies its entries into a live
# profile (so `env` and `exec` run the live path: no sandbox round trip); then measures side
# by side in one run. Results: a table on stdout, raw data in target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-60}

say() { printf '== %s\n' "$*" >&2; }

for tool in dbus-daemon dbus-send gnome-keyring-daemon secret-tool python3 curl; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: apt-get install -y dbus dbus-daemon gnome-keyring libsecret-tools python3 curl" >&2
    exit 1
  }
done

say "cargo build --release"
cargo build --release --locked --quiet
BIN=$ROOT/target/release/kite-setup
OUT=$ROOT/target/bench
mkdir -p "$OUT"

# Python keyring, once, in a venv of its own.
VENV=$OUT/venv
if ! "$VENV/bin/python" -c 'import keyring, secretstorage' 2>/dev/null; then
  say "pip install keyring (into $VENV)"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check keyring
fi

WORK=$(mktemp -d /tmp/kite-bench-XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for d in run data home config cache; do mkdir -m 700 "$WORK/$d"; done
export XDG_RUNTIME_DIR=$WORK/run XDG_DATA_HOME=$WORK/data HOME=$WORK/home
export XDG_CONFIG_HOME=$WORK/config XDG_CACHE_HOME=$WORK/cache
export KITE_SETUP_CONFIG_DIR=$WORK/kite-config KITE_SETUP_DATA_DIR=$WORK/kite-data
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost NO_COLOR=1
unset KITE_SETUP_PROFILE KITE_API_KEY KITE_ACCESS_TOKEN KITE_API_SECRET

# A session bus with no service activation (nothing but our daemon can own the name).
cat >"$WORK/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$WORK/run/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
say "dbus-daemon + gnome-keyring-daemon (headless, unlocked)"
dbus-daemon --config-file="$WORK/bus.conf" --nofork --print-address=3 3>"$WORK/bus.addr" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$WORK/bus.addr" ] && break; sleep 0.01; done
DBUS_SESSION_BUS_ADDRESS=$(head -n1 "$WORK/bus.addr")
export DBUS_SESSION_BUS_ADDRESS
printf '%s' "kite-setup-bench-keyring" |
  gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>"$WORK/keyring.log" &
PIDS+=($!)
for _ in $(seq 500); do
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
    grep -q 'boolean true' && break
  sleep 0.01
done

say "sandbox (auto-approve)"
"$BIN" sandbox --addr 127.0.0.1:0 --json --auto-approve --state "$WORK/sandbox.json" \
  >"$WORK/sandbox.out" 2>"$WORK/sandbox.log" &
PIDS+=($!)
for _ in $(seq 500); do [ -s "$WORK/sandbox.out" ] && break; sleep 0.01; done
field() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]])' "$WORK/sandbox.out" "$1"; }
URL=$(field url)
CLIENT_ID=$(field client_id)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REDIRECT="http://127.0.0.1:$PORT/kite-setup/callback"
APP=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$CLIENT_ID\",\"redirect_url\":\"$REDIRECT\",\"plan\":\"personal\"}" \
  "${URL}_sandbox/apps")
API_KEY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_key"])' "$APP")
API_SECRET=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_secret"])' "$APP")

# The browser: an already-running browser opening a tab is closest to curl following the
# redirect to kite-setup's listener (a Python script would add its own ~40 ms start-up).
cat >"$WORK/browser" <<'EOF'
#!/bin/sh
exec curl -s -L -o /dev/null --max-time 10 "$1"
EOF
chmod +x "$WORK/browser"
export BROWSER=$WORK/browser

say "init (sandbox profile, verified), then a live profile with the same entries"
printf '%s\n' "$API_SECRET" | "$BIN" --sandbox-url "$URL" init --no-input --client-id "$CLIENT_ID" \
  --api-key "$API_KEY" --redirect-url "$REDIRECT" --plan personal --api-secret-stdin --timeout 20 2>/dev/null
for e in app session; do
  secret-tool lookup service kite-setup username "sandbox/default/$e" |
    secret-tool store --label "kite-setup default/$e" service kite-setup username "default/$e"
done
python3 - "$KITE_SETUP_CONFIG_DIR/config.toml" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
section = re.search(r"^\[sandbox_profiles\.default\]\n(?:(?!\[).*\n?)*", text, re.M).group(0)
with open(path, "a") as f:
    f.write("\n" + section.replace("[sandbox_profiles.default]", "[profiles.default]", 1))
EOF
TOKEN=$("$BIN" token)
[ "$("$BIN" --sandbox-url "$URL" token)" = "$TOKEN" ] || { echo "live copy differs" >&2; exit 1; }
"$BIN" env | grep -q "KITE_ACCESS_TOKEN='$TOKEN'" || { echo "env is wrong" >&2; exit 1; }
PYKEYRING="$VENV/bin/python -c 'import keyring; a=keyring.get_password(\"kite-setup\",\"default/app\"); s=keyring.get_password(\"kite-setup\",\"default/session\"); assert a and s'"
sh -c "$PYKEYRING" || { echo "python keyring cannot read the entries" >&2; exit 1; }
LOOKUPS="secret-tool lookup service kite-setup username default/app >/dev/null && secret-tool lookup service kite-setup username default/session >/dev/null"
ONE_LOOKUP="secret-tool lookup service kite-setup username default/app >/dev/null"

SANDBOX_LOG=$WORK/sandbox.log
export BIN URL RUNS OUT PYKEYRING LOOKUPS ONE_LOOKUP SANDBOX_LOG
say "measuring ($RUNS runs each; hyperfine: $(command -v hyperfine || echo 'not installed, plain loop'))"
python3 "$ROOT/benches/measure.py"
