"""Today's Kite Connect credentials for your bot, from the ``kite-setup`` command.

kite-setup keeps the api_key and api_secret in the OS keyring and logs you in once a day;
this module asks the command for what a bot needs and hands it over::

    import kite_setup

    kite = kite_setup.kite()  # the official KiteConnect, with today's token
    print(kite.profile()["user_name"])

It runs ``kite-setup env --format json`` (never with ``--with-secret``: the api_secret
never reaches Python) and turns the command's failures into exceptions that carry its own
``error:`` and ``hint:`` lines. Standard library only; ``kiteconnect`` is imported only by
:func:`kite`.

The command is looked for in the scripts directory of the installation this module came
from (where ``pip install kite-setup`` puts it, next to this package), then on ``PATH``
(``cargo install``, ``pipx``, ``uv tool``).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Optional, Sequence

if TYPE_CHECKING:  # only for type checkers: importing kite_setup never needs kiteconnect
    from kiteconnect import KiteConnect  # type: ignore[import-untyped, import-not-found, unused-ignore]

__all__ = [
    "Credentials",
    "KiteSetupError",
    "LoginNeeded",
    "UsageError",
    "credentials",
    "find_binary",
    "kite",
]

try:
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("kite-setup")
    except PackageNotFoundError:  # running from a source checkout
        __version__ = "0+unknown"
except ImportError:  # pragma: no cover (Python < 3.8)
    __version__ = "0+unknown"

#: Where ``kite-setup --sandbox`` looks for a running sandbox (``kite-setup sandbox``).
DEFAULT_SANDBOX_URL = "http://127.0.0.1:5010"

#: The command's exit codes (``kite-setup --help``).
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOGIN_NEEDED = 4

#: How long one run of the command may take (it reads the keyring, which may be slow to
#: answer; its own keyring timeout is 10 s a call).
_TIMEOUT_SECS = 60.0


class KiteSetupError(Exception):
    """kite-setup failed (its exit code 1), or could not be run.

    ``message`` and ``hint`` are the command's own ``error:`` and ``hint:`` lines;
    ``exit_code`` is its exit code (``None`` when it did not run).
    """

    def __init__(
        self,
        message: str,
        hint: Optional[str] = None,
        exit_code: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, hint={self.hint!r}, exit_code={self.exit_code!r})"


class LoginNeeded(KiteSetupError):
    """No usable token: run ``kite-setup login`` (the hint says with which flags).

    Raised when the command exits with 4 (no profile, no credentials, no token for today,
    token expired), and by the session-expiry hook of the client :func:`kite` returns when
    Kite rejects the token mid-run (expired at 06:00 IST, or revoked).
    """


class UsageError(KiteSetupError):
    """The arguments were wrong (the command's exit code 2), e.g. a bad profile name."""


@dataclass(frozen=True)
class Credentials:
    """What a bot needs for today: never the api_secret."""

    #: The app's api_key.
    api_key: str
    #: Today's access token (kept out of ``repr`` so it does not end up in logs).
    access_token: str = field(repr=False)
    #: When the token dies (the next 06:00 IST after the login), timezone-aware, UTC.
    expiry: datetime.datetime
    #: The Zerodha client ID the app belongs to (like ``AB1234``).
    client_id: str
    #: The API root the token is for: Kite's, or the sandbox's URL.
    api_root: str
    #: True for a sandbox profile.
    sandbox: bool

    def __repr__(self) -> str:
        return (
            f"Credentials(client_id={self.client_id!r}, api_key={_mask(self.api_key)!r}, "
            f"access_token='…', expiry={self.expiry.isoformat()!r}, "
            f"api_root={self.api_root!r}, sandbox={self.sandbox!r})"
        )


def find_binary() -> str:
    """The path of the ``kite-setup`` command this module runs.

    First the scripts directory of the installation that holds this module (``pip
    install`` puts the command there, and it is the one built with this module), then the
    ``bin`` directory next to the package (``pip install --target DIR``), then ``PATH``.
    """
    exe = "kite-setup" + (sysconfig.get_config_var("EXE") or "")
    site_dir = _real(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    candidates = []
    for scheme in sysconfig.get_scheme_names():
        try:
            paths = sysconfig.get_paths(scheme)
        except KeyError:
            continue
        libs = {_real(paths[k]) for k in ("purelib", "platlib") if k in paths}
        if site_dir in libs and "scripts" in paths:
            candidates.append(os.path.join(paths["scripts"], exe))
    candidates.append(os.path.join(site_dir, "bin", exe))
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which("kite-setup")
    if found:
        return found
    raise KiteSetupError(
        "the kite-setup command is not installed next to this module nor on PATH",
        "install it: `pip install kite-setup` (here), `pipx install kite-setup`, or "
        "`cargo install --path .` in a checkout",
    )


def credentials(
    profile: Optional[str] = None,
    sandbox: bool = False,
    sandbox_url: Optional[str] = None,
) -> Credentials:
    """Today's api_key, access token, expiry and client ID of a profile.

    ``profile`` is ``--profile`` (``None``: the command's choice, ``KITE_SETUP_PROFILE``
    or ``default``); ``sandbox`` is ``--sandbox``; ``sandbox_url`` is ``--sandbox-url``
    (and implies ``sandbox``). Raises :class:`LoginNeeded` when there is no valid token,
    :class:`UsageError` for bad arguments, :class:`KiteSetupError` for anything else.
    """
    args = _flags(profile, sandbox, sandbox_url) + ["env", "--format", "json"]
    doc = _run_json(args)
    try:
        api_key = doc["KITE_API_KEY"]
        token = doc["KITE_ACCESS_TOKEN"]
        client_id = doc["KITE_CLIENT_ID"]
        expiry = _parse_time(doc["KITE_ACCESS_TOKEN_EXPIRES_AT"])
        api_root = doc["KITE_API_ROOT"]
    except (KeyError, TypeError, ValueError) as e:
        raise KiteSetupError(
            f"`kite-setup env --format json` did not give what this module needs ({e})",
            "install matching versions of the command and the module: `pip install -U kite-setup`",
        ) from None
    return Credentials(
        api_key=api_key,
        access_token=token,
        expiry=expiry,
        client_id=client_id,
        api_root=api_root,
        sandbox=bool(sandbox or sandbox_url),
    )


def kite(
    profile: Optional[str] = None,
    sandbox: bool = False,
    sandbox_url: Optional[str] = None,
) -> KiteConnect:
    """The official ``kiteconnect.KiteConnect`` for a profile, with today's token.

    Arguments as for :func:`credentials`. For sandbox profiles ``root`` is the sandbox's
    API; with ``sandbox=True`` that is the sandbox running at 127.0.0.1:5010 (start it
    with ``kite-setup sandbox``). When Kite rejects the token later (it dies at 06:00
    IST), the client's session-expiry hook raises :class:`LoginNeeded` naming the
    ``kite-setup login`` to run.
    """
    try:
        from kiteconnect import KiteConnect
    except ImportError as e:
        raise ImportError(
            "kite_setup.kite() returns the official SDK's client: `pip install kiteconnect` "
            "(or use kite_setup.credentials())",
            name="kiteconnect",
        ) from e
    creds = credentials(profile, sandbox, sandbox_url)
    if creds.sandbox and sandbox_url is None and _same_url(creds.api_root) != DEFAULT_SANDBOX_URL:
        # The command found no sandbox at the default address and started one inside
        # itself, which ended with it: a client pointed there would reach nothing.
        raise KiteSetupError(
            f"no sandbox is running at {DEFAULT_SANDBOX_URL}, and a bot needs one that stays up",
            "start one with `kite-setup sandbox` in another terminal "
            "(or pass sandbox_url= for one running elsewhere on this machine)",
        )
    client = KiteConnect(
        api_key=creds.api_key,
        access_token=creds.access_token,
        root=_same_url(creds.api_root) if creds.sandbox else None,
    )
    login = _login_command(profile, sandbox, sandbox_url)

    def session_expired() -> NoReturn:
        raise LoginNeeded(
            "Kite rejected today's access token (it died at 06:00 IST, or was revoked)",
            f"run `{login}`, then start the bot again",
        )

    client.set_session_expiry_hook(session_expired)
    return client


def _flags(profile: Optional[str], sandbox: bool, sandbox_url: Optional[str]) -> list[str]:
    # `--name=value`: a value that starts with `-` stays a value. No `--profile` when
    # profile is None, so the command reads KITE_SETUP_PROFILE itself.
    flags = ["--no-input"]
    if profile is not None:
        flags.append(f"--profile={profile}")
    if sandbox_url is not None:
        flags.append(f"--sandbox-url={sandbox_url}")
    elif sandbox:
        flags.append("--sandbox")
    return flags


def _login_command(profile: Optional[str], sandbox: bool, sandbox_url: Optional[str]) -> str:
    """`kite-setup [--sandbox|--sandbox-url URL] [--profile NAME] login` for this profile."""
    parts = ["kite-setup"]
    if sandbox_url is not None:
        parts.append(f"--sandbox-url {sandbox_url}")
    elif sandbox:
        parts.append("--sandbox")
    name = profile if profile is not None else os.environ.get("KITE_SETUP_PROFILE") or "default"
    if name != "default":
        parts.append(f"--profile {name}")
    parts.append("login")
    return " ".join(parts)


def _run_json(args: Sequence[str]) -> dict[str, Any]:
    binary = find_binary()
    try:
        proc = subprocess.run(
            [binary, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=_TIMEOUT_SECS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise KiteSetupError(
            f"{binary} did not answer within {_TIMEOUT_SECS:.0f} s",
            "run `kite-setup doctor` to see what is slow (often a locked keyring)",
        ) from None
    except OSError as e:
        raise KiteSetupError(
            f"cannot run {binary}: {e.strerror or e}",
            "reinstall it: `pip install --force-reinstall kite-setup`",
        ) from None
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise _error(proc.returncode, stderr)
    if stderr:
        # Warnings for people (an interrupted rotation, a fallback store): pass them on.
        sys.stderr.write(stderr)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise KiteSetupError(
            "kite-setup printed something that is not a JSON object",
            "install matching versions of the command and the module: `pip install -U kite-setup`",
            proc.returncode,
        )
    return doc


def _error(code: int, stderr: str) -> KiteSetupError:
    """The exception for a failed run, with the command's `error:` and `hint:` lines."""
    message = hint = None
    for line in stderr.splitlines():
        if message is None and line.startswith("error: "):
            message = line[len("error: ") :].strip()
        elif hint is None and line.startswith("hint: "):
            hint = line[len("hint: ") :].strip()
    if message is None:
        last = [line.strip() for line in stderr.splitlines() if line.strip()]
        if code < 0:
            message = f"kite-setup was killed by signal {-code}"
        else:
            message = last[-1] if last else f"kite-setup exited with code {code}"
    kind = {EXIT_LOGIN_NEEDED: LoginNeeded, EXIT_USAGE: UsageError}.get(code, KiteSetupError)
    return kind(message, hint, code)


def _parse_time(text: str) -> datetime.datetime:
    # RFC 3339 in UTC; fromisoformat reads a `Z` only from Python 3.11 on.
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    t = datetime.datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return t.astimezone(datetime.timezone.utc)


def _same_url(url: str) -> str:
    """A root URL without its trailing slash (the SDK joins `/route` to it)."""
    return url.rstrip("/")


def _real(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _mask(value: str) -> str:
    return value[:4] + "…" if len(value) > 4 else "…"
