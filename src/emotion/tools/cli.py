"""The ``emotion`` command: profiles, checks, datasets, run-cache sharing, PR report, serving,
the on-device client and the offline page template of ``dvc plots``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from emotion.assets.model_files import DEFAULT_FACE_MODEL, fetch_face_model
from emotion.core.atomic import write_text
from emotion.core.config import PARAMS_FILE
from emotion.core.errors import EmotionError, exit_on_user_error
from emotion.predict import FORMATS
from emotion.serve.settings import RELEASED_MODEL, VARIANTS, ServeSettings
from emotion.tools import compare, plots_page, pr_report, profiles
from emotion.tools.datasets import GIB, SizeLimits, add_dataset
from emotion.tools.params_file import load_params
from emotion.tools.runcache import push_run_cache
from emotion.vision.tta import TTA_VIEWS

Subparsers = argparse._SubParsersAction  # the type `add_subparsers()` returns


def _profile(args: argparse.Namespace) -> None:
    if args.action == "list":
        print("\n".join(profiles.available(args.profiles_dir)))
        return
    overrides = profiles.parse_overrides(args.set)
    if args.action == "show":
        text = profiles.render(
            args.name, overrides, args.params, args.profiles_dir, force=args.force
        )
        print(text, end="")
        return
    profiles.use(args.name, overrides, args.params, args.profiles_dir, force=args.force)
    print(
        f"{args.params}: profile '{args.name}' applied"
        + (f" with {', '.join(args.set)}" if args.set else "")
        + "; run `dvc repro` (or `dvc status` to see what will rerun);"
        f" `git restore {args.params}` returns to the defaults"
    )


def _check(args: argparse.Namespace) -> None:
    from emotion.training.model import check_backbone  # imports timm: only for this command

    params = load_params(args.params)
    check_backbone(params.model)
    print(f"{args.params}: OK")


def _fetch_face_model(args: argparse.Namespace) -> None:
    print(f"{fetch_face_model(args.dest)}: OK")


def _dataset(args: argparse.Namespace) -> None:
    limits = SizeLimits(int(args.max_gb * GIB), args.max_files, args.max_ratio)
    dvc_file = add_dataset(args.source, args.name, limits=limits)
    print(
        f"{dvc_file}: tracked by DVC and staged in git. Next: point ingest.source at"
        f" {dvc_file.with_suffix('').as_posix()} (e.g. `emotion profile use fer2013-cpu`),"
        " `git commit`, then `dvc push` to share it."
    )


def _push_run_cache(args: argparse.Namespace) -> None:
    entries, pushed = push_run_cache(args.remote)
    print(f"run-cache: {entries} entries; {pushed} more file(s) pushed")


#: ``emotion serve``'s limits and timeouts: (ServeSettings field, type, help), per worker
SERVE_LIMITS = (
    ("max_upload_mb", float, "request body limit, MiB"),
    ("max_pixels", int, "image size limit, checked from the header before decoding"),
    ("max_side", int, "longest image side, px"),
    ("max_faces", int, "most faces one /predict?all_faces=true classifies"),
    ("max_in_flight", int, "predictions admitted at once; more get 503 with Retry-After"),
    ("large_image_slots", int, "images over 4 MP decoded at once; others wait their turn"),
    ("max_connections", int, "open connections; requests beyond get 503"),
    ("header_timeout", float, "seconds for a request's line and headers (and a new connection)"),
    ("body_timeout", float, "seconds for a whole upload"),
    ("keepalive_timeout", float, "seconds an idle keep-alive connection stays open"),
)
#: ``emotion serve`` options that are ServeSettings fields of the same name (dashes for ``_``)
SERVE_SETTINGS = tuple(f.name for f in dataclasses.fields(ServeSettings))


def _serve(args: argparse.Namespace) -> None:
    from emotion.serve import launcher  # heavy imports only for this command

    settings = ServeSettings(**{name: getattr(args, name) for name in SERVE_SETTINGS})
    launcher.run(
        settings,
        host=args.host,
        port=args.port,
        workers=args.workers,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
    )


def _predict(args: argparse.Namespace) -> None:
    from emotion.predict.batch import predict_paths  # heavy imports only for this command

    settings = ServeSettings(
        model_dir=args.model_dir,
        variant=args.variant,
        detect_face=args.detect_face,
        face_model=args.face_model,
        tta=args.tta,
    )
    summary = predict_paths(
        args.paths,
        settings,
        fmt=args.format,
        out=args.out,
        fps=args.fps,
        max_faces=args.max_faces,
    )
    print(summary.text(), file=sys.stderr)
    if summary.failed:
        raise EmotionError(f"{len(summary.failed)} input(s) could not be read; see above")


def _release(args: argparse.Namespace) -> None:
    from emotion.release.bundle import make_release  # reads DVC's state: only for this command

    out = make_release(args.project, args.out, force=args.force)
    print(
        f"{out}: released; check it with `cd {out} && sha256sum -c SHA256SUMS`, serve it with"
        f" `emotion serve --model-dir {out}`, and commit it (or publish the folder)"
    )


def _client(args: argparse.Namespace) -> None:
    from emotion.serve.client import ClientFiles

    default = ServeSettings()
    files = ClientFiles.collect(
        args.client_dir or default.client_dir,
        args.model_dir or default.model_dir,
        args.face_model or default.face_model,
    )
    count = files.bundle(args.out)
    print(
        f"{args.out}: {count} files of the on-device client; host them with any static web"
        f" server (e.g. `python -m http.server -d {args.out}`); camera and offline use need"
        " HTTPS or localhost"
    )


def _plots_page(args: argparse.Namespace) -> None:
    libraries = plots_page.write_template(args.out, args.client_dir)
    names = ", ".join(f"{lib.name} {lib.version}" for lib in libraries)
    print(f"{args.out}: `dvc plots show` / `dvc plots diff` page template with {names} inlined")


def _compare(args: argparse.Namespace) -> None:
    status = compare.compare(extra=args.dvc_args)
    if status:
        sys.exit(status)


def _report(args: argparse.Namespace) -> None:
    if args.plots_dir is not None:
        plots_page.check_template()  # DVC's own error would not say what to do
    text = pr_report.build_report(args.base, plots_dir=args.plots_dir)
    if args.out is None:
        print(text, end="")
    else:
        write_text(args.out, text)


def _add_profile(sub: Subparsers) -> None:

    prof = sub.add_parser(
        "profile", help="list profiles (overlays on params.yaml), show one applied, or apply it"
    )
    prof.add_argument("action", choices=["list", "show", "use"])
    prof.add_argument("name", nargs="?", help="profile name (see `emotion profile list`)")
    prof.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a dotted key, e.g. --set ingest.source=/data/fer2013.csv",
    )
    prof.add_argument("--params", type=Path, default=Path(PARAMS_FILE))
    prof.add_argument("--profiles-dir", type=Path, default=profiles.PROFILES_DIR)
    prof.add_argument(
        "--force", action="store_true", help="apply on top of another profile already applied"
    )
    prof.set_defaults(func=_profile)


def _add_check(sub: Subparsers) -> None:
    check = sub.add_parser(
        "check", help="validate params.yaml: schema, duplicate keys, the model name in timm"
    )
    check.add_argument("--params", type=Path, default=Path(PARAMS_FILE))
    check.set_defaults(func=_check)


def _add_fetch_face_model(sub: Subparsers) -> None:
    fetch = sub.add_parser(
        "fetch-face-model",
        help="put the pinned BlazeFace model (from PyPI) at --dest (for serving without DVC;"
        " the pipeline's stage `assets` does this)",
    )
    fetch.add_argument("--dest", type=Path, default=DEFAULT_FACE_MODEL)
    fetch.set_defaults(func=_fetch_face_model)


def _add_dataset(sub: Subparsers) -> None:
    dataset = sub.add_parser(
        "dataset", help="put a real dataset under DVC (data/external/NAME + NAME.dvc)"
    )
    dataset.add_argument("action", choices=["add"])
    dataset.add_argument("source", type=Path, help="an archive, a class-folder tree or a .csv")
    dataset.add_argument("--name", required=True, help="folder name under data/external")
    limits = SizeLimits()  # its defaults are the options' defaults
    dataset.add_argument(
        "--max-gb", type=float, default=limits.max_bytes / GIB, help="most bytes, in GiB"
    )
    dataset.add_argument("--max-files", type=int, default=limits.max_files, help="most files")
    dataset.add_argument(
        "--max-ratio",
        type=float,
        default=limits.max_ratio,
        help="most bytes unpacked per byte of an archive",
    )
    dataset.set_defaults(func=_dataset)


def _add_push_run_cache(sub: Subparsers) -> None:
    runs = sub.add_parser(
        "push-run-cache",
        help="`dvc push --run-cache` plus the files its entries record (metrics and plots"
        " included), so `dvc repro --pull` elsewhere restores stages run here",
    )
    runs.add_argument("-r", "--remote", help="DVC remote (default: the core remote)")
    runs.set_defaults(func=_push_run_cache)


def _add_model_options(parser: argparse.ArgumentParser, model_dir: Path) -> None:
    """The options that choose the model and how faces reach it (defaults: ServeSettings')."""
    d = ServeSettings
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=model_dir,
        help=f"an exported model (default: {model_dir})",
    )
    parser.add_argument("--variant", choices=VARIANTS, default=d.variant)
    parser.add_argument("--face-model", type=Path, default=d.face_model)
    parser.add_argument(
        "--detect-face",
        action=argparse.BooleanOptionalAction,
        default=d.detect_face,
        help="classify detected faces (off: the whole image)",
    )
    parser.add_argument(
        "--tta",
        choices=sorted(TTA_VIEWS),
        default=d.tta,
        help="test-time augmentation (default: the model contract's, i.e. as evaluated);"
        " each view is one more model call per image (docs/benchmarks.md)",
    )


