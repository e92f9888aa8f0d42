"""`data fetch`: download, checksum and extraction, against a local HTTP server."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler

import pytest

from analysis.cli import main
from analysis.data.fetch import dataset_status, fetch, md5_from_text
from analysis.data.movielens import load_movielens
from analysis.errors import FetchError
from tests.fixtures import write_csv


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1 with a small ml-latest-small.zip and its .md5."""
    www = tmp_path / "www"
    www.mkdir()
    src = write_csv(tmp_path / "src" / "ml-latest-small")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in src.iterdir():
            zf.write(f, f"ml-latest-small/{f.name}")
    payload = buf.getvalue()
    (www / "ml-latest-small.zip").write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    (www / "ml-latest-small.zip.md5").write_text(f"MD5 (ml-latest-small.zip) = {md5}\n")
    httpd = HTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}", "www": www,
           "sha256": hashlib.sha256(payload).hexdigest()}
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_verifies_and_extracts(server, tmp_path):
    raw = tmp_path / "raw"
    seen = []
    folder = fetch("ml-latest-small", raw, base_url=server["url"], sha256=server["sha256"],
                   progress=lambda done, total: seen.append((done, total)))
    assert folder == raw / "ml-latest-small"
    assert len(load_movielens(folder).ratings) == 5
    assert seen and seen[-1][0] == seen[-1][1]
    assert [p.name for p in raw.iterdir()] == ["ml-latest-small"]  # no temp files left
    status = {r["name"]: r for r in dataset_status(raw)}
    assert status["ml-latest-small"]["status"] == "present"
    assert status["ml-25m"]["status"] == "missing"


def test_checksum_mismatch(server, tmp_path):
    (server["www"] / "ml-latest-small.zip.md5").write_text("0" * 32 + "  ml-latest-small.zip\n")
    with pytest.raises(FetchError, match="failed its checksum"):
        fetch("ml-latest-small", tmp_path / "raw", base_url=server["url"])
    assert not (tmp_path / "raw" / "ml-latest-small").exists()


def test_pinned_sha256_mismatch(server, tmp_path):
    with pytest.raises(FetchError, match="does not match the pinned"):
        fetch("ml-latest-small", tmp_path / "raw", base_url=server["url"], sha256="ab" * 32)


def test_missing_file_on_server(server, tmp_path):
    with pytest.raises(FetchError, match="Download of .*ml-1m.zip failed"):
        fetch("ml-1m", tmp_path / "raw", base_url=server["url"])


def test_unknown_dataset(tmp_path):
    with pytest.raises(FetchError, match="Unknown dataset 'ml-2m'"):
        fetch("ml-2m", tmp_path)


def test_md5_file_formats():
    h = "d41d8cd98f00b204e9800998ecf8427e"
    assert md5_from_text(f"MD5 (x.zip) = {h}") == h
    assert md5_from_text(f"{h.upper()}  x.zip") == h
    with pytest.raises(FetchError, match="does not contain an MD5"):
        md5_from_text("<html>not found</html>")


def test_cli_fetch_and_status(server, tmp_path, monkeypatch, capsys):
    (tmp_path / "analysis.toml").write_text("")
    monkeypatch.setenv("ANALYSIS_CONFIG", str(tmp_path / "analysis.toml"))
    assert main(["data", "fetch", "ml-latest-small", "--base-url", server["url"]]) == 0
    assert (tmp_path / "data" / "raw" / "ml-latest-small" / "ratings.csv").is_file()
    assert main(["data", "status"]) == 0
    out = capsys.readouterr().out
    assert "| ml-latest-small | present" in out
