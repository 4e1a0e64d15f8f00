"""A small OpenAI-compatible chat-completions client with retries and a disk cache.

The text-GNN summariser asks an LLM to rewrite thousands of node texts per hop. This client makes
that cheap to repeat and safe to interrupt:

- every answer is cached on disk under ``<cache_dir>/llm/<sha256>.json``, keyed by what decides
  the answer (model name, messages, temperature, max_tokens, extra request parameters) and not by
  where it came from (URL, API key), so the same model served elsewhere reuses the cache;
- requests run ``concurrency`` at a time, duplicates are sent once;
- connection errors, timeouts, HTTP 408/429/5xx and malformed replies are retried with exponential
  backoff; other 4xx fail at once; a final failure raises ``LLMError`` naming the URL, model,
  status, a body excerpt and the number of attempts.

Standard library only (``urllib.request``): no HTTP client dependency. Greedy decoding
(temperature 0) by default, so a rerun with the same prompts hits the same cache entries.

Example::

  client = ChatClient("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct")
  texts = client.complete_many(prompts, system="You write capability profiles.")
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import pathlib
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from rp_jax import io

__all__ = ["ChatClient", "LLMError", "default_cache_dir"]

_log = logging.getLogger(__name__)

# Bump when the cache key or file layout changes, so old entries are never misread.
_CACHE_VERSION = "rp_jax.llm/v1"
# Keys the client sets itself; letting extra_params override them would desynchronise the cache
# key from the request (or, for "stream"/"n", break parsing).
_RESERVED_PARAMS = ("model", "messages", "temperature", "max_tokens", "stream", "n")
# Upper bound on one sleep between attempts, whatever backoff or Retry-After say.
_MAX_SLEEP_S = 60.0
_EXCERPT_CHARS = 300
# Jitter spreads retries of concurrent requests; it only affects timing, never results.
_jitter = random.Random()


class LLMError(RuntimeError):
  """A chat-completions request failed for good (after retries where retrying made sense).

  Attributes:
    url: the endpoint that was called.
    model: the model name sent.
    status: the last HTTP status, or None if no HTTP response arrived (timeout, refused, ...).
    excerpt: a short excerpt of the last response body (or the error text).
    attempts: how many HTTP requests were sent for this prompt.
  """

  def __init__(
    self, message: str, *, url: str, model: str, status: int | None, excerpt: str, attempts: int
  ):
    super().__init__(message)
    self.url = url
    self.model = model
    self.status = status
    self.excerpt = excerpt
    self.attempts = attempts


class _Retryable(Exception):
  """One failed attempt that may succeed if tried again."""

  def __init__(self, reason: str, status: int | None = None, body: str = "", wait_s: float = 0.0):
    super().__init__(reason)
    self.reason = reason
    self.status = status
    self.body = body
    self.wait_s = wait_s


class _Fatal(Exception):
  """One failed attempt that retrying cannot fix (e.g. HTTP 400/401/404)."""

  def __init__(self, reason: str, status: int | None = None, body: str = ""):
    super().__init__(reason)
    self.reason = reason
    self.status = status
    self.body = body


def default_cache_dir() -> pathlib.Path:
  """The rp_jax cache root: ``$RP_JAX_CACHE`` if set, else ``~/.cache/rp_jax``."""
  env = os.environ.get("RP_JAX_CACHE")
  if env:
    return pathlib.Path(env).expanduser()
  return pathlib.Path.home() / ".cache" / "rp_jax"


def _excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
  text = " ".join(str(text).split())
  return text if len(text) <= limit else text[:limit] + "..."


def _canonical_json(obj: Any) -> bytes:
  return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _is_loopback(url: str) -> bool:
  host = urllib.parse.urlsplit(url).hostname or ""
  if host == "localhost":
    return True
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return False


def _parse_retry_after(value: str | None) -> float:
  """Seconds from a ``Retry-After`` header given in seconds (HTTP dates are ignored)."""
  if not value:
    return 0.0
  try:
    return max(0.0, float(value))
  except ValueError:
    return 0.0


def _check_settings(
  base_url, model, timeout_s, max_retries, backoff_s, concurrency, max_tokens
) -> None:
  """ValueError naming the first ChatClient argument out of range."""
  if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
    raise ValueError(f"base_url must start with http:// or https://; got {base_url!r}")
  if not isinstance(model, str) or not model:
    raise ValueError(f"model must be a non-empty string; got {model!r}")
  if not timeout_s > 0:
    raise ValueError(f"timeout_s must be > 0; got {timeout_s!r}")
  if int(max_retries) != max_retries or max_retries < 0:
    raise ValueError(f"max_retries must be an integer >= 0; got {max_retries!r}")
  if not backoff_s >= 0:
    raise ValueError(f"backoff_s must be >= 0; got {backoff_s!r}")
  if int(concurrency) != concurrency or concurrency < 1:
    raise ValueError(f"concurrency must be an integer >= 1; got {concurrency!r}")
  if int(max_tokens) != max_tokens or max_tokens < 1:
    raise ValueError(f"max_tokens must be an integer >= 1; got {max_tokens!r}")


def _checked_extra_params(extra_params: Mapping[str, Any] | None) -> dict[str, Any]:
  """A deep copy of the extra request fields; ValueError if one is reserved or not JSON."""
  extra = dict(extra_params or {})
  clash = sorted(set(extra) & set(_RESERVED_PARAMS))
  if clash:
    raise ValueError(
      f"extra_params may not set {clash}; use the ChatClient arguments instead "
      f"(reserved: {list(_RESERVED_PARAMS)})"
    )
  try:
    # A JSON round trip both validates and deep-copies, so later caller edits cannot change
    # requests behind the cache key's back.
    return json.loads(json.dumps(extra, sort_keys=True))
  except (TypeError, ValueError) as e:
    raise ValueError(f"extra_params must be JSON-serialisable: {e}") from None


def _api_key_from_env(api_key_env: str | None) -> str | None:
  """The API key from the environment (None: no key); ValueError if the variable is unset or
  empty."""
  if api_key_env is None:
    return None
  key = os.environ.get(api_key_env)
  if not key:
    state = "is empty" if key == "" else "is not set"
    raise ValueError(
      f"API key environment variable {api_key_env!r} {state}; export it or pass "
      f"api_key_env=None for a server without authentication"
    )
  return key


class ChatClient:
  """Calls ``POST {base_url}/chat/completions`` with caching, retries and bounded concurrency.

  Thread-safe: ``complete`` may be called from several threads; counters are guarded by a lock.

  Attributes:
    num_requests: HTTP requests actually sent (every retry counts).
    num_cache_hits: prompts answered from the disk cache (per distinct prompt).
  """

  def __init__(
    self,
    base_url: str,
    model: str,
    api_key_env: str | None = None,
    timeout_s: float = 60.0,
    max_retries: int = 3,
    backoff_s: float = 1.0,
    concurrency: int = 4,
    cache_dir: str | os.PathLike | None = None,
    temperature: float = 0.0,
    max_tokens: int = 500,
    extra_params: Mapping[str, Any] | None = None,
  ):
    """Creates a client; reads the API key from the environment now, so a missing key fails early.

    Args:
      base_url: the API root, e.g. ``"http://127.0.0.1:8000/v1"``; requests go to
        ``{base_url}/chat/completions``.
      model: the model name sent in every request (and part of the cache key).
      api_key_env: name of the environment variable holding the API key, sent as
        ``Authorization: Bearer <key>``; None sends no Authorization header.
      timeout_s: per-request socket timeout in seconds.
      max_retries: retries after the first attempt (so at most ``max_retries + 1`` requests).
      backoff_s: sleep before retry i (0-based) is ``backoff_s * 2**i`` plus up to 10% jitter.
      concurrency: requests in flight at once in ``complete_many``.
      cache_dir: cache root; entries go to ``<cache_dir>/llm/``. Defaults to
        ``default_cache_dir()``.
      temperature: sampling temperature; 0 is greedy.
      max_tokens: completion length limit per request.
      extra_params: further JSON request fields (e.g. ``{"top_p": 1.0, "seed": 0}``); they are
        part of the cache key.
    """
    _check_settings(base_url, model, timeout_s, max_retries, backoff_s, concurrency, max_tokens)
    extra = _checked_extra_params(extra_params)
    self._api_key: str | None = _api_key_from_env(api_key_env)

    self.base_url = base_url.rstrip("/")
    self.url = self.base_url + "/chat/completions"
    self.model = model
    self.api_key_env = api_key_env
    self.timeout_s = float(timeout_s)
    self.max_retries = int(max_retries)
    self.backoff_s = float(backoff_s)
    self.concurrency = int(concurrency)
    self.temperature = float(temperature)
    self.max_tokens = int(max_tokens)
    self.extra_params: dict[str, Any] = extra
    root = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    self.cache_dir = root / "llm"

    # A server on this machine is never behind the user's HTTP proxy; remote ones may be.
    handlers = [urllib.request.ProxyHandler({})] if _is_loopback(self.url) else []
    self._opener = urllib.request.build_opener(*handlers)
    self._lock = threading.Lock()
    self.num_requests = 0
    self.num_cache_hits = 0

  def __repr__(self) -> str:
    # Never the key itself: reprs end up in logs.
    return (
      f"ChatClient(url={self.url!r}, model={self.model!r}, api_key_env={self.api_key_env!r}, "
      f"cache_dir={str(self.cache_dir)!r})"
    )

  # ----------------------------------------------------------------------------------- public

  def complete(self, prompt: str, system: str | None = None) -> str:
    """Returns the assistant's reply to one user prompt (from the cache if present).

    Args:
      prompt: the user message.
      system: optional system message sent before it.

    Returns:
      ``choices[0].message.content`` of the reply (also when ``finish_reason`` is "length").

    Raises:
      LLMError: the request failed after the allowed retries, or failed for good at once.
    """
    messages = self._messages(prompt, system)
    return self._complete_messages(messages, self._request_key(messages))

  def complete_many(self, prompts: Sequence[str], system: str | None = None) -> list[str]:
    """Returns the replies to many prompts, in order, ``concurrency`` requests at a time.

    Identical prompts are requested once. On a failure the remaining queued requests are
    cancelled and the first failure (in prompt order) is raised; replies already received are
    cached, so a rerun resumes where this one stopped.

    Args:
      prompts: [B] user messages.
      system: optional system message shared by all prompts.

    Returns:
      [B] reply texts, ``result[i]`` answering ``prompts[i]``.
    """
    if isinstance(prompts, str):
      raise TypeError("complete_many expects a sequence of prompts, not a single string")
    messages_list = [self._messages(p, system) for p in prompts]
    keys = [self._request_key(m) for m in messages_list]
    unique: dict[str, list[dict[str, str]]] = {}
    for key, messages in zip(keys, messages_list, strict=True):
      unique.setdefault(key, messages)

    answers: dict[str, str] = {}
    misses = []
    for key, messages in unique.items():
      cached = self._cache_get(key, messages)
      if cached is None:
        misses.append(key)
      else:
        answers[key] = cached

    if misses:
      pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=min(self.concurrency, len(misses)), thread_name_prefix="rp_jax-llm"
      )
      try:
        futures = {
          pool.submit(self._fetch_and_store, unique[k], k, self._payload(unique[k])): k
          for k in misses
        }
        concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
      finally:
        # After a failure (or Ctrl-C) drop the queued requests; in-flight ones finish and cache.
        pool.shutdown(wait=True, cancel_futures=True)
      for future in futures:  # dict order = prompt order
        if not future.cancelled() and future.exception() is not None:
          raise future.exception()
      for future, key in futures.items():
        answers[key] = future.result()
    return [answers[k] for k in keys]

  def cache_path(self, prompt: str, system: str | None = None) -> pathlib.Path:
    """The cache file that holds (or will hold) the reply to this prompt."""
    return self._cache_file(self._request_key(self._messages(prompt, system)))

  # --------------------------------------------------------------------------------- request

  def _messages(self, prompt: str, system: str | None) -> list[dict[str, str]]:
    if not isinstance(prompt, str):
      raise TypeError(f"prompt must be a str; got {type(prompt).__name__}")
    if system is not None and not isinstance(system, str):
      raise TypeError(f"system must be a str or None; got {type(system).__name__}")
    messages = [] if system is None else [{"role": "system", "content": system}]
    messages.append({"role": "user", "content": prompt})
    return messages

  def _key_fields(self, messages: list[dict[str, str]]) -> dict[str, Any]:
    # Everything that decides the answer, nothing that only decides where it came from.
    return {
      "version": _CACHE_VERSION,
      "model": self.model,
      "messages": messages,
      "temperature": self.temperature,
      "max_tokens": self.max_tokens,
      "extra_params": self.extra_params,
    }

  def _request_key(self, messages: list[dict[str, str]]) -> str:
    return hashlib.sha256(_canonical_json(self._key_fields(messages))).hexdigest()

  def _payload(self, messages: list[dict[str, str]]) -> bytes:
    body = dict(self.extra_params)
    body.update(
      model=self.model,
      messages=messages,
      temperature=self.temperature,
      max_tokens=self.max_tokens,
    )
    return json.dumps(body, ensure_ascii=False).encode("utf-8")

  def _complete_messages(self, messages: list[dict[str, str]], key: str) -> str:
    cached = self._cache_get(key, messages)
    if cached is not None:
      return cached
    return self._fetch_and_store(messages, key, self._payload(messages))

  def _fetch_and_store(self, messages: list[dict[str, str]], key: str, payload: bytes) -> str:
    content, finish_reason = self._fetch(payload)
    self._cache_put(key, messages, content, finish_reason)
    return content

  def _fetch(self, payload: bytes) -> tuple[str, str | None]:
    """Sends one prompt with retries; returns (content, finish_reason) or raises LLMError."""
    last: _Retryable | _Fatal | None = None
    attempts = 0
    for i in range(self.max_retries + 1):
      attempts += 1
      try:
        return self._attempt(payload)
      except _Fatal as e:
        last = e
        break
      except _Retryable as e:
        last = e
        if i == self.max_retries:
          break
        sleep_s = self.backoff_s * 2**i
        sleep_s = min(_MAX_SLEEP_S, max(sleep_s * (1.0 + 0.1 * _jitter.random()), e.wait_s))
        _log.info(
          "LLM request to %s (model %r) attempt %d failed (%s); retrying in %.2f s",
          self.url,
          self.model,
          attempts,
          e.reason,
          sleep_s,
        )
        time.sleep(sleep_s)
    assert last is not None
    status = f"HTTP {last.status}" if last.status is not None else "no HTTP status"
    excerpt = _excerpt(last.body) if last.body else ""
    gave_up = "gave up" if isinstance(last, _Retryable) else "not retried"
    raise LLMError(
      f"LLM request to {self.url} (model {self.model!r}) failed after {attempts} attempt(s), "
      f"{gave_up}: {last.reason} ({status})" + (f"; response body: {excerpt!r}" if excerpt else ""),
      url=self.url,
      model=self.model,
      status=last.status,
      excerpt=excerpt,
      attempts=attempts,
    )

  def _attempt(self, payload: bytes) -> tuple[str, str | None]:
    """One HTTP request; returns (content, finish_reason) or raises _Retryable / _Fatal."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if self._api_key is not None:
      headers["Authorization"] = f"Bearer {self._api_key}"
    request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
    with self._lock:
      self.num_requests += 1
    try:
      with self._opener.open(request, timeout=self.timeout_s) as response:
        status = response.status
        raw = response.read()
    except urllib.error.HTTPError as e:
      body = ""
      with contextlib.suppress(Exception):
        body = e.read().decode("utf-8", "replace")
      reason = f"HTTP {e.code} {e.reason}"
      if e.code in (408, 429) or e.code >= 500:
        wait_s = _parse_retry_after(e.headers.get("Retry-After") if e.headers else None)
        raise _Retryable(reason, e.code, body, wait_s) from None
      raise _Fatal(reason, e.code, body) from None
    except urllib.error.URLError as e:
      # Refused connections, DNS failures and connect timeouts arrive wrapped in URLError.
      raise _Retryable(self._describe(e.reason)) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as e:
      raise _Retryable(self._describe(e)) from None

    text = raw.decode("utf-8", "replace")
    try:
      data = json.loads(text)
    except ValueError:
      raise _Retryable("malformed response: body is not JSON", status, text) from None
    try:
      choice = data["choices"][0]
      content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
      raise _Retryable("malformed response: no choices[0].message.content", status, text) from None
    if not isinstance(content, str):
      raise _Retryable(
        f"malformed response: choices[0].message.content is {type(content).__name__}, not str",
        status,
        text,
      )
    finish_reason = choice.get("finish_reason") if isinstance(choice, dict) else None
    if finish_reason == "length":
      _log.debug(
        "LLM reply from %s hit max_tokens=%d (finish_reason=length)", self.url, self.max_tokens
      )
    return content, finish_reason if isinstance(finish_reason, str) else None

  def _describe(self, err: object) -> str:
    if isinstance(err, TimeoutError) or "timed out" in str(err):
      return f"timed out after {self.timeout_s:g} s"
    return f"{type(err).__name__}: {err}"

  # ----------------------------------------------------------------------------------- cache

  def _cache_file(self, key: str) -> pathlib.Path:
    return self.cache_dir / f"{key}.json"

  def _cache_get(self, key: str, messages: list[dict[str, str]]) -> str | None:
    path = self._cache_file(key)
    try:
      text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
      return None
    except (OSError, UnicodeDecodeError) as e:
      warnings.warn(f"LLM cache file {path} is unreadable ({e}); fetching again", stacklevel=3)
      return None
    problem = None
    try:
      entry = json.loads(text)
    except ValueError as e:
      entry, problem = None, f"not valid JSON ({e})"
    if problem is None:
      if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
        problem = 'not a JSON object with a string "content"'
      elif entry.get("request") != self._key_fields(messages):
        # A hash collision is practically impossible; a mismatch means a copied or edited file.
        problem = "stored request does not match this request"
    if problem is not None:
      warnings.warn(f"LLM cache file {path} is {problem}; fetching again", stacklevel=3)
      return None
    with self._lock:
      self.num_cache_hits += 1
    return entry["content"]

  def _cache_put(
    self, key: str, messages: list[dict[str, str]], content: str, finish_reason: str | None
  ) -> None:
    path = self._cache_file(key)
    # The URL and the API key are deliberately absent: the cache is shareable across servers.
    entry = {
      "request": self._key_fields(messages),
      "content": content,
      "finish_reason": finish_reason,
    }
    data = json.dumps(entry, ensure_ascii=False, indent=1).encode("utf-8")
    try:
      with io.atomic_write(path, "wb") as f:
        f.write(data)
    except OSError as e:
      # Losing a reply we already paid for is worse than running without a cache.
      warnings.warn(f"could not write LLM cache file {path} ({e}); continuing", stacklevel=3)
