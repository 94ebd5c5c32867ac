#!/usr/bin/env python3
"""Conformance of the kite-setup sandbox with the official Python SDK (kiteconnect 5.2.2).

Usage: conformance.py '<banner json>' (the sandbox's --json banner line; it must run with
--auto-approve). Every check is counted and printed; any failure exits 1, a missing SDK
exits 2. Run by tests/it/sdk_conformance.rs.
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import struct
import sys
import time
import traceback
import urllib.parse

# The sandbox is on loopback: never route it through a proxy.
os.environ["NO_PROXY"] = "127.0.0.1,localhost,::1"
os.environ["no_proxy"] = os.environ["NO_PROXY"]

try:
    import requests
    from kiteconnect import KiteConnect
    from kiteconnect import exceptions as ex
    from kiteconnect.__version__ import __version__ as SDK_VERSION
except ImportError as e:
    print(f"FAIL: the official kiteconnect SDK is not installed ({e}); "
          "install it with: pip install kiteconnect==5.2.2")
    sys.exit(2)

BAD_KEY = "Incorrect `api_key` or `access_token`."
TOKEN_INVALID = "Token is invalid or has expired."
BAD_CHECKSUM = "Invalid `checksum`."
NOT_ENABLED = "The user is not enabled for the app."
NO_IPS = "No IPs configured for this app. Add allowed IPs on the Kite developer console."
MARKET_PROTECTION = ("Market orders without market protection are not allowed via API. "
                     "Please set market protection or use a Limit order.")


def ip_refused(ip):
    return (f"IP ({ip}) is not allowed to place orders for this app. "
            "Update allowed IPs on the Kite developer console.")

BANNER = json.loads(sys.argv[1])
ROOT = urllib.parse.urlsplit(BANNER["url"])

passed = 0
failed = []


def check(name, ok, detail=""):
    """Counts one check and prints it."""
    global passed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed.append(name)
        print(f"FAIL {name} {detail}")


def expect_error(name, cls, message, code, fn):
    """Runs fn, which must raise exactly `cls` with `message` and HTTP `code`."""
    try:
        fn()
    except ex.KiteException as e:
        got = (type(e).__name__, e.message if hasattr(e, "message") else str(e), e.code)
        check(name, got == (cls.__name__, message, code), f"got {got!r}")
        return
    except Exception as e:  # noqa: BLE001 - reported as a failed check
        check(name, False, f"got {type(e).__name__}: {e}")
        return
    check(name, False, "no exception")


def raw(method, path, body=None, headers=None):
    """A plain HTTP call to the sandbox, redirects not followed."""
    conn = http.client.HTTPConnection(ROOT.hostname, ROOT.port, timeout=10)
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    out = (resp.status, dict(resp.getheaders()), resp.read())
    conn.close()
    return out


def control(path, body=None):
    status, _, data = raw("POST", "/_sandbox/" + path, body if body is not None else {})
    if status != 200:
        raise RuntimeError(f"control {path} answered {status}: {data!r}")
    return json.loads(data)


def post_form(path, fields):
    """A form POST as a browser sends it, redirects not followed."""
    conn = http.client.HTTPConnection(ROOT.hostname, ROOT.port, timeout=10)
    conn.request("POST", path, body=urllib.parse.urlencode(fields),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    out = (resp.status, dict(resp.getheaders()), resp.read())
    conn.close()
    return out


def totp_now(secret_b32):
    """The current RFC 6238 code (SHA-1, 6 digits, 30 s), as an authenticator app shows it."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)


def set_clock(offset):
    control("clock", {"offset_seconds": int(offset)})


def new_kite(api_key):
    kite = KiteConnect(api_key, root=BANNER["api_url"])
    kite._default_login_uri = BANNER["login_url"]
    return kite


def login(kite, state="n0nce"):
    """The browser step: GET the login URL (auto-approve), read the redirect's token."""
    url = kite.login_url() + "&redirect_params=" + urllib.parse.quote(f"state={state}")
    parts = urllib.parse.urlsplit(url)
    status, headers, _ = raw("GET", f"{parts.path}?{parts.query}")
    location = headers.get("Location", "")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    if status != 302 or query.get("status") != "success" or query.get("state") != state:
        raise RuntimeError(f"login redirect was {status} {location!r}")
    return query["request_token"]


