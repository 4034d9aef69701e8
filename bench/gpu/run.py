#!/usr/bin/env python3
"""Everything that needs a GPU, in one run, from bench/gpu/prepare.py's work
folder (no MLIR needed here). Prints a table last and writes RESULTS-gpu.md
(+ logs) into --out. Budget: --budget seconds (default 450, under the 8
minutes the device call allows); a stage that would start past it is
skipped and says so.

  0. preflight: nvidia-smi, torch, transformers, safetensors importable, or
     one line saying what is missing (exit 2, before any GPU time is spent);
  1. smoke: one short ds-run with DSRT_CUDA_SYNC=1 (every launch and
     library call waited for, errors name the kernel); a failure stops here;
  2. device facts and the measured device-to-device copy bandwidth (torch);
  3. parity: ds-run --device cuda, teacher-forced, against the float64
     reference of test/tools/ds_testing (bf16 cache rounding emulated) and
     against ds-run on the CPU, on cases that reach the production kernels
     (DeepSeek widths latent 512 + rope 64 with a bf16 cache and several
     splits at 600 and 4K tokens of context, naive chunked prefill, bf16
     weights, the demo model, V3's routing shape on the block-per-token
     routing kernel with every token's expert set equal to the CPU's);
     tolerances are documented in prepare.py;
     decode steps run as CUDA graphs (the runtime's default), and a case
     that fails runs again with DSRT_CUDA_GRAPHS=0 to tell replay from
     kernels;
  4. an independent implementation: Hugging Face transformers' DeepSeek-V3
     and -V2 models on the f32 test checkpoints, logits against ours;
  5. decode attention over the latent cache at 1K..32K context: step time
     minus the step time at context 1 (the rest of the 1-layer model), as
     cache bytes per second, against the copy bandwidth;
  6. end-to-end batch-1 decode on a random V2-Lite-sized bf16 checkpoint
     against the roofline (bytes a step must read / copy bandwidth), and
     against transformers on the same checkpoint;
  7. batched decode, batch 1..64, through the serving engine (bench/gpu/
     batch.py: ctypes on the packed libdsrt), first through the GPU ragged
     step (DSRT_ENGINE_EXECUTOR=step: one @ragged_step call per engine
     step, the GPU default), then one session per request, against the
     batched roofline (the distinct experts B tokens touch), and
     transformers' batched generate.

Between 3 and 4, the engine's GPU step (GpuStepExecutor: @ragged_step with
the paged split-KV attention) on a mixed batch (chunked prefill beside
decodes, pages crossed, teacher-forced) against the same batch on the CPU,
every logits row (cases and tolerances in prepare.py's STEP).

Stages 5-7 are perf.py's; what every stage shares (the log, ds-run as a
subprocess, the budget) is common.py's. Run through bench/gpu/run.sh
(unpacks the runtime, sets library paths).
`run.sh --dry` checks the plumbing where there is no GPU: the work folder is
complete, the packed runtime runs the smoke case's CPU artifact, the
batched-decode driver runs it through the engine, and the mixed-batch
check runs its first case with the CPU's step executor against CPU
sessions (results marked DRY).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, LOG, Budget, ds_run, log  # noqa: E402
from ds_testing import checkpoint  # noqa: E402
from ds_testing.reference import ReferenceModel  # noqa: E402
import batch as batching  # noqa: E402
from perf import BATCHES, attention, batched, e2e  # noqa: E402


def copy_bandwidth():
    """Bytes read + written per second by a 4 GiB device-to-device copy."""
    import torch
    n = 1 << 30  # floats: 4 GiB
    a = torch.empty(n, dtype=torch.float32, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    times = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        b.copy_(a)
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    del a, b
    torch.cuda.empty_cache()
    return 2 * 4 * n / float(np.median(times))


def preflight():
    """'' or one line naming what this machine lacks."""
    missing = []
    for module in ("torch", "transformers", "safetensors"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        return (f"bench/gpu/run.py: Python packages {', '.join(missing)} are missing on this "
                f"machine (the GPU image has them; elsewhere: pip install torch transformers "
                f"safetensors)")
    import torch
    if not torch.cuda.is_available():
        return "bench/gpu/run.py: torch sees no CUDA device"
    return ""


def sequence(case):
    rng = np.random.default_rng(case["seed"] + 1)
    vocab = case["config"]["vocab_size"]
    seq = rng.integers(2, vocab, size=case["prompt"] + case["steps"]).tolist()
    return seq[:case["prompt"]], seq[case["prompt"]:]


def write_case_checkpoint(case, scratch):
    ckpt = os.path.join(scratch, case["name"])
    if not os.path.exists(os.path.join(ckpt, "config.json")):
        checkpoint.write_checkpoint(ckpt, case["config"], dtype=case["weights_dtype"],
                                    seed=case["seed"])
    return ckpt


def smoke(case, work, scratch, dsrun):
    """One prompt + 2 decode steps with every launch synchronised."""
    ckpt = write_case_checkpoint(case, scratch)
    t0 = time.time()
    out = ds_run([os.path.join(work, f"{case['name']}-cuda.dsa"), "--weights", ckpt,
                  "--device", "cuda", "--prompt-tokens", "5", "--max-new-tokens", 2], dsrun,
                 timeout=60, env={"DSRT_CUDA_SYNC": "1"})
    return time.time() - t0, out.strip().splitlines()[-1] if out.strip() else ""


def parity(case, work, scratch, dsrun, env=None):
    ckpt = write_case_checkpoint(case, scratch)
    prompt, forced = sequence(case)
    seq = prompt + forced
    rows, routing = {}, {}
    context = ["--max-context", len(seq) + 8]
    for target in ("cuda", "cpu"):
        out = os.path.join(scratch, f"{case['name']}-{target}.npy")
        trace = os.path.join(scratch, f"{case['name']}-{target}.routing.json")
        ds_run([os.path.join(work, f"{case['name']}-{target}.dsa"), "--weights", ckpt,
                "--device", target, "--prompt-tokens", ",".join(map(str, prompt)),
                "--force-tokens", ",".join(map(str, forced)), "--dump-logits", out] + context +
               (["--dump-routing", trace] if case.get("routing") else []),
               dsrun, env=env if target == "cuda" else None)
        rows[target] = np.load(out)
        if case.get("routing"):
            routing[target] = expert_sets(trace)
    per_row = np.abs(rows["cuda"] - rows["cpu"]).max(axis=1)
    vs_cpu = float(per_row.max())
    ok = vs_cpu <= case["atol_cpu"]
    r = {"case": case["name"], "max_vs_cpu": vs_cpu, "atol_cpu": case["atol_cpu"],
         "max_vs_reference": None, "atol": case["atol"]}
    if not ok:
        # Where it goes wrong: the prompt's rows (prefill) or the decode
        # steps', and the first row past the tolerance.
        bad = np.flatnonzero(per_row > case["atol_cpu"])
        n = len(prompt)
        r["where"] = (f"prompt rows max {per_row[:n].max():.2e}, decode rows max "
                      f"{per_row[n:].max() if len(per_row) > n else 0:.2e}, "
                      f"{len(bad)} of {len(per_row)} rows over, first {int(bad[0])}")
        log(f"parity {case['name']}: {r['where']}")
        try:
            for line in compare_caches(case, work, scratch, dsrun, ckpt, prompt, forced):
                log(f"parity {case['name']}: cache {line}")
        except Exception as e:  # a diagnosis must not hide the result
            log(f"parity {case['name']}: cache comparison failed: {e}")
    if case.get("routing"):
        # The GPU's block-per-token routing kernel against the CPU routing:
        # the same expert set for every token of every MoE layer.
        gpu, cpu = routing["cuda"], routing["cpu"]
        r["routing_tokens"] = sum(len(v) for v in cpu.values())
        r["routing_mismatches"] = (
            sum(a != b for L in cpu for a, b in zip(gpu.get(L, []), cpu[L])) +
            sum(abs(len(gpu.get(L, [])) - len(cpu[L])) for L in cpu) + len(set(gpu) - set(cpu)))
        ok = ok and r["routing_tokens"] > 0 and r["routing_mismatches"] == 0
    if case.get("reference", True):
        ref = ReferenceModel.load(ckpt)
        want = ref.forward(seq, 0, ref.new_cache(case["dtype"]))
        r["max_vs_reference"] = float(np.abs(rows["cuda"] - want).max())
        ok = ok and r["max_vs_reference"] <= case["atol"]
    r["ok"] = ok
    r["logits"] = rows["cuda"]
    return r


def compare_caches(case, work, scratch, dsrun, ckpt, prompt, forced):
    """Both targets' caches after the same tokens (DSRT_DEBUG_CACHE), part by
    part and layer by layer: which rows differ, and the first such row's
    leading bytes on each side."""
    n = len(prompt) + len(forced)
    caches, layouts = {}, {}
    for target in ("cuda", "cpu"):
        path = os.path.join(scratch, f"{case['name']}-{target}.cache")
        ds_run([os.path.join(work, f"{case['name']}-{target}.dsa"), "--weights", ckpt,
                "--device", target, "--prompt-tokens", ",".join(map(str, prompt)),
                "--force-tokens", ",".join(map(str, forced)), "--max-context", n + 8],
               dsrun, env={"DSRT_DEBUG_CACHE": path})
        # The runtime describes its dump (Session.cpp cacheDumpLayout).
        with open(path + ".json") as f:
            lay = layouts[target] = json.load(f)
        layers, rows, row = lay["layers"], lay["rows"], lay["row_bytes"]
        raw = np.fromfile(path, np.uint8)
        caches[target] = raw[:layers * rows * row].reshape(layers, rows, row)[:, :n]
    if layouts["cuda"]["parts"] != layouts["cpu"]["parts"]:
        return [f"cache layouts differ: gpu {layouts['cuda']['parts']} "
                f"cpu {layouts['cpu']['parts']}"]
    fields = [(p["name"], p["begin"], p["end"]) for p in layouts["cpu"]["parts"]]
    out = []
    for L in range(layouts["cpu"]["layers"]):
        g, c = caches["cuda"][L], caches["cpu"][L]
        for name, a, b in fields:
            bad = np.flatnonzero((g[:, a:b] != c[:, a:b]).any(axis=1))
            if not len(bad):
                out.append(f"layer {L} {name}: equal on all {n} rows")
                continue
            r0 = int(bad[0])
            k = min(8, b - a)
            out.append(f"layer {L} {name}: {len(bad)} of {n} rows differ, first {r0}: "
                       f"gpu {g[r0, a:a + k].tolist()} cpu {c[r0, a:a + k].tolist()}")
    return out


def expert_sets(trace):
    """ds-run --dump-routing: {layer ordinal: [sorted experts per token]},
    the calls of a layer (prefill, then each decode step) concatenated."""
    with open(trace) as f:
        records = json.load(f)
    out = {}
    for rec in records:
        out.setdefault(rec["layer"], []).extend(sorted(e) for e in rec["experts"])
    return out
def step_requests(sc, vocab):
    rng = np.random.default_rng(7)
    return [(rng.integers(2, vocab, size=n).tolist(),
             rng.integers(2, vocab, size=sc["forced"]).tolist()) for n in sc["prompts"]]


def step_parity(sc, cases, args, sides):
    """The mixed batch of STEP case `sc` through the engine on each of
    `sides` ((label, artifact, device, executor), two of them); the largest
    difference between their logits rows, and the first side's stats."""
    pc = next(c for c in cases["parity"] if c["name"] == sc["parity"])
    ckpt = write_case_checkpoint(pc, args.scratch)
    requests = step_requests(sc, pc["config"]["vocab_size"])
    rt = batching.Runtime(os.path.join(args.scratch, "runtime", "lib", "libdsrt.so"))
    rows, stats = {}, {}
    for label, artifact, device, executor in sides:
        model = rt.load(os.path.join(args.work, artifact + ".dsa"), ckpt, device)
        try:
            rows[label], stats[label] = batching.mixed_batch(rt, model, requests,
                                                             sc["budget"], executor)
        finally:
            rt.lib.dsrt_model_free(model)
    a, b = (rows[s[0]] for s in sides)
    diff = max(float(np.abs(x - y).max()) for x, y in zip(a, b))
    first = stats[sides[0][0]]
    return {"case": sc["name"], "max_diff": diff, "atol": sc["atol"],
            "step_calls": first["step_calls"], "engine_steps": first["steps"],
            "rows": sum(len(x) for x in a),
            "ok": diff <= sc["atol"] and first["step_calls"] == first["steps"] > 0}


