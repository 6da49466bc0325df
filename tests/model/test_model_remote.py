"""The remote backend against a small OpenAI-compatible server started on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from model.kinds import build_generator
from model.prompts import prompt_for_task
from model.remote import RemoteError
from model.requests import ReportRequest
from model.spec import SystemSpec


def _describe_mp4(url: str) -> str:
    """What a video server decodes from a data:video/mp4 URL: frames, size and rate."""
    import io

    import av

    assert url.startswith("data:video/mp4;base64,")
    with av.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        rate = float(stream.average_rate or 0)
    return f"video_frames={len(frames)} size={frames[0].width}x{frames[0].height} fps={rate:g}"


class ChatServer:
    """Speaks POST /v1/chat/completions; the requested model name picks a behaviour."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.bodies.append(body)
                    server.headers.append(dict(self.headers))
                    model = body["model"]
                    server.calls[model] = server.calls.get(model, 0) + 1
                    call = server.calls[model]
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    server.answer(self, body, model, call)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Handlers still sleeping for a timed-out client must not hold up shutdown.
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, handler: BaseHTTPRequestHandler, body: dict, model: str, call: int) -> None:
        if model == "flaky-503" and call <= 2:
            return self._send(handler, 503, {"error": "overloaded"})
        if model == "slow-first" and call == 1:
            time.sleep(1.5)
        if model == "always-slow":
            time.sleep(1.5)
        if model == "bad-request":
            return self._send(handler, 400, {"error": "unknown field"})
        if model == "concurrency":
            time.sleep(0.2)
        user = body["messages"][-1]["content"]
        images = [part["image_url"]["url"] for part in user if part["type"] == "image_url"]
        text = next(part["text"] for part in user if part["type"] == "text")
        reply = f"images={len(images)} question={text.rsplit('Question: ', 1)[-1][:20]!r}"
        videos = [part["video_url"]["url"] for part in user if part["type"] == "video_url"]
        for url in videos:
            reply += " " + _describe_mp4(url)
        self._send(
            handler,
            200,
            {
                "id": f"chatcmpl-{call}",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 100 + len(images), "completion_tokens": 7},
            },
        )

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ChatServer]:
    instance = ChatServer()
    try:
        yield instance
    finally:
        instance.close()


def _spec(server: ChatServer, model: str, **kw) -> SystemSpec:
    return SystemSpec(kind="remote", remote_url=server.url, remote_model=model, **kw)


def _fast(generator):
    generator.backoff_base_s = 0.05  # keep retry waits short in tests
    return generator


def test_images_travel_as_base64_data_urls_in_order(server, media_dir, monkeypatch):
    monkeypatch.setenv("TEST_REMOTE_KEY", "secret-token")
    generator = build_generator(_spec(server, "echo", remote_api_key_env="TEST_REMOTE_KEY"))
    requests = [
        ReportRequest(key=f"c{i}", images=[media_dir / f"image{j}.png" for j in range(i + 1)])
        for i in range(3)
    ]
    seen: list[int] = []
    results = generator.generate(requests, prompt_for_task("report"), progress=seen.append)
    assert [r.text.split()[0] for r in results] == ["images=1", "images=2", "images=3"]
    assert seen == [1, 2, 3]
    assert results[0].device == f"remote:{server.url}"
    assert results[2].prompt_tokens == 103 and results[2].output_tokens == 7
    assert results[0].meta["retries"] == 0
    body = next(b for b in server.bodies if len(b["messages"][-1]["content"]) == 2)
    assert body["temperature"] == 0.0 and body["max_tokens"] == 256
    assert body["messages"][0]["role"] == "system"
    url = body["messages"][-1]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == (media_dir / "image0.png").read_bytes()
    assert all(h["Authorization"] == "Bearer secret-token" for h in server.headers)


def test_vqa_question_and_video_frames(server, media_dir):
    generator = build_generator(_spec(server, "echo", video_max_frames=4))
    video, vqa = generator.generate(
        [
            ReportRequest(key="v", video=media_dir / "clip.mp4"),
            ReportRequest(key="q", images=[media_dir / "image1.png"], question="How big?"),
        ],
        prompt_for_task("vqa"),
    )
    assert video.text.startswith("images=4")
    assert video.meta["video_as"] == "frames" and len(video.meta["frame_indices"]) == 4
    assert "How big?" in vqa.text


def test_503_is_retried_with_backoff_until_it_succeeds(server, media_dir):
    generator = _fast(build_generator(_spec(server, "flaky-503", remote_retries=3)))
    started = time.perf_counter()
    (result,) = generator.generate(
        [ReportRequest(key="c", images=[media_dir / "image0.png"])], prompt_for_task("report")
    )
    assert result.text.startswith("images=1")
    assert result.meta["retries"] == 2
    assert server.calls["flaky-503"] == 3
    # Exponential backoff: waits of 0.05 s and 0.1 s before the third attempt.
    assert time.perf_counter() - started >= 0.15


