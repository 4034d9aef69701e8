#!/usr/bin/env python3
"""Tokenizer throughput, ours against the JavaScript reference, in one run.

    /usr/bin/python3 bench/tokenizer/run.py [--build build] [--mb 1.5] [--repeats 3]

The text is real multilingual prose: the translated messages of the gettext
catalogs installed under /usr/share/locale (Chinese, Japanese, Korean,
Russian, Arabic, Hindi, Thai, Vietnamese, Greek, Hebrew, German, French,
Spanish, ...), interleaved and cut at --mb megabytes. Both sides encode it
once with a fresh tokenizer ("first", empty caches), then best of
--repeats warm passes, and decode the ids; one thread each. The ids must
agree (the comparison is of the same work), and the ratios are printed, in
wall-clock time and in CPU time (the process's for node, which includes its
garbage collector threads; the thread's for ours): on a shared machine the
wall clock also counts waiting for a core.
"""
import argparse
import gettext
import glob
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_MODULES = os.path.join(ROOT, "third_party", "npm", "node_modules")
V3 = os.path.join(NODE_MODULES, "@lenml", "tokenizer-deepseek_v3", "models")
LANGS = ["zh_CN", "ja", "ko", "ru", "ar", "hi", "th", "vi", "el", "he", "de", "fr",
         "es", "uk", "pt_BR", "tr", "pl", "zh_TW", "fa", "bn"]


def messages(lang):
    out = []
    for mo in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
        try:
            with open(mo, "rb") as f:
                cat = gettext.GNUTranslations(f)._catalog
        except Exception:  # a catalog gettext cannot read is just skipped
            continue
        for k in sorted(cat, key=str):
            v = cat[k]
            if isinstance(v, str) and v and k:
                out.append(v)
    return out


def build_text(limit):
    per_lang = {l: messages(l) for l in LANGS}
    per_lang = {l: m for l, m in per_lang.items() if m}
    parts, size, i = [], 0, 0
    while size < limit and any(i < len(m) for m in per_lang.values()):
        for m in per_lang.values():
            if i < len(m):
                parts.append(m[i])
                size += len(m[i].encode())
        i += 1
    text = "\n".join(parts).encode()[:limit].decode("utf-8", "ignore")
    return text, sorted(per_lang)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--mb", type=float, default=1.5)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    text, langs = build_text(int(a.mb * 1e6))
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    if len(text.encode()) < 1_000_000:
        sys.exit(f"only {len(text.encode())} bytes of catalog text found (need 1 MB)")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "text.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        ours = json.loads(subprocess.run(
            [os.path.join(a.build, "bin", "ds-bench-tokenizer"), V3, path, str(a.repeats)],
            check=True, capture_output=True, text=True).stdout)
        js = json.loads(subprocess.run(
            ["node", os.path.join(ROOT, "bench", "tokenizer", "bench_tokenizer.js"), path,
             str(a.repeats)], check=True, capture_output=True, text=True,
            env=dict(os.environ, NODE_PATH=NODE_MODULES)).stdout)
        same = open(path + ".ids").read() == open(path + ".js-ids").read()
    print(f"text: {ours['bytes']} bytes, {ours['tokens']} tokens, languages: {' '.join(langs)}")
    print(f"ids identical to the JavaScript reference: {'yes' if same else 'NO'}")
    print(f"load average before the run: {load_before}")
    print(f"{'':28}{'ours (C++)':>12}{'JavaScript':>12}{'ratio':>8}")
    for clock, prefix in [("wall", ""), ("CPU", "cpu_")]:
        for key, name in [("encode_first_mb_s", "encode, first"),
                          ("encode_warm_mb_s", "encode, warm"),
                          ("decode_mb_s", "decode")]:
            o, j = ours[prefix + key], js[prefix + key]
            label = f"{name} MB/s ({clock})"
            print(f"{label:28}{o:12.2f}{j:12.2f}{o / j:7.1f}x")
    print(f"{'load s (wall)':28}{ours['load_s']:12.3f}{js['load_s']:12.3f}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
