"""The ``collabsim`` command line.

    collabsim run [SCENARIO] [--seed N] [--set key=value ...] [--out DIR] [--quiet]
    collabsim sweep SCENARIO [--executor serial|process|dask] [--workers N] [--scheduler ADDRESS] [--out DIR]
                             [--resume] [--set key=value ...] [--batch-size N] [--threads N] [--no-timeseries]
                             [--quiet]
    collabsim sensitivity SCENARIO [--method morris|sobol] [--parameters FACTOR ...] [--samples N] [--replications N]
                                   [--out DIR] [--workers N] [--set key=value ...]
    collabsim compare SCENARIO [SCENARIO_B] [--out DIR] [--replications N] [--workers N] [--attribute] ...
    collabsim report OUT
    collabsim rules [--format table|json]
    collabsim validate [--rules] [--patterns] [--out DIR] [--replications N] [--workers N] [--quiet]
    collabsim scenario check FILE [--set key=value ...]
    collabsim scenario show FILE [--set key=value ...]
    collabsim scenario describe [--format table|markdown]

Bad input (a scenario file, a ``--set`` override, an option) prints one line ``collabsim: error: ...`` on stderr and
exits with status 2, never a traceback. Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from collabsim.errors import CollabsimInputError
from collabsim.scenario import (
    Scenario,
    builtin_scenario_names,
    builtin_scenario_path,
    format_schema,
    load_scenario,
    parse_set_option,
)

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

OUTPUT_FILES = ("summary.json", "timeseries.parquet", "organisations.parquet", "manifest.json")


# ---------------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------------


def _seed(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 2**63 - 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: an integer from 0 to {2**63 - 1}")
    return value


def _load(scenario: str | None, sets: Sequence[str] | None) -> Scenario:
    path = scenario if scenario is not None else builtin_scenario_path("baseline")
    result = load_scenario(path)
    overrides: dict[str, Any] = {}
    for text in sets or ():
        key, value = parse_set_option(text)
        overrides[key] = value
    if overrides:
        result = result.with_overrides(overrides, source="--set")
    return result


def _fmt_number(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "nan"
    return f"{number:.4g}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], last_free: bool = True) -> str:
    """An aligned plain-text table; the last column is not padded (it may be long)."""
    n = len(headers) - (1 if last_free else 0)
    widths = [max([len(headers[i])] + [len(r[i]) for r in rows]) for i in range(n)]
    lines = []
    for row in [list(headers), ["-" * len(h) for h in headers], *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:n], widths, strict=False)] + [str(c) for c in row[n:]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays unwrapped, non-finite floats as null, paths as strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _jsonable(value.tolist())
    if hasattr(value, "item") and not isinstance(value, (str, bytes, int, float, bool)):
        try:
            return _jsonable(value.item())
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CollabsimInputError(
            "--out", None, str(out), "a directory (new or existing)", problem=f"{out} exists and is not a directory"
        )
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise CollabsimInputError("--out", None, str(out), problem=f"cannot write under {parent}: permission denied")


def _write_outputs(result: Any, out: Path) -> None:
    """Write the four output files into ``out`` atomically (via a temporary directory beside it)."""
    out = out.expanduser()
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    except OSError as exc:
        raise CollabsimInputError("--out", None, str(out), problem=f"cannot write: {exc.strerror or exc}") from None
    try:
        with open(tmp / "summary.json", "w", encoding="utf-8") as fh:
            json.dump(_jsonable(dict(result.summary)), fh, indent=2, sort_keys=True, allow_nan=False)
            fh.write("\n")
        result.timeseries.to_parquet(tmp / "timeseries.parquet")
        result.organisations.to_parquet(tmp / "organisations.parquet")
        with open(tmp / "manifest.json", "w", encoding="utf-8") as fh:
            json.dump(_jsonable(dict(result.manifest)), fh, indent=2, sort_keys=True, allow_nan=False)
            fh.write("\n")
        if not out.exists():
            os.chmod(tmp, 0o777 & ~_umask())
            os.replace(tmp, out)  # one atomic rename: the directory appears complete or not at all
        else:
            for name in OUTPUT_FILES:  # each file replaced atomically; the manifest last marks completion
                os.replace(tmp / name, out / name)
            tmp.rmdir()
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CollabsimInputError("--out", None, str(out), problem=f"cannot write: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    scenario = _load(args.scenario, args.set)
    seed = args.seed if args.seed is not None else scenario.seed
    out = Path(args.out) if args.out is not None else None
    if out is not None:
        _check_out_dir(out)
    from collabsim.api import simulate  # noqa: PLC0415 - numba loads only when a command needs it
    from collabsim.recorder import METRIC_DESCRIPTIONS  # noqa: PLC0415

    result = simulate(scenario, seed=seed)
    if out is not None:
        _write_outputs(result, out)
    if not args.quiet:
        descriptions = METRIC_DESCRIPTIONS
        print(
            f"scenario {scenario.name} (content hash {scenario.content_hash()[:12]}), seed {seed}, "
            f"{scenario.horizon_months} months, {scenario.population.n_orgs} organisations"
        )
        rows = [[str(k), _fmt_number(v), descriptions.get(str(k), "")] for k, v in dict(result.summary).items()]
        sys.stdout.write(_table(["metric", "value", "description"], rows))
        if out is not None:
            print(f"results written to {out}")
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: an integer >= 1")
    return value


def _cmd_sweep(args: argparse.Namespace) -> int:
    scenario = _load(args.scenario, args.set)
    out = Path(args.out) if args.out is not None else Path("out") / scenario.name
    _check_out_dir(out)
    executor = args.executor or ("dask" if args.scheduler else "process")
    from concurrent.futures.process import BrokenProcessPool  # noqa: PLC0415

    from collabsim.io import load_results  # noqa: PLC0415 - pandas, numba load only when a command needs them
    from collabsim.sweeps import RunFailed, format_table, sweep  # noqa: PLC0415

    try:
        results = sweep(
            scenario,
            executor=executor,
            out=out,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            batch_size=args.batch_size,
            timeseries=not args.no_timeseries,
            threads=args.threads,
            progress=not args.quiet,
            log=None if args.quiet else sys.stderr,
        )
    except KeyboardInterrupt:
        try:
            done = f"{len(load_results(out).summary)} runs"
        except Exception:  # noqa: BLE001 - nothing stored yet
            done = "the runs that finished"
        print(
            f"collabsim: interrupted: {done} finished and saved in {out}; run the same command again to finish",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenProcessPool:
        print(
            f"collabsim: error: a worker process died (out of memory?); the runs that finished are saved in {out}; "
            "run the same command again to finish",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except RunFailed as exc:
        print(f"collabsim: error: {exc}; the runs that finished are saved in {out}", file=sys.stderr)
        if os.environ.get("COLLABSIM_DEBUG"):
            print(exc.trace, file=sys.stderr)
        else:
            print("collabsim: set COLLABSIM_DEBUG=1 for the run's traceback", file=sys.stderr)
        return EXIT_FAILURE
    if not args.quiet:
        sys.stdout.write(format_table(results))
        print(f"{len(results.summary)} of {results.n_runs} runs; results in {out} (collabsim.load_results)")
    return EXIT_OK


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    scenario = _load(args.scenario, args.set)
    from collabsim import sensitivity  # noqa: PLC0415 - SALib, numba load only when a command needs them

    try:
        return sensitivity.run_command(args, scenario)
    except KeyboardInterrupt:
        print("collabsim: interrupted: finished runs are saved; run the same command again to finish", file=sys.stderr)
        return EXIT_INTERRUPTED


def _cmd_compare(args: argparse.Namespace) -> int:
    first = _load(args.scenario, args.set)
    second = _load(args.other, args.set) if args.other is not None else None
    name = first.name if second is None else f"{first.name}_vs_{second.name}"
    out = Path(args.out) if args.out is not None else Path("out") / name
    _check_out_dir(out)
    arms = [a.strip() for a in args.arms.split(",")] if args.arms else None
    from concurrent.futures.process import BrokenProcessPool  # noqa: PLC0415

    from collabsim.compare import compare  # noqa: PLC0415 - pandas, numba, matplotlib load only when needed
    from collabsim.report import comparison_findings  # noqa: PLC0415
    from collabsim.sweeps import RunFailed  # noqa: PLC0415

    try:
        cmp = compare(
            first,
            second,
            replications=args.replications,
            workers=args.workers,
            executor=args.executor or ("dask" if args.scheduler else "process"),
            scheduler=args.scheduler,
            out=out,
            arms=arms,
            attribute=args.attribute,
            attribute_by=args.attribute_by,
            attribute_replications=args.attribute_replications,
            metric=args.metric,
            progress=not args.quiet,
        )
        if not args.quiet:
            print(f"compare: writing {out / 'report.html'} (figures/, tables/)", file=sys.stderr)
        report = cmp.write_report(out)
    except KeyboardInterrupt:
        print(
            f"collabsim: interrupted: the runs that finished are saved in {out}; run the same command again to finish",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (BrokenProcessPool, RunFailed) as exc:
        what = "a worker process died (out of memory?)" if isinstance(exc, BrokenProcessPool) else str(exc)
        print(f"collabsim: error: {what}; the runs that finished are saved in {out}", file=sys.stderr)
        return EXIT_FAILURE
    if not args.quiet:
        print(f"\n{cmp.second} vs {cmp.first} ({cmp.replications} paired replicates):")
        for line in comparison_findings(cmp):
            print(f"- {line}")
        print(f"report: {report} (tables/ and figures/ beside it; rebuild with: collabsim report {out})")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from collabsim.report import build_report  # noqa: PLC0415

    out = Path(args.out)
    if not (out / "manifest.json").is_file():
        raise CollabsimInputError(
            str(out), problem="holds no sweep (no manifest.json); give the directory of collabsim compare or sweep"
        )
    report = build_report(out)
    if not args.quiet:
        print(f"report: {report}")
    return EXIT_OK


def _rule_as_dict(row: Any) -> dict[str, Any]:
    fields = ("id", "cmoc", "source", "link", "context", "mechanism", "sign", "weight", "prior_weight", "stages")
    data = {name: getattr(row, name, None) for name in fields}
    for name in ("context", "stages"):
        value = data[name]
        if isinstance(value, str):
            data[name] = [value]
        elif value is not None:
            data[name] = list(value)
    return _jsonable(data)


def _causal_web_dot(rows: list[dict[str, Any]]) -> str:
    """The causal web drawn from the rule table: an edge from every context variable of a row to the variable it
    moves, green when the row raises it and red when it lowers it, labelled with the row ids (edges merged)."""
    edges: dict[tuple[str, str, int], list[str]] = {}
    for r in rows:
        if r["weight"] <= 0:
            continue
        for term in r["context"]:
            source = term.removeprefix("not ")
            sign = r["sign"] * (-1 if term.startswith("not ") else 1)  # d(mechanism)/d(source)
            edges.setdefault((source, r["mechanism"], sign), []).append(r["id"])
    lines = ["digraph collabsim {", "  rankdir=LR; node [shape=box, fontsize=10]; edge [fontsize=7];"]
    for (source, target, sign), ids in sorted(edges.items()):
        colour = "darkgreen" if sign > 0 else "firebrick"
        label = "\\n".join(ids[:3]) + (f"\\n+{len(ids) - 3} more" if len(ids) > 3 else "")
        lines.append(f'  "{source}" -> "{target}" [color={colour}, tooltip="{", ".join(ids)}", label="{label}"];')
    return "\n".join([*lines, "}"]) + "\n"


def _cmd_bench(args: argparse.Namespace) -> int:
    from collabsim.bench import run  # noqa: PLC0415

    return run(args)


def _cmd_rules(args: argparse.Namespace) -> int:
    from collabsim.rules import STAGES, load_rule_table  # noqa: PLC0415

    rows = [_rule_as_dict(r) for r in load_rule_table().rows]
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return EXIT_OK
    if args.format == "dot":
        sys.stdout.write(_causal_web_dot(rows))
        return EXIT_OK
    table = [
        [
            r["id"],
            r["source"],
            r["mechanism"],
            f"{r['sign']:+d}",
            _fmt_number(r["weight"]),
            _fmt_number(r["prior_weight"]),
            "all" if r["stages"] == list(STAGES) else ",".join(r["stages"]),
            " * ".join(r["context"]),
        ]
        for r in rows
    ]
    sys.stdout.write(_table(["id", "source", "mechanism", "sign", "weight", "prior", "stages", "context"], table))
    print(
        f"{len(rows)} rules; weight = the calibrated monthly weight runs use, prior = the strength class written in "
        "rules.yaml (docs/calibration.md); `--format json` adds the catalogue id and link of each"
    )
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from collabsim.validation import RULE_COLUMNS, rules_table_rows, validate  # noqa: PLC0415

    both = not (args.rules or args.patterns)
    _check_out_dir(Path(args.out or "out/validation"))  # before minutes of runs, not after
    if args.replications is not None and args.replications < 2:
        raise CollabsimInputError(
            "--replications", None, args.replications, "an integer >= 2 (an interval needs two paired replicates)"
        )
    report = validate(
        rules=args.rules or both,
        patterns=args.patterns or both,
        replications=args.replications,
        workers=args.workers or 1,
        progress=not args.quiet,
    )
    path = report.write(args.out or "out/validation")
    if not args.quiet:
        if report.local:
            rows = rules_table_rows(report.table, report.local, report.chain)
            keep = [0, 2, 5, 3, 6]  # rule id, local sign ok, chain sign ok, effect sizes
            sys.stdout.write(_table([RULE_COLUMNS[i] for i in keep], [[r[i] for i in keep] for r in rows]))
        for pr in report.patterns or []:
            s = ", ".join(f"{x.label} {x.estimate:+.4f} [{x.lo:+.4f}, {x.hi:+.4f}]" for x in pr.stats)
            print(f"{'PASS' if pr.passed else 'FAIL'} {pr.pattern.name} ({pr.pattern.role}): {s}")
        if report.calibration is not None:
            k = report.calibration
            print(
                f"calibration target {k['target'].id} (fitted, not a check): {k['value']:g} "
                f"(target {k['target'].value:g}, band {k['target'].band[0]:g}-{k['target'].band[1]:g})"
            )
        c = report.counts()
        print(
            ", ".join(f"{k} {v}" for k, v in c.items())
            + f"; {'PASS' if report.passed else 'FAIL'} in {report.seconds:.0f} s; report: {path}"
        )
    return EXIT_OK if report.passed else EXIT_FAILURE


def _cmd_scenario_check(args: argparse.Namespace) -> int:
    scenario = _load(args.file, args.set)
    print(
        f"{args.file}: OK: scenario {scenario.name}, {scenario.horizon_months} months, "
        f"{scenario.population.n_orgs} organisations, {scenario.partnering.regime} {scenario.partnering.type}; "
        f"content hash {scenario.content_hash()[:16]}"
    )
    return EXIT_OK


def _cmd_scenario_show(args: argparse.Namespace) -> int:
    import yaml  # noqa: PLC0415

    scenario = _load(args.file, args.set)
    sys.stdout.write(f"# {args.file}, resolved (every default filled in); content hash {scenario.content_hash()}\n")
    sys.stdout.write(yaml.safe_dump(scenario.resolved_dict(), sort_keys=False, allow_unicode=True, width=120))
    return EXIT_OK


def _cmd_scenario_describe(args: argparse.Namespace) -> int:
    sys.stdout.write(format_schema(fmt=args.format))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------------------------------


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        return version("collabsim")
    except (ImportError, PackageNotFoundError):
        return "unknown (not installed)"


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="override a scenario key, e.g. --set population.n_orgs=40 (value read as YAML; repeatable)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse with collabsim's one-line errors (exit status 2), the same for every subcommand."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"collabsim: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``collabsim`` command."""
    parser = _Parser(
        prog="collabsim",
        description="Agent-based model of inter-organisational collaboration in health care.",
    )
    parser.add_argument("--version", action="version", version=f"collabsim {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run one scenario and print its summary metrics")
    run.add_argument(
        "scenario",
        nargs="?",
        metavar="SCENARIO",
        help="scenario file, or a built-in scenario name (default: baseline). Built-in: "
        + ", ".join(builtin_scenario_names()),
    )
    run.add_argument("--seed", type=_seed, help="random seed (default: the scenario's seed)")
    _add_set(run)
    run.add_argument("--out", metavar="DIR", help="write summary.json, timeseries/organisations.parquet, manifest.json")
    run.add_argument("--quiet", action="store_true", help="print nothing on success")
    run.set_defaults(handler=_cmd_run)

    sweep = commands.add_parser(
        "sweep",
        help="run a scenario's sweep (design x arms x replications) into a results directory",
        description="Run every run of the scenario's sweep: block (grid, lhs, sobol or morris design), its arms and "
        "replications, and store the results in OUT (summary.parquet, timeseries/, manifest.json). Running again "
        "into the same OUT resumes: finished runs are skipped. See docs/sweeps.md.",
    )
    sweep.add_argument("scenario", metavar="SCENARIO", help="scenario file, or a built-in scenario name")
    sweep.add_argument(
        "--executor",
        choices=("serial", "process", "dask"),
        help="serial (in this process), process (a local process pool; the default) or dask (dask.distributed)",
    )
    sweep.add_argument(
        "--workers", type=_positive_int, metavar="N", help="worker processes (default: the CPUs available)"
    )
    sweep.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (implies --executor dask; without it, dask starts "
        "a local cluster on 127.0.0.1)",
    )
    sweep.add_argument("--out", metavar="DIR", help="results directory (default: out/<scenario name>)")
    sweep.add_argument("--resume", action="store_true", help="require OUT to hold this sweep already, and finish it")
    _add_set(sweep)
    sweep.add_argument(
        "--batch-size", type=_positive_int, metavar="N", help="runs per task (default: from the runs and workers)"
    )
    sweep.add_argument("--no-timeseries", action="store_true", help="store only the summary of each run")
    sweep.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        metavar="N",
        help="numba threads per run (default 1; more helps only a few large runs; results do not change)",
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar and no closing table")
    sweep.set_defaults(handler=_cmd_sweep)

    sens = commands.add_parser(
        "sensitivity",
        help="global sensitivity analysis (SALib morris or sobol) of the main metrics to rule weights and parameters",
        description="Rank rule-weight groups and scenario parameters by their influence on share_synergy, "
        "task_achievement and, with two arms, their gap: a morris or sobol sweep (resumable) analysed with SALib. "
        "Writes OUT/sensitivity.csv and OUT/sensitivity.png. See docs/sensitivity.md.",
    )
    sens.add_argument("scenario", metavar="SCENARIO", help="scenario file, or a built-in scenario name")
    _add_set(sens)
    from collabsim.sensitivity import add_arguments as sensitivity_arguments  # noqa: PLC0415 - argparse only

    sensitivity_arguments(sens)
    sens.set_defaults(handler=_cmd_sensitivity)
    compare = commands.add_parser(
        "compare",
        help="compare two arms (paired, common random numbers) and write a report",
        description="Run the two arms of SCENARIO (its arms: block), or the two scenario files SCENARIO and "
        "SCENARIO_B, on the same random numbers; report every summary metric (means, paired differences with "
        "bootstrap CIs, effect sizes), time to synergy and dissolution, trajectories and maturity, and optionally "
        "which mechanisms make the arms differ (--attribute). Writes OUT/report.html, OUT/figures/, OUT/tables/ "
        "beside the runs (a resumable sweep directory). See docs/compare.md.",
    )
    compare.add_argument("scenario", metavar="SCENARIO", help="scenario file with two arms, or a built-in name")
    compare.add_argument(
        "other", nargs="?", metavar="SCENARIO_B", help="a second scenario: compare SCENARIO_B against SCENARIO"
    )
    compare.add_argument("--out", metavar="DIR", help="results and report directory (default: out/<scenario name>)")
    compare.add_argument(
        "--replications", type=_positive_int, metavar="N", help="paired replicates (default: sweep.replications or 100)"
    )
    compare.add_argument(
        "--workers", type=_positive_int, metavar="N", help="worker processes (default: the CPUs available)"
    )
    compare.add_argument("--executor", choices=("serial", "process", "dask"), help="as for collabsim sweep")
    compare.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (implies --executor dask)")
    compare.add_argument("--arms", metavar="A,B", help="the two arms to compare when the scenario has more")
    compare.add_argument(
        "--attribute", action="store_true", help="also attribute the gap to mechanisms (re-runs with rules off)"
    )
    compare.add_argument(
        "--attribute-by",
        choices=("mechanism", "cmoc", "rule"),
        default="mechanism",
        help="switch rules off grouped by the variable they move (default), by CMOC, or one rule at a time",
    )
    compare.add_argument(
        "--attribute-replications",
        type=_positive_int,
        metavar="N",
        help="replicates of the attribution (default: min(50, --replications))",
    )
    compare.add_argument(
        "--metric", default="share_synergy", help="headline metric of the findings and the attribution figure"
    )
    _add_set(compare)
    compare.add_argument("--quiet", action="store_true", help="no progress bars and no findings")
    compare.set_defaults(handler=_cmd_compare)

    report = commands.add_parser(
        "report",
        help="(re)build OUT/report.html from a comparison's or a sweep's results",
        description="Rebuild report.html, figures/ and tables/ in OUT from the runs stored there: a comparison "
        "report for `collabsim compare` output (or a sweep of two arms at one point), otherwise a sweep report "
        "(heatmaps over a 2-D grid, lines over one parameter).",
    )
    report.add_argument("out", metavar="OUT", help="a directory written by collabsim compare or collabsim sweep")
    report.add_argument("--quiet", action="store_true", help="print nothing on success")
    report.set_defaults(handler=_cmd_report)

    bench = commands.add_parser("bench", help="benchmark the engine against the reference (never asserts times)")
    from collabsim.bench import build_parser as bench_parser  # noqa: PLC0415 - argparse only, no numba

    bench_parser(bench)
    bench.set_defaults(handler=_cmd_bench)

    rules = commands.add_parser("rules", help="print the rule table (the theory as data)")
    rules.add_argument(
        "--format",
        choices=("table", "json", "dot"),
        default="table",
        help="table (default), json, or dot: the causal web as a Graphviz graph (pipe it to `dot -Tsvg`)",
    )
    rules.set_defaults(handler=_cmd_rules)

    validate = commands.add_parser(
        "validate",
        help="check the model against the theory: every rule's sign, and the patterns of 001 (docs/validation.md)",
        description="Rule conformance (--rules: each rule's local sign and whole-run chain sign) and pattern-oriented "
        "validation (--patterns); both when neither is given. Writes OUT/validation.md and CSV tables. Exit status 0 "
        "when every check passes, 1 when one fails.",
    )
    validate.add_argument("--rules", action="store_true", help="only the per-rule conformance checks")
    validate.add_argument("--patterns", action="store_true", help="only the pattern checks")
    validate.add_argument("--out", metavar="DIR", help="report directory (default: out/validation)")
    validate.add_argument(
        "--replications",
        type=_positive_int,
        metavar="N",
        help="replicates per pattern arm (default: each pattern's; fewer weaken a check: "
        "bimodal_outcomes needs its 100)",
    )
    validate.add_argument("--workers", type=_positive_int, metavar="N", help="worker processes (default 1)")
    validate.add_argument("--quiet", action="store_true", help="no progress bar and no tables")
    validate.set_defaults(handler=_cmd_validate)

    scenario = commands.add_parser("scenario", help="check, show or describe scenarios")
    sub = scenario.add_subparsers(dest="scenario_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser("check", help="validate a scenario file")
    check.add_argument("file", metavar="FILE", help="scenario file or built-in scenario name")
    _add_set(check)
    check.set_defaults(handler=_cmd_scenario_check)
    show = sub.add_parser("show", help="print a scenario with extends resolved and every default filled in")
    show.add_argument("file", metavar="FILE", help="scenario file or built-in scenario name")
    _add_set(show)
    show.set_defaults(handler=_cmd_scenario_show)
    describe = sub.add_parser("describe", help="document every scenario key")
    describe.add_argument("--format", choices=("table", "markdown"), default="table")
    describe.set_defaults(handler=_cmd_scenario_describe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 bad input, 130 interrupted)."""
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse: --help, --version, usage errors (status 2)
            code = exc.code
            return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
        return args.handler(args)
    except CollabsimInputError as exc:
        print(f"collabsim: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("collabsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into e.g. `head`, which stopped reading: not an error.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("COLLABSIM_DEBUG"):
            raise
        print(
            f"collabsim: internal error: {type(exc).__name__}: {exc} (set COLLABSIM_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