def next_six_ist(login_time):
    """The first 06:00 IST after a naive IST wall time."""
    six = login_time.replace(hour=6, minute=0, second=0, microsecond=0)
    return six if login_time < six else six + datetime.timedelta(days=1)


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """Connects from a given local address (a bot on another loopback IP)."""

    def __init__(self, source, **kwargs):
        self.source = source
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        return super().init_poolmanager(*args, **kwargs)


def kite_from(api_key, access_token, source=None):
    """A client with a live token, optionally connecting from `source`."""
    kite = new_kite(api_key)
    kite.set_access_token(access_token)
    if source:
        kite.reqsession = requests.Session()
        kite.reqsession.mount("http://", SourceAddressAdapter(source))
    return kite


def limit_order(kite, **extra):
    params = dict(variety="regular", exchange="NSE", tradingsymbol="INFY",
                  transaction_type="BUY", quantity=1, product="CNC", order_type="LIMIT",
                  price=1500)
    params.update(extra)
    return kite.place_order(**params)


def orders_checks(api_key, access_token):
    """The static IP rule on the TCP peer, order changes, market protection, 10 orders/s."""
    ips_path = f"accounts/{BANNER['client_id']}/ips"
    kite = kite_from(api_key, access_token)
    expect_error("orders: no IPs configured", ex.PermissionException, NO_IPS, 403,
                 lambda: limit_order(kite))
    control(ips_path, {"ips": ["127.0.0.2"]})
    expect_error("orders: a peer not on the whitelist", ex.PermissionException,
                 ip_refused("127.0.0.1"), 403, lambda: limit_order(kite))
    check("orders: the order book is not IP-checked", kite.orders() == [])
    listed = kite_from(api_key, access_token, source="127.0.0.2")
    order_id = limit_order(listed)
    check("orders: placed from the whitelisted 127.0.0.2", len(order_id) == 19 and order_id.isdigit(),
          order_id)
    check("orders: modify", listed.modify_order("regular", order_id, price=1490, quantity=2) == order_id)
    book = {o["order_id"]: o for o in kite.orders()}
    check("orders: the book shows the modified order",
          book.get(order_id, {}).get("price") == 1490 and book[order_id]["status"] == "OPEN",
          book.get(order_id))
    check("orders: cancel", listed.cancel_order("regular", order_id) == order_id)
    check("orders: the book shows it cancelled",
          {o["order_id"]: o["status"] for o in kite.orders()}.get(order_id) == "CANCELLED")
    expect_error("orders: cancel of an unknown order", ex.InputException,
                 "Couldn't find that order.", 400,
                 lambda: listed.cancel_order("regular", "1234567890123456789"))
    expect_error("orders: MARKET without market_protection", ex.InputException,
                 MARKET_PROTECTION, 400, lambda: limit_order(listed, order_type="MARKET", price=None))
    check("orders: MARKET with automatic protection",
          len(limit_order(listed, order_type="MARKET", price=None, market_protection=-1)) == 19)
    control(ips_path, {"ips": ["127.0.0.1"]})
    expect_error("orders: 127.0.0.2 once it is off the list", ex.PermissionException,
                 ip_refused("127.0.0.2"), 403, lambda: limit_order(listed))
    check("orders: 127.0.0.1 once it is on the list", len(limit_order(kite)) == 19)
    check("orders: the whitelist shows in the state",
          json.loads(raw("GET", "/_sandbox/state")[2])["accounts"][0]["ips"] == ["127.0.0.1"])

    # More than 10 order requests in one second: 429. One client, one connection, requests
    # in sequence (the sandbox's HTTP server queues simultaneous new connections behind
    # busy ones). A burst whose eleventh request left more than a second after the first
    # proves nothing, so it is tried again, up to five times; never conclusive is a failure.
    burst = None
    for _ in range(5):
        time.sleep(1.1)
        results, t0 = [], time.monotonic()
        for _ in range(11):
            try:
                results.append(("ok", limit_order(kite)))
            except ex.KiteException as e:
                results.append((type(e).__name__, getattr(e, "message", str(e)), e.code))
        if time.monotonic() - t0 < 1.0:
            burst = results
            break
    check("orders: a burst of 11 fitted in one second", burst is not None)
    burst = burst or []
    check("orders: the first 10 in a second go through", all(r[0] == "ok" for r in burst[:10]), burst)
    check("orders: the 11th gets 429 Too many requests",
          burst[10:] == [("NetworkException", "Too many requests", 429)], burst)
    time.sleep(1.1)
    check("orders: room again a second later", len(limit_order(kite)) == 19)
    control(ips_path, {"ips": []})


