"""A small, dependency-free builder for Grafana dashboard JSON (schemaVersion 39, Grafana 10+).

It encodes the conventions of grafana/dashboard-linter once, so the dashboards cannot drift:
every panel and every target uses the `datasource` variable; `job`, `instance` and the other
filter variables are multi-select query variables with an All value of `.+` that refresh on
time range change; every panel has a description and a unit. `tools/dashboards.py` describes
the dashboards with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

# The uid of the Prometheus data source in grafana/provisioning/datasources/. The `datasource`
# variable defaults to it; on a Grafana without it, Grafana falls back to the default one.
PROVISIONED_DATASOURCE_UID = "citrix-cloud-prometheus"
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
TAG = "citrix-cloud-exporter"
ALL = ".+"


# -- queries -----------------------------------------------------------------------------------


class Scope:
    """Builds selectors that carry a dashboard's filter variables as `label=~"$label"`."""

    def __init__(self, *labels: str) -> None:
        self.labels = labels

    def __call__(self, metric: str, *extra: str, without: tuple[str, ...] = ()) -> str:
        """`metric{job=~"$job", ..., <extra matchers>}`; `without` drops filter labels that the
        metric does not have (e.g. `delivery_group` on a per-customer counter)."""
        matchers = [f'{label}=~"${label}"' for label in self.labels if label not in without]
        return f"{metric}{{{', '.join([*matchers, *extra])}}}"


@dataclass(frozen=True)
class Q:
    """One Prometheus query of a panel."""

    expr: str
    legend: str = "__auto"


# -- field config helpers ----------------------------------------------------------------------


def thresholds(base: str, *steps: tuple[float, str]) -> Json:
    """Absolute thresholds: `base` colour below the first step, then (value, colour) steps."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


GREEN = thresholds("green")


def by_name(name: str, **properties: Any) -> Json:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def by_regexp(pattern: str, **properties: Any) -> Json:
    return {
        "matcher": {"id": "byRegexp", "options": pattern},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def fixed_color(color: str) -> Json:
    return {"mode": "fixed", "fixedColor": color}


def value_mappings(values: dict[str, tuple[str, str]]) -> list[Json]:
    """Map raw values to (text, colour)."""
    return [
        {
            "type": "value",
            "options": {
                raw: {"text": text, "color": color, "index": index}
                for index, (raw, (text, color)) in enumerate(values.items())
            },
        }
    ]


UP_DOWN = value_mappings({"0": ("DOWN", "red"), "1": ("UP", "green")})


def nan_mapping(text: str) -> list[Json]:
    """Show NaN (a query's "no answer" for a row that exists) as `text`."""
    return [{"type": "special", "options": {"match": "nan", "result": {"text": text, "index": 0}}}]


def dashboard_link(title: str, uid: str, variable: str) -> Json:
    """A data link to dashboard `uid` with `variable` set to the clicked cell's value, keeping
    the time range and the data source."""
    return {
        "title": title,
        "url": f"/d/{uid}?var-{variable}=${{__value.raw}}&${{__url_time_range}}"
        "&${datasource:queryparam}",
    }


def relative_time(panel: Json, time_from: str, *, interval: str | None = None) -> Json:
    """The panel shows its own time range (`time_from`, e.g. `1y` or `now/M`, "this month so
    far") whatever the dashboard's; `interval` is its minimum query step."""
    panel["timeFrom"] = time_from
    if interval:
        panel["interval"] = interval
    return panel


REDUCE_LAST = {"values": False, "calcs": ["lastNotNull"], "fields": ""}
LEGEND_TABLE = {
    "displayMode": "table",
    "placement": "bottom",
    "showLegend": True,
    "calcs": ["lastNotNull", "max"],
}
TOOLTIP_MULTI = {"mode": "multi", "sort": "desc"}


# -- panels ------------------------------------------------------------------------------------


def _targets(queries: list[Q], *, instant: bool, fmt: str) -> list[Json]:
    out = []
    for index, query in enumerate(queries):
        target: Json = {
            "datasource": DATASOURCE,
            "refId": chr(ord("A") + index),
            "editorMode": "code",
            "expr": query.expr,
            "legendFormat": query.legend,
            "range": not instant,
            "instant": instant,
        }
        if fmt != "time_series":
            target["format"] = fmt
        out.append(target)
    return out


def _panel(
    kind: str,
    title: str,
    description: str,
    unit: str,
    queries: list[Q],
    *,
    options: Json,
    defaults: Json | None = None,
    overrides: list[Json] | None = None,
    transformations: list[Json] | None = None,
    instant: bool = False,
    fmt: str = "time_series",
) -> Json:
    panel: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {"unit": unit, **(defaults or {})},
            "overrides": overrides or [],
        },
        "options": options,
        "targets": _targets(queries, instant=instant, fmt=fmt),
    }
    if transformations:
        panel["transformations"] = transformations
    return panel


