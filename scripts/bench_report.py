"""Render `make bench`'s results as reports/bench.md with PNG plots (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGET_P95_RATIO = 1.3
TARGET_THROUGHPUT_RATIO = 0.9


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def plots(report: dict[str, Any], out: Path) -> list[str]:
    """Write the PNG plots next to the report; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stamp = f"{report['cpu_count']} cores, commit {report['commit']}"
    names = []
    latency = report["latency"]

    fig, axes = plt.subplots(1, len(latency), figsize=(4 * len(latency), 3.6), squeeze=False)
    for ax, w in zip(axes[0], latency, strict=True):
        qs = ("p50_ms", "p95_ms", "p99_ms")
        e2e = [w["e2e_first_reply"][q] or 0 for q in qs]
        alone = [w["rasa_alone"][q] or 0 for q in qs]
        x = range(len(qs))
        ax.bar([i - 0.2 for i in x], e2e, 0.4, label="end to end (first reply)")
        ax.bar([i + 0.2 for i in x], alone, 0.4, label="Rasa REST alone")
        ax.set_xticks(list(x), ["p50", "p95", "p99"])
        ax.set_title(f"{w['concurrency']} conversation(s)")
        ax.set_ylabel("ms")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Latency per message ({stamp})", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "bench_latency.png", dpi=100)
    plt.close(fig)
    names.append("bench_latency.png")

    top = latency[-1]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    step = 5
    for key, label in (("timeline_app", "app, end to end"), ("timeline_rasa", "Rasa REST alone")):
        series = top[key]
        ax.plot([step * (i + 0.5) for i in range(len(series))], series, marker="o", label=label)
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("messages answered per second")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title(f"Throughput at {top['concurrency']} conversations ({stamp})", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "bench_throughput.png", dpi=100)
    plt.close(fig)
    names.append("bench_throughput.png")

    rss = report["peak_rss_mb"]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh(list(rss), list(rss.values()))
    ax.set_xlabel("peak RSS (MB)")
    ax.set_title(f"Peak memory per process ({stamp})", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "bench_memory.png", dpi=100)
    plt.close(fig)
    names.append("bench_memory.png")
    return names