def test_503_beyond_the_retry_budget_fails_clearly(server, media_dir):
    generator = _fast(build_generator(_spec(server, "flaky-503", remote_retries=1)))
    with pytest.raises(RemoteError, match=r"case c: .* failed after 2 attempt\(s\): HTTP 503"):
        generator.generate(
            [ReportRequest(key="c", images=[media_dir / "image0.png"])],
            prompt_for_task("report"),
        )


def test_a_slow_answer_times_out_and_the_retry_succeeds(server, media_dir):
    generator = _fast(build_generator(_spec(server, "slow-first", remote_timeout_s=0.5)))
    (result,) = generator.generate(
        [ReportRequest(key="c", images=[media_dir / "image0.png"])], prompt_for_task("report")
    )
    assert result.text.startswith("images=1")
    assert result.meta["retries"] == 1
    assert server.calls["slow-first"] == 2


def test_a_server_that_stays_slow_fails_with_the_timeout_named(server, media_dir):
    generator = _fast(
        build_generator(_spec(server, "always-slow", remote_timeout_s=0.3, remote_retries=1))
    )
    with pytest.raises(RemoteError, match=r"no answer within 0.3 s"):
        generator.generate(
            [ReportRequest(key="c", images=[media_dir / "image0.png"])],
            prompt_for_task("report"),
        )


def test_client_errors_are_not_retried(server, media_dir):
    generator = _fast(build_generator(_spec(server, "bad-request", remote_retries=3)))
    with pytest.raises(RemoteError, match="HTTP 400"):
        generator.generate(
            [ReportRequest(key="c", images=[media_dir / "image0.png"])],
            prompt_for_task("report"),
        )
    assert server.calls["bad-request"] == 1


def test_concurrency_is_bounded(server, media_dir):
    generator = build_generator(_spec(server, "concurrency", remote_concurrency=2))
    requests = [
        ReportRequest(key=f"c{i}", images=[media_dir / f"image{i % 6}.png"]) for i in range(6)
    ]
    results = generator.generate(requests, prompt_for_task("report"))
    assert len(results) == 6
    assert server.max_in_flight == 2


def test_a_missing_api_key_variable_is_named(server, monkeypatch):
    monkeypatch.delenv("MISSING_REMOTE_KEY", raising=False)
    with pytest.raises(ValueError, match="MISSING_REMOTE_KEY"):
        build_generator(_spec(server, "echo", remote_api_key_env="MISSING_REMOTE_KEY"))


def test_a_clip_as_video_url_carries_exactly_the_locally_sampled_frames(server, media_dir):
    from model.media import prepare_request

    spec = _spec(server, "echo", video_max_frames=4, remote_video="video_url")
    (result,) = build_generator(spec).generate(
        [ReportRequest(key="v", video=media_dir / "clip.mp4")], prompt_for_task("video-report")
    )
    # The local path samples these frames of the same clip with the same settings.
    local = prepare_request(
        ReportRequest(key="v", video=media_dir / "clip.mp4"),
        prompt_for_task("video-report"),
        SystemSpec(kind="vlm", model="m", video_max_frames=4),
    )
    assert result.meta["frame_indices"] == local.video.frame_indices
    height, width = local.video.frames.shape[1:3]
    assert result.meta["video_as"] == "video_url"
    assert f"video_frames={len(local.video.frame_indices)}" in result.text
    assert f"size={width // 2 * 2}x{height // 2 * 2}" in result.text
    assert "images=0" in result.text  # no frame travels twice
    body = server.bodies[-1]
    assert body["repetition_penalty"] == 1.0 and body["temperature"] == 0.0


def test_frames_follow_the_clip_pixel_budget(server, media_dir):
    budget = 4 * 32 * 32
    spec = _spec(server, "echo", video_max_frames=4, video_max_pixels=budget)
    (result,) = build_generator(spec).generate(
        [ReportRequest(key="v", video=media_dir / "clip.mp4")], prompt_for_task("video-report")
    )
    width, height = result.meta["frame_size"]
    assert width * height <= budget // 4  # shared out per frame (ebb17df sent full size)


def test_concurrency_does_not_depend_on_batch_size():
    spec = SystemSpec(
        kind="remote",
        remote_url="http://x/v1",
        remote_model="m",
        batch_size=8,
        remote_concurrency=32,
    )
    generator = build_generator(spec)
    # A run hands this many requests over at once (at ebb17df: batch_size, 8 in flight).
    assert generator.chunk_size >= 32
