"""The card of a shipped style model: how it was trained, how to reproduce it, and what it
measures against the target (Gatys-equivalent iterations, the paper's Fig. 5); a multi-style
network's card compares each painting with the single-style model of the same painting."""
from __future__ import annotations

from pathlib import Path

from .commands import reproduce_text
from .lineage import history_sentence, trained_minutes
from .results import (MULTI_STYLE_TOLERANCE, STYLE_TARGET, blob_areas, blob_sentence, gap_sentence, needs_shift_note,
                      shift_note, single_style_reports, style_gap)


def style_card(name: str, meta: dict, report: dict | None, path: Path) -> list[str]:
    """The card lines of the single-style model ``name`` (``meta``: its metadata; ``path``: its file)."""
    t = meta["training"]
    lines = [f"### `{name}` — {Path(t['style']).stem.replace('_', ' ')}", ""]
    crops = ", then ".join(f"{size} px" + (f" from step {first}" if first else "")
                           for first, size in t.get("crop_schedule", [[0, t["image_size"]]]))
    lines += [f"- **Trained**: {t.get('steps_done')} steps of batch {t['batch_size']} (crops of {crops}), "
              f"{t.get('recipe', '?')} recipe, {trained_minutes(t)} on {t.get('hardware', 'a CPU')}, {t.get('precision', '')}; "
              f"{t['data_images']} training photos ({Path(t['data']).name}); loss weights content "
              f"{t['content_weight']:g}, style {t['style_weight']:g}, TV {t['tv_weight']:g}; style image "
              f"{Path(t['style']).name} at {t['style_size']} px.{history_sentence(t)}",
              f"- **Reproduce**: {reproduce_text(t)}"]
    if report:
        s = report["summary"]
        for start, label in (("noise", "uniform noise (the paper's protocol)"),
                             ("content", "the photo (an extra: Gatys starts at the content target)")):
            per = s[f"gatys_iterations_{start}_per_photo"]
            bound = ">=" if s[f"gatys_iterations_{start}_capped"] else ""
            lines.append(f"- **Gatys-equivalent iterations from {label}**: median {bound}{s[f'gatys_iterations_{start}']:g} "
                         f"(per photo {per}; cap {report['cap']}; {s['photos']} held-out photos at {report['size']} px)")
        got = s["gatys_iterations_noise"]
        verdict = "met" if got >= STYLE_TARGET else f"**missed** by {STYLE_TARGET - got:g} iterations"
        lines.append(f"- **Target** >= {STYLE_TARGET} from noise (the paper: 50-100): {verdict}.")
        gap = style_gap(name)
        if gap:
            lines.append(f"- **How far** (`benchmarks/style_gap.py`, objective means over the photos): {gap_sentence(gap)}.")
        lines.append(f"- **Checkerboard energy** of the outputs: {s['checkerboard_ratio_mean']:.2f}x the photos' own "
                     f"(1.0 = none added){shift_note() if needs_shift_note(t, s) else ''}.")
    blobs = blob_areas(name, path)
    if blobs:
        lines.append(f"- **Flat-bright area** (`benchmarks/blob_area.py`): {blob_sentence(next(iter(blobs.values())))}.")
    return lines + [""]


def multi_style_card(name: str, meta: dict, report: dict | None, path: Path) -> list[str]:
    """The card lines of a multi-style network: each painting against its single-style model."""
    t = meta["training"]
    styles = t["styles"]
    crops = ", then ".join(f"{size} px" + (f" from step {first}" if first else "")
                           for first, size in t.get("crop_schedule", [[0, t["image_size"]]]))
    lines = [f"### `{name}` — {len(styles)} paintings in one network (conditional instance norm)", "",
             "- **Styles** (use `--style NAME`, `--mix A=0.7,B=0.3`, `--strength 0..1`): "
             + ", ".join(f"`{s}`" for s in styles) + ".",
             f"- **Trained**: {t.get('steps_done')} steps of batch {t['batch_size']} (crops of {crops}; the styles "
             f"take turns step by step, so each painting had about {t.get('steps_done', 0) // len(styles)} steps), "
             f"{t.get('recipe', '?')} recipe, {trained_minutes(t)} on {t.get('hardware', 'a CPU')}, {t.get('precision', '')}; "
             f"{t['data_images']} training photos ({Path(t['data']).name}); loss weights content "
             f"{t['content_weight']:g}, style {', '.join(f'{w:g}' for w in t['style_weights'])}, TV {t['tv_weight']:g}; "
             f"style images at {t['style_size']} px.{history_sentence(t)}",
             f"- **Reproduce**: {reproduce_text(t)}"]
    if report:
        singles = single_style_reports()
        photos = next(iter(report["styles"].values()))["summary"]["photos"]
        lines += ["", f"Gatys-equivalent iterations (median of {photos} "
                      f"held-out photos at {report['size']} px, cap {report['cap']}) against the single-style model of the "
                      f"same painting; target: within {MULTI_STYLE_TOLERANCE:.0%} of it (from noise, the paper's "
                      "protocol; the photo start beside it is an extra).", "",
                  f"| style | from noise | from the photo | checkerboard | single-style model (noise / photo) | within {MULTI_STYLE_TOLERANCE:.0%} |",
                  "|---|---|---|---|---|---|"]
        for style, image, r in zip(styles, t["style"], report["styles"].values()):
            s = r["summary"]
            single = singles.get(Path(image).stem)
            if single:
                ref = single[1]["summary"]
                ratio = s["gatys_iterations_noise"] / ref["gatys_iterations_noise"]
                # "within 20%": at least 80% of the single-style count (more is better, so above is fine)
                verdict = "yes" if ratio >= 1 - MULTI_STYLE_TOLERANCE else f"**no** ({ratio:.0%} of it)"
                ref_text = f"`{single[0]}` {ref['gatys_iterations_noise']:g} / {ref['gatys_iterations_content']:g}"
            else:
                verdict, ref_text = "-", "-"
            lines.append(f"| {style} | {s['gatys_iterations_noise']:g} {s['gatys_iterations_noise_per_photo']} | "
                         f"{s['gatys_iterations_content']:g} {s['gatys_iterations_content_per_photo']} | "
                         f"{s['checkerboard_ratio_mean']:.2f}x | {ref_text} | {verdict} |")
        lines.append("")
        lines.append(f"- **Target** >= {STYLE_TARGET} from noise (the paper: 50-100): "
                     + ("met" if all(r["summary"]["gatys_iterations_noise"] >= STYLE_TARGET
                                     for r in report["styles"].values()) else "**missed** for every painting, as for "
                        "the single-style models (minutes of one CPU core instead of hours of a GPU)") + ".")
        for style in styles:
            gap = style_gap(f"{name}/{style}")
            if gap:
                lines.append(f"- **How far**, {style} (`benchmarks/style_gap.py`): {gap_sentence(gap)}.")
    blobs = blob_areas(name, path)
    if blobs and len(blobs) == len(styles):  # measured in training order, under the run's own style names
        lines.append("- **Flat-bright area** (`benchmarks/blob_area.py`): "
                     + "; ".join(f"{style} {blob_sentence(area)}" for style, area in zip(styles, blobs.values())) + ".")
    return lines + [""]
