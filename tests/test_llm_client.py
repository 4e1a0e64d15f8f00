"""Tests of rp_jax.text.llm.ChatClient against a real local HTTP server (tests/llm_server.py)."""

import json
import time
import warnings

import pytest
from llm_server import FakeLLMServer, reply_for

from rp_jax.text.llm import ChatClient, LLMError

MODEL = "fake/Qwen2.5-7B-Instruct"


@pytest.fixture
def llm():
  """A fresh fake server per test (``llm_server.llm_server`` is the same fixture, for reuse)."""
  with FakeLLMServer() as server:
    yield server


def make_client(server: FakeLLMServer, tmp_path, **kwargs) -> ChatClient:
  kwargs.setdefault("backoff_s", 0.01)
  kwargs.setdefault("timeout_s", 5.0)
  kwargs.setdefault("cache_dir", tmp_path / "cache")
  return ChatClient(server.base_url, MODEL, **kwargs)


def test_complete_returns_the_servers_reply_and_sends_greedy_request(llm, tmp_path):
  client = make_client(llm, tmp_path)
  prompt = "Write a capability profile for model A. It is good at math."
  assert client.complete(prompt, system="You are terse.") == reply_for(prompt)
  assert llm.num_requests == client.num_requests == 1
  request = llm.requests[0]
  assert request["path"] == "/v1/chat/completions"
  assert "Authorization" not in request["headers"]
  assert request["body"] == {
    "model": MODEL,
    "messages": [
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": prompt},
    ],
    "temperature": 0.0,
    "max_tokens": 500,
  }


def test_extra_params_are_sent_and_reserved_ones_rejected(llm, tmp_path):
  client = make_client(llm, tmp_path, extra_params={"top_p": 1.0, "seed": 0})
  client.complete("x")
  body = llm.requests[0]["body"]
  assert body["top_p"] == 1.0 and body["seed"] == 0
  with pytest.raises(ValueError, match="max_tokens"):
    make_client(llm, tmp_path, extra_params={"max_tokens": 10})
  with pytest.raises(ValueError, match="JSON-serialisable"):
    make_client(llm, tmp_path, extra_params={"x": object()})


def test_complete_many_keeps_order_sends_duplicates_once_and_runs_concurrently(llm, tmp_path):
  client = make_client(llm, tmp_path, concurrency=4)
  unique = [f"prompt number {i} about task {i % 3}" for i in range(8)]
  prompts = unique + unique[::-1] + [unique[0]] * 3
  # Every request waits a little so that the four workers overlap at the server.
  llm.stall_next(len(unique), 0.3)
  out = client.complete_many(prompts)
  assert out == [reply_for(p) for p in prompts]
  assert llm.num_requests == client.num_requests == len(unique)
  assert sorted(llm.prompts) == sorted(unique)
  assert llm.max_in_flight == 4
  assert client.complete_many([]) == []


def test_retries_after_two_server_errors(llm, tmp_path):
  client = make_client(llm, tmp_path, max_retries=3)
  llm.fail_next(2, status=500)
  assert client.complete("hello") == reply_for("hello")
  assert llm.num_requests == client.num_requests == 3


def test_retries_after_rate_limit(llm, tmp_path):
  client = make_client(llm, tmp_path)
  llm.fail_next(1, status=429)
  assert client.complete("hello") == reply_for("hello")
  assert llm.num_requests == 2


def test_gives_up_after_max_retries_with_status_in_message(llm, tmp_path):
  client = make_client(llm, tmp_path, max_retries=2)
  llm.fail_next(5, status=503)
  with pytest.raises(LLMError, match="3 attempt") as info:
    client.complete("hello")
  assert info.value.status == 503 and info.value.attempts == 3
  assert "HTTP 503" in str(info.value) and "scripted failure 503" in str(info.value)
  assert llm.num_requests == 3


def test_no_retry_on_400_and_error_names_url_model_status_and_body(llm, tmp_path):
  client = make_client(llm, tmp_path, max_retries=3)
  llm.fail_next(1, status=400, body="bad request: unknown field 'foo'")
  with pytest.raises(LLMError) as info:
    client.complete("hello")
  err = info.value
  message = str(err)
  assert isinstance(err, RuntimeError)
  assert client.url in message and MODEL in message
  assert "HTTP 400" in message and "unknown field 'foo'" in message and "1 attempt" in message
  assert (err.status, err.attempts, err.url, err.model) == (400, 1, client.url, MODEL)
  assert llm.num_requests == 1
  # Nothing was cached for the failed prompt.
  assert not client.cache_path("hello").exists()


