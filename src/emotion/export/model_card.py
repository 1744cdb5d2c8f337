"""``models/MODEL_CARD.md``: the exported model's card in the Hugging Face layout.

YAML metadata (tags, metrics, ``model-index``) then Model details, Uses, Bias, risks and
limitations, Training data, Preprocessing, Evaluation (per-class table from
``reports/eval.json``, calibration, int8), How to use and Files, so the model can be published to
any hub with its card. Every figure is read from the stage's inputs and outputs, none typed in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from emotion.export.contract import CONTRACT_FILE, ModelContract

LIMITATIONS = """\
- **Expressions are not emotions.** The model labels a facial configuration; whether a person
  *feels* that emotion is not observable from a face, and posed, suppressed or culturally
  specific expressions are read the same way.
- **Six discrete classes.** Real expressions are blends and intensities; `disgust` is not one
  of them, so a disgusted face is given one of the six.
- **Data bias.** The training data (below) decides whom the model reads well: groups, poses
  and lighting under-represented there are not measured here and are likely read worse.
- **Low resolution, grayscale, one face.** 48 px grayscale crops of the largest detected face;
  strong profile views, occlusion (masks, hands) and small faces degrade it.
- **Calibration holds for data like the validation split.** Confidence was fitted there; on
  other data (see `extra_sets` in `reports/eval.json`) it can be over- or under-confident.
"""

OUT_OF_SCOPE = """\
Not for decisions about people: hiring, admission, credit, insurance, policing, border control,
surveillance, medical or psychological diagnosis, or inferring emotions of people who have not
agreed to it. Several jurisdictions restrict emotion recognition (e.g. the EU AI Act prohibits
it in workplaces and education); check the law where it is used."""


def training_data(train_csv: Path) -> dict[str, Any]:
    """Sources, per-class counts and augmented/synthetic shares of the training split."""
    frame = pd.read_csv(train_csv, keep_default_na=False)
    origins = frame["origin"].map(lambda p: "/".join(Path(p).parts[:3]))
    flags = {
        c: frame[c].astype(str).str.lower() == "true" for c in ("is_augmented", "is_synthetic")
    }
    return {
        "sources": sorted(origins.unique()),
        "images": len(frame),
        "per_class": frame["label"].value_counts().sort_index().to_dict(),
        "augmented": int(flags["is_augmented"].sum()),
        "synthetic": int(flags["is_synthetic"].sum()),
    }


def metadata(contract: ModelContract, evaluation: dict[str, Any], data: dict[str, Any]) -> str:
    """The card's YAML front matter (Hugging Face model-card metadata)."""
    name = contract.source.get("model_name", "emotion-model")
    results = [
        {"type": "accuracy", "value": evaluation["accuracy"], "name": "Test accuracy"},
        {"type": "f1", "value": evaluation["macro_f1"], "name": "Test macro-F1"},
        {"type": "ece", "value": evaluation["ece"], "name": "Test expected calibration error"},
    ]
    meta = {
        "library_name": "onnx",
        "pipeline_tag": "image-classification",
        "tags": ["facial-expression-recognition", "onnx", "timm", "dvc"],
        "datasets": data["sources"],
        "metrics": ["accuracy", "f1"],
        "model-index": [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": "image-classification", "name": "Facial expressions"},
                        "dataset": {"name": ", ".join(data["sources"]), "type": "imagefolder"},
                        "metrics": results,
                    }
                ],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def evaluation_section(evaluation: dict[str, Any], export: dict[str, Any]) -> list[str]:
    """Test metrics, the per-class table, calibration, validation and the int8 variant."""
    cal, tta = evaluation["calibration"], evaluation["tta"]
    lines = [
        "## Evaluation",
        "",
        f"Test split: {evaluation['n']} images, scored with the served pipeline "
        f"(test-time augmentation `{tta['mode']}`, {tta['views']} view(s); temperature "
        f"{cal['temperature']:.3f}).",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| accuracy | {evaluation['accuracy']:.4f} |",
        f"| macro-F1 | {evaluation['macro_f1']:.4f} |",
        f"| weighted-F1 | {evaluation['weighted_f1']:.4f} |",
        f"| NLL (uncalibrated → calibrated) | {cal['uncalibrated']['nll']:.4f} → "
        f"{cal['calibrated']['nll']:.4f} |",
        f"| ECE (uncalibrated → calibrated) | {cal['uncalibrated']['ece']:.4f} → "
        f"{cal['calibrated']['ece']:.4f} |",
    ]
    if evaluation.get("validation"):
        val = evaluation["validation"]
        lines.append(
            f"| validation accuracy / macro-F1 | {val['accuracy']:.4f} / {val['macro_f1']:.4f} |"
        )
    lines.append(
        f"| int8 accuracy (vs fp32) | {export['int8']['accuracy']:.4f} "
        f"({export['int8']['accuracy_delta']:+.4f}) |"
    )
    lines += ["", "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for name, m in evaluation["per_class"].items():
        lines.append(
            f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} "
            f"| {m['support']} |"
        )
    for name, extra in evaluation.get("extra_sets", {}).items():
        lines.append(
            f"\nOther data, `{name}`: accuracy {extra['accuracy']:.4f}, macro-F1 "
            f"{extra['macro_f1']:.4f} on {extra['n']} images."
        )
    return lines


