#!/usr/bin/env python3
"""Summarises bench/compare's raw results: the median of every figure per
scenario and server, the ratios Charla/Socket.IO and Charla/floor, the
targets of issue #13 met or missed, and (with --plot, which needs
matplotlib) a PNG of latency percentiles, CPU per delivery and RSS per idle
connection for every server.

Input: raw.jsonl, one JSON line per run as charla-loadgen prints it, plus the
fields `case` and `round` that bench/compare adds. Output: a Markdown table
on stdout, and for the two-node scenarios each round's deliveries/s and the
issue's target (Charla at least 5 x Socket.IO's deliveries/s).
"""

import argparse
import json
import statistics
import sys

TWO_NODE_CASES = ["two-node-fanout-fixed", "two-node-fanout-max", "two-node-rooms-fixed", "two-node-rooms-max"]
CASES = ["fanout-fixed", "fanout-max", "rooms-fixed", "rooms-max", "idle", "churn", *TWO_NODE_CASES]
TARGETS = ["charla", "socketio", "floor"]
NAMES = {"charla": "Charla", "socketio": "Socket.IO", "floor": "floor"}
# Issues #5 and #13: Charla's RSS per idle connection at 10,000 connections.
IDLE_TARGET_KIB = 12
# Issue #13: rooms max at least this many times Socket.IO's and this share of
# the floor peer's; fan-out max at least this share of the floor's.
ROOMS_SOCKETIO_RATIO = 3
ROOMS_FLOOR_SHARE = 0.85
FANOUT_FLOOR_SHARE = 0.9
# Issue #10's goal: two Charla nodes deliver at least this many times what two
# Socket.IO nodes do, on one Redis.
TWO_NODE_TARGET_RATIO = 5

# (label, how to read it from a run, lower is better)
LATENCY = [
    ("latency p50 ms", lambda r: r["latency_ms"]["p50"], True),
    ("latency p99 ms", lambda r: r["latency_ms"]["p99"], True),
    ("latency max ms", lambda r: r["latency_ms"]["max"], True),
]
CPU_PER_DELIVERY = ("server CPU s / 1M deliveries", lambda r: r["cpu_s_per_million_deliveries"], True)
UTILISATION = [
    ("server CPU util", lambda r: r["server_cpu_util"], None),
    ("loadgen CPU util", lambda r: r["loadgen_cpu_util"], None),
]
DELIVERIES = ("deliveries/s", lambda r: r["deliveries_per_s"], False)
MESSAGES = ("messages/s", lambda r: r["messages_per_s"], False)
# Two nodes: the servers' CPU is both nodes' together; Redis is read apart.
TWO_NODE_CPU = [
    ("both nodes' CPU s / 1M deliveries", lambda r: r["cpu_s_per_million_deliveries"], True),
    ("Redis CPU s / 1M deliveries", lambda r: r["redis_cpu_s_per_million_deliveries"], True),
    ("nodes + Redis CPU s / 1M deliveries",
     lambda r: r["cpu_s_per_million_deliveries"] + r["redis_cpu_s_per_million_deliveries"], True),
]
TWO_NODE_UTILISATION = [
    ("both nodes' CPU util", lambda r: r["server_cpu_util"], None),
    ("Redis CPU util", lambda r: r["redis_cpu_util"], None),
    ("loadgen CPU util", lambda r: r["loadgen_cpu_util"], None),
]

