#!/usr/bin/env python3
"""Fails where a hot kernel's innermost loop moves vector registers through
the stack.

Disassembles LIB (objdump -d) and, for every function whose demangled name
contains one of the NAMES, finds its innermost loops that do vector
arithmetic (vector_loops), and reports each vector instruction there on a
stack slot ((%rsp) or (%rbp)) that the loop both writes a vector register
to and reads back: a value carried through memory from one iteration to
the next, which in a tile or accumulator loop is a spilled accumulator.
clang spilled two of the AVX2 f32 tile's twelve accumulators on every step
of k (half the tile's rate), and kept the AVX-512 bf16 head product's
sixteen in memory because a masked loop indexed them at run time
(bench/RESULTS.md, "AVX2 machines").

Usage: check_kernel_spills.py LIB NAME... ; prints one line per function
checked ("ok NAME (N loops)") or per spill, and exits 1 if any spilled or
a NAME matched no function.
"""
import re
import subprocess
import sys

FUNC = re.compile(r"^([0-9a-f]+) <(.*)>:$")
INSN = re.compile(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$")
JUMP = re.compile(r"^j\w*$")
VECTOR_ARITH = re.compile(r"^v(fn?m(add|sub)|dpbf16|mul|add)")
STACK_VECTOR = re.compile(r"[xyz]mm\d+.*\(%r[sb]p\)|\(%r[sb]p\).*[xyz]mm\d+")
SLOT = re.compile(r"-?(0x[0-9a-f]+)?\(%r[sb]p\)")


def functions(lib):
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", lib],
                         check=True, capture_output=True, text=True).stdout
    name, body = None, []
    for line in out.splitlines():
        if m := FUNC.match(line):
            if name:
                yield name, body
            name, body = m.group(2), []
        elif name and (m := INSN.match(line)):
            body.append((int(m.group(1), 16), m.group(2), m.group(3)))
    if name:
        yield name, body


def vector_loops(body):
    """The innermost loops that do vector arithmetic: a backward jump's
    range with vector arithmetic in it and no other such range inside (a
    row loop counts even where a prefetch loop sits inside it)."""
    start = body[0][0] if body else 0
    loops = set()
    for addr, op, args in body:
        if JUMP.match(op) and (t := re.match(r"([0-9a-f]+)", args)):
            target = int(t.group(1), 16)
            if start <= target < addr:
                loops.add((target, addr))
    loops = [(lo, hi) for lo, hi in loops
             if any(lo <= a <= hi and VECTOR_ARITH.match(op) for a, op, _ in body)]
    return [(lo, hi) for lo, hi in loops
            if not any((lo, hi) != (a, b) and lo <= a and b <= hi for a, b in loops)]


def stack_slot(op, args):
    """The stack slot a vector instruction reads or writes, else None."""
    if not op.startswith("v") or not STACK_VECTOR.search(args):
        return None
    return SLOT.search(args).group(0)


def carried(inside):
    """Stack slots a loop both stores a vector register to and reads back:
    a value carried from one iteration to the next through memory (stores
    alone, such as a block written out for a scatter, are not)."""
    stores, loads = set(), set()
    for _, op, args in inside:
        slot = stack_slot(op, args)
        if slot:
            # AT&T syntax: the destination is the last operand.
            (stores if args.rstrip().endswith(slot) else loads).add(slot)
    return stores & loads


def main():
    lib, names = sys.argv[1], sys.argv[2:]
    seen, bad = set(), 0
    for name, body in functions(lib):
        wanted = [n for n in names if n in name]
        if not wanted:
            continue
        seen.update(wanted)
        loops = vector_loops(body)
        spills = []
        for lo, hi in loops:
            inside = [(a, op, args) for a, op, args in body if lo <= a <= hi]
            spills += [(a, op, args) for a, op, args in inside
                       if stack_slot(op, args) in carried(inside)]
        for a, op, args in spills:
            print(f"spill {name} at {a:x}: {op} {args}")
        bad += bool(spills)
        if not spills:
            print(f"ok {name} ({len(loops)} loops)")
    for n in names:
        if n not in seen:
            print(f"no function matches {n}")
            bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
