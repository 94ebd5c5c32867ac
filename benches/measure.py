#!/usr/bin/env python3
"""The measuring half of benches/daily.sh (run that, not this): times each command with
hyperfine when installed, else with a plain loop (median of RUNS, minus an empty shell's
start-up for commands run through sh, as hyperfine does), and prints the figures against
the targets in docs/testing.md. Raw data goes to target/bench/."""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

BIN = os.environ["BIN"]
URL = os.environ["URL"]
RUNS = int(os.environ["RUNS"])
OUT = os.environ["OUT"]
SANDBOX_LOG = os.environ["SANDBOX_LOG"]
HYPERFINE = shutil.which("hyperfine")


def measure(group, commands, shell=True, runs=RUNS, warmup=3):
    """{name: seconds list} for [(name, command)]."""
    if HYPERFINE:
        path = os.path.join(OUT, f"{group}.json")
        args = [HYPERFINE, "--style", "basic", "--warmup", str(warmup), "--runs", str(runs),
                "--export-json", path]
        args += ["--shell=sh"] if shell else ["-N"]
        for name, cmd in commands:
            args += ["-n", name, cmd]
        subprocess.run(args, check=True, stdout=sys.stderr)
        with open(path) as f:
            data = json.load(f)
        return {r["command"]: r["times"] for r in data["results"]}

    def loop(cmd, use_shell):
        times = []
        for i in range(warmup + runs):
            t = time.perf_counter_ns()
            subprocess.run(cmd if use_shell else cmd.split(), shell=use_shell, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if i >= warmup:
                times.append((time.perf_counter_ns() - t) / 1e9)
        return times

    base = statistics.median(loop(":", True)) if shell else 0.0
    return {name: [max(t - base, 0.0) for t in loop(cmd, shell)] for name, cmd in commands}


def ms(times):
    return statistics.median(times) * 1000


def main():
    load_before = os.getloadavg()[0]
    q = lambda s: "'" + s.replace("'", "'\\''") + "'"  # noqa: E731
    results = {}
    # Reading the two entries: run through sh so the pair of lookups is one command; the
    # shell's own start-up is subtracted for every command alike.
    results.update(measure("env", [
        ("kite-setup env", f"{q(BIN)} env >/dev/null"),
        ("kite-setup env (sandbox profile: + GET /_sandbox/clock)",
         f"{q(BIN)} --sandbox-url {q(URL)} env >/dev/null"),
        ("2 x secret-tool lookup", os.environ["LOOKUPS"]),
        ("1 x secret-tool lookup", os.environ["ONE_LOOKUP"]),
        ("python keyring, 2 entries", os.environ["PYKEYRING"]),
    ]))
    results.update(measure("exec", [
        ("kite-setup exec -- true", f"{BIN} exec -- /bin/true"),
        ("true", "/bin/true"),
    ], shell=False))
    results.update(measure("version", [("kite-setup --version", f"{BIN} --version")],
                           shell=False))
    results.update(measure("login", [
        ("kite-setup login --force (sandbox)",
         f"{BIN} --sandbox-url {URL} login --force --timeout 20"),
    ], shell=False, runs=max(10, RUNS // 3)))

    # HTTP round trips of one login, from the sandbox's request log.
    with open(SANDBOX_LOG) as f:
        before = len(f.readlines())
    subprocess.run([BIN, "--sandbox-url", URL, "login", "--force", "--timeout", "20"],
                   check=True, stderr=subprocess.DEVNULL)
    time.sleep(0.2)
    with open(SANDBOX_LOG) as f:
        lines = [l.strip() for l in f.readlines()[before:]]
    kite_calls = [l for l in lines if l.startswith("sandbox:") and "/_sandbox/" not in l]

    size = os.path.getsize(BIN)
    med = {k: ms(v) for k, v in results.items()}
    env, pair = med["kite-setup env"], med["2 x secret-tool lookup"]
    checks = [
        ("env / two secret-tool lookups", f"{env / pair:.2f}", "<= 1.0", env / pair <= 1.0),
        ("python keyring / env", f"{med['python keyring, 2 entries'] / env:.1f}x", ">= 10x",
         med["python keyring, 2 entries"] / env >= 10),
        ("exec overhead (median)",
         f"{med['kite-setup exec -- true'] - med['true']:.1f} ms", "< 10 ms",
         med["kite-setup exec -- true"] - med["true"] < 10),
        ("login --force (sandbox, median)", f"{med['kite-setup login --force (sandbox)']:.1f} ms",
         "< 150 ms", med["kite-setup login --force (sandbox)"] < 150),
        ("--version (median)", f"{med['kite-setup --version']:.1f} ms", "< 5 ms",
         med["kite-setup --version"] < 5),
        ("release binary", f"{size / 1e6:.2f} MB", "< 10 MB", size < 10e6),
    ]

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    date = subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M UTC"], capture_output=True,
                          text=True).stdout.strip()
    print(f"\nMachine: {os.cpu_count()} CPUs, {cpu}, {platform.system()} "
          f"{platform.release()}; {date}; "
          f"{'hyperfine ' + subprocess.run([HYPERFINE, '--version'], capture_output=True, text=True).stdout.split()[-1] if HYPERFINE else 'plain loop'}, "
          f"{RUNS} runs (login {max(10, RUNS // 3)}); load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after (other work on the machine skews every figure)\n")
    print("| command | median | mean ± sd |")
    print("|---|---:|---:|")
    for name, times in results.items():
        sd = statistics.stdev(times) * 1000 if len(times) > 1 else 0.0
        print(f"| `{name}` | {ms(times):.1f} ms | {statistics.mean(times) * 1000:.1f} ± {sd:.1f} ms |")
    print("\n| target | measured | goal | |")
    print("|---|---:|---:|---|")
    for name, got, goal, ok in checks:
        print(f"| {name} | {got} | {goal} | {'met' if ok else '**MISSED**'} |")
    print(f"\nOne login's Kite requests ({len(kite_calls)}): " + "; ".join(
        l.removeprefix("sandbox: ") for l in kite_calls))
    with open(os.path.join(OUT, "daily-summary.json"), "w") as f:
        json.dump({"median_ms": med, "binary_bytes": size, "login_requests": kite_calls,
                   "targets": [{"target": c[0], "measured": c[1], "goal": c[2], "met": c[3]}
                               for c in checks]}, f, indent=2)


if __name__ == "__main__":
    main()
