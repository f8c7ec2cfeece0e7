"""Load on ``codit serve`` next to the same prompts decoded offline, in one run.

Starts ``codit serve`` as a subprocess (its own process, as in production), then, in turn and
``--repeats`` times, decodes the prompts

- ``offline``: in this process with the engine through ``generation.completions.complete`` (the code
  path of ``codit generate``, without the files), at the server's batch size;
- ``server``: ``--clients`` threads posting greedy chat requests (``http.client``, one
  keep-alive connection each, streamed with ``--stream``) until every prompt is answered;

and reports completion tokens per second (best repeat of each), the server/offline ratio of
the bests and the median of each repeat's ratio (offline and server back to back, under the
same load), the server's request latency percentiles (and time to first token when streaming)
and the load average. Greedy answers are identical on both sides, so both do the same work.

    python benchmarks/serve_load.py --prompts 128 --clients 16 --batch-size 8 --max-tokens 32 \\
        --json benchmarks/results/serve_load_cpu.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

TOPICS = ["apples", "a fox", "the sea", "numbers", "a small model", "rain", "bread", "trains"]


def prompts(n: int) -> list[str]:
    return [f"write a short poem about {TOPICS[i % len(TOPICS)]} ({i})" for i in range(n)]


def offline(args: argparse.Namespace, texts: list[str]) -> tuple[float, int]:
    from codit.decoding.config import DecodingConfig
    from codit.decoding.engine import PairEngine
    from codit.generation.completions import complete
    from codit.models.pair import load_pair

    global _PAIR
    if _PAIR is None:
        _PAIR = load_pair(args.instruct, args.base, "cpu")
    pair = _PAIR
    decoding = DecodingConfig(temperature=0.0, max_new_tokens=args.max_tokens)
    engine = PairEngine(
        pair.instruct.model,
        pair.base.model,
        pair.tokenizer,
        decoding,
        pair.stop_ids,
        pair.vocab_size,
        batch_size=args.batch_size,
    )
    conversations = [(str(i), [{"role": "user", "content": t}]) for i, t in enumerate(texts)]
    start = time.perf_counter()
    tokens = sum(c.completion_tokens for c in complete(engine, pair.tokenizer, conversations, {}))
    return time.perf_counter() - start, tokens


_PAIR: Any = None


def server_load(args: argparse.Namespace, port: int, texts: list[str]) -> dict[str, Any]:
    todo: queue.Queue[str] = queue.Queue()
    for t in texts:
        todo.put(t)
    latencies: list[float] = []
    first_tokens: list[float] = []
    tokens: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            try:
                text = todo.get_nowait()
            except queue.Empty:
                break
            body = {
                "model": "codit",
                "messages": [{"role": "user", "content": text}],
                "temperature": 0,
                "max_tokens": args.max_tokens,
                "stream": args.stream,
            }
            if args.stream:
                body["stream_options"] = {"include_usage": True}
            sent = time.perf_counter()
            conn.request(
                "POST",
                "/v1/chat/completions",
                json.dumps(body),
                {"Content-Type": "application/json"},
            )
            reply = conn.getresponse()
            first = None
            used = 0
            if args.stream:
                for line in reply:
                    if not line.startswith(b"data: {"):
                        continue
                    chunk = json.loads(line[6:])
                    if (
                        first is None
                        and chunk["choices"]
                        and chunk["choices"][0]["delta"].get("content")
                    ):
                        first = time.perf_counter() - sent
                    if chunk.get("usage"):
                        used = chunk["usage"]["completion_tokens"]
            else:
                data = json.loads(reply.read())
                used = data.get("usage", {}).get("completion_tokens", 0)
                if reply.status != 200:
                    failures.append(str(data))
            with lock:
                latencies.append(time.perf_counter() - sent)
                tokens.append(used)
                if first is not None:
                    first_tokens.append(first)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "tokens": sum(tokens),
        "requests": len(latencies),
        "failures": len(failures),
        "latency_s": percentiles(latencies),
        "first_token_s": percentiles(first_tokens) if first_tokens else None,
    }


def percentiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50": round(q[49], 4), "p90": round(q[89], 4), "p99": round(q[98], 4)}


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "codit",
        "serve",
        "--instruct",
        args.instruct,
        "--base",
        args.base,
        "--port",
        str(port),
        "--device",
        "cpu",
        "--temperature",
        "0",
        "--max-new-tokens",
        str(args.max_tokens),
        "--batch-size",
        str(args.batch_size),
        "--queue-size",
        str(max(256, args.clients * 2)),
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("codit serve did not become ready")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--instruct", default="tiny-instruct")
    p.add_argument("--base", default="tiny-base")
    p.add_argument("--prompts", type=int, default=128)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--stream", action="store_true", help="streamed requests (SSE)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    texts = prompts(args.prompts)
    proc, port = start_server(args)
    try:
        server_load(args, port, texts[: args.clients])  # warm both sides up
        offline(args, texts[: args.batch_size])
        runs: dict[str, list[Any]] = {"offline": [], "server": []}
        for _ in range(args.repeats):
            seconds, tokens = offline(args, texts)
            runs["offline"].append({"seconds": seconds, "tokens": tokens})
            runs["server"].append(server_load(args, port, texts))
    finally:
        proc.terminate()
        proc.wait(60)
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
    rate = {k: r["tokens"] / r["seconds"] for k, r in best.items()}
    # Each repeat runs offline and server back to back, so their ratio shares that moment's load.
    paired = [
        (s["tokens"] / s["seconds"]) / (o["tokens"] / o["seconds"])
        for o, s in zip(runs["offline"], runs["server"], strict=True)
    ]
    result = {
        "settings": vars(args),
        "offline_tokens_per_s": round(rate["offline"], 1),
        "server_tokens_per_s": round(rate["server"], 1),
        "server_over_offline": round(rate["server"] / rate["offline"], 3),
        "paired_ratios": [round(r, 3) for r in paired],
        "median_paired_ratio": round(statistics.median(paired), 3),
        "server": best["server"],
        "offline": best["offline"],
        "runs": runs,
        "loadavg": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "torch_threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        "python": platform.python_version(),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
