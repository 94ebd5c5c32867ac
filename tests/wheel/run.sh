#!/usr/bin/env bash
# The Python wheel end to end: build it with maturin, install it into a fresh virtualenv
# with the official kiteconnect SDK, and there check the installed `kite-setup` command and
# the `kite_setup` module against a sandbox, with secrets in a private headless Secret
# Service. Every process it starts is stopped on exit (trap).
#
# Usage: bash tests/wheel/run.sh [WHEEL]   (without WHEEL: `maturin build --release` first)
# Needs: python3 with venv, maturin, dbus-daemon, gnome-keyring, secret-tool (.ci/run
# installs them), and PyPI for kiteconnect==5.2.2.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/wheel
PY=${PYTHON:-python3}

log() { printf '\n== wheel: %s\n' "$*" >&2; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kite-setup-wheel.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
# A signal ends the script through exit, so the EXIT trap cleans up then too.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$VERSION" ] || fail "no version in Cargo.toml"

# --- the wheel
if [ $# -ge 1 ]; then
  WHEEL=$1
else
  log "maturin build --release"
  start=$(date +%s)
  maturin build --release --locked --out "$WORK/dist" >&2
  log "wheel built in $(($(date +%s) - start)) s"
  WHEEL=$(ls "$WORK"/dist/kite_setup-"$VERSION"-*.whl)
fi
case "$(basename "$WHEEL")" in
  kite_setup-"$VERSION"-*.whl) ;;
  *) fail "the wheel $WHEEL is not kite_setup-$VERSION-*.whl" ;;
esac
log "$(basename "$WHEEL"): $(du -k "$WHEEL" | cut -f1) KiB"
"$PY" - "$WHEEL" <<'EOF' || fail "the wheel's contents"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
want = ["kite_setup/__init__.py", "kite_setup/py.typed"]
missing = [n for n in want if n not in names]
scripts = [n for n in names if n.endswith(".data/scripts/kite-setup")]
if missing or len(scripts) != 1:
    sys.exit(f"missing {missing}, scripts {scripts} in {names}")
EOF

# --- a fresh virtualenv with the wheel and the official SDK
log "venv: pip install kiteconnect==5.2.2 $(basename "$WHEEL")"
"$PY" -m venv "$WORK/venv"
VENV_BIN=$WORK/venv/bin
"$VENV_BIN/python" -m pip install -q --disable-pip-version-check kiteconnect==5.2.2 "$WHEEL" >&2
KS=$VENV_BIN/kite-setup

# Only this test's world from here on: private config, data, keyring and home; no
# browser, display or profile from the caller; no kite-setup on PATH but the venv's.
export PATH=/usr/local/bin:/usr/bin:/bin
for sub in run data config cache home cfg dat; do mkdir -m 0700 -p "$WORK/$sub"; done
export XDG_RUNTIME_DIR=$WORK/run XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config
export XDG_CACHE_HOME=$WORK/cache HOME=$WORK/home
export KITE_SETUP_CONFIG_DIR=$WORK/cfg KITE_SETUP_DATA_DIR=$WORK/dat
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost NO_COLOR=1
unset KITE_SETUP_PROFILE BROWSER DISPLAY WAYLAND_DISPLAY SSH_CONNECTION SSH_TTY
unset KITE_API_KEY KITE_ACCESS_TOKEN KITE_API_SECRET

# expect CODE OUT_FILE ERR_FILE CMD...: runs CMD, fails unless it exits with CODE.
expect() {
  local code=$1 out=$2 err=$3 got=0
  shift 3
  "$@" >"$out" 2>"$err" </dev/null || got=$?
  if [ "$got" != "$code" ]; then
    printf -- '--- stdout:\n%s\n--- stderr:\n%s\n' "$(cat "$out")" "$(cat "$err")" >&2
    fail "exit $got (wanted $code): $*"
  fi
}

log "kite-setup --version from the venv"
expect 0 "$WORK/out" "$WORK/err" "$KS" --version
[ "$(cat "$WORK/out")" = "kite-setup $VERSION" ] || fail "--version printed: $(cat "$WORK/out")"

# --- a private Secret Service: its own D-Bus session (no service activation, so nothing
# else starts on it) and an unlocked gnome-keyring.
log "a private Secret Service"
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
dbus-daemon --config-file="$WORK/bus.conf" --nofork --print-address=3 3>"$WORK/bus.addr" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/bus.addr" ] && break; sleep 0.05; done
DBUS_SESSION_BUS_ADDRESS=$(head -n1 "$WORK/bus.addr")
[ -n "$DBUS_SESSION_BUS_ADDRESS" ] || fail "dbus-daemon gave no address"
export DBUS_SESSION_BUS_ADDRESS
printf '%s' kite-setup-test-keyring |
  gnome-keyring-daemon --foreground --components=secrets --unlock >/dev/null 2>"$WORK/keyring.log" &
