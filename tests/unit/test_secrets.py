"""No secret leaves the process, even when Citrix Cloud repeats our requests back to us.

A careless upstream (`HostileUpstream`) echoes what we sent in its error answers: the token
endpoint repeats the posted form, client secret included, as its `error_description`; the APIs
repeat the `Authorization: CwsAuth Bearer=<token>` header of a customer whose token is valid.
Neither the client secrets nor any issued token may then appear in any outward channel: the log
as the real handler writes it (logfmt and JSON), the landing page, /metrics, and `--once`'s
output and log. A well-behaved customer on the same server keeps its values.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from aiohttp import web

from exporter import redact
from exporter.log import get_logger
from exporter.redact import REDACTED, REDACTOR, Redactor
from exporter.web import create_web_app
from tests.support.helpers import make_config, value
from tests.support.hostile import CURRENT_SUFFIX, TOKEN_SUFFIX, HostileUpstream
from tests.support.logcapture import real_log_output

FORMATS = ["logfmt", "json"]
TOKEN_ECHOES = {"tok401": 401, "tok400": 400}
API_ECHOES = {"api400": 400, "api403": 403, "api500": 500, "api429": 429}
GOOD = "good1"
FRAGMENT = 12  # this many characters in a row of a secret's random part count as a leak


def new_secret() -> str:
    """A client secret with characters that form encoding changes (`/+=!`)."""
    return f"{secrets.token_urlsafe(18)}/+=!"


def echo_form(status: int) -> web.Response:
    """The token endpoint's careless refusal: the raw posted form as the error description."""

    async def handler(request: web.Request) -> web.Response:
        form = await request.text()
        error = "invalid_client" if status == 401 else "invalid_request"
        return web.json_response({"error": error, "error_description": form}, status=status)

    return handler  # type: ignore[return-value]


def echo_authorization(status: int) -> web.Response:
    """An API refusal that repeats the Authorization header, a different body shape per status."""

    def handler(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if status == 400:
            body = {
                "error": "bad_request",
                "detail": f"cannot parse; headers: Authorization: {auth}",
            }
            return web.json_response(body, status=status)
        if status == 403:
            inner = json.dumps(
                {"Message": f"Forbidden for {auth}", "Headers": dict(request.headers)}
            )
            return web.json_response({"error_description": inner}, status=status)
        if status == 429:
            body = {"detail": f"Too many requests from {auth}", "echo": dict(request.headers)}
            return web.json_response(body, status=status)
        return web.Response(status=status, text=f"<pre>Unhandled: Authorization: {auth}</pre>")

    return handler  # type: ignore[return-value]


def hostile_upstream() -> tuple[HostileUpstream, dict[str, str]]:
    """The careless upstream and a fresh client secret per customer (none reused across tests)."""
    hostile = HostileUpstream()
    for customer_id, status in TOKEN_ECHOES.items():
        hostile.on(customer_id, TOKEN_SUFFIX, echo_form(status))
    for customer_id, status in API_ECHOES.items():
        hostile.on(customer_id, CURRENT_SUFFIX, echo_authorization(status))
    customer_ids = [*TOKEN_ECHOES, *API_ECHOES, GOOD]
    return hostile, {customer_id: new_secret() for customer_id in customer_ids}


def customers(client_secrets: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"customer_id": cid, "client_id": f"{cid}-client", "client_secret": secret}
        for cid, secret in client_secrets.items()
    ]


def fragments(value: str) -> set[str]:
    """Every FRAGMENT-long piece of `value`'s random part (a token's serial prefix is not)."""
    match = re.fullmatch(r"hostile-token-\d+-(.+)", value)
    core = match.group(1) if match else value
    return {core[i : i + FRAGMENT] for i in range(len(core) - FRAGMENT + 1)}


def leaks(text: str, client_secrets: dict[str, str], tokens: list[str]) -> list[str]:
    """What of the secrets and tokens `text` shows: whole, form- or URL-encoded, or in part."""
    found = []
    for value_ in [*client_secrets.values(), *tokens]:
        for form in {value_, quote_plus(value_), quote(value_, safe="")}:
            if form in text:
                found.append(form)
        found.extend(piece for piece in fragments(value_) if piece in text)
    return found