def _add_serve(sub: Subparsers) -> None:
    d = ServeSettings  # its field defaults are the options' defaults
    serve = sub.add_parser(
        "serve",
        help="serve the exported model: HTTP API (POST /predict) and a web page at /",
        description="Limits and timeouts are per worker process; docs/serving.md says what the"
        " server guarantees and what to put in front of it.",
    )
    _add_model_options(serve, d.model_dir)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--face-fallback",
        action=argparse.BooleanOptionalAction,
        default=d.face_fallback,
        help="no face found: classify the whole image instead of answering 422",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each with its own model (docs/benchmarks.md: measured effect)",
    )
    for name, kind, text in SERVE_LIMITS:
        flag = "--" + name.replace("_", "-")
        serve.add_argument(flag, type=kind, default=getattr(d, name), help=text)
    serve.add_argument("--ssl-certfile", type=Path, help="PEM certificate: serve HTTPS")
    serve.add_argument("--ssl-keyfile", type=Path, help="PEM private key of --ssl-certfile")
    serve.add_argument(
        "--client-dir",
        type=Path,
        default=d.client_dir,
        help="the on-device client served at /app/ (default: client/, npm packages installed)",
    )
    serve.set_defaults(func=_serve)


def _add_predict(sub: Subparsers) -> None:
    predict = sub.add_parser(
        "predict",
        help="every face in images, folders (recursive) and videos -> JSON lines or CSV",
        description="Runs the same pipeline as `emotion serve` on each input and writes one"
        " record per face (box, probabilities, top class) to stdout or --out; a summary goes to"
        " stderr. Unreadable inputs are reported and the rest still run (exit 2 if any failed).",
    )
    predict.add_argument("paths", nargs="+", type=Path, help="image or video files, folders")
    _add_model_options(predict, RELEASED_MODEL)
    predict.add_argument("--format", choices=FORMATS, default="jsonl")
    predict.add_argument("--out", type=Path, help="output file (default: stdout)")
    predict.add_argument("--fps", type=float, default=1.0, help="video frames sampled per second")
    predict.add_argument("--max-faces", type=int, default=ServeSettings.max_faces)
    predict.set_defaults(func=_predict)


