"""scripts/download_dataset.py against a local HTTP server (127.0.0.1) serving an archive made here:
success, an interrupted download resumed, a corrupt archive refused without a half-written
folder, a hand-placed archive unpacked offline, and the offline message."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from scripts.download_dataset import main as download_main


def dataset_zip(name: str = "tiny2set", files: int = 40) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
        for side in ("trainA", "trainB", "testA", "testB"):
            for i in range(files // 4):
                bundle.writestr(f"{name}/{side}/{i:03d}.jpg", bytes(range(256)) * 20)
    return buffer.getvalue()


class Server:
    """Serves ``payload`` at /NAME.zip; ``cut_after`` bytes only on the first GET (a dropped
    connection); honours ``Range`` requests."""

    def __init__(self, payload: bytes, cut_after: int | None = None) -> None:
        self.payload, self.cut_after, self.requests = payload, cut_after, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server.requests.append(self.headers.get("Range"))
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None and len(server.requests) == 1:
                    self.wfile.write(body[:server.cut_after])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-file
                    return
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}.zip"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def fetch(root: Path, url: str, *extra: str) -> int:
    return download_main(["tiny2set", "--root", str(root), "--url", url, "--no_progress", *extra])


def test_download_checks_and_unpacks(tmp_path):
    payload = dataset_zip()
    with Server(payload) as server:
        assert fetch(tmp_path, server.url("tiny2set"), "--sha256", hashlib.sha256(payload).hexdigest()) == 0
    assert sorted(p.name for p in (tmp_path / "tiny2set").iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert len(list((tmp_path / "tiny2set" / "trainA").iterdir())) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny2set"]  # archive removed, no temporary folders


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path, capsys):
    payload = dataset_zip()
    with Server(payload, cut_after=len(payload) // 3) as server:
        assert fetch(tmp_path, server.url("tiny2set")) == 2
        assert "run the same command again to resume" in capsys.readouterr().err
        part = tmp_path / "tiny2set.zip.part"
        assert part.stat().st_size == len(payload) // 3 and not (tmp_path / "tiny2set").exists()
        assert fetch(tmp_path, server.url("tiny2set")) == 0
        assert server.requests[-1] == f"bytes={len(payload) // 3}-"
    assert "resuming tiny2set.zip" in capsys.readouterr().out
    assert (tmp_path / "tiny2set" / "testB" / "009.jpg").read_bytes() == bytes(range(256)) * 20


def test_a_corrupt_archive_is_refused_without_a_half_written_folder(tmp_path, capsys):
    payload = bytearray(dataset_zip())
    payload[len(payload) // 2: len(payload) // 2 + 64] = b"\x00" * 64  # damage a member's data
    with Server(bytes(payload)) as server:
        assert fetch(tmp_path, server.url("tiny2set")) == 2
    assert "is not a complete archive" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no dataset folder, no temporary folder, the bad download deleted
    with Server(dataset_zip()) as server:
        assert fetch(tmp_path, server.url("tiny2set"), "--sha256", "0" * 64) == 2
    assert "not the expected" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_offline_it_names_the_url_and_unpacks_a_hand_placed_archive(tmp_path, capsys):
    with Server(b"") as server:
        url = server.url("tiny2set")
    assert fetch(tmp_path, url) == 2  # the server is gone: connection refused
    error = capsys.readouterr().err
    assert url in error and str(tmp_path / "tiny2set.zip") in error
    (tmp_path / "tiny2set.zip").write_bytes(dataset_zip())
    assert fetch(tmp_path, url) == 0
    assert (tmp_path / "tiny2set" / "trainB").is_dir() and (tmp_path / "tiny2set.zip").exists()  # the user's file stays


def test_names_and_archive_paths(tmp_path, capsys):
    from util.download import known_source

    assert known_source("horse2zebra").url.endswith("/cyclegan/datasets/horse2zebra.zip")
    assert known_source("facades", "pix2pix").url.endswith("/pix2pix/datasets/facades.tar.gz")
    assert download_main(["nonsense", "--root", str(tmp_path)]) == 2
    assert "unknown dataset 'nonsense'" in capsys.readouterr().err
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as bundle:
        bundle.writestr("../escape.txt", "x")
    (tmp_path / "tiny2set.zip").write_bytes(evil.getvalue())
    assert fetch(tmp_path, "http://127.0.0.1:9/tiny2set.zip") == 2
    assert "outside the dataset folder" in capsys.readouterr().err and not (tmp_path.parent / "escape.txt").exists()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(variable, raising=False)