def timeseries(
    title: str,
    description: str,
    unit: str,
    *queries: Q,
    stack: bool = False,
    fill: int = 10,
    min_zero: bool = True,
    steps: Json | None = None,
    threshold_style: str = "off",
    overrides: list[Json] | None = None,
    draw: str = "line",
) -> Json:
    custom: Json = {
        "drawStyle": draw,
        "lineInterpolation": "stepAfter" if draw == "line" else "linear",
        "lineWidth": 1,
        "fillOpacity": fill,
        "gradientMode": "none",
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": threshold_style},
    }
    defaults: Json = {
        "custom": custom,
        "color": {"mode": "palette-classic"},
        "thresholds": steps or GREEN,
    }
    if min_zero:
        defaults["min"] = 0
    return _panel(
        "timeseries",
        title,
        description,
        unit,
        list(queries),
        defaults=defaults,
        overrides=overrides,
        options={"legend": LEGEND_TABLE, "tooltip": TOOLTIP_MULTI},
    )


def stat(
    title: str,
    description: str,
    unit: str,
    *queries: Q,
    steps: Json | None = None,
    color_mode: str = "value",
    text_mode: str = "value_and_name",
    decimals: int | None = None,
    no_value: str | None = None,
    mappings: list[Json] | None = None,
) -> Json:
    defaults: Json = {"color": {"mode": "thresholds"}, "thresholds": steps or GREEN}
    if decimals is not None:
        defaults["decimals"] = decimals
    if no_value is not None:
        defaults["noValue"] = no_value
    if mappings:
        defaults["mappings"] = mappings
    return _panel(
        "stat",
        title,
        description,
        unit,
        list(queries),
        defaults=defaults,
        instant=True,
        options={
            "reduceOptions": REDUCE_LAST,
            "orientation": "auto",
            "textMode": text_mode,
            "colorMode": color_mode,
            "graphMode": "none",
            "justifyMode": "auto",
            "wideLayout": True,
        },
    )


def gauge(
    title: str, description: str, unit: str, *queries: Q, steps: Json, low: float, high: float
) -> Json:
    return _panel(
        "gauge",
        title,
        description,
        unit,
        list(queries),
        defaults={
            "color": {"mode": "thresholds"},
            "thresholds": steps,
            "min": low,
            "max": high,
        },
        instant=True,
        options={
            "reduceOptions": REDUCE_LAST,
            "orientation": "auto",
            "showThresholdLabels": False,
            "showThresholdMarkers": True,
        },
    )