PIDS+=($!)
owned=
for _ in $(seq 200); do
  if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; then
    owned=1
    break
  fi
  sleep 0.05
done
[ -n "$owned" ] || fail "no Secret Service on the private bus: $(cat "$WORK/keyring.log")"

# --- a sandbox, run by the installed command
log "kite-setup sandbox --auto-approve"
"$KS" sandbox --addr 127.0.0.1:0 --json --auto-approve --state "$WORK/sandbox.json" \
  >"$WORK/banner" 2>"$WORK/sandbox.log" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$WORK/banner" ] && break; sleep 0.05; done
[ -s "$WORK/banner" ] || fail "no sandbox banner: $(cat "$WORK/sandbox.log")"
# The sandbox's URL and demo account, and an app for it with a free redirect port, made
# through the sandbox's control API (the console's part).
"$VENV_BIN/python" - "$WORK" <<'EOF' || fail "creating the sandbox app"
import json, socket, sys, urllib.request
work = sys.argv[1]
banner = json.loads(open(f"{work}/banner").readline())
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
redirect = f"http://127.0.0.1:{port}/kite-setup/callback"
body = json.dumps({"client_id": banner["client_id"], "redirect_url": redirect, "plan": "personal"}).encode()
req = urllib.request.Request(banner["url"] + "_sandbox/apps", body, {"Content-Type": "application/json"})
app = json.load(urllib.request.urlopen(req, timeout=10))
for name, value in [("url", banner["url"]), ("client_id", banner["client_id"]),
                    ("api_key", app["api_key"]), ("redirect_url", redirect)]:
    open(f"{work}/{name}", "w").write(value)
with open(f"{work}/api_secret", "w") as f:
    f.write(app["api_secret"] + "\n")
EOF
URL=$(cat "$WORK/url")
CLIENT_ID=$(cat "$WORK/client_id")

# --- the profile, set up by the installed command, secrets in the Secret Service
log "kite-setup --sandbox-url $URL init --no-input"
"$KS" --sandbox-url "$URL" init --no-input --client-id "$CLIENT_ID" --api-key "$(cat "$WORK/api_key")" \
  --redirect-url "$(cat "$WORK/redirect_url")" --plan personal --api-secret-stdin --timeout 20 \
  <"$WORK/api_secret" >"$WORK/out" 2>"$WORK/err" || fail "init: $(cat "$WORK/err")"
grep -q "Verified: Kite logged in" "$WORK/err" || fail "init did not verify: $(cat "$WORK/err")"
secret-tool lookup service kite-setup username sandbox/apps/default/app >/dev/null ||
  fail "no app entry in the Secret Service"
secret-tool lookup service kite-setup username sandbox/default/session >/dev/null ||
  fail "no session entry in the Secret Service"

# --- the README's bot, with the module from the wheel
log "python bot.py: kite_setup.kite().profile()"
expect 0 "$WORK/out" "$WORK/err" "$VENV_BIN/python" "$HERE/bot.py" "$URL"
[ "$(cat "$WORK/out")" = "$CLIENT_ID" ] || fail "the bot printed $(cat "$WORK/out"), not $CLIENT_ID"

log "python checks.py: credentials(), errors, the session-expiry hook"
"$VENV_BIN/python" "$HERE/checks.py" "$URL" "$CLIENT_ID" "$WORK/api_secret" "$VENV_BIN" >&2 ||
  fail "module checks"

# The hint's command brings the bot back.
log "kite-setup login, then the bot again"
expect 0 "$WORK/out" "$WORK/err" "$KS" --sandbox-url "$URL" login --timeout 20
expect 0 "$WORK/out" "$WORK/err" "$VENV_BIN/python" "$HERE/bot.py" "$URL"
[ "$(cat "$WORK/out")" = "$CLIENT_ID" ] || fail "the bot printed $(cat "$WORK/out") after login"

# After logout the same bot ends with the module's exception and kite-setup's words.
log "kite-setup logout, then the bot again"
expect 0 "$WORK/out" "$WORK/err" "$KS" --sandbox-url "$URL" logout
expect 1 "$WORK/out" "$WORK/err" "$VENV_BIN/python" "$HERE/bot.py" "$URL"
[ ! -s "$WORK/out" ] || fail "the bot printed after logout: $(cat "$WORK/out")"
want="kite_setup.LoginNeeded: no access token for today
hint: run \`kite-setup --sandbox-url $URL login\` (tokens die at 06:00 IST every day)"
[ "$(tail -n2 "$WORK/err")" = "$want" ] || fail "the bot's end after logout: $(cat "$WORK/err")"
grep -q '^Traceback' "$WORK/err" || fail "no traceback: $(cat "$WORK/err")"
log "wheel checks passed"
