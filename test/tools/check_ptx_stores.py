#!/usr/bin/env python3
"""Flags narrowing stores of float registers in PTX.

    check_ptx_stores.py FILE.ptx

ptxas (CUDA 13, sm_90) compiles `st.global.b8 [a], %r` whose %r a float
instruction wrote (an f32 division, a cvt to bf16) as a conversion of that
float to u8 (F2IP.U8.F32), not as a store of the register's low byte: the
FP8 cache write stored every scale's and rope value's low byte as 0 or 1
on an H200 (bench/RESULTS.md, "GPU"). A store narrower than its source
register must take that register from an integer instruction. This walks
every function, remembers which instruction last wrote each register, and
reports each store of .b8 (or .b16 from a 32-bit register) whose source a
float instruction wrote. Prints one summary line; exits 1 if any."""
import re
import sys

FLOAT_TYPES = {"f16", "bf16", "f32", "f64", "f16x2", "bf16x2"}
WIDTH = {"rs": 16, "r": 32, "rd": 64, "f": 32, "fd": 64, "h": 16, "hh": 32}


def result_type(opcode):
    """The type an instruction writes: cvt's first type, else its last."""
    parts = opcode.split(".")
    types = [p for p in parts[1:] if re.fullmatch(r"[bsuf]\d+(x2)?|bf16(x2)?|pred", p)]
    if not types:
        return None
    return types[0] if parts[0] == "cvt" else types[-1]


def reg_width(reg):
    m = re.fullmatch(r"%([a-z]+)\d+", reg)
    return WIDTH.get(m.group(1)) if m else None


def main(path):
    text = open(path).read()
    stores = narrowing = 0
    bad = []
    func = "?"
    defs = {}
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"\.(visible|weak)?\s*\.entry\s+(\S+?)\(|\.(visible\s+)?\.func\s.*?(\S+)\(", s)
        if m:
            func, defs = (m.group(2) or m.group(4)), {}
            continue
        m = re.match(r"(@!?%p\d+\s+)?([a-z][\w.]*)\s+(.*?);", s)
        if not m:
            continue
        opcode, operands = m.group(2), m.group(3)
        if opcode.startswith("st"):  # stores (and st* kin) write no register
            if opcode.startswith("st."):
                stores += 1
                size = re.search(r"\.[bsuf](\d+)$", opcode)
                width = int(size.group(1)) if size else None
                for src in re.findall(r"%\w+", operands.split("]", 1)[-1]):
                    w = reg_width(src)
                    if width is None or w is None or w <= width:
                        continue
                    narrowing += 1
                    d = defs.get(src)
                    if d and result_type(d) in FLOAT_TYPES:
                        bad.append(f"{func}: {s}  ({src} written by {d})")
            continue
        dests = operands.split(",", 1)[0].strip()
        for reg in re.findall(r"%\w+", dests):
            defs[reg] = opcode
    if bad:
        print(f"FAIL: {len(bad)} of {narrowing} narrowing stores take a float register:")
        for b in bad[:10]:
            print("  " + b)
        sys.exit(1)
    print(f"ok: {stores} stores, {narrowing} narrowing, none of a float register")


if __name__ == "__main__":
    main(sys.argv[1])
