#!/usr/bin/env python3
"""Counts, in the `gpu` stage of a CUDA compile (ds-compile --emit=gpu), the
device-to-host copies (gpu.memcpy into host memory: each a synchronous wait)
and the grouped-GEMM runtime calls (each reads the expert offsets back, one
more wait, when it has more rows than experts; decode-sized ones keep them
on the device: decode_waits.py measures a step's waits) that one call of an entry point makes, over the kernel functions
it calls. Prints one line per entry point:
    decode: 0 copies, 174 grouped GEMMs
"""
import re
import sys


def functions(text):
    out = {}
    for m in re.finditer(r"func\.func (?:private )?@([\w$.]+)\(", text):
        end = text.find("\n  }\n", m.start())
        out[m.group(1)] = text[m.start():end]
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: host_syncs.py FILE.gpu.mlir")
    fns = functions(open(sys.argv[1]).read())
    for entry in ("prefill", "decode"):
        if entry not in fns:
            sys.exit(f"host_syncs.py: no @{entry} in {sys.argv[1]}")
        copies = grouped = 0
        for call in re.finditer(r"call @([\w$.]+)\(", fns[entry]):
            name = call.group(1)
            copies += fns.get(name, "").count("gpu.memcpy")
            grouped += "grouped_linear" in name
        print(f"{entry}: {copies} copies, {grouped} grouped GEMMs")


if __name__ == "__main__":
    main()
