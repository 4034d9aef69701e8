#!/usr/bin/env python3
"""Load and soak for ds-serve: what `vllm bench serve` reports, plus faults.

  bench/serve_load.py --build build --model tiny|demo|text|fake [--sweep 1,2,4,8,16,32]
                      [--requests-per-level N] [--max-tokens N] [--soak-seconds S]
                      [--json out.json]

Starts the server itself (a random checkpoint of the preset, compiled with
ds-compile, served by ds-serve; `text` is tiny_v3 with a tokenizer and a
chat template, so chats succeed; or ds-serve-fake) on a free 127.0.0.1 port.

Sweep: at each concurrency C, C client threads send streaming completions
with random token-id prompts (greedy, ignore_eos, max_tokens fixed) until
the level's requests are done. Reported: request/s, output tok/s, TTFT,
TPOT (per request: (e2e - ttft) / (tokens - 1)) and ITL (between streamed
chunks), mean / median / p99.

Soak (bounded): random completions, chats, streams the client drops after a
few chunks, malformed and ill-typed bodies, from several threads. At the
end: the server is alive, /metrics shows no running request and no used
page (every page free or cached), RSS after warm-up stays flat, and every
greedy request equals the same prompt's solo result taken before the soak.
Exits non-zero when a check fails.
"""
import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Server:
    def __init__(self, args):
        self.tmp = tempfile.mkdtemp(prefix="ds-serve-load-")
        port_file = os.path.join(self.tmp, "port")
        bin_dir = os.path.join(args.build, "bin")
        if args.model == "fake":
            cmd = [os.path.join(bin_dir, "ds-serve-fake"), "--fake-token-delay-ms", "5",
                   "--max-model-len", "1024", "--fake-pages", "100000"]
        else:
            ckpt = os.path.join(self.tmp, "ckpt")
            if args.model == "text":  # tiny_v3 with a tokenizer and a chat template
                make = [PY, os.path.join(ROOT, "test/Serve/make_text_model.py"), ckpt]
            else:
                make = [PY, os.path.join(ROOT, "test/tools/make_checkpoint.py"), "--preset",
                        "tiny_v3" if args.model == "tiny" else "demo", "--out", ckpt]
            subprocess.run(make, check=True, timeout=300)
            art = os.path.join(self.tmp, "m.dsa")
            subprocess.run([os.path.join(bin_dir, "ds-compile"), ckpt, "-o", art], check=True, timeout=600)
            cmd = [os.path.join(bin_dir, "ds-serve"), art, "--weights", ckpt]
            self.artifact, self.ckpt = art, ckpt
        cmd += ["--host", "127.0.0.1", "--port", "0", "--port-file", port_file,
                "--max-num-seqs", str(args.max_num_seqs), "--max-waiting", "64"]
        self.proc = subprocess.Popen(cmd, stderr=open(os.path.join(self.tmp, "stderr"), "w"))
        end = time.time() + 120
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > end:
                raise SystemExit("server did not start: " + open(os.path.join(self.tmp, "stderr")).read())
            time.sleep(0.05)
        self.port = int(open(port_file).read())
        self.info = self.get_json("/v1/models")["data"][0]

    def conn(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get_json(self, path):
        c = self.conn()
        c.request("GET", path)
        r = c.getresponse()
        return json.loads(r.read())

    def metrics(self):
        c = self.conn()
        c.request("GET", "/metrics")
        out = {}
        for line in c.getresponse().read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


def post(server, route, body, stream=False, drop_after=None, timeout=300):
    """Returns (status, json or None, ttft, chunk times, usage, text)."""
    c = server.conn(timeout)
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    t0 = time.perf_counter()
    c.request("POST", route, body=data, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if not stream or r.status != 200:
        raw = r.read()
        try:
            js = json.loads(raw)
        except ValueError:
            js = None
        return r.status, js, None, [], None, None
    times, usage, text, n = [], None, [], 0
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        if line == b"data: [DONE]":
            break
        ev = json.loads(line[6:])
        if ev.get("usage"):
            usage = ev["usage"]
        if ev.get("choices"):
            ch = ev["choices"][0]
            piece = ch.get("text") or (ch.get("delta") or {}).get("content") or ""
            if piece:
                times.append(time.perf_counter() - t0)
                text.append(piece)
        n += 1
        if drop_after is not None and n >= drop_after:
            c.sock.close()  # the client leaves mid-stream
            return 200, None, None, times, None, None
    return 200, None, (times[0] if times else None), times, usage, "".join(text)


def random_prompt(rng, vocab, lo=4, hi=24):
    return [rng.randrange(2, vocab) for _ in range(rng.randint(lo, hi))]


def engine_reference(server, args, prompts):
    """The same prompts through dsmlir.Engine in this process, all at once
    (no HTTP): output tok/s, the ceiling the server's figure is read against."""
    sys.path.insert(0, os.path.join(args.build, "python"))
    import dsmlir
    ctx = server.info["max_model_len"]
    eng = dsmlir.Engine(server.artifact, server.ckpt, num_pages=args.max_num_seqs * -(-ctx // 64),
                        max_num_seqs=args.max_num_seqs, max_model_len=ctx)
    t0 = time.perf_counter()
    outs = eng.generate(prompts, max_new_tokens=args.max_tokens, ignore_eos=True)
    wall = time.perf_counter() - t0
    return sum(len(o["tokens"]) for o in outs) / wall


def sweep(server, args):
    vocab = args.vocab
    rows = []
    for conc in args.sweep:
        n_req = max(args.requests_per_level, 2 * conc)
        rng = random.Random(conc)
        prompts = [random_prompt(rng, vocab) for _ in range(n_req)]
        lock = threading.Lock()
        results = []
        it = iter(prompts)

        def worker():
            while True:
                with lock:
                    p = next(it, None)
                if p is None:
                    return
                t0 = time.perf_counter()
                st, js, ttft, times, usage, _ = post(server, "/v1/completions", {
                    "prompt": p, "max_tokens": args.max_tokens, "temperature": 0, "ignore_eos": True,
                    "stream": True, "stream_options": {"include_usage": True}}, stream=True)
                e2e = time.perf_counter() - t0
                with lock:
                    results.append((st, ttft, times, usage, e2e))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(conc)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        ok = [r for r in results if r[0] == 200 and r[3]]
        out_tokens = sum(r[3]["completion_tokens"] for r in ok)
        ttft = [r[1] for r in ok]
        tpot = [(r[4] - r[1]) / (r[3]["completion_tokens"] - 1) for r in ok if r[3]["completion_tokens"] > 1]
        itl = [b - a for r in ok for a, b in zip(r[2], r[2][1:])]
        row = {"concurrency": conc, "requests": len(results), "failed": len(results) - len(ok),
               "request_per_s": len(ok) / wall, "output_tok_per_s": out_tokens / wall}
        for name, xs in (("ttft_ms", ttft), ("tpot_ms", tpot), ("itl_ms", itl)):
            row[name] = {"mean": 1e3 * statistics.fmean(xs) if xs else float("nan"),
                         "median": 1e3 * pct(xs, 50), "p99": 1e3 * pct(xs, 99)}
        if args.model != "fake" and conc == args.sweep[-1]:
            # Same prompts, same engine settings, no HTTP: best of 2.
            ref = max(engine_reference(server, args, prompts) for _ in range(2))
            row["engine_offline_output_tok_per_s"] = ref
            row["server_over_engine"] = row["output_tok_per_s"] / ref
            print(f"  engine alone (dsmlir.Engine, same {len(prompts)} prompts, no HTTP): "
                  f"{ref:.1f} tok/s; server / engine = {row['server_over_engine']:.2f}", flush=True)
        rows.append(row)
        print(f"  c={conc:<3} {len(ok)}/{len(results)} ok  {row['request_per_s']:.2f} req/s  "
              f"{row['output_tok_per_s']:.1f} tok/s  TTFT {row['ttft_ms']['mean']:.1f}/"
              f"{row['ttft_ms']['median']:.1f}/{row['ttft_ms']['p99']:.1f} ms  "
              f"TPOT {row['tpot_ms']['mean']:.1f}/{row['tpot_ms']['median']:.1f}/{row['tpot_ms']['p99']:.1f} ms  "
              f"ITL {row['itl_ms']['mean']:.1f}/{row['itl_ms']['median']:.1f}/{row['itl_ms']['p99']:.1f} ms",
              flush=True)
    return rows


def soak(server, args):
    rng = random.Random(7)
    vocab = args.vocab
    fixed = [random_prompt(rng, vocab) for _ in range(8)]
    body = lambda p: {"prompt": p, "max_tokens": args.max_tokens, "temperature": 0, "return_token_ids": True}
    solo = []
    for p in fixed:
        st, js, *_ = post(server, "/v1/completions", body(p))
        assert st == 200, js
        solo.append(js["choices"][0]["token_ids"])
    has_tokenizer = args.model in ("fake", "text")
    counts = {"greedy": 0, "mismatch": 0, "chat": 0, "dropped": 0, "malformed": 0, "sampled": 0,
              "unexpected": 0}
    errors = []
    lock = threading.Lock()
    end = time.time() + args.soak_seconds
    rss = []

    def note(kind, bad=None):
        with lock:
            counts[kind] += 1
            if bad:
                counts["unexpected"] += 1
                if len(errors) < 10:
                    errors.append(bad)

    def worker(seed):
        r = random.Random(seed)
        while time.time() < end:
            k = r.random()
            if k < 0.35:
                i = r.randrange(len(fixed))
                st, js, *_ = post(server, "/v1/completions", body(fixed[i]))
                ok = st == 200 and js["choices"][0]["token_ids"] == solo[i]
                note("greedy")
                if not ok:
                    note("mismatch", f"greedy {i}: {st} {js}")
            elif k < 0.5:
                st, js, *_ = post(server, "/v1/chat/completions", {
                    "messages": [{"role": "user", "content": "hi %d" % r.randrange(100)}], "max_tokens": 8})
                note("chat", None if st == (200 if has_tokenizer else 400) else f"chat {st} {js}")
            elif k < 0.7:
                # Long enough to be dropped mid-generation, short enough
                # for the context (prompts are at most 24 tokens).
                long_tokens = min(64, server.info["max_model_len"] - 25)
                st, *_ = post(server, "/v1/completions", {"prompt": random_prompt(r, vocab), "max_tokens": long_tokens,
                                                          "ignore_eos": True, "stream": True},
                              stream=True, drop_after=r.randint(1, 4))
                note("dropped", None if st == 200 else f"dropped stream {st}")
            elif k < 0.85:
                bad = r.choice(['{"prompt": [1, 2', '{"prompt": "x", "max_tokens": "many"}', '[]',
                                '{"prompt": [1], "n": 0}', '{"messages": 5}', '\x00\xff'])
                st, js, *_ = post(server, "/v1/completions", bad)
                note("malformed", None if st == 400 and js and "error" in js else f"malformed {st} {js}")
            else:
                st, js, *_ = post(server, "/v1/completions", {"prompt": random_prompt(r, vocab), "max_tokens": 16,
                                                              "temperature": 0.9, "top_p": 0.9, "seed": r.randrange(1 << 30)})
                note("sampled", None if st == 200 else f"sampled {st} {js}")

    def sampler():
        while time.time() < end:
            rss.append((time.time(), server.rss_kib()))
            time.sleep(1)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(args.soak_clients)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Dropped streams are aborted within a token or two.
    deadline = time.time() + 30
    while True:
        m = server.metrics()
        if (m["ds_num_requests_running"] == 0 and m["ds_num_requests_waiting"] == 0) or time.time() > deadline:
            break
        time.sleep(0.2)
    # Warm-up: the first third (thread stacks, arenas, caches fill). Flat:
    # the last third's peak within 2% of the middle third's.
    third = len(rss) // 3
    mid = [v for t, v in rss[third:2 * third]]
    last = [v for t, v in rss[2 * third:]]
    warm = mid + last
    result = {"counts": counts, "errors": errors, "alive": server.proc.poll() is None,
              "running": m["ds_num_requests_running"], "waiting": m["ds_num_requests_waiting"],
              "pages_used": m["ds_cache_pages_used"], "pages_cached": m["ds_cache_pages_cached"],
              "pages_total": m["ds_cache_pages_total"],
              "rss_kib_after_warmup": [min(warm), max(warm)] if warm else None,
              "aborted": m.get('ds_request_success_total{finished_reason="abort"}', 0)}
    growth = (max(last) - max(mid)) / max(mid) if mid and last else 0
    result["rss_kib_series"] = [v for t, v in rss]
    result["rss_growth_last_vs_middle_third"] = growth
    result["ok"] = (result["alive"] and counts["unexpected"] == 0 and counts["mismatch"] == 0 and
                    result["running"] == 0 and result["pages_used"] == 0 and growth < 0.02)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", choices=["tiny", "demo", "text", "fake"], default="demo")
    ap.add_argument("--sweep", default="1,2,4,8,16,32")
    ap.add_argument("--requests-per-level", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--max-num-seqs", type=int, default=8)
    ap.add_argument("--soak-seconds", type=float, default=60)
    ap.add_argument("--soak-clients", type=int, default=8)
    ap.add_argument("--json")
    args = ap.parse_args()
    args.sweep = [int(x) for x in args.sweep.split(",") if x]
    args.soak_seconds = min(args.soak_seconds, 300)
    server = Server(args)
    args.vocab = 256 if args.model == "fake" else 0
    if not args.vocab:
        # Token ids must stay inside the model's vocabulary: probe the limit.
        lo, hi = 2, 1 << 20
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            st, *_ = post(server, "/v1/completions", {"prompt": [mid], "max_tokens": 1})
            lo, hi = (mid, hi) if st == 200 else (lo, mid)
        args.vocab = hi
    print(f"ds-serve {args.model}: vocab {args.vocab}, context {server.info['max_model_len']}, "
          f"max_num_seqs {args.max_num_seqs}, max_tokens {args.max_tokens}, {os.cpu_count()} cores", flush=True)
    report = {"model": args.model, "max_tokens": args.max_tokens, "max_num_seqs": args.max_num_seqs}
    if args.sweep:
        report["sweep"] = sweep(server, args)
    if args.soak_seconds > 0:
        print(f"soak: {args.soak_seconds:.0f} s, {args.soak_clients} clients", flush=True)
        report["soak"] = soak(server, args)
        print("  " + json.dumps({k: v for k, v in report["soak"].items() if k != "rss_kib_series"}), flush=True)
    report["exit_code"] = server.stop()
    print(f"server exit code after SIGTERM: {report['exit_code']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    ok = report["exit_code"] == 0 and report.get("soak", {"ok": True})["ok"]
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
