"""The DVC stage ``export``: ONNX with a parity proof, int8 quantization and a latency benchmark.

Files are built in a temp folder inside ``out`` and moved into place only when every check has
passed, so a failed export never leaves a model file that did not pass. (``dvc repro`` deletes
the stage's outputs before running it: ``dvc checkout export`` restores the last good ones.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotion.core.atomic import write_json, write_text
from emotion.core.envreport import env_report
from emotion.core.errors import DataError, EmotionError
from emotion.core.hashing import sha256_file
from emotion.core.reading import read_json
from emotion.core.results import write_results
from emotion.core.stage import log, worker_count
from emotion.export.contract import CONTRACT_FILE, ModelContract
from emotion.export.datacard import DataCard
from emotion.export.latency import measure
from emotion.export.model_card import model_card, training_data
from emotion.export.onnx_export import (
    export_onnx,
    ort_logits,
    ort_session,
    parity,
    publish_contract,
    torch_logits,
)
from emotion.export.params import ExportParams
from emotion.export.quantize import quantize
from emotion.training.evaluation import top1_scores
from emotion.training.model import TrainedModel, load_trained
from emotion.training.tensordata import Preprocess, TensorSplit
from emotion.vision.params import CropParams
from emotion.vision.tta import TestTimeAugmentation

FP32, INT8 = "model.onnx", "model.int8.onnx"
CARD_FILE = "MODEL_CARD.md"
#: ``metrics/export.json``: the int8 model's batch-1 latency and size (the rest: ``reports/``).
HEADLINE = {"int8_ms": "latency.onnxruntime_int8.batch1_p50_ms", "int8_bytes": "size_bytes.int8"}


def model_inputs(data: Path, split: str, trained: TrainedModel) -> tuple[np.ndarray, np.ndarray]:
    """A split as float32 NCHW model inputs (the train stage's exact preprocessing) + labels."""
    tensors = TensorSplit.load(data, split, trained.classes)
    x = Preprocess(trained.contract)(tensors.images, torch.device("cpu"))
    return x.numpy(), tensors.labels.numpy()


def prove_parity(reference: np.ndarray, exported: np.ndarray, atol: float) -> dict[str, Any]:
    """PyTorch vs onnxruntime on the test split; raises unless logits and top-1 agree."""
    proof = {**parity(reference, exported), "atol": atol}
    if proof["max_abs_logit_diff"] > atol or proof["top1_agreement"] < 1.0:
        raise EmotionError(
            f"ONNX parity failed on {proof['n']} test images: max |logit diff| "
            f"{proof['max_abs_logit_diff']:.3g} (export.parity_atol {atol}), top-1 agreement "
            f"{proof['top1_agreement']:.4f} (must be 1.0); no model file was written"
            " (`dvc checkout export` restores the last good ones)"
        )
    return proof


def read_calibration(path: Path) -> tuple[TestTimeAugmentation, float]:
    """The test-time augmentation and temperature the evaluate stage fitted and measured."""
    data = read_json(path, "calibration file", "run `dvc repro evaluate`")
    try:
        return TestTimeAugmentation.from_dict(data["tta"], str(path)), float(data["temperature"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: malformed calibration file ({exc!r}); rerun evaluate") from None


def contract_for(
    trained: TrainedModel,
    opset: int,
    face_margin: float,
    ckpt: Path,
    calibration: Path,
    card: DataCard,
) -> ModelContract:
    """The served model's contract: the checkpoint's preprocessing, the face-crop margin, the
    evaluate stage's test-time augmentation and temperature, and the training data's card."""
    tta, temperature = read_calibration(calibration)
    return ModelContract(
        classes=tuple(trained.classes),
        preprocessing=trained.contract.with_face_margin(face_margin),
        tta=tta,
        temperature=temperature,
        opset=opset,
        source={
            "checkpoint": ckpt.as_posix(),
            "checkpoint_sha256": sha256_file(ckpt),
            "calibration_sha256": sha256_file(calibration),
            "model_name": trained.params.name,
            "training_data": card.to_dict(),
        },
    )


def scores(y: np.ndarray, logits: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Test accuracy and macro-F1 of logits."""
    probs = torch.from_numpy(logits).double().softmax(1).numpy()
    return top1_scores(y, probs, len(classes))


def _export_models(
    params: ExportParams,
    trained: TrainedModel,
    work: Path,
    inputs: tuple[np.ndarray, np.ndarray],
    threads: int,
) -> tuple[Any, dict[str, Any], dict[str, np.ndarray], Any]:
    """ONNX fp32 (with the opset fallback) proven against PyTorch on the test inputs, then int8
    calibrated on the validation inputs; returns (export result, sessions, logits, proof)."""
    x_test, x_val = inputs
    prep = trained.contract
    shape = (prep.in_chans, prep.image_size, prep.image_size)
    result = export_onnx(trained.model, work / FP32, shape, (params.opset, params.fallback_opset))
    for opset, error in result.attempts:
        log.warning("ONNX export at opset %d failed (%s); fell back", opset, error)
    log.info("exported at opset %d", result.opset)
    sessions = {"fp32": ort_session(work / FP32, threads)}
    logits = {"fp32": ort_logits(sessions["fp32"], x_test)}
    proof = prove_parity(torch_logits(trained.model, x_test), logits["fp32"], params.parity_atol)
    quantize_int8(params, work, x_val)
    sessions["int8"] = ort_session(work / INT8, threads)
    logits["int8"] = ort_logits(sessions["int8"], x_test)
    return result, sessions, logits, proof


def run_export(
    params: ExportParams,
    crop: CropParams,
    *,
    data: Path,
    model: Path,
    calibration: Path,
    train: Path,
    evaluation: Path,
    out: Path,
    report: Path,
    metrics: Path,
    env: Path,
) -> dict[str, Any]:
    """Export, prove parity, quantize, time; publish the files only when every check passed;
    then the model card (``MODEL_CARD.md`` in ``out``; ``train``: the split it was trained on)."""
    threads = worker_count()
    torch.set_num_threads(threads)
    card = DataCard.load(params.data_card)
    trained = load_trained(model)
    x_test, y_test = model_inputs(data, "test", trained)
    x_val, _ = model_inputs(data, "val", trained)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        work = Path(tmp)
        result, sessions, logits, proof = _export_models(
            params, trained, work, (x_test, x_val), threads
        )
        contract = contract_for(trained, result.opset, crop.face_margin, model, calibration, card)
        contract = publish_contract(work, contract, {"fp32": FP32, "int8": INT8})
        files = contract.files
        timings = time_models(trained, sessions, x_test, params)
        write_json(work / "env.json", env_report(torch.device("cpu")))
        for filename in (FP32, INT8, CONTRACT_FILE):
            (work / filename).replace(out / filename)
        env.parent.mkdir(parents=True, exist_ok=True)
        (work / "env.json").replace(env)
    summary = export_metrics(
        params, result.opset, bool(result.attempts), proof, y_test, logits, trained.classes
    )
    summary["size_bytes"] = {
        "checkpoint": model.stat().st_size,
        **{variant: f["bytes"] for variant, f in files.items()},
    }
    summary["latency"] = latency_summary(timings, threads)
    write_export_results(summary, report=report, metrics=metrics)
    write_model_card(out / CARD_FILE, contract, evaluation, summary, train, trained)
    log_summary(proof, summary, timings)
    return summary


def write_export_results(summary: dict[str, Any], *, report: Path, metrics: Path) -> None:
    """The report (its rows: latency per runtime) and the headline metrics (:data:`HEADLINE`)."""
    rows = [{"runtime": k, **v} for k, v in summary["latency"].items() if isinstance(v, dict)]
    write_results(summary, rows, report_path=report, metrics_path=metrics, keys=HEADLINE)


def log_summary(
    proof: dict[str, Any], summary: dict[str, Any], timings: dict[str, dict[str, float]]
) -> None:
    log.info(
        "parity max|diff| %.2g, top-1 %.4f; int8 accuracy %+.4f; batch-1 p50 ms: %s",
        proof["max_abs_logit_diff"],
        proof["top1_agreement"],
        summary["int8"]["accuracy_delta"],
        ", ".join(f"{k} {v['batch1_p50_ms']:.3f}" for k, v in timings.items()),
    )


def write_model_card(
    path: Path,
    contract: ModelContract,
    evaluation: Path,
    summary: dict[str, Any],
    train: Path,
    trained: TrainedModel,
) -> None:
    """``MODEL_CARD.md`` from the contract, ``reports/eval.json``, this stage's metrics and the
    training split (``train/train.csv``, synthetic images included)."""
    card = model_card(
        contract,
        read_json(evaluation, "evaluation report", "run `dvc repro evaluate`"),
        summary,
        training_data(train / "train.csv"),
        sum(p.numel() for p in trained.model.parameters()),
    )
    write_text(path, card)


def quantize_int8(params: ExportParams, work: Path, x_val: np.ndarray) -> None:
    """``model.int8.onnx`` from ``model.onnx``, calibrated on a seeded sample of validation."""
    rows = np.random.default_rng(0).permutation(len(x_val))[: params.calibration_images]
    quantize(
        work / FP32,
        work / INT8,
        params.quantize,
        x_val[rows],
        per_channel=params.per_channel,
        reduce_range=params.reduce_range,
    )


def time_models(
    trained: TrainedModel, sessions: dict[str, Any], x: np.ndarray, params: ExportParams
) -> dict[str, dict[str, float]]:
    """Latency and throughput of eager PyTorch and both ONNX Runtime variants on ``x``."""
    name = sessions["fp32"].get_inputs()[0].name
    with torch.inference_mode():
        return measure(
            {
                "pytorch": lambda b: trained.model(torch.from_numpy(b)),
                "onnxruntime_fp32": lambda b: sessions["fp32"].run(None, {name: b}),
                "onnxruntime_int8": lambda b: sessions["int8"].run(None, {name: b}),
            },
            x,
            runs=params.latency_runs,
            batch_size=params.throughput_batch,
        )


def latency_summary(timings: dict[str, dict[str, float]], threads: int) -> dict[str, Any]:
    """Latency/throughput per runtime plus ONNX Runtime's batch-1 p50 relative to PyTorch."""
    p50 = {k: v["batch1_p50_ms"] for k, v in timings.items()}
    return {
        **timings,
        "threads": threads,
        "ort_fp32_over_pytorch_p50": p50["onnxruntime_fp32"] / p50["pytorch"],
        "ort_int8_over_pytorch_p50": p50["onnxruntime_int8"] / p50["pytorch"],
    }


def export_metrics(
    params: ExportParams,
    opset: int,
    fell_back: bool,
    proof: dict[str, Any],
    y: np.ndarray,
    logits: dict[str, np.ndarray],
    classes: list[str],
) -> dict[str, Any]:
    """Opset, parity and the fp32/int8 test scores of ``reports/export.json``."""
    fp32, int8 = scores(y, logits["fp32"], classes), scores(y, logits["int8"], classes)
    return {
        "opset": opset,
        "opset_fallback": fell_back,
        "parity": proof,
        "fp32": fp32,
        "int8": {
            **int8,
            "mode": params.quantize,
            "accuracy_delta": int8["accuracy"] - fp32["accuracy"],
            "macro_f1_delta": int8["macro_f1"] - fp32["macro_f1"],
            "top1_agreement_with_fp32": parity(logits["fp32"], logits["int8"])["top1_agreement"],
        },
    }
