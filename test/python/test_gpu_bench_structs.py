"""bench/gpu/batch.py's ctypes mirrors of dsrt_engine.h's structs against the
header, field by field: the runtime writes whole structs into them
(dsrt_engine_stats_get, dsrt_engine_options_default), so a mirror that
lags the header is a heap overflow in the driving process (it crashed
three runs on an H200 before this test)."""
import ctypes
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "gpu"))
import batch  # noqa: E402

HEADER = os.path.join(ROOT, "runtime", "include", "dsrt", "dsrt_engine.h")
C_TYPES = {"int64_t": ctypes.c_int64, "int32_t": ctypes.c_int32, "int": ctypes.c_int,
           "float": ctypes.c_float, "uint64_t": ctypes.c_uint64,
           "dsrt_finish_reason": ctypes.c_int,
           "dsrt_allowed_tokens_fn": ctypes.c_void_p, "void": ctypes.c_void_p}


def header_fields(struct):
    """[(name, size)] of `typedef struct struct { ... } struct;`."""
    text = open(HEADER).read()
    body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (struct, struct), text, re.S)
    assert body, f"{struct} not in {HEADER}"
    code = re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.S)
    fields = []
    for decl in filter(None, (d.strip() for d in code.split(";"))):
        decl = decl.replace("const ", "")
        m = re.match(r"([A-Za-z_]\w*)\s+(.*)", decl)
        ctype, names = m.group(1), m.group(2)
        for name in (n.strip() for n in names.split(",")):
            if name.startswith("*"):
                fields.append((name.lstrip("* "), ctypes.sizeof(ctypes.c_void_p)))
            else:
                fields.append((name, ctypes.sizeof(C_TYPES[ctype])))
    return fields


def mirror_fields(cls):
    return [(name, ctypes.sizeof(t)) for name, t in cls._fields_]


def test_every_mirror_matches_the_header():
    for struct, cls in (("dsrt_engine_options", batch.EngineOptions),
                        ("dsrt_engine_event", batch.Event),
                        ("dsrt_request_params", batch.RequestParams),
                        ("dsrt_engine_stats", batch.EngineStats)):
        assert mirror_fields(cls) == header_fields(struct), struct


def test_the_parser_sees_a_lagging_mirror():
    class Short(ctypes.Structure):
        _fields_ = batch.EngineStats._fields_[:-1]
    assert mirror_fields(Short) != header_fields("dsrt_engine_stats")
    assert len(header_fields("dsrt_engine_stats")) == 27
