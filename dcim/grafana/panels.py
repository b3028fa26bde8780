"""House-style panels, built with grafana-foundation-sdk: one look for every dcim dashboard.

Time series show a table legend with last and max; stats colour their background
and say NO DATA when nothing reported within their lookback; state timelines
merge equal values. Units come from the vocabulary (`unit_of`), so a panel's unit
can never disagree with the data. Thresholds that differ per query (rooms of
another thermal class) are overrides matched by refId.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grafana_foundation_sdk.builders import bargauge as bargauge_builder
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import stat as stat_builder
from grafana_foundation_sdk.builders import statetimeline as statetimeline_builder
from grafana_foundation_sdk.builders import statushistory as statushistory_builder
from grafana_foundation_sdk.builders import table as table_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dcim.grafana.influxql import stored
from dcim.grafana.model import (
    Influx,
    Threshold,
    ValueText,
    datasource_ref,
    thresholds_config,
    value_mappings,
    with_refs,
)
from dcim.grafana.thresholds import OK_ONLY

#: Vocabulary unit -> Grafana unit id (custom units are `suffix:<text>`).
UNITS: Mapping[str, str] = {
    "s": "s",
    "%": "percent",
    "V": "volt",
    "A": "amp",
    "W": "watt",
    "VA": "voltamp",
    "Hz": "hertz",
    "degC": "celsius",
    "kWh": "kwatth",
    "m3/h": "suffix:m³/h",
    "m/s": "velocityms",
    "B": "bytes",
    "%/m": "suffix:%/m",
    "kPa": "pressurekpa",
    "l/min": "flowlpm",
    "rpm": "rotrpm",
    "mOhm": "suffix:mΩ",
}


def grafana_unit(unit: str | None) -> str:
    """Grafana's unit id for a vocabulary unit; a site's own unit shows as its suffix."""
    if not unit:
        return "none"
    return UNITS.get(unit, f"suffix:{unit}")


#: What a present-time panel says when nothing reported within its lookback.
NO_DATA = "NO DATA"

PanelBuilder = cogbuilder.Builder[model.Panel]
#: refId -> threshold steps for that query's frames.
StepOverrides = Mapping[str, Sequence[Threshold]]


def unit_of(metric: str) -> str:
    """The Grafana unit of a vocabulary metric ('none' when it has none)."""
    return grafana_unit(stored(metric).unit)


def link(title: str, url: str) -> dashboard_builder.DashboardLink:
    """A data link (click a tile or cell): Grafana fills `${__...}` from the clicked value."""
    return dashboard_builder.DashboardLink(title).url(url).target_blank(False)


def _common(
    panel: Any,
    title: str,
    queries: Sequence[Influx],
    *,
    unit: str,
    steps: Sequence[Threshold],
    overrides: StepOverrides,
    mappings: Sequence[ValueText],
    description: str,
    width: int,
    height: int,
    links: Sequence[dashboard_builder.DashboardLink] = (),
    no_value: str = "",
) -> Any:
    panel.title(title).description(description).datasource(datasource_ref())
    panel.targets(with_refs(queries)).span(width).height(height).unit(unit)
    panel.thresholds(
        dashboard_builder.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(thresholds_config(steps).steps)
    )
    if mappings:
        panel.mappings(value_mappings(mappings))
    for ref, ref_steps in overrides.items():
        panel.override_by_query(
            ref, [model.DynamicConfigValue(id_val="thresholds", value=thresholds_config(ref_steps))]
        )
    if links:
        panel.data_links(list(links))
    if no_value:
        panel.no_value(no_value)
    return panel


def timeseries(
    title: str,
    queries: Sequence[Influx],
    unit: str,
    *,
    steps: Sequence[Threshold] = OK_ONLY,
    overrides: StepOverrides | None = None,
    threshold_style: common.GraphThresholdsStyleMode = common.GraphThresholdsStyleMode.OFF,
    min: float | None = None,
    max: float | None = None,
    bars: bool = False,
    description: str = "",
    width: int = 12,
    height: int = 8,
) -> PanelBuilder:
    """Lines per series (bars for counts per interval); thresholds drawn as lines or bands."""
    panel = _common(
        timeseries_builder.Panel(),
        title,
        queries,
        unit=unit,
        steps=steps,
        overrides=overrides or {},
        mappings=(),
        description=description,
        width=width,
        height=height,
    )
    panel.color_scheme(dashboard_builder.FieldColor().mode(model.FieldColorModeId.PALETTE_CLASSIC))
    panel.draw_style(common.GraphDrawStyle.BARS if bars else common.GraphDrawStyle.LINE)
    panel.line_width(1).fill_opacity(60 if bars else 0).show_points(
        common.VisibilityMode.NEVER
    ).span_nulls(not bars)
    panel.thresholds_style(common_builder.GraphThresholdsStyleConfig().mode(threshold_style))
    panel.legend(
        common_builder.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.RIGHT)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )
    panel.tooltip(
        common_builder.VizTooltipOptions()
        .mode(common.TooltipDisplayMode.MULTI)
        .sort(common.SortOrder.DESCENDING)
    )
    if min is not None:
        panel.min(min)
    if max is not None:
        panel.max(max)
    return panel  # type: ignore[no-any-return]


def stat(
    title: str,
    queries: Sequence[Influx],
    unit: str = "none",
    *,
    steps: Sequence[Threshold] = OK_ONLY,
    overrides: StepOverrides | None = None,
    mappings: Sequence[ValueText] = (),
    fields: str = "",
    null_is_zero: bool = False,
    links: Sequence[dashboard_builder.DashboardLink] = (),
    description: str = "",
    width: int = 4,
    height: int = 5,
) -> PanelBuilder:
    """Big numbers (or enum states), coloured; NO DATA when nothing reported within the lookback.

    `fields` picks the fields shown (a regex, e.g. `/^matching$/` of a count query);
    `null_is_zero` shows a count query's null (none matched, some reported) as 0.
    """
    panel = _common(
        stat_builder.Panel(),
        title,
        queries,
        unit=unit,
        steps=steps,
        overrides=overrides or {},
        mappings=(),
        description=description,
        width=width,
        height=height,
        links=links,
        no_value=NO_DATA,
    )
    maps = value_mappings(list(mappings))
    if null_is_zero:
        maps.append(
            model.SpecialValueMap(
                options=model.DashboardSpecialValueMapOptions(
                    match=model.SpecialValueMatch.NULL,
                    result=model.ValueMappingResult(text="0", color=steps[0].color, index=0),
                )
            )
        )
    if maps:
        panel.mappings(maps)
    panel.color_mode(common.BigValueColorMode.BACKGROUND)
    panel.graph_mode(common.BigValueGraphMode.NONE)
    panel.text_mode(common.BigValueTextMode.VALUE_AND_NAME)
    panel.justify_mode(common.BigValueJustifyMode.AUTO)
    panel.orientation(common.VizOrientation.AUTO)
    panel.wide_layout(True).show_percent_change(False)
    reduce = common_builder.ReduceDataOptions().calcs(["last"]).values(False)
    # enum values are strings: the default (numeric fields only) would show nothing
    reduce.fields(fields or ("/.*/" if mappings else ""))
    panel.reduce_options(reduce)
    return panel  # type: ignore[no-any-return]


def state_timeline(
    title: str,
    queries: Sequence[Influx],
    mappings: Sequence[ValueText],
    *,
    steps: Sequence[Threshold] = OK_ONLY,
    overrides: StepOverrides | None = None,
    unit: str = "none",
    description: str = "",
    width: int = 12,
    height: int = 8,
    history: bool = False,
) -> PanelBuilder:
    """One band per series, coloured by state or thresholds (`history`: a status grid)."""
    factory: Any = statushistory_builder.Panel() if history else statetimeline_builder.Panel()
    panel = _common(
        factory,
        title,
        queries,
        unit=unit,
        steps=steps,
        overrides=overrides or {},
        mappings=mappings,
        description=description,
        width=width,
        height=height,
    )
    panel.color_scheme(dashboard_builder.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
    panel.fill_opacity(80).line_width(0)
    if not history:
        panel.merge_values(True)
        panel.align_value(common.TimelineValueAlignment.LEFT)
    panel.show_value(common.VisibilityMode.AUTO).row_height(0.9)
    panel.legend(
        common_builder.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )
    return panel  # type: ignore[no-any-return]


def bar_gauge(
    title: str,
    queries: Sequence[Influx],
    unit: str,
    *,
    steps: Sequence[Threshold] = OK_ONLY,
    overrides: StepOverrides | None = None,
    limit: int = 10,
    links: Sequence[dashboard_builder.DashboardLink] = (),
    description: str = "",
    width: int = 12,
    height: int = 8,
) -> PanelBuilder:
    """Top N: one bar per row of a table query, largest first (sorted before the limit)."""
    panel = _common(
        bargauge_builder.Panel(),
        title,
        queries,
        unit=unit,
        steps=steps,
        overrides=overrides or {},
        mappings=(),
        description=description,
        width=width,
        height=height,
        links=links,
        no_value=NO_DATA,
    )
    panel.display_mode(common.BarGaugeDisplayMode.BASIC)
    panel.orientation(common.VizOrientation.HORIZONTAL)
    panel.reduce_options(
        common_builder.ReduceDataOptions().values(True).limit(limit).calcs(["last"]).fields("")
    )
    panel.with_transformation(
        model.DataTransformerConfig(
            id_val="sortBy", options={"sort": [{"field": "value", "desc": True}]}
        )
    )
    return panel  # type: ignore[no-any-return]


def table(
    title: str,
    queries: Sequence[Influx],
    *,
    columns: Sequence[str],
    sort: str | None = None,
    unit: str = "none",
    column_props: Mapping[str, Sequence[model.DynamicConfigValue]] | None = None,
    transformations: Sequence[model.DataTransformerConfig] = (),
    description: str = "",
    width: int = 24,
    height: int = 8,
) -> PanelBuilder:
    """Rows of present values in a fixed column order (`columns`), sorted by `sort` descending.

    Grafana's InfluxQL table puts tag columns in map order (random per query):
    the `organize` transformation fixes the order, and hides anything else.
    """
    panel = _common(
        table_builder.Panel(),
        title,
        queries,
        unit=unit,
        steps=OK_ONLY,
        overrides={},
        mappings=(),
        description=description,
        width=width,
        height=height,
        no_value=NO_DATA,
    )
    panel.transformations(
        [
            *transformations,
            model.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "time": True},
                    "includeByName": dict.fromkeys(columns, True),
                    "indexByName": {name: i for i, name in enumerate(columns)},
                    "renameByName": {},
                },
            ),
        ]
    )
    panel.cell_height(common.TableCellHeight.SM).show_header(True)
    if sort is not None:
        panel.sort_by([common_builder.TableSortByFieldState().display_name(sort).desc(True)])
    for name, props in (column_props or {}).items():
        panel.override_by_name(name, list(props))
    return panel  # type: ignore[no-any-return]


def colour_cells(mappings: Sequence[ValueText]) -> list[model.DynamicConfigValue]:
    """Column properties: this column (and only it) coloured by its value mapping."""
    return [
        model.DynamicConfigValue(id_val="mappings", value=value_mappings(mappings)),
        model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
    ]