def _add_release(sub: Subparsers) -> None:
    release = sub.add_parser(
        "release",
        help="write a finished run's model as a self-contained folder: ONNX fp32 + int8,"
        " model.json, model card with provenance, params overlay, SHA256SUMS",
    )
    release.add_argument("--out", type=Path, required=True, help="e.g. release/fer2013-v2")
    release.add_argument("--project", type=Path, default=Path(), help="the run's DVC project")
    release.add_argument("--force", action="store_true", help="replace an existing --out")
    release.set_defaults(func=_release)


def _add_client(sub: Subparsers) -> None:
    client = sub.add_parser(
        "client",
        help="write the on-device client (page, npm packages, model, face detector) as static"
        " files",
    )
    client.add_argument("action", choices=["bundle"])
    client.add_argument("out", type=Path, help="output folder")
    client.add_argument("--model-dir", type=Path, help="default: models/")
    client.add_argument("--face-model", type=Path, help="default: the assets stage's BlazeFace")
    client.add_argument("--client-dir", type=Path, help="default: client/")
    client.set_defaults(func=_client)


def _add_plots_page(sub: Subparsers) -> None:
    page = sub.add_parser(
        "plots-page",
        help="write the page template of `dvc plots show` / `dvc plots diff` with vega,"
        " vega-lite and vega-embed inlined from client/node_modules, so charts draw offline"
        " (`make setup` runs it)",
    )
    page.add_argument(
        "--out",
        type=Path,
        default=plots_page.DEFAULT_TEMPLATE,
        help="the file .dvc/config's plots.html_template names (default: %(default)s)",
    )
    page.add_argument(
        "--client-dir",
        type=Path,
        default=plots_page.CLIENT_DIR,
        help="the npm project whose node_modules holds the libraries (default: %(default)s)",
    )
    page.set_defaults(func=_plots_page)


def _add_compare(sub: Subparsers) -> None:
    cmp = sub.add_parser(
        "compare",
        help="compare experiments: `dvc exp show` with every headline metric and the changed"
        " params",
        description=compare.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmp.add_argument("dvc_args", nargs=argparse.REMAINDER, help="more `dvc exp show` options")
    cmp.set_defaults(func=_compare)


def _add_report(sub: Subparsers) -> None:
    report = sub.add_parser(
        "report",
        help="markdown report of metric/params/confusion changes against a git revision",
        description=pr_report.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "--base", required=True, help="git revision to compare against, e.g. origin/main"
    )
    report.add_argument("--out", type=Path, help="write the markdown here (default: stdout)")
    report.add_argument("--plots-dir", type=Path, help="also write `dvc plots diff` HTML here")
    report.set_defaults(func=_report)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(prog="emotion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_profile(sub)
    _add_check(sub)
    _add_fetch_face_model(sub)
    _add_dataset(sub)
    _add_push_run_cache(sub)
    _add_serve(sub)
    _add_predict(sub)
    _add_release(sub)
    _add_client(sub)
    _add_plots_page(sub)
    _add_compare(sub)
    _add_report(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``emotion`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "profile" and args.action != "list" and not args.name:
        parser.error(f"profile {args.action} needs a profile name")
    with exit_on_user_error():
        args.func(args)


if __name__ == "__main__":
    main()
