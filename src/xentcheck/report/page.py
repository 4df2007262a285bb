"""The HTML report: one self-contained page (CSS, JS and data inline, no other request).

:func:`page_data` turns merged rows into the compact JSON the page draws from (columnar,
with value tables; drill-down details only for rows that are not a plain pass; each case
file's text once). :func:`render_page` embeds it in ``templates/report.html`` as
``<script type="application/json">`` with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, so
no case text or framework message can close the script element or run as markup.

The page opens on the run's findings (:func:`findings_of`, from
:func:`xentcheck.findings.build`): :func:`findings_data` keeps each finding's text fields and
turns its ``row_keys`` into positions of the page's rows, so a finding links into the
matrix, the results list and the drill-down.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from xentcheck import __version__
from xentcheck.findings.group import short_float, shown_ulp, zero_golden
from xentcheck.known import predicate_errors
from xentcheck.report import sources
from xentcheck.report.model import (
    DETAILED,
    DISCREPANT,
    SEVERITY,
    Column,
    Merged,
    changes,
    status_counts,
)

Row = dict[str, Any]

_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


def script_json(data: Any) -> str:
    """JSON safe to place inside ``<script type="application/json">``."""
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN/Infinity float somewhere: write it as the strings rows use
        text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], text)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _template(name: str) -> str:
    return resources.files("xentcheck.report").joinpath("templates", name).read_text("utf-8")


#: page data larger than this (JSON bytes) is embedded gzip-compressed
COMPRESS_ABOVE = 2_000_000


def gzip_base64(text: str) -> str:
    """``text`` (JSON from :func:`script_json`) gzip-compressed and base64-encoded, for a
    ``data-encoding="gzip-base64"`` block: the page unpacks it with the browser's
    ``DecompressionStream``, so a 100,000-row run or thousands of reproduction scripts
    stay a few megabytes."""
    return base64.b64encode(gzip.compress(text.encode("utf-8"), 6, mtime=0)).decode()


def render_page(data: dict[str, Any]) -> str:
    """The complete HTML page for ``data`` (from :func:`page_data`).

    The reproduction scripts (``data["repro"]``, most of the weight) always travel in a
    block of their own, compressed; the rest is compressed when it exceeds
    :data:`COMPRESS_ABOVE` bytes.
    """
    data = dict(data)
    repro = data.pop("repro", None)
    main, enc = script_json(data), "json"
    if len(main) > COMPRESS_ABOVE:
        main, enc = gzip_base64(main), "gzip-base64"
    fills = {
        "/*CSS*/": _template("report.css"),
        "/*JS*/": _template("report.js"),
        "/*DATA*/": main,
        "/*DATA_ENCODING*/": enc,
        "/*REPRO*/": gzip_base64(script_json(repro)),
        "/*REPRO_ENCODING*/": "gzip-base64",
    }
    # one pass, so no filled-in text is ever searched for another marker
    return re.sub(
        r"/\*(CSS|JS|DATA|DATA_ENCODING|REPRO|REPRO_ENCODING)\*/",
        lambda m: fills[m.group()],
        _template("report.html"),
    )


def _run_info(header: Row, file: str, source: Any = None) -> dict[str, Any]:
    """A source file's line of the Sources table (and what a drill-down names): its run
    header's machine and suite, each framework's label, versions and devices, and, from
    the merge (``source``: a :class:`xentcheck.harness.merge.Source`), its shard, its run
    and its rows."""
    keep = ("time", "host", "cpu", "platform", "python", "xentcheck_version", "cases_digest")
    info: dict[str, Any] = {k: header.get(k) for k in keep if header.get(k) is not None}
    info["file"] = file
    frameworks = {}
    for fw, v in (header.get("frameworks") or {}).items():
        if isinstance(v, dict):
            frameworks[fw] = {k: v.get(k) for k in ("versions", "devices", "skipped", "variant")
                              if v.get(k)}  # fmt: skip
    info["frameworks"] = frameworks
    if header.get("tags"):
        info["tags"] = [str(t) for t in header["tags"]]
    if source is not None:
        info.update(rows=source.rows, run=source.run, shard=str(source.shard or ""))
    return info


def display_paths(files: Sequence[str]) -> list[str]:
    """How the page names each source file: its name, or, where two files share a name
    (the same tox environment's file from several shards), its path below the folder
    that holds them all."""
    names = [Path(f).name for f in files]
    if len(set(names)) == len(names):
        return names
    resolved = [Path(f).resolve() for f in files]
    try:
        root = Path(os.path.commonpath([p.parent for p in resolved]))
    except ValueError:  # on different drives
        return [str(p) for p in resolved]
    return [p.relative_to(root).as_posix() for p in resolved]


def _run_groups(merged: Merged) -> list[dict[str, Any]]:
    """The runs of the merge: their files (positions in ``runs``), shard count and the
    shards present and missing (one unsharded file each, otherwise)."""
    combined = merged.combined
    if combined is None:
        return [
            {"files": [j], "count": None, "shards": [], "missing": []}
            for j in range(len(merged.headers))
        ]
    return [{"files": r.sources, "count": r.count, "shards": r.shards, "missing": r.missing}
            for r in combined.runs]  # fmt: skip


def upgrades_data(findings: Sequence[Row], headers: Sequence[Row]) -> list[dict[str, Any]]:
    """What each upgrade changed (:func:`xentcheck.findings.versions.upgrades`), with
    findings as positions in ``findings`` (the page's list)."""
    from xentcheck.findings.versions import upgrades

    at = {id(f): n for n, f in enumerate(findings)}
    out = []
    for u in upgrades(findings, headers):
        out.append({
            "fw": u["framework"], "from": u["from"], "to": u["to"],
            "fromV": u["from_versions"], "toV": u["to_versions"],
            "new": [at[id(f)] for f in u["new"] if id(f) in at],
            "fixed": [at[id(f)] for f in u["fixed"] if id(f) in at],
            "changed": [[at[id(f)], list((f.get("upgrade") or {}).get("changes") or [])]
                        for f in u["changed"] if id(f) in at],
            "unchanged": u["unchanged"], "notCompared": u["not_compared"],
        })  # fmt: skip
    return out


def _not_reproduced(headers: list[Row], rows: list[Row]) -> list[dict[str, Any]] | None:
    """Documented differences the run did not hit, when the known registry can say."""
    try:
        from xentcheck.known import not_reproduced
    except ImportError:
        return None
    try:
        found = [
            {**k, "label": label} if label else k
            for label, (hs, rs) in _per_label(headers, rows).items()
            for k in not_reproduced(hs, rs)
        ]
    except Exception as exc:  # the report must not fail on a helper's bug
        print(f"xentcheck: warning: known.not_reproduced failed: {exc}", file=sys.stderr)
        return None
    out = []
    for k in found or []:
        d = k if isinstance(k, dict) else getattr(k, "__dict__", {})
        apis = d.get("apis", [])
        out.append(
            {
                "id": str(d.get("id", "")),
                "framework": str(d.get("label") or d.get("framework", "")),
                "apis": [str(a) for a in apis] if isinstance(apis, list | tuple) else [str(apis)],
                "explanation": str(d.get("explanation", "")),
            }
        )
    return out


def _per_label(headers: list[Row], rows: list[Row]) -> dict[str, tuple[list[Row], list[Row]]]:
    """Headers and rows split by label, so that the known entries of a framework held at
    several version sets are judged at each with its own versions and rows: "" holds every
    framework with one label (and the reference), each label its framework's alone."""
    labelled: dict[str, str] = {}  # label -> framework
    for h in headers:
        for fw, info in (h.get("frameworks") or {}).items():
            if isinstance(info, dict) and info.get("variant"):
                labelled[str(info["variant"])] = fw
    if not labelled:
        return {"": (headers, rows)}

    def only(h: Row, keep: Any) -> Row:
        fws = {fw: info for fw, info in (h.get("frameworks") or {}).items() if keep(fw, info)}
        return {**h, "frameworks": fws}

    def var(info: Any) -> str:
        return str(info.get("variant") or "") if isinstance(info, dict) else ""

    out = {"": ([only(h, lambda fw, info: not var(info)) for h in headers],
                [r for r in rows if not r.get("variant")])}  # fmt: skip
    for label, fw in labelled.items():
        hs = [only(h, lambda f, info, fw=fw, label=label: f == fw and var(info) == label)
              for h in headers]  # fmt: skip
        out[label] = (hs, [r for r in rows if r.get("variant") == label])
    return out


def _repro(
    rows: list[Row], headers: list[Row], goldens: Any = None
) -> tuple[dict[str, Any] | None, str]:
    """The reproduction-script bundle for ``rows`` (keys: their positions, as strings;
    ``goldens``: the run's :class:`~xentcheck.harness.goldens.GoldenCache`)."""
    try:
        from xentcheck.report import repro
    except ImportError:
        return None, "the reproduction module is not installed"
    bundle = getattr(repro, "bundle", None)
    if bundle is None:
        return None, "the reproduction module has no bundle()"
    try:
        out = bundle(rows, headers, goldens=goldens)
        json.dumps(out)
    except Exception as exc:  # one bad case must not cost the whole report
        print(f"xentcheck: warning: reproduction scripts left out: {exc}", file=sys.stderr)
        return None, f"building the scripts failed: {type(exc).__name__}"
    if not isinstance(out, dict):
        return None, "the reproduction module returned no bundle"
    return {
        "parts": out.get("parts", {}),
        "rows": {str(k): v for k, v in out.get("rows", {}).items()},
    }, ""


def findings_of(
    merged: Merged,
    baseline: Merged | None = None,
    known: Sequence[Any] = (),
    cache: Any = None,
) -> tuple[list[Row] | None, str]:
    """The findings of ``merged`` (against ``baseline``, with the user's ``known`` entries,
    their scripts kept in ``cache``: a :class:`~xentcheck.harness.cache.ResultCache`) and a
    note: ``(None, why)`` when they could not be computed, so the page says so and still
    shows the rows."""
    try:
        from xentcheck.findings import build
    except ImportError:
        return None, "the findings package is not installed"
    base = (baseline.headers, baseline.rows) if baseline is not None else None
    try:
        return list(
            build(merged.rows, merged.headers, baseline=base, known=tuple(known), cache=cache)
        ), ""
    except Exception as exc:  # the rows are still worth a page
        print(f"xentcheck: warning: findings left out: {exc}", file=sys.stderr)
        return None, f"computing them failed: {type(exc).__name__}: {exc}"


#: a finding's fields the page carries as they are (see ``xentcheck.findings.build``)
FINDING_TEXT = ("id", "kind", "summary", "framework", "label", "variant", "loss", "quantity",
                "known", "explanation", "link", "status", "repro", "repro_note", "draft",
                "version_set", "fixed_in")  # fmt: skip
FINDING_LISTS = ("apis", "dtypes", "devices", "cases")
#: what a finding's ``row_keys`` entry names, in order (the framework is the finding's)
ROW_KEY = ("case", "instance", "api", "device", "dtype", "quantity")
#: the worst row's fields shown when that row is not among the page's rows
WORST_FIELDS = ("case", "instance", "api", "device", "dtype", "quantity", "status",
                "max_abs_err", "max_ulp")  # fmt: skip


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def findings_data(findings: Sequence[Row], rows: Sequence[Row]) -> list[dict[str, Any]]:
    """What the page needs of each finding: its fields as text (``severity`` and ``rows``
    as numbers), ``r`` the positions in ``rows`` of its ``row_keys`` (every variant of
    each; a key no row has, a fixed finding's say, is left out and counted in ``gone``),
    ``w`` the position of its worst row (-1 when absent, with ``worst`` a few of its
    fields)."""
    where: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        key = (str(r.get("framework", "")), *(str(r.get(k, "")) for k in ROW_KEY))
        where[key].append(i)
        where[(*key, str(r.get("variant") or ""))].append(i)
    out = []
    for f in findings:
        fw = str(f.get("framework", ""))
        # a finding of one label (version set) points at that label's rows only
        tail = () if f.get("variant") is None else (str(f.get("variant") or ""),)
        pos: list[int] = []
        gone = 0
        for key in f.get("row_keys") or []:
            hit = where.get((fw, *map(str, key), *tail))
            pos += hit or []
            gone += not hit
        worst = f.get("worst") if isinstance(f.get("worst"), dict) else {}
        w = where.get((fw, *(str(worst.get(k, "")) for k in ROW_KEY), *tail)) if worst else None
        d: dict[str, Any] = {k: _text(f.get(k)) for k in FINDING_TEXT}
        d.update({k: [str(x) for x in f.get(k) or []] for k in FINDING_LISTS})
        d["severity"] = int(f.get("severity") or 0)
        d["rows"] = int(f.get("rows") or 0)
        d.update(r=sorted(set(pos)), gone=gone, w=w[0] if w else -1)
        if f.get("upgrade"):
            u = f["upgrade"]
            d["upgrade"] = {"from": str(u.get("from")), "status": str(u.get("status")),
                            "changes": [str(c) for c in u.get("changes") or []]}  # fmt: skip
        if not w and worst:
            d["worst"] = _finite({k: worst.get(k) for k in WORST_FIELDS})
        out.append(d)
    return out


def page_data(
    merged: Merged,
    baseline_rows: Sequence[Row] | None = None,
    baseline_files: Sequence[str] = (),
    case_files: sources.CaseFiles | None = None,
    with_inputs: bool = True,
    with_repro: bool = True,
    findings: Sequence[Row] | None = None,
    findings_note: str = "",
    goldens: Any = None,
) -> dict[str, Any]:
    """The JSON the page draws from (see the module docstring).

    ``findings`` (from :func:`findings_of`) head the page; None (with ``findings_note``
    saying why) when there are none to show. ULP errors are :func:`~xentcheck.findings.group.shown_ulp`'s:
    none where a golden is 0 (``cols.z`` lists those rows). ``goldens``: the run's
    :class:`~xentcheck.harness.goldens.GoldenCache`, for the reproduction scripts.
    """
    rows, headers = merged.rows, merged.headers
    cols = {
        n: Column()
        for n in ("loss", "case", "inst", "fw", "api", "dev", "dtype", "qty", "status", "variant")
    }
    ulp, abs_, rel, det, run, zero = [], [], [], [], [], []
    change_col = Column() if baseline_rows is not None else None
    change_of, gone = changes(rows, baseline_rows) if baseline_rows is not None else ([], 0)
    tags: dict[str, int] = {}
    case_info: list[dict[str, Any]] = []
    params: list[Any] = []
    files_src: list[dict[str, Any]] = []
    file_index: dict[str, int] = {}
    known = Column()
    known_info: list[dict[str, str]] = []
    details: list[dict[str, Any]] = []
    detail_rows: list[Row] = []
    case_files = case_files or sources.CaseFiles(headers)

    for i, r in enumerate(rows):
        get = r.get
        cols["loss"].add(str(get("loss", "")))
        c = cols["case"].add(str(get("case", "")))
        if c == len(case_info):
            src = get("source") or {}
            f = -1
            if isinstance(src, dict) and src.get("file"):
                path = str(src["file"])
                if path not in file_index:
                    file_index[path] = len(files_src)
                    files_src.append({"p": path, "t": case_files.text(path)})
                f = file_index[path]
            line = int(src.get("line") or 0) if isinstance(src, dict) else 0
            text = files_src[f]["t"] if f >= 0 else None
            end = sources.case_span(text, line)[1] if text else line
            tag_codes = [tags.setdefault(str(t), len(tags)) for t in get("tags") or []]
            case_info.append(
                {
                    "d": str(get("description") or ""),
                    "t": tag_codes,
                    "f": f,
                    "l": line,
                    "e": end,
                    "x": bool(get("expect_error")),
                }
            )
        n = cols["inst"].add(str(get("instance", "")))
        if n == len(params):
            params.append(_finite(get("params") or {}))
        cols["fw"].add(str(get("framework", "")))
        cols["api"].add(str(get("api", "")))
        cols["dev"].add(str(get("device", "")))
        cols["dtype"].add(str(get("dtype", "")))
        cols["qty"].add(str(get("quantity", "")))
        status = str(get("status", ""))
        cols["status"].add(status)
        cols["variant"].add(merged.variant_of[i])
        run.append(merged.run_of[i])
        if change_col is not None:
            change_col.add(change_of[i])
        ulp.append(shown_ulp(r))
        if zero_golden(r):
            zero.append(i)
        abs_.append(short_float(get("max_abs_err")))
        rel.append(short_float(get("max_rel_err")))
        if status in DETAILED or status not in SEVERITY:
            d: dict[str, Any] = {}
            for key, name in (("expected", "ex"), ("actual", "ac"), ("index", "i"), ("shape", "sh"),
                              ("message", "m"), ("out_dtype", "od"), ("rtol", "rt"), ("atol", "at"),
                              ("behaviour", "b"), ("unexplained_status", "us"),
                              ("criterion", "cr"), ("allowed_ulp", "al"), ("excess", "xs"),
                              ("accuracy", "acc"), ("digits_lost", "dl")):  # fmt: skip
                v = get(key)
                if v not in (None, "", []):
                    d[name] = v
            d["k"] = -1
            if get("known_id"):
                k = known.add(str(get("known_id")))
                if k == len(known_info):
                    known_info.append(
                        {
                            "id": str(get("known_id")),
                            "x": str(get("explanation") or ""),
                            "u": str(get("link") or ""),
                        }
                    )
                d["k"] = k
            det.append(len(details))
            details.append(d)
            if status in DISCREPANT:
                detail_rows.append((len(details) - 1, r))
        else:
            det.append(-1)

    inputs_by_inst: list[Any] = [None] * len(cols["inst"].values)
    if with_inputs:
        summaries = sources.instance_inputs(case_files, (r for _, r in detail_rows))
        for code, name in enumerate(cols["inst"].values):
            inputs_by_inst[code] = summaries.get(name)
    repro, repro_note = (None, "left out") if not with_repro else (None, "")
    if with_repro and detail_rows:
        bundle, repro_note = _repro([r for _, r in detail_rows], headers, goldens)
        if bundle is not None:  # keys are positions in detail_rows: map them to detail indices
            positions = [d for d, _ in detail_rows]
            bundle["rows"] = {
                str(positions[int(k)]): v
                for k, v in bundle["rows"].items()
                if k.isdigit() and int(k) < len(positions)
            }
            repro = bundle

    counts = status_counts(rows)
    shown_files = display_paths(merged.files)
    out: dict[str, Any] = {
        "format": 1,
        "version": __version__,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": shown_files,
        "runs": [
            _run_info(
                h, shown_files[_file_of(merged, j)] if merged.files else "", _source(merged, j)
            )
            for j, h in enumerate(headers)
        ],
        "runGroups": _run_groups(merged),
        "upgrades": upgrades_data(findings, headers) if findings is not None else [],
        "n": len(rows),
        "severity": list(SEVERITY),
        "counts": counts,
        "replaced": merged.replaced,
        "cols": {
            **{k: col.to_json() for k, col in cols.items()},
            "run": {"v": list(range(len(headers))), "c": run},
            "ulp": ulp,
            "abs": abs_,
            "rel": rel,
            "det": det,
            "z": zero,
        },
        "findings": findings_data(findings, rows) if findings is not None else None,
        "findingsNote": findings_note,
        "caseInfo": case_info,
        "tags": list(tags),
        "params": params,
        "inputs": inputs_by_inst,
        "files_src": files_src,
        "known": known_info,
        "details": details,
        "repro": repro,
        "reproNote": repro_note,
        "notReproduced": _not_reproduced(headers, rows),
        "brokenKnown": predicate_errors(rows),
        "baseline": None,
    }
    if change_col is not None:
        out["cols"]["change"] = change_col.to_json()
        out["baseline"] = {
            "files": [Path(f).name for f in baseline_files],
            "counts": {c: change_of.count(c) for c in ("new", "fixed", "changed", "unchanged")},
            "gone": gone,
        }
    return out


def _source(merged: Merged, header_index: int) -> Any:
    """The merge's :class:`~xentcheck.harness.merge.Source` of a header, when known."""
    if merged.combined is None or header_index >= len(merged.combined.sources):
        return None
    return merged.combined.sources[header_index]


def _file_of(merged: Merged, header_index: int) -> int:
    """Which file a header came from (headers are concatenated in file order)."""
    return merged.header_file[header_index] if merged.header_file else 0
