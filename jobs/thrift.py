"""`make serve-sql`: the Spark Thrift (JDBC/ODBC) server over the gold database, for BI tools.

One Spark session registers the `gold` views (jobs.access), then Spark's own
HiveThriftServer2 serves it over the HiveServer2 protocol, so Power BI,
Tableau, DBeaver, beeline or PyHive connect with
``jdbc:hive2://<host>:<port>/gold``. It binds to localhost unless told
otherwise: there is no authentication in front of it.

Every JDBC session and statement is audited to ops/sql_audit. The server
already tracks them (for its UI) in the application status store; a loop here
reads that store and appends what is new: who (the JDBC user name), when,
from where, which gold tables. Result rows are not counted here (the server
streams them), so `rows` is left empty for Thrift statements.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from jobs import access
from jobs.config import Settings

log = logging.getLogger("placelake.thrift")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 10000


def jdbc_url(host: str, port: int) -> str:
    return f"jdbc:hive2://{host}:{port}/{access.GOLD_DATABASE}"


def _at(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


class ThriftAudit:
    """Turns the server's session and statement records into audit rows, each exactly once."""

    def __init__(self, spark: SparkSession, settings: Settings, state: access.GoldState):
        self.spark, self.settings, self.state = spark, settings, state
        jvm = spark._jvm
        store = spark.sparkContext._jsc.sc().statusStore().store()
        self.store = jvm.org.apache.spark.sql.hive.thriftserver.ui.HiveThriftServer2AppStatusStore(store)
        self.sessions_seen: set[str] = set()
        self.statements_seen: set[str] = set()

    def _seq(self, seq) -> list:
        return [seq.apply(i) for i in range(seq.size())]

    def new_rows(self) -> list[dict]:
        rows = []
        sessions = {s.sessionId(): s for s in self._seq(self.store.getSessionList())}
        for sid, s in sessions.items():
            if sid not in self.sessions_seen:
                self.sessions_seen.add(sid)
                rows.append(
                    access.audit_row(
                        interface="thrift",
                        statement="CONNECT",
                        tables=[],
                        rows=None,
                        status="ok",
                        user=s.userName() or "anonymous",
                        client=s.ip(),
                        session_id=sid,
                        as_of=self.state.as_of,
                        at=_at(s.startTimestamp()),
                    )
                )
        for e in self._seq(self.store.getExecutionList()):
            finished = e.finishTimestamp() > 0 or e.closeTimestamp() > 0
            if not finished or e.execId() in self.statements_seen:
                continue
            self.statements_seen.add(e.execId())
            session = sessions.get(e.sessionId())
            statement = e.statement() or ""
            rows.append(
                access.audit_row(
                    interface="thrift",
                    statement=statement,
                    tables=access.referenced_tables(self.spark, statement, self.state.tables),
                    rows=None,
                    status="error" if (e.detail() or "") else "ok",
                    user=e.userName() or "anonymous",
                    client=session.ip() if session is not None else None,
                    session_id=e.sessionId(),
                    as_of=self.state.as_of,
                    at=_at(e.startTimestamp()),
                )
            )
        return rows

    def flush(self) -> int:
        rows = self.new_rows()
        access.write_audit(self.spark, self.settings, rows)
        return len(rows)


def serve(settings: Settings, host: str, port: int, as_of: str | None = None, poll_seconds: float = 2.0) -> int:
    from jobs.spark import delta_jars, get_spark

    # The server's own threads load classes from the JVM's classpath, not from spark.jars:
    # without the Delta jars there, every JDBC session fails to find the Delta catalog.
    # Delta's own jars only: the fetched set also holds older Jackson jars that must not shadow Spark's.
    delta_only = [j for j in delta_jars(settings) if os.path.basename(j).startswith("io.delta_delta-")]
    # runSQLOnFiles=false in the JVM's own configuration, so every JDBC session (a new Spark session
    # each) starts unable to name a raw path such as delta.`/lake/silver/person`.
    os.environ["PYSPARK_SUBMIT_ARGS"] = (
        f"--driver-class-path {os.pathsep.join(delta_only)} --conf spark.sql.runSQLOnFiles=false pyspark-shell"
    )
    # HiveServer2 reads its bind address from these (they win over any hive-site.xml).
    os.environ["HIVE_SERVER2_THRIFT_BIND_HOST"] = host
    os.environ["HIVE_SERVER2_THRIFT_PORT"] = str(port)
    spark = get_spark(settings, app_name="placelake-thrift")
    spark.conf.set("hive.server2.thrift.bind.host", host)
    spark.conf.set("hive.server2.thrift.port", str(port))
    state = access.analyst_session(spark, settings, as_of)
    jvm = spark._jvm
    server = jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
        spark._jsparkSession.sqlContext()
    )
    audit = ThriftAudit(spark, settings, state)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info(
        "placelake SQL server listening: %s  (gold tables: %s%s); Ctrl-C to stop",
        jdbc_url(host, port),
        ", ".join(state.tables),
        f"; as of {state.as_of}" if state.as_of else "",
    )
    try:
        while not stop.wait(poll_seconds):
            audit.flush()
    finally:
        audit.flush()
        server.stop()
        spark.stop()
        log.info("placelake SQL server stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.thrift", description="Serve the gold tables over JDBC/ODBC (Spark Thrift server)."
    )
    parser.add_argument("--host", default=os.environ.get("PLACELAKE_SQL_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PLACELAKE_SQL_PORT", DEFAULT_PORT)))
    parser.add_argument("--as-of", metavar="RUN_ID|VERSION", help="serve gold as a run published it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-5s %(name)s: %(message)s")
    for noisy in ("py4j",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return serve(Settings.from_env(), args.host, args.port, args.as_of)
    except access.AccessError as exc:
        log.error("placelake serve-sql: %s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
