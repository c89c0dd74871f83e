"""The snapshot store: what /metrics serves after publishes, failures, drops and expiry.

Every test reads the store both ways it is read: as /metrics does (the results' pre-rendered
text, joined) and as `--once` does (`collect()`, rendered by prometheus_client), which must
agree, with a clock the test moves by hand, so the max_staleness boundary is exact.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.exposition.blocks import join
from exporter.snapshot import SnapshotStore
from tests.support.helpers import Clock, samples

ACME = ("acme", "licensing")
GLOBEX = ("globex", "licensing")


def gauge(customer_id: str, value: float, name: str = "citrix_x", help_text: str = "X.") -> Metric:
    family = GaugeMetricFamily(name, help_text, labels=["customer_id"])
    family.add_metric([customer_id], value)
    return family


def served(store: SnapshotStore) -> dict[str, float]:
    """{customer_id: value} of citrix_x as a scrape renders it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(store)
    collected = generate_latest(registry).decode()
    joined = join(rendered.text for rendered in store.rendered()).decode()
    assert samples(joined) == samples(collected)
    return {
        dict(labels)["customer_id"]: v
        for (name, labels), v in samples(joined).items()
        if name == "citrix_x"
    }


def test_a_failing_collector_is_served_until_exactly_max_staleness_after_its_last_success() -> None:
    clock = Clock(1000.0)
    store = SnapshotStore(300, clock)
    store.publish(ACME, [gauge("acme", 1)])  # at the clock: 1000
    store.publish(GLOBEX, [gauge("globex", 2)], at=1100.0)
    clock.now = 1050.0
    store.mark_failed(ACME)
    assert served(store) == {"acme": 1, "globex": 2}
    clock.now = 1300.0  # exactly max_staleness after acme's success: still served
    store.mark_failed(ACME)  # a second failure does not restart the age
    assert served(store) == {"acme": 1, "globex": 2}
    clock.now = 1300.5  # past it: gone, and the scrape sees it without a new publish
    assert served(store) == {"globex": 2}


def test_a_result_ages_from_the_time_it_was_published_at() -> None:
    clock = Clock(1000.0)
    store = SnapshotStore(60, clock)
    store.publish(ACME, [gauge("acme", 1)], at=900.0)  # polled a while before it was stored
    store.mark_failed(ACME)  # 100 s after its success: stale
    assert served(store) == {}


def test_only_failing_collectors_expire() -> None:
    clock = Clock(0.0)
    store = SnapshotStore(60, clock)
    store.publish(ACME, [gauge("acme", 1)], at=0.0)
    store.publish(GLOBEX, [gauge("globex", 2)], at=0.0)
    assert served(store) == {"acme": 1, "globex": 2}
    store.mark_failed(GLOBEX)
    clock.now = 61.0  # both older than max_staleness; only the failing one goes
    assert served(store) == {"acme": 1}
    # mark_failed of a key without values still expires the others.
    clock.now = 0.0
    store.publish(GLOBEX, [gauge("globex", 2)], at=0.0)
    store.mark_failed(GLOBEX)
    assert served(store) == {"acme": 1, "globex": 2}
    clock.now = 100.0
    store.mark_failed(("initech", "monitor"))
    assert served(store) == {"acme": 1}


def test_a_success_after_failures_makes_the_values_fresh_again() -> None:
    clock = Clock(0.0)
    store = SnapshotStore(60, clock)
    store.publish(ACME, [gauge("acme", 1)], at=0.0)
    store.mark_failed(ACME)
    clock.now = 50.0
    store.publish(ACME, [gauge("acme", 3)])  # at 50, not failing any more
    clock.now = 200.0  # old, but not failing: kept
    assert served(store) == {"acme": 3}
    store.mark_failed(ACME)  # failing since its success at 50: now 150 s old
    assert served(store) == {}


def test_drop_forgets_at_once_and_only_that_key() -> None:
    store = SnapshotStore(3600, Clock(1000.0))
    store.publish(ACME, [gauge("acme", 1)])
    store.publish(GLOBEX, [gauge("globex", 2)])
    assert served(store) == {"acme": 1, "globex": 2}  # merged and cached
    store.drop(ACME)
    assert served(store) == {"globex": 2}
    store.drop(ACME)  # dropping what is not there is harmless
    assert served(store) == {"globex": 2}


def test_the_merge_follows_publishes_between_scrapes() -> None:
    store = SnapshotStore(3600, Clock(1000.0))
    store.publish(GLOBEX, [gauge("globex", 2)])
    assert served(store) == {"globex": 2}
    store.publish(ACME, [gauge("acme", 1)])
    store.publish(GLOBEX, [gauge("globex", 5)])
    assert served(store) == {"acme": 1, "globex": 5}


def test_collect_merges_in_key_order_under_the_first_help() -> None:
    store = SnapshotStore(3600, Clock(1000.0))
    # Published out of order; the merge orders by (customer_id, collector).
    store.publish(GLOBEX, [gauge("globex", 2, help_text="From globex.")])
    store.publish(("acme", "monitor"), [gauge("acme-monitor", 4, help_text="From monitor.")])
    store.publish(ACME, [gauge("acme", 1, help_text="From acme.")])
    families = list(store.collect())
    assert [(f.name, f.documentation) for f in families] == [("citrix_x", "From acme.")]
    assert [s.labels["customer_id"] for s in families[0].samples] == [
        "acme",
        "acme-monitor",
        "globex",
    ]


def test_an_empty_store_serves_nothing() -> None:
    store = SnapshotStore(3600)
    assert list(store.collect()) == []
    store.publish(ACME, [gauge("acme", 1)])  # stamped with the real clock by default
    store.mark_failed(ACME)  # just now: far from 3600 s stale
    assert served(store) == {"acme": 1}


def test_collect_gives_one_family_per_name_with_its_type_and_unit() -> None:
    """The store keeps text only; collect parses it back: names, types, HELP, units, values."""
    store = SnapshotStore(3600, Clock(1000.0))
    counter = CounterMetricFamily("citrix_c", "A counter.", labels=["customer_id"])
    counter.add_metric(["acme"], 7)
    timed = GaugeMetricFamily("citrix_t_seconds", "T.", unit="seconds", labels=["customer_id"])
    timed.add_metric(["acme"], 3)
    store.publish(ACME, [gauge("acme", 1, help_text="First."), counter, timed])
    store.publish(GLOBEX, [gauge("globex", 2, help_text="Second.")])
    merged = list(store.collect())
    assert [(f.name, f.type, f.documentation, f.unit) for f in merged] == [
        ("citrix_x", "gauge", "First.", ""),
        ("citrix_c", "counter", "A counter.", ""),
        ("citrix_t_seconds", "gauge", "T.", "seconds"),
    ]
    assert [(s.labels["customer_id"], s.value) for s in merged[0].samples] == [
        ("acme", 1),
        ("globex", 2),
    ]
    assert [(s.name, s.value) for s in merged[1].samples] == [("citrix_c_total", 7)]


def test_the_version_changes_only_when_what_is_served_changes() -> None:
    clock = Clock(0.0)
    store = SnapshotStore(60, clock)
    versions = [store.version]
    store.publish(ACME, [gauge("acme", 1)])
    versions.append(store.version)
    store.mark_failed(ACME)  # still served: same version
    store.drop(GLOBEX)  # nothing to drop: same version
    assert store.version == versions[-1]
    clock.now = 61.0
    store.expire()  # ACME's values go
    versions.append(store.version)
    store.expire()
    assert store.version == versions[-1]
    assert len(set(versions)) == 3
