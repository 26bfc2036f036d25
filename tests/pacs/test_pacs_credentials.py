"""DICOMweb credentials: OS keyring (a 0600 file and a warning without one), never in URLs, logs, errors,
settings.json or `pacs nodes` output; old settings URLs migrated."""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from pacs_servers import DICOMWEB_PLUGIN, ORTHANC_BIN, OrthancServer, make_ct_study

from radiology_app.cli import main
from radiology_app.core.config import AppPaths, load_settings
from radiology_app.pacs import web
from radiology_app.pacs.credentials import (
    CredentialStore,
    WebCredentials,
    redact,
    split_url_credentials,
)
from radiology_app.pacs.dimse import StudyQuery
from radiology_app.pacs.errors import PacsError
from radiology_app.pacs.nodes import PacsNode, parse_node_spec

PASSWORD = "Tr0ub4dor-3-horse"
TOKEN = "eyJhbGciOi.secret-token.sig"


class MemoryKeyring(KeyringBackend):  # type: ignore[misc]
    """A working keyring backend held in memory (what the OS keyring does, without a desktop session)."""

    priority = 10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.entries[(service, username)]


@pytest.fixture()
def no_keyring() -> Iterator[None]:
    from keyring.backends import fail

    old = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(old)


@pytest.fixture()
def memory_keyring() -> Iterator[MemoryKeyring]:
    old = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(old)


def test_url_credentials_are_split_off_and_redacted() -> None:
    clean, creds = split_url_credentials(f"https://alice:{PASSWORD}@pacs.example:8443/dicom-web")
    assert clean == "https://pacs.example:8443/dicom-web"
    assert creds == WebCredentials("alice", PASSWORD)
    assert PASSWORD not in repr(creds) and "alice" not in repr(creds)
    assert redact(f"401 for alice with {PASSWORD}", creds) == "401 for *** with ***"
    node = parse_node_spec(f"PACS@pacs:104,http://alice:{PASSWORD}@pacs:8042/dicom-web")
    assert node.dicomweb_url == "http://pacs:8042/dicom-web" and node.credentials.password == PASSWORD
    assert PASSWORD not in repr(node)


def test_keyring_holds_them_when_one_is_usable(app_home: Path, memory_keyring: MemoryKeyring) -> None:
    store = CredentialStore(AppPaths(app_home))
    assert store.kind == "keyring"
    store.set("main", WebCredentials("alice", PASSWORD))
    assert store.get("main") == WebCredentials("alice", PASSWORD)
    assert any(PASSWORD in v for v in memory_keyring.entries.values())
    assert not (app_home / "credentials.json").exists()
    store.delete("main")
    assert not store.get("main") and not memory_keyring.entries


def test_without_a_keyring_a_0600_file_and_a_warning(
    app_home: Path, no_keyring: None, caplog: pytest.LogCaptureFixture
) -> None:
    store = CredentialStore(AppPaths(app_home))
    assert store.kind == "file"
    with caplog.at_level(logging.WARNING):
        store.set("main", WebCredentials(token=TOKEN))
    assert stat.S_IMODE(os.stat(app_home / "credentials.json").st_mode) == 0o600
    assert "no usable OS keyring" in caplog.text and TOKEN not in caplog.text
    assert CredentialStore(AppPaths(app_home)).get("main").token == TOKEN


def test_old_settings_urls_migrated_and_nodes_output_masked(
    app_home: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://alice:{PASSWORD}@127.0.0.1:8042/dicom-web"
    (app_home / "settings.json").write_text(
        json.dumps(
            {"pacs_nodes": {"main": {"ae_title": "MAIN", "host": "h", "port": 104, "dicomweb_url": url}}}
        )
    )
    assert main(["pacs", "nodes", "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    settings_text = (app_home / "settings.json").read_text()
    for text in (captured.out, captured.err, settings_text):
        assert PASSWORD not in text and "alice:" not in text
    assert doc["nodes"][0]["dicomweb_url"] == "http://127.0.0.1:8042/dicom-web"
    assert doc["nodes"][0]["dicomweb_credentials"] == {"user": "a***", "password": "***", "token": None}
    assert doc["credential_store"] == "keyring"
    assert CredentialStore().get("main") == WebCredentials("alice", PASSWORD)
    assert stat.S_IMODE(os.stat(app_home / "settings.json").st_mode) == 0o600


def test_nodes_add_reads_secrets_from_stdin_never_argv(
    app_home: Path, no_keyring: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n{TOKEN}\n"))
    args = ["pacs", "nodes", "--add", "main", "MAIN@h:104", "--web-url", "http://h:8042/dicom-web"]
    assert main([*args, "--web-user", "alice", "--web-password", "--web-token", "--json"]) == 0
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err and TOKEN not in out.out + out.err
    assert "no usable OS keyring" in out.err  # the visible warning
    assert PASSWORD not in (app_home / "settings.json").read_text()
    assert load_settings().pacs_nodes["main"]["dicomweb_url"] == "http://h:8042/dicom-web"
    assert CredentialStore().get("main") == WebCredentials("alice", PASSWORD, TOKEN)
    assert main(["pacs", "nodes", "--remove", "main", "--json"]) == 0
    assert not CredentialStore().get("main")


@pytest.fixture(scope="module")
def locked_orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """Orthanc whose REST and DICOMweb services need a user and password."""
    if not ORTHANC_BIN or not DICOMWEB_PLUGIN.exists():
        pytest.skip("Orthanc with its DICOMweb plugin is not installed")
    server = OrthancServer(tmp_path_factory.mktemp("locked"), users={"alice": PASSWORD}).start()
    try:
        yield server
    finally:
        server.stop()


def test_dicomweb_with_stored_credentials_and_errors_without_secrets(
    locked_orthanc: OrthancServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = locked_orthanc.dicomweb_url
    study_uid, files = make_ct_study(
        tmp_path / "s", patient_id="C1", patient_name="CRED^TEST", study_date=dt.date(2024, 5, 6), slices=2
    )
    node = PacsNode("locked", "ORTHANC", "127.0.0.1", locked_orthanc.dicom_port, dicomweb_url=url)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(PacsError) as refused:
            web.qido_studies(node, StudyQuery())  # no credentials: 401
        wrong = WebCredentials("alice", PASSWORD + "x")
        with pytest.raises(PacsError) as wrong_refused:
            web.qido_studies(PacsNode("locked", "ORTHANC", "h", 1, url, credentials=wrong), StudyQuery())
        good = PacsNode("locked", "ORTHANC", "h", 1, url, credentials=WebCredentials("alice", PASSWORD))
        assert web.stow_files(good, files).sent == 2
        assert study_uid in {m.study_uid for m in web.qido_studies(good, StudyQuery())}
    assert "401" in str(refused.value) or "Unauthorized" in str(refused.value)
    for text in (str(refused.value), str(wrong_refused.value), caplog.text):
        assert PASSWORD not in text and "alice" not in text


def test_bearer_token_sent_as_authorization_header() -> None:
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = b"[]"
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
        node = PacsNode("t", "T", "127.0.0.1", 104, url, credentials=WebCredentials(token=TOKEN))
        assert web.qido_studies(node, StudyQuery()) == []
    finally:
        server.shutdown()
    assert seen == [f"Bearer {TOKEN}"]