def token_from(location, state):
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    if query.get("status") != "success" or query.get("state") != state:
        raise RuntimeError(f"login redirect was {location!r}")
    return query["request_token"]


def family_checks():
    """One app, several client IDs: each listed one logs in and gets its own session; one
    not on the list is refused at the login step, before any request token."""
    owner = BANNER["client_id"]
    app = control("apps", {"client_id": owner, "redirect_url": "http://127.0.0.1:5997/cb",
                           "name": "Family app"})
    api_key, api_secret = app["api_key"], app["api_secret"]
    spouse, stranger = control("accounts"), control("accounts")
    listed = control(f"apps/{api_key}/clients", {"client_ids": [owner, spouse["client_id"]]})
    check("family: the app's client IDs, its own first",
          listed == {"api_key": api_key, "client_ids": [owner, spouse["client_id"]]}, listed)
    views = {a["api_key"]: a for a in json.loads(raw("GET", "/_sandbox/state")[2])["apps"]}
    check("family: the list shows in the state",
          views[api_key]["client_ids"] == [owner, spouse["client_id"]], views[api_key])

    # The owner through the auto-approving login page, the spouse through the approve
    # shortcut (as a browser would, logged in as the spouse): two sessions, one app.
    k_owner = new_kite(api_key)
    owner_session = k_owner.generate_session(login(k_owner, "fam1"), api_secret=api_secret)
    k_spouse = new_kite(api_key)
    url = k_spouse.login_url() + "&redirect_params=" + urllib.parse.quote("state=fam2")
    to = control("approve", {"login_url": url, "client_id": spouse["client_id"]})
    spouse_session = k_spouse.generate_session(token_from(to["redirect_url"], "fam2"),
                                               api_secret=api_secret)
    check("family: the spouse's session is the spouse's",
          spouse_session["user_id"] == spouse["client_id"], spouse_session.get("user_id"))
    check("family: two access tokens",
          owner_session["access_token"] != spouse_session["access_token"])
    check("family: profile() for the owner", k_owner.profile()["user_id"] == owner)
    check("family: profile() for the spouse", k_spouse.profile()["user_id"] == spouse["client_id"])

    # The spouse again, as a person fills the login page (authorised once already).
    status, headers, _ = post_form("/connect/login", {
        "api_key": api_key, "redirect_params": "state=fam3", "client_id": spouse["client_id"],
        "password": spouse["password"], "totp": totp_now(spouse["totp_secret"])})
    k_again = new_kite(api_key)
    again = k_again.generate_session(token_from(headers.get("Location", ""), "fam3"),
                                     api_secret=api_secret) if status == 302 else {}
    check("family: the spouse through the login form", again.get("user_id") == spouse["client_id"],
          (status, again.get("user_id")))
    check("family: the owner's session still works", k_owner.profile()["user_id"] == owner)

    # A client ID not on the list: Kite's refusal at the login step, no request token.
    before = json.loads(raw("GET", "/_sandbox/state")[2])["live_request_tokens"]
    status, headers, body = post_form("/connect/login", {
        "api_key": api_key, "client_id": stranger["client_id"], "password": stranger["password"],
        "totp": totp_now(stranger["totp_secret"])})
    check("family: a client ID not on the list is refused",
          (status, {k.lower(): v for k, v in headers.items()}.get("content-type"), json.loads(body)) ==
          (400, "application/json", {"status": "error", "message": NOT_ENABLED, "data": None,
                                     "error_type": "InputException"}), (status, body))
    status, _, body = raw("POST", "/_sandbox/approve",
                          {"login_url": url, "client_id": stranger["client_id"]})
    check("family: the approve shortcut refuses it too",
          status == 400 and json.loads(body)["message"] == NOT_ENABLED, (status, body))
    after = json.loads(raw("GET", "/_sandbox/state")[2])["live_request_tokens"]
    check("family: no request token for the refused login", after == before, (before, after))


