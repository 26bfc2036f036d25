"""Subcommands ``batch`` and ``pacs echo|find|get|move|send|nodes`` (see the shared CLI contract).

A PACS node is given by its settings name (``Settings.pacs_nodes``) or as ``AET@host:port`` (append
``,http://host:port/dicom-web`` for DICOMweb). pynetdicom, the pipeline and torch are imported inside
the handlers only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from radiology_app.cli._common import add_command, emit, terminal_progress, to_jsonable
from radiology_app.core.errors import ConfigError

NODE_HELP = "a node name from the settings, or AET@host:port[,http://host:port/dicom-web]"


def register(sub: Any) -> None:
    """Register ``batch`` and ``pacs`` on the ``radiology-app`` parser."""
    p = add_command(
        sub,
        "batch",
        _cmd_batch,
        "import every study under the paths; optionally analyse each and write its report",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="file, folder, .zip or DICOMDIR")
    p.add_argument("--analyze", action="store_true", help="analyse each study")
    p.add_argument("--report-dir", type=Path, metavar="DIR", help="write each study's PDF report here")
    p.add_argument(
        "--summary",
        type=Path,
        metavar="FILE",
        help="cohort summary of every nodule of every study (.csv or .json)",
    )
    p.add_argument(
        "--no-retry-failed",
        action="store_true",
        help="leave studies that failed in an earlier run of this batch as failed",
    )
    p.add_argument(
        "--no-prefetch",
        action="store_true",
        help="do not read the next study's files while the current one is analysed",
    )

    pacs = sub.add_parser(
        "pacs",
        help="query and retrieve from a PACS, send results to it",
        description="DICOM networking with a PACS (DIMSE and DICOMweb)",
    )
    psub = pacs.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)

    p = _pacs_command(psub, "echo", _cmd_echo, "verify a node answers (C-ECHO)")
    p = _pacs_command(psub, "find", _cmd_find, "find studies (C-FIND study level, or QIDO-RS with --web)")
    p.add_argument("--patient-id", default="", help="patient ID (wildcards * and ? allowed)")
    p.add_argument("--patient-name", default="", help="patient name, FAMILY^GIVEN (wildcards allowed)")
    p.add_argument("--date-from", type=_date, help="first study date, YYYY-MM-DD")
    p.add_argument("--date-to", type=_date, help="last study date, YYYY-MM-DD")
    p.add_argument("--modality", default="", help="a modality the study contains, e.g. CT")
    p.add_argument("--accession", default="", help="accession number")
    p.add_argument("--study-uid", default="", help="StudyInstanceUID")
    p.add_argument("--limit", type=int, default=None, help="at most this many studies")
    p.add_argument("--web", action="store_true", help="use DICOMweb (QIDO-RS)")
    for name, help_text in (
        ("get", "retrieve a study with C-GET (or WADO-RS with --web) and import it"),
        ("move", "retrieve a study with C-MOVE to our storage SCP and import it"),
    ):
        p = _pacs_command(psub, name, _cmd_retrieve, help_text)
        p.add_argument("study_uid", metavar="STUDY_UID", help="StudyInstanceUID to retrieve")
        p.add_argument("--dest", type=Path, metavar="DIR", help="keep the files here (default: data folder)")
        p.add_argument("--no-import", action="store_true", help="only retrieve, do not import")
        if name == "get":
            p.add_argument("--web", action="store_true", help="use DICOMweb (WADO-RS)")
        else:
            p.add_argument(
                "--port",
                type=int,
                default=None,
                help="port of our storage SCP (default: settings local_storage_port)",
            )
            p.add_argument(
                "--bind",
                default=None,
                help="address our storage SCP listens on (default: settings storage_bind_address, loopback)",
            )
    p = _pacs_command(
        psub, "send", _cmd_send, "send DICOM files (SEG, SR, PDF, CT...) with C-STORE (or STOW-RS with --web)"
    )
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders to send")
    p.add_argument("--study", default=None, help="also send every stored file of this study")
    p.add_argument("--web", action="store_true", help="use DICOMweb (STOW-RS)")
    p = add_command(psub, "nodes", _cmd_nodes, "list the configured nodes, or add/remove one")
    p.add_argument("--add", nargs=2, metavar=("NAME", "AET@HOST:PORT"), help="add or replace a node")
    p.add_argument("--web-url", default="", help="with --add: the node's DICOMweb root URL")
    p.add_argument("--web-user", default="", help="with --add: DICOMweb user name (kept in the OS keyring)")
    p.add_argument(
        "--web-password",
        action="store_true",
        help="with --add: read the DICOMweb password from stdin (or a prompt); kept in the OS keyring",
    )
    p.add_argument(
        "--web-token",
        action="store_true",
        help="with --add: read a DICOMweb bearer token from stdin (or a prompt); kept in the OS keyring",
    )
    p.add_argument("--remove", metavar="NAME", help="remove a node")


def _pacs_command(psub: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
    p = add_command(psub, name, handler, help_text)
    p.add_argument("node", metavar="NODE", help=NODE_HELP)
    p.add_argument("--local-ae", default=None, help="our AE title (default: settings local_ae_title)")
    p.add_argument("--timeout", type=float, default=30.0, help="network timeout, seconds")
    return p


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _settings(args: argparse.Namespace) -> Any:
    """The settings, DICOMweb credentials found in old settings URLs moved into the credential store."""
    from radiology_app.core.config import load_settings
    from radiology_app.pacs.credentials import CredentialStore, migrate_settings_credentials

    settings = migrate_settings_credentials(load_settings(), CredentialStore())
    if getattr(args, "local_ae", None):
        settings = settings.replace(local_ae_title=args.local_ae)
    return settings


def _node(args: argparse.Namespace, settings: Any) -> Any:
    """The node named on the command line; for DICOMweb with its stored credentials."""
    from radiology_app.pacs.credentials import CredentialStore, attach_credentials
    from radiology_app.pacs.nodes import resolve_node

    node = resolve_node(args.node, settings)
    if getattr(args, "web", False) and args.node in settings.pacs_nodes:
        node = attach_credentials([node], CredentialStore())[0]
    return node


def _read_secret(what: str) -> str:
    """One line from stdin (a prompt without echo when stdin is a terminal): secrets stay out of argv."""
    import getpass

    if sys.stdin.isatty():
        return getpass.getpass(f"{what}: ")
    return sys.stdin.readline().rstrip("\r\n")


def _open_db() -> Any:
    from radiology_app.store.database import StudyDatabase

    return StudyDatabase.open_default()


# -- batch --------------------------------------------------------------------------------------------


def _cmd_batch(args: argparse.Namespace) -> int:
    from radiology_app.batch import run_batch

    bar = terminal_progress("batch")
    with _open_db() as db:
        result = run_batch(
            list(args.paths),
            db,
            analyze=args.analyze,
            report_dir=args.report_dir,
            summary_path=args.summary,
            on_progress=bar,
            retry_failed=not args.no_retry_failed,
            prefetch=not args.no_prefetch,
        )

    def human() -> str:
        lines = [
            f"{s.status:9s} {s.study_uid}"
            + (f"  {s.reason}" if s.reason else "")
            + (f"  -> {s.report}" if s.report else "")
            + ("  (done earlier)" if s.skipped else "")
            for s in result.studies
        ]
        lines.append(
            f"{len(result.studies)} studies ({result.processed} this run, {len(result.failed)} failed, "
            f"{len(result.import_issues)} files not imported) in {result.elapsed_s:.1f} s"
        )
        if result.summary:
            lines.append(f"cohort summary: {result.summary}")
        return "\n".join(lines)

    emit(args, result.to_json(), human)
    return 0


# -- pacs ---------------------------------------------------------------------------------------------


def _cmd_echo(args: argparse.Namespace) -> int:
    from radiology_app.pacs import dimse

    settings = _settings(args)
    node = _node(args, settings)
    res = dimse.echo(node, local_ae=settings.local_ae_title, timeout_s=args.timeout)
    emit(
        args,
        {"node": res.node, "ok": res.ok, "status": res.status, "round_trip_ms": round(res.round_trip_ms, 1)},
        f"{res.node}: {'OK' if res.ok else f'status 0x{res.status:04X}'} ({res.round_trip_ms:.0f} ms)",
    )
    return 0 if res.ok else 1


def _cmd_find(args: argparse.Namespace) -> int:
    from radiology_app.pacs import dimse

    settings = _settings(args)
    node = _node(args, settings)
    query = dimse.StudyQuery(
        patient_id=args.patient_id,
        patient_name=args.patient_name,
        date_from=args.date_from,
        date_to=args.date_to,
        modality=args.modality,
        accession_number=args.accession,
        study_uid=args.study_uid,
    )
    if args.web:
        from radiology_app.pacs import web

        matches = web.qido_studies(node, query, limit=args.limit, timeout_s=args.timeout)
    else:
        matches = dimse.find_studies(
            node, query, local_ae=settings.local_ae_title, timeout_s=args.timeout, limit=args.limit
        )

    def human() -> str:
        if not matches:
            return "no matching studies"
        return "\n".join(
            f"{m.study_uid}  {m.patient_id}  {m.patient_name}  "
            f"{m.study_date.isoformat() if m.study_date else '-'}  {'/'.join(m.modalities)}  "
            f"{m.accession_number}  {m.instance_count if m.instance_count is not None else '?'} inst"
            for m in matches
        )

    emit(args, {"node": node.label, "studies": to_jsonable(matches)}, human)
    return 0


def _cmd_retrieve(args: argparse.Namespace) -> int:
    from radiology_app.pacs.retrieve import retrieve_study

    settings = _settings(args)
    node = _node(args, settings)
    method = "move" if args.pacs_command == "move" else ("web" if args.web else "get")
    db = None if args.no_import else _open_db()
    try:
        out = retrieve_study(
            node,
            args.study_uid,
            db,
            method=method,
            dest_dir=args.dest,
            settings=settings,
            storage_port=getattr(args, "port", None),
            bind_address=getattr(args, "bind", None),
            on_progress=terminal_progress(method),
        )
    finally:
        if db is not None:
            db.close()
    r, imp = out.retrieval, out.imported
    folder = str(r.files[0].parent) if r.files else (str(args.dest) if args.dest else None)
    payload = {
        "node": node.label,
        "study_uid": r.study_uid,
        "method": r.method,
        "instances_received": len(r.files),
        "completed": r.completed,
        "failed": r.failed,
        "warning": r.warning,
        "elapsed_s": round(r.elapsed_s, 3),
        "instances_per_s": round(r.instances_per_s, 1),
        "folder": folder,
        "import": None
        if imp is None
        else {
            "run_id": imp.run_id,
            "studies": list(imp.studies),
            "instances_added": imp.instances_added,
            "instances_already_present": imp.instances_already_present,
            "issues": [{"path": i.path, "reason": i.reason} for i in imp.issues],
        },
    }
    text = (
        f"{len(r.files)} instances from {node.label} by {r.method} in {r.elapsed_s:.1f} s "
        f"({r.instances_per_s:.0f}/s), {r.failed} failed"
        + (
            f"; imported: {imp.instances_added} added, {imp.instances_already_present} already present"
            if imp
            else ""
        )
    )
    emit(args, payload, text)
    return 0


def _cmd_send(args: argparse.Namespace) -> int:
    settings = _settings(args)
    node = _node(args, settings)
    paths: list[Path] = list(args.paths)
    if args.study:
        with _open_db() as db:
            study = db.resolve_study(args.study)
            for s in db.series_for_study(study.study_uid):
                paths.extend(Path(i.path) for i in db.instances_for_series(s.series_uid))
    if not paths:
        raise ConfigError("nothing to send: give files or folders, or --study")
    if args.web:
        from radiology_app.pacs import web

        res = web.stow_files(node, paths, timeout_s=args.timeout, on_progress=terminal_progress("send"))
    else:
        from radiology_app.pacs import dimse

        res = dimse.store_files(
            node,
            paths,
            local_ae=settings.local_ae_title,
            timeout_s=args.timeout,
            on_progress=terminal_progress("send"),
        )
    payload = {
        "node": res.node,
        "sent": res.sent,
        "warnings": res.warnings,
        "failed": res.failed,
        "issues": [{"path": i.path, "reason": i.reason} for i in res.issues],
        "elapsed_s": round(res.elapsed_s, 3),
    }
    lines = [f"{res.sent} sent to {res.node} ({res.warnings} with warnings), {res.failed} not sent"]
    lines += [f"  {i.path}: {i.reason}" for i in res.issues]
    emit(args, payload, "\n".join(lines))
    return 0 if res.sent or not res.issues else 1


def _cmd_nodes(args: argparse.Namespace) -> int:
    import dataclasses

    from radiology_app.core.config import save_settings
    from radiology_app.pacs.credentials import CredentialStore, WebCredentials, attach_credentials
    from radiology_app.pacs.nodes import node_to_mapping, nodes_from_settings, parse_node_spec

    settings = _settings(args)
    store = CredentialStore()
    nodes = dict(settings.pacs_nodes)
    if args.add:
        name, spec = args.add
        parsed = parse_node_spec(spec if not args.web_url else f"{spec.partition(',')[0]},{args.web_url}")
        given = WebCredentials(
            user=args.web_user or parsed.credentials.user,
            password=_read_secret("DICOMweb password") if args.web_password else parsed.credentials.password,
            token=_read_secret("DICOMweb token") if args.web_token else parsed.credentials.token,
        )
        nodes[name] = node_to_mapping(dataclasses.replace(parsed, name=name))
        store.set(name, given)
    if args.remove:
        if args.remove not in nodes:
            raise ConfigError(f"no PACS node named {args.remove!r} in the settings")
        del nodes[args.remove]
        store.delete(args.remove)
    if args.add or args.remove:
        settings = settings.replace(pacs_nodes=nodes)
        save_settings(settings)
    configured = attach_credentials(nodes_from_settings(settings).values(), store)
    payload = {
        "nodes": [
            {
                "name": n.name,
                "ae_title": n.ae_title,
                "host": n.host,
                "port": n.port,
                "dicomweb_url": n.dicomweb_url or None,
                "dicomweb_credentials": n.credentials.masked() if n.credentials else None,
            }
            for n in configured
        ],
        "credential_store": store.kind,
        "local_ae_title": settings.local_ae_title,
        "local_storage_port": settings.local_storage_port,
    }
    lines = [
        f"{n.name}: {n.label}"
        + (f"  {n.dicomweb_url}" if n.dicomweb_url else "")
        + (
            f"  (user {n.credentials.masked()['user'] or '-'}, secrets in the {store.kind})"
            if n.credentials
            else ""
        )
        for n in configured
    ]
    lines.append(f"we are {settings.local_ae_title}, storage SCP port {settings.local_storage_port}")
    emit(args, payload, "\n".join(lines))
    return 0
