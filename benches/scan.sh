#!/usr/bin/env bash
# The leak scan's benchmark: kite-setup's scan against ripgrep over the same generated tree.
#
#   bash benches/scan.sh            # builds the release binary, then measures; ~1-2 min
#
# Not part of `cargo test`. Needs python3, curl, ripgrep (`rg`) and hyperfine
# (`apt-get install ripgrep hyperfine`). FILES (default 16000) and RUNS (default 20) can be
# set in the environment.
#
# What is measured is the command a user runs: `kite-setup doctor --scan TREE` for a sandbox
# profile whose secrets are in a file store (no keyring daemon to wait for), against
# `rg -uuu -F -l -f` for the same two values. Doctor's other probes (config, store round trip,
# three loopback requests to the sandbox) are included in its time; `doctor` without
# `--scan` is measured in the same run to show what they cost. The tree is generated: text
# files of several sizes in nested and hidden directories (a virtualenv, node_modules,
# notebook checkpoints), binary files with NUL bytes, a few 1 MiB logs; the api_secret and
# the access token are planted in some of them, at known lines and offsets, and every
# planted copy must be reported by kite-setup (and seen by rg) or the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-20}
FILES=${FILES:-16000}

say() { printf '== %s\n' "$*" >&2; }

for tool in python3 curl rg hyperfine; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: apt-get install -y python3 curl ripgrep hyperfine" >&2
    exit 1
  }
done

say "cargo build --release"
cargo build --release --locked --quiet
BIN=$ROOT/target/release/kite-setup
OUT=$ROOT/target/bench
mkdir -p "$OUT"

WORK=$(mktemp -d /tmp/kite-scan-bench-XXXXXX)
SANDBOX_PID=""
cleanup() {
  [ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for d in run data home config cache cwd; do mkdir -m 700 "$WORK/$d"; done
export XDG_RUNTIME_DIR=$WORK/run XDG_DATA_HOME=$WORK/data HOME=$WORK/home
export XDG_CONFIG_HOME=$WORK/config XDG_CACHE_HOME=$WORK/cache
export KITE_SETUP_CONFIG_DIR=$WORK/kite-config KITE_SETUP_DATA_DIR=$WORK/kite-data
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost NO_COLOR=1
unset KITE_SETUP_PROFILE KITE_API_KEY KITE_ACCESS_TOKEN KITE_API_SECRET HISTFILE

say "sandbox (auto-approve) and a profile with a file store"
"$BIN" sandbox --addr 127.0.0.1:0 --json --auto-approve --state "$WORK/sandbox.json" \
  >"$WORK/sandbox.out" 2>"$WORK/sandbox.log" &
SANDBOX_PID=$!
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
cat >"$WORK/browser" <<'EOF'
#!/bin/sh
exec curl -s -L -o /dev/null --max-time 10 "$1"
EOF
chmod +x "$WORK/browser"
export BROWSER=$WORK/browser
printf '%s\n' "$API_SECRET" | "$BIN" --sandbox-url "$URL" --store file init --no-input \
  --client-id "$CLIENT_ID" --api-key "$API_KEY" --redirect-url "$REDIRECT" --plan personal \
  --api-secret-stdin --timeout 20 2>/dev/null
TOKEN=$("$BIN" --sandbox-url "$URL" token)

TREE=$WORK/tree
say "generating $FILES files in $TREE"
# The values go through the environment, never the command line.
API_SECRET=$API_SECRET TOKEN=$TOKEN python3 - "$TREE" "$FILES" "$WORK/planted.json" <<'EOF'
import json, os, random, sys
root, total, manifest = sys.argv[1], int(sys.argv[2]), sys.argv[3]
secret, token = os.environ["API_SECRET"], os.environ["TOKEN"]
rng = random.Random(20260401)
words = [w * rng.randint(1, 3) for w in "def class import return self kite order quantity price exchange symbol token NSE BSE async await for in if else".split()]
tops = ["src", "lib", ".venv/lib/python3.12/site-packages", "node_modules", "data", "notebooks/.ipynb_checkpoints", "docs", ".cache"]
planted, files = [], []
for i in range(total):
    top = tops[i % len(tops)]
    d = os.path.join(root, top, f"pkg{(i // 97) % 40}", f"mod{(i // 7) % 13}")
    binary = i % 50 == 17
    big = i % 1000 == 3
    name = f"f{i}." + ("bin" if binary else "log" if big else rng.choice(["py", "json", "txt", "ipynb", "env", "md"]))
    files.append((d, name, binary, big))
plant_at = set(rng.sample(range(total), 60))
for i, (d, name, binary, big) in enumerate(files):
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name)
    rel = os.path.relpath(path, root)
    kind, value = ("api_secret", secret) if i % 3 else ("access_token", token)
    if binary:
        data = bytearray(rng.randbytes(rng.randint(4096, 65536)))
        data[100] = 0
        if i in plant_at:
            off = rng.randint(200, len(data) - 64)
            data[off:off + len(value)] = value.encode()
            planted.append({"path": rel, "binary": True, "at": off, "kind": kind})
    else:
        n = 4000 if big else rng.randint(20, 600)
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) for _ in range(n)]
        if i in plant_at:
            at = rng.randint(0, n - 1)
            lines[at] = f'KITE_API_SECRET = "{value}"  # {lines[at]}'
            planted.append({"path": rel, "binary": False, "at": at + 1, "kind": kind})
        data = ("\n".join(lines) + "\n").encode()
    with open(path, "wb") as f:
        f.write(data)
