"""The pre-rendered exposition says exactly what prometheus_client says over one registry.

Hypothesis draws families of every kind the exporter could publish (counters, gauges,
histograms, info; label values with quotes, backslashes, newlines and non-ASCII; NaN and
infinities), scatters each family's series over several results (several customers), renders
every result on its own and joins them (`exposition.blocks`), and compares the parsed document
with `generate_latest` of one registry holding each family whole: same families, same HELP,
TYPE and UNIT, same samples, for text 0.0.4 and OpenMetrics 1.0.0. The OpenMetrics parser
also rejects a family that appears twice or a document without `# EOF`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.registry import Collector

from exporter.exposition.blocks import EOF_LINE, Format, join, render

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LABELS = ["customer_id", "name"]
KINDS = ("counter", "gauge", "histogram", "info")
NASTY = st.text(
    alphabet=st.sampled_from(['"', "\\", "\n", "é", "☃", "𝄞", "a", "Z", "0", " ", "{", "}", "="]),
    max_size=8,
)
VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf])
)
HELP = st.text(alphabet=st.sampled_from(["a", " ", "\\", "\n", '"', "é"]), max_size=12)


@dataclass
class Spec:
    """One family: its kind, name, HELP and unit, and its series (label values, payload)."""

    kind: str
    name: str
    help_text: str
    unit: str
    series: list[tuple[list[str], Any]]


def payload(kind: str) -> st.SearchStrategy[Any]:
    if kind == "counter":  # OpenMetrics counters are never negative, never NaN
        return st.one_of(st.floats(min_value=0), st.just(math.inf))
    if kind == "gauge":
        return VALUE
    if kind == "info":
        return st.dictionaries(st.sampled_from(["version", "edition"]), NASTY, max_size=2)
    counts = st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=4)
    return st.tuples(counts, st.floats(min_value=0, max_value=1e9))


@st.composite
def specs(draw: st.DrawFn) -> list[Spec]:
    families = []
    for index in range(draw(st.integers(min_value=1, max_value=6))):
        kind = draw(st.sampled_from(KINDS))
        unit = "seconds" if kind in ("gauge", "histogram") and draw(st.booleans()) else ""
        name = f"citrix_f{index}" + (f"_{unit}" if unit else "")
        keys = draw(st.lists(st.tuples(NASTY, NASTY), max_size=5, unique=True))
        series = [(list(key), draw(payload(kind))) for key in keys]
        families.append(Spec(kind, name, draw(HELP), unit, series))
    return families


def build(spec: Spec, series: Iterable[tuple[list[str], Any]]) -> Metric:
    """A prometheus_client family of `spec`'s kind holding `series`."""
    family: Any
    if spec.kind == "counter":
        family = CounterMetricFamily(spec.name, spec.help_text, labels=LABELS)
    elif spec.kind == "gauge":
        family = GaugeMetricFamily(spec.name, spec.help_text, labels=LABELS, unit=spec.unit)
    elif spec.kind == "info":
        family = InfoMetricFamily(spec.name, spec.help_text, labels=LABELS)
    else:
        family = HistogramMetricFamily(spec.name, spec.help_text, labels=LABELS, unit=spec.unit)
    for labels, data in series:
        if spec.kind == "histogram":
            counts, total = data
            bounds = [str(0.5 * (i + 1)) for i in range(len(counts) - 1)] + ["+Inf"]
            cumulative = [float(sum(counts[: i + 1])) for i in range(len(counts))]
            family.add_metric(labels, list(zip(bounds, cumulative, strict=True)), total)
        else:
            family.add_metric(labels, data)
    return family


class Families(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


@st.composite
def scattered(draw: st.DrawFn) -> tuple[list[Spec], list[list[Metric]]]:
    """Specs, and the results their series are scattered over (a family may be in several
    results, in none of them with samples, or, empty, in any)."""
    families = draw(specs())
    count = draw(st.integers(min_value=1, max_value=4))
    results: list[list[Metric]] = [[] for _ in range(count)]
    for spec in families:
        where = [draw(st.integers(0, count - 1)) for _ in spec.series]
        for index, result in enumerate(results):
            mine = [s for s, w in zip(spec.series, where, strict=True) if w == index]
            if mine or draw(st.booleans()):
                result.append(build(spec, mine))
    if not any(results):  # every spec appears at least once, as in one registry
        results[0].extend(build(spec, []) for spec in families)
    for spec in families:
        if not any(family.name == spec.name for result in results for family in result):
            results[0].append(build(spec, []))
    return families, results


def parsed(document: str, parser: Callable[[str], Iterable[Metric]]) -> list[Any]:
    """Families as comparable values: samples sorted, NaN made equal to itself."""
    out = []
    for family in parser(document):
        rows = sorted(
            (s.name, sorted(s.labels.items()), repr(s.value), s.timestamp) for s in family.samples
        )
        out.append((family.name, family.type, family.documentation, family.unit, rows))
    return sorted(out, key=lambda row: (row[0], row[1]))


@SETTINGS
@given(scattered())
def test_joined_results_parse_as_generate_latest_of_one_registry(
    case: tuple[list[Spec], list[list[Metric]]],
) -> None:
    families, results = case
    whole = Families([build(spec, spec.series) for spec in families])
    rendered = [render(result) for result in results]

    text = join(r.blocks(Format.TEXT) for r in rendered).decode()
    expected_text = generate_latest(whole).decode()
    assert parsed(text, parse_text) == parsed(expected_text, parse_text)
    assert text.count("# TYPE ") == expected_text.count("# TYPE ")  # each family once

    openmetrics = (join(r.blocks(Format.OPENMETRICS) for r in rendered) + EOF_LINE).decode()
    expected_om = generate_openmetrics(whole).decode()  # type: ignore[no-untyped-call]
    assert parsed(openmetrics, parse_openmetrics) == parsed(expected_om, parse_openmetrics)
