"""The placelake command line: setup, generate, run, status, rebuild, sql, dictionary, link, report, forget.

`make run` is a thin wrapper over `placelake run`.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime

from jobs.config import REPO_ROOT, Settings

log = logging.getLogger("placelake")

DAG_ID = "placelake"
# Commands that write the lake take its lock (jobs/lock.py); a second one is refused with LOCKED.
WRITERS = {"run", "rebuild", "relink", "forget"}
LOCKED = 75  # EX_TEMPFAIL: nothing was done, try again later


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("py4j", "great_expectations", "urllib3", "sqlalchemy", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for the embedded Airflow: SQLite metadata under PLACELAKE_HOME, our DAGs only."""
    if not settings.is_local():
        raise SystemExit(
            "the embedded Airflow keeps its SQLite metadata on local disk: set PLACELAKE_HOME to a "
            "local path, or run the DAG on a real Airflow deployment (see README)"
        )
    home = settings.airflow_home
    os.makedirs(home, exist_ok=True)
    return {
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "GX_ANALYTICS_ENABLED": "False",
    }


def _airflow_db_migrate(env: dict[str, str]) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit("airflow db migrate failed (output above)")
    log.info("airflow metadata database ready (%.0fs)", time.monotonic() - started)


def _load_dags():
    """(landing DAG, build DAG) from dags/placelake.py."""
    spec = importlib.util.spec_from_file_location("placelake_dag_file", REPO_ROOT / "dags" / "placelake.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.placelake_land_dag, module.placelake_dag


def _land_state(states: dict[str, str]) -> str:
    """One word for the landing DAG: a source with nothing new is skipped, and that is a success."""
    if any(s == "failed" or s == "upstream_failed" for s in states.values()):
        return "failed"
    if states and all(s in ("success", "skipped") for s in states.values()):
        return "success"
    return "?"


def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.spark import fetch_delta_jars

    started = time.monotonic()
    jars = fetch_delta_jars(settings)
    log.info("%d jars in %s (%.0fs)", len(jars), settings.jars_dir, time.monotonic() - started)
    return 0


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from jobs import fs
    from jobs.generate import NoiseRates, generate_place, landing_is_empty

    if args.out:
        settings = Settings.from_env({**os.environ, "PLACELAKE_HOME": args.out})
    try:
        noise = NoiseRates.parse(args.noise)
    except ValueError as exc:
        print(f"placelake generate: {exc}", file=sys.stderr)
        return 2
    if not landing_is_empty(settings):
        if not args.force:
            print(f"{settings.landing} already holds deliveries; use --force to replace them")
            return 1
        fs.remove_tree(settings.landing)
        fs.remove_tree(settings.path("truth"))
    started = time.monotonic()
    written = generate_place(
        settings, people=args.people, seed=args.seed, months=args.months, every=args.every, noise=noise
    )
    for source, rows in written.items():
        print(f"  {source:<20} {rows:>9} rows")
    print(f"landing: {settings.landing}  truth: {settings.path('truth')}  ({time.monotonic() - started:.0f}s)")
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.generate import generate_place, landing_is_empty
    from jobs.privacy import pseudonym_key
    from jobs.spark import fetch_delta_jars

    started = time.monotonic()
    pseudonym_key()  # fail before any work, not at curate
    fetch_delta_jars(settings)
    if landing_is_empty(settings):
        log.info("no deliveries in %s: generating a synthetic place of %d people", settings.landing, args.people)
        generate_place(settings, people=args.people, every=args.every)
    env = airflow_env(settings)
    os.environ.update(env)
    _airflow_db_migrate(env)

    logical_date = datetime.combine(args.date, datetime.min.time(), tzinfo=UTC)
    land_dag, build_dag = _load_dags()
    # In a deployment the build waits for the bronze Assets; in-process there is
    # no scheduler, so the two run back to back (the build whatever landing found:
    # it is idempotent, and its report covers a bad landing too).
    log.info("running DAGs %s then %s for %s in-process (dag.test)", land_dag.dag_id, DAG_ID, logical_date.date())
    land_run = land_dag.test(logical_date=logical_date)
    land_states = {ti.task_id: str(ti.state) for ti in land_run.get_task_instances()}
    dag_run = build_dag.test(logical_date=logical_date)
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    states["land"] = _land_state(land_states)
    from jobs.pipeline import session

    print_summary(session(), settings, dag_run.run_id, states, time.monotonic() - started)
    ok = str(land_run.state) == "success" and str(dag_run.state) == "success"
    return 0 if ok else 1


def print_summary(spark, settings: Settings, run_id: str, states: dict[str, str], seconds: float) -> None:
    from pyspark.sql import functions as F

    from jobs import lake
    from jobs.contracts import gold_contracts

    order = ["land", "clean", "link", "curate", "gate", "publish", "report"]
    print()
    print(f"placelake run {run_id}  ({seconds:.0f}s)")
    print("  stages:  " + "  ".join(f"{t}={states.get(t, '?')}" for t in order))
    manifest = settings.table("ops", "landing_manifest")
    if lake.table_exists(spark, manifest):
        files = (
            lake.read(spark, manifest)
            .groupBy("status")
            .agg(F.count("*").alias("files"), F.sum("rows_landed").alias("rows"), F.sum("rows_quarantined").alias("q"))
        )
        by_status = {r.status: r for r in files.collect()}
        landed = by_status.get("landed")
        print(
            "  landing (all runs): "
            + ", ".join(f"{s}={r.files}" for s, r in sorted(by_status.items()))
            + (f"; {landed.rows} rows in bronze, {landed.q} rows quarantined" if landed else "")
        )
    dq_path = settings.table("ops", "dq_results")
    results = []
    if lake.table_exists(spark, dq_path):
        results = lake.read(spark, dq_path).where((F.col("run_id") == run_id) & (F.col("layer") == "gold")).collect()
    print(f"  {'table':<14}{'gate':<7}{'rows':>9}{'version':>9}  failed rules")
    for contract in gold_contracts():
        mine = [r for r in results if r.table == contract.name]
        failed = [r.rule_id for r in mine if not r.success and r.severity == "fail"]
        gate = "-" if not mine else ("FAIL" if failed else "PASS")
        path = settings.table("gold", contract.name)
        if lake.table_exists(spark, path):
            rows, version = lake.read(spark, path).count(), lake.version(spark, path)
        else:
            rows, version = "-", "-"
        print(f"  {contract.name:<14}{gate:<7}{rows!s:>9}{version!s:>9}  {', '.join(failed)}")
    print(f"  quality report: {settings.reports}/quality.html")


def cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from jobs import clean
    from jobs.contracts import source_contracts
    from jobs.spark import get_spark

    names = sorted(c.name for c in source_contracts())
    if args.source != "all" and args.source not in names:
        print(f"placelake rebuild: no source {args.source!r}; sources: {', '.join(names)}, or all", file=sys.stderr)
        return 2
    spark = get_spark(settings)
    started = time.monotonic()
    run_id = f"rebuild__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}"
    since = args.from_date.isoformat() if args.from_date else None
    # The postcode directory first: a rebuilt directory re-locates every source at the next run.
    targets = names if args.source == "all" else [args.source]
    targets = sorted(targets, key=lambda s: s != "ons_postcodes")
    for source in targets:
        counts = clean.clean_source(spark, settings, source, run_id, rebuild=True, rebuild_from=since)
        print(
            f"  silver.{source:<20} {counts['new']:>8} bronze rows cleaned again; {counts['silver']} silver, "
            f"{counts['superseded']} superseded, {counts['quarantined']} quarantined (of {counts['bronze']} in bronze)"
        )
    print(f"rebuilt {', '.join(targets)} from {since or 'the first delivery'} ({time.monotonic() - started:.0f}s)")
    print(
        "downstream must re-run: link -> curate -> gate -> publish -> report "
        "(the next `placelake run`, or a run of DAG placelake, rebuilds them from silver)"
    )
    return 0


def cmd_relink(args: argparse.Namespace, settings: Settings) -> int:
    from jobs import link
    from jobs.spark import get_spark

    spark = get_spark(settings)
    if not link.person_sources(spark, settings):
        print("placelake relink: no silver person sources to link: run the pipeline first", file=sys.stderr)
        return 2
    started = time.monotonic()
    run_id = f"relink__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}"
    linked = link.link_all(spark, settings, run_id=run_id, relink=True)
    print(
        f"relinked {linked['records']} records ({linked['identities']} identities) into {linked['persons']} persons "
        f"under jobs/linkage/linkage.yaml as it is now, the model re-estimated ({time.monotonic() - started:.0f}s)"
    )
    print(f"merges and splits: lake/silver/person_id_history, run {run_id}")
    print(
        "downstream must re-run: curate -> gate -> publish -> report "
        "(the next `placelake run`, or a run of DAG placelake, rebuilds them; its link stage has nothing to do)"
    )
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from pyspark.sql import functions as F

    from jobs import lake
    from jobs.spark import get_spark

    spark = get_spark(settings)
    for layer in ("bronze", "silver", "gold", "ops", "quarantine"):
        tables = lake.table_paths(settings, layer)
        if not tables:
            continue
        print(f"{layer}:")
        for name, path in tables.items():
            print(f"  {name:<22} version {lake.version(spark, path):>4}  {lake.read(spark, path).count():>9} rows")
    manifest_path = settings.table("ops", "landing_manifest")
    if lake.table_exists(spark, manifest_path):
        manifest = lake.read(spark, manifest_path)
        accepted = manifest.where(F.col("status") != "rejected")
        print_deliveries(accepted)
        # A file that waited for its source's contract and has landed since is no longer a reject.
        print_rejected(
            manifest.where(F.col("status") == "rejected").join(
                accepted.select("path", "sha256"), on=["path", "sha256"], how="left_anti"
            )
        )
    dq = settings.table("ops", "dq_results")
    if lake.table_exists(spark, dq):
        last = lake.read(spark, dq).orderBy(F.col("validated_at").desc()).select("run_id").first()
        print(f"last validated run: {last.run_id}")
    return 0


def print_deliveries(accepted) -> None:
    """The latest delivery of every source: its files, rows landed and rows quarantined."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest = accepted.withColumn("_latest", F.max("delivery").over(Window.partitionBy("source")))
    rows = (
        latest.where(F.col("delivery") == F.col("_latest"))
        .groupBy("source", "delivery")
        .agg(
            F.count_if(F.col("status") == "landed").alias("landed"),
            F.count_if(F.col("status") == "duplicate").alias("duplicate"),
            F.sum("rows_landed").alias("rows"),
            F.sum("rows_quarantined").alias("quarantined"),
            F.max("landed_at").alias("landed_at"),
        )
        .orderBy("source")
        .collect()
    )
    print("latest deliveries:")
    print(f"  {'source':<22}{'delivery':<12}{'files':>6}{'dupes':>6}{'rows':>10}{'quarantined':>12}  landed at")
    for r in rows:
        print(
            f"  {r.source:<22}{r.delivery:<12}{r.landed:>6}{r.duplicate:>6}{r.rows:>10}{r.quarantined:>12}"
            f"  {r.landed_at:%Y-%m-%d %H:%M}"
        )


def print_rejected(rejected) -> None:
    """Every rejected file: source, delivery, file name, rule and reason (never a value from inside it)."""
    from pyspark.sql import functions as F

    rows = rejected.orderBy(F.col("landed_at").desc(), "path").collect()
    print(f"rejected files: {len(rows)}")
    for r in rows:
        where = f" line {r.line}" if r.line else ""
        print(f"  {r.source or '-':<22}{r.delivery or '-':<12}{r.file}{where}: {r.rule} — {r.reason}")


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    """Gold only, read-only, audited: the logic lives in jobs.access and jobs.sqlshell."""
    from jobs.access import AccessError, analyst_session, end_analyst_session
    from jobs.spark import get_spark
    from jobs.sqlshell import Shell, quiet_spark_errors, repl

    spark = get_spark(settings)
    if not args.verbose:
        quiet_spark_errors()
    try:
        state = analyst_session(spark, settings, args.as_of)
    except AccessError as exc:
        print(f"placelake sql: {exc}", file=sys.stderr)
        return 2
    try:
        shell = Shell(spark, settings, state, fmt=args.format, limit=args.limit)
        if args.query is None:
            return repl(shell, sys.stdin, interactive=sys.stdin.isatty())
        query = args.query if args.query != "-" else sys.stdin.read()
        return 0 if shell.run_and_print(query.strip().rstrip(";")) else 1
    finally:
        end_analyst_session(spark)


def cmd_dictionary(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.dictionary import write_dictionary

    for path in write_dictionary(settings):
        print(path)
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from pyspark.sql import functions as F

    from jobs import lake, report
    from jobs.spark import get_spark

    spark = get_spark(settings)
    run_id = args.run_id
    if run_id is None:
        dq = settings.table("ops", "dq_results")
        if not lake.table_exists(spark, dq):
            print("no validation results yet: run `placelake run` first", file=sys.stderr)
            return 1
        run_id = lake.read(spark, dq).orderBy(F.col("validated_at").desc()).first().run_id
    path = report.write_report(spark, settings, run_id)
    print(path)
    if args.open:
        import webbrowser

        webbrowser.open(f"file://{path}" if settings.is_local() else path)
    return 0


def cmd_link(args: argparse.Namespace, settings: Settings) -> int:
    """Link a data engineer's own CSV files; bad input is one clear line naming file, line and rule."""
    from pathlib import Path

    from jobs.linkage.files import LinkInputError, link_files, read_input
    from jobs.spark import get_spark

    try:
        for path in args.input:
            read_input(Path(path))  # fail on bad input before starting Spark
    except LinkInputError as exc:
        print(f"placelake link: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    spark = get_spark(settings, app_name="placelake-link")
    try:
        against = Path(args.against) if args.against else None
        result = link_files(
            spark, [Path(p) for p in args.input], Path(args.output), engine=settings.link_engine, against=against
        )
    except LinkInputError as exc:
        print(f"placelake link: {exc}", file=sys.stderr)
        return 2
    print(
        f"linked {result['files']} files ({result['identities']} distinct identities) in {time.monotonic() - started:.0f}s"
    )
    if result["new_identities"] is not None:
        print(f"  a delivery against {args.against}: {result['new_identities']} new identities scored with its model")
    print(f"  compared: {', '.join(result['compared']) or 'nothing but record_id'} (Splink on {result['engine']})")
    for metric, group, value in result["metrics"]:
        shown = f"{value:.4f}" if "rate" in metric or "share" in metric else f"{value:.0f}"
        print(f"  {metric:<26}{group:<24}{shown:>10}")
    print(f"  links: {Path(args.output) / 'links.csv'}")
    return 0


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    """Right to erasure (jobs/forget.py): every layer, every earlier table version; the number is never printed."""
    from jobs.forget import ForgetError, forget, nhs_number
    from jobs.privacy import pseudonym_key
    from jobs.spark import get_spark

    typed = list(args.nhs_number or [])
    if args.from_file:
        # A number on the command line is visible in `ps` and shell history; a file or stdin is not.
        if args.from_file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(args.from_file, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        typed += [line.strip() for line in lines if line.strip()]
    try:
        if not typed:
            raise ForgetError("give at least one --nhs-number or --from-file")
        numbers = sorted({nhs_number(n) for n in typed})
    except ForgetError as exc:
        print(f"placelake forget: {exc}", file=sys.stderr)
        return 2
    pseudonym_key()  # the erasure is recorded as an HMAC: fail before any work without the key
    started = time.monotonic()
    result = forget(get_spark(settings), settings, numbers)
    print(
        f"forgot {len(numbers)} NHS number(s): {result['people']} person(s), {result['records']} records; "
        f"{result['rows_removed']} rows from {result['tables_changed']} tables, "
        f"{result['landing_files_rewritten']} landing file(s) rewritten; vacuumed ({time.monotonic() - started:.0f}s)"
    )
    for table, rows in sorted(result["tables"].items()):
        print(f"  {table:<40}{rows:>8} rows")
    print("recorded in lake/ops/erasures (as an HMAC). Aggregates are rebuilt by the next `placelake run`.")
    return 0


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="placelake",
        description="A place-based lakehouse for council and NHS data. Everything lives under "
        "$PLACELAKE_HOME (default ./var); Spark runs on $PLACELAKE_SPARK_MASTER (default local[*]).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("setup", help="fetch the Delta jars from Maven Central once, for offline runs")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("generate", help="generate a synthetic place into $PLACELAKE_HOME/landing (truth beside it)")
    p.add_argument("--people", type=int, default=2000, help="residents to generate (default 2000)")
    p.add_argument("--seed", type=int, default=20261126, help="random seed; same seed, byte-identical files")
    p.add_argument("--months", type=int, default=12, help="simulated period in months (default 12)")
    p.add_argument("--every", type=int, default=6, help="months between increments after the full extract (default 6)")
    p.add_argument("--out", help="write landing/ and truth/ under this directory instead of $PLACELAKE_HOME")
    p.add_argument(
        "--noise", action="append", default=[], metavar="KIND=RATE", help="override a noise rate (repeatable)"
    )
    p.add_argument("--force", action="store_true", help="replace deliveries already in landing")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("run", help="run the whole pipeline DAG in-process (generating a place if landing is empty)")
    p.add_argument(
        "--date",
        type=_parse_date,
        default=datetime.now(UTC).date(),
        help="the run's logical date, YYYY-MM-DD (default today, UTC)",
    )
    p.add_argument("--people", type=int, default=2000, help="size of the place generated when landing is empty")
    # Every delivered file costs a few seconds to land: a full extract and one increment keep the
    # embedded run within its five minutes. `placelake generate --every 1` makes monthly deliveries.
    p.add_argument(
        "--every", type=int, default=12, help="months between increments of the place generated (default 12)"
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "rebuild", help="clean a source's silver again from bronze (after an adapter or standardiser changed)"
    )
    p.add_argument("--source", required=True, help="the source to rebuild, or all")
    p.add_argument(
        "--from",
        dest="from_date",
        type=_parse_date,
        help="rebuild only deliveries on or after this date, YYYY-MM-DD (default: every delivery)",
    )
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser(
        "relink",
        help="link every silver record again and re-estimate the model (after a change to linkage.yaml); "
        "person_ids are kept where the new clusters allow",
    )
    p.set_defaults(func=cmd_relink)

    p = sub.add_parser(
        "status", help="tables with their Delta version and rows; the latest delivery per source; rejected files"
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("sql", help="query the published gold tables (gold.person, ...); no query: an interactive shell")
    p.add_argument(
        "query", nargs="?", help="the query, or - to read it from stdin; omit it for a shell (statements end in ;)"
    )
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output format (default table)")
    p.add_argument("--limit", type=int, default=100, help="rows to print at most, 0 for all (default 100)")
    p.add_argument("--as-of", metavar="RUN_ID|VERSION", help="read gold as a run published it, or at a Delta version")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("dictionary", help="write the data dictionary (reports/dictionary.html and .md)")
    p.set_defaults(func=cmd_dictionary)

    p = sub.add_parser("link", help="link your own CSV files (record_id plus any identity columns) into persons")
    p.add_argument("--input", action="append", required=True, metavar="CSV", help="an input file (repeatable)")
    p.add_argument("--output", required=True, metavar="DIR", help="where to write links.csv")
    p.add_argument(
        "--against",
        metavar="DIR",
        help="an earlier link's --output: link the inputs as a delivery against it, keeping its person_ids",
    )
    p.set_defaults(func=cmd_link)

    p = sub.add_parser(
        "forget", help="right to erasure: remove everyone linked to an NHS number from every layer, then vacuum"
    )
    p.add_argument("--nhs-number", action="append", metavar="N", help="an NHS number (repeatable); never printed")
    p.add_argument(
        "--from-file",
        metavar="PATH",
        help="NHS numbers one per line, or - for stdin (kept out of ps and shell history)",
    )
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("report", help="(re)write the quality report for a run (default: the latest)")
    p.add_argument("--run-id", help="the run to report on")
    p.add_argument("--open", action="store_true", help="open the report in a web browser")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    settings = Settings.from_env()
    try:
        if args.command not in WRITERS:
            return args.func(args, settings)
        from jobs.lock import lake_lock

        with lake_lock(settings, args.command):
            return args.func(args, settings)
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence: one clear line, no traceback
        from jobs.lock import LakeLocked
        from jobs.privacy import PseudonymKeyMissing
        from jobs.spark import JarsMissing

        if isinstance(exc, LakeLocked):
            print(f"placelake {args.command}: {exc}", file=sys.stderr)
            return LOCKED
        if isinstance(exc, PseudonymKeyMissing | JarsMissing):
            print(f"placelake: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