FIGURES = {
    "fanout-fixed": [DELIVERIES, *LATENCY, CPU_PER_DELIVERY],
    "fanout-max": [DELIVERIES, *LATENCY, CPU_PER_DELIVERY, *UTILISATION],
    "rooms-fixed": [MESSAGES, DELIVERIES, *LATENCY, CPU_PER_DELIVERY],
    "rooms-max": [MESSAGES, DELIVERIES, *LATENCY, CPU_PER_DELIVERY, *UTILISATION],
    "idle": [
        ("RSS KiB / connection", lambda r: r["rss_per_connection_kib"], True),
        ("server RSS MiB", lambda r: r["server_rss_kib"] / 1024, True),
        ("server CPU util while idle", lambda r: r["server_cpu_util"], True),
    ],
    "churn": [
        ("cycles/s", lambda r: r["churn"]["cycles_per_s"], False),
        ("connect+join p50 ms", lambda r: r["churn"]["connect_join_ms"]["p50"], True),
        ("connect+join p99 ms", lambda r: r["churn"]["connect_join_ms"]["p99"], True),
        ("failed cycles", lambda r: r["churn"]["failed"], True),
        *LATENCY,
        CPU_PER_DELIVERY,
    ],
    "two-node-fanout-fixed": [DELIVERIES, *LATENCY, *TWO_NODE_CPU, *TWO_NODE_UTILISATION],
    "two-node-fanout-max": [DELIVERIES, *LATENCY, *TWO_NODE_CPU, *TWO_NODE_UTILISATION],
    "two-node-rooms-fixed": [MESSAGES, DELIVERIES, *LATENCY, *TWO_NODE_CPU, *TWO_NODE_UTILISATION],
    "two-node-rooms-max": [MESSAGES, DELIVERIES, *LATENCY, *TWO_NODE_CPU, *TWO_NODE_UTILISATION],
}
# Counted, not medians: summed over the runs. `reordered`: deliveries heard
# after a later message of their sender. `out of order` is the room-id check
# of Charla and the floor peer (the Socket.IO peer numbers ids per process:
# not checked).
COUNTS = ["lost", "duplicated", "reordered", "out of order", "errors", "closed", "runs"]


def read(path):
    runs = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    return runs


def value(run, read_figure):
    try:
        figure = read_figure(run)
    except (KeyError, TypeError):
        return None
    return None if figure is None else float(figure)


def medians(runs):
    """{case: {target: {label: median}}}, plus lost/dup totals and counts."""
    table = {}
    for case in CASES:
        for target in TARGETS:
            mine = [r for r in runs if r.get("case") == case and r.get("target") == target]
            if not mine:
                continue
            ok = [r for r in mine if not r.get("failed")]
            entry = {"runs": len(ok), "failed": len(mine) - len(ok)}
            for label, read_figure, _ in FIGURES[case]:
                values = [v for v in (value(r, read_figure) for r in ok) if v is not None]
                entry[label] = statistics.median(values) if values else None
            entry["lost"] = sum(r.get("lost", 0) for r in ok)
            entry["duplicated"] = sum(r.get("duplicated", 0) for r in ok)
            entry["reordered"] = sum(r.get("reordered", 0) for r in ok)
            entry["out of order"] = (
                sum(r.get("out_of_order", 0) for r in ok) if target != "socketio" else None
            )
            entry["errors"] = sum(r.get("errors", 0) for r in ok)
            entry["closed"] = sum(r.get("closed", 0) for r in ok)
            table.setdefault(case, {})[target] = entry
    return table


def fmt(figure):
    if figure is None:
        return "–"
    if abs(figure) >= 1000:
        return f"{figure:,.0f}"
    if abs(figure) >= 10:
        return f"{figure:.1f}"
    return f"{figure:.3g}"