def state_timeline(
    title: str, description: str, unit: str, *queries: Q, mappings: list[Json]
) -> Json:
    return _panel(
        "state-timeline",
        title,
        description,
        unit,
        list(queries),
        defaults={
            "custom": {"fillOpacity": 80, "lineWidth": 0},
            "color": {"mode": "thresholds"},
            "thresholds": GREEN,
            "mappings": mappings,
        },
        options={
            "mergeValues": True,
            "showValue": "auto",
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def heatmap(title: str, description: str, unit: str, query: Q, *, y_unit: str) -> Json:
    return _panel(
        "heatmap",
        title,
        description,
        unit,
        [query],
        fmt="heatmap",
        defaults={"custom": {"scaleDistribution": {"type": "linear"}}},
        options={
            "calculate": False,
            "cellGap": 1,
            "color": {
                "mode": "scheme",
                "scheme": "Oranges",
                "exponent": 0.5,
                "fill": "dark-orange",
                "reverse": False,
                "scale": "exponential",
                "steps": 64,
            },
            "yAxis": {"axisPlacement": "left", "unit": y_unit, "reverse": False},
            "rowsFrame": {"layout": "auto"},
            "cellValues": {"unit": unit},
            "filterValues": {"le": 1e-9},
            "legend": {"show": True},
            "tooltip": {"mode": "single", "yHistogram": False, "showColorScale": False},
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
        },
    )


@dataclass(frozen=True)
class Column:
    """A column of a `table()`: one instant query whose value becomes the column `name`."""

    name: str
    expr: str
    unit: str | None = None
    steps: Json | None = None
    cell: str | None = None  # "color-background", "color-text", ...
    decimals: int | None = None
    mappings: list[Json] | None = None


SORT_KEY = "Sort key"  # the title of a table's hidden rank column


def table(
    title: str,
    description: str,
    unit: str,
    labels: dict[str, str],
    columns: list[Column],
    *,
    sort_by: str,
    descending: bool = False,
    sort_key: str | None = None,
    links: dict[str, Json] | None = None,
) -> Json:
    """One row per label set: `labels` maps label names to column titles, in order; each column
    is an instant query with exactly those labels, merged on them. Sorted by `sort_by`, or, with
    `sort_key` (an instant query: a rank with the same labels), by that rank, highest first,
    in a hidden column (Grafana's table sorts on one column; a rank can order on two).
    `links` maps column titles to a data link on their cells."""
    if sort_key is not None:
        columns = [*columns, Column(SORT_KEY, sort_key)]
    queries = [Q(column.expr, "__auto") for column in columns]
    values = {f"Value #{chr(ord('A') + i)}": column.name for i, column in enumerate(columns)}
    order = {name: i for i, name in enumerate([*labels, *values])}
    overrides = []
    for column in columns:
        properties: Json = {}
        if column.unit:
            properties["unit"] = column.unit
        if column.decimals is not None:
            properties["decimals"] = column.decimals
        if column.steps:
            properties["thresholds"] = column.steps
            properties["color"] = {"mode": "thresholds"}
        if column.cell:
            properties["custom.cellOptions"] = {"type": column.cell, "mode": "basic"}
        if column.mappings:
            properties["mappings"] = column.mappings
        if properties:
            overrides.append(by_name(column.name, **properties))
    for name, link in (links or {}).items():
        overrides.append(by_name(name, links=[link]))
    # The sort key column, still under its merged name, sorts the rows and is then hidden.
    key_field = list(values)[-1]
    sorting: list[Json] = []
    hidden: Json = {}
    if sort_key is not None:
        sort = [{"field": key_field, "desc": True}]
        sorting = [{"id": "sortBy", "options": {"fields": {}, "sort": sort}}]
        hidden = {key_field: True}
    return _panel(
        "table",
        title,
        description,
        unit,
        queries,
        instant=True,
        fmt="table",
        defaults={
            "custom": {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
            "color": {"mode": "thresholds"},
            "thresholds": GREEN,
        },
        overrides=overrides,
        transformations=[
            {"id": "merge", "options": {}},
            *sorting,
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True, **hidden},
                    "indexByName": order,
                    "renameByName": {**labels, **values},
                },
            },
        ],
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "footer": {"show": False, "reducer": ["sum"], "fields": "", "countRows": False},
            "sortBy": [] if sorting else [{"displayName": sort_by, "desc": descending}],
        },
    )


# -- layout ------------------------------------------------------------------------------------


@dataclass
class Layout:
    """Places panels left to right in a 24-column grid, wrapping lines, with row headers."""

    panels: list[Json] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _line_height: int = 0

    def _next_id(self) -> int:
        return len(self.panels) + 1

    def _newline(self) -> None:
        if self._x:
            self._y += self._line_height
            self._x = self._line_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "id": self._next_id(),
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def add(self, panel: Json, w: int, h: int) -> None:
        if self._x + w > 24:
            self._newline()
        panel["id"] = self._next_id()
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += w
        self._line_height = max(self._line_height, h)


# -- variables and the dashboard ---------------------------------------------------------------


def datasource_variable() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {
            "selected": False,
            "text": "Prometheus",
            "value": PROVISIONED_DATASOURCE_UID,
        },
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_variable(name: str, label: str, query: str, description: str) -> Json:
    """A multi-select Prometheus label_values() variable with All (`.+`)."""
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ALL,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
        "skipUrlSync": False,
    }


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    variables: list[Json],
    layout: Layout,
    time_from: str,
    refresh: str = "1m",
) -> Json:
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "type": "dashboards",
                "title": "Citrix Cloud",
                "tags": [TAG],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "panels": layout.panels,
        "refresh": refresh,
        "schemaVersion": 39,
        "tags": [TAG, "citrix"],
        "templating": {"list": [datasource_variable(), *variables]},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }
