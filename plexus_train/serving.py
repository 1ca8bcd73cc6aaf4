"""`plexus serve`: a model.tar.gz served here as SageMaker's PyTorch inference container serves it, so the artifact
itself (not the local training directory) is proven to serve.

As SageMaker does, the archive (from the bucket, or a path) is extracted to a directory like /opt/ml/model and
its `code/inference.py` imported, in a fresh interpreter that sees the archive's own code first (its `code/` is
on PYTHONPATH, as the serving toolkit puts it on sys.path) and nothing of this checkout's plexus_train. That
process answers the inference container contract
(https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html): `GET /ping` is 200 once the
model is loaded, `POST /invocations` takes the request body with its Content-Type (and Accept) and answers what
the handlers (`model_fn`, `input_fn`, `predict_fn`, `output_fn`) make of it.

This file is also that server: run as a script it imports only the standard library and the archive's code.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

INFERENCE_SCRIPT = Path("code") / "inference.py"
JSON = "application/json"
LISTENING = "listening on"


# --- the host side: fetch, extract, run the server -----------------------------------------------------------


@contextlib.contextmanager
def extracted(location: str, s3: Any = None) -> Iterator[Path]:
    """The model.tar.gz at `location` (a path, or an s3:// URI read with `s3`) extracted into a temporary
    directory, as SageMaker extracts it into /opt/ml/model; refused when it has no code/inference.py."""
    from plexus_infra.core.aws import call
    from plexus_infra.core.errors import PlexusError
    from plexus_train.locations import is_s3_uri, split_s3_uri

    with tempfile.TemporaryDirectory(prefix="plexus-serve-") as scratch:
        archive = Path(location)
        if is_s3_uri(location):
            bucket, key = split_s3_uri(location)
            archive = Path(scratch) / "model.tar.gz"
            call(s3.download_file, location, Bucket=bucket, Key=key, Filename=str(archive))
        elif not archive.is_file():
            raise PlexusError(f"{location}: no such file")
        model_dir = Path(scratch) / "model"
        try:
            with tarfile.open(archive) as opened:
                opened.extractall(model_dir, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise PlexusError(f"{location}: not a model.tar.gz that can be extracted ({exc})") from None
        if not (model_dir / INFERENCE_SCRIPT).is_file():
            raise PlexusError(
                f"{location}: the archive has no {INFERENCE_SCRIPT.as_posix()}, which SageMaker's PyTorch serving "
                "container imports; train the score with plexus train, whose models carry it"
            )
        yield model_dir


def serve(model_dir: Path, host: str, port: int, say: Callable[[str], None]) -> None:
    """Run the server on the extracted `model_dir` until it stops or Ctrl-C; each line it prints goes to `say`.
    A server that exits before it listens (a damaged model, a port in use) is one PlexusError with its reason."""
    from plexus_infra.core.errors import PlexusError

    environ = {**os.environ, "PYTHONPATH": str(model_dir / "code"), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-P", str(Path(__file__).resolve()), str(model_dir), host, str(port)]
    say(f"serving {model_dir} as SageMaker's inference container would; this machine's Python stands in for the image")
    server = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM stops serving as Ctrl-C does
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(server.stderr or ()), daemon=True)
    reader.start()
    listening = False
    try:
        for line in server.stdout or ():
            listening = listening or line.startswith(LISTENING)
            say(line.rstrip("\n"))
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        _stop(server)
        reader.join(timeout=5)
        signal.signal(signal.SIGTERM, previous)
    if not listening and server.returncode not in (0, -signal.SIGINT, -signal.SIGTERM):
        last = [line.strip() for line in errors if line.strip()]
        raise PlexusError(last[-1].removeprefix("error: ") if last else f"the server exited with {server.returncode}")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop(server: subprocess.Popen[str]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- the server itself (stdlib and the archive's code only) --------------------------------------------------


def load_handlers(model_dir: Path) -> Any:
    """Import the archive's code/inference.py as the serving toolkit imports a user module."""
    spec = importlib.util.spec_from_file_location("inference", model_dir / INFERENCE_SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def handler_class(handlers: Any, model: Any) -> type[BaseHTTPRequestHandler]:
    """The request handler for /ping and /invocations around the loaded `model`."""

    class Invocations(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/ping":
                self._answer(200, b"", JSON)
            else:
                self._answer(404, _error("only GET /ping and POST /invocations are served"), JSON)

        def do_POST(self) -> None:
            if self.path != "/invocations":
                self._answer(404, _error("only GET /ping and POST /invocations are served"), JSON)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            content_type = self.headers.get("Content-Type") or JSON
            accept = self.headers.get("Accept") or JSON
            try:
                request = handlers.input_fn(body, content_type)
                reply = handlers.output_fn(handlers.predict_fn(request, model), accept)
            except ValueError as exc:
                status = 415 if "content type" in str(exc) else 406 if "accept type" in str(exc) else 400
                self._answer(status, _error(str(exc)), JSON)
                return
            except Exception as exc:  # the handlers' own failure: a 500, as the serving toolkit answers it
                self._answer(500, _error(f"{type(exc).__name__}: {exc}"), JSON)
                return
            self._answer(200, reply.encode("utf-8") if isinstance(reply, str) else reply, JSON)

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}".rstrip(), flush=True)

    return Invocations


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode("utf-8")


def main(argv: list[str]) -> int:
    """`python -P serving.py MODEL_DIR HOST PORT`: load the model, then answer until SIGTERM or Ctrl-C."""
    model_dir, host, port = Path(argv[0]), argv[1], int(argv[2])
    try:
        handlers = load_handlers(model_dir)
        model = handlers.model_fn(str(model_dir))
        server = HTTPServer((host, port), handler_class(handlers, model))
    except Exception as exc:  # a damaged model, a port in use: one line, the parent reports it
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    address = f"http://{host}:{server.server_address[1]}"
    package = sys.modules.get("plexus_train")  # the archive's own, imported by its inference.py
    code = Path(package.__file__).parent.parent if package and package.__file__ else Path(handlers.__file__).parent
    print(f"{LISTENING} {address} (GET /ping, POST /invocations); code from {code}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