def details_section(contract: ModelContract, parameters: int) -> list[str]:
    """Title, what it was trained on, model details, uses and limitations."""
    prep = contract.preprocessing
    name = contract.source.get("model_name", "emotion-model")
    card = contract.source["training_data"]
    notice = [] if card["photos"] else [f"> **{card['summary']}**", ""]
    return [
        f"# {name}: facial expression recognition (ONNX)",
        "",
        *notice,
        "## Model details",
        "",
        f"- Architecture: `{name}` (timm), {parameters:,} parameters, trained from "
        "this repository's DVC pipeline (`dvc repro`); exported to ONNX opset "
        f"{contract.opset}, fp32 and static int8.",
        f"- Input: `{contract.input_name}` float32 NCHW (batch, {prep.in_chans}, "
        f"{prep.image_size}, {prep.image_size}); output `{contract.output_name}`: logits of "
        f"{len(contract.classes)} classes: {', '.join(contract.classes)}.",
        f"- Probabilities: mean over the test-time views of softmax(logits / "
        f"{contract.temperature:.4f}) (temperature fitted on the validation split).",
        "",
        "## Uses",
        "",
        "Intended: research, demos and interfaces that react to a person's facial expression "
        "with their knowledge, e.g. the project's on-device client or `emotion serve`.",
        "",
        "Out of scope: " + OUT_OF_SCOPE,
        "",
        "## Bias, risks and limitations",
        "",
        LIMITATIONS,
    ]


def data_section(contract: ModelContract, data: dict[str, Any]) -> list[str]:
    """Training data (its card, then what the training split held) and preprocessing."""
    prep = contract.preprocessing
    card = contract.source["training_data"]
    per_class = ", ".join(f"{c} {n}" for c, n in data["per_class"].items())
    cite = [f"- Citation: {card['citation']}"] if card.get("citation") else []
    return [
        "## Training data",
        "",
        f"**{card['title']}.** {card['description']}",
        "",
        f"- Source: {card['source']}",
        f"- Terms: {card['terms']}",
        *cite,
        "",
        f"{data['images']:,} training images from {', '.join(f'`{s}`' for s in data['sources'])}"
        f" ({per_class}); {data['augmented']:,} augmented copies, {data['synthetic']:,} "
        "synthetic images. Splits are grouped by near-duplicate (pHash) so copies of one "
        "photo never straddle train and test.",
        "",
        "## Preprocessing",
        "",
        f"Largest BlazeFace face, square crop grown by {prep.face_margin} per side, grayscale, "
        f"Lanczos to {prep.source_size} px, antialiased bilinear to {prep.image_size} px, "
        f"scaled to [0, 1], normalised with mean {list(prep.mean)} and std {list(prep.std)}. "
        f"The full contract is `{CONTRACT_FILE}` (also embedded in the ONNX metadata).",
    ]


def usage_section(contract: ModelContract) -> list[str]:
    """How to use the model, and its files with their hashes."""
    files = [
        f"| `{e['path']}` | {variant} | {e['bytes']:,} | `{e['sha256']}` |"
        for variant, e in contract.files.items()
    ]
    return [
        "## How to use",
        "",
        "```bash",
        "emotion serve --model-dir models   # HTTP API + web page; /app/: in-browser client",
        "```",
        "",
        "Any ONNX runtime works: apply the preprocessing above (or read `model.json`), run the "
        "model, apply the temperature and average the views.",
        "",
        "## Files",
        "",
        "| file | variant | bytes | SHA-256 |",
        "|---|---|---:|---|",
        *files,
        "",
    ]


def model_card(
    contract: ModelContract,
    evaluation: dict[str, Any],
    export: dict[str, Any],
    data: dict[str, Any],
    parameters: int,
) -> str:
    """The whole card as Markdown."""
    return "\n".join(
        [
            metadata(contract, evaluation, data),
            *details_section(contract, parameters),
            *data_section(contract, data),
            "",
            *evaluation_section(evaluation, export),
            "",
            *usage_section(contract),
        ]
    )