def test_timeout_gives_up_after_max_retries_plus_one_attempts(llm, tmp_path):
  client = make_client(llm, tmp_path, timeout_s=0.2, max_retries=2)
  llm.stall_next(3, 3.0)
  start = time.perf_counter()
  with pytest.raises(LLMError, match="timed out") as info:
    client.complete("slow")
  elapsed = time.perf_counter() - start
  assert info.value.attempts == 3 and info.value.status is None
  assert llm.num_requests == client.num_requests == 3
  assert elapsed < 2.0  # 3 x 0.2 s plus tiny backoffs, never the 3 s stall


def test_connection_refused_is_retried_then_reported(tmp_path):
  with FakeLLMServer() as server:
    dead_url = server.base_url
  client = ChatClient(dead_url, MODEL, max_retries=1, backoff_s=0.01, cache_dir=tmp_path)
  with pytest.raises(LLMError, match="2 attempt") as info:
    client.complete("anyone there?")
  assert dead_url in str(info.value) and info.value.status is None


@pytest.mark.parametrize("kind", ["not_json", "no_choices", "empty_choices", "null_content"])
def test_malformed_replies_raise_after_retries(llm, tmp_path, kind):
  client = make_client(llm, tmp_path, max_retries=1)
  llm.garbage_next(2, kind)
  with pytest.raises(LLMError, match="malformed response") as info:
    client.complete("hello")
  assert info.value.attempts == 2 and info.value.status == 200
  assert llm.num_requests == 2
  if kind == "not_json":
    assert "upstream proxy error" in str(info.value)


def test_one_malformed_reply_is_retried(llm, tmp_path):
  client = make_client(llm, tmp_path)
  llm.garbage_next(1, "no_content")
  assert client.complete("hello") == reply_for("hello")
  assert llm.num_requests == 2


def test_finish_reason_length_is_accepted(tmp_path):
  with FakeLLMServer(finish_reason="length") as server:
    client = make_client(server, tmp_path)
    assert client.complete("long answer please") == reply_for("long answer please")
    entry = json.loads(client.cache_path("long answer please").read_text())
    assert entry["finish_reason"] == "length"


def test_cache_hits_in_same_and_new_client_and_other_server(llm, tmp_path):
  prompts = ["alpha", "beta", "gamma"]
  client = make_client(llm, tmp_path)
  first = client.complete_many(prompts, system="sys")
  assert client.num_requests == 3 and client.num_cache_hits == 0

  assert client.complete_many(prompts, system="sys") == first
  assert client.complete("beta", system="sys") == first[1]
  assert client.num_requests == 3 and client.num_cache_hits == 4

  again = make_client(llm, tmp_path)
  assert again.complete_many(prompts, system="sys") == first
  assert again.num_requests == 0 and again.num_cache_hits == 3

  # The same model behind another server (another URL, with a key) shares the cache.
  with FakeLLMServer(api_key="k") as other:
    elsewhere = ChatClient(other.base_url, MODEL, cache_dir=tmp_path / "cache")
    assert elsewhere.complete("alpha", system="sys") == first[0]
    assert other.num_requests == 0
  assert llm.num_requests == 3

  # What decides the answer is in the key: another system prompt, temperature or model misses.
  assert client.complete("alpha") == reply_for("alpha")
  hotter = make_client(llm, tmp_path, temperature=0.7)
  assert hotter.cache_path("alpha", "sys") != client.cache_path("alpha", "sys")
  other_model = ChatClient(llm.base_url, "another-model", cache_dir=tmp_path / "cache")
  assert other_model.cache_path("alpha", "sys") != client.cache_path("alpha", "sys")
  assert client.cache_path("alpha", "sys").parent == tmp_path / "cache" / "llm"