def assert_echoed(hostile: HostileUpstream, client_secrets: dict[str, str]) -> None:
    """The hostile answers were given: otherwise the test proves nothing."""
    for customer_id in TOKEN_ECHOES:
        sent = [s.body for s in hostile.requests if s.customer_id == customer_id]
        assert sent and quote_plus(client_secrets[customer_id]).encode() in sent[0]
    for customer_id in API_ECHOES:
        assert hostile.count(CURRENT_SUFFIX, customer_id) >= 1
    assert len(hostile.issued_tokens) >= len(API_ECHOES) + 1


@pytest.mark.parametrize("fmt", FORMATS)
async def test_no_secret_in_the_log_landing_page_or_metrics(
    fmt, aiohttp_server, aiohttp_client, exporter_factory
):
    hostile, client_secrets = hostile_upstream()
    server = await aiohttp_server(hostile.app())
    config = make_config(
        str(server.make_url("")).rstrip("/"), customers(client_secrets), retry={"attempts": 1}
    )
    with real_log_output(fmt) as (stream, scrubber):
        scrubber.add(config.secrets())  # as the CLI does when it loads the config
        exporter = await exporter_factory(config)
        assert not await exporter.poller.run_all_once()
        assert not await exporter.poller.run_all_once()  # the token back-off message too
        client = await aiohttp_client(create_web_app(exporter))
        page = await (await client.get("/")).text()
        metrics = await (await client.get("/metrics")).text()
        logged = stream.getvalue()

    assert_echoed(hostile, client_secrets)
    for channel, text in {"log": logged, "landing page": page, "/metrics": metrics}.items():
        assert not leaks(text, client_secrets, hostile.issued_tokens), channel
    for customer_id, status in API_ECHOES.items():  # their failures were shown, secrets aside
        assert f"HTTP {status}" in page and customer_id in logged
    assert value(metrics, "citrix_licenses_available", customer_id=GOOD) == 25
    assert value(metrics, "citrix_up", customer_id=GOOD, collector="licensing") == 1
    if fmt == "json":
        for line in logged.splitlines():
            json.loads(line)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_no_secret_in_once_output_or_its_log(fmt, tmp_path: Path, aiohttp_server):
    hostile, client_secrets = hostile_upstream()
    server = await aiohttp_server(hostile.app())
    base_url = str(server.make_url("")).rstrip("/")
    config = {
        "poll": {"timeout": 5, "retry": {"attempts": 1}},
        "customers": [
            {**c, "api_url": base_url, "collectors": {"monitor": {"enabled": False}}}
            for c in customers(client_secrets)
        ],
    }
    path = tmp_path / "config.yml"
    path.write_text(json.dumps(config))  # JSON is YAML
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "--once", "--config.file", str(path),
        "--log.format", fmt, "--log.level", "debug",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    stdout, stderr = out.decode(), err.decode()

    assert proc.returncode == 1, stderr  # some customers failed
    assert_echoed(hostile, client_secrets)
    assert not leaks(stdout, client_secrets, hostile.issued_tokens)
    assert not leaks(stderr, client_secrets, hostile.issued_tokens)
    assert value(stdout, "citrix_licenses_available", customer_id=GOOD) == 25


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_real_handler_scrubs_message_args_extra_and_exception_text(fmt):
    secret, token = new_secret(), f"hostile-token-0-{secrets.token_urlsafe(24)}"
    unregistered_secret, unregistered_token = new_secret(), secrets.token_urlsafe(24)
    with real_log_output(fmt) as (stream, scrubber):
        scrubber.add([secret])
        REDACTOR.add_token(token)
        log = get_logger("test")
        log.warning(f"in the message: {secret} {token}")
        log.warning("in the args: %s %r", secret, {"token": token})
        log.warning(
            "in extra fields",
            extra={
                "body": f"echo {secret}",
                "headers": {"Authorization": f"CwsAuth Bearer={token}"},
                "error": ValueError(secret),
                "count": 3,
            },
        )
        try:
            raise RuntimeError(f"upstream said client_secret={secret} for {token}")
        except RuntimeError:
            log.exception("in the exception text")
            sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        log.warning("arguments that do not fit: %s", secret, token)
        logging.getLogger("aiohttp.client").error("a library's message: %s", secret)
        log.warning(
            "secret shapes, unregistered: client_secret=%s Authorization: CwsAuth Bearer=%s",
            quote_plus(unregistered_secret),
            unregistered_token,
        )
    out = stream.getvalue()
    lines = out.splitlines()
    assert len(lines) >= 8, out
    assert not leaks(out, {"a": secret, "b": unregistered_secret}, [token, unregistered_token])
    assert "uncaught exception" in out and "RuntimeError" in out
    assert "count=3" in out or '"count": 3' in out  # numbers are left as they are
    if fmt == "json":
        records = {r["msg"].split(":")[0]: r for r in map(json.loads, lines)}
        assert REDACTED in records["in the message"]["msg"]
        assert REDACTED in records["in the args"]["msg"]
        extra = records["in extra fields"]
        assert all(REDACTED in extra[key] for key in ("body", "headers", "error"))
        assert extra["count"] == 3
        assert REDACTED in records["in the exception text"]["exc"]


