"""DVC stage ``export``: ONNX with a parity proof, int8 quantization and a latency benchmark.

Files are built in a temp folder inside ``--out`` and moved into place only when every check
has passed, so a failed export never leaves a model file that did not pass. (``dvc repro``
deletes the stage's outputs before running it: ``dvc checkout export`` restores the last good
ones from the cache.)
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotion.atomic import write_json
from emotion.config import load_sections
from emotion.contract import CONTRACT_FILE, ModelContract, Preprocessing
from emotion.errors import EmotionError
from emotion.evaluation import classification_metrics
from emotion.latency import measure
from emotion.model import TrainedModel, load_trained
from emotion.onnx_export import (
    export_onnx,
    ort_logits,
    ort_session,
    parity,
    publish_contract,
    torch_logits,
)
from emotion.params.export import ExportParams
from emotion.quantize import quantize
from emotion.stage import log, run_stage, worker_count
from emotion.tensordata import Preprocess, TensorSplit

FP32, INT8 = "model.onnx", "model.int8.onnx"


def model_inputs(
    data: Path, split: str, classes: list[str], pre: Preprocess
) -> tuple[np.ndarray, np.ndarray]:
    """A split as float32 NCHW model inputs (the train stage's exact preprocessing) + labels."""
    tensors = TensorSplit.load(data, split, classes)
    return pre(tensors.images, torch.device("cpu")).numpy(), tensors.labels.numpy()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


def contract_for(
    trained: TrainedModel, opset: int, face_margin: float, ckpt: Path
) -> ModelContract:
    prep = trained.preprocessing
    return ModelContract(
        classes=tuple(trained.classes),
        preprocessing=Preprocessing(
            image_size=prep["image_size"],
            in_chans=prep["in_chans"],
            mean=tuple(prep["mean"]),
            std=tuple(prep["std"]),
            face_margin=face_margin,
        ),
        opset=opset,
        source={
            "checkpoint": ckpt.as_posix(),
            "checkpoint_sha256": sha256(ckpt),
            "model_name": trained.spec.name,
        },
    )


def scores(y: np.ndarray, logits: np.ndarray, classes: list[str]) -> dict[str, float]:
    probs = torch.from_numpy(logits).double().softmax(1).numpy()
    m = classification_metrics(y, probs, classes)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="balance output folder")
    parser.add_argument("--model", required=True, type=Path, help="best_model.pth")
    parser.add_argument("--out", required=True, type=Path, help="folder for model files")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    p = load_sections(args.params, export=ExportParams).export
    threads = worker_count()
    torch.set_num_threads(threads)
    trained = load_trained(args.model)
    prep = trained.preprocessing
    pre = Preprocess(prep["image_size"], prep["in_chans"], prep["mean"], prep["std"])
    x_test, y_test = model_inputs(args.data, "test", trained.classes, pre)
    x_val, _ = model_inputs(args.data, "val", trained.classes, pre)
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(dir=args.out, prefix=".export-") as tmp:
        work = Path(tmp)
        shape = (prep["in_chans"], prep["image_size"], prep["image_size"])
        result = export_onnx(trained.model, work / FP32, shape, (p.opset, p.fallback_opset))
        for opset, error in result.attempts:
            log.warning("ONNX export at opset %d failed (%s); fell back", opset, error)
        log.info("exported at opset %d", result.opset)
        fp32_session = ort_session(work / FP32, threads)
        fp32_logits = ort_logits(fp32_session, x_test)
        proof = prove_parity(torch_logits(trained.model, x_test), fp32_logits, p.parity_atol)

        rows = np.random.default_rng(0).permutation(len(x_val))[: p.calibration_images]
        quantize(
            work / FP32,
            work / INT8,
            p.quantize,
            x_val[rows],
            per_channel=p.per_channel,
            reduce_range=p.reduce_range,
        )
        int8_session = ort_session(work / INT8, threads)
        int8_logits = ort_logits(int8_session, x_test)

        contract = contract_for(trained, result.opset, p.face_margin, args.model)
        files = publish_contract(work, contract, {"fp32": FP32, "int8": INT8}).files

        name = fp32_session.get_inputs()[0].name
        with torch.inference_mode():
            timings = measure(
                {
                    "pytorch": lambda x: trained.model(torch.from_numpy(x)),
                    "onnxruntime_fp32": lambda x: fp32_session.run(None, {name: x}),
                    "onnxruntime_int8": lambda x: int8_session.run(None, {name: x}),
                },
                x_test,
                runs=p.latency_runs,
                batch_size=p.throughput_batch,
            )
        for filename in (FP32, INT8, CONTRACT_FILE):
            (work / filename).replace(args.out / filename)

    fp32_scores = scores(y_test, fp32_logits, trained.classes)
    int8_scores = scores(y_test, int8_logits, trained.classes)
    p50 = {k: v["batch1_p50_ms"] for k, v in timings.items()}
    write_json(
        args.metrics,
        {
            "opset": result.opset,
            "opset_fallback": bool(result.attempts),
            "parity": proof,
            "fp32": fp32_scores,
            "int8": {
                **int8_scores,
                "mode": p.quantize,
                "accuracy_delta": int8_scores["accuracy"] - fp32_scores["accuracy"],
                "macro_f1_delta": int8_scores["macro_f1"] - fp32_scores["macro_f1"],
                "top1_agreement_with_fp32": parity(fp32_logits, int8_logits)["top1_agreement"],
            },
            "size_bytes": {
                "checkpoint": args.model.stat().st_size,
                **{variant: f["bytes"] for variant, f in files.items()},
            },
            "latency": {
                **timings,
                "threads": threads,
                "ort_fp32_over_pytorch_p50": p50["onnxruntime_fp32"] / p50["pytorch"],
                "ort_int8_over_pytorch_p50": p50["onnxruntime_int8"] / p50["pytorch"],
            },
        },
    )
    log.info(
        "parity max|diff| %.2g, top-1 %.4f; int8 accuracy %+.4f; batch-1 p50 ms: %s",
        proof["max_abs_logit_diff"],
        proof["top1_agreement"],
        int8_scores["accuracy"] - fp32_scores["accuracy"],
        ", ".join(f"{k} {v:.3f}" for k, v in p50.items()),
    )


if __name__ == "__main__":
    run_stage(main)