def test_cache_dir_defaults_to_rp_jax_cache_env(llm, tmp_path, monkeypatch):
  monkeypatch.setenv("RP_JAX_CACHE", str(tmp_path / "envcache"))
  client = ChatClient(llm.base_url, MODEL)
  client.complete("hello")
  files = list((tmp_path / "envcache" / "llm").glob("*.json"))
  assert files == [client.cache_path("hello")]
  # Only the final file: the temporary file of the atomic write is gone.
  assert [p.name for p in (tmp_path / "envcache" / "llm").iterdir()] == [files[0].name]


@pytest.mark.parametrize(
  "garbage", ["{not json", json.dumps(["a list"]), json.dumps({"content": 3}), ""]
)
def test_corrupted_cache_file_warns_and_refetches(llm, tmp_path, garbage):
  client = make_client(llm, tmp_path)
  client.complete("hello")
  path = client.cache_path("hello")
  path.write_text(garbage)
  with pytest.warns(UserWarning, match=path.name):
    assert client.complete("hello") == reply_for("hello")
  assert llm.num_requests == 2
  # The refetch repaired the file: the next call is a silent cache hit.
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    assert client.complete("hello") == reply_for("hello")
  assert llm.num_requests == 2


def test_cache_file_of_another_request_is_not_trusted(llm, tmp_path):
  client = make_client(llm, tmp_path)
  client.complete("hello")
  client.complete("world")
  client.cache_path("hello").write_bytes(client.cache_path("world").read_bytes())
  with pytest.warns(UserWarning, match="does not match"):
    assert client.complete("hello") == reply_for("hello")


def test_api_key_missing_is_a_clear_error(llm, tmp_path, monkeypatch):
  monkeypatch.delenv("RP_JAX_TEST_KEY", raising=False)
  with pytest.raises(ValueError, match="RP_JAX_TEST_KEY.*not set"):
    make_client(llm, tmp_path, api_key_env="RP_JAX_TEST_KEY")


def test_api_key_is_sent_and_never_stored(tmp_path, monkeypatch):
  secret = "sk-test-0123456789"
  monkeypatch.setenv("RP_JAX_TEST_KEY", secret)
  with FakeLLMServer(api_key=secret) as server:
    client = make_client(server, tmp_path, api_key_env="RP_JAX_TEST_KEY")
    assert client.complete("hello") == reply_for("hello")
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {secret}"
    text = client.cache_path("hello").read_text()
    assert secret not in text and server.base_url not in text
    assert secret not in repr(client)

    # A wrong key is a 401: not retried, reported with the status.
    monkeypatch.setenv("RP_JAX_TEST_KEY", "wrong")
    wrong = make_client(server, tmp_path, api_key_env="RP_JAX_TEST_KEY", max_retries=3)
    with pytest.raises(LLMError, match="HTTP 401") as info:
      wrong.complete("not cached yet")
    assert info.value.attempts == 1 and "wrong" not in str(info.value)


def test_complete_many_raises_first_failure_and_rerun_resumes(llm, tmp_path):
  client = make_client(llm, tmp_path, concurrency=1)
  prompts = ["p0", "p1", "p2"]
  llm.fail_next(1, status=400)
  with pytest.raises(LLMError, match="HTTP 400"):
    client.complete_many(prompts)
  sent = llm.num_requests
  assert 1 <= sent <= 3
  assert client.complete_many(prompts) == [reply_for(p) for p in prompts]
  # Replies received before the failure came from the cache, not the server.
  assert llm.num_requests - sent == 3 - client.num_cache_hits


def test_constructor_validates_arguments(tmp_path):
  with pytest.raises(ValueError, match="base_url"):
    ChatClient("127.0.0.1:8000/v1", MODEL, cache_dir=tmp_path)
  with pytest.raises(ValueError, match="concurrency"):
    ChatClient("http://127.0.0.1:1/v1", MODEL, concurrency=0, cache_dir=tmp_path)
  with pytest.raises(ValueError, match="timeout_s"):
    ChatClient("http://127.0.0.1:1/v1", MODEL, timeout_s=0, cache_dir=tmp_path)
  client = ChatClient("http://127.0.0.1:1/v1/", MODEL, cache_dir=tmp_path)
  assert client.url == "http://127.0.0.1:1/v1/chat/completions"
  with pytest.raises(TypeError, match="sequence of prompts"):
    client.complete_many("one string")