def hf_logits(ckpt, seq):
    """transformers' own DeepSeek model (V2 or V3, from config.json) on the
    checkpoint, in float32 without TF32: logits [len(seq), vocab]."""
    import torch
    import transformers
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = transformers.AutoModelForCausalLM.from_pretrained(
        ckpt, torch_dtype=torch.float32).to("cuda").eval()
    with torch.no_grad():
        out = model(torch.tensor([seq], device="cuda")).logits[0]
    return out.float().cpu().numpy(), transformers.__version__








def run_child(spec, timeout):
    """One libdsrt-through-ctypes stage (child_main) in its own process: a
    crash there (batch.py's ctypes mirrors writing past a struct killed
    three H200 runs whole) costs that stage, says which, and keeps torch
    out of libdsrt's process. The child's log lines join this run's log;
    its result comes back as JSON."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, PYTHONFAULTHANDLER="1"))
    result = None
    for line in p.stdout.splitlines():
        if line.startswith("CHILD-RESULT "):
            result = json.loads(line[len("CHILD-RESULT "):])
        elif line.strip():
            log(line)
    if p.returncode == 0 and result is not None:
        return result
    how = (f"signal {-p.returncode}" if p.returncode < 0 else f"exit code {p.returncode}")
    where = [l.strip() for l in p.stderr.splitlines()
             if l.lstrip().startswith(("File ", "Fatal", "RuntimeError", "Error"))]
    raise RuntimeError(f"child process died ({how}): " + " | ".join(where[-6:] or
                                                                    p.stderr.splitlines()[-3:]))


def child_main(spec):
    """run.py --child SPEC: what run_child asked for, on stdout."""
    args = argparse.Namespace(work=spec["work"], scratch=spec["scratch"], only="")
    cases, _ = load_cases(args, narrow=False)
    if spec["kind"] == "step":
        sc = next(c for c in cases["step"] if c["name"] == spec["case"])
        r = step_parity(sc, cases, args, [tuple(side) for side in spec["sides"]])
    else:
        ex = spec["executor"]
        r = batched(cases["e2e"]["config"], os.path.join(args.work, "v2lite.dsa"),
                    os.path.join(args.scratch, "v2lite-ckpt"),
                    os.path.join(args.scratch, "runtime", "lib", "libdsrt.so"), "cuda",
                    spec["bw"], Budget(spec["budget"]), BATCHES, 8, hf=ex == "session",
                    executor=ex)
    print("CHILD-RESULT " + json.dumps(r, default=lambda o: o.item()), flush=True)


def load_cases(args, narrow=True):
    """cases.json, narrowed to --only's cases (then no end-to-end stage;
    `narrow` False: the names are only checked), and the smoke case."""
    with open(os.path.join(args.work, "cases.json")) as f:
        cases = json.load(f)
    smoke_case = next(c for c in cases["parity"] if c["name"] == cases["smoke"])
    only = set(filter(None, args.only.split(",")))
    if only:
        known = {c["name"] for c in cases["parity"] + cases.get("step", []) +
                 cases["attention"]}
        if only - known:
            sys.exit(f"--only: no case named {', '.join(sorted(only - known))}")
    if only and narrow:
        cases["step"] = [c for c in cases.get("step", []) if c["name"] in only]
        cases["attention"] = [c for c in cases["attention"] if c["name"] in only]
        args.skip_e2e = True
        # Mixed batches find their checkpoints' parity cases in this list,
        # so it keeps them all; parity_stage runs only the named ones.
        for c in cases["parity"]:
            c["skip"] = c["name"] not in only
    return cases, smoke_case


def dry(args):
    """No GPU: the work folder is complete, the packed runtime runs the smoke
    case's CPU artifact alone and through the engine (batched driver)."""
    global LOG
    cases, smoke_case = load_cases(args, narrow=False)
    need = [f"{c['name']}-{t}.dsa" for c in cases["parity"] for t in ("cuda", "cpu")]
    need += [c["name"] + ".dsa" for c in cases["attention"]] + [cases["e2e"]["name"] + ".dsa"]
    missing = [n for n in need if not os.path.exists(os.path.join(args.work, n))]
    if missing:
        sys.exit(f"bench/gpu/run.py --dry: {args.work} lacks {', '.join(missing)}")
    log(f"DRY RUN (no GPU): {len(need)} artifacts present in {args.work}")
    dsrun = os.path.join(args.scratch, "runtime", "bin", "ds-run")
    case = next(c for c in cases["parity"] if c["name"] == cases["smoke"])
    ckpt = write_case_checkpoint(case, args.scratch)
    artifact = os.path.join(args.work, f"{case['name']}-cpu.dsa")
    out = ds_run([artifact, "--weights", ckpt, "--prompt-tokens", "5", "--max-new-tokens", 2],
                 dsrun, timeout=60).strip().splitlines()
    log(f"packed ds-run on {case['name']}-cpu.dsa: ok ({out[-1] if out else ''})")
    rows = batched(case["config"], artifact, ckpt,
                   os.path.join(args.scratch, "runtime", "lib", "libdsrt.so"), "cpu", None,
                   Budget(args.budget), [1, 2, 4], 4, hf=False)
    missing = [n for sc in cases["step"] for n in (sc["gpu"], sc["cpu"])
               if not os.path.exists(os.path.join(args.work, n + ".dsa"))]
    if missing:
        sys.exit(f"bench/gpu/run.py --dry: {args.work} lacks {', '.join(missing)}")
    sc = cases["step"][0]
    step = step_parity(sc, cases, args, [("step", sc["cpu"], "cpu", "step"),
                                         ("session", sc["cpu"], "cpu", "session")])
    log(f"mixed batch {sc['name']} on the CPU, step executor vs sessions: max diff "
        f"{step['max_diff']:.2e} over {step['rows']} rows, {step['step_calls']} step calls "
        f"{'ok' if step['ok'] else 'FAIL'}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu-results.json"), "w") as f:
        json.dump({"dry": True, "batched": rows, "step": step}, f, indent=1)
    if not step["ok"]:
        sys.exit(1)
    with open(os.path.join(args.out, "RESULTS-gpu.md"), "w") as f:
        f.write("# GPU results (bench/gpu/run.sh --dry: no GPU, plumbing only)\n\n```\n" +
                "\n".join(LOG) + "\n```\n")


