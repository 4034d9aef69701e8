"""dsmlir.Engine: many requests served at once (continuous batching, a
paged KV cache pool, prefix caching) over a compiled artifact.

    eng = dsmlir.Engine("model.dsa", "ckpt/", kv_cache_bytes=1 << 26)
    outs = eng.generate([[1, 2, 3], [4, 5]], max_new_tokens=8)
    outs[0]["tokens"], outs[0]["finish_reason"]          # [...], "length"
    for ev in eng.stream([[1, 2, 3]], max_new_tokens=4):  # token by token
        print(ev["prompt_index"], ev["token"], ev["finish_reason"])
    eng.stats()                                          # pages, hits, ...
    eng.generate(["Hello", [1, 2]], max_new_tokens=8)     # text or token ids

Each running request has its own session (contiguous latent cache) today;
the page pool schedules them (see runtime/include/dsrt/dsrt_engine.h).
"""
from . import _dsengine


def _forces(force_tokens, n):
    """One forced list (or None) per prompt; a flat list for a single prompt."""
    if force_tokens is None:
        return [None] * n
    if n == 1 and all(not isinstance(t, (list, tuple)) for t in force_tokens):
        return [force_tokens]
    if len(force_tokens) != n:
        raise ValueError(f"force_tokens: {len(force_tokens)} lists for {n} prompts")
    return list(force_tokens)


def _constraint(json_schema, regex, choice, json_object):
    """(kind, spec) of the structured output asked for, or None."""
    import json
    given = [(k, v) for k, v in (("json_schema", json_schema), ("regex", regex),
                                 ("choice", choice)) if v is not None]
    if json_object:
        given.append(("json_object", ""))
    if len(given) > 1:
        raise ValueError("give one of json_schema, regex, choice and json_object, not %s"
                         % ", ".join(k for k, _ in given))
    if not given:
        return None
    kind, spec = given[0]
    if kind == "json_schema" and not isinstance(spec, str):
        spec = json.dumps(spec)  # dicts keep their key order: properties' order
    elif kind == "choice":
        spec = [str(c) for c in spec]
    return (kind, spec)


