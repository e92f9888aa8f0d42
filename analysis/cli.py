"""Command line: compute studies, print summaries, manage data.

Usage::

    python -m analysis run [--study NAME ...] [--profile NAME] [--refresh]
        (on the backend of [parallel] in analysis.toml or $ANALYSIS_PARALLEL)
    python -m analysis summary [--study NAME ...] [--profile NAME]
    python -m analysis data status
    python -m analysis data fetch NAME [--base-url URL] [--sha256 HEX] [--force]
                                       [--timeout SECONDS]
    python -m analysis cache list
    python -m analysis cache prune [--older-than DAYS] [--study NAME]

A bad command or argument prints a usage error and exits with code 2; an
invalid configuration or data error exits with code 1 and says how to fix it;
Ctrl-C stops with one line and exit code 130 (the cache stays consistent:
entries are written atomically).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from analysis.errors import AnalysisError, UnknownProfileError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exits with code 2 on bad usage)."""
    from analysis.data.fetch import DATASETS
    from analysis.studies import STUDIES

    p = argparse.ArgumentParser(prog="python -m analysis",
                                description="Compute and report the book's studies.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,summary,data,cache}")
    for name, help_ in (("run", "compute studies (reading the cache when current)"),
                        ("summary", "print the executive summaries")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--study", action="append", choices=list(STUDIES), metavar="NAME",
                       help=f"a study to include (repeatable); one of {', '.join(STUDIES)}")
        s.add_argument("--profile", help="profile from analysis.toml (default: "
                                         "$ANALYSIS_PROFILE or 'default')")
        if name == "run":
            s.add_argument("--refresh", action="store_true", help="recompute even if cached")
    d = sub.add_parser("data", help="real datasets: status or fetch")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="{status,fetch}")
    dsub.add_parser("status", help="which real datasets are present")
    f = dsub.add_parser("fetch", help="download a GroupLens release into data/raw")
    f.add_argument("name", choices=list(DATASETS), metavar="NAME",
                   help=f"one of {', '.join(DATASETS)}")
    f.add_argument("--base-url", help="mirror to download from")
    f.add_argument("--sha256", help="pinned SHA-256 of the zip to check as well")
    f.add_argument("--force", action="store_true",
                   help="download again if present (also repairs an incomplete folder)")
    f.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="give up on a server that does not answer (default 30)")
    c = sub.add_parser("cache", help="list or prune cached results")
    csub = c.add_subparsers(dest="cache_command", required=True, metavar="{list,prune}")
    csub.add_parser("list", help="every entry: study, dataset, size, age")
    pr = csub.add_parser("prune", help="delete entries (all, or older than --older-than)")
    pr.add_argument("--older-than", type=float, default=0.0, metavar="DAYS",
                    help="only entries at least this many days old (default: all)")
    pr.add_argument("--study", choices=list(STUDIES), metavar="NAME",
                    help="only this study's entries")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from analysis.config import unknown_environment

    for warning in unknown_environment():
        print(f"warning: {warning}", file=sys.stderr)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "summary":
            return _summary(args)
        if args.command == "cache":
            return _cache(args)
        return _data(args)
    except UnknownProfileError as exc:  # a bad --profile is a usage error
        parser.error(str(exc))
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: the run stopped; the result cache is intact (entries are "
              "written atomically, so nothing half-written is kept).", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    import pandas as pd

    from analysis.config import load_config
    from analysis.report.tables import md_table
    from analysis.runner import run_studies
    from analysis.studies import STUDIES

    config = load_config(profile=args.profile)
    print(f"profile: {config.profile} (from {config.profile_source})", flush=True)
    print(f"parallel: {config.parallel.describe()}", flush=True)
    names = args.study or list(STUDIES)
    bar = tqdm(total=len(names), desc="studies", unit="study", file=sys.stderr)

    def done(name: str, cached: bool) -> None:
        bar.set_postfix_str(f"{name} {'(cached)' if cached else 'computed'}")
        bar.update(1)

    try:
        runs = run_studies(names, config=config, refresh=args.refresh, on_done=done)
    finally:  # an interrupt's one-line message must come after the bar, not before it
        bar.close()
    rows = [{"study": r.name, "status": "cached" if r.cached else "computed",
             "seconds": r.seconds, "dataset": r.result.provenance.dataset,
             "source": r.result.provenance.source, "rows": r.result.provenance.rows}
            for r in runs]
    print(md_table(pd.DataFrame(rows), digits={"seconds": 2}).data)
    return 0


def _summary(args: argparse.Namespace) -> int:
    from analysis.config import load_config
    from analysis.report.summaries import render_summary
    from analysis.runner import run_study
    from analysis.studies import STUDIES, get_study

    config = load_config(profile=args.profile)
    print(f"profile: {config.profile} (from {config.profile_source})\n", file=sys.stderr)
    for name in args.study or list(STUDIES):
        run = run_study(name, config=config)
        print(f"## {get_study(name).TITLE}\n")
        print(render_summary(run.result))
    return 0


def _data(args: argparse.Namespace) -> int:
    import pandas as pd

    from analysis.config import find_config
    from analysis.data.fetch import dataset_status, fetch
    from analysis.data.movielens import MOVIELENS_ENV, choose_movielens
    from analysis.errors import DataError
    from analysis.report.tables import md_table

    root = find_config().parent
    raw = root / "data" / "raw"
    if args.data_command == "status":
        env = os.environ.get(MOVIELENS_ENV, "").strip()
        rows = dataset_status(raw, extra=[Path(env).expanduser()] if env else [])
        print(md_table(pd.DataFrame(rows)).data)
        try:
            choice = choose_movielens("auto", "", root)
        except DataError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            return 1
        used = choice.folder if choice.folder else "synthetic data (planted effects)"
        print(f"\nMovieLens studies with source = 'auto' and no 'path' use: {used} "
              f"({choice.reason}).")
        return 0
    bar = tqdm(unit="B", unit_scale=True, desc=args.name, file=sys.stderr)

    def progress(done: int, total: int | None) -> None:
        bar.total = total
        bar.update(done - bar.n)

    print(f"fetching {args.name} (timeout {args.timeout:g} s; Ctrl-C to stop)", file=sys.stderr)
    folder = fetch(args.name, raw, base_url=args.base_url, sha256=args.sha256,
                   force=args.force, progress=progress, timeout=args.timeout,
                   status=lambda msg: bar.write(msg, file=sys.stderr))
    bar.close()
    print(f"{args.name} is ready in {folder}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    import pandas as pd

    from analysis.config import load_config
    from analysis.report.tables import md_table
    from analysis.runner import default_cache

    cache = default_cache(load_config())
    if args.cache_command == "list":
        entries = cache.entries()
        print(f"cache: {cache.directory} ({len(entries)} entries)")
        if entries:
            print(md_table(pd.DataFrame([{
                "study": e.study, "dataset": e.dataset, "source": e.source,
                "profile": e.profile, "size (KiB)": e.bytes / 1024, "age (days)": e.age_days,
                "file": e.path.name} for e in entries]), digits=1).data)
        return 0
    gone = cache.prune(older_than_days=args.older_than, study=args.study)
    print(f"removed {len(gone)} entries ({sum(e.bytes for e in gone) / 1024:,.0f} KiB) "
          f"from {cache.directory}")
    return 0
