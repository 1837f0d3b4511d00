"""Write the ``chain:`` block of every row of src/collabsim/data/rules.yaml (docs/rule_format.md).

    python tools/chain_notes.py targets        # outcome and sign of every row, from the catalogue
    python tools/chain_notes.py check          # run the chain check and print what differs from the table
    python tools/chain_notes.py notes FILE     # apply shown/reason from FILE (yaml: {row id: null | reason |
                                               #   {reason: ..., contradicted: true}})

``targets`` derives each row's whole-run claim from theory/cmoc_catalogue.yaml: model and outcome rows claim their
own variable in their own sign; a mechanism row claims the first catalogue outcome that is a model state variable
(other than the variable the row moves), in the catalogue's stated sign (pole x sign_mechanism x sign_outcome); a
direct-form row claims the outcome it moves. ``notes`` sets ``shown: false`` and the reason for the rows named (the
reasons are written by a person after reading ``check``: never generated silently).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "src" / "collabsim" / "data" / "rules.yaml"
CATALOGUE = ROOT / "theory" / "cmoc_catalogue.yaml"
sys.path.insert(0, str(ROOT / "src"))

from collabsim.variables import VARIABLES  # noqa: E402

POLE = {"high": 1, "low": -1}
ALIAS = {
    "organisational_culture_productivity": ("organisational_culture", 1),
    "collaborative_inertia": ("collaborative_behaviour", -1),
}


def model_outcome(name: str):
    if name in ALIAS:
        return ALIAS[name]
    v = VARIABLES.get(name)
    if v is not None and v.kind in ("state", "initial"):
        return name, 1
    return None


def target(row: dict, cat: dict) -> dict:
    if row["link"] in ("model", "outcome"):
        return {"outcome": row["mechanism"], "sign": int(row["sign"])}
    c = cat[row["cmoc"]]
    if c["rule_form"] == "direct":
        return {"outcome": row["mechanism"], "sign": int(row["sign"])}
    effect = POLE[c["context_pole"]] * c["sign_mechanism"]
    found = [(model_outcome(o), s) for o, s in zip(c["outcome"], c["sign_outcome"], strict=True)]
    found = [(m, s) for m, s in found if m is not None]
    # prefer an outcome down the chain; else the row moves the catalogue outcome itself (a proxy mechanism)
    for (name, flip), s in sorted(found, key=lambda f: f[0][0] == row["mechanism"]):
        return {"outcome": name, "sign": effect * s * flip}
    return {
        "outcome": None,
        "shown": False,
        "reason": f"no whole-run outcome: the catalogue outcome{'s' if len(c['outcome']) > 1 else ''} "
        f"{', '.join(c['outcome'])} {'are' if len(c['outcome']) > 1 else 'is'} not a model state variable"
        "",
    }


def flow(d: dict) -> str:
    parts = []
    for k, v in d.items():
        if v is None:
            parts.append(f"{k}: null")
        elif isinstance(v, bool):
            parts.append(f"{k}: {'true' if v else 'false'}")
        elif isinstance(v, int):
            parts.append(f"{k}: {v:+d}")
        else:
            parts.append(f"{k}: {json.dumps(v, ensure_ascii=False)}")
    return "{" + ", ".join(parts) + "}"


def rewrite(blocks: dict[str, dict]) -> None:
    """Replace or add the ``  chain:`` line of each row in ``blocks`` (text edit: comments and layout kept)."""
    lines = RULES.read_text(encoding="utf-8").splitlines()
    out, rid = [], None

    def flush():
        if rid is not None and rid in blocks:
            out.append(f"  chain: {flow(blocks[rid])}")

    for line in lines:
        m = re.match(r"- id: (\S+)", line)
        if m or (rid is not None and not line.startswith("  ")):
            flush()
            rid = m.group(1) if m else None
        if line.startswith("  chain:"):
            continue
        out.append(line)
    flush()
    RULES.write_text("\n".join(out) + "\n", encoding="utf-8")


def main() -> None:
    cmd = sys.argv[1]
    rows = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    cat = {c["id"]: c for c in yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))["cmocs"]}
    if cmd == "targets":
        rewrite({r["id"]: target(r, cat) for r in rows})  # every claim from the catalogue; notes come after
    elif cmd == "check":
        from collabsim.validation import chain_checks  # noqa: PLC0415

        for rid, c in chain_checks(workers=int(sys.argv[2]) if len(sys.argv) > 2 else 1, progress=True).items():
            flag = "OK " if c.ok else "BAD"
            print(
                f"{flag} {rid:60s} {c.scenario:9s} {c.outcome!s:30s} {c.sign:+d} eff {c.effect:+.5f} "
                f"[{c.lo:+.5f}, {c.hi:+.5f}] mech {c.mechanism_effect:+.5f} shown={c.shown} "
                f"contra={c.contradicted} declared={c.declared_shown}"
            )
    elif cmd == "notes":
        notes = yaml.safe_load(Path(sys.argv[2]).read_text(encoding="utf-8"))
        blocks = {}
        for r in rows:
            t = target(r, cat)
            old = r.get("chain", {})
            if t["outcome"] is not None and r["id"] in notes:
                note = notes[r["id"]]  # null: shown; a reason; or {reason: ..., contradicted: true}
                note = note if isinstance(note, dict) or note is None else {"reason": note}
                t = {**t, "shown": False, **note} if note else t
            elif t["outcome"] is not None and old.get("shown") is False:
                t = {**t, "shown": False, "reason": old["reason"]}
                if old.get("contradicted"):
                    t["contradicted"] = True
            blocks[r["id"]] = t
        rewrite(blocks)


if __name__ == "__main__":
    main()
