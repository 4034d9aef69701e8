#!/usr/bin/env python3
"""Runs every test suite (lit, gtest through lit, pytest) and prints one
summary line `N passed, N failed[, N skipped]`; exits non-zero on failure.

lit runs the gtest binaries with its GoogleTest format, so every gtest case
counts on its own; both write JUnit XML that is read back here.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIT = "/usr/lib/llvm-22/bin/lit"

def count_junit(path, label, counts, failures):
    """Adds a JUnit XML report's cases to counts. lit's JSON report leaves
    out the cases it marks SKIPPED (a GTEST_SKIP), so both runners are
    read through JUnit, where every case, skipped ones too, is written.
    False where there is no readable report."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return False
    finally:
        if os.path.exists(path):
            os.unlink(path)
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            counts["failed"] += 1
            failures.append(f"{label}: {name}")
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return True


def report_path():
    with tempfile.NamedTemporaryFile(suffix=".xml", delete=False) as f:
        return f.name


def run_lit(suite_dir, label, counts, failures):
    if not os.path.exists(os.path.join(suite_dir, "lit.site.cfg.py")):
        print(f"[{label}] not configured: {suite_dir}", file=sys.stderr)
        failures.append(f"{label}: suite missing")
        counts["failed"] += 1
        return
    out = report_path()
    cmd = [sys.executable, LIT, "-sv", f"--xunit-xml-output={out}", suite_dir]
    print(f"[{label}] {' '.join(cmd)}", flush=True)
    rc = subprocess.run(cmd).returncode
    if not count_junit(out, label, counts, failures):
        failures.append(f"{label}: lit produced no results (exit {rc})")
        counts["failed"] += 1


def run_pytest(build, counts, failures):
    tests = os.path.join(ROOT, "test", "python")
    if not os.path.isdir(tests):
        return
    out = report_path()
    env = dict(os.environ, DS_BUILD_DIR=os.path.abspath(build))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           f"--junitxml={out}", tests]
    print(f"[pytest] {' '.join(cmd)}", flush=True)
    rc = subprocess.run(cmd, env=env).returncode
    if not count_junit(out, "pytest", counts, failures):
        failures.append(f"pytest: no report (exit {rc})")
        counts["failed"] += 1
    elif rc not in (0, 1, 5):  # 5: no tests collected is not a crash
        failures.append(f"pytest: exited {rc}")
        counts["failed"] += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--no-pytest", action="store_true",
                    help="skip pytest (sanitizer builds have no Python package)")
    args = ap.parse_args()
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failures = []
    run_lit(os.path.join(args.build, "test"), "lit", counts, failures)
    run_lit(os.path.join(args.build, "unittests"), "gtest", counts, failures)
    if not args.no_pytest:
        run_pytest(args.build, counts, failures)
    if failures:
        print("\nfailures:")
        for f in failures:
            print(f"  {f}")
    line = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    print(line)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
