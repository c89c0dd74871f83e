#!/usr/bin/env bash
# Mutation testing (issue #10): how many deliberately broken copies of the code the tests catch.
#
#   tools/mutation.sh                    # every module of [tool.mutmut] only_mutate (nightly)
#   tools/mutation.sh sharding poller    # only these modules (names as printed below)
#   MUTATION_TESTS="tests/unit/test_sharding.py" tools/mutation.sh sharding   # narrower test run
#
# mutmut (pip install 'mutmut==3.8.1') makes small changes to the code (a `<` for a `<=`, a
# constant plus one, a dropped call), runs the tests that reach the changed function, and counts
# the change as killed if a test fails. A surviving mutant is a bug the tests would let through.
# The run happens on a scratch copy of the working tree ($MUTATION_DIR, default .mutation/), so
# the repository is never touched; inspect a survivor with `cd .mutation && mutmut show NAME`.
#
# Prints one line per module: killed / checked, the score, and the survivors' names. The whole
# scope takes hours on 2 cores: run it nightly, not per commit. Environment:
#   MUTATION_DIR    scratch directory (default: .mutation in the repository; deleted first)
#   MUTATION_JOBS   parallel mutants (default 2)
#   MUTATION_TESTS  pytest arguments selecting the tests (default: pyproject's fast suite)
# Exit status: 0 when the run completed (the score is a report, not a gate), 2 on usage errors.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${MUTATION_DIR:-$REPO/.mutation}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c "import mutmut" 2>/dev/null; then
    echo "mutmut is not installed: pip install 'mutmut==3.8.1'" >&2
    exit 2
fi

# A scratch copy of the working tree: tracked and new files, nothing ignored.
rm -rf "$WORK"
mkdir -p "$WORK"
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | (cd "$REPO" && tar --null --files-from=- -cf - 2>/dev/null) | tar -xf - -C "$WORK"

# Narrow [tool.mutmut] to the modules asked for (and the tests, if MUTATION_TESTS is set).
"$PYTHON" - "$WORK/pyproject.toml" "$@" <<'PY'
import json
import os
import re
import sys
import tomllib
from pathlib import Path

path, wanted = Path(sys.argv[1]), sys.argv[2:]
config = tomllib.loads(path.read_text())["tool"]["mutmut"]


def module(pattern: str) -> str:
    """exporter/upstream/* -> upstream, exporter/collector/licensing.py -> licensing."""
    return Path(pattern.removesuffix("/*")).name.removesuffix(".py")


known = {module(p): p for p in config["only_mutate"]}
unknown = [name for name in wanted if name not in known]
if unknown:
    sys.exit(f"unknown module(s) {unknown}; choose from: {' '.join(known)}")
if wanted:
    config["only_mutate"] = [known[name] for name in wanted]
if os.environ.get("MUTATION_TESTS"):
    config["pytest_add_cli_args_test_selection"] = os.environ["MUTATION_TESTS"].split()
text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", path.read_text())
section = "".join(f"{key} = {json.dumps(value)}\n" for key, value in config.items())
path.write_text(text.rstrip() + "\n\n[tool.mutmut]\n" + section)
PY

cd "$WORK"
start=$SECONDS
"$PYTHON" -m mutmut run --max-children "${MUTATION_JOBS:-2}" >mutmut-run.log 2>&1 || {
    tail -30 mutmut-run.log >&2
    echo "mutmut run failed; full log: $WORK/mutmut-run.log" >&2
    exit 1
}
"$PYTHON" -m mutmut results --all true >mutmut-results.txt 2>&1

# Score per module from "    exporter.sharding.x_shard_of__mutmut_3: killed" lines.
"$PYTHON" - mutmut-results.txt "$((SECONDS - start))" <<'PY'
import re
import sys
from collections import defaultdict

results = defaultdict(lambda: defaultdict(list))
for line in open(sys.argv[1]):
    match = re.match(r"\s*(exporter\.[\w.]+?)\.(?:x_|xǁ)\S*__mutmut_\d+: (.+)$", line)
    if match:
        name = line.split(":")[0].strip()
        module = match.group(1).removeprefix("exporter.")
        module = "upstream" if module.startswith("upstream") else module.split(".")[-1]
        results[module][match.group(2).strip()].append(name)
print(f"mutation score per module ({sys.argv[2]} s):")
for module, statuses in sorted(results.items()):
    killed = len(statuses.get("killed", [])) + len(statuses.get("timeout", []))
    skipped = sum(len(statuses.get(s, [])) for s in ("skipped", "not checked"))
    checked = sum(len(v) for v in statuses.values()) - skipped
    score = 100 * killed / checked if checked else 0.0
    other = {s: len(v) for s, v in statuses.items() if s not in ("killed", "timeout")}
    print(f"  {module:16} {killed:4}/{checked:<4} {score:5.1f}%  {other or ''}")
    for name in statuses.get("survived", []):
        print(f"      survived: {name}")
PY