json.dump(planted, open(manifest, "w"))
size = sum(os.path.getsize(os.path.join(d, n)) for d, n, _, _ in files)
print(f"{total} files, {size / 1e6:.0f} MB, {len(planted)} planted copies", file=sys.stderr)
EOF

DOCTOR="$BIN --sandbox-url $URL doctor --scan $TREE"
# The values reach rg through a pattern file, not its command line.
printf '%s\n%s\n' "$API_SECRET" "$TOKEN" >"$WORK/needles"
RG="rg -uuu -F -l -f $WORK/needles $TREE"

say "checking that every planted copy is found"
(cd "$WORK/cwd" && $DOCTOR --json >"$WORK/doctor.json" 2>"$WORK/doctor.err") || true
$RG >"$WORK/rg.out" || true
API_SECRET=$API_SECRET TOKEN=$TOKEN python3 - "$WORK" "$TREE" <<'EOF'
import json, os, sys
work, tree = sys.argv[1], sys.argv[2]
secret, token = os.environ["API_SECRET"], os.environ["TOKEN"]
raw = open(f"{work}/doctor.json").read() + open(f"{work}/doctor.err").read()
assert secret not in raw and token not in raw, "kite-setup printed a value"
probes = {p["probe"]: p for p in json.loads(open(f"{work}/doctor.json").read())}
detail = probes["plaintext copies"]["detail"]
planted = json.load(open(f"{work}/planted.json"))
missing = []
for p in planted:
    path = os.path.join(tree, p["path"])
    place = f"{path} (binary, offset {p['at']})" if p["binary"] else f"{path}:{p['at']}"
    if f"{place} ({p['kind']})" not in detail:
        missing.append(place)
found = detail.count(f"{tree}/")
rg = set(open(f"{work}/rg.out").read().split())
rg_missing = [p["path"] for p in planted if os.path.join(tree, p["path"]) not in rg]
print(f"kite-setup reports {found} copies; planted {len(planted)}; missing {len(missing)}; rg missed {len(rg_missing)}", file=sys.stderr)
assert not missing, f"kite-setup missed: {missing[:5]}"
assert found == len(planted), "kite-setup reported copies that were not planted"
assert not rg_missing, f"rg missed: {rg_missing[:5]}"
EOF

say "measuring ($RUNS runs each, load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
cd "$WORK/cwd"
hyperfine -N --ignore-failure --warmup 3 --runs "$RUNS" --export-json "$OUT/scan.json" \
  -n "kite-setup doctor --scan" "$DOCTOR" \
  -n "rg -uuu -F -l" "$RG" \
  -n "kite-setup doctor (no scan)" "$BIN --sandbox-url $URL doctor" \
  2>&1 | sed -e "s|$WORK|\$WORK|g" -e "s|$URL|\$URL|g"
python3 - "$OUT/scan.json" <<'EOF'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ks, rg, base = r["kite-setup doctor --scan"], r["rg -uuu -F -l"], r["kite-setup doctor (no scan)"]
ms = lambda x: f"{x['mean'] * 1000:.1f} ± {x['stddev'] * 1000:.1f} ms"
print(f"kite-setup doctor --scan  {ms(ks)}")
print(f"rg -uuu -F -l             {ms(rg)}")
print(f"doctor without --scan     {ms(base)}")
print(f"ratio (doctor --scan / rg): {ks['mean'] / rg['mean']:.2f}x (median {ks['median'] / rg['median']:.2f}x); goal <= 1.2x")
print(f"ratio of the scan alone ((doctor --scan - doctor) / rg): {(ks['mean'] - base['mean']) / rg['mean']:.2f}x")
EOF
