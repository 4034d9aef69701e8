"""Chat templates: our Jinja interpreter against Python's Jinja2 itself,
configured as transformers' apply_chat_template configures it (sandbox,
trim_blocks, lstrip_blocks, loopcontrols, its tojson, raise_exception).

This is the reference Hugging Face renders with, so it also covers what the
JavaScript reference lacks (str.split, `~`, tojson, Python's printing of
None/True/floats/lists, per-iteration loop scopes). It needs Debian's
python3-jinja2; without it the tests are reported as skipped, naming it.
"""
import json
import os

import pytest

from test_chat_template import BOS, EOS, TEMPLATES, V3_DIR, CApi, BUILD, conversations

jinja2 = pytest.importorskip("jinja2", reason="python3-jinja2 (Debian) is not installed")
import jinja2.ext  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402


def transformers_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


# Constructs outside what the JavaScript reference runs.
SNIPPETS = [
    "{{ 'a b  c'.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}",
    "{{ ' a b c '.split(None, 1) }}|{{ ' a b c '.rsplit(None, 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}",
    "{{ 'x</think>y</think>z'.split('</think>')[-1] }}{{ 'no tags'.split('</think>')[-1] }}",
    "[{{ '  hi \\n'.strip() }}][{{ 'xxhixx'.strip('x') }}][{{ '  a'.lstrip() }}][{{ 'a  '.rstrip() }}]",
    "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'a-b'.replace('-', '+') }}",
    "{{ 'a' ~ 1 ~ none ~ true ~ 2.5 ~ [1] }}",
    "{{ none }} {{ true }} {{ 1.0 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ 10 ** 12 // 10 ** 5 }}",
    "{{ [1, 'a', none, {'k': [true]}] }} {{ {'q': \"it's\", 'd': 'say \"hi\"'} }}",
    "{{ {'a': [1, none, true, 'é\"\\n'], 'b': 1.5, 'c': {}} | tojson }}",
    "{{ {'a': [1, 2], 'b': {'c': []}} | tojson(indent=2) }}",
    "{% set x = 0 %}{% for i in range(3) %}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}",
    "{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for x in range(6) if x is even %}{{ loop.index }}:{{ x }}/{{ loop.length }} {% endfor %}",
    "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% else %}none{% endfor %}",
    "{{ [1, 2, 3, 4][1:3] }}{{ [1, 2, 3][::-1] }}{{ 'héllo'[1:3] }}{{ 'hello'[-3:] }}{{ [1, 2, 3][-10:2] }}{{ 'abc'[::2] }}",
    "{{ -7 // 2 }} {{ -7 % 3 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 2 ** -1 }} {{ true + 1 }}",
    "{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ [1, 2] < [1, 3] }} {{ 'b' > 'a' }} {{ none == none }}",
    "{{ 'x' if false }}|{{ 'a' if 1 > 2 else 'b' }}|{{ 0 or 'y' }}|{{ 1 and [] }}",
    "{{ 'héllo' | length }}{{ x | length }}{{ '  a ' | trim }}{{ [3, 1] | first }}{{ 'ab' | last }}",
    "{{ x | default('d') }}{{ '' | default('e', true) }}{{ '3' | int + 1 }}{{ '2.5' | float }}{{ 3 | string }}",
    "{{ ['a', 'b'] | join(', ') }}{{ [1, 2] | reverse | list }}{{ 'AbC' | lower }}{{ 'ab' | upper }}{{ -3 | abs }}",
    "{{ 'hello world' | title }} {{ 'hello World' | capitalize }} {{ '<a>&\"' | e }}",
    "{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c %}x{{ a + b }}{% endset %}[{{ c }}]",
    "a\n  {% if true %}\n  b\n  {% endif %}\nc\n   {%+ if true %}d{% endif %}\n{# c #}\ne {#- c -#}  f",
    "{{ 'a' }}\n{{- 'b' }}\n\n{{ 'c' -}}\n  d",
    "{{ [1, 2] == [1, 2] }}{{ {'a': 1} == {'a': 1} }}{{ 'a' in {'a': 1} }}{{ 2 not in [1] }}{{ 'at' in 'cat' }}",
    "{{ 9 is divisibleby(3) }}{{ 3 is odd }}{{ 1 is integer }}{{ true is boolean }}{{ {} is mapping }}{{ 'a' is string }}{{ none is none }}{{ x is undefined }}",
    "{{ ['b', 'A', 'c'] | sort }}{{ [3, 1, 2] | sort(reverse=true) }}{{ ['b', 'A'] | sort(case_sensitive=true) }}",
    "{{ [{'n': 2}, {'n': 1}] | sort(attribute='n') | map(attribute='n') | list }}{{ ['a', 'A', 'b', 'a'] | unique | list }}",
    "{{ [3, 1, 2] | min }}{{ [3, 1, 2] | max }}{{ ['b', 'A'] | max }}{{ [1, 2.5] | sum }}{{ [{'x': 2}, {'x': 3}] | sum(attribute='x') }}",
    "{{ raise_exception('stop here') }}",
    "{{ 'a' + 1 }}",
    "{{ undefined_var.attr }}",
]


@pytest.fixture(scope="module")
def capi():
    return CApi(os.path.join(BUILD, "lib", "libdsrt.so"))


def jinja2_render(template, messages, add_generation_prompt, context):
    try:
        text = template.render(
            messages=messages, add_generation_prompt=add_generation_prompt,
            tools=None, documents=None, **context)
        return {"text": text}
    except Exception as e:  # any Jinja2 failure: both must refuse
        return {"error": f"{type(e).__name__}: {e}"}


def compare(capi, env, source, cases, context):
    handle = capi.create(source)
    template = env.from_string(source)
    mismatches = []
    try:
        for name, messages, agp in cases:
            want = jinja2_render(template, messages, agp, context)
            got = capi.render(handle, messages, agp, context)
            if ("text" in want) != ("text" in got) or ("text" in want and want != got):
                mismatches.append(f"{name} agp={agp}: jinja2 {want!r}\n  ours {got!r}")
    finally:
        capi.lib.dsrt_chat_template_free(handle)
    return mismatches


def test_snippets_match_jinja2(capi):
    env = transformers_environment()
    mismatches = []
    for i, snippet in enumerate(SNIPPETS):
        for m in compare(capi, env, snippet, [(f"snippet {i}", [], False)], {}):
            mismatches.append(f"{snippet!r}: {m}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("name", ["deepseek-v3", "deepseek-r1", "deepseek-v2.5",
                                  "deepseek-v2-chat", "constructs-chat", "constructs-data"])
def test_templates_match_jinja2(capi, name):
    env = transformers_environment()
    if name == "deepseek-v3":
        with open(os.path.join(V3_DIR, "tokenizer_config.json"), encoding="utf-8") as f:
            source = json.load(f)["chat_template"]
    else:
        with open(os.path.join(TEMPLATES, name + ".jinja"), encoding="utf-8") as f:
            source = f.read()
    convs = list(conversations())
    convs.append(("r1-thinking", [{"role": "user", "content": "q"},
                                  {"role": "assistant", "content": "<think>x</think>\n\nA"},
                                  {"role": "user", "content": "q2"}]))
    cases = [(n, m, agp) for n, m in convs for agp in (False, True)]
    mismatches = compare(capi, env, source, cases,
                         {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS})
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ:\n" + "\n".join(mismatches[:8])
