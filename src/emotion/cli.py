"""The ``emotion`` command: profiles and params checks (serving arrives with the export stage)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emotion import profiles
from emotion.config import PARAMS_FILE, load_params
from emotion.errors import EmotionError


def _profile(args: argparse.Namespace) -> None:
    if args.action == "list":
        print("\n".join(profiles.available(args.profiles_dir)))
    elif args.action == "show":
        print(
            profiles.render(args.name, profiles.parse_overrides(args.set), args.profiles_dir),
            end="",
        )
    else:
        profiles.use(args.name, profiles.parse_overrides(args.set), args.params, args.profiles_dir)
        print(
            f"{args.params}: now profile '{args.name}'"
            + (f" with {', '.join(args.set)}" if args.set else "")
            + "; run `dvc repro` (or `dvc status` to see what will rerun)"
        )


def _check(args: argparse.Namespace) -> None:
    load_params(args.params)
    print(f"{args.params}: OK")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(prog="emotion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    prof = sub.add_parser("profile", help="list, show or switch configuration profiles")
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
    prof.set_defaults(func=_profile)

    check = sub.add_parser("check", help="validate params.yaml against the schema")
    check.add_argument("--params", type=Path, default=Path(PARAMS_FILE))
    check.set_defaults(func=_check)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``emotion`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "profile" and args.action != "list" and not args.name:
        parser.error(f"profile {args.action} needs a profile name")
    try:
        args.func(args)
    except EmotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