def policy_table(variants: dict[str, Any] | None) -> list[str]:
    """What other policy sets would cost (`make bench-policies`), if it was run."""
    if not variants or not variants.get("variants"):
        return []
    stamp = f"{variants['cpu_count']} cores, commit `{variants['commit']}`"
    lines = [
        "",
        "What other policy sets would cost, measured by `make bench-policies` (same pipeline, "
        "domain, data and action server; each model on its own Rasa server, in-memory "
        f"tracker; run {variants['started']}):",
        "",
        f"| policies | turn p50 (ms) | turn p95 (ms) | saturated msgs/s | peak RSS (MB) | "
        f"({stamp}) |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in variants["variants"].items():
        turn, sat = v["turn_one_at_a_time"], v["saturation"]
        lines.append(
            f"| {name} | {_fmt(turn['p50_ms'])} | {_fmt(turn['p95_ms'])} | "
            f"{_fmt(sat['msgs_per_s'], 2)} | {_fmt(v.get('peak_rss_mb'))} | |"
        )
    lines += [
        "",
        "Read with care: the same model saturates at 7.4 to 8.9 messages/s from one run to "
        "the next on this machine, so differences of about 10% are noise. At this model size "
        "no policy set costs clearly more per turn: a turn is dominated by NLU featurization, "
        "the action server call and the tracker, not by the policy's prediction.",
    ]
    return lines


def cpu_table(report: dict[str, Any], stamp: str) -> list[str]:
    """CPU per message of each process, end to end and Rasa alone, per window."""
    windows = [w for w in report["latency"] if w.get("cpu_ms_per_message")]
    if not windows:
        return []
    names = sorted({n for w in windows for n in w["cpu_ms_per_message"]["end_to_end"]})
    lines = [
        "CPU per message (ms, user + system, from /proc, over each window; the processes "
        "share the machine's cores, so every millisecond the app, the database and the load "
        "generator spend is one Rasa cannot use once it is saturated):",
        "",
        "| conversations | run | " + " | ".join(names) + f" | ({stamp}) |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    for w in windows:
        for run, label in (("end_to_end", "end to end"), ("rasa_alone", "Rasa alone")):
            cpu = w["cpu_ms_per_message"][run]
            cells = [_fmt(cpu.get(n)) for n in names]
            lines.append(f"| {w['concurrency']} | {label} | " + " | ".join(cells) + " | |")
    return [*lines, ""]


def _summary(report: dict[str, Any], stamp: str) -> list[str]:
    """The headline figures against their targets."""
    lines = [
        "# Benchmarks (`make bench`)",
        "",
        f"Run {report['started']} on {stamp}, database {report['database']}"
        f"{', quick mode' if report['quick'] else ''}; load average at start "
        f"{report['load_average_at_start']}, at end {report['load_average_at_end']} "
        "(other work on the machine inflates every figure).",
        "",
        "## Summary",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    for c, r in report["e2e_p95_ratio"].items():
        target = f"≤ {TARGET_P95_RATIO}" if c in ("1", "10") else "reported"
        lines.append(
            f"| p95 ratio end to end / Rasa alone, {c} conversation(s) | {_fmt(r, 2)} | {target} |"
        )
    lines += [
        f"| throughput, app (msgs/s) | {_fmt(report['throughput_msgs_per_s'], 2)} | |",
        f"| throughput, Rasa alone (msgs/s) | {_fmt(report['rasa_alone_msgs_per_s'], 2)} | |",
        f"| throughput ratio | {_fmt(report['throughput_ratio'], 2)} "
        f"| ≥ {TARGET_THROUGHPUT_RATIO} |",
        f"| lost / duplicated / out of order (all windows) | {report['lost']} / "
        f"{report['duplicated']} / {report['out_of_order']} | 0 / 0 / 0 |",
        f"| NLU macro-F1 | {_fmt(report['nlu_macro_f1'], 3)} | ≥ 0.90 |",
        f"| emergency recall | {_fmt(report['emergency_recall'], 3)} | ≥ 0.98 |",
        f"| language id accuracy (raw langdetect) | {_fmt(report['langid_accuracy'], 3)} "
        f"({_fmt(report['langdetect_raw_accuracy'], 3)}) | |",
        f"| start-up: `make run` to first answer (s) "
        f"| {_fmt(report['startup_first_answer_s'], 1)} | |",
        "",
    ]
    return lines


def _latency(report: dict[str, Any], stamp: str) -> list[str]:
    """Latency end to end and Rasa alone, and where the app's time goes."""
    lines = [
        "## Latency",
        "",
        "A worker message through the whole path (a fake Telegram update POSTed to the app's "
        "webhook, the app, Rasa, the action server, the database, the reply at the fake Bot "
        "API), against the same conversations sent straight to Rasa's REST webhook in the "
        "same run. Conversations are scripted (`scripts/bench_conversations.yml`, 5 to 13 "
        "turns); each waits for its replies like a person (1.3 s without a new reply) before "
        "the next turn; Rasa alone waits as long. End to end is the time to the first reply "
        "(the last one adds the outbox's one message per second per chat, by design).",
        "",
        f"| conversations | messages | end to end p50 / p95 / p99 (ms) | last reply p95 (ms) "
        f"| Rasa alone p50 / p95 / p99 (ms) | p95 ratio | ({stamp}) |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in report["latency"]:
        e, a = w["e2e_first_reply"], w["rasa_alone"]
        lines.append(
            f"| {w['concurrency']} | {e['n']} / {a['n']} | {_fmt(e['p50_ms'], 0)} / "
            f"{_fmt(e['p95_ms'], 0)} / {_fmt(e['p99_ms'], 0)} | "
            f"{_fmt(w['e2e_last_reply']['p95_ms'], 0)} | {_fmt(a['p50_ms'], 0)} / "
            f"{_fmt(a['p95_ms'], 0)} / {_fmt(a['p99_ms'], 0)} | {_fmt(w['p95_ratio'], 2)} | |"
        )
    lines += [
        "",
        "Where the app's time goes (first reply of each message; medians in ms, from the "
        "database's timestamps): posted → stored (webhook) → processed (relay, Rasa, "
        "actions; the turn recorded) → sent (the reply sent at once and its sending "
        "recorded) → delivered (fake Bot API; before `sent`, which is written after the "
        "Bot API answered).",
        "",
        f"| conversations | webhook → stored | stored → processed | processed → sent "
        f"| sent → delivered | ({stamp}) |",
        "|---|---|---|---|---|---|",
    ]
    for w in report["latency"]:
        st = w.get("app_stages") or {}
        cells = [
            _fmt((st.get(k) or {}).get("p50_ms"), 0)
            for k in (
                "webhook_to_stored",
                "stored_to_processed",
                "processed_to_sent",
                "sent_to_delivered",
            )
        ]
        lines.append(f"| {w['concurrency']} | " + " | ".join(cells) + " | |")
    return lines


def _throughput(report: dict[str, Any], stamp: str) -> list[str]:
    """Throughput per window, with what was lost, duplicated or reordered."""
    lines = ["", "![latency](bench_latency.png)", "", "## Throughput", ""]
    lines += [
        f"| conversations | seconds | app msgs/s | Rasa alone msgs/s | lost | duplicated "
        f"| out of order | undelivered | ({stamp}) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w in report["latency"]:
        t = w["tally"]
        lines.append(
            f"| {w['concurrency']} | {w['seconds']:.0f} | {_fmt(w['app_msgs_per_s'], 2)} | "
            f"{_fmt(w['rasa_alone_msgs_per_s'], 2)} | {t.get('lost')} | {t.get('duplicated')} | "
            f"{t.get('out_of_order')} | {t.get('undelivered')} | |"
        )
    lines += [
        "",
        "Rates leave out the first quarter of each window (the closed loop filling up). "
        "Lost and duplicated are counted against the database: every message the fake Bot "
        "API received is matched to the stored reply it came from, which names the update "
        "it answers; lost = worker messages with no reply delivered by the end of the drain.",
        "",
        "![throughput](bench_throughput.png)",
        "",
    ]
    return lines


def _costs(report: dict[str, Any], stamp: str) -> list[str]:
    """What a Rasa turn costs, measured one at a time and saturated."""
    lines = ["## What a Rasa turn costs", ""]
    costs = report["rasa_costs"]
    lines += [
        f"| measured one at a time | n | p50 (ms) | p95 (ms) | ({stamp}) |",
        "|---|---|---|---|---|",
        f"| NLU alone (`/model/parse`) | {costs['nlu_parse']['n']} | "
        f"{_fmt(costs['nlu_parse']['p50_ms'])} | {_fmt(costs['nlu_parse']['p95_ms'])} | |",
    ]
    for kind, s in costs["turn_by_kind"].items():
        lines.append(
            f"| full turn: {kind} | {s['n']} | {_fmt(s['p50_ms'])} | {_fmt(s['p95_ms'])} | |"
        )
    mem, sql = costs["saturation_in_memory"], costs.get("saturation_sql_redis")
    lines += [
        "",
        f"| Rasa saturated (20 conversations, no think time) | msgs/s | p95 (ms) | ({stamp}) |",
        "|---|---|---|---|",
        f"| tracker in memory (rasa_project/endpoints.yml) | {_fmt(mem['msgs_per_s'], 2)} | "
        f"{_fmt(mem['latency']['p95_ms'], 0)} | |",
    ]
    if sql:
        lines.append(
            f"| PostgreSQL tracker store + Redis lock store (as in production) | "
            f"{_fmt(sql['msgs_per_s'], 2)} | {_fmt(sql['latency']['p95_ms'], 0)} | |"
        )
    lines += [
        "",
        f"Policies: {', '.join(costs['policies']['configured'])}. {costs['policies']['note']}",
    ]
    lines += policy_table(costs.get("policy_variants"))
    return lines


def _startup_and_memory(report: dict[str, Any], stamp: str) -> list[str]:
    """Start-up of `make run` and peak memory per process."""
    s = report["startup"]
    lines = [
        "",
        "## Start-up",
        "",
        "`make run` with nothing to rebuild (venvs, database and model up to date); a "
        "message is posted to the webhook as soon as the app answers.",
        "",
        f"| step | seconds from `make run` | ({stamp}) |",
        "|---|---|---|",
        f"| app answers `/healthz` | {_fmt(s.get('app_up_s'))} | |",
        f"| message accepted (stored: {s.get('stored_before_rasa_ready')}, Rasa ready then: "
        f"{s.get('rasa_ready_when_sent')}) | {_fmt(s.get('message_accepted_s'))} | |",
        f"| first reply delivered | {_fmt(s.get('first_reply_s'))} | |",
        f"| Rasa ready (model loaded) | {_fmt(s.get('rasa_up_s'))} | |",
        f"| the answer delivered | {_fmt(s.get('answer_s'))} | |",
        "",
        f"Replies to that message, in order: {', '.join(s.get('replies') or []) or '–'}.",
        "",
        "## Memory",
        "",
        f"| process | peak RSS (MB) | ({stamp}) |",
        "|---|---|---|",
    ]
    for name, mb in report["peak_rss_mb"].items():
        lines.append(f"| {name} | {_fmt(mb)} | |")
    lines += [
        "",
        "Peak RSS is VmHWM from /proc, summed over a process and its workers, read at the end "
        "of the load runs.",
        "",
        "![memory](bench_memory.png)",
        "",
    ]
    return lines


def _accuracy(report: dict[str, Any], stamp: str) -> list[str]:
    """NLU and language-detection accuracy from their own reports."""
    lines = [
        "## Accuracy",
        "",
    ]
    nlu = report["accuracy"]["nlu"]
    if nlu:
        lines += [
            f"| pipeline | macro-F1 | emergency recall | country accuracy | ({stamp}) |",
            "|---|---|---|---|---|",
        ]
        for name, r in nlu.get("pipelines", {}).items():
            lines.append(
                f"| {name} | {_fmt(r.get('macro_f1'), 3)} | {_fmt(r.get('emergency_recall'), 3)} "
                f"| {_fmt(r.get('country_accuracy'), 3)} | |"
            )
    else:
        lines.append("No reports/nlu.json: run `make eval-nlu` (or `make bench` with --with-eval).")
    langid = report["accuracy"]["langid"]
    lines += [
        "",
        f"Language detection: this detector {_fmt(langid.get('langid_accuracy'), 3)}, raw "
        f"langdetect {_fmt(langid.get('langdetect_raw_accuracy'), 3)} (reports/langid.json).",
        "",
    ]
    return lines


def write_report(report: dict[str, Any], out: Path) -> None:
    plots(report, out)
    stamp = f"{report['cpu_count']} cores, commit `{report['commit']}`"
    lines = _summary(report, stamp) + _latency(report, stamp) + _throughput(report, stamp)
    lines += cpu_table(report, stamp)
    lines += _costs(report, stamp) + _startup_and_memory(report, stamp) + _accuracy(report, stamp)
    (out / "bench.md").write_text("\n".join(lines), encoding="utf-8")
