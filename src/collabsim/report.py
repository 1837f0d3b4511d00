"""Reports: figures (PNG), tables (CSV) and one self-contained ``report.html`` for a comparison or a sweep.

    collabsim compare SCENARIO --out OUT     # runs, then writes OUT/report.html, OUT/figures/, OUT/tables/
    collabsim report OUT                     # rebuilds them from the stored runs (a comparison or any sweep)

The HTML embeds every figure as a base64 ``data:`` URI and its style inline: it opens from a file, an e-mail or a
shared drive with no network. Figures are drawn with matplotlib's object-oriented API on the Agg canvas (no pyplot,
no global state, no display). Everything is rendered in memory first and then written file by file with
:func:`collabsim.io.atomic_write`, ``report.html`` last: a failure while rendering leaves ``OUT`` as it was, and no
reader ever sees half a file.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from collabsim.errors import CollabsimInputError
from collabsim.io import SweepResults, atomic_write, load_results
from collabsim.recorder import BOUNDED_METRICS
from collabsim.stats import G_MIN_PAIRS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from collabsim.compare import Comparison

__all__ = ["build_report", "comparison_findings", "write_comparison_report", "write_sweep_report"]

COLOURS = ("#1f77b4", "#d62728")  # first arm, second arm
MATURITY_COLOURS = {"pathological": "#d62728", "bureaucratic": "#ff7f0e", "generative": "#2ca02c"}
#: Metrics in the findings, besides the headline metric, in this order.
FINDING_METRICS = ("share_synergy", "share_dissolved", "task_achievement", "mean_trust", "care_quality")
#: Plain-language phrases: (subject, what a share counts / what the mean is of).
PHRASES = {
    "share_synergy": "were in collaborative behaviour (synergy) at the end",
    "share_dissolved": "had dissolved by the end",
    "share_pathological": "were at the pathological maturity level at the end",
    "share_bureaucratic": "were at the bureaucratic maturity level at the end",
    "share_generative": "were at the generative maturity level at the end",
    "mean_trust": "mean trust between partners at the end",
    "mean_faith": "mean faith in the collaboration at the end",
    "mean_confidence": "mean confidence in partners at the end",
    "mean_risk_tolerance": "mean risk tolerance at the end",
    "mean_collaborative_behaviour": "mean collaborative behaviour at the end",
    "task_achievement": "mean task achievement",
    "months_to_synergy": "median months from formation to synergy (of those that got there)",
    "patient_coverage": "mean patient coverage",
    "cost_savings": "mean cost savings",
    "care_quality": "mean care quality",
    "n_collaborations": "number of collaborations formed",
}
#: Metrics on the 0-1 scale (drawn together in the difference plot).
UNIT_METRICS = BOUNDED_METRICS
#: Why a table shows no effect size although it has pairs (stats.hedges_g_av; docs/decisions.md 39).
NO_SPREAD = "no spread within arms: a standardised effect is undefined"
#: months_to_synergy rests on different runs in each column and leaves out whoever never got there (docs/compare.md).
MONTHS_TO_SYNERGY_NOTE = (
    "months_to_synergy is not a like-for-like comparison: each run's value counts only the collaborations that "
    "reached synergy, each arm's mean is over the runs where any did and the difference over the pairs where both "
    "did; the Kaplan–Meier median months to synergy count every collaboration formed and are the comparable measure"
)


# ---------------------------------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------------------------------


def _num(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v != 0 and abs(v) < 10 ** -(digits + 1):
        text = f"{v:.1e}"
    else:
        text = f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:,.0f}"
    return text.replace("-", "−")  # the sign and an exponent's sign: the text's minus throughout


def _pct(x: float, digits: int = 0) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:.{digits}f}%".replace("-", "−")


def _points(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:+.1f}".replace("-", "−")


def _count(n: float, unit: str) -> str:
    """``n`` with ``unit`` in the singular or plural: "1 year", "1.5 years", "18 months"."""
    return f"{n:g} {unit}" + ("" if n == 1 else "s")


def _horizon(months: int) -> str:
    """A run's length in words: years when they are whole or half ("1 year", "1.5 years"), else months."""
    return _count(months / 12, "year") if months % 6 == 0 else _count(months, "month")


def _ci(lo: float, hi: float, fmt: Any = _num) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "not available"
    return f"{fmt(lo)} to {fmt(hi)}"


def _e(text: Any) -> str:
    return html.escape(str(text))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------------------------------------------------
# Plain-language findings
# ---------------------------------------------------------------------------------------------------------------------