def parity_stage(cases, args, dsrun, budget, results):
    """Parity of every case against the float64 reference and the CPU
    (again without CUDA graphs when it fails), then transformers on the same
    checkpoints and tokens; each case's failure is recorded, not raised."""
    for case in cases["parity"]:
        if case.get("skip"):
            continue
        if not budget.allows(f"parity {case['name']}", case.get("seconds", 10)):
            continue
        try:
            r = parity(case, args.work, args.scratch, dsrun)
        except Exception as e:  # one failing case must not hide the others
            results["errors"].append(f"parity {case['name']}: {e}")
            log(f"parity {case['name']}: ERROR {e}")
            continue
        ours = r.pop("logits")
        results["parity"].append(r)
        ref = ("n/a (too long for the float64 reference)" if r["max_vs_reference"] is None
               else f"{r['max_vs_reference']:.2e} (atol {r['atol']})")
        routed = ("" if "routing_tokens" not in r else
                  f", expert sets differ for {r['routing_mismatches']} of "
                  f"{r['routing_tokens']} tokens")
        log(f"parity {r['case']}: max |gpu - ref| {ref}, max |gpu - cpu| "
            f"{r['max_vs_cpu']:.2e} (atol {r['atol_cpu']}){routed} "
            f"{'ok' if r['ok'] else 'FAIL'}")
        if not r["ok"] and budget.allows(f"parity {case['name']} without graphs",
                                         case.get("seconds", 10)):
            # Decode steps run as CUDA graphs by default: tell a replay
            # problem from a kernel problem.
            try:
                g = parity(case, args.work, args.scratch, dsrun, {"DSRT_CUDA_GRAPHS": "0"})
                g.pop("logits")
                r["max_vs_cpu_without_graphs"] = g["max_vs_cpu"]
                log(f"parity {r['case']} with DSRT_CUDA_GRAPHS=0: max |gpu - cpu| "
                    f"{g['max_vs_cpu']:.2e} {'ok' if g['ok'] else 'FAIL'}")
            except Exception as e:
                log(f"parity {r['case']} with DSRT_CUDA_GRAPHS=0: ERROR {e}")
        if not case.get("hf") or not budget.allows(f"transformers {case['name']}", 30):
            continue
        try:
            prompt, forced = sequence(case)
            theirs, ver = hf_logits(os.path.join(args.scratch, case["name"]), prompt + forced)
            d = float(np.abs(theirs - ours).max())
            ok = d <= case["atol_hf"]
            results["hf"].append({"case": case["name"], "max_vs_transformers": d,
                                  "atol": case["atol_hf"], "transformers": ver, "ok": ok})
            log(f"transformers {ver} {case['name']}: max |ours - theirs| {d:.2e} "
                f"(atol {case['atol_hf']}) {'ok' if ok else 'FAIL'}")
        except Exception as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            results["errors"].append(f"transformers {case['name']}: {msg}")
            log(f"transformers {case['name']}: ERROR {msg}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(HERE, "out"))
    ap.add_argument("--scratch", default="/tmp/ds-gpu-bench")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--budget", type=float, default=450,
                    help="seconds for the whole run (stages past it are skipped)")
    ap.add_argument("--preflight-only", action="store_true",
                    help="check the machine has what the run needs, then stop")
    ap.add_argument("--only", default="",
                    help="comma-separated parity, mixed-batch and attention case names: "
                         "run those (after the smoke), nothing else")
    ap.add_argument("--dry", action="store_true",
                    help="no GPU: check the work folder and the packed runtime on the CPU")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(json.loads(args.child))
    budget = Budget(args.budget)
    if args.dry:
        return dry(args)
    problem = preflight()
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(2)
    if args.preflight_only:
        print("preflight: ok")
        return
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.scratch, exist_ok=True)
    dsrun = os.path.join(args.scratch, "runtime", "bin", "ds-run")
    cases, smoke_case = load_cases(args)
    results = {"device": None, "copy_GBps": None, "smoke": None, "parity": [], "hf": [],
               "step": [], "attention": [], "e2e": None, "batched": [], "errors": []}

    def finish(code):
        with open(os.path.join(args.out, "gpu-results.json"), "w") as f:
            json.dump(results, f, indent=1)
        with open(os.path.join(args.out, "RESULTS-gpu.md"), "w") as f:
            f.write("# GPU results (bench/gpu/run.sh)\n\n```\n" + "\n".join(LOG) + "\n```\n")
        sys.exit(code)

    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                          "--format=csv,noheader"], capture_output=True, text=True)
    results["device"] = smi.stdout.strip()
    log(f"device: {results['device']}")

    # 1. Smoke, fail fast: nothing else is worth the time if this fails.
    try:
        secs, last = smoke(smoke_case, args.work, args.scratch, dsrun)
        results["smoke"] = {"case": smoke_case["name"], "seconds": secs}
        log(f"smoke {smoke_case['name']} with DSRT_CUDA_SYNC=1: ok in {secs:.1f} s ({last})")
    except Exception as e:
        results["errors"].append(f"smoke: {e}")
        log(f"smoke {smoke_case['name']} with DSRT_CUDA_SYNC=1: FAILED: {e}")
        finish(1)

    bw = copy_bandwidth()
    results["copy_GBps"] = bw / 1e9
    log(f"device-to-device copy: {bw / 1e9:.0f} GB/s (read + write)")

    # 2. Parity, then transformers on the same checkpoints and tokens.
    parity_stage(cases, args, dsrun, budget, results)

    # 2b. The engine's GPU ragged step on a mixed batch against the CPU.
    for sc in cases.get("step", []):
        if not budget.allows(f"mixed batch {sc['name']}", 20):
            continue
        try:
            r = run_child({"kind": "step", "case": sc["name"], "work": args.work,
                           "scratch": args.scratch,
                           "sides": [("gpu", sc["gpu"], "cuda", "step"),
                                     ("cpu", sc["cpu"], "cpu", sc["cpu_executor"])]},
                          timeout=max(budget.left(), 60))
        except Exception as e:
            results["errors"].append(f"mixed batch {sc['name']}: {e}")
            log(f"mixed batch {sc['name']}: ERROR {e}")
            continue
        results["step"].append(r)
        log(f"mixed batch {sc['name']} (GPU step vs CPU {sc['cpu_executor']}): max |gpu - cpu| "
            f"{r['max_diff']:.2e} over {r['rows']} rows (atol {r['atol']}), "
            f"{r['step_calls']} step calls in {r['engine_steps']} engine steps "
            f"{'ok' if r['ok'] else 'FAIL'}")

    # 3. Attention bandwidth (bf16 cache rows here, FP8 rows at the end).
    def attention_stage(kinds):
        for case in cases["attention"]:
            if case.get("kv", "bf16") not in kinds or not budget.allows(
                    f"attention {case['name']}", 40):
                continue
            try:
                for r in attention(case, args.work, args.scratch, dsrun, bw):
                    results["attention"].append(r)
                    log(f"attention heads={r['heads']} {r['kv']} ctx={r['context']}: step "
                        f"{r['step_ms']:.3f} ms, attention {r['attention_ms']:.3f} ms, "
                        f"{r['GB_per_s']:.0f} GB/s = {100 * r['of_copy_bw']:.0f}% of copy")
            except Exception as e:
                results["errors"].append(f"attention {case['name']}: {e}")
                log(f"attention {case['name']}: ERROR {e}")

    attention_stage({"bf16"})

    # 4. End to end (a 31 GB checkpoint: the longest stage, so the last).
    if not args.skip_e2e and budget.allows("e2e v2lite", 240):
        try:
            results["e2e"] = e2e(cases, args, bw)
        except Exception as e:
            results["errors"].append(f"e2e: {e}")
            log(f"e2e: ERROR {e}")

    # 5. Batched decode through the engine on the same checkpoint.
    # Through the GPU step first (the new path), then sessions; transformers
    # once, after the second.
    for executor in ("step", "session"):
        if not (results["e2e"] and budget.allows(f"batched decode ({executor})", 60)):
            continue
        try:
            results["batched"] += run_child(
                {"kind": "batched", "executor": executor, "work": args.work,
                 "scratch": args.scratch, "bw": bw, "budget": budget.left()},
                timeout=max(budget.left(), 60) + 60)
        except Exception as e:
            results["errors"].append(f"batched ({executor}): {e}")
            log(f"batched ({executor}): ERROR {e}")

    attention_stage({"fp8"})

    failed = ([p for p in results["parity"] if not p["ok"]] or
              [s for s in results["step"] if not s["ok"]] or
              [h for h in results["hf"] if not h["ok"]] or results["errors"])
    finish(1 if failed else 0)


if __name__ == "__main__":
    main()