def test_redactor_leaves_text_alone_until_it_knows_a_secret():
    redactor = Redactor()
    assert redactor.scrub("") == ""
    assert redactor.scrub("licenses: 25 of 30 in use") == "licenses: 25 of 30 in use"


def test_redactor_ignores_values_too_short_to_be_secrets():
    """Six characters is the minimum: shorter values would mangle ordinary words."""
    redactor = Redactor()
    redactor.add_secrets(["", "abcde", "abcdef"])
    redactor.add_token("")
    redactor.add_token("uvwxy")
    redactor.add_token("uvwxyz")
    assert redactor.scrub("abcde abcdef uvwxy uvwxyz") == "abcde <redacted> uvwxy <redacted>"


def test_redactor_knows_secrets_alone_tokens_alone_and_both():
    secrets_only, tokens_only = Redactor(), Redactor()
    secrets_only.add_secrets(["secret-one", "secret-two"])
    secrets_only.add_secrets(["secret-one"])  # registered again: no change
    tokens_only.add_token("token-one")
    tokens_only.add_token("token-two")
    assert secrets_only.scrub("a secret-one b secret-two c") == "a <redacted> b <redacted> c"
    assert tokens_only.scrub("a token-one b token-two c") == "a <redacted> b <redacted> c"


def test_redactor_learns_values_added_after_it_scrubbed():
    redactor = Redactor()
    assert redactor.scrub("late-secret late-token") == "late-secret late-token"
    redactor.add_secrets(["late-secret"])
    assert redactor.scrub("late-secret late-token") == "<redacted> late-token"
    redactor.add_token("late-token")
    assert redactor.scrub("late-secret late-token") == "<redacted> <redacted>"


def test_redactor_replaces_the_longest_known_value_first():
    """A secret that begins another one must not leave the longer one's tail behind."""
    redactor = Redactor()
    redactor.add_secrets(["prefix", "prefix-and-tail"])
    redactor.add_token("prefix-and-tail-and-token")
    assert redactor.scrub("x prefix-and-tail-and-token y") == "x <redacted> y"
    assert redactor.scrub("x prefix-and-tail y") == "x <redacted> y"
    assert redactor.scrub("x prefix-and y") == "x <redacted>-and y"


def test_redactor_forgets_the_oldest_token_past_its_bound(monkeypatch):
    monkeypatch.setattr(redact, "MAX_REMEMBERED_TOKENS", 3)
    redactor = Redactor()
    for name in ("token-1", "token-2", "token-3"):
        redactor.add_token(name)
    redactor.add_token("token-1")  # issued again: now the newest
    redactor.add_token("token-4")
    assert redactor.scrub("token-1 token-2 token-3 token-4") == (
        "<redacted> token-2 <redacted> <redacted>"
    )
    redactor.add_token("token-5")
    assert redactor.scrub("token-1 token-3 token-4 token-5") == (
        "<redacted> token-3 <redacted> <redacted>"
    )