def markdown(table):
    present = [t for t in TARGETS if any(t in by_target for by_target in table.values())]
    ratios = [t for t in present if t != "charla"]
    out = [
        "| scenario | figure | "
        + " | ".join(NAMES[t] for t in present)
        + "".join(f" | Charla/{NAMES[t]}" for t in ratios)
        + " |",
        "|---|---|" + "---:|" * (len(present) + len(ratios)),
    ]
    for case in CASES:
        if case not in table:
            continue
        by_target = table[case]
        rows = [label for label, _, _ in FIGURES[case]]
        rows += COUNTS
        for label in rows:
            figures = [by_target.get(t, {}).get(label) for t in present]
            cells = [fmt(f) for f in figures]
            a = by_target.get("charla", {}).get(label)
            for t in ratios:
                b = by_target.get(t, {}).get(label)
                ratio = f"{a / b:.2f}" if a is not None and b not in (None, 0) else "–"
                cells.append("" if label in COUNTS else ratio)
            out.append(f"| {case} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def targets(table):
    """Issue #13's targets, each met or missed, from the medians."""

    def figure(case, target, label):
        return table.get(case, {}).get(target, {}).get(label)

    def verdict(ok):
        return "met" if ok else "**missed**"

    out = []
    idle, idle_sio = (figure("idle", t, "RSS KiB / connection") for t in ("charla", "socketio"))
    if idle is not None:
        ok = idle <= IDLE_TARGET_KIB and (idle_sio is None or idle < idle_sio)
        out.append(f"| idle: ≤ {IDLE_TARGET_KIB} KiB per connection and below Socket.IO's "
                   f"| {fmt(idle)} KiB (Socket.IO {fmt(idle_sio)}) | {verdict(ok)} |")
    rooms, rooms_sio, rooms_floor = (
        figure("rooms-max", t, "messages/s") for t in ("charla", "socketio", "floor"))
    if rooms is not None and rooms_sio and rooms_floor:
        ok = rooms >= ROOMS_SOCKETIO_RATIO * rooms_sio and rooms >= ROOMS_FLOOR_SHARE * rooms_floor
        out.append(f"| rooms max: ≥ {ROOMS_SOCKETIO_RATIO} x Socket.IO and ≥ {ROOMS_FLOOR_SHARE} x floor "
                   f"| {rooms / rooms_sio:.2f} x Socket.IO, {rooms / rooms_floor:.2f} x floor | {verdict(ok)} |")
    fanout, fanout_floor = (figure("fanout-max", t, "deliveries/s") for t in ("charla", "floor"))
    if fanout is not None and fanout_floor:
        out.append(f"| fan-out max: ≥ {FANOUT_FLOOR_SHARE} x floor "
                   f"| {fanout / fanout_floor:.2f} x floor | {verdict(fanout >= FANOUT_FLOOR_SHARE * fanout_floor)} |")
    p99, p99_floor = (figure("fanout-fixed", t, "latency p99 ms") for t in ("charla", "floor"))
    if p99 is not None and p99_floor is not None:
        out.append(f"| fan-out fixed: p99 no worse than the floor's "
                   f"| {fmt(p99)} ms (floor {fmt(p99_floor)} ms) | {verdict(p99 <= p99_floor)} |")
    charla = [entry["charla"] for entry in table.values() if "charla" in entry]
    if charla:
        lost = sum(e["lost"] for e in charla)
        duplicated = sum(e["duplicated"] for e in charla)
        out.append(f"| zero lost, zero duplicated (Charla, every run) "
                   f"| {lost} lost, {duplicated} duplicated | {verdict(lost == 0 and duplicated == 0)} |")
    if not out:
        return ""
    return "\n".join(["| target (issue #13) | measured (medians) | |", "|---|---|---|", *out])


def two_node_lines(runs, table):
    """Each round's deliveries/s for the two-node scenarios, and the target."""
    out = []
    for case in TWO_NODE_CASES:
        if case not in table:
            continue
        rounds = sorted({r["round"] for r in runs if r.get("case") == case and "round" in r})
        pairs = []
        for round_number in rounds:
            figures = {}
            for r in runs:
                if r.get("case") == case and r.get("round") == round_number and not r.get("failed"):
                    figures[r["target"]] = r["deliveries_per_s"]
            a, b = figures.get("charla"), figures.get("socketio")
            ratio = f" ({a / b:.2f} x)" if a is not None and b else ""
            pairs.append(f"{fmt(a)} / {fmt(b)}{ratio}")
        out.append(f"- {case}, deliveries/s per round, Charla / Socket.IO: " + "; ".join(pairs))
        if case.endswith("-max"):
            a = table[case].get("charla", {}).get("deliveries/s")
            b = table[case].get("socketio", {}).get("deliveries/s")
            if a is not None and b:
                verdict = "met" if a >= TWO_NODE_TARGET_RATIO * b else "missed"
                out.append(f"  target ≥ {TWO_NODE_TARGET_RATIO} x Socket.IO's deliveries/s "
                           f"(medians): {a / b:.2f} x, {verdict}")
    return "\n".join(out)


def plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"charla": "#c0392b", "socketio": "#2c3e50", "floor": "#95a5a6"}
    names = NAMES
    present = [t for t in TARGETS if any(t in by_target for by_target in table.values())]
    latency_cases = [c for c in ["fanout-fixed", "rooms-fixed", "churn", "fanout-max", "rooms-max"] if c in table]
    # churn is left out: its few deliveries carry the cost of every cycle.
    cpu_cases = [c for c in ["fanout-fixed", "fanout-max", "rooms-fixed", "rooms-max"] if c in table]
    figure, axes = plt.subplots(1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [3, 2, 1]})

    ax = axes[0]
    percentiles = ["latency p50 ms", "latency p99 ms", "latency max ms"]
    width = 0.8 / (3 * len(present))
    for t_index, target in enumerate(present):
        for p_index, label in enumerate(percentiles):
            xs, ys = [], []
            for c_index, case in enumerate(latency_cases):
                entry = table[case].get(target, {})
                figure_value = entry.get(label)
                if figure_value is None:
                    continue
                offset = (t_index * 3 + p_index - (3 * len(present) - 1) / 2) * width
                xs.append(c_index + offset)
                ys.append(max(figure_value, 0.01))
            ax.bar(xs, ys, width, color=colours[target], alpha=[1.0, 0.65, 0.35][p_index],
                   label=f"{names[target]} {label.split()[1]}")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.05)
    ax.set_xticks(range(len(latency_cases)), latency_cases)
    ax.set_ylabel("latency, ms (log scale)")
    ax.set_title("Delivery latency: p50, p99, max (medians of rounds)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", which="both", alpha=0.3)

    ax = axes[1]
    width = 0.8 / len(present)
    for t_index, target in enumerate(present):
        xs, ys = [], []
        for c_index, case in enumerate(cpu_cases):
            figure_value = table[case].get(target, {}).get("server CPU s / 1M deliveries")
            if figure_value is not None:
                xs.append(c_index + (t_index - (len(present) - 1) / 2) * width)
                ys.append(figure_value)
        ax.bar(xs, ys, width, color=colours[target], label=names[target])
    ax.set_xticks(range(len(cpu_cases)), cpu_cases, rotation=20)
    ax.set_ylabel("server CPU seconds per million deliveries")
    ax.set_title("CPU per delivery (lower is better)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)

    ax = axes[2]
    if "idle" in table:
        for t_index, target in enumerate(present):
            figure_value = table["idle"].get(target, {}).get("RSS KiB / connection")
            if figure_value is not None:
                ax.bar(t_index, figure_value, 0.6, color=colours[target])
                ax.text(t_index, figure_value, f"{figure_value:.1f}", ha="center", va="bottom")
        ax.set_xticks(range(len(present)), [names[t] for t in present])
        ax.axhline(IDLE_TARGET_KIB, color="#7f8c8d", linestyle="--", linewidth=1)
        ax.text(len(present) - 0.55, IDLE_TARGET_KIB, f"target {IDLE_TARGET_KIB} KiB", ha="right", va="bottom", fontsize=8)
    ax.set_ylabel("server RSS KiB per idle connection")
    ax.set_title("Memory per idle connection")
    ax.grid(axis="y", alpha=0.3)

    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", help="raw.jsonl written by bench/compare")
    parser.add_argument("--machine", help="machine.txt to print above the table")
    parser.add_argument("--plot", help="write the PNG plot here (needs matplotlib)")
    args = parser.parse_args()
    runs = read(args.raw)
    table = medians(runs)
    if args.machine:
        with open(args.machine, encoding="utf-8") as machine:
            print("```")
            print(machine.read().rstrip())
            print("```")
            print()
    loads = sorted(r["loadavg1"] for r in runs if "loadavg1" in r)
    if loads:
        print(f"1-minute load average when each run ended: min {loads[0]:.2f}, "
              f"median {statistics.median(loads):.2f}, max {loads[-1]:.2f} "
              "(2 CPUs: anything above 2 means other work competed)")
        print()
    print(markdown(table))
    goals = targets(table)
    if goals:
        print()
        print(goals)
    two_node = two_node_lines(runs, table)
    if two_node:
        print()
        print(two_node)
    if args.plot:
        plot(table, args.plot)
        print(f"\nplot: {args.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