def main():
    api_key, api_secret = BANNER["api_key"], BANNER["api_secret"]
    print(f"kiteconnect {SDK_VERSION} against {BANNER['api_url']}")
    check("SDK is 5.2.2", SDK_VERSION == "5.2.2", SDK_VERSION)

    # The whole happy path.
    kite = new_kite(api_key)
    check("login_url points at the sandbox", kite.login_url().startswith(BANNER["login_url"] + "?"))
    rt = login(kite)
    data = kite.generate_session(rt, api_secret=api_secret)
    check("generate_session user_id", data["user_id"] == BANNER["client_id"], data.get("user_id"))
    check("generate_session access_token", len(data["access_token"]) == 32 and data["access_token"].isalnum())
    check("generate_session api_key", data["api_key"] == api_key)
    check("generate_session login_time parsed", isinstance(data["login_time"], datetime.datetime),
          repr(data["login_time"]))
    check("generate_session shape", {"user_type", "broker", "exchanges", "products", "order_types",
                                     "public_token", "enctoken", "refresh_token", "silo", "meta"}
          <= set(data))
    check("access token set on the client", kite.access_token == data["access_token"])
    profile = kite.profile()
    check("profile user_id", profile["user_id"] == BANNER["client_id"])
    check("profile has no token", "access_token" not in profile)
    margins = kite.margins()
    check("margins segments", {"equity", "commodity"} <= set(margins))
    equity = kite.margins("equity")
    check("margins(equity)", "net" in equity and "available" in equity)
    check("margins(commodity)", "net" in kite.margins("commodity"))

    hook_calls = []
    kite.set_session_expiry_hook(lambda: hook_calls.append(1))
    check("invalidate_access_token", kite.invalidate_access_token() is True)
    expect_error("profile after logout", ex.TokenException, BAD_KEY, 403, kite.profile)
    check("session expiry hook fired on a dead token", len(hook_calls) == 1, hook_calls)
    expect_error("logout of a dead token", ex.TokenException, BAD_KEY, 403,
                 kite.invalidate_access_token)

    # Request tokens: single use, dead after 300 s.
    k2 = new_kite(api_key)
    rt = login(k2)
    k2.generate_session(rt, api_secret=api_secret)
    expect_error("reused request token", ex.TokenException, TOKEN_INVALID, 403,
                 lambda: k2.generate_session(rt, api_secret=api_secret))
    rt = login(k2)
    set_clock(301)
    expect_error("expired request token (301 s)", ex.TokenException, TOKEN_INVALID, 403,
                 lambda: k2.generate_session(rt, api_secret=api_secret))
    set_clock(0)
    expect_error("unknown request token", ex.TokenException, TOKEN_INVALID, 403,
                 lambda: k2.generate_session("x" * 32, api_secret=api_secret))
    rt = login(k2)
    expect_error("wrong checksum", ex.TokenException, BAD_CHECKSUM, 403,
                 lambda: k2.generate_session(rt, api_secret="not-the-secret"))
    expect_error("token burnt by a wrong checksum", ex.TokenException, TOKEN_INVALID, 403,
                 lambda: k2.generate_session(rt, api_secret=api_secret))
    expect_error("unknown api_key", ex.TokenException, BAD_KEY, 403,
                 lambda: new_kite("nosuchkey0000000").generate_session(rt, api_secret=api_secret))

    # A lapsed subscription: every call 403, the login page still works.
    app = control("apps", {"client_id": BANNER["client_id"],
                           "redirect_url": "http://127.0.0.1:5999/cb", "plan": "connect"})
    k3 = new_kite(app["api_key"])
    k3.generate_session(login(k3), api_secret=app["api_secret"])
    control(f"apps/{app['api_key']}/subscription", {"active": False})
    expect_error("lapsed subscription: profile", ex.TokenException, BAD_KEY, 403, k3.profile)
    rt = login(k3)
    check("lapsed subscription: login page still redirects", bool(rt))
    expect_error("lapsed subscription: generate_session", ex.TokenException, BAD_KEY, 403,
                 lambda: k3.generate_session(rt, api_secret=app["api_secret"]))
    control(f"apps/{app['api_key']}/subscription", {"active": True})
    check("renewed subscription: profile works", k3.profile()["user_id"] == BANNER["client_id"])

    # Time travel: the token dies at the first 06:00 IST after the login.
    k4 = new_kite(api_key)
    hook4 = []
    k4.set_session_expiry_hook(lambda: hook4.append(1))
    data = k4.generate_session(login(k4), api_secret=api_secret)
    left = (next_six_ist(data["login_time"]) - data["login_time"]).total_seconds()
    check("expiry within a day", 0 < left <= 86400, left)
    set_clock(left - 60)
    check("alive a minute before 06:00 IST", k4.profile()["user_id"] == BANNER["client_id"])
    set_clock(left + 1)
    expect_error("dead after 06:00 IST", ex.TokenException, BAD_KEY, 403, k4.profile)
    check("expiry hook fired after time travel", hook4 == [1], hook4)
    k5 = new_kite(api_key)
    data5 = k5.generate_session(login(k5), api_secret=api_secret)
    check("a new login after 06:00 works", k5.profile()["user_id"] == BANNER["client_id"])
    check("login_time follows the sandbox clock", data5["login_time"] >= next_six_ist(data["login_time"]),
          data5["login_time"])
    set_clock(0)

    # A regenerated secret: live tokens survive, the old secret fails the checksum.
    k6 = new_kite(api_key)
    k6.generate_session(login(k6), api_secret=api_secret)
    new_secret = control(f"apps/{api_key}/regenerate")["api_secret"]
    check("new secret differs", new_secret != api_secret)
    check("token survives a regenerated secret", k6.profile()["user_id"] == BANNER["client_id"])
    k7 = new_kite(api_key)
    rt = login(k7)
    expect_error("old secret after regenerate", ex.TokenException, BAD_CHECKSUM, 403,
                 lambda: k7.generate_session(rt, api_secret=api_secret))
    k7.generate_session(login(k7), api_secret=new_secret)
    check("new secret works", k7.profile()["user_id"] == BANNER["client_id"])

    # Injected faults: each status maps to the SDK's exception class.
    for status, cls, message in [
        (503, ex.NetworkException, "Service unavailable (injected fault)."),
        (429, ex.NetworkException, "Too many requests"),
        (502, ex.DataException, "Bad gateway (injected fault)."),
        (500, ex.GeneralException, "Something went wrong (injected fault)."),
        (400, ex.InputException, "Invalid input (injected fault)."),
        (403, ex.TokenException, BAD_KEY),
    ]:
        control("faults", {"path": "/user/profile", "status": status, "count": 1})
        expect_error(f"fault {status}", cls, message, status, k7.profile)
    check("faults are used up", k7.profile()["user_id"] == BANNER["client_id"])
    control("faults", {"path": "/user/margins", "body": "<html>proxy</html>", "status": 502, "count": 1})
    try:
        k7.margins()
        check("raw body fault", False, "no exception")
    except ex.DataException as e:
        check("raw body fault: DataException for a non-JSON answer", "Unknown Content-Type" in str(e), str(e))
    control("faults", {"path": "/user/profile", "delay_ms": 800, "count": 1})
    t0 = time.monotonic()
    k7.profile()
    check("delay fault", time.monotonic() - t0 >= 0.8)
    control("faults", {"path": "/user/profile", "reset": True, "count": 1})
    try:
        k7.profile()
        check("reset fault", False, "no exception")
    except requests.exceptions.ConnectionError:
        check("reset fault: ConnectionError", True)

    # The remaining error classes with their exact messages.
    expect_error("unknown margins segment", ex.InputException,
                 "Invalid segment. Valid segments are `equity` and `commodity`.", 400,
                 lambda: k7.margins("stocks"))
    k7._routes["sandbox.nowhere"] = "/no/such/route"
    expect_error("unknown route", ex.GeneralException, "Route not found", 404,
                 lambda: k7._get("sandbox.nowhere"))
    expect_error("missing field", ex.InputException, "Missing or empty `checksum`.", 400,
                 lambda: k7._post("api.token", params={"api_key": api_key, "request_token": "x"}))

    orders_checks(api_key, k7.access_token)
    family_checks()

    # Market data follows the plan: Personal is refused, Connect gets quotes.
    expect_error("quote on a Personal app", ex.PermissionException,
                 "Insufficient permission for that call.", 403, lambda: k7.quote("NSE:INFY"))
    connect = control("apps", {"client_id": BANNER["client_id"],
                               "redirect_url": "http://127.0.0.1:5998/cb", "plan": "connect"})
    k8 = new_kite(connect["api_key"])
    k8.generate_session(login(k8), api_secret=connect["api_secret"])
    quotes = k8.quote("NSE:INFY", "NSE:TCS")
    check("quote on a Connect app", set(quotes) == {"NSE:INFY", "NSE:TCS"}
          and quotes["NSE:INFY"]["last_price"] > 0 and len(quotes["NSE:TCS"]["depth"]["buy"]) == 5,
          quotes)

    print(f"\n{passed} checks passed, {len(failed)} failed")
    if failed:
        print("failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001 - any crash is a failure with its traceback
        traceback.print_exc()
        print(f"\n{passed} checks passed before the crash, {len(failed)} failed")
        sys.exit(1)
