"""Alerts when a stage fails: Airflow's own failure callback, configured by environment.

Every placelake task calls `notify` from its on_failure_callback. It always
writes one log line; with `PLACELAKE_ALERT_WEBHOOK` set it also POSTs a JSON
message there (Slack, Teams and most chat tools accept `{"text": ...}`), and
with `PLACELAKE_ALERT_EMAIL` set it sends an email through Airflow's SMTP
notifier (connection `smtp_default`, e.g. AIRFLOW_CONN_SMTP_DEFAULT).

An alert names the DAG, task, run and the error. placelake's errors name
files, tables, rules and counts, never patient-level values, so the message
is safe to send to a chat channel. A callback never raises: a broken webhook
must not hide the failure it reports.
"""

from __future__ import annotations

import html
import json
import logging
import os
import urllib.request

log = logging.getLogger(__name__)

_MAX_ERROR = 1000  # a chat message, not a stack trace


def alert_message(context) -> dict:
    """The alert as a JSON-able dict, from an Airflow task context."""
    ti = context["ti"]
    error = context.get("exception")
    detail = f"{type(error).__name__}: {error}"[:_MAX_ERROR] if error is not None else "no error recorded"
    text = f"placelake: task {ti.dag_id}.{ti.task_id} failed in run {ti.run_id} (try {ti.try_number}). {detail}"
    return {
        "text": text,
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "try_number": ti.try_number,
        "error": detail,
    }


def post_webhook(url: str, message: dict, timeout: float = 10) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(message).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the operator's own URL
        response.read()


def notify(context) -> None:
    """Log, and where configured post a webhook and send an email, for a failed task."""
    message = alert_message(context)
    log.error("ALERT %s", message["text"])
    url = os.environ.get("PLACELAKE_ALERT_WEBHOOK")
    if url:
        try:
            post_webhook(url, message)
        except Exception as exc:  # noqa: BLE001 - an alert must never raise
            log.warning("alert webhook failed: %s", exc)
    to = os.environ.get("PLACELAKE_ALERT_EMAIL")
    if to:
        try:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            SmtpNotifier(
                to=[a.strip() for a in to.split(",")],
                subject=message["text"][:150],
                html_content=f"<p>{html.escape(message['text'])}</p>",
            ).notify(context)
        except Exception as exc:  # noqa: BLE001 - an alert must never raise
            log.warning("alert email failed: %s", exc)
