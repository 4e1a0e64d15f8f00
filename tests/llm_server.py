"""A fake OpenAI-compatible chat-completions server for tests (real HTTP on 127.0.0.1).

``FakeLLMServer`` runs a ``http.server.ThreadingHTTPServer`` on a free port in a background
thread and answers ``POST /v1/chat/completions``. By default its reply is a deterministic
function of the last user message, ``reply_for(prompt)``:

  "summary: <sha256(prompt)[:12]> <first 8 words of the prompt>"

so a test can predict every answer without a model. It can be scripted to misbehave for the next
requests (in arrival order): fail with an HTTP status, stall before answering, or send garbage.
It records every request (path, headers, parsed JSON body) and can demand an API key.

Use it as a context manager or through the ``llm_server`` fixture (import the fixture into a test
module: ``from llm_server import llm_server``; pytest puts ``tests/`` on ``sys.path``)::

  with FakeLLMServer(api_key="sk-test") as server:
    client = ChatClient(server.base_url, "fake-model", ...)
    server.fail_next(2, status=500)      # the next two requests get HTTP 500
    server.stall_next(1, seconds=1.0)    # then one request waits 1 s before its answer
    server.garbage_next(1, "no_choices") # then one gets JSON without "choices"
    assert client.complete("hi") == reply_for("hi")
    assert server.num_requests == 5

For other tests (e.g. the text-GNN summariser) pass ``reply_fn`` to answer from the whole
request body: ``FakeLLMServer(reply_fn=lambda body: "profile of " + body["messages"][-1]["content"])``.
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

GARBAGE_KINDS = ("not_json", "no_choices", "no_content", "empty_choices", "null_content")


def reply_for(prompt: str) -> str:
  """The default deterministic reply to a user prompt."""
  digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]
  return f"summary: {digest} " + " ".join(prompt.split()[:8])


def _last_user_message(body: dict[str, Any]) -> str:
  for message in reversed(body.get("messages") or []):
    if isinstance(message, dict) and message.get("role") == "user":
      return str(message.get("content", ""))
  return ""


def default_reply(body: dict[str, Any]) -> str:
  """``reply_for`` of the last user message of a request body."""
  return reply_for(_last_user_message(body))


class FakeLLMServer:
  """A scriptable OpenAI-compatible chat-completions server on 127.0.0.1 (a free port).

  Attributes:
    base_url: ``http://127.0.0.1:<port>/v1`` (valid once started).
    requests: every request received, in arrival order, as dicts with "path", "headers"
      (a plain dict) and "body" (parsed JSON, or None if the body was not JSON).
    finish_reason: the ``finish_reason`` put into successful replies ("stop" by default; set
      "length" to imitate a truncated answer).
    max_in_flight: the most requests that were being handled at the same time.
  """

  def __init__(
    self,
    api_key: str | None = None,
    reply_fn: Callable[[dict[str, Any]], str] = default_reply,
    finish_reason: str = "stop",
  ):
    """Creates a stopped server.

    Args:
      api_key: if given, requests must carry ``Authorization: Bearer <api_key>`` or get HTTP 401.
      reply_fn: maps the parsed request body to the reply content.
      finish_reason: the ``finish_reason`` of successful replies.
    """
    self.api_key = api_key
    self.reply_fn = reply_fn
    self.finish_reason = finish_reason
    self.requests: list[dict[str, Any]] = []
    self.max_in_flight = 0
    self._in_flight = 0
    self._script: collections.deque[tuple[str, Any]] = collections.deque()
    self._lock = threading.Lock()
    self._stopping = threading.Event()
    self._httpd: http.server.ThreadingHTTPServer | None = None
    self._thread: threading.Thread | None = None

  # -------------------------------------------------------------------------------- lifecycle

  def start(self) -> FakeLLMServer:
    """Binds a free port on 127.0.0.1 and serves in a daemon thread."""
    if self._httpd is not None:
      raise RuntimeError("FakeLLMServer already started")
    self._stopping.clear()
    self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
    self._httpd.fake = self
    self._thread = threading.Thread(
      target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    self._thread.start()
    return self

  def stop(self) -> None:
    """Stops serving; stalled handlers are woken and their clients see a closed connection."""
    if self._httpd is None:
      return
    self._stopping.set()
    self._httpd.shutdown()
    self._httpd.server_close()
    if self._thread is not None:
      self._thread.join(timeout=5)
    self._httpd = None
    self._thread = None

  def __enter__(self) -> FakeLLMServer:
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()

  @property
  def port(self) -> int:
    if self._httpd is None:
      raise RuntimeError("FakeLLMServer not started")
    return self._httpd.server_address[1]

  @property
  def base_url(self) -> str:
    return f"http://127.0.0.1:{self.port}/v1"

  # -------------------------------------------------------------------------------- scripting

  def fail_next(self, n: int, status: int = 500, body: str | None = None) -> None:
    """The next ``n`` requests get HTTP ``status`` with a JSON error body (or ``body``)."""
    for _ in range(n):
      self._push(("fail", (int(status), body)))

  def stall_next(self, n: int, seconds: float) -> None:
    """The next ``n`` requests wait ``seconds`` before being answered normally."""
    for _ in range(n):
      self._push(("stall", float(seconds)))

  def garbage_next(self, n: int, kind: str = "not_json") -> None:
    """The next ``n`` requests get HTTP 200 with a malformed body.

    Args:
      n: how many requests.
      kind: "not_json" (plain text), "no_choices" (JSON without "choices"), "empty_choices"
        (``"choices": []``), "no_content" (a message without "content"), "null_content"
        (``"content": null``).
    """
    if kind not in GARBAGE_KINDS:
      raise ValueError(f"unknown garbage kind {kind!r}; expected one of {GARBAGE_KINDS}")
    for _ in range(n):
      self._push(("garbage", kind))

  def reset(self) -> None:
    """Forgets the script and the recorded requests."""
    with self._lock:
      self._script.clear()
      self.requests.clear()
      self.max_in_flight = 0

  @property
  def num_requests(self) -> int:
    """Chat-completion requests received so far (whatever the answer was)."""
    with self._lock:
      return len(self.requests)

  @property
  def prompts(self) -> list[str]:
    """The last user message of every request received, in arrival order."""
    with self._lock:
      return [_last_user_message(r["body"] or {}) for r in self.requests]

  def _push(self, action: tuple[str, Any]) -> None:
    with self._lock:
      self._script.append(action)

  def _take(self, record: dict[str, Any]) -> tuple[str, Any] | None:
    # Recording and popping under one lock ties each scripted action to one arrival.
    with self._lock:
      self.requests.append(record)
      return self._script.popleft() if self._script else None

  # -------------------------------------------------------------------------------- answering

  def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
    content = self.reply_fn(body)
    return {
      "id": "chatcmpl-fake",
      "object": "chat.completion",
      "model": body.get("model", ""),
      "choices": [
        {
          "index": 0,
          "message": {"role": "assistant", "content": content},
          "finish_reason": self.finish_reason,
        }
      ],
      "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


class _HTTPServer(http.server.ThreadingHTTPServer):
  daemon_threads = True  # a stalled handler must never block shutdown
  fake: FakeLLMServer

  def handle_error(self, request, client_address):
    # Clients that gave up (timeouts) close their sockets; that is expected, not news.
    pass


class _Handler(http.server.BaseHTTPRequestHandler):
  server: _HTTPServer

  def log_message(self, format, *args):
    pass

  def _send(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
    self.send_response(status)
    self.send_header("Content-Type", content_type)
    self.send_header("Content-Length", str(len(payload)))
    self.end_headers()
    self.wfile.write(payload)

  def _send_json(self, status: int, obj: Any) -> None:
    self._send(status, json.dumps(obj).encode("utf-8"))

  def do_POST(self) -> None:
    fake = self.server.fake
    with fake._lock:
      fake._in_flight += 1
      fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
    try:
      self._post(fake)
    finally:
      with fake._lock:
        fake._in_flight -= 1

  def _post(self, fake: FakeLLMServer) -> None:
    if self.path.rstrip("/") != "/v1/chat/completions":
      self._send_json(404, {"error": {"message": f"no route {self.path}"}})
      return
    raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
    try:
      body = json.loads(raw.decode("utf-8"))
    except ValueError:
      body = None
    action = fake._take({"path": self.path, "headers": dict(self.headers.items()), "body": body})

    if action is not None and action[0] == "stall":
      # An Event instead of sleep: stop() wakes stalled handlers at once.
      if fake._stopping.wait(action[1]):
        return
      action = None
    expected_auth = None if fake.api_key is None else f"Bearer {fake.api_key}"
    if expected_auth is not None and self.headers.get("Authorization") != expected_auth:
      self._send_json(401, {"error": {"message": "invalid or missing API key"}})
      return
    if action is not None and action[0] == "fail":
      status, text = action[1]
      if text is None:
        self._send_json(status, {"error": {"message": f"scripted failure {status}"}})
      else:
        self._send(status, text.encode("utf-8"), "text/plain")
      return
    if action is not None and action[0] == "garbage":
      self._send_garbage(action[1], body or {})
      return
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
      self._send_json(400, {"error": {"message": "body must be JSON with a messages list"}})
      return
    self._send_json(200, fake._answer(body))

  def _send_garbage(self, kind: str, body: dict[str, Any]) -> None:
    if kind == "not_json":
      self._send(200, b"<html>upstream proxy error</html>", "text/html")
      return
    reply = self.server.fake._answer(body)
    if kind == "no_choices":
      reply.pop("choices")
    elif kind == "empty_choices":
      reply["choices"] = []
    elif kind == "no_content":
      reply["choices"][0]["message"].pop("content")
    elif kind == "null_content":
      reply["choices"][0]["message"]["content"] = None
    self._send_json(200, reply)


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
  """A started ``FakeLLMServer`` without authentication, stopped after the test."""
  with FakeLLMServer() as server:
    yield server
