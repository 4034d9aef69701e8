"""ds: compile DeepSeek-style checkpoints with MLIR and run them.

    import dsmlir
    dsmlir.compile("ckpt/", "model.dsa")                 # artifact
    ir = dsmlir.compile("ckpt/", emit="absorbed")        # one stage's IR
    stages = dsmlir.compile_stages("ckpt/")              # {stage: IR text}
    model = dsmlir.Model("model.dsa", "ckpt/")
    out = model.generate([1, 2, 3], max_new_tokens=8)    # tokens, logits, stats
    s = model.session(); logits = s.prefill([1, 2, 3]); row = s.decode(4)
    eng = dsmlir.Engine("model.dsa", "ckpt/", kv_cache_bytes=1 << 26)
    outs = eng.generate([[1, 2], [3, 4, 5]], max_new_tokens=8)  # many at once
    tok = dsmlir.Tokenizer("ckpt/")                      # tokenizer.json + config
    ids = tok.encode("Hello"); text = tok.decode(ids)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hi"}])
    out = model.generate("Hello", max_new_tokens=8)      # out["text"] too

Errors raise dsmlir.Error with the same one-line messages as the tools.
"""
import json

from . import _dsmlir
from ._dsmlir import Error, Session, TextStream
from .engine import Engine

__all__ = ["Engine", "Error", "Model", "Session", "TextStream", "Tokenizer", "compile",
           "compile_stages", "stage_names"]


def stage_names(target="cpu"):
    """The pipeline's stages in order: ds, absorbed, dispatched, kernels, loops,
    then llvm (cpu) or gpu, nvvm, ptx, llvm (cuda)."""
    return list(_dsmlir.stage_names(target))


def compile(input, output=None, *, emit=None, target="cpu", dtype="f32",
            check_weights=True, trace_routing=False, gpu_arch="sm_90",
            kv_layout="latent"):
    """Compiles a checkpoint directory, config.json or .mlir file.

    With `emit` (a stage name) returns that stage's IR as text; otherwise
    writes the artifact to `output` and returns its path. `dtype` is the
    latent cache's (ds-compile --kv-dtype): "f32", "bf16" or "fp8".
    `kv_layout` (ds-compile --kv-layout): "latent", or "per-head" for
    @ragged_step pages of every head's K and V (an MHA deployment's cache,
    for comparisons).
    """
    text = _dsmlir.compile(str(input), str(output or ""), emit or "", target, dtype,
                           check_weights, trace_routing, gpu_arch, kv_layout)
    return text if emit else str(output)


def compile_stages(input, *, target="cpu", dtype="f32", check_weights=True,
                   gpu_arch="sm_90"):
    """{stage name: IR text} for every stage, in pipeline order."""
    return dict(_dsmlir.compile_stages(str(input), target, dtype, check_weights,
                                       gpu_arch))


class Tokenizer:
    """A checkpoint's Hugging Face tokenizer (tokenizer.json, tokenizer_config.json),
    with Hugging Face's names and meanings."""

    def __init__(self, path):
        self._t = _dsmlir.Tokenizer(str(path))

    def encode(self, text, add_special_tokens=True):
        """Token ids of `text` (str, or UTF-8 bytes); BOS first when
        add_special_tokens and tokenizer_config.json's add_bos_token say so."""
        return self._t.encode(text, add_special_tokens)

    def decode(self, ids, skip_special_tokens=False):
        return self._t.decode([int(i) for i in ids], skip_special_tokens)

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
        """Renders `messages` ([{"role": ..., "content": ...}, ...]) with the chat
        template of tokenizer_config.json (our own Jinja interpreter); the text,
        or with `tokenize` its ids (encoded without adding special tokens: the
        template writes BOS itself)."""
        text = self._t.apply_chat_template(json.dumps(messages, ensure_ascii=False),
                                           bool(add_generation_prompt))
        return self.encode(text, add_special_tokens=False) if tokenize else text

    def stream(self, skip_special_tokens=False):
        """An incremental decoder: push(id) returns the text that id completes
        (never half a character), finish() the rest."""
        return self._t.stream(skip_special_tokens)

    def token_to_id(self, token):
        return self._t.token_to_id(token)

    @property
    def vocab_size(self):
        return self._t.vocab_size

    @property
    def bos_token_id(self):
        return self._t.bos_token_id

    @property
    def eos_token_id(self):
        return self._t.eos_token_id

    @property
    def chat_template(self):
        return self._t.chat_template


class Model:
    """A compiled artifact bound to its checkpoint on a device."""

    def __init__(self, artifact, weights, device="cpu", tokenizer=None):
        self._m = _dsmlir.Model(str(artifact), str(weights), device)
        self._tokenizer_path = str(tokenizer or weights)
        self._tokenizer = None

    @property
    def tokenizer(self):
        """The Tokenizer of the checkpoint (or of the `tokenizer` directory given)."""
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self._tokenizer_path)
        return self._tokenizer

    @property
    def info(self):
        return self._m.info

    def check_weights(self):
        """Raises dsmlir.Error naming the first NaN/Inf weight."""
        self._m.check_weights()

    def session(self, capacity=None):
        """A fresh latent KV cache of `capacity` tokens."""
        return self._m.session(capacity)

    def generate(self, prompt, max_new_tokens=None, *, temperature=0.0, top_p=1.0,
                 top_k=0, seed=0, force_tokens=None, capacity=None):
        """Prefill + decode like ds-run: {'tokens', 'logits' [P+N, vocab], 'stats'}.

        `prompt` is token ids or text; text is encoded with the model's tokenizer
        (BOS added as tokenizer_config.json says) and the result then also has
        'text', the generated tokens decoded without special tokens."""
        s = self.session(capacity)
        n = -1 if max_new_tokens is None else int(max_new_tokens)
        force = None if force_tokens is None else [int(t) for t in force_tokens]
        is_text = isinstance(prompt, (str, bytes))
        ids = self.tokenizer.encode(prompt) if is_text else [int(t) for t in prompt]
        if int(top_k) < 0:
            raise ValueError(f"top_k must be >= 0 (0 is off), got {top_k}")
        out = s.generate(ids, n, temperature, top_p, seed, force, int(top_k))
        if is_text:
            out["prompt_tokens"] = ids
            out["text"] = self.tokenizer.decode(out["tokens"], skip_special_tokens=True)
        return out

    def routing_trace(self):
        return self._m.routing_trace()

    def weight_pages(self):
        """How the checkpoint's files sit in memory now, by the kernel's
        account: {'mapped_bytes', 'resident_bytes' (pages touched through
        the mapping), 'huge_page_bytes' (of those, mapped in 2 MiB pages),
        'note' ('' or a line of advice where a GiB or more sits in 4 KiB
        pages)}."""
        return self._m.weight_pages()