class Engine:
    """A compiled artifact bound to its checkpoint, serving many requests.

    The pool is `kv_cache_bytes` (64-token pages of the model's
    kv_cache_bytes_per_token each) or `num_pages` pages; creation fails when
    one request of `max_model_len` tokens does not fit.

    `speculative="mtp"` (or "mtp:K") drafts K tokens per step with the
    artifact's MTP module and verifies them in the next step: greedy output
    is unchanged, sampled output keeps the model's distribution; stats()
    then counts drafts proposed and accepted.

    `scheduling_policy="priority"` (vLLM's): waiting requests run by their
    `priority` (stream()/generate(), lower first, then arrival), and the
    running request last in that order gives way when pages run out;
    "fcfs" (the default) serves in arrival order and refuses priorities.
    """

    def __init__(self, artifact, weights, device="cpu", kv_cache_bytes=None, *,
                 num_pages=None, max_num_seqs=256, max_num_batched_tokens=2048,
                 max_model_len=None, enable_prefix_caching=True, tokenizer=None,
                 speculative=None, scheduling_policy="fcfs"):
        if scheduling_policy not in ("fcfs", "priority"):
            raise ValueError("scheduling_policy must be 'fcfs' or 'priority', got %r"
                             % (scheduling_policy,))
        self._tokenizer_path = str(tokenizer or weights)
        self._tokenizer = None
        self._e = _dsengine.Engine(str(artifact), str(weights), device,
                                   int(kv_cache_bytes or 0), int(num_pages or 0),
                                   int(max_num_seqs), int(max_num_batched_tokens),
                                   int(max_model_len or 0), bool(enable_prefix_caching),
                                   str(speculative or ""), scheduling_policy == "priority")

    @property
    def info(self):
        return self._e.info

    @property
    def rank(self):
        """This process's rank in a partitioned model's job (ds-compile
        --tp/--ep under mpiexec); 0 otherwise."""
        return self._e.rank

    @property
    def world_size(self):
        return self._e.world_size

    def follow(self):
        """Ranks other than 0 of a partitioned model: runs every step rank
        0's engine broadcasts, on this rank's page pool, until rank 0 closes
        its engine. Only rank 0 takes requests and sees outputs:

            eng = dsmlir.Engine("tp2.dsa", "ckpt/", num_pages=64)
            if eng.rank != 0:
                eng.follow()         # returns when rank 0 calls close()
            else:
                outs = eng.generate([[1, 2, 3]], max_new_tokens=8)
            eng.close()
        """
        self._e.follow()

    def close(self):
        """Frees the engine and the model (rank 0 of a partitioned model:
        its followers return from follow()). Further calls raise."""
        self._e.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def tokenizer(self):
        """The Tokenizer of the checkpoint (or of the `tokenizer` directory
        given), loaded when a text prompt first needs it."""
        if self._tokenizer is None:
            from . import Tokenizer  # the package imports this module first
            self._tokenizer = Tokenizer(self._tokenizer_path)
        return self._tokenizer

    def _prompt_ids(self, prompt):
        """Token ids of one prompt: text is encoded like Model.generate does
        (BOS as tokenizer_config.json says), ids are taken as they are."""
        if isinstance(prompt, (str, bytes)):
            return self.tokenizer.encode(prompt)
        return [int(t) for t in prompt]

    def stats(self):
        """Requests running/waiting, pages used/free/cached, preemptions,
        prefix-cache hit tokens, steps and tokens per step; with
        speculation, spec_draft_tokens / spec_accepted_tokens, the
        acceptance rate and the mean accepted length (tokens gained per
        verify round, 1 + accepted / rounds); with the compiled step,
        step_calls, step_segments (sequences those calls ran) and
        step_naive_segments (those that took the naive MLA form),
        step_tokens / step_naive_tokens (their new tokens) and
        step_head_matmul_rows (rows the absorbed form's per-head products
        computed, all layers: the naive sequences' are skipped)."""
        return self._e.stats()

    def _add_all(self, prompts, max_new_tokens, temperature, top_p, top_k, seed,
                 stop_token_ids, ignore_eos, force_tokens, return_logits, token_logits,
                 processing):
        n = len(prompts)
        forces = _forces(force_tokens, n)
        prompts = [self._prompt_ids(p) for p in prompts]  # all encoded before any is added
        self._encoded = prompts
        ids = []
        try:
            priority = processing.get("priority", 0)
            for i, prompt in enumerate(prompts):
                force = None if forces[i] is None else [int(t) for t in forces[i]]
                if isinstance(priority, (list, tuple)):
                    processing = dict(processing, priority=int(priority[i]))
                elif "priority" in processing:
                    processing = dict(processing, priority=int(priority))
                max_tokens = max_new_tokens
                if max_tokens is None:
                    max_tokens = len(force) if force is not None else 16
                ids.append(self._e.add(prompt, int(max_tokens),
                                       float(temperature), float(top_p), int(top_k),
                                       int(seed), [int(t) for t in (stop_token_ids or [])],
                                       bool(ignore_eos), force, bool(return_logits),
                                       bool(token_logits), processing))
        except Exception:
            for rid in ids:  # all or nothing: a bad prompt adds none
                self._e.abort(rid)
            self._drain()
            raise
        return ids

    def _drain(self):
        has_work = True
        while has_work:
            has_work, _ = self._e.step()

    def stream(self, prompts, max_new_tokens=None, *, temperature=0.0, top_p=1.0,
               top_k=0, seed=0, stop_token_ids=None, ignore_eos=False,
               force_tokens=None, return_logits=False, token_logits=False,
               presence_penalty=0.0, frequency_penalty=0.0, repetition_penalty=1.0,
               min_p=0.0, min_tokens=0, logit_bias=None, prompt_logprobs=False,
               priority=0, json_schema=None, regex=None, choice=None, json_object=False):
        """Runs the prompts concurrently, yielding one dict per event:
        {"prompt_index", "token", "finish_reason", "time"} with token None and
        finish_reason set ("stop", "length", "abort") on a request's last
        event, which also carries "logits" when return_logits. With
        token_logits a token event carries "logits": the row it was chosen
        from (unlike return_logits, this keeps prefix-cache hits).
        presence_penalty, frequency_penalty, repetition_penalty, min_p,
        min_tokens and logit_bias ({token id: bias}) process each row before
        sampling, in vLLM's order (as ds-serve's fields of those names).
        With prompt_logprobs, events {"prompt_index", "prompt_logprobs",
        "position"} come before a prompt's first token: the log-probabilities
        of its tokens position, position + 1, ... given the ones before
        (such a request does not read the prefix cache). priority: one
        value, or one per prompt (scheduling_policy="priority").
        Structured outputs (one of): json_schema (a dict or its JSON text),
        regex (the whole answer one match), choice (a list of texts),
        json_object=True: each answer follows it, token by token, as
        ds-serve's response_format / guided_* do (same subset, same
        refusals); needs the tokenizer."""
        processing = {"presence_penalty": float(presence_penalty),
                      "frequency_penalty": float(frequency_penalty),
                      "repetition_penalty": float(repetition_penalty),
                      "min_p": float(min_p), "min_tokens": int(min_tokens),
                      "logit_bias": {int(k): float(v) for k, v in (logit_bias or {}).items()},
                      "prompt_logits": bool(prompt_logprobs),
                      "priority": priority}
        constraint = _constraint(json_schema, regex, choice, json_object)
        if constraint:
            processing["constraint"] = constraint + (self._tokenizer_path,)
        ids = self._add_all(prompts, max_new_tokens, temperature, top_p, top_k, seed,
                            stop_token_ids, ignore_eos, force_tokens, return_logits,
                            token_logits, processing)
        encoded = self._encoded
        index = {rid: i for i, rid in enumerate(ids)}
        left = len(ids)
        try:
            while left:
                _, events = self._e.step()
                for rid, token, reason, t, hit, logits in events:
                    if rid not in index:
                        continue
                    if token == -2:  # prompt rows: score the next prompt tokens
                        import numpy as np
                        prompt = encoded[index[rid]]
                        rows = np.asarray(logits, np.float64)
                        top = rows.max(axis=1, keepdims=True)
                        norm = top[:, 0] + np.log(np.exp(rows - top).sum(axis=1))
                        nxt = prompt[hit + 1:hit + 1 + len(rows)]
                        lps = rows[np.arange(len(rows)), nxt] - norm
                        yield {"prompt_index": index[rid], "position": hit + 1,
                               "prompt_logprobs": [float(v) for v in lps], "time": t}
                        continue
                    ev = {"prompt_index": index[rid], "token": token if token >= 0 else None,
                          "finish_reason": reason, "time": t, "prefix_hit_tokens": hit}
                    if reason is not None:
                        left -= 1
                        if return_logits:
                            ev["logits"] = logits
                    elif token_logits:
                        ev["logits"] = logits[0]
                    yield ev
        finally:
            if left:  # the consumer stopped early: free the rest
                for rid in ids:
                    try:
                        self._e.abort(rid)
                    except Exception:
                        pass
                self._drain()

    def generate(self, prompts, max_new_tokens=None, *, temperature=0.0, top_p=1.0,
                 top_k=0, seed=0, stop_token_ids=None, ignore_eos=False,
                 force_tokens=None, return_logits=False, token_logits=False,
                 **processing):
        """Runs a list of prompts concurrently, each token ids or text (text is
        encoded with the checkpoint's tokenizer). Returns per prompt
        {"tokens", "finish_reason", "prefix_hit_tokens"}; a text prompt's
        result also has "prompt_tokens" and "text" (the generated tokens
        decoded without special tokens). With
        return_logits, "logits" [len(prompt) + fed tokens, vocab] (the rows
        of ds-run --dump-logits; such a request does not read the prefix
        cache, its prompt rows must be computed), with token_logits
        "token_logits" [fed tokens, vocab] (the row each was chosen from).
        force_tokens: one list per prompt (teacher forcing; max_new_tokens
        defaults to its length). Keyword arguments of stream() for logits
        processing (penalties, min_p, min_tokens, logit_bias) pass through;
        with prompt_logprobs=True a result also has "prompt_logprobs": None
        for the first prompt token, then each next one's log-probability."""
        outs = [{"tokens": [], "finish_reason": None, "prefix_hit_tokens": 0}
                for _ in prompts]
        for ev in self.stream(prompts, max_new_tokens, temperature=temperature,
                              top_p=top_p, top_k=top_k, seed=seed,
                              stop_token_ids=stop_token_ids, ignore_eos=ignore_eos,
                              force_tokens=force_tokens, return_logits=return_logits,
                              token_logits=token_logits, **processing):
            o = outs[ev["prompt_index"]]
            if "prompt_logprobs" in ev:
                o.setdefault("prompt_logprobs", [None]).extend(ev["prompt_logprobs"])
                continue
            if ev["token"] is not None:
                o["tokens"].append(ev["token"])
                if token_logits:
                    o.setdefault("token_logits", []).append(ev["logits"])
            else:
                o["finish_reason"] = ev["finish_reason"]
                o["prefix_hit_tokens"] = ev["prefix_hit_tokens"]
                if return_logits:
                    o["logits"] = ev["logits"]
        for prompt, o in zip(prompts, outs):
            if processing.get("prompt_logprobs"):
                o.setdefault("prompt_logprobs", [None])  # a one-token prompt
            if isinstance(prompt, (str, bytes)):
                o["prompt_tokens"] = self._prompt_ids(prompt)
                o["text"] = self.tokenizer.decode(o["tokens"], skip_special_tokens=True)
        if token_logits:
            import numpy as np
            for o in outs:
                rows = o.pop("token_logits", [])
                o["token_logits"] = (np.stack(rows) if rows
                                     else np.zeros((0, self.info["vocab_size"]), np.float32))
        return outs
