"""Presenting one run: console tables, CSV, PNG plot and a markdown summary."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import fields
from pathlib import Path

from benchmarks.results import (
    FFT_CONV_PYTORCH,
    NAIVE,
    REFERENCE,
    ROW_FIELDS,
    TORCHFLIP,
    Row,
    method_name,
)
from benchmarks.targets import Target
from benchmarks.timing import geometric_mean

# One colour per candidate in every panel; the plain layer and method='auto'
# share one, being the layer users get.
COLOURS = {TORCHFLIP: "tab:blue", method_name("auto"): "tab:blue", NAIVE: "tab:orange",
           method_name("direct"): "tab:cyan", method_name("fft"): "tab:green",
           FFT_CONV_PYTORCH: "tab:purple"}
MODE_LABELS = {"fwd": "forward (train)", "fwdbwd": "forward+backward (train)",
               "eval": "inference (eval, no_grad)", "memory": "peak memory, fwd+bwd"}


def _text_table(headers: list[str], body: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *body)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    rule = "  ".join("-" * w for w in widths)
    rows = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join([line, rule, *rows])


def _ordered(items) -> list:
    return list(dict.fromkeys(items))


def _format_ratio(row: Row | None) -> str:
    if row is None or row.ratio is None:
        return "n/a" if row is None else row.note or "-"
    text = f"{row.ratio:.3f}"
    if row.spread:
        text += f"±{row.spread:.3f}"
    return text + (" !" if "WRONG" in row.note else "")


def _format_value(row: Row) -> str:
    if row.unit == "B":
        return f"{row.value / 2**20:.1f} MiB"
    return f"{row.value * 1e3:.3f} ms" if row.value < 1 else f"{row.value:.2f} s"


def suite_table(rows: list[Row], suite: str) -> str:
    """One suite as text: a line per (case, mode), the reference's absolute
    figure, then every other candidate as a ratio to it."""
    rows = [r for r in rows if r.suite == suite]
    candidates = [c for c in _ordered(r.candidate for r in rows) if c != REFERENCE]
    by_key = {(r.case, r.mode, r.candidate): r for r in rows}
    if all(r.ratio is None for r in rows):  # plain figures: build, import
        return _text_table(["case", "figure", "note"],
                           [[r.case, _format_value(r), r.note] for r in rows])
    has_naive = any(r.ratio_naive is not None for r in rows)
    headers = ["case", "shape", "mode", REFERENCE] + candidates
    headers += ["torchflip/naive"] if has_naive else []
    headers += ["max err"]
    body = []
    for case, mode in _ordered((r.case, r.mode) for r in rows):
        reference = by_key.get((case, mode, REFERENCE))
        line = [case, reference.shape if reference else "", mode,
                _format_value(reference) if reference else "n/a"]
        line += [_format_ratio(by_key.get((case, mode, c))) for c in candidates]
        if has_naive:  # torchflip's layer as users get it: plain, or method='auto'
            naive = [r.ratio_naive for c in (TORCHFLIP, method_name("auto"))
                     for r in [by_key.get((case, mode, c))] if r and r.ratio_naive is not None]
            line.append(f"{max(naive):.3f}" if naive else "-")
        errors = [r.error for c in [REFERENCE, *candidates]
                  for r in [by_key.get((case, mode, c))] if r and r.error is not None]
        line.append(f"{max(errors):.1e}" if errors else "-")
        body.append(line)
    return _text_table(headers, body)


def targets_table(targets: list[Target]) -> str:
    return _text_table(["target", "requirement", "measured", "result"],
                       [[t.name, t.requirement, t.figure, t.status] for t in targets])


def console_report(rows: list[Row], targets: list[Target], info: dict[str, str]) -> str:
    parts = ["Machine: " + ", ".join(f"{k}={v}" for k, v in info.items()),
             ("Ratios are candidate / torch.nn (lower is faster), each the median over repeats "
              "of ratios\nmeasured side by side; ± is half the interquartile range of the "
              "repeats; '!' marks a wrong result.")]
    for suite in _ordered(r.suite for r in rows):
        parts.append(f"\n== {suite} ==\n{suite_table(rows, suite)}")
    parts.append(f"\n== targets ==\n{targets_table(targets)}")
    return "\n".join(parts)


def write_csv(rows: list[Row], info: dict[str, str], path: Path) -> None:
    """Rows as CSV, preceded by '# key: value' lines describing the machine."""
    with open(path, "w", newline="") as handle:
        handle.writelines(f"# {key}: {value}\n" for key, value in info.items())
        writer = csv.DictWriter(handle, fieldnames=ROW_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({name: getattr(row, name) for name in ROW_FIELDS})


def read_csv(path: Path) -> tuple[list[Row], dict[str, str]]:
    """The rows and machine information of a CSV written by :func:`write_csv`."""
    info, lines = {}, []
    with open(path, newline="") as handle:
        for line in handle:
            if line.startswith("# "):
                key, _, value = line[2:].rstrip("\n").partition(": ")
                info[key] = value
            else:
                lines.append(line)
    types = {f.name: f.type for f in fields(Row)}
    rows = []
    for record in csv.DictReader(lines):
        values = {}
        for name, text in record.items():
            kind = types[name]
            if kind == "str":
                values[name] = text
            elif text == "":
                values[name] = None
            else:
                values[name] = int(text) if "int" in kind else float(text)
        rows.append(Row(**values))
    return rows, info


def write_plot(rows: list[Row], info: dict[str, str], path: Path) -> None:
    """One panel per (suite, mode): every candidate's ratio to torch.nn per
    case, on a log axis with the parity line at 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")

    panels = _ordered((r.suite, r.mode) for r in rows if r.ratio is not None)
    if not panels:
        return
    columns = 3
    lines = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(6.5 * columns, 4.2 * lines),
                                squeeze=False)
    for axis, (suite, mode) in zip(axes.flat, panels):
        selected = [r for r in rows if r.suite == suite and r.mode == mode
                    and r.candidate != REFERENCE and r.ratio is not None]
        cases = _ordered(r.case for r in selected)
        candidates = _ordered(r.candidate for r in selected)
        width = 0.8 / max(len(candidates), 1)
        for index, candidate in enumerate(candidates):
            ratios = {r.case: r.ratio for r in selected if r.candidate == candidate}
            xs = [i + (index - (len(candidates) - 1) / 2) * width for i in range(len(cases))]
            # Bars grow from the parity line: up when slower, down when faster.
            heights = [ratios.get(c, float("nan")) - 1.0 for c in cases]
            axis.bar(xs, heights, width, bottom=1.0, label=candidate,
                     color=COLOURS.get(candidate, "tab:gray"))
        axis.axhline(1.0, color="black", linewidth=0.8)
        values = [r.ratio for r in selected] + [1.0]
        if max(values) / min(values) > 3:  # speed-ups of 10x and more: log axis
            axis.set_yscale("log")
            axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.yaxis.set_major_formatter(plain)
            axis.yaxis.set_minor_formatter(NullFormatter())
        axis.set_xticks(range(len(cases)))
        axis.set_xticklabels(cases, rotation=60, ha="right", fontsize=7)
        axis.set_title(f"{suite}: {MODE_LABELS.get(mode, mode)}", fontsize=10)
        axis.set_ylabel("time / torch.nn" if mode != "memory" else "peak / torch.nn")
        axis.legend(fontsize=7)
        axis.grid(axis="y", which="both", alpha=0.3)
        axis.set_axisbelow(True)
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    figure.suptitle(f"torchflip vs torch.nn (flipped weights): {info.get('cpu', '')}, "
                    f"{info.get('torch_threads', '?')} threads, torch {info.get('torch', '')}",
                    fontsize=11)
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def summary_rows(rows: list[Row]) -> list[list[str]]:
    """Per suite, mode and candidate: geometric mean and maximum of the ratios."""
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.ratio is not None and r.candidate != REFERENCE:
            groups[(r.suite, r.mode, r.candidate)].append(r)
    lines = []
    for (suite, mode, candidate), members in groups.items():
        worst = max(members, key=lambda r: r.ratio)
        lines.append([suite, MODE_LABELS.get(mode, mode), candidate,
                      f"{geometric_mean([r.ratio for r in members]):.3f}",
                      f"{worst.ratio:.3f} ({worst.case})", str(len(members))])
    return lines


def _markdown_table(headers: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)


def write_markdown(rows: list[Row], targets: list[Target], info: dict[str, str],
                   command: str, path: Path) -> None:
    """The targets and a per-suite summary as markdown, for README.md."""
    text = [
        (f"Measured with `{command}` on {info['cpu']} (torch threads: {info['torch_threads']}, "
         f"{info['device']}), torch {info['torch']}, torchflip {info.get('torchflip', '?')} "
         f"({info['git']}), {info['date']}. Ratios are times (or peak memory) relative to "
         "torch.nn's layer holding the flipped weight, medians of ratios measured side by side."),
        "",
        _markdown_table(["Target", "Requirement", "Measured", "Result"],
                        [[t.name, t.requirement, t.figure, t.status] for t in targets]),
        "",
        _markdown_table(["Suite", "Mode", "Candidate", "Geomean ratio", "Max ratio", "Cases"],
                        summary_rows(rows)),
        "",
    ]
    path.write_text("\n".join(text))