def _verdict(lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "too few runs for an interval"
    if lo > 0 or hi < 0:
        return "a clear difference: the interval excludes zero"
    return "no clear difference: the interval includes zero"


def _metric_finding(cmp: Comparison, metric: str) -> str | None:
    t = cmp.table
    if metric not in t.index:
        return None
    r = t.loc[metric]
    first, second = cmp.first, cmp.second
    n = int(r["n_pairs"])
    if n == 0:
        return None
    ahead = f"{second} came out higher in {_pct(r['p_superiority'])} of the {n} paired runs"
    horizon = _horizon(cmp.scenario.horizon_months)
    phrase = (
        PHRASES.get(metric, _label(metric))
        .replace("at the end", f"after {horizon}")
        .replace("by the end", f"within {horizon}")
    )
    if metric.startswith("share_"):
        return (
            f"On average {_pct(r[second])} of {second} partnerships {phrase}, against {_pct(r[first])} of {first} "
            f"ones: a difference of {_points(r['difference'])} percentage points (95% CI {_points(r['ci_low'])} to "
            f"{_points(r['ci_high'])}; {_verdict(r['ci_low'], r['ci_high'])}); {ahead}."
        )
    g = float(r["effect_size"])
    effect = f"standardised effect size g = {_num(g, 2)}" if math.isfinite(g) else _no_effect(n)
    note = f" ({MONTHS_TO_SYNERGY_NOTE})" if metric == "months_to_synergy" else ""
    return (
        f"{_cap(phrase)}: {_num(r[second])} under {second} against {_num(r[first])} under {first}, a difference of "
        f"{_num(r['difference'])} (95% CI {_ci(r['ci_low'], r['ci_high'])}; {_verdict(r['ci_low'], r['ci_high'])}); "
        f"{effect}; {ahead}.{note}"
    )


def _no_effect(n_pairs: int) -> str:
    """Why there is no effect size: too few pairs, or no spread within the arms to standardise by."""
    return "too few pairs for an effect size" if n_pairs < G_MIN_PAIRS else f"no effect size ({NO_SPREAD})"


def _km_finding(cmp: Comparison) -> list[str]:
    out: list[str] = []
    if cmp.km_summary is None:
        return out
    s = cmp.km_summary
    first, second = cmp.first, cmp.second
    for event, words in (("synergy", "reached synergy"), ("dissolved", "dissolved")):
        rows = s[s["event"] == event]
        med = rows[rows["quantity"] == "median months"]
        if med.empty:
            continue
        med = med.iloc[0]
        last = rows[rows["quantity"] != "median months"].iloc[-1]
        if event == "dissolved" and last[first] == 0 and last[second] == 0:
            horizon = _count(cmp.scenario.horizon_months, "month")
            out.append(f"No collaboration dissolved in either arm within the {horizon}.")
            continue
        parts = []
        for arm in (second, first):
            v = med[arm]
            parts.append(
                f"half of {arm} collaborations {words} within {_count(round(v), 'month')} of forming"
                if math.isfinite(v)
                else f"fewer than half of {arm} collaborations {words} within the horizon"
            )
        out.append(
            f"{_cap(parts[0])}; {parts[1]}. By {last['quantity'].removeprefix('share by ')} after forming, "
            f"{_pct(last[second])} of {second} and {_pct(last[first])} of {first} collaborations had {words} "
            f"(difference {_points(last['difference'])} points, 95% CI {_points(last['ci_low'])} to "
            f"{_points(last['ci_high'])}; Kaplan–Meier)."
        )
    return out


def _attribution_finding(cmp: Comparison) -> list[str]:
    att = cmp.attribution
    if att is None:
        return []
    from collabsim.compare import ALL_OFF, NOTHING_OFF  # noqa: PLC0415

    t = att.for_metric(cmp.metric)
    if t.empty or not math.isfinite(t.at[NOTHING_OFF, "gap"]) or t.at[NOTHING_OFF, "gap"] == 0:
        return []
    gap = t.at[NOTHING_OFF, "gap"]
    groups = t.drop(index=[NOTHING_OFF, ALL_OFF], errors="ignore")
    # groups without which the metric collapses to the same value in both arms are necessary, not differentiating
    flat = (groups[f"{cmp.first}_without"] - groups[f"{cmp.second}_without"]).abs() < 1e-12
    necessary = list(groups.index[flat & (groups["gap_without"].abs() < 1e-12)])
    rest = groups.drop(index=necessary)
    out = [
        f"Mechanism attribution ({att.by}, {att.replications} paired replicates; gap in {cmp.metric} "
        f"{second_minus_first(cmp)} = {_num(gap)}):"
    ]
    if necessary:
        out[0] += (
            f" without the rules moving {' or '.join(necessary)}, both arms end at the same value "
            f"({_num(groups.at[necessary[0], f'{cmp.first}_without'])}): the whole gap runs through these mechanisms."
        )
    top = rest.reindex(rest["contribution"].abs().sort_values(ascending=False).index).head(4)
    for_gap = [
        f"{g} ({_pct(r['share'])}, 95% CI {_ci(r['share_ci_low'], r['share_ci_high'], _pct)})"
        for g, r in top.iterrows()
        if r["contribution"] * gap > 0
    ]
    against = [
        f"{g} ({_pct(r['share'])}, 95% CI {_ci(r['share_ci_low'], r['share_ci_high'], _pct)})"
        for g, r in top.iterrows()
        if r["contribution"] * gap < 0
    ]
    if for_gap:
        out[0] += f" Of the others, the rules moving {', '.join(for_gap)} account for the largest parts of the gap"
        out[0] += f"; {', '.join(against)} work against it." if against else "."
    elif against:
        out[0] += f" Of the others, {', '.join(against)} work against the gap the most."
    if ALL_OFF in t.index:
        out.append(
            f"With every rule switched off the gap is {_num(t.at[ALL_OFF, 'gap_without'])}: the part the rule table "
            "does not produce (partner choice, regulator assignment, who may leave)."
        )
    return out


def second_minus_first(cmp: Comparison) -> str:
    return f"{cmp.second} − {cmp.first}"


def comparison_findings(cmp: Comparison) -> list[str]:
    """The plain-language findings that open the report (also printed by ``collabsim compare``)."""
    metrics = [cmp.metric, *[m for m in FINDING_METRICS if m != cmp.metric]]
    out = [f for m in metrics if (f := _metric_finding(cmp, m)) is not None]
    out += _km_finding(cmp)
    out += _attribution_finding(cmp)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure  # noqa: PLC0415 - the Agg canvas; no pyplot, no display

    return Figure(figsize=(width, height), layout="constrained")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def _label(metric: str) -> str:
    return metric.replace("_", " ")


def plot_differences(cmp: Comparison, ax: Any = None) -> Figure | None:
    """Paired differences (second − first) with their 95% intervals, metrics on the 0–1 scale."""
    t = cmp.table.loc[[m for m in UNIT_METRICS if m in cmp.table.index]]
    t = t[t["n_pairs"] > 0]
    fig = None
    if ax is None:
        fig = _figure(6.5, 0.32 * len(t) + 1.2)
        ax = fig.add_subplot()
    y = np.arange(len(t))[::-1]
    d = t["difference"].to_numpy(float)
    lo = np.nan_to_num(d - t["ci_low"].to_numpy(float))
    hi = np.nan_to_num(t["ci_high"].to_numpy(float) - d)
    colours = [COLOURS[1] if v > 0 else COLOURS[0] if v < 0 else "grey" for v in d]
    ax.errorbar(d, y, xerr=[lo, hi], fmt="none", ecolor="black", elinewidth=1, capsize=3)
    ax.scatter(d, y, c=colours, zorder=3, s=22)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, [_label(m) for m in t.index], fontsize=8)
    ax.set_xlabel(f"{cmp.second} − {cmp.first} (paired difference, 95% bootstrap CI)", fontsize=8)
    ax.set_title("Paired differences at the end", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    return fig


def plot_event(cmp: Comparison, event: str, ax: Any = None) -> Figure | None:
    """Kaplan–Meier cumulative share reaching ``event`` by months since formation, with 95% bands."""
    fig = None
    if ax is None:
        fig = _figure(5.5, 3.6)
        ax = fig.add_subplot()
    km = cmp.km
    for colour, arm in zip(COLOURS, cmp.arms, strict=True):
        k = km[(km["event"] == event) & (km["arm"] == arm)]
        ax.fill_between(k["month"], k["ci_low"], k["ci_high"], step="post", color=colour, alpha=0.2, lw=0)
        ax.step(k["month"], k["share"], where="post", color=colour, label=arm)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("months since the collaboration formed", fontsize=8)
    ax.set_ylabel(f"share {'reached synergy' if event == 'synergy' else 'dissolved'}", fontsize=8)
    ax.set_title(f"Time to {'synergy' if event == 'synergy' else 'dissolution'} (Kaplan–Meier, 95% band)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.tick_params(labelsize=8)
    return fig


def _trajectory(cmp: Comparison, variable: str, ax: Any) -> None:
    tr = cmp.trajectories
    for colour, arm in zip(COLOURS, cmp.arms, strict=True):
        k = tr[(tr["arm"] == arm) & (tr["variable"] == variable)]
        ax.fill_between(k["month"], k["q05"], k["q95"], color=colour, alpha=0.12, lw=0)
        ax.fill_between(k["month"], k["q25"], k["q75"], color=colour, alpha=0.3, lw=0)
        ax.plot(k["month"], k["q50"], color=colour, lw=1.5, label=arm)
    ax.set_ylim(0, 1)
    ax.set_title(_label(variable), fontsize=9)
    ax.tick_params(labelsize=7)


def plot_trajectories(cmp: Comparison) -> Figure:
    from collabsim.compare import TRAJECTORY_VARIABLES  # noqa: PLC0415

    variables = list(TRAJECTORY_VARIABLES)
    fig = _figure(11, 5.6)
    axes = fig.subplots(2, 3, sharex=True).ravel()
    for ax, var in zip(axes, variables, strict=False):
        _trajectory(cmp, var, ax)
    for ax in axes[len(variables) :]:
        ax.axis("off")
    axes[0].legend(fontsize=8, frameon=False)
    fig.supxlabel("month", fontsize=8)
    fig.suptitle("Trajectories over running collaborations: median run, 50% and 90% bands of runs", fontsize=10)
    return fig


def plot_maturity(cmp: Comparison, ax_end: Any = None) -> Figure | None:
    from collabsim.recorder import MATURITY_LEVELS  # noqa: PLC0415

    fig = None
    if ax_end is None:
        fig = _figure(11, 3.4)
        axes = fig.subplots(1, 3, width_ratios=[1, 2, 2])
        ax_end = axes[0]
    t = cmp.table
    bottom = np.zeros(2)
    for level in MATURITY_LEVELS:
        m = f"share_{level}"
        vals = np.array([t.at[m, arm] if m in t.index else np.nan for arm in cmp.arms], float)
        ax_end.bar(cmp.arms, np.nan_to_num(vals), bottom=bottom, width=0.5, color=MATURITY_COLOURS[level], label=level)
        bottom += np.nan_to_num(vals)
    ax_end.set_ylim(0, 1)
    ax_end.set_title("Maturity at the end", fontsize=9)
    ax_end.tick_params(labelsize=8)
    ax_end.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=3)
    if fig is None:
        return None
    if cmp.maturity is not None:
        for ax, arm in zip(axes[1:], cmp.arms, strict=True):
            k = cmp.maturity[cmp.maturity["arm"] == arm]
            ax.stackplot(
                k["month"],
                *[k[level] for level in MATURITY_LEVELS],
                colors=[MATURITY_COLOURS[level] for level in MATURITY_LEVELS],
                labels=list(MATURITY_LEVELS),
            )
            ax.set_ylim(0, 1)
            ax.set_title(f"{arm}: maturity of running collaborations by month", fontsize=9)
            ax.tick_params(labelsize=8)
    return fig


def plot_attribution(cmp: Comparison, top: int = 15) -> Figure | None:
    from collabsim.compare import ALL_OFF, NOTHING_OFF  # noqa: PLC0415

    att = cmp.attribution
    if att is None:
        return None
    t = att.for_metric(cmp.metric)
    if t.empty:
        return None
    gap = t.at[NOTHING_OFF, "gap"]
    groups = t.drop(index=[NOTHING_OFF], errors="ignore")
    order = groups.drop(index=[ALL_OFF], errors="ignore")["contribution"].abs().sort_values(ascending=False).index
    shown = [*([ALL_OFF] if ALL_OFF in groups.index else []), *order[:top]]
    g = groups.loc[shown]
    fig = _figure(7, 0.3 * len(g) + 1.6)
    ax = fig.add_subplot()
    y = np.arange(len(g))[::-1]
    c = g["contribution"].to_numpy(float)
    err = [np.nan_to_num(c - g["contribution_ci_low"].to_numpy(float)), np.nan_to_num(g["contribution_ci_high"] - c)]
    colours = [
        "grey" if n == ALL_OFF else "#8c2d04" if v * gap > 0 else "#6baed6" for n, v in zip(g.index, c, strict=True)
    ]
    ax.barh(y, c, color=colours, alpha=0.85)
    ax.errorbar(c, y, xerr=err, fmt="none", ecolor="black", elinewidth=1, capsize=2)
    ax.axvline(0, color="black", lw=0.8)
    ax.axvline(gap, color="black", lw=1, ls="--", label=f"gap {cmp.second} − {cmp.first} = {_num(gap)}")
    ax.set_yticks(y, list(g.index), fontsize=8)
    ax.set_xlabel(
        f"part of the gap in {cmp.metric} removed by switching the rules off (95% CI)\n"
        "dark: accounts for the gap; light: works against it",
        fontsize=8,
    )
    ax.set_title(f"Which mechanisms make {cmp.second} and {cmp.first} differ ({att.by})", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.tick_params(labelsize=8)
    return fig


def key_figure(cmp: Comparison) -> Figure:
    """The one-page summary (the README figure): differences, time to synergy, collaborative behaviour, maturity."""
    fig = _figure(12, 8)
    axes = fig.subplots(2, 2)
    plot_differences(cmp, axes[0, 0])
    if cmp.km is not None:
        plot_event(cmp, "synergy", axes[0, 1])
        _trajectory(cmp, "collaborative_behaviour", axes[1, 0])
        axes[1, 0].set_title("Collaborative behaviour: median run, 50% and 90% bands", fontsize=10)
        axes[1, 0].set_xlabel("month", fontsize=8)
        axes[1, 0].legend(fontsize=8, frameon=False)
    plot_maturity(cmp, axes[1, 1])
    fig.suptitle(
        f"{cmp.scenario.name}: {cmp.second} vs {cmp.first}, {cmp.replications} paired replicates "
        f"(common random numbers), {cmp.scenario.horizon_months} months",
        fontsize=11,
    )
    return fig


# ---------------------------------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:2em} .sub{color:#555;margin-top:0} .findings li{margin:.4em 0}
table{border-collapse:collapse;font-size:.85em;margin:.8em 0} th,td{border:1px solid #ddd;padding:.25em .5em;
text-align:right;vertical-align:top} th{background:#f4f4f4} td.l,th.l{text-align:left}
img{max-width:100%;height:auto;display:block;margin:1em 0} .note{color:#555;font-size:.9em}
code{background:#f4f4f4;padding:0 .2em} .warn{background:#fff6e0;border-left:4px solid #f0a000;padding:.5em 1em}
"""


@dataclass
class _Doc:
    """A report being built: HTML parts and the files beside it (relative path -> bytes)."""

    title: str
    parts: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def figure(self, name: str, fig: Figure | None, alt: str) -> None:
        if fig is None:
            return
        data = _png(fig)
        self.files[f"figures/{name}.png"] = data
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        self.add(f'<img src="{uri}" alt="{_e(alt)}">')

    def table(self, name: str, df: pd.DataFrame, shown: pd.DataFrame | None = None, index: bool = True) -> None:
        self.files[f"tables/{name}.csv"] = df.to_csv(index=index).encode("utf-8")
        if shown is not None:
            self.add(_html_table(shown))
            self.add(f'<p class="note">Full table: <code>tables/{name}.csv</code>.</p>')

    def html(self) -> bytes:
        body = "\n".join(self.parts)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(self.title)}</title>'
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n"
        ).encode()


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f'<th class="l">{_e(c)}</th>' if i == 0 else f"<th>{_e(c)}</th>" for i, c in enumerate(df.columns))
    rows = []
    for _, r in df.iterrows():
        cells = "".join(
            f'<td class="l">{_e(v)}</td>' if i == 0 else f"<td>{_e(v)}</td>" for i, v in enumerate(r.tolist())
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _write_files(out: Path, doc: _Doc) -> Path:
    """Write the rendered files, each atomically, report.html last."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for rel, data in doc.files.items():
            atomic_write(out / rel, lambda tmp, data=data: tmp.write_bytes(data))
        report = out / "report.html"
        html_bytes = doc.html()
        atomic_write(report, lambda tmp: tmp.write_bytes(html_bytes))
    except OSError as exc:
        raise CollabsimInputError("--out", None, str(out), problem=f"cannot write: {exc.strerror or exc}") from None
    return report


def _versions_html(manifest: dict[str, Any]) -> str:
    v = manifest.get("versions", {})
    return ", ".join(f"{_e(k)} {_e(val)}" for k, val in v.items() if val != "not installed")


def _organisations(scenario: Any, arms: Sequence[str], swept: bool = False) -> str:
    """How many organisations the runs have: one count, or each arm's when the arms change the population."""
    if swept:
        return "organisations: population.n_orgs is swept"
    counts = {a: scenario.arm(a).population.n_orgs for a in arms if a in (scenario.arms or {})}
    if len(set(counts.values())) > 1:
        (a0, n0), *rest = counts.items()
        return f"{n0} organisations in {a0}" + "".join(f", {n} in {a}" for a, n in rest)
    n = next(iter(counts.values()), scenario.population.n_orgs)
    return f"{n} organisations"


def _method_section(doc: _Doc, scenario: Any, results: SweepResults, extra: Sequence[str] = ()) -> None:
    m = results.manifest
    seeds = m.get("seeds", {})
    sessions = m.get("sessions", [])
    executors = sorted({f"{s.get('executor')} x{s.get('workers')}" for s in sessions if s.get("executor")})
    doc.add("<h2>Scenario, runs and versions</h2><ul>")
    description = f": {_e(scenario.description)}" if scenario.description else ""
    doc.add(f"<li>Scenario <b>{_e(scenario.name)}</b>{description}")
    if m.get("scenario_file"):
        doc.add(f" (file <code>{_e(m['scenario_file'])}</code>)")
    doc.add(f"; content hash <code>{_e(str(m.get('scenario_hash'))[:16])}</code>.</li>")
    doc.add(
        f"<li>{_e(_organisations(scenario, results.arms, 'population.n_orgs' in results.parameters))}, "
        f"{scenario.horizon_months} months; "
        f"{m.get('replications')} replicate(s) per arm and design point, {m.get('n_runs')} runs "
        f"({len(results.summary)} finished){'; executors: ' + ', '.join(executors) if executors else ''}.</li>"
    )
    doc.add(
        f"<li>Seeds: seed {seeds.get('seed')}; run key {_e(seeds.get('run_key'))}: {_e(seeds.get('scheme', ''))}."
        " Bootstrap intervals use their own seeded streams, so rebuilding the report gives the same numbers.</li>"
    )
    for line in extra:
        doc.add(f"<li>{line}</li>")
    doc.add(
        f"<li>Versions: {_versions_html(m)}; collabsim code hash <code>{_e(str(m.get('code_hash'))[:16])}</code>."
        f"</li><li>Results directory: <code>{_e(results.path)}</code> (<code>collabsim.load_results</code>); "
        f"report built {_e(time.strftime('%Y-%m-%d %H:%M:%S %Z'))}.</li></ul>"
    )


def _assumptions(scenario: Any, arms: dict[str, dict[str, Any]]) -> list[str]:
    from collabsim.compare import effective_weights  # noqa: PLC0415
    from collabsim.rules import load_calibration  # noqa: PLC0415

    d = scenario.dynamics
    p = scenario.partnering
    weights = effective_weights(scenario)
    active = sum(1 for w in weights.values() if w > 0)
    out = [
        "<b>Calibrated to one stated target, not to data.</b> Rule weights are the theory's strength classes, "
        f"balanced so that no variable drifts at a neutral context, times one rate ({load_calibration()['rate']}) "
        "fitted so that collaborations reaching synergy take about two years (docs/calibration.md): read differences "
        "as consequences of the theory's signs, not as predictions.",
        f"The theory of Millar et al. 2023 as {active} active rules of the rule table (<code>collabsim rules</code>); "
        "each moves one variable up or down each month in proportion to the product of its contexts, bounded in "
        "[0, 1].",
    ]
    if scenario.rules.disable or scenario.rules.weights:
        out.append(
            f"Rule overrides of the scenario: switched off {_e(', '.join(scenario.rules.disable) or 'none')}; "
            f"re-weighted {_e(', '.join(f'{k} x{v:g}' for k, v in scenario.rules.weights.items()) or 'none')}."
        )
    if arms:
        described = "; ".join(
            f"<b>{_e(a)}</b>: " + (_e(", ".join(f"{k} = {v}" for k, v in ov.items())) or "the scenario as it is")
            for a, ov in arms.items()
        )
        out.append(f"The arms differ only in: {described}. Everything else is the same scenario.")
    out += [
        "Replicate r of every arm simulates the same organisations with the same random events (common random "
        "numbers), so each replicate gives a paired difference.",
        f"Synergy (collaborative behaviour): a member is past the threshold when risk tolerance ≥ "
        f"{d.synergy_threshold_risk:g} and faith ≥ {d.synergy_threshold_faith:g}, and stays past until either falls "
        f"more than {d.threshold_hysteresis:g} below; a collaboration is in synergy when at least {d.synergy_share:g} "
        "of its members are.",
        "Confidence (from formalisation) stands in for trust progressively in mandated and integrative partnerships; "
        "over-formalising a voluntary one erodes trust.",
        f"Members of voluntary collaborations leave when their faith stays below {p.leave_faith_threshold:g} for "
        f"{p.leave_after_months} months; mandated members cannot leave. A collaboration with fewer than two members "
        "dissolves.",
        "Voluntary partners choose each other by expected initial trust, proximity and complementarity; a regulator "
        "assigns mandated partners (geographic footprints or buddying a lower performer with a better one).",
        "Maturity (001 Table 11) is the mean of nine element scores banded at 1/3 and 2/3 (a proposal of the "
        "catalogue, not of the source).",
        "Every decision and its test: docs/decisions.md, docs/decisions_rules.md; the month step by step: "
        "docs/model.md.",
    ]
    return out


def _assumptions_section(doc: _Doc, scenario: Any, arms: dict[str, dict[str, Any]]) -> None:
    doc.add("<h2>What the model assumes</h2><ul>")
    for a in _assumptions(scenario, arms):
        doc.add(f"<li>{a}</li>")
    doc.add("</ul>")


def _summary_display(cmp: Comparison) -> pd.DataFrame:
    t = cmp.table
    f, s = cmp.first, cmp.second
    rows = []
    for m, r in t.iterrows():
        g = float(r["effect_size"])
        no_g = "undefined: no spread within arms" if int(r["n_pairs"]) >= G_MIN_PAIRS else "–"
        rows.append(
            {
                "metric": f"{m} †" if m == "months_to_synergy" else m,
                f: f"{_num(r[f])} [{_ci(r[f + '_ci_low'], r[f + '_ci_high'])}]",
                s: f"{_num(r[s])} [{_ci(r[s + '_ci_low'], r[s + '_ci_high'])}]",
                f"difference {s} − {f}": f"{_num(r['difference'])} [{_ci(r['ci_low'], r['ci_high'])}]",
                "effect size g": _num(g, 2) if math.isfinite(g) else no_g,
                f"P({s} > {f})": _num(r["p_superiority"], 2),
                "pairs": int(r["n_pairs"]),
                "SE paired / unpaired": f"{_num(r['se_paired'], 4)} / {_num(r['se_unpaired'], 4)}",
            }
        )
    return pd.DataFrame(rows)


def _km_display(cmp: Comparison) -> pd.DataFrame:
    s = cmp.km_summary
    f, sec = cmp.first, cmp.second
    rows = []
    for _, r in s.iterrows():
        fmt = _num if r["quantity"] == "median months" else _pct
        rows.append(
            {
                "event": r["event"],
                "quantity": r["quantity"],
                f: f"{fmt(r[f])} [{_ci(r[f + '_ci_low'], r[f + '_ci_high'], fmt)}]",
                sec: f"{fmt(r[sec])} [{_ci(r[sec + '_ci_low'], r[sec + '_ci_high'], fmt)}]",
                f"difference {sec} − {f}": f"{_num(r['difference'])} [{_ci(r['ci_low'], r['ci_high'])}]",
            }
        )
    return pd.DataFrame(rows)


def _attribution_display(cmp: Comparison) -> pd.DataFrame:
    t = cmp.attribution.for_metric(cmp.metric)
    rows = []
    for g, r in t.iterrows():
        ids = cmp.attribution.groups.get(g, [])
        rows.append(
            {
                "rules switched off": g,
                "rows": len(ids),
                "gap without them": _num(r["gap_without"]),
                "part of the gap": f"{_num(r['contribution'])} "
                f"[{_ci(r['contribution_ci_low'], r['contribution_ci_high'])}]",
                "share of the gap": f"{_pct(r['share'])} [{_ci(r['share_ci_low'], r['share_ci_high'], _pct)}]",
            }
        )
    return pd.DataFrame(rows)


def build_comparison_doc(cmp: Comparison) -> _Doc:
    """Render the comparison report in memory."""
    from collabsim.compare import ALL_OFF, NOTHING_OFF  # noqa: PLC0415

    f, s = cmp.first, cmp.second
    doc = _Doc(f"{cmp.scenario.name}: {s} vs {f}")
    doc.add(f"<h1>{_e(_cap(s))} vs {_e(f)}: {_e(cmp.scenario.name)}</h1>")
    doc.add(
        f'<p class="sub">{cmp.replications} paired replicates per arm, common random numbers, '
        f"{cmp.scenario.horizon_months} months, {_e(_organisations(cmp.scenario, cmp.arms))}. "
        f"Differences are {_e(s)} minus {_e(f)}.</p>"
    )
    doc.add("<h2>Findings</h2><ul class='findings'>")
    for line in comparison_findings(cmp):
        doc.add(f"<li>{_e(line)}</li>")
    doc.add(
        "</ul><p class='warn'>These numbers are the consequences of the theory's rules under a calibration to one "
        "stated target, not a fit to data (see <i>What the model assumes</i>): comparisons, not forecasts.</p>"
    )
    doc.figure("key_figure", key_figure(cmp), "summary figure")

    doc.add("<h2>Every summary metric</h2>")
    doc.add(
        f"<p>Each arm: mean over replicates [95% Student-t interval; clipped to [0, 1] for shares and means of "
        f"variables in [0, 1], which cannot leave it]. Difference: mean of the paired differences "
        f"{_e(s)} − {_e(f)} over replicates [95% BCa bootstrap interval, 9,999 resamples of the pairs]. Effect size: "
        "Hedges' g<sub>av</sub> (difference over the mean of the arms' standard deviations); 'undefined' when "
        f"neither arm varies ({_e(NO_SPREAD)}; the difference still says how much the arms differ). "
        f"P({_e(s)} &gt; {_e(f)}): share of paired replicates where {_e(s)} is higher (ties count half). "
        "SE paired / unpaired: the standard error of the difference as run (paired) and as it would be with "
        "independent arms: their ratio is what common random numbers bought.</p>"
    )
    doc.table("comparison", cmp.table, _summary_display(cmp))
    if "months_to_synergy" in cmp.table.index:
        where = (
            "(Kaplan–Meier, in <i>Time to synergy and to dissolution</i> below)"
            if cmp.km is not None
            else "(Kaplan–Meier; not available here: the runs stored no time series)"
        )
        doc.add(
            f"<p class='note'>† {_e(MONTHS_TO_SYNERGY_NOTE)} {where}. Runs counted per arm: "
            "<code>&lt;arm&gt;_n</code> in <code>tables/comparison.csv</code>.</p>"
        )
    doc.figure("differences", plot_differences(cmp), "paired differences")

    if cmp.km is not None:
        doc.add("<h2>Time to synergy and to dissolution</h2>")
        doc.add(
            "<p>Kaplan–Meier estimates over every collaboration formed, by months since it formed; collaborations "
            "still without the event at the end of the run are censored. Dissolution before synergy is a competing "
            "event: those collaborations stay in the risk set until their follow-up would have ended, so the synergy "
            "curve estimates the cumulative incidence (the share that actually got there, not the share that would "
            "have if none dissolved). Bands and intervals: 95%, bootstrap of "
            "whole replicates (1,000 resamples; the collaborations of one run are not independent), paired between "
            "arms.</p>"
        )
        doc.figure("time_to_synergy", plot_event(cmp, "synergy"), "time to synergy")
        doc.figure("time_to_dissolution", plot_event(cmp, "dissolved"), "time to dissolution")
        doc.table("time_to_event", cmp.km_summary, _km_display(cmp), index=False)
        doc.table("km_curves", cmp.km, index=False)

        doc.add("<h2>Trajectories</h2>")
        doc.add(
            "<p>Each run's monthly mean over the running collaborations (dyads for trust and confidence, members "
            "for the others, as the summary metrics), then the median run and the bands holding the middle 50% and "
            "90% of runs. Bands show how different local health economies turn out, not the uncertainty of a mean. "
            "Dissolved collaborations leave the means.</p>"
        )
        doc.figure("trajectories", plot_trajectories(cmp), "trajectories")
        doc.table("trajectories", cmp.trajectories, index=False)

    doc.add("<h2>Maturity</h2>")
    doc.add(
        "<p>Share of running collaborations at each maturity level (pathological, bureaucratic, generative; 001 "
        "Table 11): at the end (mean over runs; intervals in the table above) and month by month.</p>"
    )
    doc.figure("maturity", plot_maturity(cmp), "maturity levels")
    if cmp.maturity is not None:
        doc.table("maturity", cmp.maturity, index=False)

    att = cmp.attribution
    if att is not None:
        doc.add("<h2>Which mechanisms make the arms differ</h2>")
        check = att.check
        same = "yes" if check.get("identical") else "NO (see docs/compare.md)"
        doc.add(
            f"<p>The comparison is re-run on {att.replications} paired replicates with one group of rules switched "
            f"off in both arms at a time (grouped by {_e(att.by)}; {len(att.groups) - 2} groups). "
            f"The part of the gap a group accounts for is gap − gap without it; its share is that over the gap. "
            "Intervals: 95% BCa bootstrap of replicates, all runs of a replicate together. Mechanisms interact, so "
            "the parts need not add up to the gap; the row '(all rules)' switches every rule off at once. "
            f"Check: with nothing switched off the runs reproduce the comparison's runs of the same replicates bit "
            f"for bit: <b>{same}</b> ({check.get('runs_compared', 0)} runs compared).</p>"
        )
        t = att.for_metric(cmp.metric)
        groups = t.drop(index=[NOTHING_OFF, ALL_OFF], errors="ignore")
        doc.add(
            f"<p>Metric: <b>{_e(cmp.metric)}</b>; gap {_e(s)} − {_e(f)} = {_num(t.at[NOTHING_OFF, 'gap'])}; sum of "
            f"the parts of all groups: {_num(groups['contribution'].sum())}; all rules at once: "
            f"{_num(t.at[ALL_OFF, 'contribution']) if ALL_OFF in t.index else '–'}. Every metric: "
            "<code>tables/attribution.csv</code>.</p>"
        )
        doc.figure("attribution", plot_attribution(cmp), "attribution")
        display = _attribution_display(cmp)
        order = [NOTHING_OFF, ALL_OFF, *groups["contribution"].abs().sort_values(ascending=False).index]
        display = display.set_index("rules switched off").loc[[g for g in order if g in t.index]].reset_index()
        doc.table("attribution", att.table, display, index=False)
        groups_csv = pd.DataFrame([{"group": g, "rule_ids": " ".join(ids)} for g, ids in att.groups.items()])
        doc.table("attribution_groups", groups_csv, index=False)

    arms = {a: dict((cmp.scenario.arms or {}).get(a, {})) for a in cmp.arms}
    _assumptions_section(doc, cmp.scenario, arms)
    _method_section(doc, cmp.scenario, cmp.results)
    doc.add(
        "<p class='note'>How every number is computed: docs/compare.md. Figures: <code>figures/</code>; tables "
        "(CSV): <code>tables/</code>. Rebuild this report from the stored runs: <code>collabsim report "
        f"{_e(cmp.path)}</code>.</p>"
    )
    return doc


def write_comparison_report(cmp: Comparison, out: Path) -> Path:
    """Render the comparison report and write it into ``out``; returns the path of report.html."""
    return _write_files(Path(out), build_comparison_doc(cmp))


# ---------------------------------------------------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------------------------------------------------


def _sweep_means(results: SweepResults, metric: str) -> pd.DataFrame:
    s = results.summary
    g = s.groupby(["arm", "point"], observed=True)[metric]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["half"] = 1.96 * out["std"] / np.sqrt(out["count"])
    return out.merge(results.design, on="point")


def plot_heatmaps(results: SweepResults, metric: str) -> Figure:
    """A 2-D grid: the mean of ``metric`` over replicates per cell, one panel per arm (plus second − first)."""
    x_key, y_key = results.parameters[:2]
    means = _sweep_means(results, metric)
    arms = list(results.arms)
    panels: list[tuple[str, pd.DataFrame]] = [(a, means[means["arm"] == a]) for a in arms]
    if len(arms) == 2:
        a0 = means[means["arm"] == arms[0]].set_index("point")
        a1 = means[means["arm"] == arms[1]].set_index("point")
        diff = a1[["mean"]].sub(a0[["mean"]]).join(a0[[x_key, y_key]]).reset_index()
        panels.append((f"{arms[1]} − {arms[0]}", diff))
    fig = _figure(4.2 * len(panels) + 0.8, 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, df) in zip(axes, panels, strict=True):
        grid = df.pivot_table(index=y_key, columns=x_key, values="mean", aggfunc="mean")
        diff_panel = "−" in title
        vmax = np.nanmax(np.abs(grid.to_numpy())) if diff_panel else None
        im = ax.imshow(
            grid.to_numpy(),
            origin="lower",
            aspect="auto",
            cmap="RdBu_r" if diff_panel else "viridis",
            vmin=-vmax if diff_panel else (0 if metric.startswith("share_") else None),
            vmax=vmax if diff_panel else (1 if metric.startswith("share_") else None),
        )
        ax.set_xticks(range(grid.shape[1]), [_short(v) for v in grid.columns], fontsize=7)
        ax.set_yticks(range(grid.shape[0]), [_short(v) for v in grid.index], fontsize=7)
        for (i, j), v in np.ndenumerate(grid.to_numpy()):
            if np.isfinite(v):
                colour = "k" if diff_panel else "white"
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color=colour)
        ax.set_xlabel(x_key, fontsize=8)
        ax.set_ylabel(y_key, fontsize=8)
        ax.set_title(title if title != "base" else metric, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{_label(metric)}: mean over replicates", fontsize=10)
    return fig


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)[:12]


def plot_lines(results: SweepResults, metric: str) -> Figure:
    """A 1-D sweep: the mean of ``metric`` over replicates with a 95% interval, by parameter value and arm."""
    key = results.parameters[0]
    means = _sweep_means(results, metric)
    fig = _figure(6, 3.6)
    ax = fig.add_subplot()
    numeric = pd.api.types.is_numeric_dtype(means[key])
    for i, arm in enumerate(results.arms):
        k = means[means["arm"] == arm].sort_values(key if numeric else "point")
        x = k[key] if numeric else np.arange(len(k))
        ax.errorbar(x, k["mean"], yerr=k["half"], marker="o", capsize=3, label=arm, color=f"C{i}")
        if not numeric:
            ax.set_xticks(np.arange(len(k)), [_short(v) for v in k[key]], fontsize=7)
    ax.set_xlabel(key, fontsize=8)
    ax.set_ylabel(_label(metric), fontsize=8)
    ax.set_title(f"{_label(metric)}: mean over replicates, 95% interval", fontsize=10)
    if len(results.arms) > 1:
        ax.legend(fontsize=8, frameon=False)
    return fig


def build_sweep_doc(results: SweepResults, metrics: Sequence[str] | None = None) -> _Doc:
    """Render the report of a sweep (any design): the main metrics by arm and point; heatmaps over a 2-D grid,
    lines over one parameter."""
    from collabsim.scenario import Scenario  # noqa: PLC0415
    from collabsim.sweeps import MAIN_METRICS  # noqa: PLC0415

    sc = Scenario.from_dict(results.manifest["scenario"])
    metrics = list(metrics or [m for m in MAIN_METRICS if m in results.summary.columns])
    doc = _Doc(f"{sc.name}: sweep")
    design = results.manifest["design"]
    params = results.parameters
    doc.add(f"<h1>Sweep: {_e(sc.name)}</h1>")
    doc.add(
        f'<p class="sub">{len(results.design)} design point(s) ({_e(design.get("design"))}) x {len(results.arms)} '
        f"arm(s) x {results.manifest.get('replications')} replicate(s); {len(results.summary)} of "
        f"{results.n_runs} runs finished.</p>"
    )
    if results.summary.empty:
        doc.add("<p>No finished runs yet.</p>")
    else:
        doc.add("<h2>Findings</h2><ul class='findings'>")
        for m in metrics[:3]:
            means = _sweep_means(results, m)
            best = means.loc[means["mean"].idxmax()] if means["mean"].notna().any() else None
            worst = means.loc[means["mean"].idxmin()] if means["mean"].notna().any() else None
            if best is None:
                continue

            def where(r: pd.Series) -> str:
                vals = ", ".join(f"{k} = {_short(r[k])}" for k in params) or "the only design point"
                return vals + ("" if len(results.arms) == 1 else f", arm {r['arm']}")

            doc.add(
                f"<li>{_e(_cap(_label(m)))} ranged from {_num(worst['mean'])} ({_e(where(worst))}) to "
                f"{_num(best['mean'])} ({_e(where(best))}), means over replicates.</li>"
            )
        doc.add("</ul>")
        doc.add(
            "<p class='warn'>Read these as consequences of the theory's rules under a calibration to one stated target "
            "(docs/calibration.md), not forecasts.</p>"
        )
        numeric_grid = len(params) == 2 and design.get("design") == "grid"
        for m in metrics:
            if numeric_grid:
                doc.add(f"<h2>{_e(_label(m))}</h2>")
                doc.figure(f"heatmap_{m}", plot_heatmaps(results, m), f"heatmap of {m}")
            elif len(params) == 1:
                doc.add(f"<h2>{_e(_label(m))}</h2>")
                doc.figure(f"lines_{m}", plot_lines(results, m), f"{m} by {params[0]}")
        table = results.table(metrics)
        table = table.merge(results.design, on="point")
        doc.add("<h2>Means by arm and design point</h2>")
        doc.add("<p>Mean over replicates and the half-width of a normal 95% interval (±).</p>")
        shown = table.copy()
        for m in metrics:
            shown[m] = [f"{_num(v)} ± {_num(h)}" for v, h in zip(table[m], table[m + " ±"], strict=True)]
            shown = shown.drop(columns=m + " ±")
        doc.table("means", table, shown[["arm", "point", *params, "n", *metrics]].head(200), index=False)
        doc.table("summary", results.summary, index=False)
    arms = results.manifest.get("arms", {})
    _assumptions_section(doc, sc, {a: ov for a, ov in arms.items()} if len(arms) > 1 else {})
    extra = []
    if params:
        extra.append("Swept: " + _e(", ".join(params)) + f" ({_e(design.get('design'))} design).")
    _method_section(doc, sc, results, extra)
    return doc


def write_sweep_report(results: SweepResults, out: Path | None = None) -> Path:
    return _write_files(Path(out) if out is not None else results.path, build_sweep_doc(results))


def build_report(out: str | os.PathLike[str], report_dir: str | os.PathLike[str] | None = None) -> Path:
    """(Re)build the report of the results in ``out``: a comparison report when it holds a comparison (``collabsim
    compare``, or a sweep of two arms at one design point), otherwise a sweep report. Written into ``report_dir``
    (default ``out``); returns the path of report.html."""
    from collabsim.compare import is_comparison_dir, load_comparison  # noqa: PLC0415

    out = Path(out)
    target = Path(report_dir) if report_dir is not None else out
    if is_comparison_dir(out):
        return write_comparison_report(load_comparison(out), target)
    return write_sweep_report(load_results(out), target)
