"""The kite_setup module as installed from the wheel, against a running sandbox.

Usage: python checks.py SANDBOX_URL CLIENT_ID API_SECRET_FILE VENV_BIN
Run by tests/wheel/run.sh with a profile `default` logged in at that sandbox; prints one
line per check and exits 1 at the first that fails. Logs the profile out at the end (the
session-expiry hook check).
"""

import datetime
import json
import os
import subprocess
import sys
import urllib.request

import kite_setup

URL, CLIENT_ID, SECRET_FILE, VENV_BIN = sys.argv[1:5]
SECRET = open(SECRET_FILE).read().strip()
KS = os.path.join(VENV_BIN, "kite-setup")


def check(ok, what):
    if not ok:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def raises(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    except Exception as e:  # noqa: BLE001 (the wrong type is what is reported)
        check(False, f"{fn.__name__}{args}{kwargs} raised {type(e).__name__}: {e}, not {exc_type.__name__}")
    check(False, f"{fn.__name__}{args}{kwargs} raised nothing, not {exc_type.__name__}")


# The command is the one installed next to the module (PATH has no kite-setup here).
check(kite_setup.find_binary() == KS, f"find_binary() is the venv's command: {kite_setup.find_binary()}")
check(os.path.isfile(os.path.join(os.path.dirname(kite_setup.__file__), "py.typed")), "py.typed is installed")
check("kiteconnect" not in sys.modules, "importing kite_setup does not import kiteconnect")

# credentials(): what `kite-setup env --format json` says, typed; never the secret.
creds = kite_setup.credentials(sandbox_url=URL)
env = json.loads(
    subprocess.run([KS, "--sandbox-url", URL, "env", "--format", "json"], check=True, capture_output=True).stdout
)
check(creds.api_key == env["KITE_API_KEY"], "credentials().api_key")
check(creds.access_token == env["KITE_ACCESS_TOKEN"] and len(creds.access_token) > 10, "credentials().access_token")
check(creds.client_id == CLIENT_ID, f"credentials().client_id is {CLIENT_ID}")
check(creds.sandbox is True and creds.api_root == URL, f"credentials() is for the sandbox at {URL}")
now = datetime.datetime.now(datetime.timezone.utc)
ist = creds.expiry.astimezone(datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
check(
    now < creds.expiry <= now + datetime.timedelta(hours=24) and (ist.hour, ist.minute, ist.second) == (6, 0, 0),
    f"credentials().expiry is the next 06:00 IST: {creds.expiry.isoformat()}",
)
check("kiteconnect" not in sys.modules, "credentials() does not import kiteconnect")
shown = repr(creds) + str(creds)
check(creds.access_token not in shown and SECRET not in shown, f"repr hides the token: {creds!r}")
check(SECRET not in json.dumps(env) and all(SECRET not in str(v) for v in vars(creds).values()), "no api_secret anywhere")

# Typed errors carrying kite-setup's own error: and hint: lines.
e = raises(kite_setup.UsageError, kite_setup.credentials, profile="no/slash", sandbox_url=URL)
check(e.exit_code == 2 and e.message == '"no/slash" is not a valid profile name', f"UsageError: {e.message}")
check(e.hint == "use 1-32 letters, digits, '-' or '_'", f"UsageError hint: {e.hint}")
check(isinstance(e, kite_setup.KiteSetupError), "UsageError is a KiteSetupError")
e = raises(kite_setup.LoginNeeded, kite_setup.credentials, profile="nobody", sandbox_url=URL)
check(e.exit_code == 4 and e.message == 'no profile "nobody" is set up in the sandbox', f"LoginNeeded: {e.message}")
# The hint repeats this run's --sandbox-url, so it reaches the same sandbox.
check(e.hint == f"run `kite-setup --sandbox-url {URL} --profile nobody init` first", f"LoginNeeded hint: {e.hint}")
check(str(e) == f"{e.message}\nhint: {e.hint}", "str(error) is the message and the hint, as kite-setup prints them")
e = raises(kite_setup.KiteSetupError, kite_setup.credentials, sandbox_url="http://127.0.0.1:9")
check(type(e) is kite_setup.KiteSetupError and e.exit_code == 1, f"exit 1 is KiteSetupError: {e.message}")
check(e.message == "no sandbox answers at http://127.0.0.1:9/" and e.hint.startswith("start one with"), f"its hint: {e.hint}")
e = raises(kite_setup.UsageError, kite_setup.credentials, sandbox_url="http://192.0.2.1:5010")
check("not a loopback address" in e.message, f"--sandbox-url is passed on: {e.message}")

# KITE_SETUP_PROFILE is the command's: honoured when profile=None, overridden by profile=.
os.environ["KITE_SETUP_PROFILE"] = "nobody"
e = raises(kite_setup.LoginNeeded, kite_setup.credentials, sandbox_url=URL)
check('"nobody"' in e.message, f"KITE_SETUP_PROFILE is honoured: {e.message}")
check(kite_setup.credentials(profile="default", sandbox_url=URL).api_key == creds.api_key, "profile= overrides it")
del os.environ["KITE_SETUP_PROFILE"]

# sandbox=True with no sandbox at 127.0.0.1:5010: the command starts one inside itself
# (gone when it exits), so kite() refuses to point a client there. (Should someone's
# sandbox hold that port, the command uses it and kite() must point there instead.)
try:
    urllib.request.urlopen("http://127.0.0.1:5010/_sandbox/clock", timeout=2).read()
    default_sandbox = True
except OSError:
    default_sandbox = False
if default_sandbox:
    check(kite_setup.kite(sandbox=True).root == kite_setup.DEFAULT_SANDBOX_URL, "kite(sandbox=True) uses :5010")
else:
    e = raises(kite_setup.KiteSetupError, kite_setup.kite, sandbox=True)
    check("no sandbox is running at http://127.0.0.1:5010" in e.message, f"kite(sandbox=True) alone: {e.message}")
    check(e.hint.startswith("start one with `kite-setup sandbox`"), f"its hint: {e.hint}")

# kite(): the official client, with today's token and the sandbox's root.
from kiteconnect import KiteConnect  # noqa: E402 (after the checks that it was not imported)

k = kite_setup.kite(sandbox_url=URL)
check(isinstance(k, KiteConnect), "kite() is a kiteconnect.KiteConnect")
check(k.api_key == creds.api_key and k.access_token == creds.access_token, "with the key and today's token")
check(k.root == URL.rstrip("/"), f"root is the sandbox's API: {k.root}")
check(k.profile()["user_id"] == CLIENT_ID, "profile() answers for the client ID")

# The session-expiry hook: the token revoked while the bot runs (a logout elsewhere).
out = subprocess.run([KS, "--sandbox-url", URL, "logout"], capture_output=True, text=True)
check(out.returncode == 0, f"kite-setup logout: {out.stderr.strip()}")
e = raises(kite_setup.LoginNeeded, k.profile)
check(
    e.message == "Kite rejected today's access token (it died at 06:00 IST, or was revoked)",
    f"the hook raises LoginNeeded: {e.message}",
)
check(e.hint == f"run `kite-setup --sandbox-url {URL} login`, then start the bot again", f"its hint: {e.hint}")
print("module checks passed")
