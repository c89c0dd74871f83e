"""Every link into the docs lands: the alert rules' runbook_url (and any repository link in
the rules, their Kubernetes copy, their unit tests and the dashboards) names a file of the
repository and a heading in it; README.md and docs/*.md link only to files that exist and to
headings that exist. GitHub shows a broken anchor as the top of the page, silently, so an
on-call engineer following an alert would land on the wrong text without this check."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.support.markdown import BLOB_URL, anchors, headings, is_external, links, slug

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# The files that carry links for people reading an alert or a panel.
LINKING = [
    *sorted((REPO / "deploy" / "prometheus").glob("*.rules.yml")),
    *sorted((REPO / "deploy" / "prometheus" / "tests").glob("*.yml")),
    *sorted((REPO / "deploy" / "kubernetes" / "monitoring").glob("*.yaml")),
    *sorted((REPO / "grafana" / "dashboards").glob("*.json")),
]
_REPO_LINK = re.compile(rf"{re.escape(BLOB_URL)}/([^\s\"'#)]+)(?:#([\w-]+))?")
_DOCS_MENTION = re.compile(r"(?<![\w/.-])docs/[\w.-]+\.md\b")


def check_target(path: Path, anchor: str | None, where: str) -> None:
    """The file exists inside the repository, and the anchor is one of its headings."""
    assert path.resolve().is_relative_to(REPO), f"{where}: {path} is outside the repository"
    assert path.exists(), f"{where}: {path.relative_to(REPO)} does not exist"
    if anchor:
        assert path.suffix == ".md", f"{where}: an anchor into {path.name}, not Markdown"
        found = anchors(path.read_text(encoding="utf-8"))
        assert anchor in found, f"{where}: no heading #{anchor} in {path.relative_to(REPO)}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_doc_links_resolve(doc: Path) -> None:
    for target in links(doc.read_text(encoding="utf-8")):
        if is_external(target):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / unquote(file)) if file else doc
        check_target(path, anchor or None, f"{doc.relative_to(REPO)} -> {target}")


@pytest.mark.parametrize("source", LINKING, ids=lambda p: str(p.relative_to(REPO)))
def test_repository_links_resolve(source: Path) -> None:
    text = source.read_text(encoding="utf-8")
    for match in _REPO_LINK.finditer(text):
        path, anchor = match.groups()
        check_target(REPO / path, anchor, f"{source.relative_to(REPO)}: {match.group(0)}")
    for mention in _DOCS_MENTION.findall(text):
        check_target(REPO / mention, None, f"{source.relative_to(REPO)}: {mention}")


def test_every_alert_links_to_its_runbook() -> None:
    """Not vacuous: the rules carry one repository link per alert rule, each to a runbook."""
    rules = (REPO / "deploy" / "prometheus" / "citrix-cloud-exporter.rules.yml").read_text()
    urls = re.findall(r"runbook_url:\s*(\S+)", rules)
    assert urls and len(urls) == rules.count("- alert:")
    assert all(_REPO_LINK.fullmatch(url) for url in urls), urls


def test_docs_link_to_each_other() -> None:
    """Not vacuous: the README links into docs/, the docs link back and within."""
    readme = links(DOCS[0].read_text(encoding="utf-8"))
    assert any(target.startswith("docs/") for target in readme)
    assert any(target.startswith("#") for doc in DOCS for target in links(doc.read_text()))


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("CitrixLicensesOverage", "citrixlicensesoverage"),
        (
            'Licensing (`collector="licensing"`), labels `customer_id, product, edition`',
            "licensing-collectorlicensing-labels-customer_id-product-edition",
        ),
        (
            "Observed licensing APIs: partners, License Servers",
            "observed-licensing-apis-partners-license-servers",
        ),
        ("Status — unknown", "status--unknown"),
        ("See [the runbooks](docs/runbooks.md)", "see-the-runbooks"),
        ("Survivors (63), each with why it is left", "survivors-63-each-with-why-it-is-left"),
    ],
)  # fmt: skip
def test_anchors_as_github_makes_them(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_repeated_headings_and_code_blocks() -> None:
    text = "# Title\n\n## Usage\n\n```sh\n# not a heading\n```\n\n## Usage\n"
    assert headings(text) == ["Title", "Usage", "Usage"]
    assert anchors(text) == {"title", "usage", "usage-1"}
    assert links("[a](x.md) `[b](y.md)`\n```\n[c](z.md)\n```\n[d]: w.md\n") == ["w.md", "x.md"]