def test_redactor_bound_is_generous():
    """A partner exporter issues one token per customer per hour: ~2 days for 1,000 customers."""
    assert redact.MAX_REMEMBERED_TOKENS == 50_000
    assert redact.MIN_SECRET_LENGTH == 6


JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjbGllbnQifQ.c2lnbmF0dXJl-_x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "client_id=c1&client_secret=s3cr%2Bt%3D&grant_type=client_credentials",
            "client_id=c1&client_secret=<redacted>&grant_type=client_credentials",
        ),
        (
            '{"access_token": "opaque.value", "expires_in": 3600}',
            '{"access_token": "<redacted>", "expires_in": 3600}',
        ),
        ("{'refresh_token':'r-123'}", "{'refresh_token':'<redacted>'}"),
        ("id_token = abc; next", "id_token = <redacted>; next"),
        ("password=hunter2,user=x", "password=<redacted>,user=x"),
        ('{"ClientSecret": "Zz9"}', '{"ClientSecret": "<redacted>"}'),
        (
            "Authorization: CwsAuth Bearer=abcdefghijklmnop1234",
            "Authorization: CwsAuth Bearer=<redacted>",
        ),
        ("Authorization: bearer abcdefghijklmnop", "Authorization: bearer <redacted>"),
        ("BEARER:AbCdEfGh/+~.=-_1234 rest", "BEARER:<redacted> rest"),
        ("Bearer abcdefghijklmno", "Bearer abcdefghijklmno"),  # 15 characters: no token
        (f"token {JWT} end", "token <redacted> end"),
        (f"token={JWT}", "token=<redacted>"),
        ("ordinary eyJ text without dots", "ordinary eyJ text without dots"),
    ],
)
def test_redactor_secret_shapes(text, expected):
    assert Redactor().scrub(text) == expected
    assert redact.scrub(text) == expected  # the process-wide one, as every channel calls it


def test_redactor_finds_a_token_inside_a_longer_run_and_odd_tokens_by_pattern():
    redactor = Redactor()
    redactor.add_token("tok-abcdef")
    redactor.add_token("odd token with spaces")  # outside RFC 6750's alphabet
    assert redactor.scrub("id=xxtok-abcdefyy;") == "id=xx<redacted>yy;"
    assert redactor.scrub("tok-abcdef/tok-abcdef") == "<redacted>/<redacted>"
    assert redactor.scrub("say odd token with spaces!") == "say <redacted>!"
    assert redactor.scrub("tok-abcde only") == "tok-abcde only"


def test_redactor_keeps_a_bounded_number_of_tokens_per_ending(monkeypatch):
    """Tokens sharing their last characters (a careless upstream): the oldest is forgotten."""
    monkeypatch.setattr(redact, "MAX_TOKENS_PER_ENDING", 2)
    redactor = Redactor()
    for head in ("one", "two", "six"):
        redactor.add_token(head + "-same-end")
    assert redactor.scrub("one-same-end two-same-end six-same-end") == (
        "one-same-end <redacted> <redacted>"
    )


def test_redactor_keeps_at_most_the_bound_of_odd_tokens(monkeypatch):
    monkeypatch.setattr(redact, "MAX_ODD_TOKENS", 2)
    redactor = Redactor()
    for word in ("odd one!", "odd two!", "odd six!"):
        redactor.add_token(word)
    assert redactor.scrub("odd one! odd two! odd six!") == "odd one! <redacted> <redacted>"


def test_a_forgotten_token_length_is_no_longer_searched(monkeypatch):
    monkeypatch.setattr(redact, "MAX_REMEMBERED_TOKENS", 1)
    redactor = Redactor()
    redactor.add_token("aaaaaaaa")
    redactor.add_token("bbbbbb")
    assert redactor.scrub("aaaaaaaa bbbbbb") == "aaaaaaaa <redacted>"
